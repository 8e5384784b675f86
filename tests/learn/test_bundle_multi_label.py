"""Bundles of multi-label models: a session whose items have any subset of the classes
exports, loads and predicts sets the way a single-label one does classes, and the graph in
the bundle gives each class its own probability."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from workbench import BundleError, Pool, Session, cli, datasets, load_model
from workbench.data.tasks import LabelSet
from workbench.learn.bundle import write_bundle
from workbench.learn.learner_state import learner_state, restore_learner
from workbench.learn.model import InputSignature, Model
from workbench.learn.multilabel import MultiLabelHead
from workbench.learn.onnx_graph import to_onnx


def _sets(targets):
    return [[int(t), "odd" if t % 2 else "even"] + (["big"] if t >= 5 else []) for t in targets]


@pytest.fixture(scope="module")
def pool():
    d = load_digits()
    y = _sets(d.target)
    return Pool.from_arrays(d.images[:400], y[:400], X_test=d.images[1000:1300], y_test=y[1000:1300],
                            task="multi_label")


@pytest.fixture(scope="module")
def exported(pool, tmp_path_factory):
    base = tmp_path_factory.mktemp("ml-export")
    session = Session(pool, base / "store", watch=False, seed=0)
    for q in session.peek(60):
        session.label(q, pool.true_label(q.item_id))
    session.retrain()
    folder = session.export(base / "ml-model")
    zipped = session.export(base / "ml-model.zip")
    yield session, folder, zipped
    session.close()


def test_a_multi_label_bundle_loads_as_the_sessions_model(exported, pool):
    session, folder, zipped = exported
    expected_proba = session.model.predict_proba(pool.X)
    expected = session.model.predict(pool.X)
    assert all(isinstance(s, LabelSet) for s in expected) and len(expected) == len(pool)
    assert any(len(s) > 1 for s in expected)  # sets, not one class per item
    assert not np.allclose(expected_proba.sum(axis=1), 1)  # each class its own probability
    for path in (folder, zipped):
        loaded = load_model(path)
        assert loaded.task == "multi_label" and type(loaded.learner).__name__ == "MultiLabelHead"
        np.testing.assert_allclose(loaded.predict_proba(pool.X), expected_proba, atol=1e-5)
        predicted = loaded.predict(pool.X)
        assert [list(s) for s in predicted] == [list(s) for s in expected]
        assert all(isinstance(s, LabelSet) for s in predicted)
        assert loaded.predict(pool.X[:0]) == []


def test_the_onnx_graph_gives_each_class_its_sigmoid(exported, pool):
    _, folder, _ = exported
    loaded = load_model(folder)
    probabilities, class_index = ort.InferenceSession(str(folder / "model.onnx")).run(
        ["probabilities", "class_index"], {"items": pool.X.astype(np.float32)})
    proba = loaded.predict_proba(pool.X)
    np.testing.assert_allclose(probabilities, proba, atol=1e-4)  # _check_agreement's tolerance
    assert np.abs(probabilities - proba).max() < 1e-5  # and what it is in practice
    assert (class_index == proba.argmax(axis=1)).mean() > 0.99


def test_config_and_card_say_multi_label(exported):
    session, folder, _ = exported
    config = json.loads((folder / "config.json").read_text())
    assert config["task"] == "multi_label"
    assert config["learner"]["type"] == "MultiLabelHead"
    assert config["learner"]["params"]["threshold"] == 0.5
    assert config["classes"] == [*range(10), "big", "even", "odd"]
    training = config["training"]
    assert training["task"] == "multi_label" and training["eval_on"].startswith("held-out test split")
    assert 0 < training["micro_f1"] <= 1 and 0 <= training["hamming_loss"] < 1
    assert training["micro_f1"] == round(session.history["micro_f1"].iloc[-1], 4)
    card = (folder / "README.md").read_text()
    assert "Micro-F1" in card and "Hamming loss" in card and "whole set" in card
    assert "Confusion matrix" not in card
    assert "| class | labels that include it |" in card
    n_big = sum("big" in json.loads(v) for v in session.store.current_labels()["label"])
    assert f"| big | {n_big} |" in card
    assert "| class | have it | given it | recall | precision |" in card


def test_the_cards_lines_run_as_written(exported, pool, tmp_path, monkeypatch):
    _, folder, _ = exported
    card = (folder / "README.md").read_text()
    code = card.split("```python\n")[2].split("```")[0]
    monkeypatch.chdir(folder)
    printed = []
    monkeypatch.setattr("builtins.print", printed.append)
    exec(code, {"X": pool.X[:5]})
    assert printed[0] == [list(s) for s in load_model(folder).predict(pool.X[:5])]


def test_workbench_predict_writes_a_list_of_classes_per_row(exported, pool, tmp_path):
    session, folder, _ = exported
    np.savez(tmp_path / "items.npz", X=pool.X[:50], item_ids=np.asarray(pool.item_ids[:50], dtype=str))
    out = tmp_path / "predictions.parquet"
    assert cli.main(["predict", str(folder), str(tmp_path / "items.npz"), "--out", str(out)]) == 0
    frame = pd.read_parquet(out)
    assert frame["item_id"].tolist() == [str(i) for i in pool.item_ids[:50]]
    expected = session.model.predict(pool.X[:50])
    assert [list(v) for v in frame["predicted"]] == [[str(c) for c in s] for s in expected]
    proba = session.model.predict_proba(pool.X[:50])
    np.testing.assert_allclose(frame[[f"p_{c}" for c in session.class_names]].to_numpy(), proba,
                               atol=1e-6)
    np.testing.assert_allclose(frame["confidence"], np.maximum(proba, 1 - proba).min(axis=1), atol=1e-6)


def test_the_head_round_trips_through_arrays_and_its_own_graph():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 6)).astype(np.float32)
    Y = (X[:, :3] + rng.normal(scale=0.3, size=(80, 3)) > 0).astype(int)
    head = MultiLabelHead(classes=["a", "b", "c"], C=3.0, threshold=0.4).fit(X, Y)
    config, tensors = learner_state(head)
    assert "classes" not in config["params"] and config["classes"] == ["a", "b", "c"]
    rebuilt = restore_learner(json.loads(json.dumps(config)), tensors)
    np.testing.assert_array_equal(rebuilt.predict_proba(X), head.predict_proba(X))
    assert rebuilt.threshold == 0.4 and rebuilt.C == 3.0
    model = Model(head, ["a", "b", "c"], InputSignature(kind="vector", shape=(6,)))
    graph = to_onnx(model).SerializeToString()
    got = ort.InferenceSession(graph).run(["probabilities"], {"items": X})[0]
    np.testing.assert_allclose(got, model.predict_proba(X), atol=1e-6)
    with pytest.raises(ValueError, match="do not fit"):
        restore_learner(config, {**tensors, "coef": tensors["coef"][:2]})


def _resign(path, name: str, data: bytes) -> None:
    (path / name).write_bytes(data)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (path / "manifest.json").write_text(json.dumps(manifest))


def test_a_single_label_bundle_loads_as_before(tmp_path):
    digits = datasets.digits()
    X = digits.X.reshape(len(digits), -1)
    learner = LogisticRegression(max_iter=300).fit(X[:300], digits.y[:300])
    model = Model(learner, digits.classes, InputSignature.of(digits))
    assert model.task == "single"
    path = write_bundle(model, tmp_path / "b", card="# single\n")
    config = json.loads((path / "config.json").read_text())
    assert config["task"] == "single"
    loaded = load_model(path)
    assert loaded.task == "single"
    np.testing.assert_array_equal(loaded.predict(digits.X[:20]), model.predict(digits.X[:20]))
    # a bundle from before tasks (no "task" in config.json) is single-label
    del config["task"]
    _resign(path, "config.json", json.dumps(config).encode())
    old = load_model(path)
    assert old.task == "single" and isinstance(old.predict(digits.X[:3]), np.ndarray)
    np.testing.assert_array_equal(old.predict(digits.X[:20]), model.predict(digits.X[:20]))


def test_a_task_that_does_not_match_the_learner_is_refused(exported, tmp_path):
    import shutil

    _, folder, _ = exported
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    config = json.loads((copy / "config.json").read_text())
    config["task"] = "single"
    _resign(copy, "config.json", json.dumps(config).encode())
    with pytest.raises(BundleError, match="says task 'single' but its learner is a MultiLabelHead"):
        load_model(copy)
    config["task"] = "spans"
    _resign(copy, "config.json", json.dumps(config).encode())
    with pytest.raises(BundleError, match="task"):
        load_model(copy)
