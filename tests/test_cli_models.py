"""`workbench export|predict|models push|list|show|pull`, run in-process on real stores."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from workbench import cli
from workbench.cli import load_data
from workbench.data.datasets import digits
from workbench.data.pool import Pool
from workbench.learn.bundle import load_model
from workbench.learn.learners import logistic_regression
from workbench.loop.session import Session

WORDS = {"sports": ["goal", "match", "team", "score", "league", "coach", "striker", "referee"],
         "food": ["pasta", "recipe", "bake", "garlic", "sauce", "dinner", "chef", "flavour"],
         "weather": ["rain", "storm", "sunny", "forecast", "wind", "cloudy", "snow", "humid"]}


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def label_from_queue(session: Session, truth, n: int) -> None:
    """Label what the session serves, as a person at the widget would (audit slots too, so
    the export measures accuracy on them)."""
    for _ in range(n):
        item = session.next()
        session.label(item, truth[item.position])


def synthetic_texts(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    classes = rng.choice(sorted(WORDS), size=n)
    texts = [" ".join(rng.choice(WORDS[c], size=5)) for c in classes]
    return pd.DataFrame({"text": texts, "label": classes})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A digits store whose session trained one round on 40 labels, the probabilities that
    model gave over the pool, and a bundle of it exported with the command line."""
    root = tmp_path_factory.mktemp("cli-models")
    pool = digits()
    session = Session(pool, root / "store", watch=False)
    label_from_queue(session, pool.y, 40)
    session.retrain()
    proba = session.model.predict_proba(pool.X)
    session.close()
    assert cli.main(["export", str(root / "store"), "--out", str(root / "bundle")]) == 0
    return pool, root, proba, root / "bundle"


@pytest.fixture(scope="module")
def text_bundle(tmp_path_factory):
    """A text model exported from a store of 120 short texts of three topics."""
    root = tmp_path_factory.mktemp("cli-models-text")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_TEXT_MODEL", "tfidf")  # the offline vectoriser, on any machine
        synthetic_texts(120, seed=0).to_csv(root / "texts.csv", index=False)
        data = ["--data", root / "texts.csv", "--label-column", "label", "--text-column", "text"]
        pool = load_data(str(root / "texts.csv"), "label", "text")
        session = Session(pool, root / "store", watch=False)
        label_from_queue(session, pool.y, 30)
        session.close()  # no round trained: export trains one
        assert cli.main([str(a) for a in ["export", root / "store", "--out", root / "bundle",
                                          *data]]) == 0
    return root / "bundle"


def test_export_writes_the_sessions_model(trained, tmp_path, capsys):
    pool, root, proba, _ = trained
    code, out, _ = run(capsys, "export", root / "store", "--out", tmp_path / "b", "--name", "digits")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith(f"exported bundle to {tmp_path / 'b'} (") and "MB)" in lines[0]
    model = load_model(tmp_path / "b")
    assert lines[1] == (f"trained on commit {model.info['commit'][:7]} of main: "
                        f"{model.info['n_labels']} training labels, round 1, LightHead")
    assert model.info["eval_on"].startswith("random audit sample")  # the queue's audit slots
    assert lines[2] == f"accuracy {model.info['accuracy']:.4f} on the {model.info['eval_on']}"
    np.testing.assert_allclose(model.predict_proba(pool.X), proba, atol=1e-5)

    code, out, _ = run(capsys, "export", root / "store", "--out", tmp_path / "b.zip", "--zip")
    assert code == 0 and out.startswith(f"exported zip to {tmp_path / 'b.zip'}")
    assert (tmp_path / "b.zip").is_file()
    np.testing.assert_allclose(load_model(tmp_path / "b.zip").predict_proba(pool.X), proba, atol=1e-5)

    code, _, err = run(capsys, "export", root / "store", "--out", tmp_path / "b")
    assert code == 2 and "already exists" in err
    assert run(capsys, "export", root / "store", "--out", tmp_path / "b", "--overwrite")[0] == 0


def test_export_says_why_there_is_no_model(tmp_path, capsys):
    pool = digits()
    session = Session(pool, tmp_path / "store", watch=False)
    session.label_many({i: 3 for i in pool.item_ids[:4]})
    session.close()
    code, _, err = run(capsys, "export", tmp_path / "store", "--out", tmp_path / "b")
    assert code == 2 and err.startswith("workbench: error: ")
    assert "4 labels of 1 class(es)" in err and "at least 2 classes" in err
    assert not (tmp_path / "b").exists()
    code, _, err = run(capsys, "export", tmp_path / "nowhere", "--out", tmp_path / "b")
    assert code == 2 and f"not a label store: {tmp_path / 'nowhere'}" in err
    assert not (tmp_path / "nowhere").exists()


def test_export_needs_no_data_flag_when_the_store_knows_its_pool(tmp_path, capsys):
    """A store labeled in a notebook on a folder of images: export rebuilds the pool from
    what the session recorded, so `workbench export STORE --out B` needs nothing else."""
    pool = digits()
    picked = np.concatenate([np.flatnonzero(pool.y == d)[:30] for d in (3, 8)])
    for position in picked:
        folder = tmp_path / "images" / str(pool.y[position])
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (pool.X[position] * 16).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{pool.item_ids[position]}.png")
    images = Pool.from_folder(tmp_path / "images")
    session = Session(images, tmp_path / "store", learner=logistic_regression(), watch=False)
    label_from_queue(session, images.y, 20)
    session.close()
    code, out, err = run(capsys, "export", tmp_path / "store", "--out", tmp_path / "b",
                         "--learner", "logreg")
    assert code == 0, err
    assert out.startswith(f"exported bundle to {tmp_path / 'b'}")
    assert load_model(tmp_path / "b").classes == ["3", "8"]


def test_export_of_a_pool_built_in_memory_names_the_missing_flag(tmp_path, capsys):
    pool = digits()
    arrays = Pool.from_arrays(pool.X[:200], pool.y[:200], item_ids=pool.item_ids[:200])
    session = Session(arrays, tmp_path / "store", learner=logistic_regression(), watch=False)
    label_from_queue(session, arrays.y, 20)
    session.close()
    code, _, err = run(capsys, "export", tmp_path / "store", "--out", tmp_path / "b")
    assert code == 2 and "does not record where its pool came from" in err
    assert "pass --data" in err and not (tmp_path / "b").exists()


def test_predict_without_data_predicts_the_pool_the_model_learned_on(trained, tmp_path, capsys):
    pool, root, proba, bundle = trained
    code, out, err = run(capsys, "predict", bundle, "--out", tmp_path / "p.parquet")
    assert code == 0, err
    assert out.startswith(f"predicted {len(pool)} items in ")
    frame = pd.read_parquet(tmp_path / "p.parquet")
    assert frame["item_id"].tolist() == pool.item_ids.tolist()
    np.testing.assert_allclose(frame[[f"p_{c}" for c in range(10)]].to_numpy(), proba, atol=1e-5)
    # a store folder as DATA: the pool that store labels
    code, _, err = run(capsys, "predict", bundle, root / "store", "--out", tmp_path / "q.parquet")
    assert code == 0, err
    assert len(pd.read_parquet(tmp_path / "q.parquet")) == len(pool)


def test_predict_images_from_a_folder_and_an_npz(trained, tmp_path, capsys):
    pool, _, _, bundle = trained
    model = load_model(bundle)
    picked = np.arange(0, 1797, 30)  # 60 items
    for k, position in enumerate(picked):
        folder = tmp_path / "images" / ("a" if k % 2 else "b/deeper")  # read recursively
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (pool.X[position] * 16).astype(np.uint8)  # the original 0-16 values
        Image.fromarray(pixels).save(folder / f"{pool.item_ids[position]}.png")
    (tmp_path / "images" / "notes.txt").write_text("not an image")

    code, out, err = run(capsys, "predict", bundle, tmp_path / "images", "--out",
                         tmp_path / "p.parquet", "--batch", 7)
    assert code == 0, err
    assert err.startswith("workbench: warning: skipped 1 file that is not an image under ")
    assert ": notes.txt (images end in" in err
    assert out.startswith("predicted 60 items in ") and "items/s" in out
    frame = pd.read_parquet(tmp_path / "p.parquet")
    assert list(frame.columns) == ["item_id", "predicted", "confidence",
                                   *[f"p_{c}" for c in range(10)]]
    assert "b/deeper/digit-0000.png" in set(frame["item_id"])
    ids = frame["item_id"].str.rsplit("/", n=1).str[-1].str.removesuffix(".png")
    expected = model.predict(pool.X[pool.positions(ids)])
    assert frame["predicted"].tolist() == [str(c) for c in expected]
    probabilities = frame[[f"p_{c}" for c in range(10)]].to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(frame["confidence"], probabilities.max(axis=1))

    # features as X, and raw pixels (what the pool was made from), give the same answers
    np.savez(tmp_path / "features.npz", X=pool.X[picked], item_ids=pool.item_ids[picked].to_numpy(str))
    np.savez(tmp_path / "pixels.npz", X=(pool.X[picked] * 16).astype(np.uint8))
    for name in ("features", "pixels"):
        code, _, err = run(capsys, "predict", bundle, tmp_path / f"{name}.npz", "--out",
                           tmp_path / f"{name}.parquet")
        assert code == 0, err
        frame = pd.read_parquet(tmp_path / f"{name}.parquet")
        assert frame["predicted"].tolist() == [str(c) for c in model.predict(pool.X[picked])]
    assert frame["item_id"].iloc[:2].tolist() == ["00", "01"]


def test_predict_texts_with_the_models_vectoriser(text_bundle, tmp_path, capsys):
    new = synthetic_texts(40, seed=1).rename(columns={"text": "body"})
    new.insert(0, "item_id", [f"t{i}" for i in range(40)])
    new.to_parquet(tmp_path / "new.parquet")
    code, _, err = run(capsys, "predict", text_bundle, tmp_path / "new.parquet",
                       "--out", tmp_path / "p.parquet")
    assert code == 2 and "no column 'text'" in err and "--text-column" in err
    code, out, err = run(capsys, "predict", text_bundle, tmp_path / "new.parquet",
                         "--text-column", "body", "--out", tmp_path / "p.parquet")
    assert code == 0, err
    frame = pd.read_parquet(tmp_path / "p.parquet")
    assert frame["item_id"].tolist() == new["item_id"].tolist()
    assert list(frame.columns[3:]) == ["p_food", "p_sports", "p_weather"]
    model = load_model(text_bundle)
    assert frame["predicted"].tolist() == [str(c) for c in model.predict(new["body"].tolist())]
    assert (frame["predicted"] == new["label"]).mean() >= 0.9  # the topics are easy
    code, _, err = run(capsys, "predict", text_bundle, tmp_path, "--out", tmp_path / "q.parquet")
    assert code == 2 and "is a folder; this model reads text items" in err
    new.loc[[3, 7], "body"] = None
    new.to_parquet(tmp_path / "gaps.parquet")
    code, _, err = run(capsys, "predict", text_bundle, tmp_path / "gaps.parquet",
                       "--text-column", "body", "--out", tmp_path / "q.parquet")
    assert code == 2 and ("column 'body' of gaps.parquet holds 2 missing values: item 't3' "
                          "(missing), item 't7' (missing); expected a text in every row") in err


def test_registry_round_trip(trained, tmp_path, capsys):
    pool, _, proba, bundle = trained
    registry = tmp_path / "reg"
    code, out, _ = run(capsys, "models", "list", "--registry", registry)
    assert code == 0 and out.strip() == f"no models in {registry}"
    assert run(capsys, "models", "push", bundle, "digits", "--registry", registry)[1].strip() == "digits@1"
    assert run(capsys, "models", "push", bundle, "digits", "--registry", registry)[1].strip() == "digits@2"
    code, out, _ = run(capsys, "models", "list", "--registry", registry)
    rows = out.splitlines()
    assert code == 0 and rows[0].split()[:4] == ["name", "version", "ref", "kind"]
    assert [r.split()[2] for r in rows[1:]] == ["digits@1", "digits@2"]
    code, out, _ = run(capsys, "models", "show", "digits@2", "--registry", registry)
    assert code == 0 and "## What it learned from" in out and "labels used in training" in out

    code, out, _ = run(capsys, "models", "pull", "digits@1", "--out", tmp_path / "pulled",
                       "--registry", registry)
    assert code == 0 and out.strip() == f"pulled digits@1 to {tmp_path / 'pulled'}"
    for model in (load_model(tmp_path / "pulled"), load_model("digits@1", registry=registry)):
        np.testing.assert_allclose(model.predict_proba(pool.X), proba, atol=1e-5)
    np.savez(tmp_path / "x.npz", X=pool.X[:5])
    code, _, err = run(capsys, "predict", "digits@2", tmp_path / "x.npz", "--registry", registry,
                       "--out", tmp_path / "p.parquet")
    assert code == 0, err
    assert len(pd.read_parquet(tmp_path / "p.parquet")) == 5

    code, _, err = run(capsys, "predict", "digits@9", tmp_path / "x.npz", "--registry", registry,
                       "--out", tmp_path / "p.parquet")
    assert code == 2 and "model 'digits' has no version 9" in err and "versions: 1, 2" in err
    code, _, err = run(capsys, "models", "show", "nope@1", "--registry", registry)
    assert code == 2 and "no model named 'nope'" in err and "it holds digits" in err


def test_predict_refuses_what_does_not_fit(trained, tmp_path, capsys):
    pool, _, _, bundle = trained
    np.savez(tmp_path / "flat.npz", X=pool.X[:5].reshape(5, 64))
    code, _, err = run(capsys, "predict", bundle, tmp_path / "flat.npz", "--out", tmp_path / "p.parquet")
    assert code == 2 and err.startswith("workbench: error: flat.npz holds X of shape (5, 64)")
    assert "(N, 8, 8)" in err
    pd.DataFrame({"text": ["a"]}).to_csv(tmp_path / "t.csv", index=False)
    code, _, err = run(capsys, "predict", bundle, tmp_path / "t.csv", "--out", tmp_path / "p.parquet")
    assert code == 2 and "a folder of images or a .npz with X" in err

    tampered = tmp_path / "tampered"
    shutil.copytree(bundle, tampered)
    graph = bytearray((tampered / "model.onnx").read_bytes())
    graph[len(graph) // 2] ^= 0xFF
    (tampered / "model.onnx").write_bytes(bytes(graph))
    code, _, err = run(capsys, "predict", tampered, tmp_path / "flat.npz", "--out", tmp_path / "p.parquet")
    assert code == 2 and "checksum mismatch for 'model.onnx'" in err
    code, _, err = run(capsys, "models", "push", tampered, "digits", "--registry", tmp_path / "reg")
    assert code == 2 and "checksum mismatch" in err and not (tmp_path / "reg" / "digits" / "1").exists()
    assert not (tmp_path / "p.parquet").exists()


def test_predict_refuses_a_bundle_whose_graph_reads_a_file_beside_it(trained, tmp_path, capsys,
                                                                     monkeypatch):
    """A Constant node's sparse_value stored as external data 'secret.bin': onnxruntime
    would read it from the working directory. The bundle is re-signed, as an attacker
    would, so only the graph check stands in the way."""
    import hashlib
    import json

    import onnx
    from onnx import helper, numpy_helper

    pool, _, _, bundle = trained
    crafted = tmp_path / "crafted"
    shutil.copytree(bundle, crafted)
    graph = onnx.load_model_from_string((crafted / "model.onnx").read_bytes())
    secret = onnx.TensorProto(name="leak", data_type=onnx.TensorProto.FLOAT, dims=[4],
                              data_location=onnx.TensorProto.EXTERNAL)
    secret.external_data.add(key="location", value="secret.bin")
    sparse = helper.make_sparse_tensor(secret, numpy_helper.from_array(np.arange(4)), [4])
    graph.graph.node.append(helper.make_node("Constant", [], ["leak"], name="leak", sparse_value=sparse))
    data = graph.SerializeToString()
    (crafted / "model.onnx").write_bytes(data)
    manifest = json.loads((crafted / "manifest.json").read_text())
    manifest["files"]["model.onnx"] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (crafted / "manifest.json").write_text(json.dumps(manifest))
    np.arange(4, dtype=np.float32).tofile(tmp_path / "secret.bin")
    monkeypatch.chdir(tmp_path)
    np.savez(tmp_path / "items.npz", X=pool.X[:5])

    code, _, err = run(capsys, "predict", crafted, tmp_path / "items.npz", "--out", tmp_path / "p.parquet")
    assert code == 2, err
    assert (f"stores the tensor 'leak' at graph.node[{len(graph.graph.node) - 1}] 'leak'.attribute[0] "
            "'sparse_value'.sparse_tensor.values in an external file ('secret.bin')") in err
    assert not (tmp_path / "p.parquet").exists()
