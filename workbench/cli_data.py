"""What a command reads as data: the pool a command's `--data` flag names (one function that
both `workbench` verbs (workbench.cli) and `workbench export` (workbench.cli_models) load it
with, so neither command module imports the other for it), and the items `workbench predict`
reads from a file or folder. The loop and pandas are imported only when they are called."""

from __future__ import annotations

from pathlib import Path

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")


def load_data(data: str, label_column: str | None = None, text_column: str | None = None):
    """The pool that `--data` (with `--label-column`, `--text-column`) names; it remembers
    where it came from, so a session opened on it records that in its store."""
    from workbench.loop import pool_source

    return pool_source.load(pool_source.from_data_flag(data, label_column, text_column))


def read_items(signature, path: Path, *, text_column: str = "text") -> tuple[list[str], object]:
    """(item ids, items) of `path` as this model reads them: feature arrays, image paths,
    texts or table rows, sliceable in batches; a clear error when they cannot fit."""
    import numpy as np
    import pandas as pd

    from workbench.data.loaders import IMAGE_SUFFIXES, blank_texts, image_files

    kind = signature.kind
    if not path.exists():
        raise FileNotFoundError(f"no data at {str(path)!r}")
    if path.suffix.lower() == ".npz":
        return _npz(signature, path)
    if path.is_dir():
        if kind != "image":
            raise ValueError(f"{str(path)!r} is a folder; this model reads {kind} items, "
                             f"{_wants(kind)}")
        files = image_files(path)  # warns of the files it skips (notes, .DS_Store)
        if not files:
            raise ValueError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found under "
                             f"{str(path)!r}")
        return [p.relative_to(path).as_posix() for p in files], [str(p) for p in files]
    if path.suffix.lower() not in TABLE_SUFFIXES or kind == "image":
        raise ValueError(f"cannot read {path.name!r} for this {kind} model: it reads {_wants(kind)}")
    frame = (pd.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq")
             else pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ","))
    if len(frame) == 0:
        raise ValueError(f"{path.name} has no rows")
    ids = (frame["item_id"] if "item_id" in frame.columns else frame.index).astype(str).tolist()
    if kind == "text":
        if text_column not in frame.columns:
            raise ValueError(f"{path.name} has no column {text_column!r} of texts; its columns are "
                             f"{list(frame.columns)}: name the texts' column with --text-column")
        texts = frame[text_column]
        problem = blank_texts(texts, ids, allow_blank=True)  # a model reads "" as it reads any text
        if problem:
            raise ValueError(f"column {text_column!r} of {path.name} holds {problem}; expected a text "
                             "in every row - fill in or drop those rows")
        return ids, texts.astype(str).tolist()
    if kind == "table":
        return ids, frame  # the signature picks its feature columns, or names the missing ones
    numeric = [c for c in frame.columns if c not in ("item_id", "y")
               and pd.api.types.is_numeric_dtype(frame[c])]
    return ids, signature.check(frame[numeric].to_numpy(dtype=np.float64))


def _npz(signature, path: Path) -> tuple[list[str], object]:
    import numpy as np

    with np.load(path, allow_pickle=False) as data:
        if "X" not in data:
            raise ValueError(f"{path.name} has arrays {list(data.keys())}; expected the features as 'X'")
        try:
            X = data["X"]
            ids = data["item_ids"] if "item_ids" in data else None
        except ValueError as e:  # an array of Python objects: loading it would unpickle
            raise ValueError(f"{path.name} holds an array of Python objects ({e}); save X as "
                             "numbers and item_ids as strings (np.asarray(ids, dtype=str))") from e
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{path.name} holds X of {X.dtype}; expected numbers")
    if signature.kind == "image" and signature.image_scale and X.size and np.nanmax(X) > 1:
        # Features of an image pool are in [0, 1]; larger values are raw pixels, which the
        # pool's loader divided by this scale (16 for digits, 255 for 8-bit images).
        X = X.astype(np.float32) / signature.image_scale
    if tuple(X.shape[1:]) != tuple(signature.shape):
        raise ValueError(f"{path.name} holds X of shape {X.shape}; this model reads "
                         f"{signature.describe()}, so X must have shape "
                         f"({', '.join(['N', *map(str, signature.shape)])})")
    if ids is None:
        ids = [f"{i:0{len(str(len(X) - 1))}d}" for i in range(len(X))]  # as a Pool numbers them
    elif len(ids) != len(X):
        raise ValueError(f"{path.name} has {len(ids)} item_ids for {len(X)} rows of X")
    return [str(i) for i in ids], signature.check(X)


def _wants(kind: str) -> str:
    return {"image": "a folder of images or a .npz with X",
            "text": "a CSV/Parquet file with a column of texts, or a .npz with X",
            "table": "a CSV/Parquet file with its feature columns, or a .npz with X",
            "vector": "a CSV/Parquet file of numeric columns, or a .npz with X"}[kind]
