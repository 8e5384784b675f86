"""Freed memory goes back to the OS after a pool-sized job (workbench/data/memory.py): glibc
otherwise keeps the pieces a build freed, and the notebook process stays that large."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

PROBE = textwrap.dedent("""
    import sys
    from workbench.data.memory import release_freed_memory

    def rss_mb():
        return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20

    pieces = [bytes(3000) + bytes([i % 256]) for i in range(100_000)]  # ~300 MB, glibc's heap
    keep = bytes(3000) + b"top"  # above them: the heap's top is in use, so free() trims nothing
    before = rss_mb()
    del pieces
    freed = rss_mb()
    released = release_freed_memory()
    print(before, freed, rss_mb(), released)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim: Linux only")
def test_a_heap_of_freed_pieces_is_handed_back():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    before, freed, after, released = out.stdout.split()
    before, freed, after = float(before), float(freed), float(after)
    assert released == "True"
    assert freed > before - 100, (before, freed)  # freed but kept: what the build left behind
    assert after < freed - 200, (before, freed, after)

