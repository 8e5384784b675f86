"""Where a store's pool came from, so that the store alone can reopen its session.

A label store holds item ids, never features: the pool is the user's data. Exporting a
model, predicting over the pool, or reopening a session from the store alone all need the
pool built again, so a Session records in the store's metadata where its pool came from,
under "pool_source". That is a key of its own: "pool" stays the fingerprint of the item ids
that a push or pull compares.

A source is a small JSON dict that `load` rebuilds the pool from:

    {"kind": "dataset", "name": "digits"}                       a data set that ships with us
    {"kind": "folder", "path": "/abs/images"}                   Pool.from_folder (+ "name")
    {"kind": "file", "path": "/abs/rows.csv", "label_column": "kind", "text_column": null}
    {"kind": "parquet", "args": {"source": "/abs/shards", "label_column": "label", ...}}
                                                                Pool.from_parquet(**args)

A pool has one when this module built it (`load`, which the command line's `--data` goes
through), when its reader says how it was called (`Pool.from_parquet`), or when it is
recognisably what a loader reads: the whole of a built-in data set, or exactly the images
of one folder as `Pool.from_folder` reads them. A pool built from arrays or a DataFrame in
memory has none, and then opening its store alone says what to pass.
"""

from __future__ import annotations

import weakref
from pathlib import Path, PurePosixPath

from workbench.data.loaders import IMAGE_SUFFIXES
from workbench.data.pool import Pool
from workbench.store import LabelStore
from workbench.store.log import read_meta, update_meta

KEY = "pool_source"
DATASETS = ("digits",)  # functions of workbench.data.datasets
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")  # files that can hold a text column

# The pools `load` built, and from what: a Pool cannot say where its loader read it.
_LOADED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def from_data_flag(data: str, label_column: str | None = None,
                   text_column: str | None = None) -> dict:
    """The source that the command line's `--data` names: a built-in data set, a folder of
    images, or a file (read with `--label-column`, `--text-column`)."""
    if data in DATASETS:
        return {"kind": "dataset", "name": data}
    path = Path(data)
    if path.is_dir():
        return {"kind": "folder", "path": str(path.resolve())}
    if not path.exists():
        raise FileNotFoundError(f"--data {data!r} is neither {' nor '.join(map(repr, DATASETS))} "
                                "nor an existing file or folder")
    if text_column is not None and path.suffix.lower() not in TABLE_SUFFIXES:
        raise ValueError(f"--text-column needs a CSV or Parquet file, got {path.name!r}")
    return {"kind": "file", "path": str(path.resolve()), "label_column": label_column,
            "text_column": text_column}


def load(source: dict, task: str = "single") -> Pool:
    """The pool a source describes, read now, for `task` (what one label is: the store's);
    it remembers its source (see `describe`)."""
    kind = source.get("kind") if isinstance(source, dict) else None
    if kind == "dataset" and source.get("name") in DATASETS:
        from workbench.data import datasets

        pool = getattr(datasets, source["name"])()
    elif kind == "folder" and isinstance(source.get("path"), str):
        pool = Pool.from_folder(source["path"], task=task,
                                **({"name": source["name"]} if "name" in source else {}))
    elif kind == "file" and isinstance(source.get("path"), str):
        pool = _read_file(Path(source["path"]), source.get("label_column"),
                          source.get("text_column"), task)
    elif kind == "parquet" and isinstance(source.get("args"), dict) and "source" in source["args"]:
        pool = Pool.from_parquet(**source["args"])
    else:
        raise ValueError(f"unknown pool source {source!r}; expected a dict with 'kind' "
                         f"'dataset' (name: {', '.join(DATASETS)}), 'folder' or 'file' (path: str), or "
                         "'parquet' (args: Pool.from_parquet's)")
    _LOADED[pool] = dict(source)
    return pool


def describe(pool: Pool) -> dict | None:
    """Where `pool` came from, as a source `load` rebuilds it from; None when unknown."""
    known = _LOADED.get(pool)
    if known is not None:
        return dict(known)
    opened_with = getattr(pool, "opened_with", None)
    if opened_with is not None and opened_with.get("reader") == "parquet":
        return {"kind": "parquet", "args": {k: v for k, v in opened_with.items() if k != "reader"}}
    return _builtin(pool) or _folder(pool)


def record(store: LabelStore | str | Path, pool: Pool) -> None:
    """Note in the store's metadata where its pool came from. An unknown source leaves what
    an earlier session recorded: a pool rebuilt in memory from the same data is no reason
    to forget where that data lives."""
    source = describe(pool)
    if source is None:
        return
    update_meta(_path(store), lambda meta: meta if meta.get(KEY) == source else {**meta, KEY: source})


def rebuild(store: LabelStore | str | Path, *, otherwise: str) -> Pool:
    """The pool that the store's sessions labeled, read again from where it came from.
    When the store does not know, or the data is gone, the error ends with `otherwise`:
    what the caller can pass instead (a flag, an argument)."""
    path = _path(store)
    source = read_meta(path).get(KEY)  # refuses a folder that holds no store
    if source is None:
        raise ValueError(f"store {str(path)!r} does not record where its pool came from (its "
                         f"sessions were given pools built in memory); {otherwise}")
    where = source.get("args", {}).get("source") if source.get("kind") == "parquet" else source.get("path")
    if isinstance(where, str) and not any(c in where for c in "*?[") and not Path(where).exists():
        raise FileNotFoundError(f"store {str(path)!r} labels the pool read from "
                                f"{where!r}, which is not there any more; {otherwise}")
    # the store's task: a folder or a file reads the same for one class per item or several
    return load(source, read_meta(path).get("task", "single"))


def classes_for(store: LabelStore | str | Path, pool: Pool) -> list | None:
    """The classes a session on `pool` needs: None when the pool has ground truth (its own
    classes), else the ones the store was first opened with (a pool without labels)."""
    return None if pool.classes else read_meta(_path(store)).get("classes")


def _read_file(path: Path, label_column: str | None, text_column: str | None,
               task: str = "single") -> Pool:
    extra = {} if text_column is None else {"text_column": text_column}
    try:
        return Pool.from_file(path, label_column=label_column, task=task, **extra)
    except ValueError as e:
        if "no numeric feature columns" not in str(e):
            raise
        raise ValueError(f"{path.name} has no numeric feature columns to learn from; for a file "
                         "of texts, name their column with --text-column") from e


def _builtin(pool: Pool) -> dict | None:
    """A whole built-in data set: its name, and the very item ids it gives."""
    if pool.name not in DATASETS:
        return None
    from workbench.data import datasets

    builtin = getattr(datasets, pool.name)()
    return {"kind": "dataset", "name": pool.name} if pool.item_ids.equals(builtin.item_ids) else None


def _folder(pool: Pool) -> dict | None:
    """Exactly the images under one folder, as `Pool.from_folder` reads them: each item's
    path is the folder joined with its id, and the folder holds no other image."""
    if pool.image_source != "path" or "path" not in pool.items.columns:
        return None
    paths = pool.items["path"].astype(str).tolist()
    depth = len(PurePosixPath(pool.item_ids[0]).parts)
    first = Path(paths[0])
    if depth > len(first.parents):
        return None
    root = first.parents[depth - 1]
    if paths != [str(root / item_id) for item_id in pool.item_ids]:
        return None
    images = sum(1 for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if images != len(pool):  # a part of the folder (a split, a subset) is not the folder
        return None
    source = {"kind": "folder", "path": str(root.resolve())}
    return source if pool.name == root.resolve().name else {**source, "name": pool.name}


def _path(store: LabelStore | str | Path) -> Path:
    return store.path if isinstance(store, LabelStore) else Path(store)
