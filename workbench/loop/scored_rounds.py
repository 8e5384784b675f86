"""The history row of a round scored by something other than accuracy (a spans round's span
F1, a boxes round's mAP@0.5): the columns every round has, with the classes' own figures
(accuracy, macro-F1, ...) empty, and the task's scores beside them. One place, so that the
rows of every task stay the shape `Rounds.history` reads."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd


def scored_row(train_ids, eval_on: str, n_eval: int, started: float | None, labels_hash: str,
               **scores) -> dict:
    """A round's row: trained on `train_ids`, scored on `n_eval` items of `eval_on`, begun at
    `started` (time.perf_counter; None: trained elsewhere, a bundle's round 0), with the
    task's `scores` (span_f1=..., box_map50=...)."""
    duration = 0.0 if started is None else round(time.perf_counter() - started, 3)
    return {"n_labels": len(train_ids), "accuracy": np.nan, "eval_on": eval_on, "n_eval": n_eval,
            "loss": [], "train_accuracy": [], "duration_s": duration,
            "time": pd.Timestamp.now(tz="UTC").isoformat(), "labels_hash": labels_hash,
            "macro_f1": np.nan, "balanced_accuracy": np.nan, "recall": {},
            "micro_f1": np.nan, "hamming_loss": np.nan, **scores}
