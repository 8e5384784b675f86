"""A boxes session's model as a bundle, end to end: exported as a folder and a zip with the
label commit it learned from and its mAP@0.5, loaded back by `workbench.load_model` (here, in
a fresh Python process, and by `workbench predict`) predicting exactly the session's boxes,
its ONNX graph giving the network's maps, and a file changed after export refused."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import workbench
from workbench import BoxDetector, BoxList, BoxModel, BundleError, Session, cli, load_model
from workbench.data.box_digits import box_digits
from workbench.learn.bundle_graph import onnx_session


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A boxes session on 30 labeled digit scenes (a short detector: 120 steps), exported once
    as a folder and once as a zip."""
    root = tmp_path_factory.mktemp("boxes-export")
    pool, test = box_digits(60, n_test=20, seed=3)
    session = Session(pool, root / "store", test=test, watch=False,
                      learner=BoxDetector(labels=pool.classes, steps=120))
    for item_id in pool.item_ids[:30]:
        session.label(item_id, pool.true_label(item_id))
    folder = session.export(root / "detector")
    zipped = session.export(root / "detector.zip")
    yield pool, session, folder, zipped, root
    session.close()


def test_a_boxes_bundle_says_what_it_is_and_what_it_learned_from(exported):
    pool, session, folder, _, _ = exported
    config = json.loads((folder / "config.json").read_text())
    assert config["task"] == "boxes" and config["classes"] == [str(d) for d in range(10)]
    assert config["input"]["kind"] == "image" and config["input"]["shape"] == [128, 128]
    learner = config["learner"]
    assert learner["type"] == "BoxDetector" and learner["n_channels"] == 1
    assert {"threshold", "max_side", "max_boxes", "width", "steps", "labels"} <= set(learner["params"])
    assert learner["params"]["steps"] == 120 and learner["params"]["max_side"] == 256
    assert set(config["outputs"]) == {"maps", "boxes"} and "not in the graph" in config["outputs"]["boxes"]
    training = config["training"]
    assert training["commit"] == session.store.rev("HEAD").id and training["task"] == "boxes"
    assert training["n_labels"] == 30 and training["eval_on"] == "held-out test images (20)"
    row = session.history.iloc[-1]  # the round's own scores: the same detector, the same images
    assert training["map50"] == round(row["box_map50"], 4)
    assert training["recall"] == round(row["box_recall"], 4)
    card = (folder / "README.md").read_text()
    assert "pipeline_tag: object-detection" in card and f"`{training['commit'][:12]}`" in card
    assert f"mAP@0.5: {training['map50']:.1%}" in card and "Precision:" in card and "recall:" in card
    assert "| round | labels | mAP@0.5 | precision | recall |" in card


def test_the_loaded_model_predicts_the_sessions_boxes(exported):
    pool, session, folder, zipped, _ = exported
    detector = session.model.detector
    X = pool.X[30:50]
    for source in (folder, zipped):
        model = load_model(source)
        assert isinstance(model, BoxModel) and model.task == "boxes" and model.classes == pool.classes
        assert model.info["commit"] == session.store.rev("HEAD").id and model.info["bundle"] == str(source)
        predicted = model.predict_boxes(X)
        assert all(isinstance(boxes, BoxList) for boxes in predicted) and len(predicted) == 20
        suggested = [session.model.boxes_of(p) for p in range(30, 50)]
        assert predicted == [boxes for boxes, _ in suggested]  # what the session suggests, box for box
        assert [min(b.scores, default=1.0) for b in predicted] == pytest.approx([s for _, s in suggested],
                                                                                 abs=1e-5)
        found, expected = model.detections(X), detector.predict_boxes(X)
        assert [[d[:5] for d in boxes] for boxes in found] == [[d[:5] for d in boxes] for boxes in expected]
        np.testing.assert_allclose([d[5] for b in found for d in b], [d[5] for b in expected for d in b],
                                   atol=1e-5)
    # a Pool, or raw 0-255 pixels... of a pool whose scale is known; and no images, no boxes
    model = load_model(folder)
    assert model.predict_boxes(pool.subset(np.arange(30, 50))) == predicted
    assert model.predict_boxes(np.zeros((0, 128, 128), np.float32)) == []


def test_the_onnx_graph_gives_the_networks_maps(exported):
    pool, session, folder, _, _ = exported
    from workbench.learn.box_detector import _decode

    model = load_model(folder)
    X = pool.X[40:52]
    maps = onnx_session((folder / "model.onnx").read_bytes()).run(["maps"], {"images": X})[0]
    assert maps.shape == (12, 15, 16, 16)
    np.testing.assert_allclose(maps, model.maps(X), atol=1e-4)
    # decoded the detector's way, the graph's maps give its boxes
    import torch

    scores, classes, corners = _decode(torch.from_numpy(maps), model.detector.max_boxes, 128, 128)
    kept = scores.numpy() >= model.threshold
    expected = session.model.detector.predict_boxes(X, model.threshold)
    assert kept.sum(axis=1).tolist() == [len(b) for b in expected]


def test_wrong_images_are_refused_with_what_was_expected(exported):
    pool, _, folder, _, _ = exported
    model = load_model(folder)
    for bad, words in [(pool.X[0], r"shape \(N, 128, 128\).*got an array of shape \(128, 128\)"),
                       (pool.X[:2, :64], r"got an array of shape \(2, 64, 128\)"),
                       (np.array([["a"]]), "got ndarray of <U1"),
                       (workbench.datasets.digits(), "holds image items.*shape \\(8 x 8\\)|shape \\(N, 128")]:
        with pytest.raises(ValueError, match=words):
            model.predict_boxes(bad)
    with pytest.raises(ValueError, match="threshold must be a number from 0 to 1, got 2"):
        model.predict_boxes(pool.X[:2], threshold=2)
    # floats of raw pixels read as [0, 1] light up every cell: refused, not junk boxes at 1.0
    with pytest.raises(ValueError, match=r"float images with values from 0 to 255; this model reads "
                                         r"floats in \[0, 1\]"):
        model.predict_boxes(np.clip(pool.X[:2] * 255, 0, 255))


def test_a_file_changed_after_export_is_refused(exported):
    _, _, folder, _, root = exported
    import shutil

    copy = root / "changed"
    shutil.copytree(folder, copy)
    weights = bytearray((copy / "model.safetensors").read_bytes())
    weights[-1] ^= 1
    (copy / "model.safetensors").write_bytes(bytes(weights))
    with pytest.raises(BundleError, match="checksum mismatch for 'model.safetensors'"):
        load_model(copy)


def test_a_fresh_process_and_the_command_line_predict_the_same_boxes(exported, capsys):
    pool, session, folder, zipped, root = exported
    np.savez(root / "images.npz", X=pool.X[30:40], item_ids=np.asarray(pool.item_ids[30:40], dtype=str))
    code = ("import json, sys, numpy as np, workbench\n"
            "m = workbench.load_model(sys.argv[1])\n"
            "X = np.load(sys.argv[2])['X']\n"
            "found = m.predict_boxes(X)\n"
            "print(json.dumps([[list(b) + [s] for b, s in zip(bl, bl.scores)] for bl in found]))\n")
    out = subprocess.run([sys.executable, "-c", code, str(zipped), str(root / "images.npz")],
                         capture_output=True, text=True, check=True, timeout=120)
    there = json.loads(out.stdout)
    here = load_model(folder).predict_boxes(pool.X[30:40])
    assert [[b[:5] for b in image] for image in there] == [[list(b) for b in image] for image in here]
    # workbench predict: one row per box
    assert cli.main(["predict", str(folder), str(root / "images.npz"), "--out", str(root / "p.parquet")]) == 0
    frame = pd.read_parquet(root / "p.parquet")
    assert list(frame.columns) == ["item_id", "x", "y", "w", "h", "label", "score"]
    assert len(frame) == sum(len(b) for b in here)
    first = next(i for i, b in enumerate(here) if len(b))
    row = frame[frame["item_id"] == pool.item_ids[30 + first]].iloc[0]
    assert (row["x"], row["y"], row["w"], row["h"], row["label"]) == tuple(here[first][0])
    assert "boxes in 10 images" in capsys.readouterr().out


def test_a_boxes_bundle_is_no_start_for_a_session_of_classes(exported, tmp_path):
    _, _, folder, _, _ = exported
    single = workbench.Pool.from_arrays(np.random.default_rng(0).random((20, 128, 128), dtype=np.float32),
                                        y=["a", "b"] * 10)
    with pytest.raises(ValueError, match="is a 'single' pool and the model to start from .* a 'boxes' model"):
        Session(single, tmp_path / "s", start_from=folder, watch=False)
