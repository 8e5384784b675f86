"""Parts of a pool: contiguous runs of its rows whose features can be read on their own, in
this process or on a worker of a cluster.

A job over a whole pool (building its representation, scoring it, predicting) is a map over
its parts. A part is small and picklable: it says where its rows' features are (an array it
carries, or a file it reads), never holds the pool. `Pool.parts()` gives an in-memory pool's
parts as slices of `X`; a Parquet dataset's parts read their rows from their file (see
`workbench.data.parquet_pool`), so a worker reads its own rows and nothing else travels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ArrayPart", "ItemsPart", "Part", "ROWS_PER_PART", "array_parts_of"]

ROWS_PER_PART = 65_536  # an in-memory pool's rows per part: 200 MB of 28 x 28 float32 images


@dataclass(frozen=True)
class Part:
    """Rows `start` to `stop` (pool positions, stop excluded) of a pool."""

    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start

    def read(self) -> np.ndarray:
        """The features of this part's rows, float32, as the pool's `X[start:stop]`."""
        raise NotImplementedError

    def describe(self) -> str:
        """Where the rows come from, for error messages ("rows 0-65535 of the pool")."""
        return f"rows {self.start}-{self.stop - 1} of the pool"


@dataclass(frozen=True)
class ArrayPart(Part):
    """Rows of an in-memory pool: it carries them."""

    array: np.ndarray = None

    def read(self) -> np.ndarray:
        return self.array


@dataclass(frozen=True)
class ItemsPart(Part):
    """A run of items already read, as a model reads them (image paths, texts, table rows,
    arrays): `workbench predict --scheduler` carries them to a worker."""

    items: object = None

    def read(self):
        return self.items


def array_parts_of(X: np.ndarray, rows_per_part: int = ROWS_PER_PART) -> list[Part]:
    """`X` in consecutive parts of at most `rows_per_part` rows (views, not copies)."""
    if rows_per_part < 1:
        raise ValueError(f"rows_per_part must be at least 1, got {rows_per_part}")
    n = len(X)
    return [ArrayPart(start, min(n, start + rows_per_part), X[start:start + rows_per_part])
            for start in range(0, n, rows_per_part)]
