"""Simulated labeling: run the active-learning loop with the ground truth as annotator.

This is how strategies are compared honestly: every run labels what a person labeling
in the widget would be shown (the session's cold start first, then `batch` items per
round chosen by the strategy), retrains, and scores the model on a held-out test split
that no strategy ever sees. `cold_start="random"` starts every strategy from the same
random seed labels instead, which isolates the strategy's own rounds.

A spans or boxes pool is simulated the same way and scored by its own figure (span F1, or
mAP@0.5 at IoU 0.5) with its precision and recall, as the session's history scores it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable

import numpy as np
import pandas as pd

from workbench.data.pool import Pool
from workbench.data.tasks import MULTI_LABEL, PARTS
from workbench.loop.rounds import SCORED_BY
from workbench.loop.session import Session

COLUMNS = ["n_labels", "accuracy", "macro_f1", "balanced_accuracy", "strategy", "seed", "recall"]
MULTI_LABEL_COLUMNS = [*COLUMNS, "micro_f1", "hamming_loss"]  # a multi-label pool's curve adds these


def _columns(task: str) -> list[str]:
    if task in SCORED_BY:  # spans, boxes: their figure, its precision and recall
        return ["n_labels", *SCORED_BY[task][1:], "strategy", "seed"]
    return MULTI_LABEL_COLUMNS if task == MULTI_LABEL else COLUMNS


def simulate(pool: Pool, *, strategy=None, learner=None, budget: int = 200, batch: int = 10,
             initial: int = 20, seed: int = 0, test: Pool | None = None, test_size: float = 0.3,
             store=None, cold_start: str = "queue",
             stop_at: float | None = None, extra_rounds: int = 0,
             progress: Callable[[int, float], None] | None = None,
             representation_cache=None) -> pd.DataFrame:
    """Labels up to `budget` items and returns rows `n_labels, accuracy, macro_f1,
    balanced_accuracy, strategy, seed, recall` (recall: {class: recall on the test split}),
    and for a multi-label pool `micro_f1, hamming_loss` too (its accuracy counts an item
    right when its whole set of classes is). A spans pool's rows are `n_labels, span_f1,
    span_precision, span_recall, strategy, seed`; a boxes pool's `n_labels, box_map50,
    box_precision, box_recall, strategy, seed`. `strategy` defaults to the session's
    (diverse_margin; diverse_uncertainty, mean_token_entropy or box_entropy by task).

    The test split is `test` (a Pool with ground truth) when given, else the pool's own
    (X_test, y_test) when it has one, else a `test_size` split fixed by `seed` (stratified by
    class for a single-label pool), so every strategy with the same seed sees the same
    split. The first model is trained on `initial` labels: with `cold_start="queue"` the
    items the session's cold start serves (a spread over the pool's representation; a random
    sample for the random strategy), with `cold_start="random"` the same random items for
    every strategy.

    `stop_at` ends the run `extra_rounds` rounds after accuracy (span F1, mAP@0.5) first reaches it (for
    benchmarks that only need the labels-to-target figure; curves then end early).
    `representation_cache`: where the session looks for (and keeps) the pool's representation,
    as `Session(representation_cache=)`; default the user's cache folder.
    """
    if not pool.has_ground_truth:
        raise ValueError(f"simulation needs ground truth labels, and pool {pool.name!r} has none; "
                         "build the pool with them: Pool.from_file(path, label_column=NAME) or "
                         "Pool.from_dataframe(df, label_column=NAME) for the column that holds "
                         "them, y= for Pool.from_texts, Pool.from_arrays or Pool(...), or a "
                         "folder with one subfolder per class for Pool.from_folder")
    if test is not None:
        train = pool
    elif pool.X_test is not None:
        train, test = pool, (pool.X_test, pool.y_test)
    else:
        train, test = pool.train_test_split(test_size, seed=seed)
        if pool.task not in PARTS:  # a tagger or detector is scored on a Pool
            test = (test.X, test.y)
    for name, value in (("budget", budget), ("batch", batch), ("initial", initial)):
        if int(value) < 1:
            raise ValueError(f"{name} must be a positive number of labels, got {value}")
    if budget > len(train):
        raise ValueError(f"budget {budget} is larger than the pool available for labeling "
                         f"({len(train)} items after holding out the test split)")
    if initial > budget:
        raise ValueError(f"initial {initial} is larger than the budget {budget}")
    if cold_start not in ("queue", "random"):
        raise ValueError(f"cold_start must be 'queue' or 'random', got {cold_start!r}")

    tmp = None
    if store is None:
        tmp = tempfile.TemporaryDirectory(prefix="workbench-sim-")
        store = f"{tmp.name}/labels"
    kwargs = {} if learner is None else {"learner": learner}
    if representation_cache is not None:
        kwargs["representation_cache"] = representation_cache
    session = Session(train, store, strategy=strategy, test=test, batch_size=batch, seed=seed,
                      annotator="simulator", resume=False, watch=False, **kwargs)
    try:
        if cold_start == "random":
            seed_ids = train.item_ids[np.random.default_rng(seed).permutation(len(train))[:initial]]
        else:  # what the widget would show first, once the representation is learned
            session.inputs.representation()
            seed_ids = [item.item_id for item in session.peek(initial)]
        for item_id in seed_ids:
            session.label(item_id, train.true_label(item_id), source="simulated")
        rows = []
        reached_at = None
        columns = _columns(pool.task)
        figure = SCORED_BY[pool.task][1] if pool.task in SCORED_BY else "accuracy"
        while True:
            session.retrain()
            last = session.history.iloc[-1]
            accuracy = float(last[figure])
            n = len(session.labels)
            row = {**last.to_dict(), "n_labels": n, "strategy": session.strategy_name, "seed": seed}
            rows.append({c: dict(row[c]) if c == "recall" else row[c] for c in columns})
            if progress:
                progress(n, accuracy)
            if stop_at is not None and reached_at is None and accuracy >= stop_at:
                reached_at = len(rows)
            if n >= budget or (reached_at is not None and len(rows) - reached_at >= extra_rounds):
                break
            for item in session.peek(min(batch, budget - n)):
                session.label(item, train.true_label(item.item_id), source="simulated")
    finally:
        session.close()
        if tmp is not None:
            tmp.cleanup()
    figures = [c for c in columns if c not in ("n_labels", "strategy", "seed", "recall")]
    return pd.DataFrame(rows, columns=columns).astype(dict.fromkeys(figures, float))


def labels_to_reach(curve: pd.DataFrame, target: float, metric: str = "accuracy") -> float:
    """The first number of labels at which `metric` reaches `target` (NaN if never)."""
    hit = curve.loc[curve[metric] >= target, "n_labels"]
    return float(hit.iloc[0]) if len(hit) else float("nan")
