"""The parts of a spans bundle whose tagger is a fine-tuned Hugging Face model
(`workbench.learn.hf_tagger.HFTokenTagger`), and that tagger rebuilt from them.

The bundle keeps its usual four files (workbench.learn.bundle_layout); nothing of Hugging
Face's own folder format is added beside them, so a bundle is still read, verified and refused
as every other is:

    learner config   type "HFTokenTagger", params (the tagger's settings, `model` naming the
                     network it was fine-tuned from), tags (the BIO tags, the head's columns),
                     max_length (subwords per text), model_config (the network's
                     `PretrainedConfig` as JSON), tokenizer_files (the fast tokenizer as its
                     `save_pretrained` writes it: file name -> text)
    tensors          hf.<name>: every tensor of the network's state dict (floats as float32)
    model.onnx       the network exported by torch's TorchScript exporter: input_ids and
                     attention_mask (int64, texts x subwords) in, each subword's tag
                     probabilities and likeliest tag out; a word's tags are its first subword's

Rebuilding makes the network from its config (`from_config`: an architecture transformers
ships, never code from the bundle) and loads the tensors strictly, and the tokenizer from its
files in a temporary folder, so a loaded model tags with the same code on the same numbers as
the session did. Before anything is written the graph must agree with the tagger within 1e-4
on a few pool texts (`check_agreement`).
"""

from __future__ import annotations

import copy
import io
import json
import re
import reprlib
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from workbench.learn.bundle_errors import BundleError

__all__ = ["HF_OUTPUTS", "TRACE_TEXTS", "check_agreement", "hf_bundle_parts", "hf_card_section",
           "hf_onnx_graph", "rebuild_hf_tagger"]

PREFIX = "hf."
PARAMS = ("model", "labels", "epochs", "batch_size", "learning_rate", "weight_decay", "max_length",
          "random_state")
FIELDS = ("type", "params", "tags", "max_length", "model_config", "tokenizer_files")
# what a fast tokenizer's save_pretrained writes: JSON (tokenizer.json, its config, the special
# tokens), perhaps a vocabulary or a chat template as text; never a path, never binary
TOKENIZER_FILE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}\.(json|txt|jinja)")
OPSET = 17
# what config.json's "outputs" says of the graph
HF_OUTPUTS = {"probabilities": "float32 (texts, subwords, tags): each subword's probability of each tag of "
                               "learner.tags; the graph's inputs are the tokenizer's input_ids and "
                               "attention_mask (int64, texts x subwords); a word's tags are its first "
                               "subword's",
              "class_index": "int64 (texts, subwords): index into learner.tags",
              "spans": "not in the graph: the runs of B-X, I-X... tags of the likeliest tag of each word, "
                       "(start, end, X) in code points of the text (load_model's SpanModel reads them)"}
# the graph is traced on the check texts, or on these when there are fewer than two
TRACE_TEXTS = ("Alice Okafor met Bob in Paris.", "Minister Ivan Petrov of Acme Corp. visited Kyiv on Monday.")


def _shown(value) -> str:
    return f"{type(value).__name__} {reprlib.repr(value)}"


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
            if not TOKENIZER_FILE.fullmatch(path.name):
                raise ValueError(f"the tokenizer wrote {path.name!r}, which a bundle does not hold (it "
                                 "keeps a fast tokenizer's JSON and text files only)")
            files[path.name] = path.read_text(encoding="utf-8")
    state = tagger.model_.state_dict()
    tensors = {}
    for name, value in state.items():
        value = value.detach().cpu()
        if value.is_floating_point():
            value = value.float()
        tensors[PREFIX + name] = np.ascontiguousarray(value.numpy())
    config = {"type": "HFTokenTagger", "params": params, "tags": list(tagger.tag_names_),
              "max_length": int(tagger.max_length_),
              "model_config": json.loads(tagger.model_.config.to_json_string(use_diff=False)),
              "tokenizer_files": files}
    return config, tensors


class _Tags:
    """The network as the graph computes it: subword ids in, tag probabilities out."""

    @staticmethod
    def module(network):
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
        torch.onnx.export(_Tags.module(network), inputs, out, dynamo=False, opset_version=OPSET,
                          input_names=["input_ids", "attention_mask"],
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
    params = config["params"]
    if not isinstance(params, Mapping) or sorted(params) != sorted(PARAMS):
        raise BundleError(f"learner.params is {_shown(params)}; expected the settings {list(PARAMS)}")
    from workbench.learn.hf_tagger import HFTokenTagger

    labels = [str(c) for c in classes]
    expected = HFTokenTagger("", labels=labels).tags()
    if config["tags"] != expected:
        raise BundleError(f"learner.tags is {_shown(config['tags'])}; expected {expected} (the BIO tags "
                          "of the bundle's classes, in that order)")
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
        if not TOKENIZER_FILE.fullmatch(name) or not isinstance(text, str):
            raise BundleError(f"learner.tokenizer_files has {name!r} ({_shown(text)}); expected file names "
                              "ending in .json, .txt or .jinja, without folders, each with its text")
    return dict(config)


def _network(model_config: Mapping, tensors: Mapping, source: str):
    import torch
    from transformers import AutoConfig, AutoModelForTokenClassification
    from transformers.utils import logging as hf_logging

    settings = dict(model_config)
    kind = settings.pop("model_type")
    settings.pop("auto_map", None)  # code to fetch from a hub repository: never run from a bundle
    try:
        config = AutoConfig.for_model(kind, **settings)
    except (ValueError, KeyError) as e:  # a model_type this transformers does not ship
        raise BundleError(f"learner.model_config.model_type {kind!r} in {source!r} is not an architecture "
                          f"this transformers knows ({e})") from None
    state = {k[len(PREFIX):]: torch.from_numpy(np.array(v)) for k, v in tensors.items()}
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        # first on the meta device, which allocates nothing: a config that asks for a network
        # larger than the weights the bundle holds is refused before any memory is spent on it
        with torch.device("meta"):
            shapes = {k: tuple(v.shape) for k, v in AutoModelForTokenClassification.from_config(
                config, trust_remote_code=False).state_dict().items()}
        given = {k: tuple(v.shape) for k, v in state.items()}
        if shapes != given:
            wrong = sorted(set(shapes) ^ set(given)) or sorted(k for k in shapes if shapes[k] != given[k])
            name = wrong[0]
            raise BundleError(f"model.safetensors in {source!r} does not fit the network its config "
                              f"describes: {name!r} is {given.get(name, 'missing')} in the bundle, "
                              f"{shapes.get(name, 'not a tensor')} in the network")
        network = AutoModelForTokenClassification.from_config(config, trust_remote_code=False).float()
    finally:
        hf_logging.set_verbosity(verbosity)
    network.load_state_dict(state, strict=True)
    return network.eval()


def _tokenizer(files: Mapping, source: str):
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as folder:
        for name, text in files.items():
            (Path(folder) / name).write_text(text, encoding="utf-8")
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
        except Exception as e:  # a damaged tokenizer.json, an unknown class: refused, named
            raise BundleError(f"learner.tokenizer_files in {source!r} do not make a tokenizer: "
                              f"{type(e).__name__}: {e}") from None
    if not getattr(tokenizer, "is_fast", False):
        raise BundleError(f"learner.tokenizer_files in {source!r} make a slow {type(tokenizer).__name__}; "
                          "an HFTokenTagger reads words through a fast tokenizer's offsets")
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def rebuild_hf_tagger(config, tensors: Mapping, classes, source: str = "the bundle"):
    """The HFTokenTagger a bundle's learner config and tensors (names without "learner.")
    describe, ready to tag; BundleError naming the field for anything else."""
    import threading

    from workbench.data.devices import torch_device
    from workbench.learn.hf_tagger import HFTokenTagger

    c = _checked(config, classes)
    params = c["params"]
    if unknown := sorted(k for k in tensors if not k.startswith(PREFIX)):
        raise BundleError(f"model.safetensors in {source!r} holds {unknown[:5]}, which an HFTokenTagger's "
                          f"network does not have (its tensors are named {PREFIX}...)")
    try:
        tagger = HFTokenTagger(**params)
    except TypeError as e:
        raise BundleError(f"learner.params in {source!r}: {e}") from None
    tagger.tokenizer_ = _tokenizer(c["tokenizer_files"], source)
    network = _network(c["model_config"], tensors, source)
    if network.config.num_labels != len(c["tags"]):
        raise BundleError(f"the network in {source!r} gives {network.config.num_labels} tags; "
                          f"learner.tags lists {len(c['tags'])}")
    tagger.tag_names_, tagger.constant_, tagger.max_length_ = list(c["tags"]), None, c["max_length"]
    tagger.device_ = torch_device(tagger.device)
    tagger.model_ = network.to(tagger.device_)
    tagger._cache, tagger._lock = {}, threading.Lock()
    return tagger


def hf_card_section(learner_config: dict) -> str:
    """A few lines of Markdown for the model card: what the network reads and gives."""
    tags = learner_config["tags"]
    kind = learner_config["model_config"].get("model_type", "?")
    base = learner_config["params"]["model"]
    return "\n".join([
        "## Spans", "",
        f"A Hugging Face token-classification network ({kind}, fine-tuned from {base!r}) over "
        f"{len(tags)} BIO tags ({', '.join(tags)}); a word's tags are those of its first subword, and "
        f"a text is read up to {learner_config['max_length']} subwords (words after the cut are O).",
        "Predicted spans are the runs of each word's likeliest tag, offsets in Unicode code points.", "",
        "`load_model(path).predict_spans(texts)` gives one span list per text. `model.onnx` holds the "
        "network: its inputs are the tokenizer's `input_ids` and `attention_mask` "
        "(`model.tagger.tokenizer_`), its output each subword's tag probabilities.", ""])
