"""Binder builds a fresh environment from binder/ alone; these tests check that it will work.

What repo2docker does with binder/: install requirements.txt with pip into a Python of the
version in runtime.txt, then run postBuild from the repository root. test_binder_files checks
those files as they are; the `notebook_env` fixture (tests/conftest.py) then builds that
environment once per session, in a really fresh venv on a copy of the working tree, with the
PyTorch CPU index swapped for the local CPU wheel. The tutorial notebooks run in it exactly
once, from tests/test_notebooks.py; here we check the environment itself: that every pin
resolved as written and that `import workbench` finds the copy postBuild installed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from conftest import BINDER, TORCH_INDEX, local_requirements
from packaging.utils import canonicalize_name
from packaging.version import Version


def test_binder_files():
    requirements = (BINDER / "requirements.txt").read_text()
    assert f"--extra-index-url {TORCH_INDEX}" in requirements
    assert re.search(r"^torch==[\d.]+\+cpu$", requirements, re.M)
    pins = [line for line in requirements.splitlines() if line and line[0].isalpha()]
    assert all("==" in pin for pin in pins), [p for p in pins if "==" not in p]
    names = {re.split("==", pin)[0].lower() for pin in pins}
    assert {"torch", "jupyterlab", "anywidget", "altair", "vl-convert-python", "pyarrow"} <= names
    local = local_requirements(requirements)
    assert TORCH_INDEX not in local and re.search(r"^torch==[\d.]+$", local, re.M)

    assert re.fullmatch(r"python-3\.\d+\n?", (BINDER / "runtime.txt").read_text())
    post = BINDER / "postBuild"
    assert os.access(post, os.X_OK), "binder/postBuild must be executable"
    script = post.read_text()
    assert script.startswith("#!") and "set -e" in script
    assert "pip install --no-deps -e ." in script


def _pins(text: str) -> dict[str, str]:
    """name -> version of the `name==version` lines of a requirements or freeze text."""
    pins = {}
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9][\w.-]*)==(\S+)$", line.strip())
        if match:
            pins[canonicalize_name(match[1])] = match[2]
    return pins


@pytest.mark.slow
@pytest.mark.timeout(120, func_only=True)  # the build itself is bounded in conftest
def test_binder_environment_installs_every_pin_and_the_checkout(notebook_env):
    if not notebook_env.binder:
        pytest.skip(f"{os.environ.get('WORKBENCH_NOTEBOOK_PYTHON')!r} given as "
                    "WORKBENCH_NOTEBOOK_PYTHON: no Binder environment was built")
    notebook_env.raise_if_broken()
    print("binder build timings (s):", notebook_env.timings)
    # The fixture already refused a CUDA torch (nvidia packages, no +cpu): the build fails.
    wanted = _pins(local_requirements((BINDER / "requirements.txt").read_text()))
    installed = _pins(notebook_env.freeze)
    wrong = {name: (pin, installed.get(name)) for name, pin in wanted.items()
             if name not in installed or Version(installed[name]).public != Version(pin).public}
    assert not wrong, f"pinned in binder/requirements.txt -> installed: {wrong}"
    where = Path(notebook_env.workbench_file).resolve()
    assert where.is_relative_to(notebook_env.root.resolve()), (
        f"import workbench found {where}, not the copy postBuild installed in {notebook_env.root}")
