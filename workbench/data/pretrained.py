"""Pretrained encoders as a pool's representation: a model people already have, from the
local cache of its library, or any torch module or function they pass.

    Session(pool, store, representation="timm:resnet18")
    Session(pool, store, representation="model2vec:minishlab/potion-base-8M")
    Session(pool, store, representation=my_module)            # any torch.nn.Module
    Session(pool, store, representation=lambda batch: ...)    # batch of items -> (n, d)
    Session(pool, store, representation=pretrained(my_module, size=(224, 224)))

`PretrainedEncoder` is an `Encoder` (workbench.data.encoders) that learns nothing from the
pool: it encodes it. Images (a pool's X, N x H x W [x C] in [0, 1]) are given three channels,
resized to the model's input size and normalised by the model's mean and std (the library's
own: timm's pretrained config, torchvision's weights transforms, open_clip's preprocessing;
ImageNet's for a bare module, the pool's own size, unless `size=`, `mean=`, `std=` say
otherwise). Text encoders read the pool's texts (`pool.items["text"]`), not its X. Batches
are sized to the input, on CUDA when there is one, under `torch.inference_mode`, and the
vectors are L2-normalised (pretrained embeddings compare by angle).

A spec's model is loaded when the session opens (its weights' digest keys the pool's
representation; a missing one fails there, saying how to fetch it), once per session.
What a representation and a model bundle record of it is its spec and a digest of its
weights (a changed model never reuses a stale representation); from those it is loaded
again from the local cache, or refused with how to fetch it (`EncoderUnavailable`). A
module or function given as a Python object cannot be rebuilt from a file: it is named,
and must be passed again. Where each library's model comes from: `pretrained_sources.py`.
"""

from __future__ import annotations

import hashlib
import threading

import numpy as np

from workbench.data.encoders import ENCODERS, Encoder, Progress
from workbench.data.pretrained_sources import (
    EncoderUnavailable,
    Source,
    as_numpy,
    load,
    module_digest,
)

__all__ = ["ENCODERS", "EncoderUnavailable", "PretrainedEncoder", "encoder_inputs", "pretrained"]

TEXT_CHUNK = 1024  # texts per call of a text model (and per progress report)


class PretrainedEncoder(Encoder):
    """A pretrained model as a representation encoder (see the module notes).

    spec: "LIBRARY:NAME" (timm, torchvision, open_clip, sentence-transformers, model2vec), a
        torch.nn.Module, or a function from a batch of items (an array of images or rows, or a
        list of texts) to an (n, d) array.
    size, mean, std, channels: how images are prepared, when not the model's own.
    digest: names a function's version when its code alone does not (what it closes over).
    """

    name = "pretrained"

    def __init__(self, spec, *, size: tuple[int, int] | int | None = None, mean=None, std=None,
                 channels: int = 3, digest: str | None = None, device: str = "auto"):
        self._lock = threading.Lock()
        self._source: Source | None = None
        self.device = device
        self.channels = int(channels)
        self.dims = 0
        if isinstance(spec, str):
            self.spec = spec
            self._source = load(spec)
            self.reads = self._source.reads
        elif _is_module(spec):
            self.spec = f"module:{type(spec).__module__}.{type(spec).__qualname__}"
            spec.eval()
            self._source = Source(spec, "images", digest or module_digest(spec), module=spec,
                                  size=None)
            self.reads = "features"  # images prepared as images; rows of a vector pool as they are
        elif callable(spec):
            name = getattr(spec, "__qualname__", type(spec).__qualname__)
            self.spec = f"callable:{getattr(spec, '__module__', '?')}.{name}"
            self._source = Source(spec, "items", digest or _code_digest(spec))
            self.reads = "items"  # texts of a text pool, else the rows of X
        else:
            raise TypeError(f"representation must be 'auto', True, False, a spec such as "
                            f"'timm:resnet18', a torch.nn.Module or a function; got {type(spec).__name__}")
        src = self._source
        self.digest = src.digest
        size = (size, size) if isinstance(size, int) else size
        self.height, self.width = (int(s) for s in (size or src.size or (0, 0)))
        self.mean, self.std = (self._per_channel(given, default, what) for given, default, what
                               in ((mean, src.mean, "mean"), (std, src.std, "std")))

    def _per_channel(self, given, default, what: str) -> np.ndarray:
        """A mean or std per channel: the given one, or the model's (averaged over its three
        channels for a one-channel network)."""
        values = np.atleast_1d(np.asarray(given if given is not None else default, dtype=np.float32))
        if given is None and len(values) != self.channels:
            values = np.full(self.channels, values.mean(), dtype=np.float32)
        if len(values) not in (1, self.channels):
            raise ValueError(f"{what} has {len(values)} values; expected one per channel ({self.channels})")
        return np.broadcast_to(values, (self.channels,)).astype(np.float32)

    # -- what the representation and a bundle keep -------------------------------------------
    def arrays(self):
        return {"spec": np.asarray(self.spec), "digest": np.asarray(self.digest),
                "reads": np.asarray(self.reads),
                "height": np.asarray(self.height), "width": np.asarray(self.width),
                "channels": np.asarray(self.channels), "mean": self.mean, "std": self.std}

    @classmethod
    def from_arrays(cls, arrays):
        """Its settings back; the model itself is loaded from the local cache when it is
        first used, or `check()`ed now (a model bundle does)."""
        encoder = cls.__new__(cls)
        encoder._lock, encoder._source, encoder.device = threading.Lock(), None, "auto"
        for key in ("spec", "digest", "reads"):
            encoder.__dict__[key] = str(np.asarray(arrays[key]).item())
        for key in ("height", "width", "channels"):
            encoder.__dict__[key] = int(np.asarray(arrays[key]).item())
        encoder.dims = 0  # known once it encodes: not part of what keys a representation
        encoder.mean = np.asarray(arrays["mean"], dtype=np.float32)
        encoder.std = np.asarray(arrays["std"], dtype=np.float32)
        return encoder

    def describe(self) -> str:
        return f"{self.spec} (weights {self.digest[:12]})"

    def check(self) -> PretrainedEncoder:
        """Load the model now: EncoderUnavailable, naming it and how to fetch it, when it
        is not on this machine or its weights differ from the recorded ones."""
        self._load()
        return self

    def _load(self) -> Source:
        with self._lock:
            if self._source is not None:
                return self._source
            if self.spec.startswith(("module:", "callable:")):
                kind = "torch module" if self.spec.startswith("module:") else "function"
                raise EncoderUnavailable(
                    f"this was encoded by a {kind} given as a Python object, "
                    f"{self.spec.split(':', 1)[1]} (weights {self.digest[:12]}), which no file can "
                    "rebuild: pass it again, as representation=<the same object>")
            source = load(self.spec)
            if source.digest != self.digest:
                raise EncoderUnavailable(
                    f"the weights of {self.spec!r} on this machine (digest {source.digest[:12]}) are "
                    f"not those this was made with ({self.digest[:12]}); fetch that version of the "
                    "model, or build the representation again with this one")
            self._source = source
            return source

    # -- encoding ----------------------------------------------------------------------------
    def inputs_of(self, pool):
        """What this encoder reads of `pool`: its texts, or its X."""
        if self.reads == "texts" or (self.reads == "items" and pool.kind == "text"):
            if pool.kind != "text" or "text" not in pool.items:
                raise ValueError(f"the encoder {self.spec!r} reads texts; the pool {pool.name!r} holds "
                                 f"{pool.kind} items without a 'text' column")
            return pool.items["text"].astype(str).tolist()
        if self.reads == "images" and (pool.kind != "image" or pool.X.ndim < 3):
            raise ValueError(f"the encoder {self.spec!r} reads images; the pool {pool.name!r} holds "
                             f"{pool.kind} items with features of shape {pool.X.shape[1:]}")
        return pool.X

    def fit_transform(self, X, progress: Progress):
        return self.encode(X, progress)

    def transform(self, X):
        return self.encode(X)

    def encode(self, X, progress: Progress | None = None) -> np.ndarray:
        """Vectors of a batch of items (texts, images or rows), L2-normalised."""
        progress = progress or (lambda fraction, message: None)
        source = self._load()
        texts = self.reads == "texts" or (self.reads == "items" and _are_texts(X))
        if texts:
            if isinstance(X, np.ndarray) and X.dtype.kind in "biuf":
                raise ValueError(f"the encoder {self.spec!r} reads texts; got an array of numbers "
                                 f"of shape {X.shape}")
            out = self._texts(source, [str(t) for t in X], progress)
        else:
            out = self._arrays(source, np.asarray(X, dtype=np.float32), progress)
        self.dims = out.shape[1] if out.ndim == 2 and len(out) else self.dims
        return out / (np.linalg.norm(out, axis=1, keepdims=True) + 1e-12)

    def _texts(self, source, texts, progress) -> np.ndarray:
        out = []
        for start in range(0, len(texts), TEXT_CHUNK):
            out.append(as_numpy(source.embed(texts[start:start + TEXT_CHUNK])))
            progress(min(1.0, (start + TEXT_CHUNK) / len(texts)), f"encoding {len(texts)} texts")
        return np.concatenate(out) if out else np.empty((0, self.dims), np.float32)

    def _arrays(self, source, X, progress) -> np.ndarray:
        import torch

        if source.module is None:  # a function: it gets the items as they are, in batches
            batch = max(1, min(1024, (1 << 22) // max(1, int(np.prod(X.shape[1:])))))
            return self._batches(X, batch, lambda x: as_numpy(source.embed(x)), progress)
        device = torch.device("cuda" if self.device == "auto" and torch.cuda.is_available()
                              else "cpu" if self.device == "auto" else self.device)
        source.module.to(device)
        images = X.ndim >= 3
        shape = (self.channels, self.height or X.shape[1], self.width or X.shape[2]) if images \
            else X.shape[1:]
        # a batch's input is about 16 M floats on a GPU and 4 M on a CPU: big enough to keep
        # the device busy, small enough that the activations (tens of times the input) fit
        budget = (1 << 24) if device.type == "cuda" else (1 << 22)
        batch = max(1, min(512, budget // max(1, int(np.prod(shape)))))
        embed = source.embed

        def run(x):
            xb = torch.from_numpy(np.ascontiguousarray(x)).to(device)
            if images:
                xb = self.prepare(xb)
            with torch.inference_mode():
                return as_numpy(embed(xb))

        return self._batches(X, batch, run, progress)

    def _batches(self, X, batch, run, progress) -> np.ndarray:
        out = []
        for start in range(0, len(X), batch):
            out.append(run(X[start:start + batch]))
            progress(min(1.0, (start + batch) / len(X)), f"encoding {len(X)} items")
        return np.concatenate(out) if out else np.empty((0, self.dims), np.float32)

    def prepare(self, x, *, antialias: bool = True):
        """Images (a tensor N x H x W [x C] in [0, 1]) as the model reads them: N x C x H' x W',
        resized and normalised. (Antialiasing changes only shrinking: the ONNX export, which
        has none, is refused for images larger than the model's input.)"""
        import torch
        import torch.nn.functional as F

        x = x[:, None] if x.ndim == 3 else x.permute(0, 3, 1, 2)
        if x.shape[1] == 1 and self.channels != 1:
            x = x.expand(-1, self.channels, -1, -1)
        elif x.shape[1] == 4 and self.channels == 3:  # RGBA: the alpha channel is not colour
            x = x[:, :3]
        elif x.shape[1] != self.channels and self.channels == 1:
            x = x.mean(1, keepdim=True)
        size = (self.height or x.shape[2], self.width or x.shape[3])
        if tuple(x.shape[2:]) != size:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=antialias)
        mean = torch.as_tensor(self.mean, device=x.device).reshape(1, -1, 1, 1)
        std = torch.as_tensor(self.std, device=x.device).reshape(1, -1, 1, 1)
        return (x - mean) / std

    @property
    def module(self):
        """The torch module that encodes (images), loaded from the cache if need be; None
        for a text model or a function."""
        return self._load().module

    def __deepcopy__(self, memo):  # its weights never change: a copy (sklearn's clone) is itself
        return self

    def __repr__(self) -> str:
        return f"PretrainedEncoder({self.spec!r})"

    def __getstate__(self):  # a worker process gets the settings and loads the model itself
        state = dict(self.__dict__)
        state.pop("_lock")
        if not self.spec.startswith(("module:", "callable:")):
            state["_source"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()


ENCODERS[PretrainedEncoder.name] = PretrainedEncoder


def pretrained(spec, **options) -> PretrainedEncoder:
    """A pretrained encoder (see `PretrainedEncoder`); an encoder passes through."""
    if isinstance(spec, PretrainedEncoder) and not options:
        return spec
    return PretrainedEncoder(spec, **options)


def encoder_inputs(encoder, pool):
    """What a given fitted `encoder` reads of `pool`: its texts for a text model, else its X."""
    inputs_of = getattr(encoder, "inputs_of", None)
    return pool.X if inputs_of is None else inputs_of(pool)


def _is_module(value) -> bool:
    try:
        import torch
    except ImportError:
        return False
    return isinstance(value, torch.nn.Module)


def _are_texts(X) -> bool:
    if isinstance(X, np.ndarray):
        return X.dtype.kind in "OUS"
    return isinstance(X, (list, tuple)) and bool(X) and isinstance(X[0], str)


def _code_digest(fn) -> str:
    """A function's code (its bytecode and constants); what it closes over is not seen, which
    `digest=` names instead."""
    code = getattr(fn, "__code__", None) or getattr(type(fn).__call__, "__code__", None)
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', type(fn).__qualname__)}".encode())
    if code is not None:
        h.update(code.co_code)
        h.update(repr(code.co_consts).encode())
    return h.hexdigest()
