"""Fixtures that drive a real JupyterLab in headless Chromium.

One JupyterLab server per test session (starting one costs seconds), one fresh browser
context per test. The server runs in a temporary root with its own config, data,
settings, workspace and runtime dirs, so nothing a developer has configured leaks in,
while the venv's `share/jupyter` stays on the search path (that is where the ipywidgets
and anywidget lab extensions and the python3 kernelspec live).

How a test sees what the kernel did: the server is started with `WB_TEST_STATE_DIR` in its
environment, kernels inherit it, and a notebook calls `report(name, **data)` (defined by
`REPORT_CELL`) to write `<state dir>/<name>.json` atomically; the test polls that file with
`server.wait_state(name, predicate)`.

Everything here follows /work/shared/RECIPES.md ("Real browser tests").
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

STATE_ENV = "WB_TEST_STATE_DIR"
KERNEL_IDLE = "Python 3 (ipykernel) | Idle"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SERVER_START_TIMEOUT_S = 60
# Below the per-test limit (120 s, pyproject.toml), so that a stuck cell fails with the cell
# states and tracebacks rather than with pytest-timeout's stack dump.
CELL_RUN_TIMEOUT_S = 90

# First cell of a test notebook: `report(name, **data)` hands state to the test process.
REPORT_CELL = '''\
import json as _json, os as _os, pathlib as _pathlib
def report(name, **data):
    d = _pathlib.Path(_os.environ["WB_TEST_STATE_DIR"])
    tmp = d / f".{name}.json.tmp"
    tmp.write_text(_json.dumps(data, default=str))
    tmp.replace(d / f"{name}.json")  # atomic: the test never reads half a file
'''


def pytest_collection_modifyitems(items):
    """Everything under tests/browser/ is a browser test, marked or not."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class JupyterServer:
    """A running JupyterLab: where it is, how to reach it, where its files go."""

    url: str
    token: str
    root: Path
    state_dir: Path
    process: subprocess.Popen
    log_path: Path
    kernel_pids: set[int] = field(default_factory=set)

    # --- HTTP ---------------------------------------------------------------------------
    def api(self, method: str, path: str, body: dict | None = None, timeout: float = 10):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.url}{path}", data=data, method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def lab_url(self, path: str) -> str:
        return f"{self.url}/lab/tree/{path}?token={self.token}&reset"

    def notebook7_url(self, path: str) -> str:
        return f"{self.url}/notebooks/{path}?token={self.token}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # --- notebooks and state ------------------------------------------------------------
    def write_notebook(self, name: str, cells: list[str], *, report_cell: bool = True) -> str:
        """Write a notebook of code cells into the server root; return its path there."""
        import nbformat

        sources = ([REPORT_CELL] if report_cell else []) + list(cells)
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {
            "name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python",
        }
        nb.metadata["language_info"] = {"name": "python"}
        nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
        return name

    def state_path(self, name: str) -> Path:
        return self.state_dir / f"{name}.json"

    def read_state(self, name: str) -> dict | None:
        path = self.state_path(name)
        return json.loads(path.read_text()) if path.exists() else None

    def clear_state(self, name: str) -> None:
        self.state_path(name).unlink(missing_ok=True)

    def wait_state(self, name: str, predicate=lambda s: True, timeout: float = 30) -> dict:
        """Poll `<state>/<name>.json` until `predicate(state)` holds; fail with the last one."""
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            state = self.read_state(name)
            if state is not None and predicate(state):
                return state
            time.sleep(0.05)
        raise AssertionError(f"kernel state {name!r} did not satisfy the check in {timeout}s; "
                             f"last state: {state!r}")

    # --- kernels ------------------------------------------------------------------------
    def shutdown_kernels(self) -> None:
        """Stop every kernel (between tests, so kernels do not pile up)."""
        self._note_kernel_pids()
        try:
            for session in self.api("GET", "/api/sessions"):
                self.api("DELETE", f"/api/sessions/{session['id']}")
            for kernel in self.api("GET", "/api/kernels"):
                self.api("DELETE", f"/api/kernels/{kernel['id']}")
        except (urllib.error.URLError, OSError):
            pass

    def _note_kernel_pids(self) -> None:
        """Remember kernel processes: they run in their own sessions, outside our group."""
        import psutil

        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return
        self.kernel_pids.update(c.pid for c in children)

    def stop(self) -> None:
        """Shut down politely, then by force: the server group, then kernels left over."""
        self._note_kernel_pids()
        if self.process.poll() is None:
            try:
                self.api("POST", "/api/shutdown", timeout=5)
                self.process.wait(timeout=10)
            except (urllib.error.URLError, OSError, subprocess.TimeoutExpired):
                pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if self.process.poll() is not None:
                break
            try:
                os.killpg(self.process.pid, sig)
                self.process.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        _kill_pids(self.kernel_pids)


def _kill_pids(pids: set[int]) -> None:
    import psutil

    procs = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            proc.kill()
            procs.append(proc)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=5)


def _write_settings(settings_dir: Path) -> None:
    """Lab settings that keep tests deterministic: no news toast, every cell in the DOM."""
    files = {
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
            {"fetchNews": "false", "checkForUpdates": False},
        # Windowed notebooks drop off-screen cells from the DOM; tests want them all there.
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    }
    for rel, content in files.items():
        path = settings_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content))


def start_server(base: Path) -> JupyterServer:
    root, state = base / "root", base / "state"
    dirs = {
        "JUPYTER_CONFIG_DIR": base / "config",
        "JUPYTER_DATA_DIR": base / "data",
        "JUPYTERLAB_SETTINGS_DIR": base / "settings",
        "JUPYTERLAB_WORKSPACES_DIR": base / "workspaces",
        "JUPYTER_RUNTIME_DIR": base / "runtime",
    }
    for d in [root, state, *dirs.values()]:
        d.mkdir(parents=True, exist_ok=True)
    _write_settings(dirs["JUPYTERLAB_SETTINGS_DIR"])
    (dirs["JUPYTER_CONFIG_DIR"] / "jupyter_server_config.json").write_text(json.dumps({
        "LabApp": {
            "news_url": None,
            "check_for_updates_class": "jupyterlab.handlers.announcements.NeverCheckForUpdate",
            "expose_app_in_browser": True,  # window.jupyterapp, to run commands
        },
        "JupyterNotebookApp": {"expose_app_in_browser": True},  # the same in Notebook 7
    }))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "JPY_"))}
    env.update({k: str(v) for k, v in dirs.items()})
    env[STATE_ENV] = str(state)
    env["PYTHONUNBUFFERED"] = "1"

    port, token = _free_port(), secrets.token_hex(16)
    cmd = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log_path = base / "server.log"
    log = open(log_path, "wb")  # noqa: SIM115 - the server writes to it until stop()
    process = subprocess.Popen(cmd, env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    log.close()
    server = JupyterServer(f"http://127.0.0.1:{port}", token, root, state, process, log_path)
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {process.returncode}:\n{server.log()}")
            try:
                server.api("GET", "/api/status", timeout=2)
                return server
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"jupyter lab did not answer in {SERVER_START_TIMEOUT_S}s:\n"
                                   f"{server.log()}")
            time.sleep(0.2)
    except BaseException:
        server.stop()
        raise


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip("no system Chromium on PATH (install it: apt-get install -y chromium)")
    return path


@pytest.fixture(scope="session")
def jupyter_server(tmp_path_factory, chromium_path) -> JupyterServer:
    """One JupyterLab for the whole session, always stopped at the end."""
    server = start_server(tmp_path_factory.mktemp("jupyter"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def server(jupyter_server) -> JupyterServer:
    """The session's server, with kernels stopped after each test."""
    try:
        yield jupyter_server
    finally:
        jupyter_server.shutdown_kernels()


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, request):
    """A fresh browser context per test; console errors are printed when a test fails."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    messages: list[str] = []
    page.on("console", lambda m: messages.append(f"[{m.type}] {m.text}"))
    page.on("pageerror", lambda e: messages.append(f"[pageerror] {e}"))
    page.wb_console = messages
    try:
        yield page
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            print("\n--- browser console ---\n" + "\n".join(messages[-80:]))
        context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


# --- helpers for tests ----------------------------------------------------------------------
def command(page, name: str, args: dict | None = None):
    """Run a JupyterLab command through window.jupyterapp (exposed by the server config)."""
    return page.evaluate(
        "([name, args]) => window.jupyterapp.commands.execute(name, args)", [name, args or {}]
    )


def cell_states(page) -> list[dict]:
    """Per cell of the current notebook: type, source, execution count, running flag."""
    return page.evaluate("""() => {
        const nb = window.jupyterapp.shell.currentWidget;
        const cells = nb.content.widgets;
        return cells.map(c => ({
            type: c.model.type,
            source: c.model.sharedModel.getSource(),
            count: c.model.type === 'code' ? c.model.executionCount : null,
            running: c.model.type === 'code' &&
                     (c.model.executionState === 'running' ||
                      (c.node.querySelector('.jp-InputPrompt')?.textContent || '').includes('*')),
        }));
    }""")


def notebook_errors(page) -> list[str]:
    """Tracebacks shown in the notebook's outputs."""
    return page.eval_on_selector_all(
        ".jp-RenderedText[data-mime-type='application/vnd.jupyter.error']",
        "els => els.map(e => e.textContent)",
    )


def open_notebook(page, server: JupyterServer, path: str, *, run: bool = True,
                  ui: str = "lab", timeout: float = CELL_RUN_TIMEOUT_S) -> None:
    """Open `path` in JupyterLab (or Notebook 7 with `ui="notebook"`), wait for an idle
    kernel, run all cells and wait for them. Fails with the traceback if a cell raised."""
    if ui not in ("lab", "notebook"):
        raise ValueError(f"ui must be 'lab' or 'notebook', got {ui!r}")
    page.goto(server.lab_url(path) if ui == "lab" else server.notebook7_url(path))
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                           " && window.jupyterapp.shell.currentWidget.content")
    if ui == "lab":  # before Run All, or a "Select Kernel" dialog appears
        page.get_by_text(KERNEL_IDLE).first.wait_for(timeout=60_000)
    page.wait_for_function(
        "() => window.jupyterapp.shell.currentWidget.sessionContext?.session?.kernel?.status"
        " === 'idle'", timeout=60_000)
    if not run:
        return
    has_menu = page.evaluate("() => window.jupyterapp.commands.hasCommand('runmenu:run-all')")
    command(page, "runmenu:run-all" if has_menu else "notebook:run-all-cells")
    deadline = time.monotonic() + timeout
    while True:
        states = [s for s in cell_states(page) if s["type"] == "code"]
        if all(s["count"] is not None and not s["running"] for s in states):
            break
        errors = notebook_errors(page)
        if errors and not any(s["running"] for s in states):
            raise AssertionError("a notebook cell failed:\n" + "\n".join(errors))
        if time.monotonic() > deadline:
            raise AssertionError(f"cells did not finish in {timeout}s: {states}\n"
                                 + "\n".join(notebook_errors(page)))
        time.sleep(0.1)
    errors = notebook_errors(page)
    if errors:
        raise AssertionError("a notebook cell failed:\n" + "\n".join(errors))
