"""Model bundles: a trained model as a folder (or one zip) that loads anywhere, runs no code.

The layout is the Hugging Face Hub's, so `huggingface_hub.upload_folder` would publish a
bundle unchanged:

    config.json        classes in order, the input signature, every preprocessing step (the
                       representation's encoder, a text vectoriser) and the learner's settings
    model.safetensors  every array: encoder, vectoriser and learner weights (no pickle)
    model.onnx         the whole predict path as one graph (see workbench.learn.onnx_graph)
    README.md          the model card (written by workbench.loop.export)
    manifest.json      the sha256 and size of every other file, and what wrote them

Why no pickle: pickle-based model formats (MLflow, skops, torch.save) have had
arbitrary-code-execution advisories, because loading one runs code chosen by whoever wrote
it. Here loading parses JSON, safetensors and protobuf only; a file that holds a pickle, a
file the manifest does not list or whose checksum differs, a zip entry that would land
outside the bundle, and a bundle from a newer format version are refused by name before
anything is built from them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import re
import reprlib
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from workbench._version import __version__
from workbench.learn.bundle_config import check_config
from workbench.learn.bundle_errors import BundleError
from workbench.learn.learner_state import (
    NotRebuildable,
    encoder_state,
    learner_state,
    restore_encoder,
    restore_learner,
)
from workbench.learn.model import InputSignature, Model

__all__ = ["BundleError", "Bundle", "FORMAT_VERSION", "load_model", "read_bundle", "write_bundle"]

FORMAT = "workbench-model"
FORMAT_VERSION = 1
CONFIG, WEIGHTS, GRAPH, CARD, MANIFEST = ("config.json", "model.safetensors", "model.onnx",
                                          "README.md", "manifest.json")
BUNDLE_FILES = (CONFIG, WEIGHTS, GRAPH, CARD)  # what a manifest may list
PICKLE_SUFFIXES = (".pkl", ".pickle", ".pt", ".pth", ".joblib", ".bin", ".ckpt", ".npy")
MAX_BYTES = 4 << 30  # one file larger than this is refused before it is read
MAX_MANIFEST = 1 << 20
MAX_JSON_DEPTH = 100  # config.json's deepest is a chain of bundles each started from the last


@dataclass
class Bundle:
    """A verified bundle's parsed parts."""

    source: str
    config: dict
    tensors: dict[str, np.ndarray]
    card: str
    manifest: dict
    files: dict[str, bytes]  # every file as verified, the manifest too: what a copy writes

    @property
    def onnx(self) -> bytes:
        return self.files[GRAPH]

    def model(self) -> Model:
        return _model_from(self)


# -- writing ----------------------------------------------------------------------------------------
def write_bundle(model: Model, path, *, card: str, training: dict | None = None,
                 as_zip: bool = False, overwrite: bool = False, check_items=None) -> Path:
    """Write `model` as a bundle folder at `path` (or, `as_zip`, one .zip file). With
    `check_items` (a few items of the pool), the ONNX graph is run on them first and must
    agree with the model within 1e-4: a graph that drifted from the weights is never written."""
    from safetensors.numpy import save

    from workbench.learn.onnx_graph import to_onnx

    path = Path(path)
    config, tensors = bundle_parts(model, training=training)
    try:
        graph = to_onnx(model).SerializeToString()
    except ValueError as e:
        raise BundleError(f"cannot export this model: {e}") from e
    if check_items is not None and len(check_items):
        _check_agreement(model, graph, check_items)
    files = {CONFIG: json.dumps(config, indent=1, ensure_ascii=False).encode(),
             WEIGHTS: save({k: np.ascontiguousarray(v) for k, v in tensors.items()},
                           metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION)}),
             GRAPH: graph, CARD: card.encode()}
    files[MANIFEST] = json.dumps(manifest_for(files), indent=1).encode()
    if path.exists() and not overwrite:
        raise BundleError(f"{str(path)!r} already exists; choose another path or pass overwrite=True")
    if path.exists() and not _is_bundle(path):  # overwrite replaces a bundle, nothing else
        raise BundleError(f"{str(path)!r} exists and is not a model bundle; refusing to replace it")
    if as_zip:
        _write_zip(path, files)
    else:
        _write_folder(path, files)
    return path


def _check_agreement(model: Model, graph: bytes, items) -> None:
    X = model.signature.features(items)
    expected = model.predict_proba(X)
    got = onnx_session(graph).run(
        ["probabilities"], {"items": np.ascontiguousarray(X, dtype=np.float32)})[0]
    worst = float(np.abs(got - expected).max())
    if not worst <= 1e-4:
        raise BundleError(f"the ONNX graph disagrees with the model by {worst:.2g} on {len(X)} "
                          "items (at most 1e-4 expected); not writing a broken bundle")


def _is_bundle(path: Path) -> bool:
    if path.is_dir():
        return (path / MANIFEST).is_file() and all(p.name in (*BUNDLE_FILES, MANIFEST)
                                                   for p in path.iterdir())
    try:
        with zipfile.ZipFile(path) as z:
            return MANIFEST in {PurePosixPath(n).name for n in z.namelist()}
    except (zipfile.BadZipFile, OSError):
        return False


def bundle_parts(model: Model, *, training: dict | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """(config.json's content, the tensors) of a model. A learner with no array form is kept
    in the ONNX graph alone; it must convert there (to_onnx says so at export if not)."""
    sig = model.signature
    config = {"format": FORMAT, "format_version": FORMAT_VERSION,
              "classes": [c.item() if hasattr(c, "item") else c for c in model.classes],
              "input": {"kind": sig.kind, "shape": list(sig.shape), "dtype": sig.dtype,
                        "image_scale": sig.image_scale, "feature_names": sig.feature_names,
                        "onnx_input": "items", "raw_texts": sig.text is not None},
              "preprocessing": [], "training": training or {}}
    tensors: dict[str, np.ndarray] = {}
    if sig.text is not None:
        text_config, arrays = sig.text.state()
        config["preprocessing"].append({"step": "text-vectoriser", "in_onnx": False, **text_config})
        tensors.update({f"text.{k}": v for k, v in arrays.items()})
    if model.encoder is not None:
        enc_config, arrays = encoder_state(model.encoder)
        config["preprocessing"].append({"step": "representation", "in_onnx": True, **enc_config})
        tensors.update({f"encoder.{k}": v for k, v in arrays.items()})
    try:
        learner_config, arrays = learner_state(model.learner)
        tensors.update({f"learner.{k}": v for k, v in arrays.items()})
    except NotRebuildable as e:
        learner_config = {"type": "onnx", "estimator": type(model.learner).__name__,
                          "why": str(e)}
    config["learner"] = learner_config
    config["outputs"] = {"probabilities": "float32 (N, classes), columns in `classes` order",
                         "class_index": "int64 (N,): index into `classes`"}
    return config, tensors


def manifest_for(files: dict[str, bytes]) -> dict:
    import onnx
    import safetensors

    versions = {"workbench": __version__, "python": platform.python_version(),
                "numpy": np.__version__, "onnx": onnx.__version__,
                "safetensors": safetensors.__version__}
    return {"format": FORMAT, "format_version": FORMAT_VERSION,
            "files": {name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
                      for name, data in sorted(files.items())},
            "written_by": versions}


def shareable(path: Path, *, folder: bool) -> None:
    """Give a staged file or folder the permissions a plain `mkdir`/`open` would have had:
    mkdtemp and mkstemp make them private (0700/0600), and a bundle on a shared drive, or a
    registry version, is for colleagues to read."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if folder else 0o666) & ~umask)


def _write_folder(path: Path, files: dict[str, bytes]) -> None:
    # Written beside the target, then renamed: a reader never sees half a bundle.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}-"))
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        shareable(tmp, folder=True)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_zip(path: Path, files: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".zip.tmp")
    try:
        with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in files.items():
                z.writestr(name, data)
        shareable(Path(tmp), folder=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- reading ------------------------------------------------------------------------------------------
def read_bundle(path) -> Bundle:
    """Read and verify a bundle folder or zip; nothing in it is executed.

    The manifest is read first, and only the files it lists, each at most the size it
    states: an unlisted or oversized entry, a FIFO or a link is refused before a byte of it
    is read, so a crafted bundle can neither hang the reader nor fill its memory."""
    path = Path(path)
    if path.is_dir():
        source = _Folder(path)
    elif path.is_file():
        if not zipfile.is_zipfile(path):
            raise BundleError(f"{str(path)!r} is neither a bundle folder nor a zip file")
        source = _Zip(path)
    else:
        raise BundleError(f"no bundle at {str(path)!r}")
    with source:
        return _verify(str(path), source)


class _Folder:
    def __init__(self, path: Path):
        self.path = path
        self.entries = {}
        for p in sorted(path.iterdir()):
            mode = p.lstat().st_mode
            if stat.S_ISLNK(mode):
                raise BundleError(f"{p.name!r} in {str(path)!r} is a symbolic link; a bundle holds "
                                  "plain files")
            if not stat.S_ISREG(mode):
                kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
                raise BundleError(f"{p.name!r} in {str(path)!r} is {kind}; a bundle holds plain files")
            self.entries[p.name] = p

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def read(self, name: str, limit: int) -> bytes:
        with open(self.entries[name], "rb") as f:
            return f.read(limit + 1)


class _Zip:
    def __init__(self, path: Path):
        self.path = path
        try:
            self.zip = zipfile.ZipFile(path)
            infos = [i for i in self.zip.infolist() if not i.is_dir()]
        except (zipfile.BadZipFile, OSError) as e:
            raise BundleError(f"{str(path)!r} is not a readable zip file ({e})") from e
        for info in infos:
            _check_entry(path, info.filename)
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise BundleError(f"zip entry {info.filename!r} in {str(path)!r} is a symbolic link")
        # flat, or everything inside one top folder (a zipped bundle folder)
        names = [i.filename for i in infos]
        tops = {PurePosixPath(n).parts[0] for n in names}
        prefix = tops.pop() + "/" if len(tops) == 1 and all("/" in n for n in names) else ""
        self.entries = {}
        for info in infos:
            name = info.filename[len(prefix):]
            if "/" in name:
                raise BundleError(f"zip entry {info.filename!r} in {str(path)!r} is in a subfolder; "
                                  "a bundle holds plain files")
            if name in self.entries:  # which copy would an unzip tool take? neither
                raise BundleError(f"zip entry {info.filename!r} appears twice in {str(path)!r}")
            self.entries[name] = info

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.zip.close()
        return False

    def read(self, name: str, limit: int) -> bytes:
        info = self.entries[name]
        if info.file_size > limit:
            return b"\0" * (limit + 1)  # the caller reports the size; nothing is inflated
        try:
            with self.zip.open(info) as f:
                return f.read(limit + 1)
        except (zipfile.BadZipFile, OSError, EOFError) as e:  # a bad CRC, a truncated entry
            raise BundleError(f"zip entry {info.filename!r} in {str(self.path)!r} is damaged ({e})") from e


def _check_entry(path: Path, name: str) -> None:
    pure = PurePosixPath(name.replace("\\", "/"))
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or pure.is_absolute():
        raise BundleError(f"zip entry {name!r} in {str(path)!r} has an absolute path; refusing the zip")
    if ".." in pure.parts:
        raise BundleError(f"zip entry {name!r} in {str(path)!r} has '..' in its path; refusing the zip")


def _verify(source: str, entries) -> Bundle:
    names = set(entries.entries)
    if MANIFEST not in names:
        raise BundleError(f"{source!r} has no {MANIFEST}; it is not a workbench model bundle")
    data = data_of_manifest = entries.read(MANIFEST, MAX_MANIFEST)
    if len(data) > MAX_MANIFEST:
        raise BundleError(f"{MANIFEST} in {source!r} is larger than {MAX_MANIFEST} bytes")
    _refuse_pickle(source, MANIFEST, data)
    manifest = _json(source, MANIFEST, data)
    _check_version(source, MANIFEST, manifest)
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        raise BundleError(f"{MANIFEST} in {source!r} has no 'files' table")
    for name in sorted((names | set(listed)) - {MANIFEST}):
        if name.lower().endswith(PICKLE_SUFFIXES):
            raise BundleError(f"{name!r} in {source!r} holds a pickle (its name ends in "
                              f"{Path(name).suffix}, a pickle format); a bundle never runs code when "
                              "loaded, so it is refused")
        if name not in listed:
            raise BundleError(f"{name!r} in {source!r} is not in the manifest; refusing a bundle with "
                              "files nobody vouched for")
        if name not in BUNDLE_FILES:
            raise BundleError(f"{name!r} in {source!r} is not a bundle file; a bundle holds only "
                              f"{', '.join(BUNDLE_FILES)} and {MANIFEST}")
        if name not in names:
            raise BundleError(f"{name!r} is listed in {MANIFEST} but missing from {source!r}")
    files = {}
    for name, entry in sorted(listed.items()):
        size = entry.get("bytes") if isinstance(entry, dict) else None
        if not isinstance(size, int) or not 0 <= size <= MAX_BYTES:
            raise BundleError(f"{MANIFEST} in {source!r} gives {name!r} a size of {size!r}; expected "
                              f"a whole number of bytes up to {MAX_BYTES}")
        data = entries.read(name, size)
        if len(data) != size:
            raise BundleError(f"size mismatch for {name!r} in {source!r}: the manifest says {size} "
                              f"bytes, the file has {'more' if len(data) > size else len(data)}; it "
                              "was changed after export")
        _refuse_pickle(source, name, data)
        digest = hashlib.sha256(data).hexdigest()
        if digest != entry.get("sha256"):
            raise BundleError(f"checksum mismatch for {name!r} in {source!r}: the manifest says "
                              f"sha256 {str(entry.get('sha256'))[:12]}..., the file has {digest[:12]}...; "
                              "it was changed after export")
        files[name] = data
    for name in (CONFIG, WEIGHTS, GRAPH):
        if name not in files:
            raise BundleError(f"{source!r} has no {name}")
    config = _json(source, CONFIG, files[CONFIG])
    _check_version(source, CONFIG, config)
    check_config(source, config)  # workbench.learn.bundle_config: JSON Schema
    try:
        from safetensors.numpy import load

        tensors = load(files[WEIGHTS])
    except Exception as e:  # a malformed header: safetensors parses, it never executes
        raise BundleError(f"{WEIGHTS} in {source!r} is not a valid safetensors file ({e})") from e
    check_graph(source, files[GRAPH])
    try:
        card = files.get(CARD, b"").decode("utf-8")
    except UnicodeDecodeError as e:
        raise BundleError(f"{CARD} in {source!r} is not UTF-8 text ({e})") from e
    files[MANIFEST] = data_of_manifest
    return Bundle(source, config, tensors, card, manifest, files)


ONNX_DOMAINS = ("", "ai.onnx", "ai.onnx.ml")  # the standard operator sets; nothing custom


def check_graph(source: str, data: bytes) -> None:
    """Refuse an ONNX graph that reaches outside itself: a tensor stored as external data
    (onnxruntime would read that file, relative to the working directory, into the model),
    an operator outside the standard domains (a custom op library), or local functions.
    What is left is arithmetic on the items; a deliberately huge graph can still use much
    memory, as any model can."""
    import onnx

    try:
        model = onnx.load_model_from_string(data)
    except Exception as e:  # protobuf parsing: no code runs
        raise BundleError(f"{GRAPH} in {source!r} is not a valid ONNX model ({e})") from e
    for opset in model.opset_import:
        if opset.domain not in ONNX_DOMAINS:
            raise BundleError(f"{GRAPH} in {source!r} imports the operator set {opset.domain!r}; only "
                              "the standard ONNX operators are allowed")
    if len(model.functions):
        raise BundleError(f"{GRAPH} in {source!r} defines functions; a bundle's graph has none")
    for where, part in _parts(model):
        if isinstance(part, onnx.NodeProto) and part.domain not in ONNX_DOMAINS:
            raise BundleError(f"{GRAPH} in {source!r} uses the operator {part.domain}.{part.op_type} "
                              f"at {where}; only the standard ONNX operators are allowed")
        if isinstance(part, onnx.TensorProto) and (
                part.data_location == onnx.TensorProto.EXTERNAL or len(part.external_data)):
            location = next((e.value for e in part.external_data if e.key == "location"), None)
            raise BundleError(f"{GRAPH} in {source!r} stores the tensor {reprlib.repr(part.name)} at "
                              f"{where} in an external file ({reprlib.repr(location)}); a bundle's "
                              "graph must hold all of its data")


def _parts(message, where: str = ""):
    """(where, message) for `message` and every message inside it, at any depth. The walk
    follows the protobuf fields themselves rather than a list of the places ONNX keeps
    tensors, so none is missed: a sparse tensor's indices, a node's `tensors` or
    `sparse_tensors` attribute, a subgraph of a subgraph, a training graph. (protobuf
    refuses to parse messages nested more than 100 deep, so the recursion is bounded.)"""
    from google.protobuf.message import Message

    yield where, message
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:  # numbers, strings, bytes: nothing inside
            continue
        path = f"{where}.{descriptor.name}" if where else descriptor.name
        if isinstance(value, Message):
            yield from _parts(value, path)
        else:
            for i, item in enumerate(value):
                name = getattr(item, "name", "")
                yield from _parts(item, f"{path}[{i}]" + (f" {reprlib.repr(name)}" if name else ""))


def _refuse_pickle(source: str, name: str, data: bytes) -> None:
    """Pickles (and torch.save files, which are zips around one) by content, for a clear
    message: the parsers each file goes through (JSON, safetensors, ONNX, UTF-8) would
    refuse them anyway, and nothing here unpickles."""
    why = None
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5 and data[8:9] != b"{":
        # (a safetensors file whose header is 640-1535 bytes long starts with the same two
        # bytes; its JSON header then begins at byte 8, where a pickle has no '{')
        why = f"it starts with the pickle protocol {data[1]} header"
    elif data[:4] == b"PK\x03\x04":
        try:
            inner = zipfile.ZipFile(io.BytesIO(data)).namelist()
        except zipfile.BadZipFile:
            inner = []
        if any(n.endswith(".pkl") for n in inner):
            why = "it is a torch.save archive (a pickle inside a zip)"
    elif data[:6] == b"\x93NUMPY" and (b"'O'" in data[:256] or b"'|O'" in data[:256]):
        why = "it is a NumPy file of Python objects (pickled)"
    if why:
        raise BundleError(f"{name!r} in {source!r} holds a pickle ({why}); a bundle never runs code "
                          "when loaded, so it is refused")


def _json(source: str, name: str, data: bytes) -> dict:
    too_deep = (f"{name} in {source!r} is nested more than {MAX_JSON_DEPTH} levels deep; a "
                "bundle's JSON is not")
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BundleError(f"{name} in {source!r} is not valid JSON ({e})") from e
    except RecursionError:  # the parser recurses per level: thousands of '[' exhaust it
        raise BundleError(too_deep) from None
    # whatever reads it later (a schema check, a model card, json.dumps at the next export)
    # recurses too: a bound here keeps them all far from the recursion limit
    if _depth(value) > MAX_JSON_DEPTH:
        raise BundleError(too_deep)
    if not isinstance(value, dict):
        raise BundleError(f"{name} in {source!r} must hold a JSON object")
    return value


def _depth(value) -> int:
    """How deeply lists and objects nest in a parsed JSON value (1: a flat object), counted
    with a stack, not by recursion."""
    deepest, stack = 0, [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        value, depth = stack.pop()
        deepest = max(deepest, depth)
        inside = value.values() if isinstance(value, dict) else value
        stack.extend((v, depth + 1) for v in inside if isinstance(v, (dict, list)))
    return deepest


def _check_version(source: str, name: str, doc: dict) -> None:
    if doc.get("format") != FORMAT:
        raise BundleError(f"{name} in {source!r} says format {doc.get('format')!r}; expected {FORMAT!r}")
    version = doc.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BundleError(f"{name} in {source!r} has format_version {version!r}; expected a whole "
                          "number from 1")
    if version > FORMAT_VERSION:
        raise BundleError(f"{source!r} was written by bundle format version {version}; this "
                          f"workbench reads versions up to {FORMAT_VERSION}: upgrade workbench to load it")


# -- loading --------------------------------------------------------------------------------------------
def load_model(source, *, registry=None) -> Model:
    """A bundle (folder, zip, or `name@version` in the model registry) as a `Model`:
    `predict(items)`, `predict_proba(items)` on a Pool, an array shaped like a pool's X,
    or raw items of its kind. The manifest is verified first; nothing in it is executed."""
    from workbench.learn.registry import resolve

    path = Path(source) if isinstance(source, (str, os.PathLike)) else None
    if path is None:
        raise BundleError(f"load_model takes a bundle path or 'name@version', got "
                          f"{type(source).__name__}")
    if not path.exists():
        path = resolve(str(source), registry=registry)
    return read_bundle(path).model()


def _model_from(bundle: Bundle) -> Model:
    config, tensors = bundle.config, bundle.tensors
    try:
        spec = config["input"]
        text = None
        encoder = None
        for step in config["preprocessing"]:
            part = {k[len(_prefix(step)) + 1:]: v for k, v in tensors.items()
                    if k.startswith(_prefix(step) + ".")}
            if step["step"] == "text-vectoriser":
                from workbench.data.text import TextVectorizer

                text = TextVectorizer.from_state(step, part)
            elif step["step"] == "representation":
                encoder = restore_encoder(step, part)
            else:
                raise BundleError(f"unknown preprocessing step {step['step']!r} in {CONFIG}")
        signature = InputSignature(kind=spec["kind"], shape=tuple(spec["shape"]), dtype=spec["dtype"],
                                   image_scale=spec["image_scale"], feature_names=spec["feature_names"],
                                   text=text)
        classes = config["classes"]
        learner_config = config["learner"]
        if learner_config["type"] == "onnx":
            learner, encoder = OnnxLearner(bundle.onnx, classes), None
        else:
            learner = restore_learner(learner_config, {k[len("learner."):]: v for k, v in tensors.items()
                                                       if k.startswith("learner.")})
        return Model(learner, classes, signature, encoder=encoder,
                     info={**config.get("training", {}), "bundle": bundle.source})
    except BundleError:
        raise
    except Exception as e:  # whatever a crafted config or weights make the rebuild fail with
        raise BundleError(f"{CONFIG} or {WEIGHTS} in {bundle.source!r} does not describe a model this "
                          f"workbench can rebuild ({type(e).__name__}: {e})") from e


def _prefix(step: dict) -> str:
    return {"text-vectoriser": "text", "representation": "encoder"}.get(step["step"], step["step"])


def onnx_session(graph: bytes):
    """An onnxruntime session of `graph`, made from its bytes (never from a path), whose
    external data, if any were left, could only come from a new empty folder. check_graph
    refuses such a graph already; this is the second wall: from bytes alone, onnxruntime
    would read a relative location against the working directory."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    with tempfile.TemporaryDirectory(prefix="workbench-no-external-data-") as empty:
        options.add_session_config_entry("session.model_external_initializers_file_folder_path",
                                         empty)
        return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


class OnnxLearner:
    """A learner kept only as its ONNX graph (a scikit-learn classifier with no array form
    here): the whole predict path runs in onnxruntime, from items to aligned probabilities."""

    accepts_images = True  # the graph takes items as the pool holds them

    def __init__(self, graph: bytes, classes):
        self.classes_ = np.asarray(classes)
        self._session = onnx_session(graph)

    def predict_proba(self, X, batch: int = 256) -> np.ndarray:
        # in batches: a graph's intermediate maps can take megabytes per item
        X = np.ascontiguousarray(X, dtype=np.float32)
        parts = [self._session.run(["probabilities"], {"items": X[i:i + batch]})[0]
                 for i in range(0, len(X), batch)]
        return np.concatenate(parts) if parts else np.zeros((0, len(self.classes_)), np.float32)
