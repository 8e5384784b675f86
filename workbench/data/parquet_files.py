"""The files of a partitioned Parquet dataset, known from their footers alone.

A dataset is a folder of `.parquet` (or `.pq`) files, searched recursively, a glob
(`"shards/*.parquet"`, `"**"` allowed), one file, or a list of files. Its order is the
files' paths relative to the dataset's root, sorted, so that a pool's row order (and its
representation's cache key) does not depend on how the file system lists a folder. Files
whose names start with "_" or "." (Spark's `_SUCCESS`, Dask's `_metadata`, editors' lock
files) are not data and are left out.

Opening a file here reads its footer only: the schema, the row count, each row group's row
count, and a digest of the raw footer bytes (row-group statistics, column sizes and offsets,
key-value metadata) and of a sample of each column chunk's bytes (its first and last KiB).
That digest, with the path relative to the root, the size and the row count, is what a
dataset's content is keyed by (`PartitionedFeatures.content_digest`), so no wall-clock time
goes in and a copied dataset keeps its cache.

Every problem is a `ParquetDatasetError` that names the file (and the rows, where rows are
at fault); a path that is not there is also a `FileNotFoundError`.
"""

from __future__ import annotations

import difflib
import glob
import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from workbench.data.loaders import first_few

SUFFIXES = (".parquet", ".pq")
GLOB_CHARS = set("*?[")
SAMPLE = 1024  # bytes of each column chunk's start and end that a file's digest reads


class ParquetDatasetError(ValueError):
    """A Parquet dataset that cannot be a pool as it is: the message names the file(s) and,
    where rows are at fault, the rows. `files` holds those paths."""

    def __init__(self, message: str, files=()):
        super().__init__(message)
        self.files = tuple(str(f) for f in files)


class ParquetPathError(ParquetDatasetError, FileNotFoundError):
    """A dataset path that is not there: a typo, a glob that matches nothing, a folder with
    no Parquet files, or a file that went away after the pool was opened."""


@dataclass(frozen=True)
class ParquetFileInfo:
    """One file of a dataset, as its footer describes it. `start` is the pool position of
    its first row; `group_rows` the row count of each of its row groups, in order."""

    path: str
    relpath: str
    size: int
    num_rows: int
    group_rows: tuple[int, ...]
    footer_digest: str
    start: int = 0

    @property
    def stop(self) -> int:
        return self.start + self.num_rows


def dataset_files(source) -> tuple[Path, list[Path]]:
    """The dataset's root (what relative paths are taken from) and its data files, in
    order; an error naming the path when there are none."""
    if isinstance(source, (list, tuple)):
        if not source:
            raise ParquetPathError("the list of Parquet files is empty; expected at least one file")
        files = [Path(p) for p in source]
        for f in files:
            if not f.is_file():
                _missing(f)
        root = Path(os.path.commonpath([str(f.resolve().parent) for f in files]))
        return root, sorted(files, key=lambda f: f.resolve().relative_to(root).as_posix())
    text = os.fspath(source)
    if GLOB_CHARS & set(text):
        matches = sorted(Path(p) for p in glob.glob(text, recursive=True))
        files = [p for p in matches if p.is_file() and not _hidden(p.name)]
        if not files:
            raise ParquetPathError(f"no files match {text!r}"
                                   + (f" ({len(matches)} matches are folders or hidden files)"
                                      if matches else "") + "; expected Parquet files", [text])
        root = _glob_root(text)
        return root, sorted(files, key=lambda f: _rel(f, root))
    path = Path(text)
    if path.is_file():
        return path.parent, [path]
    if not path.is_dir():
        _missing(path)
    files = [p for p in path.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file()
             and not any(_hidden(part) for part in p.relative_to(path).parts)]
    if not files:
        seen = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
        there = f"it holds {first_few(seen)}" if seen else "it is empty"
        raise ParquetPathError(f"folder {text!r} holds no Parquet files ({', '.join(SUFFIXES)}); "
                               f"{there}", [text])
    return path, sorted(files, key=lambda f: _rel(f, path))


def read_footers(root: Path, files: list[Path]) -> list[ParquetFileInfo]:
    """Each file's footer, with pool positions counted on from the file before."""
    infos, start = [], 0
    for f in files:
        meta = _metadata(f)
        groups = tuple(meta.row_group(i).num_rows for i in range(meta.num_row_groups))
        infos.append(ParquetFileInfo(str(f), _rel(f, root), f.stat().st_size, meta.num_rows, groups,
                                     footer_digest(f, meta), start))
        start += meta.num_rows
    return infos


def schema_of(path) -> pa.Schema:
    """The Arrow schema of a file, from its footer."""
    try:
        return pq.read_schema(path)
    except (OSError, pa.ArrowException) as e:
        raise ParquetDatasetError(f"cannot read Parquet file {str(path)!r} ({e}); fix or remove it",
                                  [path]) from e


def check_same_schema(infos: list[ParquetFileInfo], first: pa.Schema) -> None:
    """Every file has the first file's columns with the same types; else an error naming the
    file, the column, the type expected and the type found."""
    expected = {f.name: f.type for f in first}
    for info in infos[1:]:
        schema = schema_of(info.path)
        found = {f.name: f.type for f in schema}
        where = f"Parquet file {info.path!r}"
        for name, kind in expected.items():
            if name not in found:
                raise ParquetDatasetError(
                    f"{where} has no column {name!r} ({kind}), which {infos[0].path!r} has; every file "
                    f"of a dataset needs the same columns (it has {list(found)})", [info.path, infos[0].path])
            if found[name] != kind:
                raise ParquetDatasetError(
                    f"{where}: column {name!r} is {found[name]}, expected {kind} as in {infos[0].path!r}; "
                    "every file of a dataset needs the same column types", [info.path, infos[0].path])
        extra = [n for n in found if n not in expected]
        if extra:
            raise ParquetDatasetError(
                f"{where} has columns {extra} that {infos[0].path!r} does not have; every file of a "
                "dataset needs the same columns", [info.path, infos[0].path])


def footer_digest(path, meta=None) -> str:
    """A digest of the file's raw footer (its row groups' statistics, sizes and offsets, its
    schema and key-value metadata) and of the first and last SAMPLE bytes of each column
    chunk (where the first page's header and values are): a rewrite with other rows shows
    even when sizes and statistics happen to stay the same (incompressible pixels in 0-255).
    A few small reads per row group, not the data."""
    h = hashlib.blake2b(digest_size=16)
    try:
        with open(path, "rb") as f:
            f.seek(-8, os.SEEK_END)
            tail = f.read(8)
            length = struct.unpack("<I", tail[:4])[0]
            f.seek(-8 - length, os.SEEK_END)
            h.update(f.read(length) + tail)
            for g in range(meta.num_row_groups if meta is not None else 0):
                group = meta.row_group(g)
                for c in range(group.num_columns):
                    chunk = group.column(c)
                    start = chunk.dictionary_page_offset or chunk.data_page_offset
                    size = chunk.total_compressed_size
                    for at in sorted({start, max(start, start + size - SAMPLE)}):
                        f.seek(at)
                        h.update(f.read(min(SAMPLE, size)))
    except OSError as e:
        raise ParquetDatasetError(f"cannot read Parquet file {str(path)!r} ({e})", [path]) from e
    return h.hexdigest()


def file_metadata(path, expected_rows: int | None = None, expected_size: int | None = None):
    """A file's footer, read again where the rows are read (a worker): an error naming it
    when it went away or changed since the pool was opened."""
    path = Path(path)
    if not path.is_file():
        raise ParquetPathError(f"Parquet file {str(path)!r} was part of the dataset when the pool was "
                               "opened and is not there any more; open the pool again", [path])
    size = path.stat().st_size
    meta = _metadata(path)
    if (expected_size is not None and size != expected_size) or \
            (expected_rows is not None and meta.num_rows != expected_rows):
        raise ParquetDatasetError(
            f"Parquet file {str(path)!r} changed since the pool was opened ({meta.num_rows} rows, "
            f"{size} bytes; it had {expected_rows} rows, {expected_size} bytes); open the pool again",
            [path])
    return meta


def _metadata(path: Path):
    try:
        return pq.read_metadata(path)
    except (OSError, pa.ArrowException) as e:
        raise ParquetDatasetError(f"cannot read Parquet file {str(path)!r} ({e}); fix or remove it",
                                  [path]) from e


def _missing(path: Path):
    parent = path.parent if path.parent.is_dir() else None
    hint = ""
    if parent is not None:
        close = difflib.get_close_matches(path.name, [p.name for p in parent.iterdir()], n=3)
        if close:
            hint = f"; did you mean {' or '.join(repr(str(parent / c)) for c in close)}?"
    elif path.parent != path:
        hint = f" (nor is its folder {str(path.parent)!r})"
    raise ParquetPathError(f"Parquet dataset path {str(path)!r} does not exist{hint}", [path])


def _hidden(name: str) -> bool:
    return name.startswith(("_", "."))


def _glob_root(pattern: str) -> Path:
    """The folder above the first part of a glob that has a wildcard."""
    parts = Path(pattern).parts
    fixed = [p for p in parts[:next(i for i, p in enumerate(parts) if GLOB_CHARS & set(p))]]
    return Path(*fixed) if fixed else Path(".")


def _rel(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()
