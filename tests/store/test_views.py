"""Views are folds over the log: checked against a brute-force replay of random logs."""

from __future__ import annotations

import random

import pandas as pd

from workbench.store import LabelStore, views


def replay(log: pd.DataFrame, frontier: dict | None = None) -> dict:
    """What each item's state is, by applying events one by one in log order (the obvious
    way, slowly): undo restores whatever was on top before the retracted event."""
    log = log.sort_values(views.ORDER)
    if frontier is not None:
        log = log[[seq < frontier.get(w, 0) for w, seq in zip(log["writer"], log["seq"])]]
    undone = set(log.loc[log["action"] == "undo", "target"])
    state = {}
    for row in log.itertuples():
        if row.action in views.EFFECTIVE and row.event_id not in undone:
            state[row.item_id] = (row.action == "skip", None if row.action == "skip" else row.label)
    return state


def as_state(view: pd.DataFrame) -> dict:
    return {i: (a == "skip", None if a == "skip" else lab)
            for i, a, lab in zip(view.index, view["action"], view["label"])}


def random_log(tmp_path, seed: int, steps: int = 120) -> LabelStore:
    rng = random.Random(seed)
    stores = [LabelStore.open(tmp_path, annotator=a) for a in ("one", "two")]
    written = []
    for _ in range(steps):
        store, item = rng.choice(stores), f"i{rng.randrange(12)}"
        roll = rng.random()
        if roll < 0.2 and written:
            store.undo(written.pop(rng.randrange(len(written))))
        elif roll < 0.35:
            written.append(store.append(item, action="skip").event_id)
        else:
            written.append(store.append(item, rng.choice("xyz")).event_id)
    return LabelStore.open(tmp_path)


def test_latest_and_the_incremental_fold_equal_a_replay(tmp_path):
    for seed in range(6):
        store = random_log(tmp_path / str(seed), seed)
        log = store.events()
        assert as_state(views.latest(log)) == replay(log)
        assert as_state(store._view().frame()) == replay(log)


def test_as_of_a_frontier_equals_a_replay_of_the_prefix(tmp_path):
    store = random_log(tmp_path, 7)
    log = store.events()
    rng = random.Random(0)
    writers = sorted(set(log["writer"]))
    for _ in range(20):
        frontier = {w: rng.randrange(0, int((log["writer"] == w).sum()) + 1) for w in writers}
        assert as_state(views.latest(views.as_of(log, frontier))) == replay(log, frontier)
