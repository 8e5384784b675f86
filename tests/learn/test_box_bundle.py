"""Boxes bundles without a session: a BoxDetector written and read back exactly (images
resized to max_side, colour images, image files), and every config.json or weights file that
does not describe one refused by name, while bundles of classes load as before."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from PIL import Image
from safetensors.numpy import load, save
from sklearn.linear_model import LogisticRegression

from workbench import BoxDetector, BundleError, datasets, load_model
from workbench.data.box_digits import digit_scenes
from workbench.learn.box_model import BoxModel
from workbench.learn.bundle import write_bundle
from workbench.learn.bundle_graph import onnx_session
from workbench.learn.model import InputSignature, Model


@pytest.fixture(scope="module")
def scenes():
    images, boxes = digit_scenes(24, seed=5)
    return images, boxes


@pytest.fixture(scope="module")
def box_model(scenes):
    images, boxes = scenes
    detector = BoxDetector(labels=[str(d) for d in range(10)], steps=20).fit_boxes(images[:16], boxes[:16])
    signature = InputSignature(kind="image", shape=(128, 128), image_scale=255.0)
    return BoxModel(detector, detector.labels_, signature, info={"round": 1})


def _write(model, path, items):
    return write_bundle(model, path, card="# boxes\n", training={"commit": "c0ffee"}, check_items=items)


def _relist(path, name):
    manifest = json.loads((path / "manifest.json").read_text())
    data = (path / name).read_bytes()
    manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (path / "manifest.json").write_text(json.dumps(manifest))


def _same(a, b):
    assert a == b
    np.testing.assert_allclose([s for x in a for s in x.scores], [s for x in b for s in x.scores], atol=1e-5)


def test_a_written_detector_reads_back_and_its_files_are_read_as_the_pool_was(box_model, scenes, tmp_path):
    images = scenes[0]
    loaded = load_model(_write(box_model, tmp_path / "b", images[:4]))
    assert loaded.info == {"commit": "c0ffee", "bundle": str(tmp_path / "b")}
    _same(loaded.predict_boxes(images[16:]), box_model.predict_boxes(images[16:]))
    # image files: 8-bit, divided by the pool's image_scale (255) as its loader did
    pixels = np.rint(images[16:20] * 255).astype(np.uint8)
    paths = []
    for i, image in enumerate(pixels):
        Image.fromarray(image, mode="L").save(tmp_path / f"{i}.png")
        paths.append(tmp_path / f"{i}.png")
    _same(loaded.predict_boxes(paths), box_model.predict_boxes(pixels.astype(np.float32) / 255))
    _same(loaded.predict_boxes(pixels), loaded.predict_boxes(paths))  # whole numbers: raw pixels


@pytest.mark.parametrize("case", ["resized to max_side", "colour"])
def test_resized_and_colour_images_agree_with_their_graph(scenes, tmp_path, case):
    images, boxes = scenes
    if case == "colour":
        images = np.repeat(images[..., None], 3, axis=3) * np.array([1.0, 0.8, 0.6], np.float32)
    max_side = 48 if case.startswith("resized") else 256
    detector = BoxDetector(labels=[str(d) for d in range(10)], steps=10, max_side=max_side)
    detector.fit_boxes(images[:8], boxes[:8])
    model = BoxModel(detector, detector.labels_, InputSignature(kind="image", shape=images.shape[1:]))
    path = _write(model, tmp_path / "b", images[:4])  # the graph agreed within 1e-4, or nothing is written
    loaded = load_model(path)
    _same(loaded.predict_boxes(images[8:]), model.predict_boxes(images[8:]))
    maps = onnx_session((path / "model.onnx").read_bytes()).run(["maps"], {"images": images[8:]})[0]
    np.testing.assert_allclose(maps, model.maps(images[8:]), atol=1e-4)


def test_a_graph_that_disagrees_is_never_written(box_model, scenes, tmp_path, monkeypatch):
    import workbench.learn.box_model as box_model_module

    real = box_model_module.network_maps
    monkeypatch.setattr(box_model_module, "network_maps", lambda *a, **k: real(*a, **k) + 1e-3)
    with pytest.raises(BundleError, match="the ONNX graph disagrees with the detector's network by 0.001"):
        _write(box_model, tmp_path / "b", scenes[0][:2])
    assert not (tmp_path / "b").exists()


def _tensor(path, name, value):
    tensors = load((path / "model.safetensors").read_bytes())
    tensors[name] = value
    (path / "model.safetensors").write_bytes(save(tensors))
    _relist(path, "model.safetensors")


CRAFTED = {
    "a boxes task with a classifier": (lambda c: c["learner"].update(type="LogisticRegression"),
                                       r"has no learner\.classes|says task 'boxes' but its learner is a "),
    "a single-label task with a detector": (lambda c: c.update(task="single"),
                                            "says task 'single' but its learner is a BoxDetector, the "
                                            "learner of a 'boxes' model"),
    "an unknown setting": (lambda c: c["learner"]["params"].update(command="rm -rf /"),
                           "unknown setting 'command' for BoxDetector"),
    "a setting of an object": (lambda c: c["learner"]["params"].update(lr={"a": 1}), "plain value"),
    "a threshold above 1": (lambda c: c["learner"]["params"].update(threshold=2),
                            r"learner\.params\.threshold is 2; expected a number from 0 to 1"),
    "a threshold of NaN": (lambda c: c["learner"]["params"].update(threshold=float("nan")),
                           r"learner\.params\.threshold is nan; expected a number from 0 to 1"),
    "no max_side": (lambda c: c["learner"]["params"].pop("max_side"), r"has no learner\.params\.max_side"),
    "a huge network": (lambda c: c["learner"]["params"].update(width=10 ** 9),
                       r"learner\.params\.width is 1000000000; a BoxDetector .* at most 4096"),
    "a network wider than its weights": (lambda c: c["learner"]["params"].update(width=64),
                                         "do not fit the network"),
    "a label of no class": (lambda c: c["learner"].update(labels=["cat"]), "among the classes"),
    "three channels of gray images": (lambda c: c["learner"].update(n_channels=3), "reads 3 channels"),
    "a zero std": (lambda c: c["learner"].update(std=0), r"learner\.std is 0; expected a positive number"),
    "a text input": (lambda c: c["input"].update(kind="text"), "a boxes model reads images"),
    "an unknown task": (lambda c: c.update(task="video"), r"task is 'video'; expected one of 'single'"),
}


@pytest.mark.parametrize("change, message", CRAFTED.values(), ids=list(CRAFTED))
def test_a_crafted_config_is_refused_by_name(box_model, tmp_path, change, message):
    path = _write(box_model, tmp_path / "b", None)
    config = json.loads((path / "config.json").read_text())
    change(config)
    (path / "config.json").write_text(json.dumps(config))
    _relist(path, "config.json")
    with pytest.raises(BundleError, match=message):
        load_model(path)


@pytest.mark.parametrize("name, value, message", [
    ("net.1.weight", np.zeros((3, 3), np.float32), r"has 1\.weight of shape \(3, 3\)"),
    ("net.1.weight", None, r"lacks \['1\.weight'\]"),
    ("net.extra", np.zeros(2, np.float32), r"has unexpected \['extra'\]"),
    ("learner.coef", np.zeros(2, np.float32), r"holds \['learner\.coef'\], which no part of a boxes model"),
])
def test_weights_that_do_not_fit_the_network_are_refused(box_model, tmp_path, name, value, message):
    path = _write(box_model, tmp_path / "b", None)
    if value is None:
        tensors = load((path / "model.safetensors").read_bytes())
        del tensors[name]
        (path / "model.safetensors").write_bytes(save(tensors))
        _relist(path, "model.safetensors")
    else:
        _tensor(path, name, value)
    with pytest.raises(BundleError, match=message):
        load_model(path)


def test_an_unfitted_detector_or_an_encoder_is_refused_at_export(box_model, tmp_path):
    unfitted = BoxModel(BoxDetector(), ["0"], box_model.signature)
    with pytest.raises(BundleError, match="BoxDetector is not fitted"):
        _write(unfitted, tmp_path / "a", None)
    with pytest.raises(BundleError, match="embed_encoder is for a model that reads a pretrained"):
        write_bundle(box_model, tmp_path / "b", card="", embed_encoder=True)


def test_a_single_label_bundle_still_loads_as_a_model(tmp_path):
    digits = datasets.digits()
    X = digits.X.reshape(len(digits), -1)
    model = Model(LogisticRegression(max_iter=200).fit(X[:200], digits.y[:200]), digits.classes,
                  InputSignature.of(digits))
    path = write_bundle(model, tmp_path / "b", card="# single\n", check_items=digits.X[:10])
    config = json.loads((path / "config.json").read_text())
    del config["task"]  # as a bundle from before tasks
    (path / "config.json").write_text(json.dumps(config))
    _relist(path, "config.json")
    loaded = load_model(path)
    assert isinstance(loaded, Model) and loaded.task == "single"
    np.testing.assert_allclose(loaded.predict_proba(digits.X[200:220]),
                               model.predict_proba(digits.X[200:220]), atol=1e-6)
