"""The features of a Parquet dataset, left on disk: `PartitionedFeatures` stands in for a
pool's `X`, and `ParquetPart` is a run of its rows that a worker reads on its own.

`PartitionedFeatures` has what code that indexes a pool's features uses: `shape`, `dtype`
(always float32), `ndim`, `len()`, and `X[i]`, `X[a:b]`, `X[[i, j, ...]]` (or a boolean
mask), which read only the row groups that hold those rows. `np.asarray(X)` reads every
row: that is what an in-memory consumer of a small pool gets, and it costs the whole array in
memory (`nbytes`: 3.1 GB for 1,000,000 28 x 28 images), so jobs over a large pool map over
`parts()` instead, each part reading its own rows where it runs.

Features are checked as they are read, since they are not read at open: a missing vector, a
vector of the wrong length, and NaN or infinite values each raise a `ParquetDatasetError`
that names the file and its rows (and the items, when the dataset has an id column).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from workbench.data.loaders import first_few
from workbench.data.parquet_files import ParquetDatasetError, ParquetFileInfo, file_metadata
from workbench.data.parts import ROWS_PER_PART, Part
from workbench.data.unique import unique_ints


@dataclass(frozen=True)
class FeatureSpec:
    """How a row's features are stored: one list column (`is_list`) of `prod(shape)` numbers
    (an image's pixels, row by row), or numeric columns, one number each; values are divided
    by `scale` (an image's 255) to give the pool's float32 features."""

    columns: tuple[str, ...]
    is_list: bool
    shape: tuple[int, ...]
    scale: float = 1.0
    id_column: str | None = None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclass(frozen=True)
class ParquetPart(Part):
    """Pool rows `start` to `stop`: row groups `row_groups` of one file, whose first row is
    row `first_row` of that file. `read()` opens the file itself, so on a Dask worker it
    reads these rows and nothing else travels; the file's size and row count, as they were
    when the pool was opened, let it refuse a file that changed since."""

    path: str = ""
    row_groups: tuple[int, ...] = ()
    first_row: int = 0
    spec: FeatureSpec = None
    file_rows: int = 0
    file_size: int = 0

    def read(self) -> np.ndarray:
        file_metadata(self.path, self.file_rows, self.file_size)  # refuses a changed file
        X = read_groups(self.path, self.row_groups, self.spec, self.first_row)
        check_finite(X, self.path, np.arange(self.first_row, self.first_row + len(X)), self.spec,
                     self.row_groups)
        return X

    def describe(self) -> str:
        return (f"rows {self.first_row}-{self.first_row + len(self) - 1} of {self.path} "
                f"(pool rows {self.start}-{self.stop - 1})")


class PartitionedFeatures:
    """A pool's features, read from a Parquet dataset's files when asked for (see the module
    notes). Rows are in file order, each file's rows in order."""

    dtype = np.dtype(np.float32)

    def __init__(self, files: list[ParquetFileInfo], spec: FeatureSpec):
        self.files = list(files)
        self.spec = spec
        self.shape = (sum(f.num_rows for f in self.files), *spec.shape)
        self._starts = np.array([f.start for f in self.files], dtype=np.int64)
        self._digest: str | None = None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        """What `np.asarray(X)` would hold in memory."""
        return int(np.prod(self.shape)) * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return (f"PartitionedFeatures({self.shape[0]} rows x {self.shape[1:]} in {len(self.files)} "
                f"Parquet files, on disk)")

    # -- reading -----------------------------------------------------------------------------
    def __getitem__(self, key):
        if isinstance(key, tuple):  # X[rows, ...]: the rows, then the rest on what was read
            rows = self[key[0]]
            rest = key[1:]
            return rows[rest] if np.ndim(rows) == len(self.shape) - 1 else rows[(slice(None), *rest)]
        n = len(self)
        if isinstance(key, (int, np.integer)):
            i = int(key)
            if not -n <= i < n:
                raise IndexError(f"row {i} is out of range for a pool of {n} items")
            return self.take(np.array([i % n]))[0]
        if isinstance(key, slice):
            return self.take(np.arange(*key.indices(n)))
        positions = np.asarray(key)
        if positions.dtype == bool:
            if positions.shape != (n,):
                raise IndexError(f"a boolean mask of {positions.shape} for {n} rows")
            positions = np.flatnonzero(positions)
        if positions.size and not np.issubdtype(positions.dtype, np.integer):
            raise IndexError(f"rows are chosen by int positions, a slice or a mask, got {positions.dtype}")
        return self.take(positions.astype(np.int64).reshape(-1))

    def take(self, positions: np.ndarray) -> np.ndarray:
        """The rows at `positions` (any order, repeats allowed), reading each needed row group
        of each file once."""
        n = len(self)
        out = np.empty((len(positions), *self.spec.shape), dtype=np.float32)
        if not len(positions):
            return out
        if positions.min() < -n or positions.max() >= n:
            bad = positions[(positions < -n) | (positions >= n)][0]
            raise IndexError(f"row {int(bad)} is out of range for a pool of {n} items")
        positions = positions % n
        order = np.argsort(positions, kind="stable")
        wanted = positions[order]
        file_of = np.searchsorted(self._starts, wanted, side="right") - 1
        for index in unique_ints(file_of):
            info = self.files[index]
            mine = file_of == index
            rows = wanted[mine] - info.start  # rows of this file
            group_starts = np.concatenate([[0], np.cumsum(info.group_rows)])
            group_of = np.searchsorted(group_starts, rows, side="right") - 1
            groups = unique_ints(group_of)
            file_metadata(info.path, info.num_rows, info.size)
            block = read_groups(info.path, tuple(int(g) for g in groups), self.spec,
                                int(group_starts[groups[0]]))
            # where each group's rows begin in `block`, which holds only the groups read
            block_starts = np.concatenate([[0], np.cumsum(np.asarray(info.group_rows)[groups])])
            at = block_starts[np.searchsorted(groups, group_of)] + rows - group_starts[group_of]
            chosen = block[at]
            check_finite(chosen, info.path, rows, self.spec)
            out[order[mine]] = chosen
        return out

    def __array__(self, dtype=None, copy=None):
        """Every row, read now, part by part (costs `nbytes` of memory)."""
        out = np.empty(self.shape, dtype=np.float32)
        for part in self.parts():
            out[part.start:part.stop] = part.read()
        return out if dtype is None else out.astype(dtype, copy=False)

    # -- jobs and keys -------------------------------------------------------------------------
    def parts(self, rows_per_part: int | None = None) -> list[ParquetPart]:
        """One part per file, or, for a file of more than `rows_per_part` rows, per run of its
        row groups of at most that many rows (at least one row group: a row group is what
        Parquet reads at once)."""
        limit = rows_per_part or ROWS_PER_PART
        if limit < 1:
            raise ValueError(f"rows_per_part must be at least 1, got {limit}")
        parts = []
        for info in self.files:
            first = 0
            groups: list[int] = []
            rows = 0
            for g, count in enumerate(info.group_rows):
                if groups and rows + count > limit:
                    parts.append(self._part(info, groups, first, rows))
                    first, groups, rows = first + rows, [], 0
                groups.append(g)
                rows += count
            if rows:
                parts.append(self._part(info, groups, first, rows))
        return parts

    def _part(self, info: ParquetFileInfo, groups: list[int], first: int, rows: int) -> ParquetPart:
        start = info.start + first
        return ParquetPart(start, start + rows, info.path, tuple(groups), first, self.spec,
                           info.num_rows, info.size)

    def content_digest(self) -> str:
        """A digest of what the features are read from, without reading them: each file's
        path relative to the dataset root, size, row count, raw footer (row-group
        statistics, column sizes and offsets, metadata) and the first and last KiB of each
        column chunk, and how rows become features. No modification time goes in, so a copied
        dataset keeps its key. What it cannot see: an edit in place that keeps a file's size,
        its footer and those sampled bytes (one value changed mid-chunk, by a tool that
        rewrites bytes in place); write changed data as a new file, as Parquet tools do."""
        if self._digest is None:
            h = hashlib.blake2b(digest_size=20)
            h.update(repr((self.spec.columns, self.spec.is_list, self.spec.shape, self.spec.scale)).encode())
            for f in self.files:
                h.update(f"\x1e{f.relpath}\x1f{f.size}\x1f{f.num_rows}\x1f{f.footer_digest}".encode())
            self._digest = h.hexdigest()
        return self._digest


def read_groups(path: str, row_groups: tuple[int, ...], spec: FeatureSpec, first_row: int) -> np.ndarray:
    """The features of some row groups of a file (its rows from `first_row` on), float32."""
    try:
        table = pq.ParquetFile(path).read_row_groups(list(row_groups), columns=list(spec.columns))
    except (OSError, pa.ArrowException) as e:
        raise ParquetDatasetError(f"cannot read the features of Parquet file {path!r} ({e})", [path]) from e
    n = table.num_rows
    where = f"Parquet file {path!r}"
    if spec.is_list:
        column = table.column(spec.columns[0]).combine_chunks()
        _refuse_rows(column.is_null(), f"{where}: features column {spec.columns[0]!r} is missing in",
                     "expected a vector per row", path, first_row, spec)
        lengths = column.value_lengths().to_numpy(zero_copy_only=False)
        wrong = lengths != spec.size
        if wrong.any():
            _refuse_rows(wrong, f"{where}: features column {spec.columns[0]!r} has a vector of the "
                         f"wrong length (e.g. {int(lengths[wrong][0])} numbers) in",
                         f"expected {spec.size} numbers per row" + (f" (an image of {spec.shape})"
                                                                    if len(spec.shape) > 1 else ""),
                         path, first_row, spec)
        flat = column.flatten()
        if flat.null_count:
            owner = np.repeat(np.arange(n), lengths)
            mask = np.zeros(n, dtype=bool)
            mask[owner[flat.is_null().to_numpy(zero_copy_only=False)]] = True
            _refuse_rows(mask, f"{where}: features column {spec.columns[0]!r} has missing numbers in",
                         "expected a number in every place", path, first_row, spec)
        values = flat.to_numpy(zero_copy_only=False)  # a read-only view of Arrow's buffer, if float32
        values = values.astype(np.float32, copy=not values.flags.writeable).reshape(n, *spec.shape)
    else:
        cols = []
        for name in spec.columns:
            column = table.column(name)
            _refuse_rows(column.is_null(), f"{where}: feature column {name!r} is missing in",
                         "expected a number per row", path, first_row, spec)
            cols.append(column.to_numpy().astype(np.float32, copy=False))
        values = np.stack(cols, axis=1) if cols else np.empty((n, 0), np.float32)
    if spec.scale != 1.0:
        values /= np.float32(spec.scale)  # in place (values is ours): no second copy of the rows
    return values


def check_finite(X: np.ndarray, path: str, file_rows: np.ndarray, spec: FeatureSpec,
                 row_groups: tuple[int, ...] | None = None) -> None:
    """Refuse NaN or infinite features, naming the file, its rows and their items."""
    finite = np.isfinite(X.reshape(len(X), -1)).all(axis=1)
    if finite.all():
        return
    bad = np.asarray(file_rows)[~finite]
    items = _item_ids(path, bad, spec)
    raise ParquetDatasetError(
        f"features of Parquet file {path!r} contain NaN or infinite values in {len(bad)} rows: "
        f"{_rows(bad)}{items}; expected finite numbers - impute or drop those rows", [path])


def _refuse_rows(mask, message: str, expected: str, path: str, first_row: int, spec: FeatureSpec) -> None:
    mask = mask.to_numpy(zero_copy_only=False) if hasattr(mask, "to_numpy") else np.asarray(mask)
    if not mask.any():
        return
    bad = first_row + np.flatnonzero(mask)
    raise ParquetDatasetError(f"{message} {len(bad)} rows: {_rows(bad)}{_item_ids(path, bad, spec)}; "
                              f"{expected}", [path])


def _rows(file_rows: np.ndarray) -> str:
    return "file rows " + first_few([str(int(r)) for r in file_rows])


def _item_ids(path: str, file_rows: np.ndarray, spec: FeatureSpec) -> str:
    """" (items 'a', 'b')" for the first few of those rows, read from the id column; the error
    is the news, so a failure to read ids leaves them out."""
    if spec.id_column is None:
        return ""
    try:
        ids = pq.read_table(path, columns=[spec.id_column]).column(0)
        shown = [repr(str(ids[int(r)].as_py())) for r in file_rows[:5]]
    except Exception:  # noqa: BLE001 - see the docstring
        return ""
    return f" (items {first_few(shown, total=len(file_rows))})"
