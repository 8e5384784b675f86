"""A model registry that is a folder: `name@version` -> a bundle, on a laptop or a shared drive.

    <registry>/<name>/<version>/   one bundle folder per version (the Hub's layout), never
                                   changed once pushed: a version is what someone tested

The registry is `registry=`, else `WORKBENCH_MODELS`, else `~/.cache/workbench/models`.
Versions count up from 1; a push that races another for the same number takes the next
one (each version folder appears with one atomic rename). `workbench models
push|list|show|pull` go through here; what `name@version` names (also for
`load_model("name@version")`) is worked out in registry_refs.py: "name" alone, or
"name@latest", means the highest version.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from workbench.learn.registry_refs import _parse, _root, _versions, default_registry, resolve

__all__ = ["default_registry", "list_models", "pull", "push", "resolve", "show"]


def push(bundle, name: str, *, registry=None) -> str:
    """Copy a bundle (folder or zip; verified first) into the registry as the next version
    of `name`; returns "name@version"."""
    from workbench.learn.bundle_read import read_bundle
    from workbench.learn.bundle_write import shareable

    name, version = _parse(name)
    if version is not None:
        raise ValueError(f"push takes a name; versions are numbered by the registry, got {name}@{version}")
    files = read_bundle(bundle).files  # verified: never publish what would not load
    folder = _root(registry) / name
    folder.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(dir=folder, prefix=".push-"))
    try:
        for file, data in files.items():
            (staged / file).write_bytes(data)
        shareable(staged, folder=True)
        while True:
            number = (_versions(folder) or [0])[-1] + 1
            try:
                os.rename(staged, folder / str(number))  # fails if another push took it
                return f"{name}@{number}"
            except OSError:
                if not (folder / str(number)).exists():
                    raise
    finally:
        shutil.rmtree(staged, ignore_errors=True)  # gone already when the rename succeeded


def list_models(*, registry=None) -> pd.DataFrame:
    """One row per model version: name, version, ref, classes, kind, trained on (commit),
    accuracy, exported."""
    import json

    root = _root(registry)
    rows = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        for version in _versions(folder):
            path = folder / str(version)
            try:
                config = json.loads((path / "config.json").read_text())
            except (OSError, ValueError):
                config = {}
            training = config.get("training", {})
            rows.append({"name": folder.name, "version": version, "ref": f"{folder.name}@{version}",
                         "kind": config.get("input", {}).get("kind"),
                         "classes": len(config.get("classes", [])),
                         "commit": (training.get("commit") or "")[:7] or None,
                         "n_labels": training.get("n_labels"),
                         "accuracy": training.get("accuracy"),
                         "exported": training.get("exported")})
    return pd.DataFrame(rows, columns=["name", "version", "ref", "kind", "classes", "commit",
                                       "n_labels", "accuracy", "exported"])


def show(ref: str, *, registry=None) -> str:
    """The model card of `name@version`."""
    from workbench.learn.bundle_read import read_bundle

    return read_bundle(resolve(ref, registry=registry)).card


def pull(ref: str, out, *, registry=None) -> Path:
    """Copy `name@version` out of the registry to the folder `out` (verified first)."""
    from workbench.learn.bundle_errors import BundleError
    from workbench.learn.bundle_read import read_bundle
    from workbench.learn.bundle_write import _write_folder

    out = Path(out)
    if out.exists():
        raise BundleError(f"{str(out)!r} already exists; choose another folder")
    # the bytes that were verified, not a second read of the shared drive
    _write_folder(out, read_bundle(resolve(ref, registry=registry)).files)
    return out
