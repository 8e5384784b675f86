"""A pool over a partitioned Parquet dataset, opened without loading it whole:
`Pool.from_parquet` calls `parquet_pool_args` here for the arguments of a `Pool`.

At open, only the files' footers (schemas, row counts, statistics) and the small columns are
read: the item ids, the ground truth, and what a person is shown (a text column, an image
path column). The features stay on disk: the pool's `X` is a `PartitionedFeatures` (see
`workbench.data.parquet_features`), read row group by row group when rows are asked for, and
`pool.parts()` gives one `ParquetPart` per file (or run of row groups) for jobs to map over.

Where the features come from (`features=`):

- a list column of numbers (`list<float>`, `fixed_size_list<uint8, 784>`, ...): one vector
  per row. With `image_shape=(H, W)` or `(H, W, C)`, or `workbench.image_shape` in the
  file's key-value metadata (JSON, e.g. `[28, 28]`), the vector is an image's pixels, row by
  row, and the pool is an image pool; pixels are divided by `image_scale` (given, or
  `workbench.image_scale` in the metadata, or else 255, 16 or 1 by the column's largest value
  in the row-group statistics, as `Pool.from_arrays` chooses by the largest pixel);
- a list of numeric columns, one feature each (a table);
- None (the default): the column named "features" when there is one; else, for a text
  pool, text features computed from the texts in memory (as `Pool.from_texts`).

Bad input is refused with a `ParquetDatasetError` naming the file(s) and rows: duplicate
item ids (both places), files whose columns or types differ, a file that cannot be read, a
missing label, id or text; a missing path is also a `FileNotFoundError`. A feature vector of
the wrong length or with NaN is named when its rows are read, or at open with `check="full"`,
which reads every row once, a part at a time.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from workbench.data import loaders
from workbench.data.parquet_features import FeatureSpec, PartitionedFeatures
from workbench.data.parquet_files import (
    ParquetDatasetError,
    ParquetFileInfo,
    check_same_schema,
    dataset_files,
    read_footers,
    schema_of,
)

CHECKS = ("footers", "full")
SHAPE_KEY, SCALE_KEY = b"workbench.image_shape", b"workbench.image_scale"


def parquet_pool_args(source, *, features=None, label_column: str | None = None,
                      id_column: str | None = "item_id", text_column: str | None = None,
                      image_column: str | None = None, image_shape=None, image_scale: float | None = None,
                      classes=None, name: str | None = None, check: str = "footers") -> dict:
    """The arguments of `Pool(**args)` for the dataset at `source` (see the module notes)."""
    if check not in CHECKS:
        raise ValueError(f"check must be one of {CHECKS}, got {check!r}")
    root, files = dataset_files(source)
    schema = schema_of(files[0])
    infos = read_footers(root, files)
    check_same_schema(infos, schema)
    n = sum(f.num_rows for f in infos)
    if n == 0:
        raise ParquetDatasetError(f"the Parquet dataset at {str(source)!r} has no rows ({len(infos)} files)",
                                  [f.path for f in infos])
    where = f"the Parquet dataset at {str(source)!r} (columns {schema.names})"
    for role, col in (("id", id_column), ("label", label_column), ("text", text_column),
                      ("image", image_column)):
        if col is not None and col not in schema.names:
            hint = "; pass id_column= naming the ids, or id_column=None for ids made of the file and row" \
                if role == "id" else ""
            raise ParquetDatasetError(f"{role} column {col!r} is not in {where}{hint}", [infos[0].path])
    if features is None:
        features = "features" if "features" in schema.names else None
        if features is None and text_column is None:
            raise ParquetDatasetError(f"no features column in {where}: pass features='column' (a list of "
                                      "numbers per row) or features=[numeric columns]", [infos[0].path])

    small = _read_small_columns(infos, [c for c in (id_column, label_column, text_column, image_column) if c])
    ids = _item_ids(infos, small, id_column)
    y = None
    if label_column is not None:
        _refuse_missing(infos, small[label_column], f"label column {label_column!r}", "a label per row")
        y = small[label_column].to_numpy(zero_copy_only=False)
    args = dict(item_ids=ids, y=y, classes=classes, name=name or _name_of(source, root))
    items = {}
    if text_column is not None:
        texts = small[text_column]
        _refuse_missing(infos, texts, f"text column {text_column!r}", "some text for every item",
                        blank=pc.equal(pc.utf8_trim_whitespace(texts.cast(pa.string())), ""))
        items["text"] = texts.to_numpy(zero_copy_only=False)
    if image_column is not None:
        _refuse_missing(infos, small[image_column], f"image column {image_column!r}", "a path per row")
        items["path"] = _image_paths(infos, small[image_column], image_column)

    if features is None:  # a text pool without stored embeddings: text features in memory
        parts = loaders.text_parts(items["text"], y, item_ids=ids, classes=classes, name=args["name"],
                                   column=text_column)
        return {**parts, "items": pd.DataFrame(items)}

    spec = _feature_spec(infos, schema, features, id_column, image_shape, image_scale)
    X = PartitionedFeatures(infos, spec)
    if check == "full":
        for part in X.parts():
            part.read()
    kind = "image" if len(spec.shape) > 1 or image_column else "text" if text_column else \
        "vector" if spec.is_list else "table"
    return {**args, "X": X, "kind": kind, "items": pd.DataFrame(items) if items else None,
            "image_source": "path" if image_column else "features",
            "image_scale": spec.scale if len(spec.shape) > 1 else None,
            "feature_names": None if spec.is_list else list(spec.columns)}


# -- the small columns ---------------------------------------------------------------------------
def _read_small_columns(infos: list[ParquetFileInfo], columns: list[str]) -> dict[str, pa.ChunkedArray]:
    if not columns:
        return {}
    tables = []
    for info in infos:
        try:
            tables.append(pq.read_table(info.path, columns=columns))
        except (OSError, pa.ArrowException) as e:
            raise ParquetDatasetError(f"cannot read columns {columns} of Parquet file {info.path!r} ({e})",
                                      [info.path]) from e
    table = pa.concat_tables(tables)
    return {c: table.column(c) for c in columns}


def _item_ids(infos, small, id_column) -> list[str] | pd.Index:
    """The ids, as strings; without an id column, "<file relative to the root>:<row>", which
    stays the same when files are added (a position would shift)."""
    if id_column is None:
        return [f"{f.relpath}:{r}" for f in infos for r in range(f.num_rows)]
    column = small[id_column]
    _refuse_missing(infos, column, f"id column {id_column!r}", "an item id per row")
    # Arrow-backed text (pandas' "str"), never one Python object per id: at 10,000,000 ids
    # the detour through Python strings took 3.5x as long
    index = pd.Index(pd.array(column.cast(pa.string()), dtype="str"), name="item_id")
    if index.has_duplicates:
        repeated = np.flatnonzero(index.duplicated(keep=False))
        first = index[repeated[0]]
        places = np.flatnonzero(index == first)
        files = [infos[_file_of(infos, p)].path for p in places]
        others = index[repeated].nunique() - 1
        raise ParquetDatasetError(
            f"item id {first!r} appears {len(places)} times: "
            + ", ".join(_place(infos, p) for p in places[:5])
            + (f" ({others} more ids appear more than once)" if others else "")
            + "; item ids must be unique across the dataset's files", files)
    return index


def _refuse_missing(infos, column: pa.ChunkedArray, what: str, expected: str, blank=None) -> None:
    missing = column.is_null().to_numpy(zero_copy_only=False)
    if blank is not None:
        missing = missing | blank.fill_null(False).to_numpy(zero_copy_only=False)
    if not missing.any():
        return
    bad = np.flatnonzero(missing)
    kind = "missing or blank" if blank is not None else "missing"
    raise ParquetDatasetError(
        f"{what} is {kind} in {len(bad)} rows: "
        + loaders.first_few([_place(infos, p) for p in bad[:5]], total=len(bad))
        + f"; expected {expected} - fill in or drop those rows",
        sorted({infos[_file_of(infos, p)].path for p in bad[:5]}))


def _image_paths(infos, column: pa.ChunkedArray, name: str) -> np.ndarray:
    """Paths relative to the file that names them, as `Pool.from_file` reads a path column."""
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        raise ParquetDatasetError(f"image column {name!r} is {column.type}; expected paths of image files "
                                  "(encoded image bytes are not supported yet)", [infos[0].path])
    paths = column.to_numpy(zero_copy_only=False)
    folders = np.repeat([str(Path(f.path).parent) for f in infos], [f.num_rows for f in infos])
    return np.array([p if Path(p).is_absolute() else str(Path(d, p)) for p, d in zip(paths, folders)],
                    dtype=object)


# -- the features ---------------------------------------------------------------------------------
def _feature_spec(infos, schema: pa.Schema, features, id_column, image_shape, image_scale) -> FeatureSpec:
    first = infos[0].path
    if isinstance(features, str):
        if features not in schema.names:
            raise ParquetDatasetError(f"features column {features!r} is not in {first!r} (columns "
                                      f"{schema.names})", [first])
        kind = schema.field(features).type
        if not (pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)) \
                or not _numeric(kind.value_type):
            raise ParquetDatasetError(f"features column {features!r} of {first!r} is {kind}; expected a list "
                                      "of numbers per row (or pass features=[numeric columns])", [first])
        shape = _image_shape(image_shape, schema)
        size = kind.list_size if pa.types.is_fixed_size_list(kind) else None
        if shape is None:
            shape = (size if size is not None else _first_length(infos, features),)
        elif size is not None and size != int(np.prod(shape)):
            raise ParquetDatasetError(f"features column {features!r} of {first!r} holds {size} numbers per "
                                      f"row, but an image of {shape} has {int(np.prod(shape))}", [first])
        scale = 1.0 if len(shape) == 1 else _scale(infos, schema, features, image_scale)
        return FeatureSpec((features,), True, tuple(shape), scale, id_column)
    columns = list(features)
    if not columns:
        raise ValueError("features=[] names no columns; expected numeric columns or a list column")
    for c in columns:
        if c not in schema.names:
            raise ParquetDatasetError(f"feature column {c!r} is not in {first!r} (columns {schema.names})",
                                      [first])
        if not _numeric(schema.field(c).type):
            raise ParquetDatasetError(f"feature column {c!r} of {first!r} is {schema.field(c).type}; "
                                      "expected numbers", [first])
    return FeatureSpec(tuple(columns), False, (len(columns),), 1.0, id_column)


def _image_shape(given, schema: pa.Schema):
    meta = schema.metadata or {}
    if given is None and SHAPE_KEY in meta:
        given = json.loads(meta[SHAPE_KEY])
    if given is None:
        return None
    shape = tuple(int(d) for d in given)
    if len(shape) not in (2, 3) or (len(shape) == 3 and shape[-1] not in (1, 3, 4)) or min(shape) < 1:
        raise ValueError(f"image_shape must be (H, W) or (H, W, C) with C in 1, 3, 4, got {given!r}")
    return shape


def _scale(infos, schema: pa.Schema, column: str, given) -> float:
    meta = schema.metadata or {}
    if given is None and SCALE_KEY in meta:
        given = float(meta[SCALE_KEY])
    if given is not None:
        if not float(given) > 0:
            raise ValueError(f"image_scale must be a positive number, got {given!r}")
        return float(given)
    largest = None
    for info in infos:  # the footers' statistics: the largest pixel without reading a pixel
        meta = pq.read_metadata(info.path)
        leaf = next(i for i in range(meta.num_columns)
                    if meta.schema.column(i).path.split(".")[0] == column)
        for g in range(meta.num_row_groups):
            stats = meta.row_group(g).column(leaf).statistics
            if stats is None or not stats.has_min_max:
                raise ParquetDatasetError(f"row group {g} of {info.path!r} has no statistics of {column!r} "
                                          "to choose the pixel scale from; pass image_scale= (e.g. 255 for "
                                          "8-bit pixels, 1 for pixels in [0, 1])", [info.path])
            largest = stats.max if largest is None else max(largest, stats.max)
    largest = float(largest) if largest is not None else 1.0
    return 255.0 if largest > 16 else 16.0 if largest > 1 else 1.0


def _first_length(infos, column: str) -> int:
    """A variable-length list column's vector length, from its first row; other rows are
    checked against it when read."""
    info = next(f for f in infos if f.num_rows)
    batch = next(pq.ParquetFile(info.path).iter_batches(batch_size=1, columns=[column]))
    value = batch.column(0)[0]
    if not value.is_valid:
        raise ParquetDatasetError(f"features column {column!r} is missing in row 0 of {info.path!r}; "
                                  "expected a vector per row", [info.path])
    return len(value)


def _numeric(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind)


# -- naming places ------------------------------------------------------------------------------
def _file_of(infos, position: int) -> int:
    return int(np.searchsorted([f.start for f in infos], position, side="right") - 1)


def _place(infos, position: int) -> str:
    info = infos[_file_of(infos, int(position))]
    return f"{info.path!r} row {int(position) - info.start}"


def _name_of(source, root: Path) -> str:
    if isinstance(source, (str, Path)) and Path(source).is_file():
        return Path(source).stem
    return root.resolve().name or "parquet"


def reopen_args(source, kw: dict) -> dict | None:
    """`Pool.from_parquet`'s call as JSON, paths made absolute, so that a label store can open
    the same dataset again (`workbench.loop.pool_source`); None when an argument is not
    plain data (a class list of objects, say)."""
    if isinstance(source, (str, Path)):
        text = Path(source).expanduser()  # a folder, a file or a glob: made absolute as it is
        where = str(text if text.is_absolute() else Path.cwd() / text)
    else:
        where = [str(Path(p).expanduser().resolve()) for p in source]
    args = {"reader": "parquet", "source": where, **kw}
    try:
        return json.loads(json.dumps(args))
    except (TypeError, ValueError):
        return None
