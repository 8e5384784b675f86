"""Turning the shapes data arrives in (arrays, DataFrames, texts, files, folders) into the
arguments of a `Pool`.

Each `*_parts` function returns a dict for `Pool(**parts)`; the Pool constructor does the
validation that matters (finite features, one id per row, unique ids), so a loader only
turns its input into features, ids, ground truth and a description of how to show an item.
This module does not import `Pool`: `Pool.from_folder(path)` and friends call in here.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}
SHOWN = 5  # how many rows or files an error or warning names before "and N more"
# The most a pool of images of different sizes may take once padded to one canvas (float32):
# the array stays in memory for the whole session, and 4 GiB is what a 16 GB laptop holds
# beside a round's training. It holds, e.g., about 1,400 RGB images padded to 640 x 400, or
# 4,000 greyscale ones to 512 x 512; photos of 4000 x 3000 mixing portrait and landscape (a
# 4000 x 4000 canvas, 192 MB each) exceed it from 23 on. (The detector reads every image
# averaged down to 256 pixels anyway: such photos are better made smaller before labeling.)
MAX_PADDED_BYTES = 4 * 2**30


class SkippedFilesWarning(UserWarning):
    """Files under an image folder that are not images (by their suffix) were left out."""


def array_parts(X, y=None, *, item_ids=None, classes=None, X_test=None, y_test=None,
                name="arrays", pad_sizes: bool = False) -> dict:
    """Images (N x H x W or N x H x W x C) or vectors (N x D). With `pad_sizes` (a boxes pool),
    images of different sizes (a list of arrays) are padded to one canvas (`padded_images`)
    and each one's own size given as `image_sizes`; without it they are refused."""
    if _ragged(X):
        if not pad_sizes:
            shapes = {np.shape(x) for x in X}
            what = "images" if any(len(shape) >= 2 for shape in shapes) else "rows"
            raise ValueError(f"{what} have mixed shapes {sorted(shapes)[:4]}; expected one shape for all")
        images, sizes, scale = padded_images(list(X))
        return dict(X=images, item_ids=item_ids, y=y, classes=classes, kind="image", image_scale=scale,
                    image_sizes=sizes, X_test=X_test, y_test=y_test, name=name)
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
        if 0 in X.shape[1:3]:  # nothing to show, and no pixel a box could hold
            raise ValueError(f"images of shape {X.shape[1:3]} have no pixels; expected a height and a "
                             "width of at least 1")
        images, scale = _scale_images(X)
        return dict(X=images, item_ids=item_ids, y=y, classes=classes, kind="image", image_scale=scale,
                    X_test=None if X_test is None else _scale_images(np.asarray(X_test), scale)[0],
                    y_test=y_test, name=name)
    if X.ndim == 2 and X.shape[1] == 0:
        raise ValueError(f"vectors of shape {X.shape} have no features; expected at least one column")
    return dict(X=X, item_ids=item_ids, y=y, classes=classes, kind="vector",
                X_test=X_test, y_test=y_test, name=name)


def text_parts(texts, y=None, *, item_ids=None, classes=None, embeddings=None,
               name="texts", column: str | None = None) -> dict:
    """Texts. Features are sentence embeddings when a model is installed locally, else
    TF-IDF + LSA computed offline (see `workbench.data.text`), unless you pass your own
    `embeddings` (N x D). Every item needs a text: a missing, empty or whitespace-only one
    is refused, naming its items (`column`, when given, is named as where the texts came from)."""
    texts = pd.Series(list(texts), dtype="object")
    problem = blank_texts(texts, item_ids)
    if problem:
        where = "texts hold" if column is None else f"text column {column!r} holds"
        raise ValueError(f"{where} {problem}; expected some text for every item - fill in or "
                         "drop those rows")
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
    pad_sizes: bool = False,
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
                          embeddings=embeddings, name=name, column=text_column)
    if image_column:
        base = df.attrs.get("base_dir")
        paths = [str(Path(base, p)) if base else str(p) for p in df[image_column]]
        if embeddings is None:
            parts = array_parts(_read_images(paths, one_shape=not pad_sizes), y, item_ids=ids,
                                classes=classes, name=name, pad_sizes=pad_sizes)
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
    files = image_files(root, stacklevel=4)  # the warning points at Pool.from_folder's caller
    if not files:
        raise ValueError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found under {str(root)!r}")
    rel = [p.relative_to(root) for p in files]
    labelled = all(len(r.parts) == 2 for r in rel)
    df = pd.DataFrame({"path": [str(p) for p in files], "item_id": [r.as_posix() for r in rel]})
    if labelled:
        df["label"] = [r.parts[0] for r in rel]
    parts = dataframe_parts(df, image_column="path", id_column="item_id",
                            label_column="label" if labelled else None,
                            name=name or root.name, **kw)
    # Each id starts with its class folder, which is its label: Pool.display_name drops it.
    return {**parts, "class_folders": labelled}


def image_files(root: Path, *, stacklevel: int = 2) -> list[Path]:
    """The image files under `root` (by suffix, sorted), and one `SkippedFilesWarning`
    naming the other files there (notes, .DS_Store, ...) when there are any."""
    files, skipped = [], []
    for p in sorted(root.rglob("*")):
        if p.is_file():
            (files if p.suffix.lower() in IMAGE_SUFFIXES else skipped).append(p)
    if skipped:
        names = [p.relative_to(root).as_posix() for p in skipped]
        what = "1 file that is not an image" if len(names) == 1 else \
            f"{len(names)} files that are not images"
        warnings.warn(f"skipped {what} under {str(root)!r}: {first_few(names)} (images end in "
                      f"{', '.join(sorted(IMAGE_SUFFIXES))})", SkippedFilesWarning,
                      stacklevel=stacklevel)
    return files


def blank_texts(texts, item_ids=None, *, allow_blank: bool = False) -> str | None:
    """What is wrong with `texts`, when some are missing, empty or only whitespace (only
    missing, with `allow_blank`): how many, and the first few by item id (by row number when
    there are no ids), as "2 missing or blank values: item 'a' (empty), item 'c' (missing)";
    else None."""
    texts = pd.Series(list(texts), dtype="object")
    missing = texts.isna().to_numpy()
    blank = np.zeros(len(texts), dtype=bool) if allow_blank else np.array(
        [not m and not str(t).strip() for t, m in zip(texts, missing)], dtype=bool)
    bad = np.flatnonzero(missing | blank)
    if not len(bad):
        return None
    ids = None if item_ids is None else [str(i) for i in item_ids]
    if ids is not None and len(ids) != len(texts):
        ids = None  # the length mismatch is reported elsewhere
    described = [f"{f'item {ids[i]!r}' if ids is not None else f'row {i}'} "
                 f"({'missing' if missing[i] else 'empty' if texts.iloc[i] == '' else 'only whitespace'})"
                 for i in bad[:SHOWN]]
    what = "missing" if allow_blank else "missing or blank"
    return f"{len(bad)} {what} value{'s' if len(bad) != 1 else ''}: {first_few(described, total=len(bad))}"


def first_few(names: list[str], total: int | None = None, *, shown: int = SHOWN) -> str:
    """The first `shown` of `names` (of `total`, default all of them), and how many more
    there are: "a, b, c, d, e and 3 more"."""
    total = len(names) if total is None else total
    text = ", ".join(names[:shown])
    return text if total <= shown else f"{text} and {total - shown} more"


def _read_images(paths, *, one_shape: bool = True) -> np.ndarray | list[np.ndarray]:
    """The images of `paths` as one array (N, H, W[, C]) of their pixels; images of mixed
    shapes are refused, or, without `one_shape`, given as a list of arrays."""
    from PIL import Image

    arrays, shape, first_deep = [], None, None
    for p in paths:
        try:
            with Image.open(p) as im:
                if im.mode.startswith("I;16") or im.mode in ("I", "F"):
                    a = np.asarray(im)  # 16-bit (or 32-bit) greys keep their values; "L" clips at 255
                else:
                    a = np.asarray(im.convert("L") if im.mode in ("L", "1", "P") else im.convert("RGB"))
        except Image.DecompressionBombError as e:  # not an OSError: it would escape unnamed
            raise ValueError(
                f"cannot read image {p!r}: {e} Pillow refuses images this large as a possible "
                "decompression bomb; if the file is yours, raise PIL.Image.MAX_IMAGE_PIXELS first"
            ) from e
        except (OSError, ValueError) as e:
            raise ValueError(
                f"cannot read image {p!r} ({e}); fix or remove the file, or pass embeddings="
            ) from e
        deep = a.dtype != np.uint8
        if first_deep is None:
            first_deep = deep
        elif deep != first_deep:  # one scale for the pool: 8-bit pixels / 65535 would be black
            depth = {True: f"{a.dtype} ({im.mode})", False: "8-bit"}
            raise ValueError(f"images have mixed bit depths: {p!r} is {depth[deep]} but the first is "
                             f"{'deeper than 8-bit' if first_deep else '8-bit'}; expected one depth "
                             "for all (convert them first)")
        if shape is None:
            shape = a.shape
        elif a.shape != shape and one_shape:
            raise ValueError(
                f"images have mixed shapes: {p!r} is {a.shape} but the first is {shape}; "
                "expected one shape for all (resize them first)"
            )
        arrays.append(a)
    return np.stack(arrays) if len({a.shape for a in arrays}) == 1 else arrays


def read_scaled(paths, scale: float, *, one_shape: bool = True) -> np.ndarray | list[np.ndarray]:
    """Image files as a model trained on a pool of them reads them: their pixels divided by
    the pool's scale (`pixel_scale`), as float32. Files of another bit depth than the pool's
    are refused (16-bit pixels / 255 are not the same picture)."""
    read = _read_images(paths, one_shape=one_shape)
    arrays = [read] if isinstance(read, np.ndarray) else read
    check_depth(f"the image files {first_few([str(p) for p in paths])}", np.result_type(*arrays),
                max(float(np.nanmax(a)) if a.size else 0.0 for a in arrays), scale)
    if isinstance(read, np.ndarray):
        return read.astype(np.float32) / scale
    return [a.astype(np.float32) / scale for a in read]


def padded_images(arrays: list) -> tuple[np.ndarray, np.ndarray, float]:
    """Images of different sizes ((H, W) or (H, W, C) arrays) as one float32 array (N, H_max,
    W_max[, C]) in [0, 1] (the pixels divided by the scale `_scale_images` picks), each image in
    the top-left corner and zeros to its right and below; with each image's own (width, height),
    (N, 2), and the scale. Greyscale images among colour ones get the colour's 3 channels.

    Cost: N x H_max x W_max x C x 4 bytes, against the sum of h x w x C x 4 for the images
    themselves: one large image among small ones makes every image as large. A pool whose
    padded array would exceed MAX_PADDED_BYTES (4 GiB) is refused, naming both sizes."""
    arrays = [np.asarray(a) for a in arrays]
    for i, a in enumerate(arrays):
        if a.dtype.kind not in "biuf" or a.ndim not in (2, 3) or 0 in a.shape[:2] \
                or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)):
            raise ValueError(f"image {i} has shape {a.shape} ({a.dtype}); expected numbers H x W or "
                             "H x W x C with C in 1, 3, 4, at least 1 x 1")
    channels = {1 if a.ndim == 2 else a.shape[2] for a in arrays}
    if len(channels) > 1 and channels != {1, 3}:
        raise ValueError(f"images have mixed channels {sorted(channels)}; expected one number of channels "
                         "(greyscale images may mix with RGB ones)")
    c, flat = max(channels), all(a.ndim == 2 for a in arrays)
    height, width = max(a.shape[0] for a in arrays), max(a.shape[1] for a in arrays)
    padded = len(arrays) * height * width * c * 4
    if padded > MAX_PADDED_BYTES:
        own = sum(a.shape[0] * a.shape[1] * c * 4 for a in arrays)
        raise ValueError(f"padding {len(arrays)} images of different sizes to the largest width and height "
                         f"({width}x{height} pixels, {c} channel{'s' if c > 1 else ''}) takes "
                         f"{padded / 2**30:.1f} GiB of memory (the images themselves: "
                         f"{own / 2**30:.1f} GiB), "
                         f"over the {MAX_PADDED_BYTES / 2**30:g} GiB a pool of mixed sizes may take; "
                         "split the images into pools of similar sizes, or make the largest ones smaller "
                         "(their boxes with them)")
    scale = pixel_scale(np.result_type(*arrays), max(float(np.nanmax(a)) for a in arrays))
    out = np.zeros((len(arrays), height, width) + (() if flat else (c,)), dtype=np.float32)
    for i, a in enumerate(arrays):
        a = a.astype(np.float32) / scale
        out[i, :a.shape[0], :a.shape[1]] = a if flat or a.ndim == 3 else a[..., None]
    sizes = np.array([[a.shape[1], a.shape[0]] for a in arrays], dtype=np.int64)
    return out, sizes, scale


def _ragged(X) -> bool:
    """Is X a list (or 1-d object array) of arrays of more than one shape?"""
    if isinstance(X, np.ndarray) and (X.dtype != object or X.ndim != 1):
        return False
    if not isinstance(X, (list, tuple, np.ndarray)) or not len(X):
        return False
    return all(hasattr(x, "shape") or isinstance(x, (list, tuple)) for x in X) and \
        len({np.shape(x) for x in X}) > 1


def _scale_images(X: np.ndarray, scale: float | None = None) -> tuple[np.ndarray, float]:
    """Images to float32 in [0, 1]; the scale is the pool's max (e.g. 16 for sklearn's
    digits, 255 for 8-bit images), applied to the test split too."""
    if scale is None:
        scale = pixel_scale(X.dtype, float(np.nanmax(X)) if X.size else 1.0)
    return X.astype(np.float32) / scale, scale


def pixel_scale(dtype, hi: float) -> float:
    """What a pool's pixels are divided by: 2^32 - 1 for 32-bit images with values over
    65535, 65535 for 16-bit ones (by type, or by a value over 255), 255 for 8-bit ones, 16 for
    scikit-learn's digits, 1 for values in [0, 1]."""
    if hi > 65535:
        return float(2**32 - 1)
    if np.dtype(dtype) == np.uint16 or hi > 255:
        return 65535.0
    return 255.0 if hi > 16 else (16.0 if hi > 1 else 1.0)


def check_depth(what: str, dtype, hi: float, scale: float) -> None:
    """Refuse pixels of another depth than a model's pool (`scale`, its `pixel_scale`): 16-bit
    pixels divided by 255, or 8-bit ones by 65535, are not the picture it learned from. Pools of
    values up to 16 or 1 (arrays, not files) are left alone."""
    def depth(s: float) -> str:
        return "32-bit" if s > 65535 else "16-bit" if s > 255 else "8-bit"

    mine = pixel_scale(dtype, hi)
    if depth(mine) != depth(scale) and (mine > 255 or scale > 255):
        raise ValueError(f"{what} hold{'s' if what.startswith('a') else ''} {depth(mine)} pixels "
                         f"(up to {hi:g}), but the model's images were {depth(scale)} (divided by "
                         f"{scale:g}); convert them to the depth it was trained on")
