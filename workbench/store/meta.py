"""A store's `_workbench.json`: the format it is in, its schema version and its id.

It is what makes a folder a label store: created with the store, checked before anything
else in the folder is trusted, and upgraded in place when an older workbench wrote it (the
events themselves never change). `LabelStore.bind` adds the class set and pool it holds
labels of, and `sync.clone` the remotes it pulls from.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from workbench.store import files
from workbench.store.errors import SchemaVersionError, StoreError
from workbench.store.schema import SCHEMA_VERSION

FORMAT = "workbench-labelstore"
_META = "_workbench.json"
_INIT_LOCK = ".init.lock"  # held while a store is made or upgraded (dot: no reader sees it)


def init_dir(path: Path) -> dict:
    """Check `path` is a store we can read (or create one there); return its metadata:
    schema_version and store_id (a store written by an older workbench is upgraded)."""
    if path.exists() and not path.is_dir():
        raise StoreError(f"LabelStore path {str(path)!r} is a file; expected a directory holding "
                         "a workbench label store, or a missing or empty one to create it in")
    if (path / _META).exists():
        info = read_meta(path)
        if info.get("schema_version") == SCHEMA_VERSION and info.get("store_id"):
            return info  # the usual case: nothing to write, so no lock (a read-only store opens)
    elif path.is_dir():
        _refuse_other_contents(path)  # before the lock file: a folder of something else stays as it was
    path.mkdir(parents=True, exist_ok=True)
    files.fsync_dir(path.parent)  # the new directory's own entry must survive a crash too
    # Two processes opening a new store at once (two notebooks started together) must not
    # each make one: each would keep its own store_id, and take the other's labels for
    # another store's, never in its view. The first makes it; the second reads it.
    with files.locked(path / _INIT_LOCK):
        if (path / _META).exists():
            info = read_meta(path)
            if info.get("schema_version") < SCHEMA_VERSION or not info.get("store_id"):
                # Version 1 had no branches: its events (branch and home unset) read as this
                # store's main branch, so upgrading only records the new version and an id.
                info = {**info, "schema_version": SCHEMA_VERSION,
                        "store_id": info.get("store_id") or uuid.uuid4().hex}
                write_meta(path, info)
            return info
        _refuse_other_contents(path)
        info = {"format": FORMAT, "schema_version": SCHEMA_VERSION, "store_id": uuid.uuid4().hex}
        write_meta(path, info)
        return info


def update_meta(path: Path, change) -> dict:
    """Change a store's metadata: `change(meta)` gives the new metadata (or raises), and it is
    written when it differs. Under `.init.lock`, read again there, so that two sessions
    binding a class set or noting their pool at once never write over each other's; with
    nothing to change, nothing is locked or written (a read-only store opens)."""
    path = Path(path)
    meta = read_meta(path)
    if change(meta) == meta:
        return meta
    with files.locked(path / _INIT_LOCK):
        meta = read_meta(path)
        new = change(meta)
        if new != meta:
            write_meta(path, new)
        return new


def _refuse_other_contents(path: Path) -> None:
    others = sorted(n for n in os.listdir(path) if not n.startswith("."))
    if others:
        raise StoreError(f"{str(path)!r} holds something else ({', '.join(others[:3])}"
                         f"{', ...' if len(others) > 3 else ''}); expected a workbench label "
                         f"store (with {_META}) or an empty directory")


def read_meta(path: Path) -> dict:
    """A store's `_workbench.json`, checked: the format, and a version this workbench reads."""
    meta = Path(path) / _META
    try:
        info = json.loads(meta.read_text())
    except FileNotFoundError:
        raise StoreError(f"{str(path)!r} is not a workbench label store (no {_META})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise StoreError(f"{str(meta)!r} is unreadable ({err}); expected the JSON "
                         f"metadata of a workbench label store") from err
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise StoreError(f"{str(path)!r} holds something else: {_META} does not say "
                         f"format {FORMAT!r}")
    version = info.get("schema_version")
    if not isinstance(version, int) or not 1 <= version <= SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{str(path)!r} has schema_version {version!r}, but this workbench reads "
            f"versions 1 to {SCHEMA_VERSION}; upgrade workbench to open it")
    return info


def write_meta(path: Path, info: dict) -> None:
    files.write_durably(Path(path), _META, json.dumps(info, sort_keys=True).encode())
