"""Pretrained encoders (workbench.data.pretrained): the real loading code, on small models
made here (a random torch network, a model2vec model of random vectors saved as a Hugging
Face cache entry or a folder, a tiny random BERT for sentence-transformers). timm,
torchvision and open_clip are not installable beside this CPU torch: here only their "how to
fetch it" errors are tested; tests/data/test_vision_encoders.py loads each of them where they
are installed."""

from __future__ import annotations

import importlib.util
import json
import shutil

import numpy as np
import pytest
import torch

from workbench import Pool, Session, load_model
from workbench.data import representation as R
from workbench.data.feature_space import Representation
from workbench.data.pretrained import EncoderUnavailable, PretrainedEncoder, pretrained
from workbench.learn.bundle import BundleError

WORDS = ["[UNK]", "[PAD]", "a", "the", "cat", "dog", "pet", "stock", "market", "shares", "fell", "price"]


def tiny_net(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.ReLU(),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())


def image_pool(n: int = 40, shape=(20, 20), seed: int = 0) -> Pool:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.random((n, *shape)).astype(np.float32) * 0.5 + 0.5 * y.reshape(-1, *[1] * len(shape))
    return Pool.from_arrays(X.astype(np.float32), y)


def save_model2vec(folder, seed: int = 0):
    pytest.importorskip("model2vec")  # the dev extra installs it
    from model2vec import StaticModel
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    vectors = np.random.default_rng(seed).normal(size=(len(WORDS), 16)).astype(np.float32)
    model = StaticModel(vectors, tokenizer)
    model.save_pretrained(folder)
    return model


def hf_cache_entry(hub, repo_id: str, source) -> None:
    """`source`'s files as the Hugging Face cache holds a downloaded model: refs/main names a
    snapshot folder with the files."""
    repo = hub / f"models--{repo_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(source, repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)


def text_pool(n: int = 40) -> Pool:
    rng = np.random.default_rng(0)
    pets, money = ["a cat", "the dog", "a pet dog", "the cat pet"], ["stock market fell", "shares fell",
                                                                     "the price fell", "market price"]
    return Pool.from_texts([str(rng.choice(pets if i % 2 == 0 else money)) for i in range(n)],
                           [i % 2 for i in range(n)])


@pytest.fixture(autouse=True)
def _caches(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "wbcache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))


# -- a torch module ----------------------------------------------------------------------------
def test_a_module_encodes_an_image_pool_batched_as_unbatched():
    pool = image_pool()
    encoder = pretrained(tiny_net(), size=16)
    features = encoder.encode(pool.X)
    assert features.shape == (40, 8) and features.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1, atol=1e-5)
    one_by_one = np.concatenate([encoder.encode(pool.X[i:i + 1]) for i in range(len(pool))])
    np.testing.assert_allclose(one_by_one, features, atol=1e-5)


def test_images_get_three_channels_the_models_size_and_its_normalisation():
    encoder = pretrained(tiny_net(), size=(16, 12))
    x = encoder.prepare(torch.ones(2, 8, 8))
    assert tuple(x.shape) == (2, 3, 16, 12)
    expected = (1 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])  # ImageNet's
    np.testing.assert_allclose(x[0, :, 5, 5].numpy(), expected, rtol=1e-5)
    rgba = encoder.prepare(torch.rand(1, 8, 8, 4))
    assert tuple(rgba.shape) == (1, 3, 16, 12)


def test_build_reports_progress_and_keys_by_the_weights(tmp_path):
    pool = image_pool()
    seen = []
    encoder = pretrained(tiny_net(0))
    rep = R.build(pool, encoder=encoder, progress=lambda f, m: seen.append((f, m)))
    assert rep.features.shape == (40, 8) and rep.has_graph and rep.method == "pretrained"
    assert any("module:" in m for _, m in seen) and seen[-1][0] == 1.0
    same = R.fingerprint(pool, R.method_of(pretrained(tiny_net(0))))
    other = R.fingerprint(pool, R.method_of(pretrained(tiny_net(1))))  # other weights
    assert rep.fingerprint == same != other


def test_a_cached_representation_of_a_module_refuses_to_encode_without_it(tmp_path):
    rep = R.build(image_pool(), encoder=pretrained(tiny_net()))
    rep.save(tmp_path / "r.npz")
    loaded = Representation.load(tmp_path / "r.npz")
    np.testing.assert_array_equal(loaded.features, rep.features)
    assert loaded.encoder.digest == rep.encoder.digest
    with pytest.raises(EncoderUnavailable, match="pass it again"):
        loaded.transform(image_pool().X[:2])


def test_a_function_of_a_batch_of_items_is_an_encoder():
    pool = text_pool()
    encoder = pretrained(lambda texts: np.array([[len(t), t.count("a") + 1.0] for t in texts]))
    features = R.build(pool, encoder=encoder).features
    assert features.shape == (40, 2)
    vectors = pretrained(lambda X: X.reshape(len(X), -1)[:, :5])
    assert R.build(image_pool(), encoder=vectors).features.shape == (40, 5)


def test_a_session_with_a_module_runs_a_round(tmp_path):
    pool = image_pool(60)
    session = Session(pool, tmp_path / "store", representation=tiny_net(), watch=False)
    try:
        for _ in range(12):
            item = session.next()
            session.label(item, pool.true_label(item.item_id))
        session.retrain()
        session.wait_for_training()
        assert session.inputs.representation().method == "pretrained"
        assert len(session.history) == 1 and session.model.predict(pool.X[:3]).shape == (3,)
    finally:
        session.close()


# -- model2vec from the Hugging Face cache or a folder -----------------------------------------
def test_model2vec_from_the_local_hugging_face_cache_and_from_a_folder(tmp_path):
    model = save_model2vec(tmp_path / "m2v")
    hf_cache_entry(tmp_path / "hub", "owner/tiny", tmp_path / "m2v")
    texts = ["a cat", "the stock market fell"]
    expected = model.encode(texts)
    expected = expected / np.linalg.norm(expected, axis=1, keepdims=True)
    from_cache = pretrained("model2vec:owner/tiny")
    from_folder = pretrained(f"model2vec:{tmp_path / 'm2v'}")
    assert from_cache.reads == "texts" and from_cache.digest == from_folder.digest
    np.testing.assert_allclose(from_cache.encode(texts), expected, atol=1e-6)
    np.testing.assert_allclose(from_folder.encode(texts), expected, atol=1e-6)
    rep = R.build(text_pool(), encoder=from_cache)  # the pool's texts, not its X
    assert rep.features.shape == (40, 16)
    rep.save(tmp_path / "r.npz")
    again = Representation.load(tmp_path / "r.npz")  # restored from its spec, from the cache
    np.testing.assert_allclose(again.transform(texts), expected, atol=1e-6)


def test_a_model_missing_from_the_cache_says_how_to_fetch_it(tmp_path):
    with pytest.raises(EncoderUnavailable, match=r"huggingface-cli download owner/missing"):
        pretrained("model2vec:owner/missing")
    with pytest.raises(EncoderUnavailable, match="no folder"):
        pretrained(f"model2vec:{tmp_path / 'nowhere'}")


@pytest.mark.parametrize("spec, pip", [("timm:resnet18", "pip install timm"),
                                       ("torchvision:resnet18", "pip install torchvision"),
                                       ("open_clip:ViT-B-32", "pip install open_clip_torch")])
def test_vision_libraries_that_are_missing_say_how_to_fetch_them(spec, pip):
    module = {"timm": "timm", "torchvision": "torchvision", "open_clip": "open_clip"}[spec.split(":")[0]]
    if importlib.util.find_spec(module) is not None:
        pytest.skip(f"{module} is installed here")
    with pytest.raises(EncoderUnavailable, match=pip) as error:
        pretrained(spec)
    assert "python -c" in str(error.value) and "never downloads" in str(error.value)


def test_an_unknown_spec_is_refused_and_stores_nothing(tmp_path):
    with pytest.raises(ValueError, match="LIBRARY:NAME"):
        PretrainedEncoder("keras:resnet")
    with pytest.raises(ValueError, match="'auto', True or False"):
        Session(image_pool(), tmp_path / "store", representation="yes", watch=False)
    assert not (tmp_path / "store").exists()


# -- a model bundle records its encoder ----------------------------------------------------------
def test_a_bundle_records_its_encoder_and_refuses_to_load_without_it(tmp_path):
    save_model2vec(tmp_path / "m2v")
    pool = text_pool()
    session = Session(pool, tmp_path / "store", representation=f"model2vec:{tmp_path / 'm2v'}", watch=False)
    try:
        for _ in range(12):
            item = session.next()
            session.label(item, pool.true_label(item.item_id))
        path = session.export(tmp_path / "bundle")
    finally:
        session.close()
    step = json.loads((path / "config.json").read_text())["preprocessing"][-1]
    assert step["method"] == "pretrained" and step["in_onnx"] is False
    assert step["values"]["spec"] == f"model2vec:{tmp_path / 'm2v'}" and len(step["values"]["digest"]) == 32
    model = load_model(path)
    texts = ["a cat", "shares fell"]
    assert list(model.predict(texts)) == list(session.model.predict(texts))
    save_model2vec(tmp_path / "m2v", seed=1)  # other weights under the same name
    with pytest.raises(BundleError, match="not those"):
        load_model(path)
    shutil.rmtree(tmp_path / "m2v")
    with pytest.raises(BundleError, match=r"model2vec:.*no folder"):
        load_model(path)


# -- sentence-transformers (the optional extra workbench[text]) --------------------------------
def test_sentence_transformers_from_a_local_folder(tmp_path):
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, BertTokenizerFast

    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS[2:]]))
    tokenizer = BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt"))
    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1,
                                num_attention_heads=2, intermediate_size=32))
    bert.save_pretrained(tmp_path / "bert")
    tokenizer.save_pretrained(tmp_path / "bert")
    word = models.Transformer(str(tmp_path / "bert"), max_seq_length=16)
    SentenceTransformer(modules=[word, models.Pooling(16)], device="cpu").save(str(tmp_path / "st"))
    hf_cache_entry(tmp_path / "hub", "owner/tiny-bert", tmp_path / "st")
    encoder = pretrained("sentence-transformers:owner/tiny-bert")
    assert encoder.reads == "texts"
    features = R.build(text_pool(), encoder=encoder).features
    assert features.shape == (40, 16)
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1, atol=1e-5)


def test_a_bundle_of_a_module_loads_with_that_module_only(tmp_path):
    pool = image_pool(60)
    network = tiny_net()
    session = Session(pool, tmp_path / "store", representation=network, watch=False)
    try:
        for _ in range(12):
            item = session.next()
            session.label(item, pool.true_label(item.item_id))
        path = session.export(tmp_path / "bundle")
        expected = session.model.predict_proba(pool.X[:5])
    finally:
        session.close()
    with pytest.raises(BundleError, match=r"module:torch.*load_model\(\.\.\., encoder=<it>\)"):
        load_model(path)
    with pytest.raises(BundleError, match="other weights"):
        load_model(path, encoder=tiny_net(seed=1))
    np.testing.assert_allclose(load_model(path, encoder=network).predict_proba(pool.X[:5]), expected,
                               atol=1e-6)


def test_a_cached_representation_is_reused_with_the_module_given_again(tmp_path):
    pool, network = image_pool(), tiny_net()
    first = R.RepresentationJob.start(pool, cache=R.RepresentationCache(tmp_path / "c"),
                                      encoder=pretrained(network), background=False).result()
    again = pretrained(network)
    second = R.RepresentationJob.start(pool, cache=R.RepresentationCache(tmp_path / "c"),
                                       encoder=again, background=False).result()
    assert second.from_cache and second.encoder is again  # not the file's, which cannot encode
    np.testing.assert_array_equal(second.features, first.features)
    np.testing.assert_allclose(second.transform(pool.X[:3]), first.features[:3], atol=1e-6)


def test_an_image_encoder_embedded_in_the_graph_needs_nothing_else(tmp_path):
    pool = image_pool(60)
    network = tiny_net()
    session = Session(pool, tmp_path / "store", representation=pretrained(network, size=24), watch=False)
    try:
        for _ in range(12):
            item = session.next()
            session.label(item, pool.true_label(item.item_id))
        path = session.export(tmp_path / "bundle", embed_encoder=True)  # checked against the model
        expected = session.model.predict_proba(pool.X[:5])
    finally:
        session.close()
    step = json.loads((path / "config.json").read_text())["preprocessing"][-1]
    assert step["in_onnx"] is True and step["values"]["spec"].startswith("module:")
    model = load_model(path)  # no encoder= needed: the graph encodes
    np.testing.assert_allclose(model.predict_proba(pool.X[:5]), expected, atol=1e-4)


def test_images_larger_than_the_model_reads_are_not_embedded():
    from workbench.learn.onnx_encoder import encoder_graph

    with pytest.raises(ValueError, match=r"larger than .* export without embed_encoder"):
        encoder_graph(pretrained(tiny_net(), size=16), (20, 20), 17)
    with pytest.raises(ValueError, match="only a pretrained image encoder"):
        encoder_graph(pretrained(lambda X: X.reshape(len(X), -1)), (20, 20), 17)


# -- on a Dask cluster (tests/conftest.py's LocalCluster of 2 worker processes) ---------------
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_pretrained_encoders_encode_on_the_cluster_as_in_this_process(client, tmp_path):
    """A module travels with the job; a spec's model is loaded by each worker from its own
    disk; either way the features equal the in-process ones. 1,200 items: 3 parts."""
    pool = image_pool(1200)
    encoder = pretrained(tiny_net(), size=16)
    here = R.build(pool, encoder=encoder).features
    there = R.build(pool, encoder=encoder, cluster=client)
    np.testing.assert_allclose(there.features, here, atol=1e-6)
    assert there.has_graph and there.encoder is encoder

    save_model2vec(tmp_path / "m2v")
    texts = text_pool(1100)
    spec = pretrained(f"model2vec:{tmp_path / 'm2v'}")
    seen = []
    on_workers = R.build(texts, encoder=spec, cluster=client, progress=lambda f, m: seen.append(m))
    np.testing.assert_allclose(on_workers.features, R.build(texts, encoder=spec).features, atol=1e-6)
    assert any("parts" in m for m in seen)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_worker_without_the_model_says_how_to_fetch_it(client, tmp_path):
    """The model is in this process's Hugging Face cache (HF_HUB_CACHE, set here only): the
    workers cannot find it, and the job fails with the message that says how to fetch it."""
    save_model2vec(tmp_path / "m2v")
    hf_cache_entry(tmp_path / "hub", "owner/tiny", tmp_path / "m2v")
    encoder = pretrained("model2vec:owner/tiny")  # found here
    with pytest.raises(EncoderUnavailable, match="'model2vec:owner/tiny' is not on this machine .* fetch"):
        R.build(text_pool(1100), encoder=encoder, cluster=client)
