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

Where each part lives: bundle_layout.py (the files and the format version), bundle_write.py
(writing), bundle_read.py (reading and verifying), bundle_config.py (config.json's schema),
bundle_graph.py (the ONNX graph: refused if it reaches outside itself, run from its bytes),
bundle_model.py (the Model rebuilt from a verified bundle). A boxes session's bundle holds its
detector instead (box_bundle.py): loaded, it is a `BoxModel` (box_model.py). This module is
where they are used from, and `load_model`, which also takes `name@version` from the model
registry.
"""

from __future__ import annotations

import os
from pathlib import Path

# `name as name`: a name re-exported, importable from here as before the parts had modules
from workbench.learn.box_model import BoxModel
from workbench.learn.bundle_errors import BundleError
from workbench.learn.bundle_graph import OnnxLearner as OnnxLearner
from workbench.learn.bundle_graph import check_graph as check_graph
from workbench.learn.bundle_graph import onnx_session as onnx_session
from workbench.learn.bundle_layout import FORMAT_VERSION
from workbench.learn.bundle_model import Bundle
from workbench.learn.bundle_read import _refuse_pickle as _refuse_pickle
from workbench.learn.bundle_read import read_bundle
from workbench.learn.bundle_write import _write_folder as _write_folder
from workbench.learn.bundle_write import bundle_parts as bundle_parts
from workbench.learn.bundle_write import manifest_for as manifest_for
from workbench.learn.bundle_write import shareable as shareable
from workbench.learn.bundle_write import write_bundle
from workbench.learn.model import Model
from workbench.learn.registry_refs import resolve

__all__ = ["BundleError", "Bundle", "FORMAT_VERSION", "load_model", "read_bundle", "write_bundle"]


def load_model(source, *, registry=None, encoder=None) -> Model | BoxModel:
    """A bundle (folder, zip, or `name@version` in the model registry) as a `Model`:
    `predict(items)`, `predict_proba(items)` on a Pool, an array shaped like a pool's X,
    or raw items of its kind; a boxes bundle as a `BoxModel`: `predict_boxes(images)`. The
    manifest is verified first; nothing in it is executed.

    A model trained on a pretrained encoder's vectors needs that encoder: its library's local
    cache gives it, or `encoder=` (the torch module or function it was given as, which no
    file holds), checked against the weights digest the bundle records."""
    path = Path(source) if isinstance(source, (str, os.PathLike)) else None
    if path is None:
        raise BundleError(f"load_model takes a bundle path or 'name@version', got "
                          f"{type(source).__name__}")
    if not path.exists():
        path = resolve(str(source), registry=registry)
    return read_bundle(path, keep_files=False).model(encoder=encoder)
