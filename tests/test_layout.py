"""The package's architecture, checked: imports between its packages point one way.

data and store know nothing else; learn uses data; loop uses data, store and learn; only
ui, cli and the package's __init__ reach ui. The loop runs headless: nothing it imports
pulls in IPython, anywidget, ipywidgets or Altair.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "workbench"
# One deliberate exception: the notebook's one-liners on `Session` (`widget()`,
# `history_view()`, `map()`, `queue_from()`) import the ui lazily inside the method, so the
# loop still runs headless (see the second test).
EXCEPTIONS = {("loop/session.py", "ui")}
ALLOWED = {
    "data": {"data"},
    "store": {"store"},
    "learn": {"learn", "data"},
    "loop": {"loop", "data", "store", "learn"},
    "ui": {"ui", "loop", "data", "store", "learn"},
}


def workbench_imports(path: Path) -> set[str]:
    """The workbench packages a module imports (`workbench.X...` -> X), lazily or not."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        for name in names:
            parts = name.split(".")
            if parts[0] == "workbench" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_imports_between_packages_point_one_way():
    wrong = []
    for package, allowed in ALLOWED.items():
        for module in (PACKAGE / package).glob("*.py"):
            name = module.relative_to(PACKAGE).as_posix()
            bad = {p for p in workbench_imports(module) - allowed if (name, p) not in EXCEPTIONS}
            if bad:
                wrong.append(f"{name} imports workbench.{sorted(bad)}")
    assert not wrong, "\n".join(wrong)


def test_the_loop_runs_headless():
    code = ("import sys, workbench, workbench.loop.session, workbench.loop.simulate; "
            "print(sorted(m for m in ('IPython', 'anywidget', 'ipywidgets', 'altair') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
