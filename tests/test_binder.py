"""Binder builds a fresh environment from binder/ alone; this test does the same here.

What repo2docker does with binder/: install requirements.txt with pip into a Python of the
version in runtime.txt, then run postBuild from the repository root. This test repeats that
in a really fresh venv (no system site-packages) on a copy of the working tree, then runs
every tutorial notebook under nbval with that venv's Python: it catches a dependency missing
from requirements.txt, a pin that does not resolve, and a notebook that only works in the
development environment.

One difference, because the PyTorch CPU index is not reachable from CI: the
`--extra-index-url https://download.pytorch.org/whl/cpu` line is dropped and
`torch==X+cpu` becomes `torch==X`, which pip resolves to the local CPU wheel. Installing
takes a few minutes (about 1.9 GB); packages come from pip's configured indexes and
find-links, so set those up to point at a local mirror or wheel cache to keep it fast.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pytest
from test_notebooks import NOTEBOOKS, STRICT, nbval_command

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"


def local_requirements(text: str) -> str:
    """binder/requirements.txt as it can be installed without the PyTorch index."""
    lines = []
    for line in text.splitlines():
        if line.strip() == f"--extra-index-url {TORCH_INDEX}":
            continue
        lines.append(re.sub(r"^torch==([\w.]+)\+cpu\s*$", r"torch==\1", line))
    return "\n".join(lines) + "\n"


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


def _copy_working_tree(dest: Path) -> None:
    """What Binder would clone: tracked files plus new ones git does not ignore."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=ROOT, capture_output=True, check=True)
    for name in filter(None, listed.stdout.decode().split("\0")):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


@pytest.mark.slow
def test_binder_environment_runs_every_notebook(tmp_path):
    if shutil.which("git") is None or shutil.which("bash") is None:
        pytest.skip("needs git and bash")
    timings: dict[str, float] = {}

    def step(name, cmd, **kw):
        started = time.perf_counter()
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, **kw)
        timings[name] = round(time.perf_counter() - started, 1)
        assert result.returncode == 0, (
            f"{name} failed: {' '.join(map(str, cmd))}\n{result.stdout[-8000:]}\n"
            f"{result.stderr[-4000:]}")
        return result.stdout

    repo = tmp_path / "repo"
    _copy_working_tree(repo)
    venv = tmp_path / "venv"
    python = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(venv),
               PIP_PROGRESS_BAR="off", PYTHONDONTWRITEBYTECODE="1")

    try:
        _build_and_run(step, repo, venv, python, tmp_path)
    finally:
        shutil.rmtree(venv, ignore_errors=True)  # ~1.9 GB; pytest would keep it around
    print("binder test timings (s):", timings, f"total {sum(timings.values()):.0f}")


def _build_and_run(step, repo: Path, venv: Path, python: str, tmp_path: Path) -> None:
    step("create venv", [sys.executable, "-m", "venv", str(venv)], timeout=300)
    requirements = tmp_path / "requirements-local.txt"
    requirements.write_text(local_requirements((BINDER / "requirements.txt").read_text()))
    step("pip install -r binder/requirements.txt",
         [python, "-m", "pip", "install", "-q", "-r", str(requirements)], timeout=1800)
    step("binder/postBuild", ["bash", "binder/postBuild"], cwd=repo, timeout=600)
    # the test's own tools, which Binder does not need
    step("install nbval", [python, "-m", "pip", "install", "-q", f"pytest=={version('pytest')}",
                           f"nbval=={version('nbval')}"], timeout=600)

    installed = step("pip list", [python, "-m", "pip", "list", "--format=freeze"], timeout=120)
    assert "nvidia" not in installed.lower(), "a CUDA build of torch crept in"
    assert re.search(r"^torch==[\d.]+\+cpu$", installed, re.M), "expected the CPU build of torch"
    where = step("import workbench", [python, "-c", "import workbench; print(workbench.__file__)"],
                 cwd=tmp_path, timeout=120)
    assert Path(where.strip()).resolve().is_relative_to(repo.resolve())

    notebooks = [repo / "notebooks" / nb.name for nb in NOTEBOOKS]
    strict = [nb for nb in notebooks if nb.name in STRICT]
    lax = [nb for nb in notebooks if nb.name not in STRICT]
    for name, group in (("nbval strict", strict), ("nbval lax", lax)):
        step(name, nbval_command(group, python=python, root=repo), cwd=repo, timeout=1800)
