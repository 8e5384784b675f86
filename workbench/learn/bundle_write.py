"""Writing a bundle: a model's config, weights, graph and card, a manifest of their
checksums, and the folder or zip they go in, staged beside the target and renamed into
place so that a reader never sees half a bundle. With items to check, the ONNX graph must
agree with the model before anything is written."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np

from workbench._version import __version__
from workbench.data.tasks import BOXES, MULTI_LABEL, SINGLE, SPANS
from workbench.learn import graph_weights
from workbench.learn.box_bundle import box_parts
from workbench.learn.bundle_errors import BundleError
from workbench.learn.bundle_graph import onnx_session
from workbench.learn.bundle_layout import (
    BASE_VERSION,
    BUNDLE_FILES,
    CARD,
    CONFIG,
    FORMAT,
    FORMAT_VERSION,
    GRAPH,
    MANIFEST,
    WEIGHTS,
)
from workbench.learn.learner_state import NotRebuildable, encoder_state, learner_state
from workbench.learn.model import Model
from workbench.learn.span_bundle import span_parts

__all__ = ["PARTS", "bundle_parts", "class_parts", "manifest_for", "shareable", "write_bundle"]


def write_bundle(model, path, *, card: str, training: dict | None = None,
                 as_zip: bool = False, overwrite: bool = False, check_items=None,
                 embed_encoder: bool = False) -> Path:
    """Write `model` (a `Model`, or a `BoxModel` of a boxes session) as a bundle folder at
    `path` (or, `as_zip`, one .zip file). With `check_items` (a few items of the pool), the
    ONNX graph is run on them first and must agree with the model within 1e-4: a graph that
    drifted from the weights is never written. `embed_encoder`: a pretrained image encoder
    goes inside the graph (onnx_encoder.py) rather than being recorded by name and weights
    digest only."""
    from safetensors.numpy import save

    path = Path(path)
    task = getattr(model, "task", SINGLE)
    if task not in PARTS:
        raise BundleError(f"cannot export this model: a {task!r} model has no bundle in this version")
    config, tensors, graph = PARTS[task](model, training=training, check_items=check_items,
                                         embed_encoder=embed_encoder)
    arrays = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    # only weights that could share enough are written twice (as version 2, then as 1 if
    # nothing was shared): most models are far below graph_weights.SHARED_MIN_TOTAL
    could_share = sum(a.nbytes for a in arrays.values()) >= graph_weights.SHARED_MIN_TOTAL
    version = FORMAT_VERSION if could_share else BASE_VERSION
    weights = save(arrays, metadata={"format": FORMAT, "format_version": str(version)})
    shared = 0
    if could_share:
        graph, shared = graph_weights.share_weights(graph, weights)  # (checked above: whole)
        if not shared:
            version = BASE_VERSION
            weights = save(arrays, metadata={"format": FORMAT, "format_version": str(version)})
    config = {**config, "format_version": version}
    files = {CONFIG: json.dumps(config, indent=1, ensure_ascii=False).encode(), WEIGHTS: weights,
             GRAPH: graph, CARD: card.encode()}
    files[MANIFEST] = json.dumps(manifest_for(files, version), indent=1).encode()
    if path.exists() and not overwrite:
        raise BundleError(f"{str(path)!r} already exists; choose another path or pass overwrite=True")
    if path.exists() and not _is_bundle(path):  # overwrite replaces a bundle, nothing else
        raise BundleError(f"{str(path)!r} exists and is not a model bundle; refusing to replace it")
    if as_zip:
        _write_zip(path, files)
    else:
        _write_folder(path, files)
    return path


def class_parts(model: Model, *, training: dict | None = None, check_items=None,
                embed_encoder: bool = False) -> tuple[dict, dict[str, np.ndarray], bytes]:
    """(config.json's content, the tensors, model.onnx) of a model of classes (one per item,
    or a multi-label set), the graph checked against the model on `check_items`."""
    from workbench.learn.onnx_graph import to_onnx

    config, tensors = bundle_parts(model, training=training, embed_encoder=embed_encoder)
    try:
        graph = to_onnx(model, embed_encoder=embed_encoder).SerializeToString()
    except ValueError as e:
        raise BundleError(f"cannot export this model: {e}") from e
    if check_items is not None and len(check_items):
        _check_agreement(model, graph, check_items, outside=not config_in_onnx(config))
    return config, tensors, graph


# A bundle's parts by task: (config, tensors, graph), each task's writer beside its model. A
# task added here is read back by bundle_model.MODELS.
PARTS = {SINGLE: class_parts, MULTI_LABEL: class_parts, BOXES: box_parts, SPANS: span_parts}


def config_in_onnx(config: dict) -> bool:
    """Whether the graph reads items (its representation step, if any, is inside it)."""
    return all(step.get("in_onnx", True) for step in config["preprocessing"]
               if step["step"] == "representation")


def _check_agreement(model: Model, graph: bytes, items, *, outside: bool) -> None:
    if outside:  # a pretrained encoder outside the graph: it reads the encoder's vectors
        X = model.learner_inputs(items)
        expected = model.align(model.learner.predict_proba(X))
    else:
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


def bundle_parts(model: Model, *, training: dict | None = None,
                 embed_encoder: bool = False) -> tuple[dict, dict[str, np.ndarray]]:
    """(config.json's content, the tensors) of a model. A learner with no array form is kept
    in the ONNX graph alone; it must convert there (to_onnx says so at export if not)."""
    sig = model.signature
    config = {"format": FORMAT, "format_version": FORMAT_VERSION,
              "classes": [c.item() if hasattr(c, "item") else c for c in model.classes],
              "input": sig.as_config(), "preprocessing": [], "training": training or {}}
    tensors: dict[str, np.ndarray] = {}
    if sig.text is not None:
        text_config, arrays = sig.text.state()
        config["preprocessing"].append({"step": "text-vectoriser", "in_onnx": False, **text_config})
        tensors.update({f"text.{k}": v for k, v in arrays.items()})
    if model.encoder is not None:
        enc_config, arrays = encoder_state(getattr(model.encoder, "recorded", model.encoder))
        # a pretrained encoder stays outside the graph, which then reads its vectors; the
        # bundle records its spec and weights digest, and loading it needs it on the machine
        in_onnx = embed_encoder or not hasattr(model.encoder, "spec")
        config["preprocessing"].append({"step": "representation", "in_onnx": in_onnx, **enc_config})
        tensors.update({f"encoder.{k}": v for k, v in arrays.items()})
    try:
        learner_config, arrays = learner_state(model.learner)
        tensors.update({f"learner.{k}": v for k, v in arrays.items()})
    except NotRebuildable as e:
        learner_config = {"type": "onnx", "estimator": type(model.learner).__name__,
                          "why": str(e)}
    config["learner"] = learner_config
    config["task"] = model.task  # "single" or "multi_label" (absent in older bundles: single)
    config["outputs"] = {"probabilities": "float32 (N, classes), columns in `classes` order",
                         "class_index": "int64 (N,): index into `classes`"}
    if model.task == "multi_label":
        config["outputs"]["probabilities"] += ("; each class's own probability (they need not "
                                               f"sum to 1): it applies from {model.threshold:g}")
        config["outputs"]["class_index"] += ", the likeliest class"
    return config, tensors


def manifest_for(files: dict[str, bytes], version: int = BASE_VERSION) -> dict:
    import onnx
    import safetensors

    versions = {"workbench": __version__, "python": platform.python_version(),
                "numpy": np.__version__, "onnx": onnx.__version__,
                "safetensors": safetensors.__version__}
    return {"format": FORMAT, "format_version": version,
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
    """Written beside the target, then renamed into place, so a reader never sees half a
    bundle. A folder cannot be swapped for another in one rename: the old bundle is renamed
    aside first and deleted after, so a writer killed in between leaves the path empty for two
    renames at most (and the next writer puts the old one back before it starts). Writers of
    one path take turns under a lock: two at once used to trip over each other's renames."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _turn(path):
        _recover(path)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.staging-"))
        try:
            for name, data in files.items():
                (tmp / name).write_bytes(data)
            shareable(tmp, folder=True)
            if path.exists():
                old = path.with_name(f".{path.name}.old-{os.getpid()}")
                os.replace(path, old)
                os.replace(tmp, path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


@contextlib.contextmanager
def _turn(path: Path):
    """An exclusive flock beside `path` for the block (released when the process dies)."""
    fd = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _recover(path: Path) -> None:
    """What writers of `path` killed mid-write left (the lock is held: none of them is live):
    a bundle renamed aside goes back to `path` if nothing is there, staging folders go."""
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(staging|old)-[A-Za-z0-9_]+$")
    for left in sorted(path.parent.iterdir()):
        if not pattern.match(left.name) or not left.is_dir():
            continue
        if left.name.startswith(f".{path.name}.old-") and not path.exists() and _is_bundle(left):
            os.replace(left, path)
        else:
            shutil.rmtree(left, ignore_errors=True)


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
