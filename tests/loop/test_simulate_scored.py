"""simulate() on spans and boxes pools: the same loop a person drives (the session's queue,
its rounds, the test split no strategy sees), scored by span F1 or mAP@0.5 with precision and
recall, reproducible for a seed, and `stop_at` read on the task's own figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench import Session, simulate
from workbench.data.box_digits import box_digits
from workbench.data.entity_texts import entities
from workbench.loop.simulate import labels_to_reach


@pytest.fixture(scope="module")
def texts():
    return entities(120, n_test=40, seed=2)


def by_hand(pool, test, store, *, budget: int, batch: int, initial: int, seed: int) -> pd.DataFrame:
    """What a person labeling in the widget would get: the cold start, then the queue."""
    session = Session(pool, store, test=test, batch_size=batch, seed=seed, watch=False)
    for item in session.peek(initial):
        session.label(item, pool.true_label(item.item_id))
    while True:
        session.retrain()
        if len(session.labels) >= budget:
            break
        for item in session.peek(min(batch, budget - len(session.labels))):
            session.label(item, pool.true_label(item.item_id))
    history = session.history[["n_labels", "span_f1", "span_precision", "span_recall"]]
    session.close()
    return history.astype({"n_labels": int})


def test_a_spans_simulation_is_the_loop_a_person_drives(texts, tmp_path):
    pool, test = texts
    curve = simulate(pool, test=test, budget=50, batch=15, initial=20, seed=1)
    assert list(curve.columns) == ["n_labels", "span_f1", "span_precision", "span_recall", "strategy", "seed"]
    assert curve["n_labels"].tolist() == [20, 35, 50]
    assert set(curve["strategy"]) == {"mean_token_entropy"}
    expected = by_hand(pool, test, tmp_path / "hand", budget=50, batch=15, initial=20, seed=1)
    pd.testing.assert_frame_equal(curve[expected.columns].reset_index(drop=True),
                                  expected.reset_index(drop=True), check_dtype=False)
    assert curve["span_f1"].iloc[-1] > curve["span_f1"].iloc[0]  # labels help


def test_a_spans_simulation_without_a_test_pool_holds_out_texts_it_never_labels(texts, tmp_path):
    pool, _ = texts
    curve = simulate(pool, budget=40, batch=20, initial=20, seed=0, strategy="random",
                     store=tmp_path / "store", stop_at=0.0, extra_rounds=0)
    assert curve["n_labels"].tolist() == [20]  # stop_at 0 is reached by the first round
    assert labels_to_reach(curve, 0.0, "span_f1") == 20
    train, held = pool.train_test_split(0.3, seed=0)
    from workbench.store import LabelStore

    labeled = set(LabelStore.open(tmp_path / "store").current_labels().index)
    assert labeled and labeled <= set(train.item_ids) and not labeled & set(held.item_ids)


@pytest.mark.slow
def test_a_boxes_simulation_scores_map_on_the_test_images():
    pool, test = box_digits(80, n_test=20, seed=4)
    curve = simulate(pool, test=test, budget=30, batch=15, initial=15, seed=0)
    assert list(curve.columns) == ["n_labels", "box_map50", "box_precision", "box_recall", "strategy", "seed"]
    assert curve["n_labels"].tolist() == [15, 30]
    assert set(curve["strategy"]) == {"box_entropy"}
    assert np.all((curve[["box_map50", "box_precision", "box_recall"]] >= 0).to_numpy())
    assert np.all((curve[["box_map50", "box_precision", "box_recall"]] <= 1).to_numpy())
    with pytest.raises(ValueError, match="budget 200 is larger than the pool"):
        simulate(pool, test=test, budget=200)
