"""The parts of a spans bundle whose tagger is a fine-tuned Hugging Face model
(`workbench.learn.hf_tagger.HFTokenTagger`), and that tagger rebuilt from them.

The bundle keeps its usual four files (workbench.learn.bundle_layout); nothing of Hugging
Face's own folder format is added beside them, so a bundle is still read, verified and refused
as every other is:

    learner config   type "HFTokenTagger", params (the tagger's settings, `model` naming the
                     network it was fine-tuned from), tags (the BIO tags, the head's columns:
                     "O", then B- and I- of each label it learned), max_length (subwords per
                     text), model_config (the network's `PretrainedConfig` as JSON, less the
                     DROPPED settings), tokenizer_files (the fast tokenizer as its
                     `save_pretrained` writes it, TOKENIZER_FILES only: file name -> text)
    tensors          hf.<name>: every tensor of the network's state dict (floats as float32)
    model.onnx       the network exported by torch's TorchScript exporter: input_ids and
                     attention_mask (int64, texts x subwords) in, each subword's tag
                     probabilities and likeliest tag out; a word's tags are its first subword's.
                     Exported unfolded, so that its weights are the tensors' own bytes and stay
                     in model.safetensors, once (graph_weights.py)

Rebuilding makes the network from its config (`from_config`, offline: an architecture
transformers ships, never code or kernels named by the bundle, whose DROPPED settings are
left out at any depth), after checking that no size in the config exceeds what the tensors
hold and that the tensors' shapes are those of the network (built on the meta device,
which allocates nothing); then the network takes them strictly and in place, never drawing
random weights first where transformers allows (`workbench.learn.hf_network`), and the
tokenizer from its files in a temporary folder, so a loaded model tags with the same code
on the same numbers as the session did. Before anything is written the graph must agree
with the tagger within 1e-4 on a few pool texts (`check_agreement`); a network over 2 GiB of
float32, more than one ONNX file holds, is refused (save_pretrained writes it as a Hugging
Face folder).
"""

from __future__ import annotations

import copy
import io
import json
import os
import re
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from workbench.learn.bundle_errors import BundleError
from workbench.learn.hf_network import with_weights
from workbench.learn.span_model import _shown

__all__ = ["HF_OUTPUTS", "TRACE_TEXTS", "check_agreement", "hf_bundle_parts", "hf_card_section",
           "hf_onnx_graph", "rebuild_hf_tagger"]

PREFIX = "hf."
PARAMS = ("model", "labels", "epochs", "batch_size", "learning_rate", "weight_decay", "max_length",
          "random_state")
FIELDS = ("type", "params", "tags", "max_length", "model_config", "tokenizer_files")
# what a fast tokenizer's save_pretrained writes: JSON (tokenizer.json, its config, the special
# tokens), perhaps a vocabulary, merges or a chat template as text; never a path, never binary
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                   "vocab.txt", "vocab.json", "merges.txt", "chat_template.jinja", "chat_template.json")
# settings of a network's config that reach outside the bundle or change what its weights
# mean: attention kernels fetched from the hub, quantisation, a dtype, code to run
DROPPED = re.compile(r"auto_map|quantization_config|dtype|torch_dtype|_name_or_path|.*_implementation.*")
MAX_WEIGHT_BYTES = 2 << 30  # ONNX (protobuf) holds at most 2 GiB in one file
OPSET = 17
# what config.json's "outputs" says of the graph
HF_OUTPUTS = {"probabilities": "float32 (texts, subwords, tags): each subword's probability of each tag of "
                               "learner.tags; the graph's inputs are the tokenizer's input_ids and "
                               "attention_mask (int64, texts x subwords, at most learner.max_length "
                               "subwords: truncate there); a word's tags are its first subword's",
              "class_index": "int64 (texts, subwords): index into learner.tags",
              "spans": "not in the graph: the runs of B-X, I-X... tags of the likeliest tag of each word, "
                       "(start, end, X) in code points of the text (load_model's SpanModel reads them)"}
# the graph is traced on the check texts, or on these when there are fewer than two
TRACE_TEXTS = ("Alice Okafor met Bob in Paris.", "Minister Ivan Petrov of Acme Corp. visited Kyiv on Monday.")


# -- writing --------------------------------------------------------------------------------------
def hf_bundle_parts(tagger) -> tuple[dict, dict[str, np.ndarray]]:
    """(learner config, tensors) of a fine-tuned HFTokenTagger (see the module notes);
    ValueError for one that has learned no spans yet (it has no network of its own)."""
    if getattr(tagger, "model_", None) is None:
        raise ValueError("this HFTokenTagger has no fine-tuned network to bundle: it learns one once "
                         "the labeled texts hold at least one span")
    params = {k: getattr(tagger, k) for k in PARAMS}
    params["model"] = str(params["model"])
    params["labels"] = None if params["labels"] is None else [str(x) for x in params["labels"]]
    params["random_state"] = int(params["random_state"]) if isinstance(
        params["random_state"], (int, np.integer)) else None
    with tempfile.TemporaryDirectory() as folder:
        tagger.tokenizer_.save_pretrained(folder)
        files = {}
        for path in sorted(Path(folder).iterdir()):
            if path.name not in TOKENIZER_FILES:
                raise ValueError(f"the tokenizer wrote {path.name!r}, which a bundle does not hold (it "
                                 f"keeps a fast tokenizer's files {list(TOKENIZER_FILES)})")
            files[path.name] = path.read_text(encoding="utf-8")
    state = tagger.model_.state_dict()
    size = sum(4 * v.numel() for v in state.values())
    if size > MAX_WEIGHT_BYTES:
        raise ValueError(f"the network's weights take {size / 2**30:.1f} GiB as float32, more than the 2 GiB "
                         "an ONNX graph can hold; save it as a Hugging Face folder instead, with "
                         "session.model.tagger.save_pretrained(path)")
    tensors = {}
    for name, value in state.items():
        value = value.detach().cpu()
        if value.is_floating_point():
            value = value.float()
        tensors[PREFIX + name] = np.ascontiguousarray(value.numpy())
    config = {"type": "HFTokenTagger", "params": params, "tags": list(tagger.tag_names_),
              "max_length": int(tagger.max_length_),
              "model_config": _kept(json.loads(tagger.model_.config.to_json_string(use_diff=False))),
              "tokenizer_files": files}
    return config, tensors


def _tags_module(network):
    """The network as the graph computes it: subword ids in, tag probabilities out."""
    import torch

    class Tags(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.network = network

        def forward(self, input_ids, attention_mask):
            logits = self.network(input_ids=input_ids, attention_mask=attention_mask).logits
            proba = torch.softmax(logits.float(), dim=-1)
            return proba, proba.argmax(dim=-1)

    return Tags().eval()


def hf_onnx_graph(tagger, texts) -> bytes:
    """The tagger's network as a serialized ONNX model (see the module notes), traced on
    `texts` (two or more, of different lengths, so that padding is in the trace)."""
    import torch

    network = copy.deepcopy(tagger.model_).to("cpu").float().eval()
    encoded = tagger.tokenizer_(list(texts), truncation=True, max_length=tagger.max_length_,
                                padding=True, return_tensors="pt")
    inputs = (encoded["input_ids"].long(), encoded["attention_mask"].long())
    axes = {"input_ids": {0: "texts", 1: "subwords"}, "attention_mask": {0: "texts", 1: "subwords"},
            "probabilities": {0: "texts", 1: "subwords"}, "class_index": {0: "texts", 1: "subwords"}}
    out = io.BytesIO()
    with warnings.catch_warnings():  # the tracer's notes on Python control flow, which it follows
        warnings.simplefilter("ignore")
        # no constant folding: folded, every Linear's weight is a transposed copy, which could
        # not refer to the weights file (graph_weights.py); onnxruntime folds it as it loads
        torch.onnx.export(_tags_module(network), inputs, out, dynamo=False, opset_version=OPSET,
                          do_constant_folding=False, input_names=["input_ids", "attention_mask"],
                          output_names=["probabilities", "class_index"], dynamic_axes=axes)
    import onnx

    model = onnx.load_model_from_string(out.getvalue())
    onnx.helper.set_model_props(model, {"tags": json.dumps(list(tagger.tag_names_)),
                                        "max_length": str(int(tagger.max_length_))})
    return model.SerializeToString()


def check_agreement(tagger, graph: bytes, texts: list[str]) -> None:
    """BundleError unless the graph gives each word of `texts` (its first subword) the
    tagger's own tag probabilities within 1e-4."""
    from workbench.learn.bundle_graph import onnx_session
    from workbench.learn.token_tagger import TokenFeatures

    features = TokenFeatures(texts)
    session, worst = onnx_session(graph), 0.0
    for position in range(len(texts)):
        inputs, first, _ = tagger._encode(features, position)
        expected = tagger.token_proba(features, [position])
        got = session.run(["probabilities"], {
            "input_ids": np.asarray([inputs["input_ids"]], np.int64),
            "attention_mask": np.asarray([inputs["attention_mask"]], np.int64)})[0][0]
        seen = first >= 0
        worst = max(worst, float(np.abs(got[first[seen]] - expected[seen]).max(initial=0.0)))
    if not worst <= 1e-4:
        raise BundleError(f"the ONNX graph disagrees with the Hugging Face tagger by {worst:.2g} on "
                          f"{len(texts)} texts (at most 1e-4 expected); not writing a broken bundle")


# -- reading: every field checked before anything is built ----------------------------------------
def _checked(config, classes) -> dict:
    if not isinstance(config, Mapping):
        raise BundleError(f"learner: expected a JSON object, got {_shown(config)}")
    if unknown := sorted(set(config) - set(FIELDS)):
        raise BundleError(f"learner has unknown fields {unknown}; an HFTokenTagger has {sorted(FIELDS)}")
    if missing := sorted(set(FIELDS) - set(config)):
        raise BundleError(f"learner lacks the fields {missing}")
    _check_params(config["params"])
    _check_tags(config["tags"], [str(c) for c in classes])
    length = config["max_length"]
    if not isinstance(length, int) or isinstance(length, bool) or length < 1:
        raise BundleError(f"learner.max_length is {_shown(length)}; expected a whole number from 1")
    model_config = config["model_config"]
    if not isinstance(model_config, Mapping) or not isinstance(model_config.get("model_type"), str):
        raise BundleError(f"learner.model_config is {_shown(model_config)}; expected a Hugging Face "
                          "model config (a JSON object with its model_type)")
    files = config["tokenizer_files"]
    if not isinstance(files, Mapping) or "tokenizer.json" not in files:
        raise BundleError("learner.tokenizer_files: expected a JSON object of the tokenizer's files, "
                          "tokenizer.json among them")
    for name, text in files.items():
        if name not in TOKENIZER_FILES or not isinstance(text, str):
            raise BundleError(f"learner.tokenizer_files has {name!r} ({_shown(text)}); expected some of "
                              f"{list(TOKENIZER_FILES)}, each with its text")
    return dict(config)


def _check_params(params) -> None:
    if not isinstance(params, Mapping) or sorted(params) != sorted(PARAMS):
        raise BundleError(f"learner.params is {_shown(params)}; expected the settings {list(PARAMS)}")
    whole = {"epochs": 0, "batch_size": 1, "max_length": 1, "random_state": 0}
    for name, least in whole.items():
        value = params[name]
        if value is None and name in ("max_length", "random_state"):
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise BundleError(f"learner.params.{name} is {_shown(value)}; expected a whole number "
                              f"from {least}")
    for name in ("learning_rate", "weight_decay"):
        value = params[name]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < float("inf"):
            raise BundleError(f"learner.params.{name} is {_shown(value)}; expected a number from 0")
    labels = params["labels"]
    if not isinstance(params["model"], str) or not (
            labels is None or isinstance(labels, list) and all(isinstance(x, str) for x in labels)):
        raise BundleError(f"learner.params.model is {_shown(params['model'])} and labels {_shown(labels)}; "
                          "expected a name and null or a list of label names")


def _check_tags(tags, classes: list[str]) -> None:
    """The tagger's tags are "O" and the B- and I- tag of each label it learned, in its own
    order (the sorted labels its spans held, unless it was given `labels`): any of the
    bundle's classes, each once."""
    from workbench.learn.hf_tagger import HFTokenTagger

    labels = [t[2:] for t in tags[1::2]] if isinstance(tags, list) and all(isinstance(t, str) for t in tags) \
        else None
    if labels is None or tags != HFTokenTagger("", labels=labels).tags() or len(set(labels)) != len(labels) \
            or not set(labels) <= set(classes) or not labels:
        raise BundleError(f"learner.tags is {_shown(tags)}; expected 'O' then the B- and I- tag of each "
                          f"of some of the classes {classes}, each once")


def _network(model_config: Mapping, tensors: Mapping, source: str):
    import torch
    from transformers import AutoConfig, AutoModelForTokenClassification
    from transformers.utils import logging as hf_logging

    from workbench.data.pretrained_sources import offline

    settings = _kept(model_config)
    kind = settings.pop("model_type")
    _check_sizes(settings, tensors, source)
    settings["return_dict"] = True
    try:
        with offline():
            config = AutoConfig.for_model(kind, **settings)
    except (ValueError, KeyError) as e:  # a model_type this transformers does not ship
        raise BundleError(f"learner.model_config.model_type {kind!r} in {source!r} is not an architecture "
                          f"this transformers knows ({e})") from None
    # the bundle's arrays themselves (writable: safetensors copies them out of the file), which
    # the network takes in place of the ones it was built with (assign=True): it keeps one copy
    # of the weights, not a third beside the bundle's and its own (344 MB each at BERT-base)
    state = {k[len(PREFIX):]: torch.from_numpy(v if v.flags.writeable else v.copy())
             for k, v in tensors.items()}
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        # first on the meta device, which allocates nothing: a config that asks for a network
        # larger than the weights the bundle holds is refused before any memory is spent on it
        with offline(), torch.device("meta"):
            on_meta = AutoModelForTokenClassification.from_config(config, trust_remote_code=False)
        shapes = {k: tuple(v.shape) for k, v in on_meta.state_dict().items()}
        given = {k: tuple(v.shape) for k, v in state.items()}
        if shapes != given:
            wrong = sorted(set(shapes) ^ set(given)) or sorted(k for k in shapes if shapes[k] != given[k])
            name = wrong[0]
            raise BundleError(f"model.safetensors in {source!r} does not fit the network its config "
                              f"describes: {name!r} is {given.get(name, 'missing')} in the bundle, "
                              f"{shapes.get(name, 'not a tensor')} in the network")

        def on_cpu():
            with offline():
                return AutoModelForTokenClassification.from_config(config, trust_remote_code=False).float()

        network = with_weights(on_meta, state, on_cpu)  # never drawn at random, where transformers allows
    finally:
        hf_logging.set_verbosity(verbosity)
    return network.eval()


def _kept(settings: Mapping) -> dict:
    """A network config's settings without DROPPED ones, at any depth (a sub-config's too)."""
    return {k: _kept(v) if isinstance(v, Mapping) else v for k, v in settings.items()
            if not DROPPED.fullmatch(str(k))}


def _check_sizes(settings: Mapping, tensors: Mapping, source: str) -> None:
    """A number of layers larger than the bundle's tensors, or any size larger than all their
    elements together, describes a network the bundle cannot hold: refused before even an
    empty (meta) one is built, which takes time and memory for every layer asked for."""
    elements = sum(int(np.prod(np.shape(v))) for v in tensors.values())
    # token ids (bos_token_id...) are not sizes: a small network may keep its family's defaults

    def walk(where: str, value) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(f"{where}.{k}", v)
        elif isinstance(value, int) and not isinstance(value, bool) and not where.endswith("_id") and (
                value > max(elements, 1) or ("layers" in where.rsplit(".", 1)[-1] and value > len(tensors))):
            raise BundleError(f"learner.{where} in {source!r} is {value}, more than the "
                              f"{len(tensors)} tensors of {elements} numbers in model.safetensors can hold")

    for key, value in settings.items():
        walk(f"model_config.{key}", value)


def _tokenizer(tagger, files: Mapping, source: str):
    """The tokenizer of `files`, loaded and set up as the tagger loads its own from a folder."""
    with tempfile.TemporaryDirectory() as folder:
        for name, text in files.items():
            (Path(folder) / name).write_text(text, encoding="utf-8")
        try:
            return tagger._tokenizer(Path(folder))
        except Exception as e:  # a damaged tokenizer.json, an unknown or a slow class: refused, named
            raise BundleError(f"learner.tokenizer_files in {source!r} do not make a tokenizer an "
                              f"HFTokenTagger can read: {type(e).__name__}: {e}") from None


def rebuild_hf_tagger(config, tensors: Mapping, classes, source: str = "the bundle"):
    """The HFTokenTagger a bundle's learner config and tensors (names without "learner.")
    describe, ready to tag; BundleError naming the field for anything else."""
    import threading

    from workbench.data.devices import torch_device
    from workbench.learn.hf_tagger import HFTokenTagger
    from workbench.learn.token_tagger import TokenFeatures

    c = _checked(config, classes)
    params = c["params"]
    if unknown := sorted(k for k in tensors if not k.startswith(PREFIX)):
        raise BundleError(f"model.safetensors in {source!r} holds {unknown[:5]}, which an HFTokenTagger's "
                          f"network does not have (its tensors are named {PREFIX}...)")
    try:
        tagger = HFTokenTagger(**params)
    except TypeError as e:
        raise BundleError(f"learner.params in {source!r}: {e}") from None
    tagger.tokenizer_ = _tokenizer(tagger, c["tokenizer_files"], source)
    network = _network(c["model_config"], tensors, source)
    if network.config.num_labels != len(c["tags"]):
        raise BundleError(f"the network in {source!r} gives {network.config.num_labels} tags; "
                          f"learner.tags lists {len(c['tags'])}")
    positions = getattr(network.config, "max_position_embeddings", None)
    if isinstance(positions, int) and c["max_length"] > positions:
        raise BundleError(f"learner.max_length in {source!r} is {c['max_length']}; the network reads at most "
                          f"{positions} subwords")
    vocabulary = getattr(network.config, "vocab_size", None)
    if isinstance(vocabulary, int) and len(tagger.tokenizer_) > vocabulary:
        raise BundleError(f"the tokenizer in {source!r} has {len(tagger.tokenizer_)} subwords; the network "
                          f"embeds {vocabulary}")
    tagger.tag_names_, tagger.constant_, tagger.max_length_ = list(c["tags"]), None, c["max_length"]
    tagger.device_ = torch_device(tagger.device)
    tagger.model_ = network.to(tagger.device_)
    tagger._cache, tagger._lock = {}, threading.Lock()
    # one text through tokenizer and network now: parts that each load but do not work together
    # (a tokenizer class swapped for another's) are refused here, not at the user's first call
    try:
        tagger.token_proba(TokenFeatures([TRACE_TEXTS[1]]), [0])
    except Exception as e:
        raise BundleError(f"the tokenizer and network in {source!r} fail on a probe text: "
                          f"{type(e).__name__}: {e}") from None
    tagger._cache = {}
    return tagger


def hf_card_section(learner_config: dict) -> str:
    """A few lines of Markdown for the model card: what the network reads and gives."""
    tags = learner_config["tags"]
    kind = learner_config["model_config"].get("model_type", "?")
    base = os.path.basename(str(learner_config["params"]["model"]).rstrip("/\\"))  # not the path
    return "\n".join([
        "## Spans", "",
        f"A Hugging Face token-classification network ({kind}, fine-tuned from {base!r}) over "
        f"{len(tags)} BIO tags ({', '.join(tags)}); a word's tags are those of its first subword, and "
        f"a text is read up to {learner_config['max_length']} subwords (words after the cut are O).",
        "Predicted spans are the runs of each word's likeliest tag, offsets in Unicode code points.", "",
        "`load_model(path).predict_spans(texts)` gives one span list per text. `model.onnx` holds the "
        "network: its inputs are the tokenizer's `input_ids` and `attention_mask` "
        "(`model.tagger.tokenizer_`), its output each subword's tag probabilities.", ""])
