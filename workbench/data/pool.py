"""Pool: the items a user may label, with stable string ids and aligned features.

A pool is two aligned things: `items`, a DataFrame indexed by `item_id` holding what a
person looks at (a text, an image path, a table row), and `X`, the numeric features a
model learns from, row i of `X` belonging to `items.index[i]`. Ground truth `y` is
optional (simulations and tutorials have it; real labeling does not). The label store
never holds features, only item ids that point here, so ids must be stable strings.

Each kind of data arrives through a class method (`Pool.from_arrays`, `Pool.from_dataframe`,
`Pool.from_file`, ...); `workbench.data.loaders` turns the input into constructor arguments
and knows nothing of this class, so imports run one way: pool -> loaders.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from workbench.data import loaders
from workbench.data.boxes import pool_boxes
from workbench.data.parquet_features import PartitionedFeatures
from workbench.data.spans import ground_truth_spans
from workbench.data.tasks import (
    BOXES,
    MULTI_LABEL,
    PARTS,
    SINGLE,
    SPANS,
    check_task,
    ground_truth_sets,
    is_collection,
)

KINDS = ("image", "vector", "text", "table")


class Pool:
    """Items with stable `item_id`s, features `X`, optional ground truth `y`.

    `kind` says how items are shown: "image" (X is N x H x W [x C] in [0, 1]),
    "vector" (N x D), "text" (items has a `text` column) or "table" (items holds the
    row's columns). `X_test`/`y_test` optionally carry a held-out split that came
    with the data (e.g. an NPZ file's own test arrays). `image_source` says where an image
    item is drawn from: "features" (X itself) or "path" (the file in `items["path"]`, read
    when shown, so a file that breaks later shows as a placeholder instead of failing).
    `image_scale` is what raw pixel values were divided by to give X (255 for 8-bit files),
    and `feature_names` the columns a table's X was read from: with them a model bundle
    reads new image files and table rows exactly as this pool's were read.
    `task` says what one label is: "single" (one class per item, the default) or
    "multi_label" (any subset of the classes; `y` then holds a list of classes per item) or
    "spans" (marked stretches of a text pool's texts: `y` holds a list of `(start, end, label)`
    per text, offsets in code points, and `classes` are the span labels; `overlapping` says
    whether one text's spans may overlap, as nested entities do) or "boxes" (the objects of an
    image pool's images: `y` holds a list of `(x, y, w, h, label)` per image, in pixels of X's
    images - a folder's are read at full size - see workbench.data.boxes). A boxes pool's
    images may differ in size: X holds them padded (bottom, right) to the largest, and
    `image_sizes` each one's own (width, height), (N, 2); None when all have X's size.
    `class_folders` says each item id begins with a folder named after the item's label
    (`Pool.from_folder` with class subfolders): `display_name` then leaves that folder out,
    so that what a labeler is shown does not give the answer away.
    """

    def __init__(
        self,
        X,
        *,
        item_ids: Sequence | None = None,
        y=None,
        classes: Sequence | None = None,
        kind: str | None = None,
        items: pd.DataFrame | None = None,
        X_test=None,
        y_test=None,
        name: str = "pool",
        image_source: str = "features",
        image_scale: float | None = None,
        feature_names: Sequence[str] | None = None,
        class_folders: bool = False,
        task: str = SINGLE,
        overlapping: bool = False,
        image_sizes=None,
    ):
        task = check_task(task)
        # features left on disk (a Parquet dataset's) stay there: checked as they are read
        lazy = isinstance(X, PartitionedFeatures)
        X = X if lazy else np.asarray(X)
        if X.ndim == 0 or X.shape[0] == 0:
            raise ValueError(f"the pool is empty (features of shape {X.shape}); expected at least one item")
        n = X.shape[0]
        kind = kind or ("image" if X.ndim >= 3 else "vector")
        if kind not in KINDS:
            raise ValueError(f"unknown pool kind {kind!r}; expected one of {KINDS}")
        if kind != "image" and X.ndim != 2:
            raise ValueError(f"{kind} features must be 2-d (items x features), got shape {X.shape}")
        if not np.issubdtype(X.dtype, np.number):
            raise ValueError(f"features must be numeric, got dtype {X.dtype}")
        X = X if lazy else X.astype(np.float32, copy=False)
        if image_source not in ("features", "path"):
            raise ValueError(f"image_source must be 'features' or 'path', got {image_source!r}")
        if image_source == "path" and (items is None or "path" not in items):
            raise ValueError("image_source='path' needs an items DataFrame with a 'path' column")

        if item_ids is None:
            item_ids = [f"{i:0{len(str(n - 1))}d}" for i in range(n)]
        if isinstance(item_ids, pd.Index) and isinstance(item_ids.dtype, pd.StringDtype) \
                and not item_ids.hasnans:
            item_ids = item_ids.rename("item_id")  # text already (a Parquet dataset's): no pass in Python
        else:
            item_ids = pd.Index([str(i) for i in item_ids], name="item_id")
        if len(item_ids) != n:
            raise ValueError(
                f"features and item ids have different lengths: {n} feature rows, "
                f"{len(item_ids)} item ids; expected one id per row"
            )
        if not lazy:
            _check_finite(X, item_ids, "features")
        if item_ids.has_duplicates:
            dup = item_ids[item_ids.duplicated()][0]
            raise ValueError(f"item id {dup!r} appears more than once; item ids must be unique")

        if items is None:
            items = pd.DataFrame(index=item_ids)
        else:
            if len(items) != n:
                raise ValueError(f"items has {len(items)} rows but features have {n}")
            items = items.copy()
            items.index = item_ids

        if task == SPANS:
            if kind != "text":
                raise ValueError(f"task='spans' marks stretches of texts; this is a {kind} pool - "
                                 "make it with Pool.from_texts(texts, y=spans, task='spans')")
            if y is not None:
                y, classes = ground_truth_spans(y, items["text"].tolist(), classes,
                                                overlapping=overlapping)
        if task == BOXES:  # boxes are in the pixels of X's images (a folder's: read at full size)
            if kind != "image" or X.ndim < 3:
                raise ValueError(f"task='boxes' draws boxes on the pixels of images; this is a {kind} "
                                 f"pool of features {X.shape[1:]} - make it with Pool.from_arrays(images, "
                                 "y=boxes, task='boxes') or Pool.from_folder(folder, task='boxes')")
            y, classes, image_sizes = pool_boxes(y, X.shape, image_sizes, classes)
        elif image_sizes is not None:
            raise ValueError(f"image_sizes (images of different sizes) are for task='boxes'; a {task!r} "
                             "pool's learners read images of one size - resize them first")
        y, found = (y, classes) if task in PARTS else _ground_truth(y, task, "y")
        if y is not None and y.shape[0] != n:
            raise ValueError(f"labels y have {y.shape[0]} entries but the pool has {n} items")
        if classes is None and y is not None:
            classes = found
        if classes is not None:
            classes = [c.item() if hasattr(c, "item") else c for c in classes]
            if len(set(map(str, classes))) != len(classes):
                raise ValueError(f"class names must be distinct as text, got {classes!r}")
            if task == MULTI_LABEL and y is not None:
                unknown = sorted(set(map(str, found)) - set(map(str, classes)))
                if unknown:
                    raise ValueError(f"y names classes {unknown} that are not among the classes {classes}")

        self.X = X
        self.y = y
        self.items = items
        self.kind = kind
        self.classes: list | None = list(classes) if classes is not None else None
        self.name = name
        self.image_source = image_source
        self.image_scale = None if image_scale is None else float(image_scale)
        self.feature_names = None if feature_names is None else [str(c) for c in feature_names]
        if self.feature_names is not None and len(self.feature_names) != int(np.prod(X.shape[1:])):
            raise ValueError(f"{len(self.feature_names)} feature names for {int(np.prod(X.shape[1:]))} "
                             "features; expected one name per feature column")
        self.task = task
        self.overlapping = bool(overlapping)  # may one text's spans overlap (task "spans")
        self.image_sizes = image_sizes  # each image's own (width, height) where they differ (boxes)
        self.X_test = None if X_test is None else np.asarray(X_test, dtype=np.float32)
        self.y_test, test_classes = _ground_truth(y_test, task, "y_test")
        if task == MULTI_LABEL and test_classes and self.classes is not None:
            unknown = sorted(set(map(str, test_classes)) - set(map(str, self.classes)))
            if unknown:
                raise ValueError(f"y_test names classes {unknown} that are not among the classes "
                                 f"{self.classes}")
        if self.X_test is not None:
            _check_finite(self.X_test, None, "test features")
            if self.y_test is None or len(self.y_test) != len(self.X_test):
                raise ValueError("X_test needs a y_test of the same length")
        self.class_folders = bool(class_folders)
        # how a reader that can open this pool again was called (JSON), None for data in memory
        self.opened_with: dict | None = None
        self._positions = pd.Series(np.arange(n), index=item_ids)
        self._render_cache: dict[str, dict] = {}

    # -- lookups ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.X.shape[0]

    def __repr__(self) -> str:
        classes = "?" if self.classes is None else len(self.classes)
        task = "" if self.task == SINGLE else f", task={self.task!r}"
        return (f"Pool({self.name!r}, {len(self)} {self.kind} items, features {self.X.shape[1:]}, "
                f"classes={classes}{task})")

    @property
    def item_ids(self) -> pd.Index:
        return self.items.index

    def __contains__(self, item_id) -> bool:
        return str(item_id) in self._positions.index

    def position(self, item_id) -> int:
        """Row of `item_id` in `X`; a clear KeyError for ids that are not in the pool."""
        try:
            return int(self._positions[str(item_id)])
        except KeyError:
            raise KeyError(
                f"item_id {item_id!r} is not in the pool {self.name!r} ({len(self)} items, "
                f"e.g. {list(self.item_ids[:3])})"
            ) from None

    def positions(self, item_ids) -> np.ndarray:
        ids = [str(i) for i in item_ids]
        missing = [i for i in ids if i not in self._positions.index]
        if missing:
            self.position(missing[0])
        return self._positions.loc[ids].to_numpy() if ids else np.empty(0, dtype=np.int64)

    def display_name(self, item_id) -> str:
        """What to call `item_id` where a person labels it: the item id, except that when
        the class folder is the label (`Pool.from_folder` with class subfolders) it is the
        path without that folder ("224.png", not "1/224.png"), which would give the answer
        away. Names need not be unique (cats/1.png and dogs/1.png are both "1.png"); the item
        id stays the key everywhere else. A KeyError for ids that are not in the pool."""
        key = str(item_id)
        self.position(key)
        if not self.class_folders:
            return key
        _, _, rest = key.partition("/")
        return rest or key

    @property
    def has_ground_truth(self) -> bool:
        return self.y is not None

    def true_label(self, item_id):
        """The item's ground truth: a class, or a list of classes in a multi-label pool."""
        if self.y is None:
            raise ValueError(f"pool {self.name!r} has no ground truth labels")
        value = self.y[self.position(item_id)]
        if self.task in (MULTI_LABEL, SPANS, BOXES):
            return list(value)
        return value.item() if hasattr(value, "item") else value

    def text_of(self, item_id) -> str:
        """The text of a text pool's item (what its spans' offsets count in code points)."""
        if self.kind != "text":
            raise ValueError(f"pool {self.name!r} is a {self.kind} pool; only text items have a text")
        return str(self.items["text"].iloc[self.position(item_id)])

    def parts(self, rows_per_part: int | None = None) -> list:
        """The pool's rows as parts whose features can be read on their own, in order (see
        `workbench.data.parts`): what a job over the whole pool maps over."""
        from workbench.data.parts import ROWS_PER_PART, array_parts_of

        if isinstance(self.X, PartitionedFeatures):  # one part per file or run of row groups
            return self.X.parts(rows_per_part)
        return array_parts_of(self.X, rows_per_part or ROWS_PER_PART)

    # -- derived pools -----------------------------------------------------------------------
    def subset(self, positions, *, name: str | None = None) -> Pool:
        """A pool of the given rows, keeping their ids, classes and render sources."""
        positions = np.asarray(positions, dtype=np.int64)
        return Pool(
            self.X[positions],
            item_ids=self.item_ids[positions],
            y=None if self.y is None else self.y[positions],
            classes=self.classes,
            kind=self.kind,
            items=self.items.iloc[positions],
            name=name or self.name,
            image_source=self.image_source,
            image_scale=self.image_scale,
            feature_names=self.feature_names,
            class_folders=self.class_folders,
            task=self.task,
            overlapping=self.overlapping,
            image_sizes=None if self.image_sizes is None else self.image_sizes[positions],
        )

    def train_test_split(self, test_size: float = 0.3, *, seed: int = 0) -> tuple[Pool, Pool]:
        """A stratified split (when there is ground truth) fixed by `seed`."""
        from sklearn.model_selection import train_test_split

        if not 0 < test_size < 1:
            raise ValueError(f"test_size must be between 0 and 1, got {test_size}")
        positions = np.arange(len(self))
        stratify = (self.y if self.y is not None and self.task == SINGLE
                    and _can_stratify(self.y, test_size) else None)
        train, test = train_test_split(
            positions, test_size=test_size, random_state=seed, stratify=stratify
        )
        return self.subset(np.sort(train)), self.subset(np.sort(test), name=f"{self.name}-test")

    # -- display -------------------------------------------------------------------------------
    def render(self, item_id) -> dict[str, Any]:
        """What a person sees for one item, as JSON-able data for the widget:
        {"kind": "image", "mime": "image/png", "data": base64, "width", "height"},
        {"kind": "text", "text": ...}, {"kind": "table", "rows": [[key, value], ...]},
        or {"kind": "error", "reason": ...} when the item cannot be shown."""
        from workbench.data.render import render_item

        key = str(item_id)
        cached = self._render_cache.get(key)
        if cached is None:
            cached = render_item(self, self.position(key))
            if len(self._render_cache) < 4096:  # bounded: pools can hold millions of items
                self._render_cache[key] = cached
        return cached

    # -- constructors: workbench.data.loaders turns each input into Pool arguments ------------
    @classmethod
    def from_arrays(cls, X, y=None, **kw) -> Pool:
        """Images (N x H x W [x C]; for task='boxes' also a list of images of different sizes)
        or vectors (N x D); see `loaders.array_parts`."""
        task = kw.pop("task", SINGLE)
        return cls(**loaders.array_parts(X, y, pad_sizes=task == BOXES, **kw), task=task)

    @classmethod
    def from_dataframe(cls, df: pd.DataFrame, **kw) -> Pool:
        """Rows of a DataFrame: numeric columns, a text column or an image-path column."""
        task = kw.pop("task", SINGLE)
        return cls(**loaders.dataframe_parts(df, pad_sizes=task == BOXES, **kw), task=task)

    @classmethod
    def from_texts(cls, texts, y=None, **kw) -> Pool:
        """Texts, with offline TF-IDF + LSA features unless `embeddings=` are given."""
        task, overlapping = kw.pop("task", SINGLE), kw.pop("overlapping", False)
        return cls(**loaders.text_parts(texts, y, **kw), task=task, overlapping=overlapping)

    @classmethod
    def from_file(cls, path, **kw) -> Pool:
        """A Parquet, CSV/TSV or NPZ file."""
        task = kw.pop("task", SINGLE)
        return cls(**loaders.file_parts(path, pad_sizes=task == BOXES, **kw), task=task)

    @classmethod
    def from_folder(cls, path, **kw) -> Pool:
        """Images from a folder; class subfolders give ground truth (task='boxes': of any sizes)."""
        task = kw.pop("task", SINGLE)
        return cls(**loaders.folder_parts(path, pad_sizes=task == BOXES, **kw), task=task)

    @classmethod
    def from_parquet(cls, source, **kw) -> Pool:
        """A partitioned Parquet dataset (a folder, a glob, a file or a list of files), opened
        from its footers and small columns: features stay on disk, `X` reads them when asked
        (see `workbench.data.parquet_pool` for the arguments)."""
        from workbench.data.parquet_pool import parquet_pool_args, reopen_args

        rest = {k: v for k, v in kw.items() if k != "task"}
        pool = cls(**parquet_pool_args(source, **rest), task=kw.get("task", SINGLE))
        pool.opened_with = reopen_args(source, kw)  # so a store can reopen it (loop/pool_source.py)
        return pool


def _ground_truth(y, task: str, what: str) -> tuple[np.ndarray | None, list | None]:
    """Ground truth as an array (multi-label: of class tuples), and the classes in it."""
    if y is None:
        return None, None
    if task == SPANS:
        raise ValueError(f"{what}: a spans pool takes its held-out texts as a pool of their own - "
                         "Session(..., test=Pool.from_texts(texts, y=spans, task='spans'))")
    if task == BOXES:
        raise ValueError(f"{what}: a boxes pool takes its held-out images as a pool of their own - "
                         "Session(..., test=Pool.from_arrays(images, y=boxes, task='boxes'))")
    if task == MULTI_LABEL:
        return ground_truth_sets(y, what)
    if not isinstance(y, np.ndarray) and any(is_collection(v) for v in list(y)[:1000]):
        raise ValueError(f"{what} holds lists of classes; a single-label pool takes one class per "
                         "item - pass task='multi_label' for items with several classes")
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{what} must hold one class per item (1-d), got shape {y.shape}; pass "
                         "task='multi_label' and a list of classes per item for several classes")
    return y, np.unique(y).tolist()


def _check_finite(X: np.ndarray, item_ids, what: str) -> None:
    finite = np.isfinite(X.reshape(X.shape[0], -1)).all(axis=1)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        name = item_ids[bad] if item_ids is not None else bad
        raise ValueError(
            f"{what} contain NaN or infinite values in {int((~finite).sum())} rows "
            f"(first: item {name!r}); expected finite numbers - impute or drop those rows"
        )


def _can_stratify(y, test_size: float) -> bool:
    _, counts = np.unique(y, return_counts=True)
    return counts.min() >= 2 and len(counts) <= test_size * len(y)
