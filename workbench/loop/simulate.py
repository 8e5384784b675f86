"""Simulated labeling: run the active-learning loop with the ground truth as annotator.

This is how strategies are compared honestly: every run labels what a person labeling
in the widget would be shown (the session's cold start first, then `batch` items per
round chosen by the strategy), retrains, and scores the model on a held-out test split
that no strategy ever sees. `cold_start="random"` starts every strategy from the same
random seed labels instead, which isolates the strategy's own rounds.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable

import numpy as np
import pandas as pd

from workbench.data.pool import Pool
from workbench.data.tasks import not_yet
from workbench.loop.session import Session

COLUMNS = ["n_labels", "accuracy", "macro_f1", "balanced_accuracy", "strategy", "seed", "recall"]
MULTI_LABEL_COLUMNS = [*COLUMNS, "micro_f1", "hamming_loss"]  # a multi-label pool's curve adds these


def simulate(pool: Pool, *, strategy=None, learner=None, budget: int = 200, batch: int = 10,
             initial: int = 20, seed: int = 0, test_size: float = 0.3, store=None, cold_start: str = "queue",
             stop_at: float | None = None, extra_rounds: int = 0,
             progress: Callable[[int, float], None] | None = None,
             representation_cache=None) -> pd.DataFrame:
    """Labels up to `budget` items and returns rows `n_labels, accuracy, macro_f1,
    balanced_accuracy, strategy, seed, recall` (recall: {class: recall on the test split}),
    and for a multi-label pool `micro_f1, hamming_loss` too (its accuracy counts an item
    right when its whole set of classes is). `strategy` defaults to the session's
    (diverse_margin, or diverse_uncertainty for a multi-label pool).

    The test split is the pool's own (X_test, y_test) when it has one, else a stratified
    `test_size` split fixed by `seed`, so every strategy with the same seed sees the same
    split. The first model is trained on `initial` labels: with `cold_start="queue"` the
    items the session's cold start serves (a spread over the pool's representation; a random
    sample for the random strategy), with `cold_start="random"` the same random items for
    every strategy.

    `stop_at` ends the run `extra_rounds` rounds after accuracy first reaches it (for
    benchmarks that only need the labels-to-target figure; curves then end early).
    `representation_cache`: where the session looks for (and keeps) the pool's representation,
    as `Session(representation_cache=)`; default the user's cache folder.
    """
    not_yet(pool.task, "simulate()")
    if not pool.has_ground_truth:
        raise ValueError(f"simulation needs ground truth labels, and pool {pool.name!r} has none; "
                         "build the pool with them: Pool.from_file(path, label_column=NAME) or "
                         "Pool.from_dataframe(df, label_column=NAME) for the column that holds "
                         "them, y= for Pool.from_texts, Pool.from_arrays or Pool(...), or a "
                         "folder with one subfolder per class for Pool.from_folder")
    if pool.X_test is not None:
        train, test = pool, (pool.X_test, pool.y_test)
    else:
        train, held_out = pool.train_test_split(test_size, seed=seed)
        test = (held_out.X, held_out.y)
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
        while True:
            session.retrain()
            last = session.history.iloc[-1]
            accuracy = float(last["accuracy"])
            n = len(session.labels)
            rows.append({"n_labels": n, "accuracy": accuracy, "macro_f1": float(last["macro_f1"]),
                         "balanced_accuracy": float(last["balanced_accuracy"]),
                         "strategy": session.strategy_name, "seed": seed,
                         "recall": dict(last["recall"]), "micro_f1": float(last["micro_f1"]),
                         "hamming_loss": float(last["hamming_loss"])})
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
    return pd.DataFrame(rows, columns=MULTI_LABEL_COLUMNS if pool.task == "multi_label" else COLUMNS)


def labels_to_reach(curve: pd.DataFrame, target: float, metric: str = "accuracy") -> float:
    """The first number of labels at which `metric` reaches `target` (NaN if never)."""
    hit = curve.loc[curve[metric] >= target, "n_labels"]
    return float(hit.iloc[0]) if len(hit) else float("nan")
