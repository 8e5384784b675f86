"""Reviewing labels: confirm events, the review queue, and suggestions accepted in bulk after
a spot check (workbench/loop/review.py). The suspects themselves are tested in
test_cleaning.py; here a few tests fix them, to pin down the review mechanics."""

import numpy as np
import pandas as pd
import pytest

from workbench import Session, StoreError, datasets, logistic_regression


@pytest.fixture(scope="module")
def pool():
    return datasets.digits().subset(np.arange(300))


def session_with_labels(pool, tmp_path, n=120, **kw):
    kw.setdefault("learner", logistic_regression())
    session = Session(pool, tmp_path / "s", watch=False, audit_every=0, **kw)
    session.label_many({i: pool.true_label(i) for i in pool.item_ids[:n]})
    return session


def fixed_suspects(monkeypatch, rows):
    """Suspects as given: (item_id, given, suggested, score)."""
    table = pd.DataFrame(
        [{"item_id": i, "given": g, "suggested": s, "score": sc, "confidence": 0.9,
          "annotator": "me", "time": pd.Timestamp.now(tz="UTC"), "reason": f"held-out models say {s}"}
         for i, g, s, sc in rows])
    monkeypatch.setattr(Session, "suspects", lambda self, k=None: table if k is None else table.head(k))
    return table


def test_a_confirm_keeps_the_label_and_is_history(pool, tmp_path):
    session = session_with_labels(pool, tmp_path)
    item = pool.item_ids[3]
    label = session.label_of(item)
    session.store.commit("labels")
    event = session.confirm(item)
    assert session.label_of(item) == label
    row = session.store.event(event.event_id)
    assert (row["action"], row["label"], row["annotator"]) == ("confirm", str(label), session.annotator)
    assert session.store.diff("HEAD").empty  # no label changed
    assert session.store.item_history(item)["action"].tolist() == ["label", "confirm"]
    assert list(session.store.confirmations().index) == [item]
    blame = session.store.blame([item])
    assert blame.loc[item, ["label", "confirmed_by"]].tolist() == [str(label), session.annotator]
    assert blame["confirmed_at"].notna().all()
    session.undo()  # takes the confirm back, and nothing else
    assert session.store.confirmations().empty and session.label_of(item) == label
    assert session.store.blame([item])["confirmed_by"].tolist() == [None]
    with pytest.raises(ValueError, match=f"item '{pool.item_ids[200]}' has no label to confirm"):
        session.confirm(pool.item_ids[200])
    session.close()


def test_a_confirm_no_longer_stands_once_the_label_changes(pool, tmp_path):
    session = session_with_labels(pool, tmp_path)
    item = pool.item_ids[5]
    session.confirm(item)
    session.label(item, (int(session.label_of(item)) + 1) % 10)
    assert session.store.confirmations().empty


def test_the_store_checks_confirm_events(tmp_path):
    from workbench import LabelStore

    store = LabelStore.open(tmp_path / "s", annotator="ann")
    with pytest.raises(StoreError, match="label must be a non-empty str for a 'confirm' event"):
        store.append("a", None, action="confirm")
    event = store.append("a", "1")
    confirm = store.append("a", "1", action="confirm")
    store.undo(confirm.event_id)
    assert store.current_labels()["label"].tolist() == ["1"] and event.event_id


def test_review_shows_the_suspects_in_order_and_records_what_the_person_did(pool, tmp_path,
                                                                            monkeypatch):
    session = session_with_labels(pool, tmp_path)
    ids = pool.item_ids
    fixed_suspects(monkeypatch, [(ids[0], "0", "8", 3.0), (ids[1], "1", "7", 2.0), (ids[2], "2", "5", 1.0)])
    table = session.review()
    assert table["item_id"].tolist() == list(ids[:3])
    shown = session.peek(3)
    assert [(q.item_id, q.strategy) for q in shown] == [(i, "review") for i in ids[:3]]
    assert shown[0].reason == "held-out models say 8"
    session.confirm(shown[0])            # Enter: keep
    session.label(shown[1], 7)           # a class key: relabel, in the role shown
    with pytest.raises(ValueError, match="is shown for review and has a label, which a skip"):
        session.skip(shown[2])           # would take the label away
    session.defer(shown[2])              # s: later, no event
    events = session.store.events().tail(2)
    assert events[["item_id", "action", "query"]].values.tolist() == [
        [ids[0], "confirm", "review"], [ids[1], "relabel", "review"]]
    assert ids[2] not in [q.item_id for q in session.peek(5)]
    # the next review leaves out the standing confirmation, and brings the deferred item back
    assert session.review()["item_id"].tolist() == [ids[1], ids[2]]
    session.close()


def test_a_confirmed_item_comes_back_only_with_new_evidence(pool, tmp_path, monkeypatch):
    session = session_with_labels(pool, tmp_path)
    ids = pool.item_ids
    fixed_suspects(monkeypatch, [(ids[0], "0", "8", 3.0)])
    session.review()
    session.confirm(ids[0])
    fixed_suspects(monkeypatch, [(ids[0], "0", "8", 3.2)])  # about the same evidence
    assert session.review().empty
    fixed_suspects(monkeypatch, [(ids[0], "0", "6", 3.0)])  # the models now say another class
    assert session.review()["item_id"].tolist() == [ids[0]]
    fixed_suspects(monkeypatch, [(ids[0], "0", "8", 4.0)])  # much stronger doubt
    assert session.review()["item_id"].tolist() == [ids[0]]
    session.close()


def test_a_row_of_the_review_table_is_recorded_as_reviewed_served_or_not(pool, tmp_path, monkeypatch):
    # A person who reads session.review() and confirms or fixes rows by id was shown them in
    # review, though the queue never served them one by one (they used to read "manual")
    session = session_with_labels(pool, tmp_path)
    ids = pool.item_ids
    fixed_suspects(monkeypatch, [(ids[0], "0", "8", 3.0), (ids[1], "1", "7", 2.0)])
    session.review()
    session.confirm(ids[0])
    session.label(ids[1], 7)
    session.label(ids[2], 5)  # not in the review: a relabel keeps the label's own role
    events = session.store.events().tail(3)
    assert events[["item_id", "action", "query"]].values.tolist() == [
        [ids[0], "confirm", "review"], [ids[1], "relabel", "review"], [ids[2], "relabel", "manual"]]
    session.close()


def test_an_audit_label_fixed_in_review_stays_in_the_random_sample(pool, tmp_path, monkeypatch):
    # The audit sample measures accuracy because it is random; dropping the labels people fixed
    # would leave out exactly the items whose old label was wrong
    session = Session(pool, tmp_path / "s", watch=False, audit_every=5, learner=logistic_regression())
    shown = session.peek(40)
    audit = [q.item_id for q in shown if q.strategy == "audit"]
    fixed, kept = audit[:2]
    for q in shown:
        truth = pool.true_label(q.item_id)
        session.label(q, (int(truth) + 1) % 10 if q.item_id == fixed else truth)
    fixed_suspects(monkeypatch, [(fixed, "x", str(pool.true_label(fixed)), 3.0)])
    session.review()
    q = session.peek(1)[0]
    assert (q.item_id, q.strategy) == (fixed, "review")
    session.label(q, pool.true_label(fixed))  # recorded as what the person did: a relabel in review
    assert session.store.current_labels().loc[fixed, "query"] == "review"
    assert {fixed, kept} <= session.item_state.audit_ids() and set(audit) == session.item_state.audit_ids()
    session.close()
    reopened = Session(pool, tmp_path / "s", watch=False, audit_every=5, learner=logistic_regression())
    assert reopened.item_state.audit_ids() == set(audit)
    reopened.skip(fixed)  # skipped, then labeled anew outside the audit: no longer an audit label
    reopened.label(fixed, 3)
    reopened.close()
    again = Session(pool, tmp_path / "s", watch=False, audit_every=5, learner=logistic_regression())
    assert again.item_state.audit_ids() == set(audit) - {fixed}
    again.close()


def test_the_audit_sample_follows_each_items_history_in_every_session(pool, tmp_path, monkeypatch):
    kw = dict(watch=False, audit_every=5, learner=logistic_regression())
    a = Session(pool, tmp_path / "s", **kw)
    shown = a.peek(40)
    audit = [q.item_id for q in shown if q.strategy == "audit"]
    x, y, z = audit[:3]
    for q in shown:
        a.label(q, pool.true_label(q.item_id))
    b = Session(pool, tmp_path / "s", annotator="bob", **kw)  # a teammate on the same store
    assert b.item_state.audit_ids() == set(audit)
    # fixed in review: still in the sample, in the other session and at a commit
    fixed_suspects(monkeypatch, [(x, "x", "0", 3.0)])
    a.review()
    a.label(x, 0)
    commit = a.store.commit("x fixed in review")
    b.sync()
    assert x in b.item_state.audit_ids()
    then = Session(pool, tmp_path / "s", at=commit, **kw)  # a read-only look: a labels on
    assert a.closed is None
    assert then.item_state.audit_ids() == set(audit)
    then.close()
    # skipped, then labeled again by hand: out of the sample, here and there
    a.skip(y)
    a.label(y, 1, query="manual")  # (left to itself, the label takes the role y was served in)
    b.sync()
    assert y not in a.item_state.audit_ids() and y not in b.item_state.audit_ids()
    # relabeled by hand, then its audit label undone: what stands began by hand
    first = a.store.events().query("item_id == @z")["event_id"].iloc[0]
    a.label(z, 2, query="manual")
    assert z in a.item_state.audit_ids()  # a relabel keeps it
    a.undo(first)
    b.sync()
    assert z not in a.item_state.audit_ids() and z not in b.item_state.audit_ids()
    a.close()
    b.close()


def test_a_review_item_is_not_skipped_away_and_no_one_picks_the_audit_sample(pool, tmp_path, monkeypatch):
    session = session_with_labels(pool, tmp_path)
    ids = pool.item_ids
    fixed_suspects(monkeypatch, [(ids[0], "0", "8", 3.0)])
    session.review()  # listed, not served one by one: a skip would still take its label away
    with pytest.raises(ValueError, match="is shown for review and has a label, which a skip"):
        session.skip(ids[0])
    assert session.label_of(ids[0]) is not None
    with pytest.raises(ValueError, match="'audit' is the queue's random sample"):
        session.focus(ids[200:205], role="audit")
    session.close()


def test_an_undone_review_comes_back(pool, tmp_path, monkeypatch):
    session = session_with_labels(pool, tmp_path)
    ids = pool.item_ids
    fixed_suspects(monkeypatch, [(ids[0], "0", "8", 3.0)])
    session.review()
    session.confirm(ids[0])
    assert session.peek(1)[0].strategy != "review"
    session.undo()
    assert (session.peek(1)[0].item_id, session.peek(1)[0].strategy) == (ids[0], "review")
    session.close()


def test_suggestions_are_accepted_in_bulk_after_a_spot_check(pool, tmp_path):
    session = session_with_labels(pool, tmp_path, n=150)
    session.retrain()
    session.store.commit("human labels")
    for bad in (0, 1.5, -0.1, "high", True):
        with pytest.raises(ValueError, match=r"min_confidence must be a probability in \(0, 1\], got"):
            session.accept_suggestions(bad)
    batch = session.accept_suggestions(0.9, review=10)
    assert len(batch) > 20 and len(batch.sample) == 10
    assert set(batch.sample) <= set(batch.proposed["item_id"])
    assert (batch.proposed["confidence"] >= 0.9).all()
    assert not set(batch.proposed["item_id"]) & set(session.labels)
    shown = session.peek(10)
    assert {q.item_id for q in shown} == set(batch.sample) and {q.strategy for q in shown} == {"spot-check"}
    with pytest.raises(ValueError, match="review the sample first: 0 of 10 items reviewed"):
        batch.accept()
    for q in shown:  # the person labels the sample: the truth
        session.label(q, pool.true_label(q.item_id))
    p = batch.precision()
    truth = [str(pool.true_label(i)) == str(s) for i, s in
             batch.proposed.set_index("item_id").loc[batch.sample, "suggestion"].items()]
    assert p["reviewed"] == 10 and p["agreed"] == sum(truth)
    assert p["low"] <= p["estimate"] <= p["high"] and 0 <= p["low"] and p["high"] <= 1
    before = len(session.labels)
    event_ids = batch.accept()
    assert len(event_ids) == len(batch) - 10 and len(session.labels) == before + len(event_ids)
    written = session.store.events().set_index("event_id").loc[event_ids]
    assert set(written["source"]) == {"suggestion"} and set(written["query"]) == {"bulk"}
    log = session.store.log()
    assert log["message"].iloc[0].startswith(f"Accept {len(event_ids)} suggestions")
    assert log["added"].iloc[0] == len(event_ids)  # the suggestions alone: the spot check is
    assert log["message"].iloc[1].startswith("Labels before accepting suggestions")  # before
    session.undo()  # one action: the whole batch goes
    assert len(session.labels) == before
    session.close()


def test_suggestions_need_a_model(pool, tmp_path):
    session = session_with_labels(pool, tmp_path, n=30)
    with pytest.raises(ValueError, match="no model yet"):
        session.accept_suggestions(0.9)
    session.close()


def test_an_open_review_is_ranked_again_after_a_training_round(pool, tmp_path, monkeypatch):
    session = session_with_labels(pool, tmp_path)
    ids = pool.item_ids
    fixed_suspects(monkeypatch, [(ids[0], "0", "8", 3.0), (ids[1], "1", "7", 2.0), (ids[2], "2", "5", 1.0)])
    session.review()
    session.label(ids[0], 8)  # a fix lands
    # the new model doubts item 2 most, and no longer item 1
    fixed_suspects(monkeypatch, [(ids[2], "2", "5", 5.0), (ids[0], "8", "0", 0.5)])
    session.retrain()
    shown = session.peek(3)
    assert [(q.item_id, q.strategy) for q in shown[:1]] == [(ids[2], "review")]
    assert ids[1] not in [q.item_id for q in shown] and ids[0] not in [q.item_id for q in shown]
    session.close()
