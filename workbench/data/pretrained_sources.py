"""Where pretrained encoders come from: each library's local cache, never the network.

`load(spec)` turns a spec ("timm:resnet18", "open_clip:ViT-B-32/laion2b_s34b_b79k",
"torchvision:resnet18", "sentence-transformers:NAME", "model2vec:NAME") into a `Source`: the
loaded model as a function from a batch of inputs to vectors, what it reads (images or
texts), how images are prepared for it (input size, mean and std), and a digest of its
weights. A NAME is a Hugging Face id looked up in the local Hugging Face cache only
(`HF_HUB_CACHE`, else `HF_HOME`/hub, else ~/.cache/huggingface/hub) or a local folder.

Nothing here downloads: the Hugging Face hub is switched to offline mode while a model
loads, torchvision's checkpoint is read from torch hub's folder only if it is there, and a
library or weights that are missing raise `EncoderUnavailable`, whose message says how to
fetch them once (the pip install, and a one-line command that downloads the weights).

timm, torchvision and open_clip need a torch build they match (torchvision 0.29 needs torch
2.14); their loading code follows their documented APIs and was not run in this project's CI.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["EncoderUnavailable", "IMAGENET_MEAN", "IMAGENET_STD", "LIBRARIES", "Source", "folder_digest",
           "hf_cache_dir", "load", "module_digest"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class EncoderUnavailable(RuntimeError):
    """A pretrained encoder's library or weights are not on this machine (the message says
    how to fetch them), or an encoder given as a Python object cannot be rebuilt from a file."""


@dataclass
class Source:
    """A loaded pretrained model, ready to encode."""

    embed: Callable          # batch -> (n, d): a float tensor N x 3 x H x W (images) or a list of str
    reads: str               # "images" | "texts"
    digest: str              # of the weights
    module: object = None    # the torch.nn.Module whose output is the vector (images), if any
    size: tuple | None = None  # (H, W) the images are resized to; None: the pool's own
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD


# -- the Hugging Face cache ------------------------------------------------------------------
def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment now (the hub library reads it
    once, at import)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "huggingface" / "hub"


@contextlib.contextmanager
def offline():
    """The Hugging Face hub (and transformers) offline while a model loads: a missing file
    raises instead of downloading. huggingface_hub reads HF_HUB_OFFLINE at import, so its
    constant is set too."""
    saved = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ.update({k: "1" for k in saved})
    try:
        import huggingface_hub.constants as hub
    except ImportError:
        hub = None
    was = getattr(hub, "HF_HUB_OFFLINE", None)
    if hub is not None:
        hub.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        if hub is not None:
            hub.HF_HUB_OFFLINE = was
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def local_folder(name: str, spec: str, pip: str) -> Path:
    """A model's folder: `name` itself when it is a folder, else the snapshot of the Hugging
    Face id `name` in the local cache; EncoderUnavailable otherwise."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    if path.is_absolute() or name.startswith((".", "~")) or name.count("/") > 1:
        raise EncoderUnavailable(f"{spec!r}: there is no folder {str(path)!r}; put the model's files "
                                 "back there (its library's save_pretrained), or name its Hugging Face "
                                 "id to read it from the local Hugging Face cache")
    try:
        from huggingface_hub import snapshot_download

        with offline():
            return Path(snapshot_download(name, cache_dir=hf_cache_dir(), local_files_only=True))
    except ImportError:
        raise EncoderUnavailable(_fetch(spec, pip, name)) from None
    except Exception as e:  # not in the cache (LocalEntryNotFoundError, an invalid id, ...)
        raise EncoderUnavailable(f"{_fetch(spec, pip, name)} (looked in {hf_cache_dir()}: "
                                 f"{type(e).__name__})") from None


def _fetch(spec: str, pip: str, hf_id: str | None = None, python: str | None = None) -> str:
    how = f"`pip install {pip}`"
    if hf_id is not None:
        how += f", then `huggingface-cli download {hf_id}` (or `hf download {hf_id}`)"
    if python is not None:
        how += f", then `python -c \"{python}\"`"
    return (f"the encoder {spec!r} is not on this machine and the workbench never downloads at run "
            f"time; fetch it once: {how}")


# -- digests ----------------------------------------------------------------------------------
def folder_digest(folder: Path) -> str:
    """A digest of a model folder's files. A Hugging Face snapshot's files link to blobs
    named by their content's hash, so those names are hashed rather than the gigabytes."""
    h = hashlib.blake2b(digest_size=16)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode() + b"\0")
        target = Path(os.path.realpath(path))
        if path.is_symlink() and target.parent.name == "blobs":
            h.update(target.name.encode())
        else:
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 22), b""):
                    h.update(chunk)
    return h.hexdigest()


def module_digest(module) -> str:
    """A digest of a torch module's class and every parameter and buffer."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{type(module).__module__}.{type(module).__qualname__}".encode())
    for key, value in module.state_dict().items():
        h.update(f"{key}|{tuple(value.shape)}|{value.dtype}".encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


# -- each library -----------------------------------------------------------------------------
def _import(module: str, spec: str, pip: str, python: str | None = None):
    import importlib

    try:
        return importlib.import_module(module)
    except Exception as e:  # ImportError, or a library that does not match this torch
        raise EncoderUnavailable(f"{_fetch(spec, pip, python=python)} ({module} could not be "
                                 f"imported: {type(e).__name__}: {e})") from None


def _timm(name: str, spec: str) -> Source:
    python = f"import timm; timm.create_model('{name}', pretrained=True)"
    timm = _import("timm", spec, "timm", python)
    _import("timm.data", spec, "timm", python)
    # most timm weights come from the Hugging Face hub, kept offline below; a few only from a
    # URL, through torch hub, which has no offline switch: those must already be in its folder
    try:
        cfg = timm.models.get_pretrained_cfg(name)
    except Exception:  # an unknown name: create_model below says so
        cfg = None
    url = getattr(cfg, "url", None) if cfg is not None and not getattr(cfg, "hf_hub_id", None) else None
    if url:
        _need_file(_torch_hub_file(url), spec, "timm", python)
    try:
        with offline():  # timm fetches pretrained weights through the Hugging Face hub
            model = timm.create_model(name, pretrained=True, num_classes=0)  # pooled features
    except Exception as e:
        raise EncoderUnavailable(f"{_fetch(spec, 'timm', python=python)} ({type(e).__name__}: "
                                 f"{e})") from None
    cfg = timm.data.resolve_data_config({}, model=model)
    return _images(model, cfg["input_size"][1:], cfg["mean"], cfg["std"])


def _torchvision(name: str, spec: str) -> Source:
    model_name, _, weights_name = name.partition("/")
    pip = "torchvision"  # the build that matches this torch (torchvision 0.29: torch 2.14)
    torchvision = _import("torchvision", spec, pip, f"import torchvision; torchvision.models.get_model("
                          f"'{model_name}', weights='{weights_name or 'DEFAULT'}')")
    import torch

    weights_enum = torchvision.models.get_model_weights(model_name)
    weights = weights_enum[weights_name] if weights_name else weights_enum.DEFAULT
    # get_state_dict would download a missing file: read it from torch hub's folder instead
    path = _torch_hub_file(weights.url)
    python = (f"import torchvision; torchvision.models.get_model('{model_name}', "
              f"weights='{weights.name}')")
    _need_file(path, spec, pip, python)
    model = torchvision.models.get_model(model_name, weights=None)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    _drop_classifier(model)
    t = weights.transforms()  # resized to its crop size, not cropped: the whole image is seen
    size = tuple(t.crop_size) * (2 if len(t.crop_size) == 1 else 1)
    return _images(model, size[:2], t.mean, t.std)


def _torch_hub_file(url: str) -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def _need_file(path: Path, spec: str, pip: str, python: str) -> None:
    if not path.is_file():
        raise EncoderUnavailable(f"{_fetch(spec, pip, python=python)} (no {path})")


def _drop_classifier(model) -> None:
    """The last linear layer (the ImageNet classifier) replaced by the identity, so the
    network gives its pooled features."""
    import torch.nn as nn

    for attr in ("fc", "classifier", "heads", "head"):
        layer = getattr(model, attr, None)
        if isinstance(layer, nn.Linear):
            setattr(model, attr, nn.Identity())
            return
        if isinstance(layer, nn.Sequential):
            linear = [i for i, m in enumerate(layer) if isinstance(m, nn.Linear)]
            if linear:
                layer[linear[-1]] = nn.Identity()
                return
    raise EncoderUnavailable(f"cannot find the classifier of {type(model).__name__} to remove; pass "
                             "the network as representation=<module> with its classifier removed")


def _open_clip(name: str, spec: str) -> Source:
    model_name, _, tag = name.partition("/")
    open_clip = _import("open_clip", spec, "open_clip_torch", f"import open_clip; print(open_clip."
                        f"list_pretrained_tags_by_model('{model_name}')); open_clip.create_model("
                        f"'{model_name}', pretrained='{tag or 'TAG'}')")
    tag = tag or (open_clip.list_pretrained_tags_by_model(model_name) or [None])[0]
    python = f"import open_clip; open_clip.create_model_and_transforms('{model_name}', pretrained='{tag}')"
    if tag is None:
        raise EncoderUnavailable(f"open_clip has no pretrained weights for {model_name!r}")
    # weights on the Hugging Face hub are kept offline below; those only at a URL (OpenAI's)
    # are downloaded by open_clip itself, into ~/.cache/clip, unless they are there already
    cfg = getattr(open_clip, "get_pretrained_cfg", lambda *_: {})(model_name, tag) or {}
    if cfg.get("url") and not cfg.get("hf_hub"):
        _need_file(Path("~/.cache/clip").expanduser() / os.path.basename(cfg["url"]), spec,
                   "open_clip_torch", python)
    try:
        with offline():
            model = open_clip.create_model(model_name, pretrained=tag)
    except Exception as e:
        raise EncoderUnavailable(f"{_fetch(spec, 'open_clip_torch', python=python)} "
                                 f"({type(e).__name__}: {e})") from None
    visual = model.visual
    cfg = getattr(visual, "preprocess_cfg", None) or {}
    size = cfg.get("size", getattr(visual, "image_size", 224))
    size = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
    mean = cfg.get("mean", getattr(visual, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN)
    std = cfg.get("std", getattr(visual, "image_std", None) or open_clip.OPENAI_DATASET_STD)
    # the image tower alone: its forward is encode_image's (unnormalised), and it is the
    # module fine-tuning trains (workbench.learn.finetune)
    return _images(visual, size, mean, std)


def _sentence_transformers(name: str, spec: str) -> Source:
    pip = "workbench[text]  (sentence-transformers)"
    folder = local_folder(name, spec, pip)
    st = _import("sentence_transformers", spec, pip)
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    with offline():
        model = st.SentenceTransformer(str(folder), device=device, local_files_only=True)

    def embed(texts, batch_size=64):
        return model.encode(list(texts), batch_size=batch_size, show_progress_bar=False,
                            convert_to_numpy=True)

    return Source(embed, "texts", folder_digest(folder))


def _model2vec(name: str, spec: str) -> Source:
    pip = "model2vec"
    folder = local_folder(name, spec, pip)
    m2v = _import("model2vec", spec, pip)
    # a local folder: from_pretrained then reads it and never reaches the hub
    model = m2v.StaticModel.from_pretrained(str(folder), force_download=False)

    def embed(texts, batch_size=1024):
        return model.encode(list(texts), batch_size=batch_size, use_multiprocessing=False)

    return Source(embed, "texts", folder_digest(folder))


def _images(model, size, mean, std) -> Source:
    model.eval()
    return Source(model, "images", module_digest(model), module=model,
                  size=tuple(int(s) for s in size), mean=tuple(mean), std=tuple(std))


LIBRARIES = {"timm": _timm, "torchvision": _torchvision, "open_clip": _open_clip,
             "sentence-transformers": _sentence_transformers, "model2vec": _model2vec}


def load(spec: str) -> Source:
    """The model a spec names, from the local cache (see the module notes)."""
    library, sep, name = spec.partition(":")
    if not sep or library not in LIBRARIES or not name:
        raise ValueError(f"unknown encoder {spec!r}; expected 'LIBRARY:NAME' with LIBRARY one of "
                         f"{', '.join(LIBRARIES)} (e.g. 'timm:resnet18', "
                         "'model2vec:minishlab/potion-base-8M'), "
                         "a torch.nn.Module, or a function from a batch of items to vectors")
    return LIBRARIES[library](name, spec)


def as_numpy(out) -> np.ndarray:
    """A model's output as a float32 (n, d) array: the first tensor of a tuple or dict, and a
    feature map averaged over its positions."""
    if isinstance(out, dict):
        out = next(iter(out.values()))
    if isinstance(out, (tuple, list)) and not isinstance(out[0], str):
        out = out[0]
    if hasattr(out, "detach"):
        if out.ndim > 2:
            out = out.flatten(2).mean(-1)
        out = out.detach().float().cpu().numpy()
    out = np.asarray(out, dtype=np.float32)
    return out.reshape(len(out), -1)
