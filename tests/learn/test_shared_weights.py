"""A bundle whose ONNX graph keeps its large tensors in model.safetensors, once
(workbench.learn.graph_weights): written when that saves enough, run by onnxruntime from the
bundle folder, loaded here from the verified weights, and every reference a crafted graph
could make that is not exactly a tensor of the weights refused by name."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest

from workbench import BundleError, datasets, load_model
from workbench.learn import graph_weights
from workbench.learn.bundle import read_bundle, write_bundle
from workbench.learn.bundle_graph import onnx_session
from workbench.learn.learners import TorchClassifier
from workbench.learn.model import InputSignature, Model
from workbench.learn.registry import pull, push


@pytest.fixture(scope="module")
def digits():
    return datasets.digits()


@pytest.fixture(scope="module")
def torch_model(digits):
    X = digits.X
    fitted = TorchClassifier(min_steps=20, max_epochs=5, n_members=2, hidden=32).fit(
        X[:200], digits.y[:200], X_unlabeled=X[200:600])
    return Model(fitted, digits.classes, InputSignature.of(digits))


@pytest.fixture
def sharing(monkeypatch):
    """Share whatever can be shared: the test network is far below the 16 MiB of a real one."""
    monkeypatch.setattr(graph_weights, "SHARED_MIN_TOTAL", 0)


def _write(model, path, **kw):
    return write_bundle(model, path, card="# a test model\n", **kw)


def _references(path):
    import onnx

    graph = onnx.load_model_from_string((path / "model.onnx").read_bytes())
    return [t for t in graph.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]


def _versions(path):
    return (json.loads((path / "manifest.json").read_text())["format_version"],
            json.loads((path / "config.json").read_text())["format_version"])


def test_a_graph_keeps_its_large_tensors_in_the_weights_and_runs_from_the_folder(
        torch_model, digits, tmp_path, sharing):
    import onnxruntime as ort

    path = _write(torch_model, tmp_path / "b")
    shared = _references(path)
    assert shared and {e.value for t in shared for e in t.external_data if e.key == "location"} == {
        "model.safetensors"}
    assert _versions(path) == (2, 2)
    expected = torch_model.predict_proba(digits.X)
    # load_model: the network from the weights; Bundle.onnx: the graph filled in from them
    np.testing.assert_array_equal(load_model(path).predict_proba(digits.X), expected)
    for keep_files in (True, False):
        graph = read_bundle(path, keep_files=keep_files).onnx
        got = onnx_session(graph).run(["probabilities"], {"items": digits.X.astype(np.float32)})[0]
        np.testing.assert_allclose(got, expected, atol=1e-5)
    # onnxruntime alone, as the model card shows it, reads the tensors from model.safetensors
    session = ort.InferenceSession(str(path / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(["probabilities"], {"items": digits.X.astype(np.float32)})[0]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # a zip, and a copy through the registry, load the same
    zipped = _write(torch_model, tmp_path / "b.zip", as_zip=True)
    np.testing.assert_array_equal(load_model(zipped).predict_proba(digits.X), expected)
    ref = push(zipped, "digits", registry=tmp_path / "registry")
    copy = pull(ref, tmp_path / "copy", registry=tmp_path / "registry")
    np.testing.assert_array_equal(load_model(copy).predict_proba(digits.X), expected)


def test_a_small_model_keeps_its_graph_whole_and_its_format_version(torch_model, tmp_path):
    path = _write(torch_model, tmp_path / "b")
    assert not _references(path) and _versions(path) == (1, 1)
    # the graph runs on its own, copied anywhere
    (tmp_path / "alone").mkdir()
    (tmp_path / "alone" / "model.onnx").write_bytes((path / "model.onnx").read_bytes())
    onnx_session((tmp_path / "alone" / "model.onnx").read_bytes())


def _relist(path, name):
    manifest = json.loads((path / "manifest.json").read_text())
    data = (path / name).read_bytes()
    manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (path / "manifest.json").write_text(json.dumps(manifest))


def _said(tensor, key, value):
    for entry in tensor.external_data:
        if entry.key == key:
            entry.value = value
            return
    tensor.external_data.add(key=key, value=value)


def _get(tensor, key):
    return next(e.value for e in tensor.external_data if e.key == key)


def _shift(tensor, by):
    said = {e.key: e.value for e in tensor.external_data}
    _said(tensor, "offset", str(int(said["offset"]) + by))


CRAFTED = {
    "a path to the weights": (lambda t: _said(t, "location", "../b/model.safetensors"),
                              "in an external file ('../b/model.safetensors')"),
    "an absolute path": (lambda t: _said(t, "location", "/etc/passwd"),
                         "in an external file ('/etc/passwd')"),
    "a checksum beside the offset": (lambda t: _said(t, "checksum", "0" * 40),
                                     "(this one says ['checksum', 'length', 'location', 'offset'])"),
    "an offset in hex": (lambda t: _said(t, "offset", "0x80"), "at offset '0x80', length"),
    "a negative length": (lambda t: _said(t, "length", "-4"), "expected whole numbers"),
    "bytes shifted by one float": (lambda t: _shift(t, 4), "which are not one tensor of it"),
    "bytes past the end": (lambda t: _shift(t, 1 << 40), "which are not one tensor of it"),
    "another type": (lambda t: setattr(t, "data_type", 6), "of ONNX type 6 and"),  # INT32
    "fewer elements": (lambda t: t.dims.__setitem__(0, t.dims[0] - 1), "which it is not"),
    "its data twice": (lambda t: setattr(t, "raw_data", b"\0" * 4),
                       "its data twice: in model.safetensors and in its own raw_data"),
    "its data twice, typed": (lambda t: t.float_data.extend([1.0]), "and in its own float_data"),
    "not marked external": (lambda t: setattr(t, "data_location", 0), "without marking its data as external"),
    "a location twice": (lambda t: t.external_data.add(key="location", value="model.safetensors"),
                         "['location'] more than once"),
    "an offset of 5,000 digits": (lambda t: _said(t, "offset", "9" * 5000), "expected whole numbers"),
    "an offset with a leading zero": (lambda t: _said(t, "offset", "0" + _get(t, "offset")),
                                      "expected whole numbers"),
    # the element count is never multiplied out past the bytes: 100,000 dimensions of 2**62
    # used to take minutes of Python big-integer products before anything refused them
    "100,000 huge dimensions": (lambda t: t.dims.extend([2**62] * 100_000), "dimensions; at most 32"),
    "dimensions beyond the bytes": (lambda t: t.dims.extend([2**62] * 4), "and more than"),
}


def test_a_tensor_referred_to_twice_is_refused(torch_model, tmp_path, sharing):
    """Filled in, ten thousand references to one tensor of 300 MB would make a graph of 3 TB."""
    import onnx

    path = _write(torch_model, tmp_path / "b")
    graph = onnx.load_model_from_string((path / "model.onnx").read_bytes())
    tensor = next(t for t in graph.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL)
    for i in range(3):
        copy = graph.graph.initializer.add()
        copy.CopyFrom(tensor)
        copy.name = f"copy{i}"
    (path / "model.onnx").write_bytes(graph.SerializeToString())
    _relist(path, "model.onnx")
    expected = f"for both '{tensor.name}' and 'copy0'; each tensor may be referred to once"
    with pytest.raises(BundleError, match=re.escape(expected)):
        load_model(path)


@pytest.mark.parametrize("craft", sorted(CRAFTED))
def test_a_reference_that_is_not_exactly_a_tensor_of_the_weights_is_refused(
        torch_model, tmp_path, sharing, craft):
    import onnx

    change, message = CRAFTED[craft]
    path = _write(torch_model, tmp_path / "b")
    graph = onnx.load_model_from_string((path / "model.onnx").read_bytes())
    tensor = next(t for t in graph.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL)
    change(tensor)
    (path / "model.onnx").write_bytes(graph.SerializeToString())
    _relist(path, "model.onnx")  # re-signed, as an attacker would: checksums do not make it safe
    for keep_files in (True, False):
        with pytest.raises(BundleError, match=re.escape(message)) as refused:
            read_bundle(path, keep_files=keep_files)
        assert str(refused.value).startswith(f"model.onnx in {str(path)!r} "), refused.value
    with pytest.raises(BundleError):
        load_model(path)
