"""A Hugging Face token-classification model as a spans session's learner (issue 21):
`HFTokenTagger` on a tiny random BERT and a WordPiece tokenizer built here, offline. Words of
the workbench map to subwords and back, the session's rounds fine-tune it, serve its spans as
suggestions and score span F1, a reopened session fits the same model again, suspects() runs,
a session bundle holds the fine-tuned network and tags as the session did, and what it cannot
do (a missing model, a slow tokenizer, a damaged bundle) says what to do."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("transformers")

from sklearn.base import clone  # noqa: E402

import workbench  # noqa: E402
from workbench import BundleError, HFTokenTagger, Pool, Session, Span, SpanList  # noqa: E402
from workbench.data.entity_texts import LABELS, entities  # noqa: E402
from workbench.data.spans import span_scores, tokens  # noqa: E402
from workbench.learn.hf_tagger import first_pieces  # noqa: E402
from workbench.learn.token_tagger import TokenFeatures  # noqa: E402

EMOJI = "Alice Mendes 😀 met Bob in Paris."  # the emoji: one code point, [UNK] to the tokenizer
# Fast on two cores and enough to learn the synthetic names: a random 2-layer BERT needs a
# larger step than a pretrained one's 5e-5.
FAST = {"epochs": 10, "learning_rate": 3e-3, "batch_size": 4}


def save_tokenizer(folder, texts) -> None:
    """A BERT-style WordPiece tokenizer whose vocabulary is the texts' words, lower-cased, and
    their characters (so an unknown word becomes several subwords)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = sorted({w.lower() for t in texts for w in re.findall(r"\w+", t)})
    chars = sorted({c.lower() for t in texts for c in t if not c.isspace() and ord(c) < 0x1F000})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars),
             *(w for w in words if w not in chars)]
    tokenizer = Tokenizer(models.WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]",
                                                             special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]",
                            cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]").save_pretrained(folder)
    return len(vocab)


def save_model(folder, vocab_size: int) -> None:
    import torch
    from transformers import BertConfig, BertForTokenClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=2)
    BertForTokenClassification(config).save_pretrained(folder)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """A 2-layer, 32-wide BERT gains nothing from intra-op threads, and two of them on two busy
    cores made each fit 5-10x slower (TorchClassifier trains on one thread for that reason)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data():
    return entities(80, n_test=30, seed=0)


@pytest.fixture(scope="module")
def model_dir(data, tmp_path_factory):
    pool, test = data
    folder = tmp_path_factory.mktemp("hf") / "tiny-bert-tagger"
    size = save_tokenizer(folder, [*pool.items["text"], *test.items["text"], EMOJI])
    save_model(folder, size)
    return folder


def truth_of(pool):
    return [pool.true_label(i) for i in pool.item_ids]


def test_importing_the_public_name_loads_no_torch_or_transformers():
    code = ("import sys, workbench; workbench.HFTokenTagger; "
            "print(sorted({'torch', 'transformers'} & {m.split('.')[0] for m in sys.modules}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_words_map_to_their_first_subword():
    # [CLS] "Bob" as b ##o ##b, "Paris." as "paris" "." and one subword over two words, [SEP]
    offsets = [(0, 0), (0, 1), (1, 2), (2, 3), (4, 9), (9, 10), (11, 15), (0, 0)]
    words = [(0, 3), (4, 9), (9, 10), (11, 13), (13, 15), (16, 20)]  # the last was cut off
    assert list(first_pieces(offsets, words)) == [1, 4, 5, 6, 6, -1]
    assert list(first_pieces([], [(0, 3)])) == [-1]


def test_it_learns_the_labeled_texts_and_predicts_whole_words(data, model_dir):
    pool, _ = data
    features, truth = TokenFeatures(pool.items["text"].tolist()), truth_of(pool)
    seen = range(20)
    untrained = HFTokenTagger(str(model_dir), epochs=0).fit_spans(features, seen, truth[:20])
    trained = HFTokenTagger(str(model_dir), **FAST).fit_spans(features, seen, truth[:20])
    before = span_scores(truth[:20], [s for s, _ in untrained.predict_spans(features, seen)])["f1"]
    after = span_scores(truth[:20], [s for s, _ in trained.predict_spans(features, seen)])["f1"]
    assert before < 0.3 and after > 0.9
    assert trained.tag_names_ == ["O", *(f"{p}-{label}" for label in LABELS for p in "BI")]
    assert trained.model_.config.id2label[1] == trained.tag_names_[1]  # the head is the pool's tags
    # one row of probabilities per word, as TokenTagger gives; the same again for the same seed
    proba = trained.token_proba(features, [0, 1])
    assert proba.shape == (len(features.tokens[0]) + len(features.tokens[1]), len(trained.tag_names_))
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-5)
    again = HFTokenTagger(str(model_dir), **FAST).fit_spans(features, seen, truth[:20])
    np.testing.assert_array_equal(again.token_proba(features, range(40)),
                                  trained.token_proba(features, range(40)))
    assert trained.uncertainty(features, [0, 1]).shape == (2, 2)
    word, tag, p = trained.least_sure_token(features, 30)
    assert word in features.texts[30] and tag in trained.tag_names_ and 0 < p <= 1
    # a text with an emoji and subwords: the spans are whole words, in code points
    emoji = TokenFeatures([EMOJI])
    spans, confidence = trained.predict_spans(emoji, [0])[0]
    bounds = tokens(EMOJI)
    assert len(spans) == len(confidence)
    for span in spans:
        assert any(a == span.start for a, _ in bounds) and any(b == span.end for _, b in bounds)
    assert EMOJI[spans[-1].start:spans[-1].end] == "Paris" if spans else True
    # a text cut at max_length: its words past the cut are "O", sure
    short = HFTokenTagger(str(model_dir), max_length=8, **FAST).fit_spans(features, seen, truth[:20])
    cut = short.token_proba(features, [0])
    assert (cut[8:, 0] == 1).all() and len(cut) > 8


def test_a_spans_session_fine_tunes_it_every_round(data, model_dir, tmp_path):
    pool, test = data
    learner = HFTokenTagger(str(model_dir), **FAST)
    session = Session(pool, tmp_path / "s", test=test, learner=learner, watch=False)
    try:
        for _ in range(20):
            item = session.next()
            session.label(item, pool.true_label(item.item_id))
        session.retrain()
        row = session.history.iloc[-1]
        assert row["n_labels"] == 20 and row["eval_on"] == "held-out test texts (30)"
        # the test texts' names are never in the pool: a random BERT that memorised 20 texts'
        # names finds few of them (the default TokenTagger reads the words' shapes too)
        assert 0 <= row["span_f1"] <= 1 and row["span_precision"] >= 0
        item = session.next()
        assert isinstance(item.suggestion, SpanList) and 0 <= item.confidence <= 1
        assert "the round-1 model" in item.reason
        text = pool.items["text"].iloc[item.position]
        bounds = tokens(text)
        for span in item.suggestion:  # snapped to the workbench's words
            assert any(a == span.start for a, _ in bounds) and any(b == span.end for _, b in bounds)
        assert session.suggest(item.item_id) == (item.suggestion, pytest.approx(item.confidence))
        table = session.suspects()
        assert len(table) and table["suspicion"].between(0, 1).all()
        # the session's bundle holds the fine-tuned network: loaded, it tags as the session does
        session.export(tmp_path / "bundle")
        loaded = workbench.load_model(tmp_path / "bundle")
        texts = test.items["text"].tolist()
        tagged = session.model.tagger.predict_spans(TokenFeatures(texts), range(len(texts)))
        assert loaded.predict_spans(texts) == [spans for spans, _ in tagged]
        card = (tmp_path / "bundle" / "README.md").read_text()
        assert "HFTokenTagger" in card and "input_ids" in card and "Span F1" in card
        fitted = session.model.tagger
        labels = dict(session.labels)
        history = session.history
    finally:
        session.close()
    again = Session(pool, tmp_path / "s", test=test, learner=clone(learner), watch=False)
    try:
        again.wait_for_training()  # no array form kept: the same fit again, in the background
        assert dict(again.labels) == labels
        assert list(again.history["span_f1"]) == list(history["span_f1"])
        positions = range(len(pool))
        features = again.model.features
        np.testing.assert_allclose(again.model.tagger.token_proba(features, positions),
                                   fitted.token_proba(features, positions), atol=1e-6)
    finally:
        again.close()


def test_a_session_serves_an_emoji_text_in_code_points(data, model_dir, tmp_path):
    pool, _ = data
    texts, truth = pool.items["text"].tolist()[:20], truth_of(pool)[:20]
    paris = EMOJI.index("Paris")  # 26 code points in; 27 UTF-16 units
    mixed = Pool.from_texts([*texts, EMOJI], y=[*truth, [(0, 12, "PER"), (paris, paris + 5, "LOC")]],
                            task="spans", classes=LABELS)
    session = Session(mixed, tmp_path / "e", learner=HFTokenTagger(str(model_dir), **FAST), watch=False)
    try:
        for item_id in mixed.item_ids[:20]:
            session.label(item_id, mixed.true_label(item_id))
        session.retrain()
        suggestion, confidence = session.suggest(mixed.item_ids[20])
        assert Span(paris, paris + 5, "LOC") in suggestion and 0 < confidence <= 1
        assert [EMOJI[s.start:s.end] for s in suggestion if s.label == "PER"][:1] == ["Alice Mendes"]
    finally:
        session.close()


def test_a_missing_model_says_how_to_fetch_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(FileNotFoundError, match=r"huggingface-cli download owner/missing.*save_pretrained"):
        HFTokenTagger("owner/missing").check()
    with pytest.raises(FileNotFoundError, match=r"no model folder .*nowhere"):
        HFTokenTagger(str(tmp_path / "nowhere")).check()
    features = TokenFeatures(["Alice met Bob."])
    with pytest.raises(FileNotFoundError, match="never downloads"):
        HFTokenTagger(str(tmp_path / "nowhere")).fit_spans(features, [0], [[(0, 5, "PER")]])


def test_a_hub_name_reads_the_local_cache(model_dir, tmp_path, monkeypatch):
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--owner--tiny-tagger"
    shutil.copytree(model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    tagger = HFTokenTagger("owner/tiny-tagger")
    assert tagger.check() is tagger and tagger.folder() == repo / "snapshots" / commit


def test_a_slow_tokenizer_is_refused_by_name(model_dir, tmp_path):
    from transformers import ByT5Tokenizer

    folder = tmp_path / "slow"
    shutil.copytree(model_dir, folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (folder / name).unlink(missing_ok=True)
    ByT5Tokenizer().save_pretrained(folder)  # a byte tokenizer with no fast form
    with pytest.raises(ValueError, match="needs a fast tokenizer.*slow ByT5Tokenizer"):
        HFTokenTagger(str(folder)).check()


def test_clone_keeps_the_settings_and_drops_the_fit(data, model_dir):
    tagger = HFTokenTagger(str(model_dir), labels=["PER"], epochs=2, random_state=7)
    params = tagger.get_params()
    assert params["model"] == str(model_dir) and params["labels"] == ["PER"] and params["epochs"] == 2
    copy = clone(tagger)
    assert copy.get_params() == params and copy is not tagger
    pool, _ = data
    tagger.fit_spans(TokenFeatures(pool.items["text"].tolist()[:4]), range(4), truth_of(pool)[:4])
    assert tagger.tag_names_ == ["O", "B-PER", "I-PER"]  # labels given: the others are "O"
    assert not hasattr(clone(tagger), "model_")
    assert workbench.__all__.count("HFTokenTagger") == 1


def test_save_pretrained_round_trips(data, model_dir, tmp_path):
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    pool, _ = data
    features = TokenFeatures(pool.items["text"].tolist())
    with pytest.raises(ValueError, match="no fine-tuned model"):
        HFTokenTagger(str(model_dir)).fit_spans(features, [0], [[]]).save_pretrained(tmp_path / "x")
    tagger = HFTokenTagger(str(model_dir), **FAST).fit_spans(features, range(12), truth_of(pool)[:12])
    path = tagger.save_pretrained(tmp_path / "tuned")
    assert (path / "model.safetensors").is_file() and (path / "tokenizer.json").is_file()
    model = AutoModelForTokenClassification.from_pretrained(path, local_files_only=True).eval()
    assert [model.config.id2label[i] for i in range(len(tagger.tag_names_))] == tagger.tag_names_
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    encoded = tokenizer(features.texts[0], return_tensors="pt")
    with torch.inference_mode():
        np.testing.assert_allclose(model(**encoded).logits.numpy(),
                                   tagger.model_.cpu()(**encoded).logits.numpy(), atol=1e-5)


@pytest.fixture(scope="module")
def fitted(data, model_dir):
    pool, _ = data
    features = TokenFeatures(pool.items["text"].tolist())
    return HFTokenTagger(str(model_dir), **FAST).fit_spans(features, range(20), truth_of(pool)[:20])


@pytest.mark.parametrize("as_zip,shared", [(False, False), (True, False), (False, True)])
def test_a_bundle_of_it_tags_as_it_did_and_its_graph_agrees(data, fitted, tmp_path, monkeypatch, as_zip,
                                                            shared):
    """`shared`: the graph keeps its weights in model.safetensors, as a real network's does
    (graph_weights.py: at 16 MiB and more; this one is far smaller)."""
    import onnx
    import onnxruntime as ort

    from workbench.learn import graph_weights
    from workbench.learn.bundle_write import write_bundle
    from workbench.learn.span_model import SpanModel

    if shared:
        monkeypatch.setattr(graph_weights, "SHARED_MIN_TOTAL", 0)

    _, test = data
    texts = [*test.items["text"].tolist(), EMOJI]
    path = write_bundle(SpanModel(fitted, LABELS), tmp_path / ("b.zip" if as_zip else "b"), card="# card",
                        as_zip=as_zip, check_items=texts[:5])
    loaded = workbench.load_model(path)
    assert type(loaded.tagger) is HFTokenTagger and loaded.classes == list(LABELS)
    if shared:  # every Linear's weight among them: the graph is exported unfolded for that
        initializers = onnx.load_model_from_string((path / "model.onnx").read_bytes()).graph.initializer
        external = {t.name for t in initializers if t.data_location == onnx.TensorProto.EXTERNAL}
        assert {f"network.{name}" for name in fitted.model_.state_dict() if name.endswith("dense.weight")
                } <= external
    features = TokenFeatures(texts)
    assert loaded.predict_spans(texts) == [s for s, _ in fitted.predict_spans(features, range(len(texts)))]
    np.testing.assert_allclose(np.concatenate(loaded.token_proba(texts)),
                               fitted.token_proba(features, range(len(texts))), atol=1e-6)
    assert loaded.tagger.get_params()["model"] == fitted.model  # the network it was fine-tuned from
    # onnxruntime alone, as the card shows it: padded texts, a word's tags its first subword's
    graph = path / "model.onnx" if not as_zip else None
    if graph is not None:
        inputs = loaded.tagger.tokenizer_(texts[:3], padding=True, truncation=True,
                                          max_length=loaded.tagger.max_length_, return_tensors="np")
        session = ort.InferenceSession(str(graph))
        # config.json says what the graph reads: token ids, not features
        spec = json.loads((path / "config.json").read_text())["input"]
        assert spec["onnx_input"] == session.get_inputs()[0].name == "input_ids"
        assert spec["dtype"] == "int64" and session.get_inputs()[0].type == "tensor(int64)"
        proba = session.run(["probabilities"], {
            "input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"]})[0]
        for row, text in enumerate(texts[:3]):
            _, first, _ = fitted._encode(TokenFeatures([text]), 0)
            np.testing.assert_allclose(proba[row][first], fitted.token_proba(TokenFeatures([text]), [0]),
                                       atol=1e-4)
        with pytest.raises(ValueError, match="input_ids and attention_mask"):
            loaded.token_features(texts[:1])


def _tokenizer_file(config, tensors):
    config["tokenizer_files"]["../escape.json"] = "{}"


def _tokenizer_class(name):
    """tokenizer_config.json naming another tokenizer class, which loads from the same files."""
    def change(config, tensors):
        files = config["tokenizer_files"]
        settings = json.loads(files["tokenizer_config.json"])
        files["tokenizer_config.json"] = json.dumps({**settings, "tokenizer_class": name})
    return change


def _missing_tensor(config, tensors):
    tensors.pop(next(k for k in tensors if k.endswith("classifier.weight")))


@pytest.mark.parametrize("change, words", [
    (lambda c, t: c["model_config"].update(model_type="no-such-net"),
     "model_type 'no-such-net' .* not an architecture"),
    (_tokenizer_file, r"tokenizer_files has '\.\./escape\.json'"),
    (lambda c, t: c["tokenizer_files"].update({"tokenizer.json": "{not json"}), "do not make a tokenizer"),
    (_missing_tensor, "does not fit the network its config describes"),
    (lambda c, t: t.update(bias=np.zeros(3)), r"holds \['bias'\]"),
    # a config asking for a network far larger than the weights: refused before it is built
    (lambda c, t: c["model_config"].update(hidden_size=2 ** 16, intermediate_size=2 ** 18),
     "model_config.hidden_size .* is 65536, more than"),
    (lambda c, t: c["model_config"].update(hidden_size=64),
     r"'bert.embeddings.LayerNorm.bias' is \(32,\) in the bundle, \(64,\) in the network"),
    (lambda c, t: c.update(tags=["O", "B-PER"]), "learner.tags is list"),
    (lambda c, t: c.update(tags=["O", "B-PER", "I-PER", "B-PER", "I-PER"]), "learner.tags is list"),
    (lambda c, t: c["params"].update(C=1.0), "learner.params is dict"),
    (lambda c, t: c.update(max_length=0), "learner.max_length is int 0"),
    (lambda c, t: c.update(pickle="x"), r"unknown fields \['pickle'\]"),
    (lambda c, t: c["model_config"].update(num_hidden_layers=100_000),
     "num_hidden_layers .* is 100000, more than"),
    (lambda c, t: c["model_config"].update(attn_implementation="kernels-community/flash-attn2"),
     None),  # dropped: the network is built with the default attention, nothing is fetched
    (lambda c, t: c["tokenizer_files"].update({"config.json": "{}"}), "tokenizer_files has 'config.json'"),
    (lambda c, t: c["params"].update(batch_size="x"), "learner.params.batch_size is str 'x'"),
    (_tokenizer_class("LayoutLMv2TokenizerFast"), "fail on a probe text: ValueError: You must provide"),
    (_tokenizer_class("WhisperTokenizerFast"), r"the tokenizer .* has \d+ subwords; the network embeds"),
    (lambda c, t: c.update(max_length=10_000), "max_length .* is 10000; the network reads at most 128"),
    (lambda c, t: c.update(tags=["O", "B-XYZ", "I-XYZ"]), "learner.tags is list"),
])
def test_a_damaged_bundle_is_refused_naming_the_field(fitted, change, words):
    """Each is refused by BundleError at load, naming what is wrong (a change to the files of a
    bundle on disk would also need its manifest recomputed: the parts are changed here)."""
    import copy

    from workbench.learn.span_bundle import span_bundle_parts, span_model

    config, tensors = span_bundle_parts(fitted)
    config, tensors = copy.deepcopy(config), dict(tensors)
    change(config, tensors)
    if words is None:
        assert span_model(config, tensors, classes=LABELS).predict_spans(["Alice met Bob."])
        return
    with pytest.raises(BundleError, match=words):
        span_model(config, tensors, classes=LABELS)


def test_a_tagger_with_nothing_learned_yet_is_not_bundled(data, model_dir):
    from workbench.learn.span_bundle import span_bundle_parts

    pool, _ = data
    blank = HFTokenTagger(str(model_dir)).fit_spans(TokenFeatures(pool.items["text"].tolist()[:3]), range(3),
                                                    [[], [], []])
    with pytest.raises(ValueError, match="no fine-tuned network to bundle"):
        span_bundle_parts(blank)


def test_a_graph_that_disagrees_with_the_tagger_is_never_written(data, fitted, model_dir):
    from workbench.learn.hf_span_bundle import check_agreement, hf_onnx_graph

    pool, test = data
    texts = test.items["text"].tolist()[:3]
    features = TokenFeatures(pool.items["text"].tolist())
    other = HFTokenTagger(str(model_dir), epochs=0).fit_spans(features, range(20), truth_of(pool)[:20])
    check_agreement(fitted, hf_onnx_graph(fitted, texts), texts)
    with pytest.raises(BundleError, match="disagrees with the Hugging Face tagger"):
        check_agreement(fitted, hf_onnx_graph(other, texts), texts)


def test_a_tagger_that_learned_some_classes_in_its_own_order_loads_back(data, model_dir, tmp_path):
    """Without labels= the tagger's tags are those of the labels its spans held, sorted: a pool
    whose classes come in another order, one of them never marked yet, still loads back."""
    from workbench.learn.bundle_write import write_bundle
    from workbench.learn.span_model import SpanModel

    pool, test = data
    texts = pool.items["text"].tolist()[:20]
    marked = [[s for s in spans if s.label != "ORG"] for spans in truth_of(pool)[:20]]
    tagger = HFTokenTagger(str(model_dir), **FAST).fit_spans(TokenFeatures(texts), range(20), marked)
    assert tagger.tag_names_ == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    path = write_bundle(SpanModel(tagger, ["PER", "ORG", "LOC"]), tmp_path / "b", card="# c",
                        check_items=texts[:3])
    loaded = workbench.load_model(path)
    others = test.items["text"].tolist()
    assert loaded.predict_spans(others) == [s for s, _ in tagger.predict_spans(TokenFeatures(others),
                                                                                range(len(others)))]


def test_a_session_starts_from_its_bundle_while_the_base_network_is_on_the_machine(data, model_dir, tmp_path):
    """Round 0 is the bundle's tagger; each later round fine-tunes the base network again (on
    the new labels and the bundle's sure spans), so without that network the session is refused
    before its store is made, saying why."""
    from workbench.learn.bundle_write import write_bundle
    from workbench.learn.span_model import SpanModel

    pool, test = data
    base = shutil.copytree(model_dir, tmp_path / "base")
    texts = pool.items["text"].tolist()[:20]
    tagger = HFTokenTagger(str(base), **FAST).fit_spans(TokenFeatures(texts), range(20), truth_of(pool)[:20])
    bundle = write_bundle(SpanModel(tagger, LABELS), tmp_path / "b", card="# c", check_items=texts[:3])
    session = Session(test, tmp_path / "s", start_from=bundle, watch=False)
    try:
        item = session.next()
        assert "the model you started from" in item.reason and isinstance(item.suggestion, SpanList)
        assert type(session.learner) is HFTokenTagger and session.learner.model == str(base)
    finally:
        session.close()
    shutil.rmtree(base)
    with pytest.raises(FileNotFoundError, match=r"fine-tunes the network .*base.* not on this machine"):
        Session(test, tmp_path / "s2", start_from=bundle, watch=False)
    assert not (tmp_path / "s2").exists()
