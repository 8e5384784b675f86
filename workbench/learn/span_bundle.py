"""The parts of a model bundle for a spans session: the fitted `TokenTagger` as JSON settings
and arrays, its ONNX graph, and the `SpanModel` (workbench.learn.span_model) rebuilt from them,
what `load_model` gives back for a spans bundle. A session that fine-tuned a Hugging Face
model (`HFTokenTagger`) writes that network instead: workbench.learn.hf_span_bundle, which
the functions here hand such a tagger, or a learner config of type "HFTokenTagger", to.

The bundle's config.json says `"task": "spans"`; its input is raw texts (the tokeniser and the
feature hashing are the learner's, recorded under learner.features); model.onnx reads each
token's hashed features and must agree with the tagger within 1e-4 on a few pool texts before
anything is written.

The tagger is a scikit-learn `LogisticRegression` over hashed token features, fitted on the
columns the labeled tokens use only (see workbench.learn.token_tagger). Its parts:

    learner config   type "TokenTagger", params (labels, C, random_state), tags (the BIO tag
                     names in column order), constant (the one tag every token gets when the
                     labels held fewer than two tags, else null), features (the tokenizer's
                     name and version, N_FEATURES, and a digest of the features of fixed texts)
    tensors          coef, intercept (float64, as fitted), columns (the hashed feature columns
                     the regression reads), present (the tags it saw, as indices into tags);
                     none for a constant tagger

Rebuilding puts those arrays into a fresh LogisticRegression and TokenTagger, so a SpanModel
predicts with the session's own code on the session's own numbers: the same spans, exactly.
Tokenising and hashing are code, not arrays, so a bundle can only record which version of them
its weights belong to; a different version, or features that differ on the probe texts (the
code changed and nobody bumped the version), is refused rather than tagging silently wrong.
"""

from __future__ import annotations

import hashlib
import json
import math
import reprlib
from collections.abc import Mapping
from functools import lru_cache

import numpy as np

from workbench.data.tasks import SPANS
from workbench.learn import hf_span_bundle as hf
from workbench.learn.bundle_errors import BundleError
from workbench.learn.span_model import SpanModel
from workbench.learn.token_tagger import N_FEATURES, TokenFeatures, TokenTagger

__all__ = ["TOKENIZER", "TOKENIZER_VERSION", "rebuild_tagger", "span_bundle_parts", "span_card_section",
           "span_model", "span_model_from", "span_onnx_graph", "span_parts"]

TOKENIZER = "workbench.data.spans.tokens+token_tagger._token_features+FeatureHasher(murmurhash3)"
# Bump when workbench.data.spans.tokens, token_tagger._token_features or the hashing change:
# the weights of an older bundle then belong to other feature columns.
TOKENIZER_VERSION = 1
OPSET = 17  # the default domain's version onnx_graph.py writes (onnxruntime >= 1.17 runs it)
# Texts that reach every rule of the tokenizer: punctuation, digits, case, an emoji, a combining
# accent, Devanagari vowel signs and virama, a zero-width joiner, an empty text.
PROBE = ("Alice Okafor met Bob in Paris, 3 days ago!", "😀 e\u0301cole हिन्दी x\u200dy  UPPER lower 12ab-C3",
         "", "Minister Ivan Petrov (Acme Corp.) visited Kyiv.")
PARAMS = ("labels", "C", "random_state")
ARRAYS = ("coef", "intercept", "columns", "present")


@lru_cache(maxsize=1)
def probe_digest() -> str:
    """sha256 of the tokens and hashed features of PROBE under this workbench's code."""
    features = TokenFeatures(PROBE)
    rows = features.rows
    h = hashlib.sha256(json.dumps(features.tokens).encode())
    for part in (rows.indptr.astype(np.int64), rows.indices.astype(np.int64), rows.data.astype(np.float64)):
        h.update(np.ascontiguousarray(part).tobytes())
    return h.hexdigest()


def _features_config() -> dict:
    return {"tokenizer": TOKENIZER, "version": TOKENIZER_VERSION, "n_features": N_FEATURES,
            "probe_sha256": probe_digest()}


# -- writing --------------------------------------------------------------------------------------
def span_bundle_parts(tagger: TokenTagger) -> tuple[dict, dict[str, np.ndarray]]:
    """(learner config, tensors) of a fitted TokenTagger: JSON-able settings and the arrays
    that rebuild it exactly (see the module notes). ValueError for another learner (a subclass
    may predict differently, so it is not taken for a TokenTagger) or an unfitted one."""
    if _is_hf(tagger):
        return hf.hf_bundle_parts(tagger)
    if type(tagger) is not TokenTagger:
        raise ValueError(f"a spans bundle holds a TokenTagger or an HFTokenTagger, "
                         f"got {type(tagger).__name__}")
    if not hasattr(tagger, "tag_names_"):
        raise ValueError("this TokenTagger is not fitted (fit_spans first); there is nothing to bundle")
    random_state = tagger.random_state
    if isinstance(random_state, np.integer):
        random_state = int(random_state)
    elif not isinstance(random_state, (int, type(None))):  # a RandomState: only fitting used it
        random_state = None
    config = {"type": "TokenTagger",
              "params": {"labels": [str(label) for label in tagger.labels], "C": float(tagger.C),
                         "random_state": random_state},
              "tags": list(tagger.tag_names_), "features": _features_config(),
              "constant": None if tagger.model_ is not None else int(tagger.constant_)}
    if tagger.model_ is None:
        return config, {}
    model = tagger.model_
    # C order: lbfgs leaves coef_ in Fortran order, and safetensors.numpy.save writes an array's
    # memory as it lies, so a Fortran array would load back transposed-scrambled
    tensors = {"coef": np.ascontiguousarray(model.coef_, np.float64),
               "intercept": np.ascontiguousarray(model.intercept_, np.float64),
               "columns": np.ascontiguousarray(tagger.columns_, np.int64),
               "present": np.ascontiguousarray(tagger.present_, np.int64)}
    return config, tensors


def _is_hf(tagger) -> bool:
    """Whether `tagger` is a Hugging Face model fine-tuned by the session (hf_span_bundle.py);
    its class is imported only to ask, which loads neither torch nor transformers."""
    from workbench.learn.hf_tagger import HFTokenTagger

    return type(tagger) is HFTokenTagger


def span_parts(model: SpanModel, *, training: dict | None = None, check_items=None,
               embed_encoder: bool = False) -> tuple[dict, dict[str, np.ndarray], bytes]:
    """(config.json's content, the tensors, model.onnx) of a SpanModel; with `check_items` (a
    few texts), the graph must give the tagger's token probabilities within 1e-4 first."""
    from workbench.learn.bundle_layout import FORMAT, FORMAT_VERSION

    if embed_encoder:
        raise BundleError("embed_encoder is for a model that reads a pretrained encoder's vectors; "
                          "a spans model reads the texts themselves")
    try:
        learner, arrays = span_bundle_parts(model.tagger)
    except ValueError as e:
        raise BundleError(f"cannot export this model: {e}") from e
    from_hf = _is_hf(model.tagger)
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, "task": SPANS,
              "classes": list(model.classes),
              "input": {"kind": "text", "shape": [learner["max_length"] if from_hf else N_FEATURES],
                        "dtype": "int64" if from_hf else "float32",  # token ids, or features
                        "image_scale": None, "feature_names": None,
                        "onnx_input": "input_ids" if from_hf else "items", "raw_texts": True},
              "preprocessing": [], "learner": learner, "training": training or {},
              "outputs": hf.HF_OUTPUTS if from_hf else OUTPUTS}
    checks = [] if check_items is None else list(check_items)
    if from_hf:
        graph = hf.hf_onnx_graph(model.tagger, checks if len(checks) >= 2 else hf.TRACE_TEXTS)
        if checks:
            hf.check_agreement(model.tagger, graph, checks)
        return config, {f"learner.{k}": v for k, v in arrays.items()}, graph
    graph = span_onnx_graph(model.tagger)
    if checks:
        _check_agreement(model, graph, checks)
    return config, {f"learner.{k}": v for k, v in arrays.items()}, graph


OUTPUTS = {"probabilities": "float32 (tokens, tags): each token's probability of each tag of "
                            "learner.tags, in that order; the graph's input is the tokens' hashed "
                            "features (tokenised and hashed outside it, as learner.features names)",
           "class_index": "int64 (tokens,): index into learner.tags",
           "spans": "not in the graph: the runs of B-X, I-X... tags of the likeliest tag of each token, "
                    "(start, end, X) in code points of the text (load_model's SpanModel reads them)"}

def _check_agreement(model: SpanModel, graph: bytes, texts: list[str]) -> None:
    from workbench.learn.bundle_graph import onnx_session

    expected = model.token_proba(texts)
    expected = np.concatenate(expected) if expected else np.zeros((0, len(model.tags)))
    if not len(expected):
        return
    got = onnx_session(graph).run(["probabilities"], {"items": model.token_features(texts)})[0]
    worst = float(np.abs(got - expected).max()) if got.shape == expected.shape else math.inf
    if not worst <= 1e-4:
        raise BundleError(f"the ONNX graph disagrees with the tagger by {worst:.2g} on {len(texts)} texts "
                          "(at most 1e-4 expected); not writing a broken bundle")


def span_model(learner_config: dict, tensors: dict[str, np.ndarray], *, classes,
               info: dict | None = None) -> SpanModel:
    """The model from a bundle's learner config and arrays (names without the "learner."
    prefix); BundleError naming the field for anything that does not describe a TokenTagger
    of this workbench's tokenizer."""
    if isinstance(learner_config, Mapping) and learner_config.get("type") == "HFTokenTagger":
        source = (info or {}).get("bundle", "the bundle")
        return SpanModel(hf.rebuild_hf_tagger(learner_config, tensors, classes, source), classes, info)
    return SpanModel(rebuild_tagger(learner_config, tensors, classes), classes, info)


def span_model_from(source: str, config: dict, tensors: dict[str, np.ndarray]) -> SpanModel:
    """The SpanModel a verified bundle's config and tensors describe (BundleError naming the
    field otherwise)."""
    if config["input"]["kind"] != "text":
        raise BundleError(f"config.json in {source!r}: input.kind is {config['input']['kind']!r}; a spans "
                          "model reads texts")
    learner = {k[len("learner."):]: v for k, v in tensors.items() if k.startswith("learner.")}
    if others := sorted(k for k in tensors if not k.startswith("learner.")):
        raise BundleError(f"model.safetensors in {source!r} holds {others}, which a spans model does "
                          "not have")
    info = {**(config.get("training") or {}), "bundle": source}
    return span_model(config["learner"], learner, classes=config["classes"], info=info)


# -- reading: every field checked before anything is built ----------------------------------------
def _shown(value) -> str:
    return f"{type(value).__name__} {reprlib.repr(value)}"


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _checked_config(config, classes) -> dict:
    if not isinstance(config, Mapping):
        raise BundleError(f"learner: expected a JSON object, got {_shown(config)}")
    fields = {"type", "params", "tags", "features", "constant"}
    if unknown := sorted(set(config) - fields):
        raise BundleError(f"learner has unknown fields {unknown}; a TokenTagger has {sorted(fields)}")
    if missing := sorted(fields - set(config)):
        raise BundleError(f"learner lacks the fields {missing}")
    if config["type"] != "TokenTagger":
        raise BundleError(f"learner.type is {config['type']!r}; expected 'TokenTagger'")
    params = config["params"]
    if not isinstance(params, Mapping):
        raise BundleError(f"learner.params: expected a JSON object, got {_shown(params)}")
    if unknown := sorted(set(params) - set(PARAMS)):
        raise BundleError(f"learner.params has unknown settings {unknown}; a TokenTagger takes "
                          f"{list(PARAMS)}")
    labels = params.get("labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels) \
            or len(set(labels)) != len(labels):
        raise BundleError(f"learner.params.labels is {_shown(labels)}; expected a list of distinct "
                          "label names")
    if list(classes) != labels:
        raise BundleError(f"learner.params.labels {labels} differ from the bundle's classes {list(classes)}")
    C = params.get("C", 10.0)
    if not _number(C) or not math.isfinite(C) or C <= 0:
        raise BundleError(f"learner.params.C is {_shown(C)}; expected a positive number")
    random_state = params.get("random_state", 0)
    if not isinstance(random_state, (int, type(None))) or isinstance(random_state, bool):
        raise BundleError(f"learner.params.random_state is {_shown(random_state)}; expected a whole number "
                          "or null")
    expected = TokenTagger(labels=labels).tags()
    tags = config["tags"]
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise BundleError(f"learner.tags is {_shown(tags)}; expected the list {expected}")
    if unknown := [t for t in tags if t not in expected]:
        raise BundleError(f"learner.tags has {unknown}, not tags of the labels {labels}; expected {expected}")
    if tags != expected:
        raise BundleError(f"learner.tags is {tags}; expected {expected} (in that order)")
    _check_features(config["features"])
    constant = config["constant"]
    if constant is not None and (not isinstance(constant, int) or isinstance(constant, bool)
                                 or not 0 <= constant < len(tags)):
        raise BundleError(f"learner.constant is {_shown(constant)}; expected null or a tag index "
                          f"0..{len(tags) - 1}")
    return {"labels": labels, "C": C, "random_state": random_state, "tags": tags, "constant": constant}


def _check_features(features) -> None:
    if not isinstance(features, Mapping):
        raise BundleError(f"learner.features: expected a JSON object, got {_shown(features)}")
    ours = _features_config()
    for key in ("tokenizer", "version", "n_features"):
        if features.get(key) != ours[key]:
            raise BundleError(f"learner.features.{key} is {_shown(features.get(key))}; this workbench "
                              f"tokenises and hashes with {key} {ours[key]!r}, and the weights belong to the "
                              "features they were fitted on (re-export the model from its session)")
    if features.get("probe_sha256") != ours["probe_sha256"]:
        raise BundleError("learner.features.probe_sha256 differs from this workbench's: its tokens or "
                          "hashed features of the same texts changed since the bundle was written, so the "
                          "weights would read the wrong columns (re-export the model from its session)")


def _checked_tensors(tensors, constant, n_tags: int) -> dict[str, np.ndarray]:
    if not isinstance(tensors, Mapping):
        raise BundleError(f"the tagger's arrays: expected a mapping of names to arrays, got "
                          f"{_shown(tensors)}")
    expected = set() if constant is not None else set(ARRAYS)
    if unknown := sorted(set(tensors) - expected):
        raise BundleError(f"unexpected arrays {unknown} for this TokenTagger; expected {sorted(expected)}")
    if missing := sorted(expected - set(tensors)):
        raise BundleError(f"the TokenTagger's arrays {missing} are missing")
    if constant is not None:
        return {}
    out = {k: np.asarray(tensors[k]) for k in ARRAYS}
    for name, kind in (("coef", "f"), ("intercept", "f"), ("columns", "iu"), ("present", "iu")):
        if out[name].dtype.kind not in kind:
            raise BundleError(f"array {name!r} is {out[name].dtype}; expected "
                              f"{'floats' if kind == 'f' else 'whole numbers'}")
    for name, bound in (("present", n_tags), ("columns", N_FEATURES)):
        a = out[name]
        if a.ndim != 1 or len(a) < (2 if name == "present" else 1) or (len(a) and not (
                np.all(np.diff(a) > 0) and a[0] >= 0 and a[-1] < bound)):
            raise BundleError(f"array {name!r} (shape {a.shape}) is not an increasing list of indices "
                              f"in 0..{bound - 1}{', two or more' if name == 'present' else ''}")
    rows = 1 if len(out["present"]) == 2 else len(out["present"])  # scikit-learn's binary case: one row
    for name, shape in (("coef", (rows, len(out["columns"]))), ("intercept", (rows,))):
        if out[name].shape != shape:
            raise BundleError(f"array {name!r} has shape {out[name].shape}; expected {shape} for "
                              f"{len(out['present'])} tags seen and {len(out['columns'])} feature columns")
        if not np.all(np.isfinite(out[name])):
            raise BundleError(f"array {name!r} holds NaN or infinite values")
    return out


def rebuild_tagger(config, tensors, classes) -> TokenTagger:
    """The TokenTagger a bundle's learner config and arrays (names without "learner.") describe;
    BundleError naming the field for anything that does not describe one of this workbench's
    tokenizer."""
    from sklearn.linear_model import LogisticRegression

    c = _checked_config(config, classes)
    arrays = _checked_tensors(tensors, c["constant"], len(c["tags"]))
    tagger = TokenTagger(labels=c["labels"], C=c["C"], random_state=c["random_state"])
    tagger.tag_names_ = c["tags"]
    if c["constant"] is not None:
        tagger.constant_, tagger.model_ = c["constant"], None
        return tagger
    # built as TokenTagger.fit_spans builds it: predict_proba then runs the same code on the same arrays
    model = LogisticRegression(C=c["C"], max_iter=300, random_state=c["random_state"])
    model.classes_, model.coef_, model.intercept_ = arrays["present"], arrays["coef"], arrays["intercept"]
    model.n_features_in_ = len(arrays["columns"])
    tagger.constant_, tagger.model_ = None, model
    tagger.columns_, tagger.present_ = arrays["columns"], arrays["present"]
    return tagger


# -- the ONNX graph -------------------------------------------------------------------------------
def span_onnx_graph(tagger: TokenTagger) -> bytes:
    """The tagger's token classifier as a serialized ONNX model: "items", float32 (tokens,
    N_FEATURES), each token's hashed features (`SpanModel.token_features`), in;
    "probabilities", float32 (tokens, tags), columns in the order of the "tags" metadata, and
    "class_index", int64 (tokens,), the likeliest tag, out. Tokenising and feature hashing stay
    outside: they are string operations ONNX has no standard operators for (the ai.onnx.ml
    domain has no hasher, and tokenising by Unicode categories is beyond the string ops), and
    reading spans from BIO tags is left to the caller likewise.

    The graph is what LogisticRegression.predict_proba computes on the columns it reads: a
    softmax of X @ W + b (scikit-learn's binary case, sigmoid(d), is softmax([0, d])), placed
    into the tag columns by a 0/1 product, which is exact."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    config, tensors = span_bundle_parts(tagger)
    n_tags = len(config["tags"])
    if config["constant"] is not None:  # one tag for every token: softmax of one column is 1
        columns, weights, bias = np.zeros(1, np.int64), np.zeros((1, 1)), np.zeros(1)
        rows = [config["constant"]]
    else:
        columns, coef, intercept, rows = (tensors[k] for k in ("columns", "coef", "intercept", "present"))
        if len(rows) == 2:
            weights = np.stack([np.zeros(coef.shape[1]), coef[0]], axis=1)
            bias = np.array([0.0, intercept[0]])
        else:
            weights, bias = coef.T, intercept
    placement = np.zeros((len(rows), n_tags), np.float32)
    placement[np.arange(len(rows)), rows] = 1
    initializers = [numpy_helper.from_array(np.asarray(columns, np.int64), "columns"),
                    numpy_helper.from_array(np.ascontiguousarray(weights, np.float32), "weights"),
                    numpy_helper.from_array(np.asarray(bias, np.float32), "bias"),
                    numpy_helper.from_array(placement, "placement")]
    nodes = [helper.make_node("Gather", ["items", "columns"], ["used"], axis=1, name="used"),
             helper.make_node("MatMul", ["used", "weights"], ["scores"], name="scores"),
             helper.make_node("Add", ["scores", "bias"], ["logits"], name="logits"),
             helper.make_node("Softmax", ["logits"], ["seen_proba"], axis=1, name="seen_proba"),
             helper.make_node("MatMul", ["seen_proba", "placement"], ["probabilities"], name="probabilities"),
             helper.make_node("ArgMax", ["probabilities"], ["class_index"], axis=1, keepdims=0,
                              name="class_index")]
    graph = helper.make_graph(
        nodes, "workbench_token_tagger",
        [helper.make_tensor_value_info("items", TensorProto.FLOAT, ["N", N_FEATURES])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", n_tags]),
         helper.make_tensor_value_info("class_index", TensorProto.INT64, ["N"])],
        initializer=initializers)
    opsets = [helper.make_opsetid("", OPSET)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="workbench",
                              ir_version=helper.find_min_ir_version_for(opsets),
                              doc_string="token tags from hashed token features; tokenise and hash "
                                         "outside the graph (see the 'features' metadata)")
    helper.set_model_props(model, {"classes": json.dumps(config["params"]["labels"]),
                                   "tags": json.dumps(config["tags"]),
                                   "features": json.dumps(config["features"])})
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def span_card_section(learner_config: dict) -> str:
    """A few lines of Markdown for the model card: what the spans model reads and gives."""
    if learner_config["type"] == "HFTokenTagger":
        return hf.hf_card_section(learner_config)
    tags = learner_config["tags"]
    features = learner_config["features"]
    return "\n".join([
        "## Spans", "",
        f"A token tagger over {len(tags)} BIO tags ({', '.join(tags)}): a logistic regression on "
        f"{features['n_features']} hashed features of each token and its neighbours.",
        "Predicted spans are the runs of each token's likeliest tag, offsets in Unicode code points.", "",
        "`load_model(path).predict_spans(texts)` gives one span list per text. `model.onnx` holds the "
        "token classifier only: its input is each token's hashed features "
        "(`SpanModel.token_features(texts)`), because ONNX has no operators for tokenising and "
        f"feature hashing (tokenizer {features['tokenizer']!r}, version {features['version']}).", ""])
