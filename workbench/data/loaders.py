"""Turning the shapes data arrives in (arrays, DataFrames, texts, files, folders) into the
arguments of a `Pool`.

Each `*_parts` function returns a dict for `Pool(**parts)`; the Pool constructor does the
validation that matters (finite features, one id per row, unique ids), so a loader only
turns its input into features, ids, ground truth and a description of how to show an item.
This module does not import `Pool`: `Pool.from_folder(path)` and friends call in here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}


def array_parts(X, y=None, *, item_ids=None, classes=None, X_test=None, y_test=None,
                name="arrays") -> dict:
    """Images (N x H x W or N x H x W x C) or vectors (N x D)."""
    X = np.asarray(X)
    if X.dtype == object:
        shapes = {np.shape(x) for x in X}
        raise ValueError(f"images have mixed shapes {sorted(shapes)[:4]}; expected one shape for all")
    if X.ndim >= 3:
        if X.ndim == 4 and X.shape[-1] not in (1, 3, 4):
            raise ValueError(
                f"image arrays must be N x H x W or N x H x W x C with C in 1, 3, 4; got {X.shape}"
            )
        if X.ndim > 4:
            raise ValueError(f"image arrays must have 3 or 4 dimensions, got shape {X.shape}")
        images, scale = _scale_images(X)
        return dict(X=images, item_ids=item_ids, y=y, classes=classes, kind="image", image_scale=scale,
                    X_test=None if X_test is None else _scale_images(np.asarray(X_test), scale)[0],
                    y_test=y_test, name=name)
    return dict(X=X, item_ids=item_ids, y=y, classes=classes, kind="vector",
                X_test=X_test, y_test=y_test, name=name)


def text_parts(texts, y=None, *, item_ids=None, classes=None, embeddings=None,
               name="texts") -> dict:
    """Texts. Features are sentence embeddings when a model is installed locally, else
    TF-IDF + LSA computed offline (see `workbench.data.text`), unless you pass your own
    `embeddings` (N x D)."""
    texts = pd.Series(list(texts), dtype="object")
    if texts.isna().any():
        raise ValueError(f"texts contain {int(texts.isna().sum())} missing values; expected strings")
    texts = texts.astype(str)
    if embeddings is None:
        from workbench.data.text import text_features

        embeddings = text_features(texts.tolist())
    embeddings = np.asarray(embeddings)
    if embeddings.shape[0] != len(texts):
        raise ValueError(
            f"embeddings have {embeddings.shape[0]} rows but there are {len(texts)} texts"
        )
    items = pd.DataFrame({"text": texts.to_numpy()})
    return dict(X=embeddings, item_ids=item_ids, y=y, classes=classes, kind="text", items=items,
                name=name)


def dataframe_parts(
    df: pd.DataFrame,
    *,
    feature_columns=None,
    text_column: str | None = None,
    image_column: str | None = None,
    label_column: str | None = None,
    id_column: str | None = None,
    classes=None,
    embeddings=None,
    name: str = "dataframe",
) -> dict:
    """Rows of a DataFrame: numeric feature columns (a table), a text column, or an
    image-path column. The label column (ground truth, if any) is never a feature."""
    if len(df) == 0:
        raise ValueError("the DataFrame is empty; expected at least one row")
    for col in (text_column, image_column, label_column, id_column):
        if col is not None and col not in df.columns:
            raise ValueError(f"column {col!r} is not in the DataFrame; columns are {list(df.columns)}")
    y = df[label_column].to_numpy() if label_column else None
    if y is not None and pd.isna(y).any():
        raise ValueError(f"label column {label_column!r} has missing values; expected a label per row")
    ids = df[id_column].astype(str).to_numpy() if id_column else df.index.astype(str).to_numpy()

    if text_column:
        return text_parts(df[text_column], y, item_ids=ids, classes=classes,
                          embeddings=embeddings, name=name)
    if image_column:
        base = df.attrs.get("base_dir")
        paths = [str(Path(base, p)) if base else str(p) for p in df[image_column]]
        if embeddings is None:
            parts = array_parts(_read_images(paths), y, item_ids=ids, classes=classes, name=name)
        else:
            parts = dict(X=embeddings, item_ids=ids, y=y, classes=classes, kind="image", name=name)
        # Show the file itself, read lazily, so a file that breaks later gets a placeholder.
        return {**parts, "items": pd.DataFrame({"path": paths}), "image_source": "path"}

    excluded = {label_column, id_column}
    if feature_columns is None:
        feature_columns = [c for c in df.columns
                           if c not in excluded and pd.api.types.is_numeric_dtype(df[c])]
    missing = [c for c in feature_columns if c not in df.columns]
    if missing:
        raise ValueError(
            f"feature columns {missing} are not in the DataFrame; columns are {list(df.columns)}")
    if not feature_columns and embeddings is None:
        raise ValueError(
            "no numeric feature columns found; pass feature_columns=, text_column=, "
            "image_column= or embeddings="
        )
    X = embeddings if embeddings is not None else df[feature_columns].to_numpy(dtype=np.float64)
    items = df.drop(columns=[c for c in excluded if c is not None])
    return dict(X=X, item_ids=ids, y=y, classes=classes, kind="table", items=items, name=name,
                feature_names=None if embeddings is not None else list(feature_columns))


def file_parts(path, *, label_column: str | None = None, **kw) -> dict:
    """A Parquet, CSV or NPZ file (arrays X, y, optional X_test, y_test)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"data file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            if "X" not in data:
                raise ValueError(f"{path} has arrays {list(data.keys())}; expected at least 'X'")
            arrays = {k: data[k] for k in ("X", "y", "X_test", "y_test") if k in data}
        return array_parts(arrays["X"], arrays.get("y"), X_test=arrays.get("X_test"),
                           y_test=arrays.get("y_test"), name=path.stem, **kw)
    if suffix in (".parquet", ".pq"):
        df = pd.read_parquet(path)
    elif suffix in (".csv", ".tsv", ".txt"):
        df = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    else:
        raise ValueError(f"cannot read {path.name!r}: expected a .parquet, .csv, .tsv or .npz file")
    df.attrs["base_dir"] = str(path.parent)
    if label_column is None and "y" in df.columns:
        label_column = "y"
    return dataframe_parts(df, label_column=label_column, **{"name": path.stem, **kw})


def folder_parts(path, *, name: str | None = None, **kw) -> dict:
    """Images from a folder; class subfolders (cats/1.png, dogs/2.png) give ground truth."""
    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"{str(root)!r} is not a folder of images")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise ValueError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found under {str(root)!r}")
    rel = [p.relative_to(root) for p in files]
    labelled = all(len(r.parts) == 2 for r in rel)
    df = pd.DataFrame({"path": [str(p) for p in files], "item_id": [r.as_posix() for r in rel]})
    if labelled:
        df["label"] = [r.parts[0] for r in rel]
    return dataframe_parts(df, image_column="path", id_column="item_id",
                           label_column="label" if labelled else None,
                           name=name or root.name, **kw)


def _read_images(paths) -> np.ndarray:
    from PIL import Image

    arrays, shape = [], None
    for p in paths:
        try:
            with Image.open(p) as im:
                im = im.convert("L") if im.mode in ("L", "1", "P", "I", "I;16") else im.convert("RGB")
                a = np.asarray(im)
        except (OSError, ValueError) as e:
            raise ValueError(
                f"cannot read image {p!r} ({e}); fix or remove the file, or pass embeddings="
            ) from e
        if shape is None:
            shape = a.shape
        elif a.shape != shape:
            raise ValueError(
                f"images have mixed shapes: {p!r} is {a.shape} but the first is {shape}; "
                "expected one shape for all (resize them first)"
            )
        arrays.append(a)
    return np.stack(arrays)


def _scale_images(X: np.ndarray, scale: float | None = None) -> tuple[np.ndarray, float]:
    """Images to float32 in [0, 1]; the scale is the pool's max (e.g. 16 for sklearn's
    digits, 255 for 8-bit images), applied to the test split too."""
    X = X.astype(np.float32)
    if scale is None:
        hi = float(np.nanmax(X)) if X.size else 1.0
        scale = 255.0 if hi > 16 else (16.0 if hi > 1 else 1.0)
    return X / scale, scale
