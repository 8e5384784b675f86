"""The command line imports only what a verb needs (issue 17, item 13).

`import workbench` used to load torch, scikit-learn, onnx and Altair, which made `--help`
take 4 s and every history verb 3-5 s. Each check runs in a fresh interpreter and looks at
what ended up in `sys.modules`, which says why a verb is slow without timing anything.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import workbench
from workbench.store import LabelStore

# The public API as it was before the imports became lazy: it must not change.
PUBLIC = ["Box", "BoxDetector", "BoxList", "BoxModel", "BundleError", "HFTokenTagger", "HistoryView",
          "LabelSet", "LabelStore", "LabelWidget", "LightHead", "Model", "MultiLabelHead", "Pool",
          "QueueItem", "SchemaVersionError", "Session", "Span", "SpanList", "SpanModel", "StoreError",
          "TokenTagger",
          "TorchClassifier", "charts",
          "datasets", "features_for", "labels_to_reach", "load_model", "logistic_regression",
          "make_learner", "models", "simulate", "strategies"]
HEAVY = ("torch", "sklearn", "scipy", "onnx", "onnxruntime", "altair", "anywidget", "ipywidgets")

# Runs one command-line invocation in-process, then reports which heavy packages it loaded.
PROBE = f"HEAVY = {HEAVY!r}\n" + """
import json, sys
from workbench import cli
try:
    code = cli.main(sys.argv[1:])
except SystemExit as exit_:  # --help
    code = exit_.code
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY))
print("HEAVY=" + json.dumps({"code": code, "heavy": heavy}))
"""


def probe(*argv) -> dict:
    result = subprocess.run([sys.executable, "-c", PROBE, *map(str, argv)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1].removeprefix("HEAVY="))


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("imports") / "store"
    store = LabelStore.open(path, annotator="ann")
    for i in range(5):
        store.append(f"i{i}", "cat")
    store.commit("five cats")
    store.append("i0", "dog", action="relabel")
    return path


def test_help_imports_no_heavy_package():
    assert probe("--help") == {"code": 0, "heavy": []}


@pytest.mark.parametrize("verb", [["log"], ["status"], ["diff"], ["diff", "HEAD"], ["blame"],
                                  ["show"], ["branch"], ["tag"]])
def test_history_verbs_import_no_heavy_package(small_store, verb):
    name, *rest = verb
    assert probe(name, small_store, *rest) == {"code": 0, "heavy": []}


def test_import_workbench_is_light_and_its_public_api_is_unchanged():
    code = f"""
import json, sys
import workbench
light = sorted({{m.split(".")[0] for m in sys.modules}} & set({list(HEAVY)!r}))
from workbench import Session, Pool, strategies
from workbench.strategies import margin
from workbench.datasets import digits
import workbench.models
assert workbench.Session is Session and workbench.strategies is strategies
assert sys.modules["workbench.strategies"] is strategies
assert workbench.models.push is sys.modules["workbench.learn.registry"].push
print(json.dumps({{"light": light, "all": sorted(workbench.__all__), "dir": "Session" in dir(workbench)}}))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report == {"light": [], "all": sorted(PUBLIC), "dir": True}


def test_every_public_name_resolves():
    for name in workbench.__all__:
        assert getattr(workbench, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        workbench.nope  # noqa: B018
