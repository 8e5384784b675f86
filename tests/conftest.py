"""The Python the tutorial notebooks run in: built once per session, the way Binder builds it.

Running the notebooks is the slowest part of the suite, so each one runs exactly once per
run, and in the environment that tells us the most: the one students get on Binder. The
session fixture `notebook_env` repeats what repo2docker does with binder/ (install
requirements.txt with pip into a really fresh venv, no system site-packages, then run
postBuild from the repository root) on a copy of the working tree, and hands out that
venv's Python. tests/test_notebooks.py runs every notebook under nbval with it, which also
catches a dependency missing from binder/requirements.txt and a notebook that only works in
the development environment; tests/test_binder.py checks the environment itself.

One difference, because the PyTorch CPU index is not reachable from CI: the
`--extra-index-url https://download.pytorch.org/whl/cpu` line is dropped and
`torch==X+cpu` becomes `torch==X`, which pip resolves to the local CPU wheel. Building takes
a few minutes (about 1.9 GB); packages come from pip's configured indexes and find-links, so
point those at a local mirror or wheel cache to keep it fast.

Inner loop: `WORKBENCH_NOTEBOOK_PYTHON=.venv/bin/python` skips the build and runs the
notebooks with that interpreter instead (it needs nbval and the workbench installed);
`-m "not slow and not browser"` skips the notebooks altogether.

Time limits: pytest-timeout gives every test `timeout` seconds (pyproject.toml). Tests that
use `notebook_env` carry `@pytest.mark.timeout(N, func_only=True)`, so that the build,
which happens in the setup of whichever of them runs first, is bounded by `BUILD_TIMEOUTS_S`
(each step's own limit) rather than by that test's limit.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
NOTEBOOK_PYTHON_ENV = "WORKBENCH_NOTEBOOK_PYTHON"

# Each build step's limit, in seconds, several times what it takes on 2 cores with a local
# wheel cache (100 s in all, 80 of them pip). Their sum, 15 minutes, is the longest the
# build can hold up a CI run.
BUILD_TIMEOUTS_S = {
    "create venv": 60,
    "pip install -r binder/requirements.txt": 600,
    "binder/postBuild": 60,
    "install pytest and nbval": 60,
    "pip list": 60,
    "import workbench": 60,
}


def local_requirements(text: str) -> str:
    """binder/requirements.txt as it can be installed without the PyTorch index."""
    lines = []
    for line in text.splitlines():
        if line.strip() == f"--extra-index-url {TORCH_INDEX}":
            continue
        lines.append(re.sub(r"^torch==([\w.]+)\+cpu\s*$", r"torch==\1", line))
    return "\n".join(lines) + "\n"


def run_bounded(cmd: list[str], *, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    """subprocess.run with captured text output that, on a timeout or when pytest-timeout
    interrupts it, kills the command's whole process group (pip's builds, nbval's pytest),
    not just the command. A timeout raises subprocess.TimeoutExpired carrying the output."""
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True, **kwargs) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except BaseException as exc:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            if isinstance(exc, subprocess.TimeoutExpired):
                raise subprocess.TimeoutExpired(cmd, timeout, output=out, stderr=err) from None
            raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@dataclass
class NotebookEnv:
    """Where the notebooks run: an interpreter and the repository (copy) they run in."""

    python: str
    root: Path
    binder: bool  # True: a fresh venv built from binder/; False: WORKBENCH_NOTEBOOK_PYTHON
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))  # to run it in
    freeze: str = ""  # `pip list --format=freeze` of the venv (binder only)
    workbench_file: str = ""  # where `import workbench` found the package (binder only)
    timings: dict[str, float] = field(default_factory=dict)
    failure: str | None = None  # why the environment could not be built

    def raise_if_broken(self) -> None:
        """Fail (never skip) the calling test when the environment could not be built."""
        if self.failure is not None:
            pytest.fail(self.failure, pytrace=False)


class BuildFailed(Exception):
    pass


def _copy_working_tree(dest: Path) -> None:
    """What Binder would clone: tracked files plus new ones git does not ignore."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=ROOT, capture_output=True, check=True)
    for name in filter(None, listed.stdout.decode().split("\0")):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def _binder_env(base: Path) -> NotebookEnv:
    """The (not yet built) environment: a venv in `base`, a copy of the repository next to it."""
    venv = base / "venv"
    shell = {k: v for k, v in os.environ.items()
             if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    shell.update(PATH=f"{venv / 'bin'}{os.pathsep}{shell.get('PATH', '')}", VIRTUAL_ENV=str(venv),
                 PIP_PROGRESS_BAR="off", PYTHONDONTWRITEBYTECODE="1")
    return NotebookEnv(python=str(venv / "bin" / "python"), root=base / "repo", binder=True,
                       environ=shell)


def _build(env: NotebookEnv, base: Path) -> None:
    """Build `env` as Binder would; raise BuildFailed with the failing step's output."""
    python, repo, venv = env.python, env.root, base / "venv"

    def step(name: str, cmd: list[str], **kwargs) -> str:
        started = time.perf_counter()
        try:
            result = run_bounded(cmd, timeout=BUILD_TIMEOUTS_S[name], env=env.environ, **kwargs)
        except subprocess.TimeoutExpired as exc:
            raise BuildFailed(f"{name} took longer than {exc.timeout:.0f} s: {' '.join(cmd)}\n"
                              f"{(exc.output or '')[-8000:]}\n{(exc.stderr or '')[-4000:]}") from None
        finally:
            env.timings[name] = round(time.perf_counter() - started, 1)
        if result.returncode != 0:
            raise BuildFailed(f"{name} failed with exit code {result.returncode}: {' '.join(cmd)}\n"
                              f"{result.stdout[-8000:]}\n{result.stderr[-4000:]}")
        return result.stdout

    _copy_working_tree(repo)
    step("create venv", [sys.executable, "-m", "venv", str(venv)])
    requirements = base / "requirements-local.txt"
    requirements.write_text(local_requirements((BINDER / "requirements.txt").read_text()))
    step("pip install -r binder/requirements.txt",
         [python, "-m", "pip", "install", "-q", "-r", str(requirements)])
    step("binder/postBuild", ["bash", "binder/postBuild"], cwd=repo)
    # the test's own tools, which Binder does not need
    step("install pytest and nbval", [python, "-m", "pip", "install", "-q",
                                      f"pytest=={version('pytest')}", f"nbval=={version('nbval')}"])
    env.freeze = step("pip list", [python, "-m", "pip", "list", "--format=freeze"])
    if "nvidia" in env.freeze.lower():
        raise BuildFailed("a CUDA build of torch crept in (nvidia packages installed):\n" + env.freeze)
    if not re.search(r"^torch==[\d.]+\+cpu$", env.freeze, re.M):
        raise BuildFailed("expected the CPU build of torch (torch==X+cpu), got:\n" + env.freeze)
    env.workbench_file = step("import workbench",
                              [python, "-c", "import workbench; print(workbench.__file__)"],
                              cwd=base).strip()


# The suite runs on 2 pytest-xdist workers (`-n 2`, pyproject.toml): on 2 cores the
# notebooks' kernels, the pip build, JupyterLab and Chromium wait on each other enough that
# two workers finish well before one. A test may only share an expensive session fixture
# with tests on its own worker, so the tests are scheduled in groups (`Grouped`): the files
# that use one shared resource together, any other file on its own (its module-scoped
# fixtures are then built once). xdist's own `--dist loadgroup` cannot do this here: it
# renames items' node ids, which pytest 9 no longer lets it. The groups that hold a
# session-long resource go first, the Binder build (the longest chain) before all.
SHARED_FIXTURES = {  # fixture -> the group of every test that uses it
    "notebook_env": "binder",  # the Binder venv, then every notebook under nbval
    "jupyter_server": "browser",  # one JupyterLab and one Chromium for all browser tests
    "chromium_path": "browser",
    "client": "dask",  # the session's LocalCluster of 2 worker processes
}
GROUP_FILES = {  # group -> the test files (or folders) in it, checked at collection
    "binder": ["tests/test_binder.py", "tests/test_notebooks.py", "tests/test_bundle_portability.py"],
    "browser": ["tests/browser/"],
    "dask": ["tests/test_cli_predict_cluster.py", "tests/data/test_pretrained.py",
             "tests/data/test_parquet_pool.py", "tests/data/test_jobs.py",
             "tests/loop/test_session_cluster.py", "tests/loop/test_suspects_cluster.py"],
}


def group_of(nodeid: str) -> str:
    """The scheduling group of a test, from its node id: its shared resource's, else its file."""
    path = nodeid.split("::")[0]
    for group, files in GROUP_FILES.items():
        if any(path == f or (f.endswith("/") and path.startswith(f)) for f in files):
            return group
    return path


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class Grouped(LoadScopeScheduling):
        """Whole groups to a worker as it becomes free, in collection order."""

        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid)

    return Grouped(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture, group in SHARED_FIXTURES.items():
            if fixture in item.fixturenames and group_of(item.nodeid) != group:
                raise pytest.UsageError(
                    f"{item.nodeid} uses the shared fixture {fixture!r}: add its file to "
                    f"GROUP_FILES[{group!r}] in tests/conftest.py, or xdist builds it twice")
    first = {group: rank for rank, group in enumerate(GROUP_FILES)}
    items.sort(key=lambda item: first.get(group_of(item.nodeid), len(first)))  # stable


@pytest.fixture(scope="session")
def notebook_env(tmp_path_factory) -> NotebookEnv:
    """The interpreter the notebooks run with; see the module docstring.

    A build that fails does not raise here (pytest would report the same error, pip output
    and all, as a setup error of every notebook test): each test calls raise_if_broken()."""
    given = os.environ.get(NOTEBOOK_PYTHON_ENV)
    if given:
        python = os.path.abspath(given)  # not resolve(): a venv's python is a symlink out of it
        env = NotebookEnv(python=python, root=ROOT, binder=False)
        try:
            check = run_bounded([python, "-c", "import nbval, workbench"], timeout=60)
            problem = check.stderr[-4000:] if check.returncode else None
        except (OSError, subprocess.SubprocessError) as exc:
            problem = str(exc)
        if problem:
            env.failure = (f"{NOTEBOOK_PYTHON_ENV}={given}: cannot import nbval and workbench "
                           f"with that interpreter:\n{problem}")
        yield env
        return

    base = tmp_path_factory.mktemp("binder")
    env = _binder_env(base)
    started = time.perf_counter()
    try:
        if shutil.which("git") is None or shutil.which("bash") is None:
            raise BuildFailed("it needs git and bash on PATH")
        _build(env, base)
    except (BuildFailed, OSError, subprocess.SubprocessError) as exc:
        env.failure = f"building the Binder environment failed:\n{exc}"
    env.timings["total"] = round(time.perf_counter() - started, 1)
    try:
        yield env
    finally:
        shutil.rmtree(base / "venv", ignore_errors=True)  # ~1.9 GB; pytest would keep it around


def describe(env: NotebookEnv) -> str:
    """One line on where the notebooks ran: the Binder build's steps and their seconds."""
    if not env.binder:
        return f"notebooks ran with {NOTEBOOK_PYTHON_ENV}={env.python} (no Binder build)"
    what = "built once" if env.failure is None else "FAILED to build"
    return (f"Binder environment {what} in {env.timings.get('total', 0):.0f} s: "
            + ", ".join(f"{k} {v:.0f} s" for k, v in env.timings.items() if k != "total"))


def pytest_terminal_summary(terminalreporter):
    """How long the Binder build and each notebook took: the numbers behind the timeouts.
    The notebook tests carry them as report properties, which xdist's workers send back."""
    envs: dict[str, None] = {}
    notebooks = []
    for outcome in ("passed", "failed"):
        for report in terminalreporter.stats.get(outcome, []):
            props = dict(getattr(report, "user_properties", ()))
            if report.when == "call" and "notebook_seconds" in props:
                envs[props.get("notebook_env", "")] = None
                notebooks.append(f"{props['notebook']}: {props['notebook_seconds']:.1f} s ({outcome})")
    lines = [line for line in envs if line] + notebooks
    if lines:
        terminalreporter.write_sep("-", "notebook timings")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session", autouse=True)
def representation_cache(tmp_path_factory):
    """Pools' learned representations go to a folder of this test run, never to the user's
    ~/.cache (subprocesses and notebook kernels inherit the variable)."""
    folder = tmp_path_factory.mktemp("workbench-cache")
    before = os.environ.get("WORKBENCH_CACHE_DIR")
    os.environ["WORKBENCH_CACHE_DIR"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("WORKBENCH_CACHE_DIR", None)
    else:
        os.environ["WORKBENCH_CACHE_DIR"] = before


@pytest.fixture(scope="session")
def client():
    """One real Dask LocalCluster of 2 worker processes (and a Client on it) for every test
    that runs jobs on a cluster: starting one costs seconds on 2 cores, so the tests share it.
    A test that kills a worker waits for the nanny's replacement (`wait_for_workers(2)`)
    before it returns, so the next test finds 2 workers. `client.cluster_` is the cluster.

    The lost-worker timeout is raised because LocalCluster closes a nanny for good when its worker
    is not back within it (15 s by default), and on a busy 2-core CI machine a killed worker's
    replacement (a fresh process importing torch) took longer: the cluster then had 1 worker
    for the rest of the run."""
    import dask
    from distributed import Client, LocalCluster

    patient = dask.config.set({"distributed.deploy.lost-worker-timeout": "600s"})
    with patient, LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                               dashboard_address=None) as cluster, \
            Client(cluster, set_as_default=False) as client:
        client.cluster_ = cluster
        yield client


@pytest.fixture(scope="module")
def digits_bundle(tmp_path_factory):
    """(the digits pool, a folder holding its `store` and the `bundle` exported from it after a
    round on 40 labels): what `workbench predict` reads, here and on a cluster."""
    from workbench import Session, cli, datasets

    root = tmp_path_factory.mktemp("predict")
    pool = datasets.digits()  # a pool the store records, so predict can rebuild it
    session = Session(pool, root / "store", watch=False)
    for item in session.peek(40):
        session.label(item.item_id, pool.true_label(item.item_id))
    session.retrain()
    session.close()
    assert cli.main(["export", str(root / "store"), "--out", str(root / "bundle")]) == 0
    return pool, root
