"""The tutorial notebooks are the documentation, so they are tested like code.

nbval runs each notebook top to bottom in a fresh kernel. Notebooks whose outputs are
deterministic run under strict `--nbval`: every cell's output must match the stored one
(after notebooks/sanitize.cfg replaces ids, times and temp paths). The others train
networks whose numbers move a little from machine to machine, so they run under
`--nbval-lax`: every cell must run without error, and only cells tagged
`nbval-check-output` are compared.

Each notebook runs exactly once per test run, in its own pytest subprocess (strict and lax
are global nbval options), with the Python of the Binder environment that tests/conftest.py
builds once per session: what students get on Binder, so a dependency missing from
binder/requirements.txt fails here. For a quick loop in the development environment, set
WORKBENCH_NOTEBOOK_PYTHON=.venv/bin/python to skip that build and run the notebooks with
the given interpreter. If the Binder environment cannot be built, these tests fail with
pip's output; they never skip.

Time limits: each notebook gets NOTEBOOK_TIMEOUT_S (about four times the slowest one on 2
cores) and pytest-timeout 30 s more, so the seven can hold up a CI run for at most 24.5
minutes, plus the build's own limits (BUILD_TIMEOUTS_S in conftest.py, 15 minutes).

After changing a notebook or the code it shows, re-execute it in place, with
outputs and without widget state, so that GitHub and Binder readers see real results:

    .venv/bin/jupyter nbconvert --to notebook --execute --inplace \
        --ExecutePreprocessor.store_widget_state=False \
        --ExecutePreprocessor.record_timing=False notebooks/NAME.ipynb

Set WORKBENCH_NOTEBOOK_BUDGET_S (e.g. 60) to also fail a notebook that runs longer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from conftest import describe, run_bounded

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
SANITIZE = NOTEBOOK_DIR / "sanitize.cfg"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
STRICT = {"03_your_own_data.ipynb", "05_the_label_store.ipynb"}  # deterministic outputs
MAX_BYTES = 200_000  # no widget state, no giant outputs
NOTEBOOK_TIMEOUT_S = 180  # one notebook, kernel start to last cell (the slowest takes ~45 s)
CELL_TIMEOUT_S = 120  # one cell: nbval names the cell that hangs before the notebook's limit


def nbval_command(notebooks, *, python: str = sys.executable, root: Path = ROOT) -> list[str]:
    """The pytest command line that validates `notebooks` (all strict or all lax)."""
    names = {Path(nb).name for nb in notebooks}
    strict = names <= STRICT
    if not strict and names & STRICT:
        raise ValueError(f"mix of strict and lax notebooks: {sorted(names)}")
    return [python, "-m", "pytest", *map(str, notebooks),
            "--nbval" if strict else "--nbval-lax", "--nbval-current-env",
            "--nbval-sanitize-with", str(root / "notebooks" / "sanitize.cfg"),
            "--nbval-cell-timeout", str(CELL_TIMEOUT_S),
            # The project's pytest settings (addopts, the per-test timeout) are for the unit
            # tests; the notebook's limit is the caller's.
            "-c", os.devnull, "--rootdir", str(root),
            "-p", "no:cacheprovider", "-q", "--no-header", "-rN"]


def test_the_tutorials_are_all_here():
    assert [nb.name for nb in NOTEBOOKS] == [
        "01_quickstart.ipynb", "02_active_vs_random.ipynb", "03_your_own_data.ipynb",
        "04_your_own_model.ipynb", "05_the_label_store.ipynb", "06_label_history.ipynb",
        "07_cleaning.ipynb", "08_share_a_model.ipynb", "09_at_scale.ipynb", "10_multi_label.ipynb",
        "11_spans.ipynb", "12_boxes.ipynb"]
    assert STRICT <= {nb.name for nb in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_executed_and_small(path):
    """Readers on GitHub see real outputs; diffs stay reviewable."""
    assert path.stat().st_size < MAX_BYTES, f"{path.name} is {path.stat().st_size} bytes"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    assert "widgets" not in nb.metadata, "re-execute with --ExecutePreprocessor.store_widget_state=False"
    code = [c for c in nb.cells if c.cell_type == "code"]
    counts = [c.execution_count for c in code]
    assert counts == list(range(1, len(code) + 1)), f"not executed top to bottom: {counts}"
    for cell in code:
        assert "execution" not in cell.metadata, "use --ExecutePreprocessor.record_timing=False"
        for out in cell.outputs:
            assert out.output_type != "error", f"stored error in {path.name}: {out.get('evalue')}"
            assert out.get("name") != "stderr", f"stored stderr in {path.name}: {out.text[:300]}"
    if path.name in STRICT:
        assert not any("nbval-ignore-output" in c.metadata.get("tags", []) for c in code)


def test_sanitizers_are_valid_regexes():
    import re
    from configparser import ConfigParser

    config = ConfigParser()
    config.read(SANITIZE)
    assert config.sections()
    for section in config.sections():
        re.compile(config[section]["regex"])
        assert "replace" in config[section]


@pytest.mark.slow
@pytest.mark.timeout(NOTEBOOK_TIMEOUT_S + 30, func_only=True)  # the build is bounded in conftest
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_under_nbval(path, notebook_env, record_property):
    notebook_env.raise_if_broken()
    notebook = notebook_env.root / "notebooks" / path.name
    cmd = nbval_command([notebook], python=notebook_env.python, root=notebook_env.root)
    mode = "strict" if path.name in STRICT else "lax"
    where = "the Binder environment" if notebook_env.binder else notebook_env.python
    started = time.perf_counter()
    try:
        result = run_bounded(cmd, cwd=notebook_env.root, timeout=NOTEBOOK_TIMEOUT_S,
                             env={**notebook_env.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{path.name} ran longer than {NOTEBOOK_TIMEOUT_S} s in {where} "
                    f"({' '.join(cmd[1:])}):\n{(exc.output or '')[-8000:]}\n"
                    f"{(exc.stderr or '')[-2000:]}", pytrace=False)
    seconds = time.perf_counter() - started
    record_property("notebook", f"{path.name} ({mode})")
    record_property("notebook_seconds", round(seconds, 1))
    record_property("notebook_env", describe(notebook_env))
    print(f"{path.name}: {seconds:.1f} s ({mode}, {where})")
    if result.returncode != 0:
        pytest.fail(f"nbval failed on {path.name} in {where} ({' '.join(cmd[1:])}):\n"
                    f"{result.stdout[-8000:]}\n{result.stderr[-2000:]}", pytrace=False)
    budget = os.environ.get("WORKBENCH_NOTEBOOK_BUDGET_S")
    if budget:
        assert seconds < float(budget), f"{path.name} took {seconds:.0f} s, budget {budget} s"


def test_strict_notebooks_have_nothing_random_left(tmp_path):
    """Every output of a strict notebook must survive sanitizing; this catches a stored
    output that still holds a known-random value (a uuid, a timestamp) unsanitized."""
    import re
    from configparser import ConfigParser

    config = ConfigParser()
    config.read(SANITIZE)
    patterns = [(re.compile(config[s]["regex"]), config[s]["replace"]) for s in config.sections()]
    uuid = re.compile(r"[0-9a-f]{32}")
    for name in STRICT:
        text = json.dumps([c.get("outputs", []) for c in
                           nbformat.read(NOTEBOOK_DIR / name, as_version=4).cells])
        for regex, replace in patterns:
            text = regex.sub(replace, text)
        assert not uuid.search(text), f"{name} has an unsanitized id: {uuid.search(text)[0]}"
