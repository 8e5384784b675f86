import threading
import time

import numpy as np
import pandas as pd
import pytest

from workbench import LabelStore, Pool, Session, TorchClassifier, datasets, logistic_regression, strategies


@pytest.fixture(scope="module")
def split():
    return datasets.digits().train_test_split(0.3, seed=0)


def make(split, tmp_path, **kw):
    train, test = split
    kw.setdefault("learner", logistic_regression())
    return Session(train, tmp_path / "labels", test=(test.X, test.y), **kw)


def label_truth(session, n):
    for item in session.peek(n):
        session.label(item.item_id, session.pool.true_label(item.item_id))


def test_test_split_as_a_pool_or_a_pair(split, tmp_path):
    train, test = split
    as_pool = Session(train, tmp_path / "a", test=test, learner=logistic_regression())
    as_pair = Session(train, tmp_path / "b", test=(test.X, test.y), learner=logistic_regression())
    for session in (as_pool, as_pair):
        label_truth(session, 20)
        session.retrain()
    assert as_pool.history["accuracy"].tolist() == as_pair.history["accuracy"].tolist()
    with pytest.raises(ValueError, match="test X has 3 rows but y has 2 labels"):
        Session(train, tmp_path / "c", test=(test.X[:3], test.y[:2]))
    # items of another shape are refused as the session opens, not by its first round
    flat = test.X.reshape(len(test.X), -1)
    with pytest.raises(ValueError, match=r"test X has items of shape \(64,\); the pool's items are \(8, 8\)"):
        Session(train, tmp_path / "d", test=(flat, test.y))
    small = Pool.from_arrays(test.X[:, :4, :4], test.y)
    with pytest.raises(ValueError, match=r"test pool 'arrays' has items of shape \(4, 4\)"):
        Session(train, tmp_path / "e", test=small)
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").rglob("*.parquet"))


def test_cold_start_is_diverse(split, tmp_path):
    session = make(split, tmp_path)
    first = session.peek(20)
    assert all(i.strategy == "cold-start" and i.suggestion is None for i in first)
    truths = {session.pool.true_label(i.item_id) for i in first}
    assert len(truths) >= 8  # one item per k-means cluster covers most digits


def test_label_is_in_the_store_on_disk(split, tmp_path):
    session = make(split, tmp_path)
    head = session.next()
    session.label(head.item_id, 3)
    on_disk = pd.read_parquet(tmp_path / "labels")
    assert on_disk[["item_id", "label", "action", "query"]].values.tolist() == [
        [head.item_id, "3", "label", "cold-start"]]
    assert session.next().item_id != head.item_id


def test_retrain_reranks_by_strategy_and_suggests(split, tmp_path):
    session = make(split, tmp_path, strategy="margin")
    label_truth(session, 30)
    session.retrain()
    hist = session.history
    assert hist["n_labels"].tolist() == [30] and hist["accuracy"].iloc[0] > 0.7
    assert hist["eval_on"].iloc[0] == "held-out test split (540 items)"
    items = session.peek(5)
    assert [i.strategy for i in items] == ["margin"] * 5
    assert all(a.score >= b.score for a, b in zip(items, items[1:]))
    assert items[0].suggestion in session.classes and 0 < items[0].confidence <= 1
    assert "hesitates between" in items[0].reason


def test_skip_undo_relabel(split, tmp_path):
    session = make(split, tmp_path)
    a, b = session.peek(2)
    session.label(a.item_id, 1)
    session.skip(b.item_id)
    assert b.item_id not in [i.item_id for i in session.peek(5)]
    assert session.undo() == [b.item_id]
    assert session.next().item_id == b.item_id
    session.label(a.item_id, 2)  # fix a label: a relabel, history kept
    assert session.labels[a.item_id] == 2
    events = session.store.events()
    assert events["action"].tolist() == ["label", "skip", "undo", "relabel"]
    assert session.undo() == [a.item_id] and session.labels[a.item_id] == 1


def test_reopening_resumes_exactly(split, tmp_path):
    train, test = split
    learner = TorchClassifier(min_steps=60, max_epochs=60, n_members=2)
    session = make(split, tmp_path, learner=learner)
    label_truth(session, 25)
    session.retrain()
    label_truth(session, 3)
    expected = [i.item_id for i in session.peek(10)]
    session.close()
    again = make(split, tmp_path, learner=learner)
    assert len(again.labels) == 28 and again.history.shape[0] == 1
    assert [i.item_id for i in again.peek(10)] == expected


def test_background_retrain_every_n_labels(split, tmp_path):
    session = make(split, tmp_path, retrain_every=10)
    events = []
    session.subscribe(events.append)
    label_truth(session, 10)
    assert session.wait_for_training(timeout=60)
    label_truth(session, 5)  # labeling goes on meanwhile and afterwards
    assert "retrain_finished" in events and session.model_state()["rounds"] == 1
    assert session.model_state()["training"] is False


def test_failed_training_loses_no_label(split, tmp_path):
    class Broken(logistic_regression().__class__):
        def fit(self, X, y):
            raise RuntimeError("out of memory (simulated)")

    session = make(split, tmp_path, learner=Broken())
    label_truth(session, 12)
    session.retrain(background=True).result(timeout=30)
    state = session.model_state()
    assert "out of memory" in state["last_error"] and not state["training"]
    assert len(LabelStore.open(tmp_path / "labels").current_labels()) == 12


def test_audit_sample_gives_honest_accuracy_without_a_test_split(tmp_path):
    pool = datasets.digits().subset(np.arange(400))
    session = Session(pool, tmp_path / "s", learner=logistic_regression(), audit_every=5)
    for _ in range(3):
        label_truth(session, 30)
        session.retrain()
    audit = session.store.current_labels().query("query == 'audit'")
    assert len(audit) >= 10
    last = session.history.iloc[-1]
    assert last["eval_on"].startswith("random audit sample") and 0 < last["accuracy"] <= 1
    assert last["n_labels"] == len(session.labels) - len(audit)  # audit items not trained on


def test_bad_input(split, tmp_path):
    session = make(split, tmp_path)
    with pytest.raises(ValueError, match=r"label 11 is not one of the classes \['0', '1'"):
        session.label(session.next().item_id, 11)
    with pytest.raises(KeyError, match="item_id 'digit-9999' is not in the pool"):
        session.label("digit-9999", 1)
    with pytest.raises(ValueError, match="at least two classes"):
        Session(Pool.from_arrays(np.ones((3, 2))), tmp_path / "other")
    label_truth(session, 1)
    with pytest.raises(ValueError, match="at least 2 classes to train"):
        session.retrain()
    assert len(pd.read_parquet(tmp_path / "labels")) == 1  # nothing acknowledged was lost


class _RecordingLearner(logistic_regression().__class__):
    """Logistic regression whose fit also takes X_unlabeled, and remembers what it got."""

    seen: list = []

    def fit(self, X, y, X_unlabeled=None):
        _RecordingLearner.seen.append((len(X), None if X_unlabeled is None else len(X_unlabeled)))
        return super().fit(X, y)


def test_self_training_learners_get_the_unlabeled_rest_of_the_pool(split, tmp_path):
    train, _ = split
    _RecordingLearner.seen = []
    session = Session(train, tmp_path / "labels", learner=_RecordingLearner(max_iter=500))  # audit mode
    label_truth(session, 40)
    session.retrain()
    audited = len([i for i in session.labels if i in session.item_state.audit_ids()])
    assert audited > 0
    # trained on the labels minus audit items; the unlabeled pool excludes every labeled item
    assert _RecordingLearner.seen == [(40 - audited, len(train) - 40)]


def test_default_strategy_is_diverse_margin(split, tmp_path):
    session = make(split, tmp_path, learner=logistic_regression())
    assert session.strategy_name == "diverse_margin"
    label_truth(session, 30)
    session.retrain()
    items = session.peek(10)
    assert [i.strategy for i in items] == ["diverse_margin"] * 10
    assert "hesitates between" in items[0].reason or "closest call" in items[0].reason


def test_self_trained_session_ranks_by_the_labels_only_model(split, tmp_path):
    from workbench.learn.strategies import margin_scores

    learner = TorchClassifier(min_steps=60, max_epochs=60, n_members=2)
    session = make(split, tmp_path, learner=learner, strategy="margin")
    label_truth(session, 30)
    session.retrain()
    model = session.model.learner
    assert model.n_pseudo_labels_ > 0
    items = session.peek(5)
    X = session.pool.X[[i.position for i in items]]
    np.testing.assert_allclose([i.score for i in items], margin_scores(model.query_proba(X)), atol=1e-5)
    assert [str(i.suggestion) for i in items] == [str(c) for c in model.predict(X)]  # final model


# -- finding 1: one role per item, recorded as shown ----------------------------------------
def test_every_item_is_queued_once_in_one_role(tmp_path):
    pool = datasets.digits()
    session = Session(pool, tmp_path / "s", learner=logistic_regression(), audit_every=10)
    for _ in range(2):
        items = session.peek(len(pool))
        ids = [i.item_id for i in items]
        assert len(ids) == len(set(ids)) == len(pool) - len(session.labels)
        reserve = set(pool.item_ids[session.ranker.reserve])
        assert {i.item_id for i in items if i.strategy == "audit"} == reserve - set(session.labels)
        assert [i.strategy for i in items[:20]].count("audit") == 2  # every 10th slot
        label_truth(session, 40)
        session.retrain()
    session.close()


def test_the_role_recorded_is_the_role_shown(tmp_path):
    pool = datasets.digits()
    session = Session(pool, tmp_path / "s", learner=logistic_regression(), audit_every=5)
    items = session.peek(10)
    audit = next(i for i in items if i.strategy == "audit")
    picked = next(i for i in items if i.strategy == "cold-start")
    session.label(audit, 1)  # a QueueItem carries its role
    session.label(picked.item_id, 2)  # an id: the role this session served it in
    unserved = next(i for i in pool.item_ids if i not in {q.item_id for q in session.peek(50)})
    session.label(unserved, 3)  # never served: labeled by hand
    other_pick = next(i for i in items[::-1] if i.strategy == "cold-start")
    with pytest.raises(ValueError, match="served as 'cold-start', not as 'audit'"):
        session.label(other_pick.item_id, 4, query="audit")
    with pytest.raises(ValueError, match="never served by the queue"):
        session.label(pool.item_ids[-1], 4, query="margin")
    session.label(audit.item_id, 7)  # a relabel keeps the role of the label it replaces
    log = session.store.events()
    assert log[["item_id", "action", "query"]].values.tolist() == [
        [audit.item_id, "label", "audit"], [picked.item_id, "label", "cold-start"],
        [unserved, "label", "manual"], [audit.item_id, "relabel", "audit"]]
    assert session.item_state.audit_ids() == {audit.item_id}
    session.close()


# -- finding 3: a failed round never wedges the session --------------------------------------
def test_a_failed_rerank_surfaces_and_the_session_recovers(split, tmp_path):
    calls = []

    def flaky(proba, n, *, rng=None):
        calls.append(n)
        if len(calls) == 1:
            raise RuntimeError("ranking broke (simulated)")
        return strategies.margin(proba, n, rng=rng)

    session = make(split, tmp_path, strategy=flaky, retrain_every=10)
    events = []
    session.subscribe(events.append)
    label_truth(session, 10)  # retrain_every fires: the first round fails in ranking
    assert session.wait_for_training(timeout=60)
    state = session.model_state()
    assert "ranking broke" in state["last_error"] and state["training"] is False
    assert session.model is None and session.history.empty and "retrain_failed" in events
    label_truth(session, 10)  # retrain_every fires again, and this time it works
    assert session.wait_for_training(timeout=60)
    assert session.model_state()["last_error"] is None and len(session.history) == 1
    assert session.next().strategy == "flaky"
    session.close()


def test_a_strategy_that_needs_a_learner_it_does_not_have_is_refused_at_once(split, tmp_path):
    with pytest.raises(ValueError, match="strategy 'bald' needs a learner with MC-dropout"):
        make(split, tmp_path, strategy="bald")


def test_a_finished_pool_still_retrains(tmp_path):
    pool = datasets.digits().subset(np.arange(60))
    session = Session(pool, tmp_path / "s", learner=logistic_regression())  # diverse_margin
    label_truth(session, 60)
    assert session.next() is None
    session.retrain()
    assert len(session.history) == 1 and session.peek(5) == []
    session.close()


# -- findings 5 and 6: undo names its events; notifications never undo an action --------------
def test_undo_takes_back_this_sessions_action_not_another_notebooks(split, tmp_path):
    session = make(split, tmp_path, annotator="me")
    a, b = session.peek(2)
    session.label(a, 1)
    other = LabelStore.open(tmp_path / "labels", annotator="me")  # my second notebook
    theirs = other.append(b.item_id, "2")
    assert session.undo() == [a.item_id]
    log = session.store.events()
    assert log.loc[log["action"] == "undo", "target"].tolist() == [log["event_id"].iloc[0]]
    session.sync()
    assert session.labels == {b.item_id: 2}
    assert session.undo() == []  # nothing of this session's left; the other label stays
    assert session.undo(theirs.event_id) == [b.item_id]  # unless named
    session.close()


def test_undo_moves_past_actions_another_handle_undid(split, tmp_path):
    """Issue 17 item 9: an action undone elsewhere (a second notebook, code on the store) is
    skipped; undo takes back the latest action of this session's that still stands."""
    session = make(split, tmp_path, annotator="me", watch=False)  # undo() itself must look
    a, b, c = session.peek(3)
    first, second, third = (session.label(q, k) for q, k in ((a, 1), (b, 2), (c, 3)))
    other = LabelStore.open(tmp_path / "labels", annotator="me")  # my second notebook
    other.undo(third.event_id)
    assert session.undo() == [b.item_id]
    session.store.undo(first.event_id)  # code on the session's own store handle
    assert session.undo() == []  # nothing of this session's left to undo
    assert session.labels == {}
    undos = session.store.events().query("action == 'undo'")["target"].tolist()
    assert sorted(undos) == sorted([first.event_id, second.event_id, third.event_id])
    session.close()


def test_undo_takes_back_what_stands_of_a_page_another_handle_partly_undid(split, tmp_path):
    session = make(split, tmp_path, watch=False)
    page = [q.item_id for q in session.peek(3)]
    ids = session.label_many({i: 4 for i in page})
    LabelStore.open(tmp_path / "labels").undo(ids[1])
    assert sorted(session.undo()) == sorted([page[0], page[2]])
    assert session.labels == {} and session.undo() == []
    session.close()


def test_an_undo_on_another_branch_leaves_the_action_to_undo_here(split, tmp_path):
    session = make(split, tmp_path, watch=False)
    a = session.next()
    mine = session.label(a, 1)
    session.store.commit("one label")
    session.store.branch("exp")
    LabelStore.open(tmp_path / "labels", branch="exp").undo(mine.event_id)
    assert session.undo() == [a.item_id]  # on main the label stood until now
    assert session.labels == {}
    session.close()


def test_undo_moves_past_an_undo_that_a_merge_brought_in(split, tmp_path):
    """The undo was read while it was on another branch; merged, it applies here."""
    session = make(split, tmp_path, watch=False)
    a, b = session.peek(2)
    session.label(a, 1)
    last = session.label(b, 2)
    session.store.commit("two labels")
    session.store.branch("exp")
    exp = LabelStore.open(tmp_path / "labels", branch="exp")
    exp.undo(last.event_id)
    exp.commit("took the 2 back")
    session.sync()  # sees the undo while it is exp's alone
    session.store.merge("exp")
    assert session.undo() == [a.item_id]
    session.close()


def test_undo_retries_when_another_handle_undoes_the_action_while_it_looks(split, tmp_path,
                                                                           monkeypatch):
    """The other handle's undo lands after this session read the store and before its own
    write: the store refuses the write, and undo moves on to the previous action."""
    session = make(split, tmp_path, watch=False)
    a, b = session.peek(2)
    session.label(a, 1)
    late = session.label(b, 2)
    other = LabelStore.open(tmp_path / "labels")
    real_sync = session.store.sync

    def sync_then_other_undoes(**kwargs):
        new = real_sync(**kwargs)
        if late.event_id not in {e["target"] for e in other.events().to_dict("records")}:
            other.undo(late.event_id)
        return new

    monkeypatch.setattr(session.store, "sync", sync_then_other_undoes)
    assert session.undo() == [a.item_id]
    assert session.labels == {}
    session.close()


@pytest.mark.slow
def test_undo_moves_past_an_action_another_process_undid(split, tmp_path):
    import subprocess
    import sys

    session = make(split, tmp_path, annotator="me")
    a, b = session.peek(2)
    session.label(a, 1)
    last = session.label(b, 2)
    code = ("import sys; from workbench import LabelStore; "
            "LabelStore.open(sys.argv[1], annotator='me').undo(sys.argv[2])")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "labels"), last.event_id],
                   check=True, timeout=120)
    assert session.undo() == [a.item_id]
    assert session.labels == {} and session.undo() == []
    session.close()


def test_label_many_is_one_action_that_one_undo_takes_back(split, tmp_path):
    session = make(split, tmp_path)
    page = session.peek(6)
    keep = session.peek(7)[6]
    session.label(keep, 0)
    ids = session.label_many({q.item_id: 3 for q in page[:5]}, skips=[page[5].item_id])
    assert len(ids) == 6 and len(session.labels) == 6 and session.store.skipped() == {page[5].item_id}
    assert sorted(session.undo()) == sorted(q.item_id for q in page)
    assert session.labels == {keep.item_id: 0} and session.store.skipped() == set()
    with pytest.raises(ValueError, match="got an item twice"):
        session.label_many([(page[0].item_id, 1), (page[0].item_id, 2)])
    session.close()


def test_a_raising_subscriber_neither_hides_nor_undoes_a_label(split, tmp_path):
    session = make(split, tmp_path)
    session.subscribe(lambda event: 1 / 0)
    head = session.next()
    event = session.label(head, 4)
    assert event.item_id == head.item_id and session.labels == {head.item_id: 4}
    assert session.next().item_id != head.item_id
    session.close()


def test_a_second_retrain_request_on_the_same_labels_trains_once(split, tmp_path):
    fits = []

    class Slow(logistic_regression().__class__):
        def fit(self, X, y):
            fits.append(len(y))
            time.sleep(0.3)
            return super().fit(X, y)

    session = make(split, tmp_path, learner=Slow(max_iter=300))
    started = threading.Event()
    session.subscribe(lambda event: event == "retrain_started" and started.set())
    label_truth(session, 20)
    first = session.retrain(background=True)
    second = session.retrain(background=True)  # a second click while the first round runs
    assert first is not second
    assert session.wait_for_training(timeout=60)
    assert fits == [20]  # the second asked for nothing new: dropped
    started.clear()
    session.retrain(background=True)
    assert started.wait(10)
    label_truth(session, 5)  # new labels while it trains: the extra round is worth running
    session.retrain(background=True)
    assert session.wait_for_training(timeout=60)
    assert fits == [20, 20, 25] and len(session.history) == 3
    session.close()


# -- finding 8: other writers -------------------------------------------------------------------
def test_other_writers_labels_arrive_within_a_second_and_leave_the_queue(split, tmp_path):
    session = make(split, tmp_path, annotator="me")
    head = session.next()
    events = []
    session.subscribe(events.append)
    LabelStore.open(tmp_path / "labels", annotator="teammate").append(session.peek(3)[2].item_id, "5")
    deadline = time.monotonic() + 1.5
    while "labels_changed" not in events:  # the watcher, not this test, reads the store
        assert time.monotonic() < deadline, "another writer's label took over a second to show"
        time.sleep(0.02)
    assert len(session.labels) == 1 and session.next().item_id == head.item_id
    assert all(q.item_id not in session.labels for q in session.peek(20))
    session.close()


def test_two_sessions_on_one_store_are_never_served_the_same_items(split, tmp_path):
    train, test = split
    ann = Session(train, tmp_path / "s", annotator="ann", test=test, learner=logistic_regression())
    bob = Session(train, tmp_path / "s", annotator="bob", test=test, learner=logistic_regression())
    shown_to_ann = {q.item_id for q in ann.peek(8)}
    shown_to_bob = {q.item_id for q in bob.peek(8)}
    assert len(shown_to_bob) == 8 and not shown_to_ann & shown_to_bob
    ann.release(shown_to_ann)  # ann's view let them go: bob may get them now
    assert shown_to_ann <= {q.item_id for q in bob.peek(16)}
    ann.close()
    bob.close()


def test_a_new_session_on_the_same_store_replaces_the_old_one(split, tmp_path):
    """Re-running a notebook cell makes a new session: the old one stops claiming items."""
    old = make(split, tmp_path)
    held = {q.item_id for q in old.peek(8)}
    new = make(split, tmp_path)
    assert {q.item_id for q in new.peek(8)} == held
    with pytest.raises(RuntimeError, match="replaced by a newer Session"):
        old.label(next(iter(held)), 1)
    new.close()


@pytest.mark.slow
def test_two_processes_label_two_thousand_items_between_them(tmp_path):
    """Two notebooks (here: processes) label one pool through the public API as fast as
    they can: every item is labeled exactly once, none lost, none twice."""
    import subprocess
    import sys
    import textwrap

    go = tmp_path / "go"
    code = textwrap.dedent(f"""
        import os, sys, time
        import numpy as np
        from sklearn.linear_model import LogisticRegression
        from workbench import Pool, Session
        X = np.random.default_rng(0).random((2000, 4))
        pool = Pool.from_arrays(X, (X[:, 0] > 0.5).astype(int))
        session = Session(pool, {str(tmp_path / "store")!r}, annotator=sys.argv[1],
                          learner=LogisticRegression(), audit_every=10)
        open({str(tmp_path)!r} + "/ready-" + sys.argv[1], "w").close()
        while not os.path.exists({str(go)!r}):
            time.sleep(0.01)
        n = 0
        while (item := session.next()) is not None:
            session.label(item, pool.true_label(item.item_id))
            n += 1
        session.close()
        print(n)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code, who], stdout=subprocess.PIPE, text=True)
             for who in ("ann", "bob")]
    # Both start together: each waits for "go" once its session is open (imports can take
    # seconds on a busy machine, and a late starter would find most items labeled).
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready-{who}").exists() for who in ("ann", "bob")):
        assert time.monotonic() < deadline, "the two processes never got ready"
        assert all(proc.poll() is None for proc in procs), "a labeling process died"
        time.sleep(0.05)
    go.touch()
    counts = []
    for proc in procs:
        out, _ = proc.communicate(timeout=240)
        assert proc.returncode == 0
        counts.append(int(out))
    log = LabelStore.open(tmp_path / "store").events()
    assert sum(counts) == len(log) == 2000, counts
    assert (log["action"] == "label").all() and log["item_id"].is_unique
    assert min(counts) > 300  # both really labeled


# -- label history (issue 10) --------------------------------------------------------------------
def test_a_session_at_a_commit_rebuilds_that_model_read_only(split, tmp_path):
    session = make(split, tmp_path)
    label_truth(session, 30)
    shipped = session.store.commit("the labels of the model we shipped")
    session.retrain()
    label_truth(session, 20)
    session.retrain()
    hashes = session.history["labels_hash"].tolist()
    assert hashes[0] == shipped.labels_hash and hashes[1] != shipped.labels_hash
    session.close()
    old = make(split, tmp_path, at=shipped.short)
    assert len(old.labels) == 30
    old.retrain()
    assert old.history["labels_hash"].iloc[-1] == shipped.labels_hash
    assert old.history["accuracy"].iloc[-1] == session.history["accuracy"].iloc[0]  # the same model
    with pytest.raises(RuntimeError, match="read-only: it shows the labels as of commit"):
        old.label(old.next(), 3)


def test_a_store_keeps_its_class_set(split, tmp_path):
    session = make(split, tmp_path)
    session.close()
    with pytest.raises(ValueError, match=r"holds labels of the classes \['0', '1'"):
        Session(split[0], tmp_path / "labels", classes=["cat", "dog"], learner=logistic_regression())


def test_a_label_removed_by_a_restore_is_unlabeled_again(split, tmp_path):
    session = make(split, tmp_path)
    empty = None
    label_truth(session, 3)
    first = session.store.commit("three")
    label_truth(session, 2)
    session.store.commit("five")
    session.store.restore(first.id)
    session.sync()
    assert len(session.labels) == 3 and empty is None
    assert session.progress()["n_labeled"] == 3
    session.close()


def test_an_overlap_serves_items_to_two_annotators_and_gives_agreement(tmp_path):
    pool = datasets.digits().subset(np.arange(300))
    kw = dict(learner=logistic_regression(), audit_every=None, overlap=0.2,
              test=datasets.digits().subset(np.arange(300, 500)))
    ann = Session(pool, tmp_path / "s", annotator="ann", **kw)
    bob = Session(pool, tmp_path / "s", annotator="bob", **kw)
    overlap = ann.overlap_items
    assert 40 < len(overlap) < 80
    for session in (ann, bob):
        for _ in range(150):
            item = session.next()
            truth = pool.true_label(item.item_id)
            if session is bob and item.item_id in overlap and int(item.item_id[-1]) % 3 == 0:
                truth = (truth + 1) % 10  # bob disagrees on some shared items
            session.label(item, truth)
    ann.sync()
    bob.sync()
    log = ann.store.events()
    shared = log[log["item_id"].isin(overlap)].groupby("item_id")["annotator"].nunique()
    assert (shared == 2).sum() >= 20  # the overlap items were labeled by both
    solo = log[~log["item_id"].isin(overlap)]
    assert solo["item_id"].is_unique  # everything else by one of them only
    figures = ann.agreement()
    assert figures.n_items == (shared == 2).sum() and 0 < figures.alpha < 1
    assert figures.pairs[["annotator_a", "annotator_b"]].values.tolist() == [["ann", "bob"]]
    assert len(figures.disagreements) > 0
    table = ann.adjudicate()
    first = ann.next()
    assert first.strategy == "adjudication" and first.item_id == table["item_id"].iloc[0]
    assert "bob said" in first.reason
    ann.label(first, pool.true_label(first.item_id))
    assert ann.store.events()["query"].iloc[-1] == "adjudication"
    assert ann.agreement().n_items == figures.n_items  # an adjudication is not an opinion
    ann.close()
    bob.close()


def test_a_simulation_starts_from_what_the_widget_shows_first(tmp_path):
    from workbench import LightHead, simulate
    from workbench.learn.queue import diverse_positions
    from workbench.loop.inputs import LearnerInputs

    pool = datasets.digits().subset(np.arange(300))
    seen = []
    real_label = Session.label

    def spy(self, item, label, **kw):
        seen.append(item.item_id if hasattr(item, "item_id") else item)
        return real_label(self, item, label, **kw)

    Session.label = spy
    try:
        simulate(pool, budget=20, initial=20, seed=0)
        queued, seen[:] = list(seen), []
        simulate(pool, budget=20, initial=20, seed=0, cold_start="random")
        at_random, seen[:] = list(seen), []
    finally:
        Session.label = real_label
    train, _ = pool.train_test_split(0.3, seed=0)
    features = LearnerInputs(train, LightHead()).features()
    assert queued == list(train.item_ids[diverse_positions(features, 20, seed=0)])
    assert at_random == list(train.item_ids[np.random.default_rng(0).permutation(len(train))[:20]])
    with pytest.raises(ValueError, match="cold_start must be 'queue' or 'random', got 'kmeans'"):
        simulate(pool, budget=20, cold_start="kmeans")


@pytest.mark.filterwarnings("ignore:Number of distinct clusters")  # the zeroed features below
def test_a_simulation_finds_the_representation_in_the_cache_it_is_given(tmp_path):
    from workbench import simulate
    from workbench.data.representation import cache_at

    pool = datasets.digits().subset(np.arange(200))
    simulate(pool, budget=20, initial=20, seed=0, representation_cache=tmp_path / "reps")
    (saved,) = (tmp_path / "reps").glob("*.npz")  # learned once, kept where it was asked to be
    key = saved.stem
    cached = cache_at(tmp_path / "reps").get(key)
    cached.features[:] = 0  # a marked copy: a second run must read this one, not learn again
    curve = simulate(pool, budget=30, initial=20, seed=0, representation_cache=tmp_path / "reps")
    assert len(list((tmp_path / "reps").glob("*.npz"))) == 1 and len(curve) == 2
    assert curve["accuracy"].max() < 0.5  # zeroed features: the marked copy was used
