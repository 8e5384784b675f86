"""A spans or boxes session started from a bundle of its task (`Session(start_from=...)`):
round 0 is the bundle's tagger or detector, pre-annotating and ranking from the first item,
and later rounds keep what it knew (its sure items as labels; a detector fine-tuned from its
network) instead of starting over from ten labels."""

from __future__ import annotations

import numpy as np
import pytest

from workbench import Pool, Session, load_model
from workbench.data.box_digits import box_digits
from workbench.data.box_scores import box_scores
from workbench.data.entity_texts import entities
from workbench.data.spans import span_scores
from workbench.learn.box_detector import BoxDetector
from workbench.loop import start_parts


def _teacher(pool, test, root, n):
    teacher = Session(pool, root / "teacher-store", test=test, watch=False, seed=0)
    teacher.label_many({q.item_id: pool.true_label(q.item_id) for q in teacher.peek(n)})
    teacher.retrain()
    path = teacher.export(root / "teacher")
    teacher.close()
    return path


@pytest.fixture(scope="module")
def spans(tmp_path_factory):
    a, test = entities(300, n_test=120, seed=0)
    b, _ = entities(300, n_test=120, seed=1)
    return a, b, test, _teacher(a, test, tmp_path_factory.mktemp("spans-start"), 120)


@pytest.fixture(scope="module")
def boxes(tmp_path_factory):
    a, test = box_digits(240, n_test=60, seed=0)
    b, _ = box_digits(240, n_test=60, seed=1)
    return a, b, test, _teacher(a, test, tmp_path_factory.mktemp("boxes-start"), 150)


def _truth(pool):
    return [list(pool.true_label(i)) for i in pool.item_ids]


def test_a_spans_round_0_is_the_bundle_it_pre_annotates_and_ranks_at_once(spans, tmp_path):
    _, b, test, bundle = spans
    model = load_model(bundle)
    session = Session(b, tmp_path / "s", test=test, watch=False, start_from=bundle)
    first = session.next()
    assert "the model you started from" in first.reason and first.strategy == "mean_token_entropy"
    text = b.items["text"].iloc[b.position(first.item_id)]
    assert list(first.suggestion) == list(model.predict_spans([text])[0])
    row = session.history.iloc[0]
    expected = span_scores(_truth(test), model.predict_spans(list(test.items["text"])), session.class_names)
    assert row["round"] == 0 and row["n_labels"] == 0 and row["span_f1"] == pytest.approx(expected["f1"])
    assert row["span_f1"] > 0.7 and session.model_state()["started_from"]
    session.close()


def test_a_spans_session_keeps_what_the_bundle_knew_after_ten_labels(spans, tmp_path):
    _, b, test, bundle = spans
    f1 = {}
    for start in (bundle, None):
        session = Session(b, tmp_path / f"s-{start is None}", test=test, watch=False, seed=0,
                          start_from=start)
        session.label_many({q.item_id: b.true_label(q.item_id) for q in session.peek(10)})
        session.retrain()
        f1[start is None] = session.history.iloc[-1]["span_f1"]
        assert session.history.iloc[-1]["n_labels"] == 10  # the bundle's texts are no one's labels
        session.close()
    assert f1[False] > f1[True] + 0.1, f1  # measured 0.85 against 0.65


def test_a_boxes_round_0_is_the_bundle_and_rounds_fine_tune_it(boxes, tmp_path):
    _, b, test, bundle = boxes
    model = load_model(bundle)
    session = Session(b, tmp_path / "s", test=test, watch=False, seed=0, start_from=bundle)
    first = session.next()
    assert "the model you started from" in first.reason and first.strategy == "box_entropy"
    position = b.position(first.item_id)
    assert list(first.suggestion) == list(model.predict_boxes(b.X[[position]])[0])
    expected = box_scores(_truth(test), model.detector.predict_boxes(np.asarray(test.X)), session.class_names)
    row = session.history.iloc[0]
    assert row["round"] == 0 and row["box_map50"] == pytest.approx(expected["map50"])
    assert row["box_map50"] > 0.6
    session.label_many({q.item_id: b.true_label(q.item_id) for q in session.peek(10)})
    session.retrain()
    started = session.history.iloc[-1]["box_map50"]
    session.close()
    scratch = Session(b, tmp_path / "scratch", test=test, watch=False, seed=0)
    scratch.label_many({q.item_id: b.true_label(q.item_id) for q in scratch.peek(10)})
    scratch.retrain()
    assert started > scratch.history.iloc[-1]["box_map50"] + 0.25  # measured 0.70 against 0.17
    scratch.close()


def test_the_sure_items_leave_out_labels_and_audit_and_are_capped(spans, boxes, tmp_path, monkeypatch):
    for _, b, test, bundle in (spans, boxes):
        session = Session(b, tmp_path / f"s-{b.task}", test=test, watch=False, start_from=bundle)
        prior = session.rounds.prior
        every, _ = prior._all_sure()
        unsure = np.asarray(prior.scores()[every])[:, 0]
        limit = 0.1 if b.task == "spans" else 1 - 2 * start_parts.BOX_MARGIN
        assert 10 < len(every) < len(b) and (unsure <= limit + 1e-9).all()
        some = list(b.item_ids[every[:5]])
        positions, parts = prior.sure(set(some[:3]) | {some[3]})
        assert not set(b.item_ids[positions]) & set(some[:4]) and len(parts) == len(positions)
        monkeypatch.setattr(start_parts, "MAX_PRIOR_ITEMS", 7)
        positions, parts = prior.sure(set())
        assert len(positions) == 7 == len(parts) and set(positions) <= set(every)
        if b.task == "boxes":  # images count by their pixels too: 3 of 128 x 128 here
            monkeypatch.setattr(start_parts, "MAX_PRIOR_PIXELS", 3 * 128 * 128 + 5)
            assert len(prior.sure(set())[0]) == 3
        monkeypatch.undo()
        session.close()


def test_a_bundle_of_other_labels_kind_or_shape_is_refused_naming_both(spans, boxes, tmp_path):
    a, _, _, span_bundle = spans
    _, pics, _, box_bundle = boxes
    other = entities(20, n_test=5, seed=3)[0]
    renamed = Pool.from_texts(list(other.items["text"]), y=[[(s, e, "NAME" if lab == "PER" else lab)
                                                              for s, e, lab in spans_] for spans_ in
                                                             _truth(other)], task="spans")
    with pytest.raises(ValueError, match=r"span labels .*'NAME'.* differ from the model's"):
        Session(renamed, tmp_path / "a", start_from=span_bundle, watch=False)
    with pytest.raises(ValueError, match="is a 'spans' pool and the model to start from .* a 'boxes' model"):
        Session(a, tmp_path / "b", start_from=box_bundle, watch=False)
    small = Pool.from_arrays(np.asarray(pics.X)[:20, :64, :64], [[] for _ in range(20)], task="boxes",
                             classes=list(pics.classes))
    with pytest.raises(ValueError, match=r"images of shape \(64, 64\); the model to start from reads"):
        Session(small, tmp_path / "c", start_from=box_bundle, watch=False)


def test_a_reopened_session_keeps_round_0_and_learns_from_the_bundle_again(spans, tmp_path):
    _, b, test, bundle = spans
    session = Session(b, tmp_path / "s", test=test, watch=False, seed=0, start_from=bundle)
    session.label_many({q.item_id: b.true_label(q.item_id) for q in session.peek(10)})
    session.retrain()
    before = session.history[["round", "n_labels", "span_f1"]].to_dict("records")
    session.close()
    again = Session(b, tmp_path / "s", test=test, watch=False, seed=0, start_from=bundle)
    assert again.history[["round", "n_labels", "span_f1"]].to_dict("records") == before
    again.retrain()
    assert again.history.iloc[-1]["span_f1"] == pytest.approx(before[-1]["span_f1"])  # seeded, same prior
    again.close()
    with pytest.warns(UserWarning, match="starting from the bundle"):
        Session(b, tmp_path / "s", test=test, watch=False, seed=0).close()


def test_fine_tuning_starts_from_the_given_network_and_refuses_another_kind(boxes):
    a, _, _, bundle = boxes
    teacher = load_model(bundle).detector
    images, truth = np.asarray(a.X[:4]), _truth(a)[:4]
    copy = BoxDetector(labels=teacher.labels_, steps=0).fit_boxes(images, truth, start_from=teacher)
    probe = np.asarray(a.X[100:110])
    assert copy.predict_boxes(probe) == teacher.predict_boxes(probe)  # no step taken: its weights
    with pytest.raises(ValueError, match="same labels, channels, width and image scale"):
        BoxDetector(labels=teacher.labels_[::-1], steps=2).fit_boxes(images, truth, start_from=teacher)
    with pytest.raises(ValueError, match="not fitted"):
        BoxDetector(labels=teacher.labels_, steps=2).fit_boxes(images, truth, start_from=BoxDetector())


def test_a_detector_given_as_learner_is_fine_tuned_in_the_bundles_class_order(boxes, tmp_path):
    _, b, test, bundle = boxes
    with pytest.raises(ValueError, match=r"needs its width: width=16 given, width=32 in the model"):
        Session(b, tmp_path / "refused", test=test, watch=False, start_from=bundle,
                learner=BoxDetector(width=16))
    assert not (tmp_path / "refused").exists()  # refused before a store was made
    order = list(load_model(bundle).detector.labels_)
    session = Session(b, tmp_path / "s", test=test, watch=False, seed=0, start_from=bundle,
                      learner=BoxDetector(labels=order[::-1], steps=60))
    session.label_many({q.item_id: b.true_label(q.item_id) for q in session.peek(5)})
    session.retrain()
    assert session.rounds.model.learner.labels_ == order and session.history.iloc[-1]["box_map50"] > 0.5
    session.close()


def test_a_reopened_store_retrains_the_same_round_though_audit_labels_came_after(spans, tmp_path):
    _, b, _, bundle = spans  # no test split: an audit sample is drawn from the pool
    session = Session(b, tmp_path / "s", watch=False, seed=0, start_from=bundle)
    session.label_many({q.item_id: b.true_label(q.item_id) for q in session.peek(12)})
    session.retrain()
    every = np.arange(len(b))
    before = np.asarray(session.rounds.model.query_proba[every])
    later = session.peek(12)
    assert any(q.strategy == "audit" for q in later)  # labeled after the round: not in what it learned
    session.label_many({q.item_id: b.true_label(q.item_id) for q in later})
    session.close()
    again = Session(b, tmp_path / "s", watch=False, seed=0, start_from=bundle)
    again.wait_for_training()
    assert again.rounds.model.round == 1
    np.testing.assert_allclose(np.asarray(again.rounds.model.query_proba[every]), before, atol=1e-9)
    reserve = set(b.item_ids[again.ranker.reserve])
    positions, _ = again.rounds.prior.sure(set())
    assert reserve and not reserve & set(b.item_ids[positions])  # the audit sample, never the bundle's
    again.close()


def test_a_round_of_one_label_comes_back_on_reopen(spans, tmp_path):
    _, b, test, bundle = spans
    session = Session(b, tmp_path / "s", test=test, watch=False, start_from=bundle)
    first = session.peek(1)[0]
    session.label(first.item_id, b.true_label(first.item_id))
    session.retrain()
    session.close()
    again = Session(b, tmp_path / "s", test=test, watch=False, start_from=bundle)
    again.wait_for_training()
    assert again.rounds.model.round == 1 and again.suggested_by == "round 1"
    again.close()


def test_what_is_no_model_and_a_store_started_from_another_are_named(spans, boxes, tmp_path):
    from workbench import BundleError
    from workbench.learn.box_model import BoxModel
    from workbench.learn.model import InputSignature
    from workbench.learn.span_model import SpanModel

    _, b, test, bundle = spans
    session = Session(b, tmp_path / "s", test=test, watch=False, start_from=bundle)
    with pytest.raises(BundleError, match="got Session"):
        Session(b, tmp_path / "t", test=test, watch=False, start_from=session)
    session.label_many({q.item_id: b.true_label(q.item_id) for q in session.peek(3)})
    session.retrain()
    session.close()
    model = load_model(bundle)
    other = SpanModel(model.tagger, model.classes, info={**model.info, "labels_hash": "another"})
    with pytest.warns(UserWarning, match="start_from= names another model"):
        Session(b, tmp_path / "s", test=test, watch=False, start_from=other).close()

    _, pics, _, _ = boxes  # a detector that never learned a class of its bundle's
    partial = BoxDetector(labels=[c for c in pics.classes if c != "9"], steps=2)
    partial.fit_boxes(np.asarray(pics.X[:2]), [[], []])
    lacking = BoxModel(partial, pics.classes, InputSignature.of(pics))
    with pytest.raises(ValueError, match=r"its detector finds only \['0'.*'8'\]"):
        Session(pics, tmp_path / "u", watch=False, start_from=lacking)


def test_a_bundle_of_a_started_session_says_how_its_parent_taught_it(spans, tmp_path):
    _, b, test, bundle = spans
    session = Session(b, tmp_path / "s", test=test, watch=False, start_from=bundle)
    session.label_many({q.item_id: b.true_label(q.item_id) for q in session.peek(5)})
    session.retrain()
    child = session.export(tmp_path / "child")
    session.close()
    parent = load_model(child).info["started_from"]
    assert parent["task"] == "spans" and parent["span_f1"] == load_model(bundle).info["span_f1"]
    assert "its spans on the texts it was sure of taught every round" in (child / "README.md").read_text()


def test_round_0_without_a_test_split_is_scored_on_the_audit_labels_a_store_has(spans, tmp_path):
    _, b, _, bundle = spans
    teammate = Session(b, tmp_path / "s", watch=False, seed=0, annotator="ann")
    while len(teammate.item_state.audit_ids()) < 6:
        teammate.label_many({q.item_id: b.true_label(q.item_id) for q in teammate.peek(10)})
    audited = sorted(teammate.item_state.audit_ids())
    teammate.close()
    session = Session(b, tmp_path / "s", watch=False, seed=0, annotator="bo", start_from=bundle)
    row = session.history.iloc[0]
    model = load_model(bundle)
    texts = [b.items["text"].iloc[b.position(i)] for i in audited]
    expected = span_scores([list(b.true_label(i)) for i in audited], model.predict_spans(texts),
                           session.class_names)
    assert row["eval_on"] == f"random audit sample ({len(audited)} texts)"
    assert row["span_f1"] == pytest.approx(expected["f1"])
    session.close()
