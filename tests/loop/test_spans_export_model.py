"""A spans session's model as a bundle, end to end: exported as a folder and a zip with the
label commit it learned from and its span F1, loaded back by `workbench.load_model` (here, in a
fresh Python process, and by `workbench predict`) marking exactly the session's spans, its ONNX
graph giving the tagger's token probabilities, and a bundle that is not what it says refused."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import workbench
from workbench import BundleError, Session, cli, load_model
from workbench.data.entity_texts import entities
from workbench.learn.bundle_graph import onnx_session


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A spans session on 30 labeled texts, exported once as a folder and once as a zip."""
    root = tmp_path_factory.mktemp("spans-export")
    pool, test = entities(70, n_test=25, seed=5)
    session = Session(pool, root / "store", test=test, watch=False)
    for item_id in pool.item_ids[:30]:
        session.label(item_id, pool.true_label(item_id))
    folder = session.export(root / "tagger")
    zipped = session.export(root / "tagger.zip")
    yield pool, session, folder, zipped, root
    session.close()


def test_a_spans_bundle_says_what_it_is_and_what_it_learned_from(exported):
    pool, session, folder, _, _ = exported
    config = json.loads((folder / "config.json").read_text())
    assert config["task"] == "spans" and config["classes"] == list(pool.classes)
    assert config["input"]["kind"] == "text" and config["input"]["raw_texts"] is True
    learner = config["learner"]
    assert learner["type"] == "TokenTagger" and learner["tags"][0] == "O" and len(learner["tags"]) == 7
    assert learner["features"]["version"] == 1
    assert "not in the graph" in config["outputs"]["spans"]
    training = config["training"]
    assert training["commit"] == session.store.rev("HEAD").id and training["task"] == "spans"
    assert training["n_labels"] == 30 and training["eval_on"] == "held-out test texts (25)"
    row = session.history.iloc[-1]  # the round's own scores: the same tagger, the same texts
    assert training["span_f1"] == round(row["span_f1"], 4)
    assert training["recall"] == round(row["span_recall"], 4)
    card = (folder / "README.md").read_text()
    assert "pipeline_tag: token-classification" in card and f"`{training['commit'][:12]}`" in card
    assert f"Span F1: {training['span_f1']:.1%}" in card and "| round | labels | span F1 |" in card


def test_the_loaded_model_marks_the_sessions_spans(exported):
    pool, session, folder, zipped, _ = exported
    predictor = session.rounds.model.predictor
    texts = pool.items["text"].astype(str).tolist()
    for source in (folder, zipped):
        model = load_model(source)
        assert isinstance(model, workbench.SpanModel) and model.task == "spans"
        found = model.predict_spans_with_confidence(texts)
        for position, (spans, sure) in enumerate(found):
            expected, least_sure = predictor.spans_of(position)
            assert spans == expected
            assert min(sure, default=1.0) == pytest.approx(least_sure, abs=1e-12)
    assert sum(len(spans) for spans, _ in found) > 50  # it marks names, not nothing


def test_the_onnx_graph_gives_the_taggers_token_probabilities(exported):
    pool, _, folder, _, _ = exported
    model = load_model(folder)
    texts = pool.items["text"].astype(str).tolist()[40:46]
    graph = onnx_session((folder / "model.onnx").read_bytes())
    proba, index = graph.run(["probabilities", "class_index"], {"items": model.token_features(texts)})
    expected = np.concatenate(model.token_proba(texts))
    assert proba.shape == expected.shape and np.abs(proba - expected).max() < 1e-5
    assert (index == expected.argmax(axis=1)).all()


def test_bundles_that_are_not_what_they_say_are_refused(exported, tmp_path):
    _, _, folder, _, _ = exported

    def altered(name: str, change) -> None:
        copy = tmp_path / name
        shutil.copytree(folder, copy)
        config = json.loads((copy / "config.json").read_text())
        change(config)
        (copy / "config.json").write_text(json.dumps(config))
        manifest = json.loads((copy / "manifest.json").read_text())
        import hashlib

        data = (copy / "config.json").read_bytes()
        manifest["files"]["config.json"] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        (copy / "manifest.json").write_text(json.dumps(manifest))
        return copy

    single = altered("single", lambda c: c.update(task="single"))
    with pytest.raises(BundleError, match="says task 'single' but its learner is a TokenTagger"):
        load_model(single)
    tags = altered("tags", lambda c: c["learner"].update(tags=c["learner"]["tags"][::-1]))
    with pytest.raises(BundleError, match="learner.tags"):
        load_model(tags)
    version = altered("version", lambda c: c["learner"]["features"].update(version=2))
    with pytest.raises(BundleError, match="learner.features.version is int 2"):
        load_model(version)
    changed = tmp_path / "changed"
    shutil.copytree(folder, changed)
    weights = bytearray((changed / "model.safetensors").read_bytes())
    weights[-1] ^= 1
    (changed / "model.safetensors").write_bytes(bytes(weights))
    with pytest.raises(BundleError, match="checksum mismatch for 'model.safetensors'"):
        load_model(changed)


def test_a_fresh_process_and_the_command_line_mark_the_same_spans(exported, capsys):
    pool, _, folder, zipped, root = exported
    texts = ["Minister Ivan Petrov visited Kyiv on Monday.", "Nothing to see here.",
             *pool.items["text"].astype(str).tolist()[50:55]]
    code = ("import json, sys, workbench\n"
            "m = workbench.load_model(sys.argv[1])\n"
            "found = m.predict_spans(json.loads(sys.argv[2]))\n"
            "print(json.dumps([[list(s) for s in spans] for spans in found]))\n")
    out = subprocess.run([sys.executable, "-c", code, str(zipped), json.dumps(texts)],
                         capture_output=True, text=True, check=True, timeout=120)
    here = load_model(folder).predict_spans(texts)
    assert json.loads(out.stdout) == [[list(s) for s in spans] for spans in here]
    pd.DataFrame({"item_id": [f"t{i}" for i in range(len(texts))], "text": texts}).to_csv(root / "new.csv")
    assert cli.main(["predict", str(folder), str(root / "new.csv"), "--out", str(root / "p.parquet")]) == 0
    frame = pd.read_parquet(root / "p.parquet")
    assert list(frame.columns) == ["item_id", "start", "end", "label", "text", "confidence"]
    assert len(frame) == sum(len(s) for s in here)
    first = frame.iloc[0]
    i = int(first["item_id"][1:])
    assert (first["start"], first["end"], first["label"]) == tuple(here[i][0])
    assert first["text"] == texts[i][first["start"]:first["end"]]
    assert f"spans in {len(texts)} texts" in capsys.readouterr().out


def test_wrong_input_and_wrong_starts_are_named(exported, tmp_path):
    pool, _, folder, _, _ = exported
    model = load_model(folder)
    with pytest.raises(ValueError, match="wrap it in a list"):
        model.predict_spans("Ivan Petrov")
    with pytest.raises(ValueError, match=r"texts\[1\] is int 3; expected a str"):
        model.predict_spans(["a", 3])
    with pytest.raises(ValueError, match=r"texts\[0\] holds '\\ud800' at code point 6, half of a UTF-16"):
        model.predict_spans(["Alice \ud800 Okafor"])  # was a bare UnicodeEncodeError
    with pytest.raises(ValueError, match="is a 'single' pool and the model to start from .* a 'spans' model"):
        Session(workbench.Pool.from_texts(["a b", "c d"], y=["x", "y"], embeddings=np.eye(2)),
                tmp_path / "s", start_from=folder, watch=False)
