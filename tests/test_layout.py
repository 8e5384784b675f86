"""The package's architecture, checked.

The import contracts in pyproject.toml ([tool.importlinter]) are run by `lint-imports`: the
command line on top, then ui, loop, learn and store, data at the bottom; the store knows no
other package; no import circles between the modules of any package (imports inside
functions count). The loop runs headless: nothing it imports pulls in IPython, anywidget,
ipywidgets or Altair. And a module holds one idea: none is over 400 lines.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "workbench"
MAX_LINES = 400


def test_the_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


def test_a_wrong_arrow_breaks_the_contract(tmp_path):
    """The contract is not vacuous: a store module that imports the loop is caught."""
    copy = tmp_path / "src"
    shutil.copytree(PACKAGE, copy / "workbench")
    (copy / "workbench" / "store" / "wrong.py").write_text("import workbench.loop.session\n")
    (tmp_path / ".importlinter").write_text(
        "[importlinter]\nroot_package = workbench\n\n[importlinter:contract:store]\nname = store\n"
        "type = forbidden\nsource_modules = workbench.store\nforbidden_modules = workbench.loop\n")
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint), "--no-cache"], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 1 and "workbench.store.wrong -> workbench.loop.session" in out.stdout


def test_no_module_is_over_400_lines():
    long = {p.relative_to(ROOT).as_posix(): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_the_loop_runs_headless():
    code = ("import sys, workbench, workbench.loop.session, workbench.loop.simulate; "
            "print(sorted(m for m in ('IPython', 'anywidget', 'ipywidgets', 'altair') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
