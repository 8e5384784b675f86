"""A boxes session end to end with the real detector: labels checked against the image and
stored as the person gave them, a round scored by mAP@0.5 on held-out images, the queue ranked
by the detector's doubt with its boxes suggested, suspects for a wrong class and a missed
object, and the parts not built for boxes refused by name."""

from __future__ import annotations

import json

import numpy as np
import pytest

from workbench import Pool, Session
from workbench.data.box_digits import box_digits
from workbench.data.box_scores import iou
from workbench.data.boxes import Box, BoxList
from workbench.loop.cleaning_boxes import describe


@pytest.fixture(scope="module")
def data():
    return box_digits(100, n_test=30, seed=3)


def labeled_session(pool, test, store, n: int, **options) -> Session:
    session = Session(pool, store, test=test, watch=False, **options)
    for item_id in pool.item_ids[:n]:
        session.label(item_id, pool.true_label(item_id))
    return session


def test_a_box_label_is_stored_exactly_and_bad_ones_store_nothing(data, tmp_path):
    pool, test = data
    session = Session(pool, tmp_path / "store", test=test, watch=False)
    first = pool.item_ids[0]
    session.label(first, [(10, 12, 20.5, 30, "3"), {"x": 50, "y": 60, "w": 10, "h": 10, "label": "7"}])
    assert session.label_of(first) == BoxList([Box(10, 12, 20.5, 30, "3"), Box(50, 60, 10, 10, "7")])
    stored = session.store.current_labels().loc[first, "label"]
    assert json.loads(stored) == {"v": 1, "boxes": [[10, 12, 20.5, 30, "3"], [50, 60, 10, 10, "7"]]}
    # what the widget's blame line says (a review shows it): words, not the stored JSON
    assert session.blame_text(first).startswith(f"labeled 2 boxes: 3, 7 by {session.annotator}, ")
    n_events = len(session.store.events())
    for bad, words in [([(120, 0, 20, 20, "3")], "reaches outside the image (128x128 pixels)"),
                       ([(0, 0, 0, 5, "3")], "size 0x5"), ([(0, 0, 5, 5, "cat")], "not among the classes"),
                       ("3", "not the JSON of a list of boxes"), ([(0, 0, 5, 5)], "(x, y, w, h, label)")]:
        with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
            session.label(pool.item_ids[1], bad)
    assert len(session.store.events()) == n_events and session.label_of(pool.item_ids[1]) is None
    session.label(pool.item_ids[1], [])  # an image with no object is a label too
    assert session.label_of(pool.item_ids[1]) == BoxList()
    assert session.blame_text(pool.item_ids[1]).startswith("labeled no boxes by ")
    session.close()
    reopened = Session(pool, tmp_path / "store", test=test, watch=False)
    assert reopened.label_of(first) == BoxList([Box(10, 12, 20.5, 30, "3"), Box(50, 60, 10, 10, "7")])
    reopened.close()
    # a store of one task refuses to be opened as another, and a single-label one as boxes
    single = Pool.from_arrays(pool.X, y=[str(len(b)) for b in pool.y], item_ids=pool.item_ids)
    with pytest.raises(ValueError, match="boxes"):
        Session(single, tmp_path / "store", watch=False)
    Session(single, tmp_path / "single", watch=False).close()
    with pytest.raises(ValueError, match="single"):
        Session(pool, tmp_path / "single", watch=False)


def test_a_round_is_scored_queues_by_doubt_and_suggests_boxes(data, tmp_path):
    pool, test = data
    session = labeled_session(pool, test, tmp_path / "store", 40)
    session.retrain()
    row = session.history.iloc[-1]
    assert row["n_labels"] == 40 and 0.0 <= row["box_map50"] <= 1.0
    assert row["eval_on"] == "held-out test images (30)"
    headline = session.model_state()["accuracy_headline"]  # what the widget says of the round
    assert headline.startswith(f"mAP@0.5 {row['box_map50']:.2f} (precision ") and "accuracy" not in headline
    served = session.peek(5)
    assert all(q.item_id not in session.labels for q in served)
    assert served[0].strategy == "box_entropy" and "box entropy" in served[0].reason
    scores = [q.score for q in served]
    assert scores == sorted(scores, reverse=True)  # most doubt first
    for q in served:
        assert isinstance(q.suggestion, BoxList) and 0.0 <= q.confidence <= 1.0
        assert all(0 <= b.x and b.x + b.w <= 128 and 0 <= b.y and b.y + b.h <= 128 for b in q.suggestion)
    item = session.next()
    session.label(item, item.suggestion)  # accepting the model's boxes stores them
    assert session.label_of(item.item_id) == item.suggestion
    session.close()


def test_suspects_rank_wrong_classes_and_missed_objects_high(data, tmp_path):
    """Three boxes given the wrong class and three objects left without a box, among 100
    images: held-out crop classifiers and detectors put each wrong class in the top 15% of the
    table and the six slips in the top 15% on average (random order: half), each in its row."""
    pool, test = data
    session = labeled_session(pool, test, tmp_path / "store", 100)
    several = [i for i in pool.item_ids[:100] if len(pool.true_label(i)) >= 2]
    wrong, missed = several[:3], several[3:6]
    for item_id in wrong:
        first, *rest = pool.true_label(item_id)
        session.label(item_id, [first._replace(label=str((int(first.label) + 3) % 10)), *rest])
    for item_id in missed:
        session.label(item_id, pool.true_label(item_id)[1:])  # the first object has no box
    table = session.suspects(folds=4)
    assert set(table["kind"]) == {"given", "left out"}
    assert table["suspicion"].is_monotonic_decreasing and table["suspicion"].between(0, 1).all()
    ranks = []
    for item_id in wrong:
        slip = session.label_of(item_id)
        slip = next(b for b in slip if b not in pool.true_label(item_id))
        row = table[(table["item_id"] == item_id) & (table["x"] == slip.x) & (table["y"] == slip.y)]
        assert list(row["given"]) == [slip.label]
        ranks.append(row.index[0])
        assert row.index[0] < 0.15 * len(table), (row, len(table))
        assert describe(row.iloc[0]).startswith(f"box {slip.describe()}: the held-out crop classifier says")
    for item_id in missed:
        absent = pool.true_label(item_id)[0]
        rows = table[(table["item_id"] == item_id) & (table["kind"] == "left out")]
        covering = [i for i, r in rows.iterrows()
                    if iou(absent, (r["x"], r["y"], r["w"], r["h"])) >= 0.5]
        assert covering, f"the object left out of {item_id} has no row"
        ranks.append(covering[0])
    assert np.mean(ranks) / len(table) < 0.15, (ranks, len(table))
    session.close()


def test_bad_learner_and_strategy_are_named(data, tmp_path):
    pool, test = data
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(ValueError, match="needs a learner that finds boxes"):
        Session(pool, tmp_path / "a", learner=LogisticRegression(), watch=False)
    with pytest.raises(ValueError, match="unknown strategy 'margin' for a 'boxes' pool"):
        Session(pool, tmp_path / "b", strategy="margin", watch=False)
    unnamed = Pool.from_arrays(pool.X[:3], task="boxes")  # no ground truth: no classes
    with pytest.raises(ValueError, match="a 'boxes' session needs at least one class"):
        Session(unnamed, tmp_path / "c", watch=False)
    Session(unnamed, tmp_path / "d", classes=["digit"], watch=False).close()  # one kind of object
