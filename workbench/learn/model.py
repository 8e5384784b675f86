"""A trained model as a user holds it: items in, class probabilities out.

A session's learner sees the pool's representation (or the pool's own features); a user
has images, texts and table rows. `Model` joins the two: the input signature (what one
item is: kind, shape, dtype, and how raw items become features, the way the pool's loaders
made them), the encoder of the pool's representation when the learner uses one, and the
fitted learner, with the classes in the session's order. `session.model` is one, and so is
what `workbench.load_model` returns from a bundle (`workbench.learn.bundle`): the same
code computes both, so their probabilities agree exactly.

`predict_proba(items)` takes a Pool, an array shaped like a pool's `X`, or raw items of the
pool's kind: image file paths, texts, a DataFrame of table rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.data.pool import Pool
from workbench.data.tasks import MULTI_LABEL, SINGLE, LabelSet
from workbench.learn.contract import features_for

__all__ = ["InputSignature", "Model", "aligned", "class_columns"]


@dataclass
class InputSignature:
    """What one item is, and how raw items become the features a model reads.

    kind: "image" | "vector" | "text" | "table" (as `Pool.kind`).
    shape: one item's features (a pool's `X.shape[1:]`), float32.
    image_scale: raw pixel values are divided by this (image files).
    feature_names: a table's feature columns, in order.
    text: the fitted text vectoriser (`workbench.data.text.TextVectorizer`), None when the
        features came from elsewhere: then texts cannot be encoded, only features passed.
    """

    kind: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    image_scale: float | None = None
    feature_names: list[str] | None = None
    text: object | None = field(default=None, repr=False)

    @classmethod
    def of(cls, pool: Pool, *, text=None) -> InputSignature:
        return cls(kind=pool.kind, shape=tuple(int(d) for d in pool.X.shape[1:]),
                   image_scale=pool.image_scale, feature_names=pool.feature_names, text=text)

    def as_config(self, onnx_input: str = "items") -> dict:
        """config.json's "input" (workbench.learn.bundle): what one item is, and the name of
        the ONNX graph's input that reads it."""
        return {"kind": self.kind, "shape": list(self.shape), "dtype": self.dtype,
                "image_scale": self.image_scale, "feature_names": self.feature_names,
                "onnx_input": onnx_input, "raw_texts": self.text is not None}

    @classmethod
    def from_config(cls, spec: dict, *, text=None) -> InputSignature:
        """The signature config.json's "input" describes (`text`: its vectoriser, if any)."""
        return cls(kind=spec["kind"], shape=tuple(spec["shape"]), dtype=spec["dtype"],
                   image_scale=spec["image_scale"], feature_names=spec["feature_names"], text=text)

    def describe(self) -> str:
        shape = " x ".join(map(str, self.shape))
        return f"{self.kind} items with features of shape ({shape}), {self.dtype}"

    def features(self, items) -> np.ndarray:
        """`items` as a float32 feature array (N, *shape), read the way the pool was read;
        a clear ValueError for anything else."""
        if isinstance(items, Pool):
            if items.kind != self.kind:
                raise ValueError(f"the pool {items.name!r} holds {items.kind} items; this model "
                                 f"reads {self.describe()}")
            return self.check(items.X)
        if isinstance(items, pd.DataFrame):
            return self.check(self._table(items))
        if isinstance(items, np.ndarray) and items.dtype.kind in "biuf":
            return self.check(self._pixels(items) if items.dtype.kind in "biu" else items)
        if isinstance(items, (str, Path)):
            items = [items]
        if isinstance(items, (list, tuple)) and not items:  # nothing to predict: no rows
            return np.zeros((0, *self.shape), dtype=np.float32)
        if isinstance(items, (pd.Series, Sequence, np.ndarray)) and len(items) and all(
                isinstance(i, (str, Path)) for i in items):
            return self.check(self._raw(list(items)))
        try:
            array = np.asarray(items)
        except (TypeError, ValueError) as e:
            raise ValueError(self._expected(f"got {type(items).__name__}")) from e
        if array.dtype.kind not in "biuf":
            raise ValueError(self._expected(f"got {type(items).__name__} of {array.dtype}"))
        return self.check(array)

    def _pixels(self, X: np.ndarray) -> np.ndarray:
        """Whole numbers for an image model are raw pixel values (a pool's X is float in
        [0, 1]): scaled as the pool's were, or refused when that scale is unknown."""
        if self.kind != "image":
            return X
        if self.image_scale is None:
            raise ValueError(f"got an integer array ({X.dtype}) of raw pixels, but this model's "
                             "pixel scale is unknown; pass floats in [0, 1] as the pool's X")
        from workbench.data.loaders import check_depth

        check_depth(f"an integer array ({X.dtype})", X.dtype, float(X.max()) if X.size else 0.0,
                    self.image_scale)
        return X.astype(np.float32) / self.image_scale

    def check(self, X) -> np.ndarray:
        X = np.asarray(X)
        if X.dtype.kind not in "biuf":
            raise ValueError(self._expected(f"got an array of {X.dtype}"))
        if tuple(X.shape[1:]) != self.shape:
            raise ValueError(self._expected(f"got an array of shape {X.shape}"))
        X = X.astype(np.float32, copy=False)
        finite = np.isfinite(X).reshape(len(X), -1).all(axis=1) if len(X) else np.ones(0, bool)
        if not finite.all():
            raise ValueError(f"item {int(np.flatnonzero(~finite)[0])} has NaN or infinite features; "
                             "expected finite numbers")
        return X

    def _expected(self, got: str) -> str:
        shape = ", ".join(["N", *map(str, self.shape)])
        raw = {"image": "image file paths", "text": "texts", "table": "a DataFrame with the "
               f"columns {self.feature_names}", "vector": None}[self.kind]
        also = f", or {raw}" if raw else ""
        return f"expected a Pool, an array of shape ({shape}){also}; {got}"

    def _raw(self, items: list) -> np.ndarray:
        if self.kind == "image":
            from workbench.data.loaders import read_scaled

            if self.image_scale is None:
                raise ValueError("this model's pool was not read from image files (its pixel "
                                 "scale is unknown); pass an array of shape "
                                 f"(N, {', '.join(map(str, self.shape))}) in [0, 1]")
            X = read_scaled([str(p) for p in items], self.image_scale)
            if X.ndim == 4 and len(self.shape) == 2 and X.shape[-1] == 1:
                X = X[..., 0]
            return X
        if self.kind == "text":
            if self.text is None:
                raise ValueError("this model's text features did not come from the built-in "
                                 "vectoriser (sentence embeddings or your own embeddings=), so "
                                 "texts cannot be encoded the same way; pass the features, an "
                                 f"array of shape (N, {', '.join(map(str, self.shape))})")
            return self.text.transform([str(t) for t in items])
        raise ValueError(self._expected(f"got {len(items)} strings"))

    def _table(self, df: pd.DataFrame) -> np.ndarray:
        if self.kind == "text" and "text" in df.columns:
            return self._raw(df["text"].astype(str).tolist())
        if self.kind == "image" and "path" in df.columns:
            return self._raw(df["path"].tolist())
        if self.kind != "table" or self.feature_names is None:
            raise ValueError(self._expected("got a DataFrame"))
        missing = [c for c in self.feature_names if c not in df.columns]
        if missing:
            raise ValueError(f"the rows lack the feature columns {missing}; this model reads "
                             f"{self.feature_names}")
        return df[self.feature_names].to_numpy(dtype=np.float64)


class Model:
    """A trained model: `predict_proba(items)` -> (N, len(classes)) float32, columns in
    `classes` order (a class the learner never saw gets 0); `predict(items)` -> classes (a
    LabelSet per item for a multi-label model).

    learner: the fitted estimator (what `fit` returned in the session's round).
    encoder: the pool representation's encoder when the learner reads the representation.
    info: what it was trained on (round, n_labels, labels_hash, ...).
    task: "single" (one class per item) or "multi_label" (any subset: each column of
        `predict_proba` is that class's own probability, and `predict` gives a LabelSet per
        item, the classes whose probability reaches the learner's `threshold`); by default
        "multi_label" for a `MultiLabelHead`, else "single".
    """

    def __init__(self, learner, classes: Sequence, signature: InputSignature, *, encoder=None,
                 info: dict | None = None, task: str | None = None):
        self.learner = learner
        self.classes = list(classes)
        self.signature = signature
        self.encoder = encoder
        self.info = dict(info or {})
        self.task = task or (MULTI_LABEL if type(learner).__name__ == "MultiLabelHead" else SINGLE)
        self._columns = class_columns(learner.classes_, self.classes)

    def __repr__(self) -> str:
        what = f"{type(self.learner).__name__}" + (f" on {self.encoder.name} features"
                                                     if self.encoder is not None else "")
        return f"Model({what}, {len(self.classes)} classes, {self.signature.describe()})"

    def learner_inputs(self, items) -> np.ndarray:
        """What the learner reads for `items`: their representation, or their features."""
        if self.reads_texts:
            return self.encoder.transform(self._texts(items))
        return self._inputs(self.signature.features(items))

    @property
    def reads_texts(self) -> bool:
        """Whether the encoder reads the items' texts (a pretrained text model), not features."""
        return self.signature.kind == "text" and getattr(self.encoder, "reads", None) in ("texts", "items")

    def _texts(self, items) -> list[str]:
        if isinstance(items, Pool) and "text" in items.items:
            return items.items["text"].astype(str).tolist()
        if isinstance(items, pd.DataFrame) and "text" in items.columns:
            return items["text"].astype(str).tolist()
        if isinstance(items, str):
            return [items]
        if isinstance(items, (list, tuple, pd.Series, np.ndarray)) and all(isinstance(t, str) for t in items):
            return [str(t) for t in items]
        raise ValueError(f"this model reads texts through {self.encoder.describe()}; pass texts, a "
                         f"DataFrame with a 'text' column or a text Pool, got {type(items).__name__}")

    def _inputs(self, X: np.ndarray) -> np.ndarray:
        if self.encoder is not None:
            return self.encoder.transform(X)
        return features_for(self.learner, X)

    def predict_proba(self, items) -> np.ndarray:
        X = self._texts(items) if self.reads_texts else self.signature.features(items)
        if not len(X):  # no items (an empty folder, a filter that kept nothing): no rows
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        inputs = self.encoder.transform(X) if self.reads_texts else self._inputs(X)
        return self.align(self.learner.predict_proba(inputs))

    def predict(self, items) -> np.ndarray | list[LabelSet]:
        """The most probable class per item; for a multi-label model, a LabelSet per item
        (classes in `classes` order, empty when none reaches the threshold)."""
        proba = self.predict_proba(items)
        if self.task == MULTI_LABEL:
            return [LabelSet(self.classes[j] for j in np.flatnonzero(row))
                    for row in proba >= self.threshold]
        return np.asarray(self.classes)[proba.argmax(axis=1)]

    @property
    def threshold(self) -> float:
        """A multi-label model's probability from which a class applies (the learner's)."""
        return float(getattr(self.learner, "threshold", 0.5))

    def align(self, raw: np.ndarray) -> np.ndarray:
        """The learner's probabilities (columns: its classes_) in this model's class order."""
        return aligned(raw, self._columns, len(self.classes))


def class_columns(learner_classes, classes) -> np.ndarray:
    """For each of a learner's classes_, its column among `classes` (compared as text)."""
    names = [str(c) for c in classes]
    index = {name: j for j, name in enumerate(names)}
    unknown = [c for c in learner_classes if str(c) not in index]
    if unknown:
        raise ValueError(f"the learner knows classes {unknown} that are not among {names}")
    return np.array([index[str(c)] for c in learner_classes], dtype=np.int64)


def aligned(raw: np.ndarray, columns: np.ndarray, n_classes: int, dtype=np.float32) -> np.ndarray:
    """Probabilities with one column per class, even when a learner saw only some of them
    (a class it never saw gets 0)."""
    proba = np.zeros((len(raw), n_classes), dtype=dtype)
    proba[:, columns] = raw
    return proba
