"""Stand-in learners: a session's whole loop around a model whose output a test plants, so
the test checks what the loop does with it (what cleaning costs, what a batch proposes)
without training a real network."""

from __future__ import annotations

import numpy as np


class StandInDetector:
    """A boxes learner that learns nothing and finds, in each image, what `found` says:
    detections as (x, y, w, h, label, score). This one finds nothing."""

    threshold = 0.5

    def __init__(self, labels=None, random_state=0):
        self.labels, self.random_state = labels, random_state

    def get_params(self, deep=True):
        return {"labels": self.labels, "random_state": self.random_state}

    def set_params(self, **params):
        for k, v in params.items():
            setattr(self, k, v)
        return self

    def fit_boxes(self, images, box_lists):
        return self

    def found(self, image) -> list[tuple]:
        return []

    def predict_boxes(self, images, min_score=0.05):
        return [[d for d in self.found(image) if d[5] >= min_score] for image in images]

    def uncertainty(self, images):
        return np.zeros((len(images), 2))
