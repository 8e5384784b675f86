"""Model bundles: what loads is exactly what was exported, and nothing else loads.

Each refusal is tested the way it would arrive: a file changed after export, a pickle
slipped in (by name, by content, as a torch.save archive), a zip whose entries climb out
of the bundle, a bundle from a newer format, items of the wrong shape or kind, a registry
name that is not there. Every message names the file or the value.
"""

from __future__ import annotations

import io
import json
import pickle
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from workbench import BundleError, Pool, datasets, load_model
from workbench.data.representation import VectorEncoder
from workbench.learn.bundle import read_bundle, write_bundle
from workbench.learn.head import LightHead
from workbench.learn.learners import TorchClassifier
from workbench.learn.model import InputSignature, Model
from workbench.learn.registry import list_models, pull, push, show


@pytest.fixture(scope="module")
def digits():
    return datasets.digits()


@pytest.fixture(scope="module")
def logreg_model(digits):
    X = digits.X.reshape(len(digits), -1)
    learner = LogisticRegression(max_iter=300).fit(X[:300], digits.y[:300])
    return Model(learner, digits.classes, InputSignature.of(digits))


def _bundle(model, path, **kw):
    return write_bundle(model, path, card="# a test model\n", training={"commit": "c0ffee"}, **kw)


def test_a_bundle_holds_the_hub_layout_and_a_manifest_of_every_file(logreg_model, tmp_path):
    path = _bundle(logreg_model, tmp_path / "b")
    assert sorted(p.name for p in path.iterdir()) == ["README.md", "config.json", "manifest.json",
                                                     "model.onnx", "model.safetensors"]
    manifest = json.loads((path / "manifest.json").read_text())
    assert set(manifest["files"]) == {"README.md", "config.json", "model.onnx", "model.safetensors"}
    assert {"workbench", "numpy", "onnx", "safetensors", "python"} <= set(manifest["written_by"])
    config = json.loads((path / "config.json").read_text())
    assert config["classes"] == list(range(10)) and config["input"]["shape"] == [8, 8]
    assert config["input"]["image_scale"] == 16.0 and config["learner"]["type"] == "LogisticRegression"
    for data in (p.read_bytes() for p in path.iterdir()):
        assert b"\x80\x04" not in data[:2] and b"\x80\x05" not in data[:2]


@pytest.mark.parametrize("learner", ["head", "logreg", "torch"])
def test_load_model_predicts_exactly_what_the_exported_model_did(learner, digits, tmp_path):
    X = digits.X
    if learner == "head":  # the default: a light head on an encoder of the pool
        encoder = VectorEncoder(dims=16)
        Z = encoder.fit_transform(X, lambda *a: None)
        fitted = LightHead().fit(Z[:200], digits.y[:200])
        model = Model(fitted, digits.classes, InputSignature.of(digits), encoder=encoder)
    elif learner == "logreg":
        fitted = LogisticRegression(max_iter=300).fit(X.reshape(len(X), -1)[:200], digits.y[:200])
        model = Model(fitted, digits.classes, InputSignature.of(digits))
    else:
        fitted = TorchClassifier(min_steps=20, max_epochs=5, n_members=2, hidden=16).fit(
            X[:200], digits.y[:200], X_unlabeled=X[200:600])
        model = Model(fitted, digits.classes, InputSignature.of(digits))
    loaded = load_model(_bundle(model, tmp_path / "b"))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(digits), model.predict(digits))
    assert loaded.classes == model.classes and type(loaded.learner) is type(fitted)


def test_a_learner_without_an_array_form_runs_from_its_onnx_graph(digits, tmp_path):
    from sklearn.ensemble import RandomForestClassifier

    X = digits.X.reshape(len(digits), -1)
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(X[:300], digits.y[:300])
    model = Model(forest, digits.classes, InputSignature.of(digits))
    loaded = load_model(_bundle(model, tmp_path / "b"))
    assert json.loads((tmp_path / "b" / "config.json").read_text())["learner"]["type"] == "onnx"
    np.testing.assert_array_equal(loaded.predict(digits), model.predict(digits))
    np.testing.assert_allclose(loaded.predict_proba(digits), model.predict_proba(digits), atol=1e-5)


@pytest.mark.parametrize("as_zip", [False, True])
def test_a_model_is_loaded_without_keeping_the_big_files_and_a_graph_read_again_is_checked_again(
        digits, tmp_path, as_zip):
    """load_model keeps neither the weights' nor the graph's bytes (a model of 344 MB of
    weights peaked at four times that); a learner that runs from its graph reads it again,
    and a graph changed in between is refused, as at the first read."""
    from sklearn.ensemble import RandomForestClassifier

    X = digits.X.reshape(len(digits), -1)
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(X[:300], digits.y[:300])
    model = Model(forest, digits.classes, InputSignature.of(digits))
    path = _bundle(model, tmp_path / ("b.zip" if as_zip else "b"), as_zip=as_zip)
    bundle = read_bundle(path, keep_files=False)
    assert sorted(bundle.files) == ["README.md", "config.json", "manifest.json"]
    np.testing.assert_array_equal(bundle.model().predict(digits), model.predict(digits))
    assert sorted(read_bundle(path).files) == ["README.md", "config.json", "manifest.json", "model.onnx",
                                               "model.safetensors"]  # a copy keeps them all
    if as_zip:
        with zipfile.ZipFile(path) as z:
            entries = {i.filename: z.read(i) for i in z.infolist()}
        graph = next(n for n in entries if n.endswith("model.onnx"))
        entries[graph] = entries[graph][:-1] + bytes([entries[graph][-1] ^ 1])
        with zipfile.ZipFile(path, "w") as z:
            for name, data in entries.items():
                z.writestr(name, data)
    else:
        data = bytearray((path / "model.onnx").read_bytes())
        data[-1] ^= 1
        (path / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="checksum mismatch for 'model.onnx'"):
        bundle.model()


def test_a_learner_that_cannot_be_exported_is_refused_at_export_not_later(digits, tmp_path):
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Homemade(ClassifierMixin, BaseEstimator):
        def fit(self, X, y):
            self.classes_ = np.unique(y)
            return self

        def predict_proba(self, X):
            return np.full((len(X), len(self.classes_)), 1 / len(self.classes_))

    model = Model(Homemade().fit(digits.X[:10], digits.y[:10]), digits.classes,
                  InputSignature.of(digits))
    with pytest.raises(BundleError, match="cannot export .*Homemade"):
        _bundle(model, tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_a_zip_bundle_loads_like_the_folder(logreg_model, digits, tmp_path):
    path = _bundle(logreg_model, tmp_path / "b.zip", as_zip=True)
    assert zipfile.is_zipfile(path)
    np.testing.assert_array_equal(load_model(path).predict_proba(digits), logreg_model.predict_proba(digits))


# -- refusals ------------------------------------------------------------------------------------
def test_a_file_changed_after_export_is_refused_by_name(logreg_model, tmp_path):
    path = _bundle(logreg_model, tmp_path / "b")
    data = bytearray((path / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 1
    (path / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="checksum mismatch for 'model.onnx'"):
        load_model(path)


@pytest.mark.parametrize("how", ["replaced weights", "extra file", "torch archive", "card"])
def test_a_pickle_anywhere_in_the_bundle_is_refused_and_never_run(logreg_model, tmp_path, how):
    import torch

    path = _bundle(logreg_model, tmp_path / "b")
    ran = tmp_path / "ran"

    class Payload:  # unpickling this would create `ran` (a guard: nothing may ever unpickle)
        def __reduce__(self):
            return (open, (str(ran), "w"))

    payload = pickle.dumps(Payload(), protocol=4)
    name = {"replaced weights": "model.safetensors", "extra file": "extra.pkl",
            "torch archive": "model.safetensors", "card": "README.md"}[how]
    if how == "torch archive":  # what torch.save writes: a zip around data.pkl
        buffer = io.BytesIO()
        torch.save({"weight": torch.zeros(2)}, buffer)
        payload = buffer.getvalue()
    (path / name).write_bytes(payload)
    if how != "extra file":
        _relist(path, name)  # re-signed, as an attacker would: checksums alone prove nothing
    with pytest.raises(BundleError, match=f"'{name}' .*holds a pickle"):
        load_model(path)
    assert not ran.exists()


def test_files_a_bundle_does_not_hold_are_refused_even_when_listed(logreg_model, tmp_path):
    path = _bundle(logreg_model, tmp_path / "b")
    (path / "notes.txt").write_text("hello")
    _relist(path, "notes.txt")
    with pytest.raises(BundleError, match="'notes.txt' .*is not a bundle file"):
        load_model(path)
    # an old-style pickle (protocol 0, plain text) where the weights belong: the strict
    # safetensors parser refuses it; nothing unpickles
    path = _bundle(logreg_model, tmp_path / "c")
    (path / "model.safetensors").write_bytes(pickle.dumps({"a": 1}, protocol=0))
    _relist(path, "model.safetensors")
    with pytest.raises(BundleError, match="model.safetensors .*is not a valid safetensors file"):
        load_model(path)


def test_a_fifo_or_an_oversized_entry_is_refused_before_it_is_read(logreg_model, tmp_path):
    import os

    path = _bundle(logreg_model, tmp_path / "b")
    os.mkfifo(path / "config.json.fifo")
    with pytest.raises(BundleError, match="'config.json.fifo' .*is not a regular file"):
        load_model(path)  # returns at once: a FIFO would block a reader forever
    folder = _bundle(logreg_model, tmp_path / "c")
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        for p in folder.iterdir():
            data = p.read_bytes()
            if p.name == "README.md":  # 200 MB of zeros, a few hundred kB compressed
                data = data + b"\0" * (200 << 20)
            z.writestr(p.name, data)
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(BundleError, match="size mismatch for 'README.md'"):
        load_model(bomb)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # kB: not inflated


def test_an_onnx_graph_that_reads_outside_the_bundle_is_refused(logreg_model, tmp_path):
    import onnx

    path = _bundle(logreg_model, tmp_path / "b")
    model = onnx.load(path / "model.onnx")
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "secret.txt"
    (path / "model.onnx").write_bytes(model.SerializeToString())
    _relist(path, "model.onnx")
    with pytest.raises(BundleError, match="stores the tensor .* in an external file"):
        load_model(path)
    model = onnx.load(_bundle(logreg_model, tmp_path / "c") / "model.onnx")
    model.graph.node[0].domain = "com.evil"
    (tmp_path / "c" / "model.onnx").write_bytes(model.SerializeToString())
    _relist(tmp_path / "c", "model.onnx")
    with pytest.raises(BundleError, match="uses the operator com.evil"):
        load_model(tmp_path / "c")


# -- external data: a graph that would make onnxruntime read a file beside the bundle -----------
SECRET = np.arange(4, dtype=np.float32)  # what a crafted graph hopes to read back


def _external(name, dtype=None):
    """A tensor whose data is in the file 'secret.bin', as onnx's save_as_external_data
    stores it: onnxruntime would read that file, relative to the working directory when the
    graph comes as bytes."""
    import onnx

    tensor = onnx.TensorProto(name=name, data_type=dtype or onnx.TensorProto.FLOAT, dims=[4],
                              data_location=onnx.TensorProto.EXTERNAL)
    tensor.external_data.add(key="location", value="secret.bin")
    return tensor


def _plant(graph, place: str) -> str:
    """Put a tensor stored in 'secret.bin' at `place` in `graph`; returns where the refusal
    must say it is."""
    import onnx
    from onnx import helper, numpy_helper

    values = numpy_helper.from_array(np.zeros(4, np.float32), "values")
    indices = numpy_helper.from_array(np.arange(4, dtype=np.int64), "indices")
    external_indices = _external("indices", onnx.TensorProto.INT64)
    out = helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT, [4])
    n = len(graph.node)
    if place == "Constant sparse_value":
        sparse = helper.make_sparse_tensor(_external("leak"), indices, [4])
        graph.node.append(helper.make_node("Constant", [], ["leak"], name="leak", sparse_value=sparse))
        return f"graph.node[{n}] 'leak'.attribute[0] 'sparse_value'.sparse_tensor.values"
    if place == "sparse_tensors attribute":
        sparse = helper.make_sparse_tensor(values, external_indices, [4])
        graph.node.append(helper.make_node("Identity", ["items"], ["leak"], name="leak", hidden=[sparse]))
        return f"graph.node[{n}] 'leak'.attribute[0] 'hidden'.sparse_tensors[0].indices"
    if place == "Constant value":
        graph.node.append(helper.make_node("Constant", [], ["leak"], name="leak", value=_external("leak")))
        return f"graph.node[{n}] 'leak'.attribute[0] 'value'.t"
    if place == "tensors attribute":
        graph.node.append(helper.make_node("Identity", ["items"], ["leak"], name="leak",
                                           hidden=[values, _external("leak")]))
        return f"graph.node[{n}] 'leak'.attribute[0] 'hidden'.tensors[1] 'leak'"
    if place == "initializer":
        graph.initializer.append(_external("leak"))
        return f"graph.initializer[{len(graph.initializer) - 1}] 'leak'"
    if place == "sparse initializer values":
        graph.sparse_initializer.append(helper.make_sparse_tensor(_external("leak"), indices, [4]))
        return "graph.sparse_initializer[0].values"
    if place == "sparse initializer indices":
        graph.sparse_initializer.append(helper.make_sparse_tensor(values, external_indices, [4]))
        return "graph.sparse_initializer[0].indices"
    if place == "If branch":  # make_node sorts attributes: else_branch, then then_branch
        leak = helper.make_node("Constant", [], ["out"], name="leak", value=_external("leak"))
        plain = helper.make_node("Constant", [], ["out"], name="plain", value=values)
        graph.node.append(helper.make_node(
            "If", ["cond"], ["branch"], name="branch",
            then_branch=helper.make_graph([leak], "then", [], [out]),
            else_branch=helper.make_graph([plain], "else", [], [out])))
        return f"graph.node[{n}] 'branch'.attribute[1] 'then_branch'.g.node[0] 'leak'.attribute[0] 'value'.t"
    if place == "Loop body":
        body = helper.make_graph([helper.make_node("Identity", ["cond"], ["cond_out"])], "body", [], [out])
        body.sparse_initializer.append(helper.make_sparse_tensor(values, external_indices, [4]))
        graph.node.append(helper.make_node("Loop", ["", "cond"], ["looped"], name="loop", body=body))
        return f"graph.node[{n}] 'loop'.attribute[0] 'body'.g.sparse_initializer[0].indices"
    raise AssertionError(place)


def _plant_in_bundle(path, place: str) -> str:
    import onnx

    model = onnx.load_model_from_string((path / "model.onnx").read_bytes())
    where = _plant(model.graph, place)
    (path / "model.onnx").write_bytes(model.SerializeToString())
    _relist(path, "model.onnx")
    return where


PLACES = ["Constant sparse_value", "sparse_tensors attribute", "Constant value", "tensors attribute",
          "initializer", "sparse initializer values", "sparse initializer indices", "If branch",
          "Loop body"]


@pytest.mark.parametrize("place", PLACES)
def test_external_data_anywhere_in_the_graph_is_refused_by_where_it_is(logreg_model, tmp_path,
                                                                       monkeypatch, place):
    # beside the bundle and in the working directory (inside the bundle folder it would be
    # refused as a file the manifest does not list, before the graph is looked at)
    SECRET.tofile(tmp_path / "secret.bin")
    monkeypatch.chdir(tmp_path)
    path = _bundle(logreg_model, tmp_path / "b")
    where = _plant_in_bundle(path, place)
    with pytest.raises(BundleError) as refused:
        load_model(path)
    message = str(refused.value)
    assert message.startswith(f"model.onnx in {str(path)!r} stores the tensor "), message
    assert f" at {where} in an external file ('secret.bin')" in message, message


def test_a_start_from_bundle_with_external_data_is_refused(logreg_model, digits, tmp_path, monkeypatch):
    from workbench.loop.session import Session

    SECRET.tofile(tmp_path / "secret.bin")
    monkeypatch.chdir(tmp_path)
    path = _bundle(logreg_model, tmp_path / "b")
    where = _plant_in_bundle(path, "Constant sparse_value")
    with pytest.raises(BundleError, match=f"at {re.escape(where)} in an external file"):
        Session(digits, tmp_path / "store", watch=False, start_from=path)


def test_a_graph_run_from_bytes_never_reads_a_file_in_the_working_directory(tmp_path, monkeypatch):
    """The second wall, behind check_graph: the session itself has nowhere to read from."""
    import onnx
    from onnx import helper

    from workbench.learn.bundle import OnnxLearner

    SECRET.tofile(tmp_path / "secret.bin")
    monkeypatch.chdir(tmp_path)
    sparse = helper.make_sparse_tensor(_external("leak"),
                                       onnx.numpy_helper.from_array(np.arange(4, dtype=np.int64)), [4])
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["leak"], sparse_value=sparse),
         helper.make_node("Add", ["items", "leak"], ["probabilities"])], "leaky",
        [helper.make_tensor_value_info("items", onnx.TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("probabilities", onnx.TensorProto.FLOAT, ["N", 4])])
    leaky = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    with pytest.raises(Exception, match="secret.bin"):  # onnxruntime's own refusal
        OnnxLearner(leaky.SerializeToString(), [0, 1, 2, 3])


def _relist(path, name):
    """Re-sign the manifest as an attacker would: checksums alone do not make a file safe."""
    import hashlib

    manifest = json.loads((path / "manifest.json").read_text())
    data = (path / name).read_bytes()
    manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (path / "manifest.json").write_text(json.dumps(manifest))


def test_a_file_the_manifest_does_not_list_is_refused(logreg_model, tmp_path):
    path = _bundle(logreg_model, tmp_path / "b")
    (path / "notes.txt").write_text("hello")
    with pytest.raises(BundleError, match="'notes.txt' .*is not in the manifest"):
        load_model(path)


@pytest.mark.parametrize("entry", ["../evil.txt", "/etc/evil.txt", "b/../../evil.txt", "C:/evil.txt"])
def test_a_zip_entry_that_leaves_the_bundle_is_refused(logreg_model, tmp_path, entry):
    folder = _bundle(logreg_model, tmp_path / "b")
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as z:
        for p in folder.iterdir():
            z.writestr(p.name, p.read_bytes())
        z.writestr(entry, "owned")
    with pytest.raises(BundleError, match=f"zip entry '{entry}'"):
        load_model(path)
    assert not (tmp_path.parent / "evil.txt").exists()


def test_a_bundle_from_a_newer_format_version_is_refused(logreg_model, tmp_path):
    path = _bundle(logreg_model, tmp_path / "b")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["format_version"] = 99
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="format version 99; this workbench reads versions up to 2"):
        load_model(path)


def test_items_of_the_wrong_shape_or_kind_are_refused_with_what_was_expected(logreg_model, tmp_path):
    loaded = load_model(_bundle(logreg_model, tmp_path / "b"))
    with pytest.raises(ValueError, match=r"expected a Pool, an array of shape \(N, 8, 8\).*got an array "
                                         r"of shape \(3, 28, 28\)"):
        loaded.predict(np.zeros((3, 28, 28)))
    with pytest.raises(ValueError, match="holds text items; this model reads image items"):
        loaded.predict(Pool.from_texts(["a b", "c d", "e f"], embeddings=np.zeros((3, 64))))
    with pytest.raises(ValueError, match="NaN"):
        loaded.predict(np.full((1, 8, 8), np.nan))
    with pytest.raises(ValueError, match="cannot read image 'missing.png'"):
        loaded.predict(["missing.png"])


def test_raw_image_files_are_read_as_the_pool_read_them(logreg_model, digits, tmp_path):
    from PIL import Image

    paths = []
    for i in range(5):
        p = tmp_path / f"{i}.png"
        Image.fromarray((digits.X[i] * 16).astype(np.uint8)).save(p)
        paths.append(p)
    loaded = load_model(_bundle(logreg_model, tmp_path / "b"))
    # read exactly as the pool's arrays are; and the loaded model is the saved one, to float32
    # rounding (with the libraries of 2026-12-05 the two differ in the last bit of a few values)
    np.testing.assert_array_equal(loaded.predict_proba(paths), loaded.predict_proba(digits.X[:5]))
    np.testing.assert_allclose(loaded.predict_proba(paths), logreg_model.predict_proba(digits.X[:5]),
                               rtol=1e-5, atol=1e-7)


def test_table_rows_are_read_by_their_column_names(tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(120, 3)), columns=["height", "weight", "age"])
    df["label"] = np.where(df["height"] > 0, "tall", "short")
    pool = Pool.from_dataframe(df, label_column="label")
    learner = LogisticRegression().fit(pool.X, pool.y)
    model = Model(learner, pool.classes, InputSignature.of(pool))
    loaded = load_model(_bundle(model, tmp_path / "b"))
    shuffled = df[["age", "height", "weight"]]  # column order does not matter, names do
    np.testing.assert_array_equal(loaded.predict(shuffled), model.predict(pool.X))
    with pytest.raises(ValueError, match=r"lack the feature columns \['weight'\]"):
        loaded.predict(df[["height", "age"]])


# -- the registry ----------------------------------------------------------------------------------
def test_the_registry_numbers_versions_and_resolves_names(logreg_model, digits, tmp_path):
    registry = tmp_path / "registry"
    bundle = _bundle(logreg_model, tmp_path / "b")
    assert push(bundle, "digits", registry=registry) == "digits@1"
    assert push(bundle, "digits", registry=registry) == "digits@2"
    table = list_models(registry=registry)
    assert table["ref"].tolist() == ["digits@1", "digits@2"] and (table["classes"] == 10).all()
    assert show("digits@1", registry=registry).startswith("# a test model")
    for ref in ("digits@1", "digits", "digits@latest"):
        np.testing.assert_array_equal(load_model(ref, registry=registry).predict_proba(digits),
                                      logreg_model.predict_proba(digits))
    out = pull("digits@2", tmp_path / "copy", registry=registry)
    assert read_bundle(out).config["classes"] == list(range(10))
    with pytest.raises(BundleError, match="model 'digits' has no version 9 .*versions: 1, 2"):
        load_model("digits@9", registry=registry)
    with pytest.raises(BundleError, match="no model named 'cats' .*it holds digits"):
        load_model("cats@1", registry=registry)


def test_a_safetensors_header_that_looks_like_a_pickle_header_still_loads(tmp_path):
    """A header of 640 bytes is stored as 80 02 00 .. : the first two bytes of a pickle."""
    from safetensors.numpy import save

    from workbench.learn.bundle import _refuse_pickle

    for n in range(1, 1600):
        data = save({"t" * n: np.zeros(1, np.float32)})
        if data[0] == 0x80 and 2 <= data[1] <= 5:
            _refuse_pickle("b", "model.safetensors", data)  # does not raise
            break
    else:
        pytest.fail("no header length of the form 0x0?80 was produced")


def test_bundles_and_registry_versions_are_readable_by_colleagues(logreg_model, tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        folder = _bundle(logreg_model, tmp_path / "b")
        zipped = _bundle(logreg_model, tmp_path / "b.zip", as_zip=True)
        version = push(folder, "digits", registry=tmp_path / "registry")
    finally:
        os.umask(old)
    pushed = tmp_path / "registry" / "digits" / version.split("@")[1]
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    assert stat.S_IMODE(pushed.stat().st_mode) == 0o755
    assert stat.S_IMODE(zipped.stat().st_mode) == 0o644


def test_no_items_give_no_rows(logreg_model, tmp_path):
    loaded = load_model(_bundle(logreg_model, tmp_path / "b"))
    assert loaded.predict_proba(np.zeros((0, 8, 8))).shape == (0, 10)
    assert loaded.predict(np.zeros((0, 8, 8))).shape == (0,)


@pytest.mark.parametrize("change", ["unknown setting", "object setting", "oversized network",
                                    "vectoriser opens files"])
def test_settings_in_config_json_cannot_reach_a_constructor_unchecked(digits, tmp_path, change):
    if change == "vectoriser opens files":
        texts = ["rain and wind", "sun and heat", "goal and match", "snow and ice"] * 5
        pool = Pool.from_texts(texts, ["w", "w", "s", "w"] * 5)
        from workbench.data.text import TextVectorizer

        vectorizer = TextVectorizer()
        pool.X[:] = vectorizer.fit_transform(texts)
        learner = LogisticRegression().fit(pool.X, pool.y)
        model = Model(learner, pool.classes, InputSignature.of(pool, text=vectorizer))
    else:
        fitted = TorchClassifier(min_steps=5, max_epochs=2, n_members=1, hidden=8).fit(
            digits.X[:50], digits.y[:50])
        model = Model(fitted, digits.classes, InputSignature.of(digits))
    path = _bundle(model, tmp_path / "b")
    config = json.loads((path / "config.json").read_text())
    if change == "unknown setting":
        config["learner"]["params"]["__class__"] = "os.system"
    elif change == "object setting":
        config["learner"]["params"]["hidden"] = [1, 2]
    elif change == "oversized network":
        config["learner"]["params"]["hidden"] = 100_000_000
    else:
        config["preprocessing"][0]["words"]["input"] = "filename"
    (path / "config.json").write_text(json.dumps(config))
    _relist(path, "config.json")
    message = {"unknown setting": "unknown setting '__class__'", "object setting": "plain value",
               "oversized network": "do not fit the network", "vectoriser opens files":
               "vectoriser settings differ"}[change]
    with pytest.raises(BundleError, match=message):
        load_model(path)


def test_whole_numbers_for_an_image_model_are_raw_pixels(logreg_model, digits, tmp_path):
    loaded = load_model(_bundle(logreg_model, tmp_path / "b"))
    raw = np.rint(digits.X[:20] * 16).astype(np.uint8)  # the digits' own 0-16 values
    np.testing.assert_allclose(loaded.predict_proba(raw), logreg_model.predict_proba(digits.X[:20]),
                               atol=1e-6)
    assert loaded.predict([]).shape == (0,)


# -- config.json: every malformed field is refused by name -------------------------------------
def _set(*keys, value):
    """A change to config.json: the field at `keys` set to `value`."""
    def change(config):
        for key in keys[:-1]:
            config = config[key]
        config[keys[-1]] = value
    return change


def _drop(*keys):
    def change(config):
        for key in keys[:-1]:
            config = config[key]
        del config[keys[-1]]
    return change


MALFORMED = {
    "classes is an object": (_set("classes", value={"0": 0}),
                             r": classes is \{'0': 0\}; expected a list of distinct class names"),
    "a class is a list": (_set("classes", 0, value=[0]),
                          r": classes\[0\] is \[0\]; expected a class name"),
    "input is a list": (_set("input", value=[]), r": input is \[\]; expected a JSON object"),
    "input has no shape": (_drop("input", "shape"), r" has no input\.shape; expected a list of sizes"),
    "a size is a string": (_set("input", "shape", 0, value="8"),
                           r": input\.shape\[0\] is '8'; expected a whole number from 1"),
    "a size is true": (_set("input", "shape", 0, value=True),
                       r": input\.shape\[0\] is True; expected a whole number from 1"),
    "an unknown kind": (_set("input", "kind", value="video"),
                        r": input\.kind is 'video'; expected one of 'image', "),
    "image_scale is a string": (_set("input", "image_scale", value="16"),
                                r": input\.image_scale is '16'; expected a positive number or null"),
    "feature_names is a number": (_set("input", "feature_names", value=3),
                                  r": input\.feature_names is 3; expected a list of column names"),
    "preprocessing is an object": (_set("preprocessing", value={}),
                                   r": preprocessing is \{\}; expected a list of steps"),
    "a step is a list": (_set("preprocessing", value=[[]]),
                         r": preprocessing\[0\] is \[\]; expected a JSON object"),
    "an unknown step": (_set("preprocessing", value=[{"step": "shell"}]),
                        r": preprocessing\[0\]\.step is 'shell'; expected one of 'representation', "),
    "a step with no kind": (_set("preprocessing", value=[{"method": "standardised"}]),
                            r" has no preprocessing\[0\]\.step; expected one of "),
    "an encoder value is an object": (
        _set("preprocessing", value=[{"step": "representation", "method": "standardised",
                                      "values": {"dims": {"a": 1}}}]),
        r": preprocessing\[0\]\.values\.dims is \{'a': 1\}; expected a string, a number"),
    "learner is a string": (_set("learner", value="LogisticRegression"),
                            r": learner is 'LogisticRegression'; expected a JSON object"),
    "learner type is a list": (_set("learner", "type", value=["onnx"]),
                               r": learner\.type is \['onnx'\]; expected one of 'LightHead', "),
    "learner params is a list": (_set("learner", "params", value=[]),
                                 r": learner\.params is \[\]; expected a JSON object"),
    "n_features_in is a string": (_set("learner", "n_features_in", value="64"),
                                  r": learner\.n_features_in is '64'; expected a whole number"),
    "learner classes is an object": (_set("learner", "classes", value={}),
                                     r": learner\.classes is \{\}; expected a list of distinct class names"),
    "classes repeat a name": (_set("classes", value=[0, 0, 2, 3, 4, 5, 6, 7, 8, 9]),
                              r": classes is \[0, 0, 2, .*\]; expected a list of distinct class names"),
    "input dtype is object": (_set("input", "dtype", value="object"),
                              r": input\.dtype is 'object'; expected one of 'float32', 'float64'"),
    "learner knows another class": (_set("learner", "classes", value=[*range(9), 99]),
                                    r"does not describe a model .*knows classes .*99.* not among"),
    "training is a list": (_set("training", value=[]), r": training is \[\]; expected a JSON object"),
    "round is a string": (_set("training", "round", value="1"),
                          r": training\.round is '1'; expected a whole number from 0 or null"),
    "started_from is a list": (_set("training", "started_from", value=[]),
                               r": training\.started_from is \[\]; expected a JSON object or null"),
    "a commit deep in started_from": (
        _set("training", "started_from", value={"started_from": {"commit": 5}}),
        r": training\.started_from\.started_from\.commit is 5; expected a string or null"),
    "format_version is true": (_set("format_version", value=True),
                               r" has format_version True; expected a whole number from 1"),
}


@pytest.mark.parametrize("change, message", MALFORMED.values(), ids=list(MALFORMED))
def test_a_malformed_config_is_refused_naming_the_field(logreg_model, tmp_path, change, message):
    path = _bundle(logreg_model, tmp_path / "b")
    config = json.loads((path / "config.json").read_text())
    change(config)
    (path / "config.json").write_text(json.dumps(config))
    _relist(path, "config.json")
    with pytest.raises(BundleError, match=r"config\.json (in|or) .*" + message):
        load_model(path)


# Plain JSON Schema would let these by (8.0 is an "integer" to it, and NaN passes every bound):
# bundle_config narrows "integer" to whole numbers as written and checks a "finite" format.
BEYOND_JSON_SCHEMA = {
    "a size is 8.0": (_set("input", "shape", 0, value=8.0),
                      r": input\.shape\[0\] is 8\.0; expected a whole number from 1"),
    "image_scale is NaN": (_set("input", "image_scale", value=float("nan")),
                           r": input\.image_scale is nan; expected a positive number or null"),
    "image_scale is infinite": (_set("input", "image_scale", value=float("inf")),
                                r": input\.image_scale is inf; expected a positive number or null"),
}


@pytest.mark.parametrize("change, message", BEYOND_JSON_SCHEMA.values(), ids=list(BEYOND_JSON_SCHEMA))
def test_config_json_refuses_what_plain_json_schema_accepts(logreg_model, tmp_path, change, message):
    test_a_malformed_config_is_refused_naming_the_field(logreg_model, tmp_path, change, message)


def test_config_json_schema_is_a_valid_draft_7_schema_of_draft_7_keywords():
    import fastjsonschema

    from workbench.learn.bundle_config import CONFIG_SCHEMA

    # the Draft 7 meta-schema as jsonschema ships it (nbformat installs it); only its file is read
    specifications = pytest.importorskip("jsonschema_specifications")
    meta = json.loads((Path(specifications.__file__).parent / "schemas" / "draft7" /
                       "metaschema.json").read_text())
    fastjsonschema.compile(meta)(CONFIG_SCHEMA)
    # a validator ignores a keyword it does not know ("$defs", "prefixItems" of 2020-12), and
    # the meta-schema lets any through: every one used must be one of Draft 7's
    assert set(_keywords(CONFIG_SCHEMA)) <= set(meta["properties"]) | {"$schema"}


def _keywords(schema: dict):
    yield from schema
    for key, value in schema.items():
        if key in ("properties", "definitions"):
            for inner in value.values():
                yield from _keywords(inner)
        elif key in ("allOf", "anyOf", "oneOf"):
            for inner in value:
                yield from _keywords(inner)
        elif isinstance(value, dict) and key not in ("const", "enum", "default"):
            yield from _keywords(value)  # items, additionalProperties, not, if, then, else


def test_checking_a_config_imports_no_jsonschema(logreg_model, tmp_path):
    # `import jsonschema` takes about 2 s where jupyterlab's format extras are installed
    path = _bundle(logreg_model, tmp_path / "b")
    probe = ("import json, sys\n"
             "from workbench.learn.bundle_config import check_config\n"
             "check_config('b', json.loads(sys.argv[1]))\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] == 'jsonschema'))")
    result = subprocess.run([sys.executable, "-c", probe, (path / "config.json").read_text()],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]"]


@pytest.mark.parametrize("name, depth", [("config.json", 10_000), ("config.json", 200),
                                         ("manifest.json", 10_000)])
def test_json_nested_too_deep_is_refused(logreg_model, tmp_path, name, depth):
    path = _bundle(logreg_model, tmp_path / "b")
    text = (path / name).read_text()
    (path / name).write_text(text[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}")
    if name != "manifest.json":
        _relist(path, name)
    with pytest.raises(BundleError, match=rf"{name} in .* is nested more than 100 levels deep"):
        load_model(path)
