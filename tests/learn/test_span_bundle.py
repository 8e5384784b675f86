"""A spans session's TokenTagger as bundle parts (issue 21): JSON settings and arrays that
rebuild it exactly (also through real safetensors bytes), an ONNX graph of its token
classifier that agrees with it, and a SpanModel that refuses, by name, whatever does not
describe a tagger of this workbench's tokenizer."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from safetensors.numpy import load, save

from workbench.data.entity_texts import LABELS, entity_texts
from workbench.data.spans import SpanList, span_list
from workbench.learn.bundle_errors import BundleError
from workbench.learn.bundle_graph import check_graph, onnx_session
from workbench.learn.span_bundle import (
    TOKENIZER_VERSION,
    span_bundle_parts,
    span_card_section,
    span_model,
    span_onnx_graph,
)
from workbench.learn.token_tagger import TokenFeatures, TokenTagger

ODD = ["", "   ", "😀 Bob Okafor lives in Rome.", "e\u0301cole हिन्दी x\u200dy", "Alice"]


@pytest.fixture(scope="module")
def data():
    """The texts of a spans pool (`workbench.data.entity_texts`, what `entities()` builds its
    Pool from, without the seconds a Pool's text features take), a tagger fitted on 40 of them
    as a session round fits it (TokenFeatures of the pool, fit_spans on the labeled positions),
    and texts it never saw."""
    texts, spans = entity_texts(60, seed=0)
    unseen, _ = entity_texts(20, seed=0, half=1)
    features = TokenFeatures(texts)
    labeled = list(range(40))
    truth = [span_list(spans[p], texts[p], LABELS) for p in labeled]
    tagger = TokenTagger(labels=LABELS, random_state=3).fit_spans(features, labeled, truth)
    return tagger, texts + unseen + ODD


def fitted(labels, texts, spans):
    features = TokenFeatures(texts)
    return TokenTagger(labels=labels).fit_spans(features, range(len(texts)), spans)


def session_predictions(tagger, texts):
    return tagger.predict_spans(TokenFeatures(texts), range(len(texts)))


def through_files(config, tensors):
    """What a bundle's files give back: config.json text and model.safetensors bytes."""
    return json.loads(json.dumps(config)), load(save({f"learner.{k}": v for k, v in tensors.items()}))


def rebuilt(config, tensors, classes=LABELS):
    config, stored = through_files(config, tensors)
    return span_model(config, {k[len("learner."):]: v for k, v in stored.items()},
                                classes=classes, info={"bundle": "here"})


def test_the_parts_rebuild_the_session_tagger_exactly(data):
    tagger, texts = data
    config, tensors = span_bundle_parts(tagger)
    assert config["type"] == "TokenTagger" and config["constant"] is None
    assert config["params"] == {"labels": LABELS, "C": 10.0, "random_state": 3}
    assert config["tags"] == ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    assert config["features"]["version"] == TOKENIZER_VERSION and config["features"]["n_features"] == 2 ** 15
    assert sorted(tensors) == ["coef", "columns", "intercept", "present"]
    model = rebuilt(config, tensors)
    assert model.task == "spans" and model.classes == LABELS and model.info == {"bundle": "here"}
    expected = session_predictions(tagger, texts)
    got = model.predict_spans(texts)
    assert all(isinstance(s, SpanList) for s in got)
    assert got == [spans for spans, _ in expected]  # exact: the same offsets and labels
    assert model.predict_spans_with_confidence(texts) == expected  # the confidences too, to the bit
    assert sum(len(s) for s in got) > 100
    assert model.predict_spans(["Alice"] * 0) == [] and model.predict_spans(["", " "]) == [SpanList()] * 2
    proba = model.token_proba(texts)
    assert [len(p) for p in proba] == [len(t) for t in model.tokens(texts)]
    np.testing.assert_array_equal(np.concatenate(proba),
                                  tagger.token_proba(TokenFeatures(texts), range(len(texts))))


def test_the_onnx_graph_gives_the_taggers_token_probabilities(data):
    tagger, texts = data
    texts = texts[-30:]  # seen, unseen and odd texts: ~600 tokens, 80 MB of dense float32 features
    graph = span_onnx_graph(tagger)
    check_graph("test", graph)  # standard operators, every tensor inside
    model = span_model(*span_bundle_parts(tagger), classes=LABELS)
    items = model.token_features(texts)
    assert items.dtype == np.float32 and items.shape == (sum(len(t) for t in model.tokens(texts)), 2 ** 15)
    proba, index = onnx_session(graph).run(["probabilities", "class_index"], {"items": items})
    expected = tagger.token_proba(TokenFeatures(texts), range(len(texts)))
    assert proba.shape == expected.shape and np.abs(proba - expected).max() < 1e-5
    assert (index == expected.argmax(axis=1)).mean() > 0.999  # float32 may flip an exact tie only
    import onnx

    props = {p.key: p.value for p in onnx.load_model_from_string(graph).metadata_props}
    assert json.loads(props["tags"]) == tagger.tag_names_ and json.loads(props["classes"]) == LABELS


@pytest.mark.parametrize("case", ["binary", "constant"])
def test_two_tags_and_one_tag_round_trip_and_convert_too(case):
    """scikit-learn keeps one row of weights for two classes (a sigmoid), and a tagger whose
    labels held one tag keeps no regression at all: both rebuild and convert."""
    texts = ["We flew to Paris.", "Oslo is cold.", "Nothing here.", "Rain in Lagos and Porto."]
    spans = [[(11, 16, "LOC")], [(0, 4, "LOC")], [], [(8, 13, "LOC"), (18, 23, "LOC")]]
    if case == "constant":
        spans = [[] for _ in texts]
    tagger = fitted(["LOC"], texts, spans)
    config, tensors = span_bundle_parts(tagger)
    assert (config["constant"] is None) == (case == "binary")
    assert {k: v.shape for k, v in tensors.items()}.get("coef", (1,))[0] == 1
    others = ["Porto and Kyiv.", "nothing", "Paris"]
    model = rebuilt(config, tensors, classes=["LOC"])
    assert model.predict_spans_with_confidence(others) == session_predictions(tagger, others)
    proba = onnx_session(span_onnx_graph(tagger)).run(
        ["probabilities"], {"items": model.token_features(others)})[0]
    expected = tagger.token_proba(TokenFeatures(others), range(len(others)))
    assert np.abs(proba - expected).max() < 1e-5


@pytest.mark.parametrize("texts, words", [
    ("Alice met Bob", r"a list of texts, got one str 'Alice met Bob'; wrap it in a list: \[text\]"),
    (None, "a list of texts \\(str\\), got NoneType None"),
    (5, "a list of texts \\(str\\), got int 5"),
    ([1.5], r"texts\[0\] is float 1.5; expected a str"),
    (["ok", None], r"texts\[1\] is NoneType None; expected a str"),
    (b"bytes", "got one bytes"),
    ({"a": "text"}, "got dict"),
])
def test_anything_but_a_list_of_texts_is_refused_by_name(data, texts, words):
    model = span_model(*span_bundle_parts(data[0]), classes=LABELS)
    for method in (model.predict_spans, model.token_proba, model.token_features, model.tokens):
        with pytest.raises(ValueError, match=words):
            method(texts)


def _edit(path, value):
    def change(config, tensors):
        where, key = (config, path[0]) if len(path) == 1 else (config[path[0]], path[1])
        if value is KeyError:
            del where[key]
        else:
            where[key] = value
    return change


def _array(name, fn):
    def change(config, tensors):
        tensors[name] = fn(tensors[name])
    return change


def _unknown_params(config, tensors):
    config["params"]["max_iter"] = 5


def _extra_array(config, tensors):
    tensors["bias"] = np.zeros(3)


@pytest.mark.parametrize("change, words", [
    (_array("coef", lambda a: a[:, :-1]),
     r"array 'coef' has shape \(\d, \d+\); expected \(\d, \d+\) for \d tags seen"),
    (_array("coef", lambda a: a.T), "array 'coef' has shape"),
    (_array("intercept", lambda a: a[:-1]), r"array 'intercept' has shape \(\d,\); expected \(\d,\)"),
    (_array("coef", lambda a: np.where(a == a.flat[0], np.nan, a)), "array 'coef' holds NaN"),
    (_array("columns", lambda a: a[::-1]), "'columns' .* not an increasing list of indices in 0..32767"),
    (_array("columns", lambda a: a + 2 ** 15), "array 'columns'"),
    (_array("present", lambda a: a + 1), "array 'present' .* indices in 0..6"),
    (_array("present", lambda a: a.astype(np.float64)), "array 'present' is float64; expected whole numbers"),
    (_array("coef", lambda a: a.astype(np.int64)), "array 'coef' is int64; expected floats"),
    (_extra_array, r"unexpected arrays \['bias'\]"),
    (lambda c, t: t.pop("intercept"), r"arrays \['intercept'\] are missing"),
    (_edit(("tags",), ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-MISC"]),
     r"learner.tags has \['I-MISC'\], not tags of the labels"),
    (_edit(("tags",), ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "I-PER", "B-PER"]), r"\(in that order\)"),
    (_edit(("features", "version"), TOKENIZER_VERSION + 1), "learner.features.version is int 2"),
    (_edit(("features", "tokenizer"), "spacy"), "learner.features.tokenizer is str 'spacy'"),
    (_edit(("features", "n_features"), 2 ** 18), "learner.features.n_features is int 262144"),
    (_edit(("features", "probe_sha256"), "0" * 64), "learner.features.probe_sha256 differs"),
    (_unknown_params, r"learner.params has unknown settings \['max_iter'\]"),
    (_edit(("params", "C"), "10"), "learner.params.C is str '10'; expected a positive number"),
    (_edit(("params", "C"), -1.0), "learner.params.C is float -1.0"),
    (_edit(("params", "random_state"), 1.5), "learner.params.random_state is float 1.5"),
    (_edit(("params", "labels"), ["LOC", "ORG", "MISC"]), r"differ from the bundle's classes"),
    (_edit(("params", "labels"), "LOC"), "learner.params.labels is str 'LOC'"),
    (_edit(("type",), "LogisticRegression"), "learner.type is 'LogisticRegression'; expected 'TokenTagger'"),
    (_edit(("constant",), 7), "learner.constant is int 7; expected null or a tag index 0..6"),
    (_edit(("constant",), 0), r"unexpected arrays \['coef', 'columns', 'intercept', 'present'\]"),
    (_edit(("pickle",), "x"), r"learner has unknown fields \['pickle'\]"),
    (_edit(("features",), KeyError), r"learner lacks the fields \['features'\]"),
])
def test_a_rebuild_refuses_what_does_not_fit_naming_the_field(data, change, words):
    config, tensors = span_bundle_parts(data[0])
    config, tensors = copy.deepcopy(config), dict(tensors)
    change(config, tensors)
    with pytest.raises(BundleError, match=words):
        span_model(config, tensors, classes=LABELS)


def test_only_a_fitted_token_tagger_makes_parts(data):
    with pytest.raises(ValueError, match="not fitted"):
        span_bundle_parts(TokenTagger(labels=LABELS))

    class Tagger(TokenTagger):
        pass

    with pytest.raises(ValueError, match="holds a TokenTagger or an HFTokenTagger, got Tagger"):
        span_bundle_parts(Tagger(labels=LABELS))
    card = span_card_section(span_bundle_parts(data[0])[0])
    assert "7 BIO tags" in card and "predict_spans(texts)" in card
