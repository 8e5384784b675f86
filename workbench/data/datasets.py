"""Datasets that ship with the workbench's dependencies, so nothing is downloaded."""

from __future__ import annotations

from workbench.data.box_digits import box_digits
from workbench.data.entity_texts import entities
from workbench.data.pool import Pool

__all__ = ["box_digits", "digits", "entities"]


def digits():
    """scikit-learn's 1,797 real 8x8 handwritten digits (classes 0-9) as an image Pool.

    Bundled inside scikit-learn, so it works offline and on Binder: the default dataset.
    """
    from sklearn.datasets import load_digits

    data = load_digits()
    ids = [f"digit-{i:04d}" for i in range(len(data.target))]
    return Pool.from_arrays(data.images, data.target, item_ids=ids, name="digits")
