"""Multi-label pools end to end: the pool, the store's value, the session's label, undo and
reopen, training, the queue's suggestion and reason, simulation, and the refusals."""

import json

import numpy as np
import pytest

from workbench import LabelStore, LightHead, Pool, Session, simulate
from workbench.data.tasks import LabelSet
from workbench.store.errors import StoreError
from workbench.store.meta import read_meta


def digit_sets(targets):
    """Each digit's classes: itself, its parity, and "big" from 5 up."""
    return [[int(t), "odd" if t % 2 else "even"] + (["big"] if t >= 5 else []) for t in targets]


@pytest.fixture(scope="module")
def pool():
    from sklearn.datasets import load_digits

    d = load_digits()
    return Pool.from_arrays(d.images[:400], digit_sets(d.target[:400]), X_test=d.images[1000:1300],
                            y_test=digit_sets(d.target[1000:1300]), task="multi_label", name="digit-sets")


def test_a_multi_label_pool_holds_a_set_per_item(pool):
    assert pool.task == "multi_label"
    assert pool.classes == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, "big", "even", "odd"]  # numbers first
    assert pool.true_label("005") == [5, "odd", "big"]
    assert "task='multi_label'" in repr(pool)
    train, test = pool.train_test_split(0.25, seed=0)  # no stratifying on sets
    assert train.task == test.task == "multi_label" and len(train) + len(test) == len(pool)
    assert pool.subset([0, 1]).true_label("001") == [1, "odd"]


def test_pool_refuses_what_is_not_its_task(pool):
    X = np.zeros((3, 2))
    with pytest.raises(ValueError, match="one class per item - pass task='multi_label'"):
        Pool.from_arrays(X, [["a"], ["b", "c"], []])
    with pytest.raises(ValueError, match=r"y\[1\] is str 'b'; a multi-label pool takes a list"):
        Pool.from_arrays(X, [["a"], "b", []], task="multi_label")
    with pytest.raises(ValueError, match="unknown task 'multi'"):
        Pool.from_arrays(X, task="multi")
    with pytest.raises(ValueError, match="task='boxes' draws boxes on the pixels of images"):
        Pool.from_arrays(X, task="boxes")
    with pytest.raises(ValueError, match=r"y names classes \['c'\] that are not among"):
        Pool.from_arrays(X, [["a"], ["b", "c"], []], classes=["a", "b"], task="multi_label")


def test_a_label_is_a_set_stored_as_json_in_class_order(pool, tmp_path):
    session = Session(pool, tmp_path / "s", watch=False)
    event = session.label("001", ["odd", "1"])  # names or values, any order
    assert json.loads(session.store.current_labels().loc["001", "label"]) == ["1", "odd"]
    assert event.label == '["1", "odd"]'
    assert session.label_of("001") == LabelSet([1, "odd"])
    session.label("002", [])  # no class applies: a label too
    assert session.label_of("002") == LabelSet()
    session.label("001", ("1", "odd", "big"))  # a relabel, the old set kept in history
    assert session.label_of("001") == LabelSet([1, "big", "odd"])
    assert [e["action"] for e in session.store.events_of({"001"}).to_dict("records")] == ["label", "relabel"]
    session.undo()
    assert session.label_of("001") == LabelSet([1, "odd"])
    session.close()
    again = Session(pool, tmp_path / "s", watch=False)  # read back from the store's text
    assert again.labels == {"001": LabelSet([1, "odd"]), "002": LabelSet()}
    again.close()


@pytest.mark.parametrize("value, message", [
    ("odd", "a multi-label pool takes a list of classes for each label"),
    (3, "a multi-label pool takes a list of classes"),
    (["odd", "purple"], r"names \['purple'\], which are not among the classes"),
    (["odd", "odd"], "names a class more than once"),
    ('["odd"', "is not a JSON list of classes"),
])
def test_bad_labels_are_refused_and_store_nothing(pool, tmp_path, value, message):
    session = Session(pool, tmp_path / "s", watch=False)
    with pytest.raises(ValueError, match=message):
        session.label("001", value)
    assert len(session.store) == 0 and session.labels == {}
    session.close()


def test_a_single_label_pool_refuses_a_list(tmp_path):
    from workbench import datasets

    session = Session(datasets.digits(), tmp_path / "s", watch=False)
    with pytest.raises(ValueError, match="single-label pool takes one class for each label, got list"):
        session.label("digit-0001", ["1"])
    assert len(session.store) == 0
    session.close()


def test_a_store_of_one_task_refuses_the_other(pool, tmp_path):
    from workbench import datasets

    Session(pool, tmp_path / "multi", watch=False).close()
    with pytest.raises(StoreError, match="holds 'multi_label' labels, not 'single' ones"):
        Session(datasets.digits(), tmp_path / "multi", watch=False)
    Session(datasets.digits(), tmp_path / "single", watch=False).close()
    with pytest.raises(StoreError, match="holds 'single' labels, not 'multi_label' ones"):
        Session(pool, tmp_path / "single", watch=False)
    # a single-label store's metadata is as before tasks: one from before them opens the same
    assert "task" not in read_meta(tmp_path / "single")
    assert read_meta(tmp_path / "multi")["task"] == "multi_label"


def test_rounds_train_one_vs_rest_and_the_queue_suggests_sets(pool, tmp_path):
    session = Session(pool, tmp_path / "s", watch=False, seed=0)
    assert session.strategy_name == "diverse_uncertainty"
    for item in session.peek(40):
        session.label(item, pool.true_label(item.item_id))
    session.retrain()
    row = session.history.iloc[-1]
    assert row["micro_f1"] > 0.6 and 0 <= row["hamming_loss"] < 0.2
    assert set(row["recall"]) <= set(session.class_names)
    item = session.next()
    assert isinstance(item.suggestion, LabelSet)
    assert 0.5 <= item.confidence <= 1
    assert "least sure of" in item.reason and item.strategy == "diverse_uncertainty"
    assert session.suggest(item.item_id) == (item.suggestion, item.confidence)
    # a page of sets at once, and the suggestion taken as it is
    session.label_many({q.item_id: pool.true_label(q.item_id) for q in session.peek(5)})
    session.label(item, item.suggestion)
    assert session.label_of(item.item_id) == item.suggestion
    session.close()


def test_strategies_are_those_of_the_task(pool, tmp_path):
    with pytest.raises(ValueError, match="unknown strategy 'margin' for a 'multi_label' pool"):
        Session(pool, tmp_path / "s", strategy="margin")
    for name in ("mean_uncertainty", "max_uncertainty", "random"):
        Session(pool, tmp_path / name, strategy=name, watch=False).close()


def test_simulation_reports_micro_f1_and_beats_its_start(pool):
    curve = simulate(pool, budget=60, batch=20, initial=20, seed=0)
    assert list(curve.columns[-2:]) == ["micro_f1", "hamming_loss"]
    assert curve["n_labels"].tolist() == [20, 40, 60]
    assert curve["micro_f1"].iloc[-1] > curve["micro_f1"].iloc[0]
    assert curve["micro_f1"].iloc[-1] > 0.75


def test_review_and_bulk_suggestions_work_on_sets(pool, tmp_path):
    session = Session(pool, tmp_path / "s", watch=False, seed=0)
    while len(session.labels) < 120:
        for q in session.peek(20):
            session.label(q, pool.true_label(q.item_id))
        session.retrain()
    wrong = sorted(session.labels)[3]
    truth = pool.true_label(wrong)
    session.label(wrong, [c for c in truth if c not in ("odd", "even")])  # parity left out
    table = session.review()
    assert list(table.columns) == ["item_id", "given", "suggested", "score", "confidence", "reason"]
    assert wrong in set(table["item_id"]) and table["score"].is_monotonic_decreasing
    row = table.set_index("item_id").loc[wrong]
    assert "left out (held-out p" in row["reason"] and isinstance(row["suggested"], LabelSet)
    item = session.next()
    assert item.strategy == "review" and isinstance(item.suggestion, LabelSet)
    session.confirm(item)  # keeps the set it has: a confirm event carrying it
    assert session.store.events_of({item.item_id})["action"].iloc[-1] == "confirm"
    batch = session.accept_suggestions(0.9, review=3)
    assert len(batch) > 0 and all(isinstance(s, LabelSet) for s in batch.proposed["suggestion"])
    for q in session.peek(3):
        assert q.strategy == "spot-check"
        session.label(q, pool.true_label(q.item_id))
    events = batch.accept()
    assert len(events) == len(batch) - 3
    accepted = session.store.events_of({i for i in batch.proposed["item_id"] if i not in batch.sample})
    assert set(accepted["source"]) == {"suggestion"}
    session.close()


def test_suspects_are_item_class_decisions_and_find_planted_errors(pool, tmp_path):
    """Labels chosen by the queue (as a person would label them), 6 of them with one class
    added or dropped: the planted decisions come out on top."""
    session = Session(pool, tmp_path / "s", watch=False, seed=0)
    served = [q.item_id for q in session.peek(20)]
    for item_id in served:
        session.label(item_id, pool.true_label(item_id))
    session.retrain()
    while len(session.labels) < 200:
        for q in session.peek(20):
            session.label(q, pool.true_label(q.item_id))
        session.retrain()
    rng = np.random.default_rng(0)
    planted = set()
    for item_id in rng.choice(sorted(session.labels), 6, replace=False):
        truth = pool.true_label(item_id)
        flip = ["big", "even", "odd"][int(rng.integers(3))]
        session.label(item_id, [c for c in truth if c != flip] if flip in truth else [*truth, flip])
        planted.add((item_id, flip))
    table = session.suspects()
    assert list(table.columns) == ["item_id", "class", "given", "p_held_out", "suspicion", "label",
                                   "suggested", "fold"]
    assert len(table) == 200 * 13 and table["suspicion"].is_monotonic_decreasing
    top = {(i, str(c)) for i, c in zip(table["item_id"][:12], table["class"][:12])}
    assert len(top & planted) >= 4, table.head(12)
    assert len(session.suspects(5)) == 5
    with pytest.raises(ValueError, match="folds must be an int of at least 2"):
        session.suspects(folds=1)
    session.close()


def test_history_says_what_changed_inside_a_set(pool, tmp_path, capsys):
    from workbench import cli

    session = Session(pool, tmp_path / "s", watch=False)
    session.label("001", [1, "odd"])
    session.label("002", [2, "even"])
    first = session.store.commit("two sets")
    session.label("001", [1, "big"])                # one class swapped for another
    session.label("003", [3, "odd"])
    session.store.commit("a fix and a new one")
    assert cli.main(["diff", str(tmp_path / "s"), first.id, "HEAD"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith('~ 001: ["1", "odd"] -> ["1", "big"]  [+big -odd]  (')
    assert lines[1].startswith('+ 003: (none) -> ["3", "odd"]  [+3 +odd]  (')
    session.close()


def test_a_merge_of_two_edits_of_one_set_takes_both_class_by_class(pool, tmp_path):
    """Two annotators change one item's set on two branches: each class as the side that
    changed it (no conflict); a set given on both sides to an unlabeled item stays one."""
    session = Session(pool, tmp_path / "s", watch=False)
    session.label("001", [1, "odd"])
    session.label("002", [2, "even"])
    session.store.commit("base")
    session.store.branch("review")
    session.label("001", [1, "odd", "big"])       # ours adds big
    session.label("004", [4, "even"])
    session.store.commit("ours")
    session.close()
    other = Session(pool, LabelStore.open(tmp_path / "s", branch="review"), watch=False)
    other.label("001", [7, "odd"])                 # theirs swaps 1 for 7
    other.label("004", [4])
    other.store.commit("theirs")
    other.close()
    store = LabelStore.open(tmp_path / "s")
    result = store.merge("review")
    assert list(result.conflicts["item_id"]) == ["004"]  # both labeled it afresh, differently
    store.resolve("004", '["4", "even"]')
    store.commit("merged")
    assert store.labels()["001"] == '["7", "big", "odd"]'  # the store's class order
    again = Session(pool, tmp_path / "s", watch=False)
    assert again.label_of("001") == LabelSet([7, "big", "odd"])
    again.close()


def test_agreement_on_sets_counts_a_near_miss_as_near(tmp_path):
    from workbench.loop.agreement import agreement, masi

    assert masi({"a"}, {"a"}) == 0 and masi(set(), set()) == 0
    assert masi({"a", "b"}, {"a"}) == pytest.approx(1 - 0.5 * 2 / 3)
    assert masi({"a", "b"}, {"b", "c"}) == pytest.approx(1 - 1 / 3 * 1 / 3)
    assert masi({"a"}, {"b"}) == 1
    store = LabelStore.open(tmp_path / "s", annotator="ann")
    sets = [('["1", "odd"]', '["1", "odd"]'), ('["2", "even"]', '["2", "even"]'),
            ('["5", "big", "odd"]', '["5", "odd"]'), ('["4", "even"]', '["4", "even"]'),
            ('["7", "big", "odd"]', '["7", "big", "odd"]')]
    for i, (a, b) in enumerate(sets):
        store.append(f"i{i}", a, annotator="ann")
        store.append(f"i{i}", b, annotator="bob", action="relabel")
    near = agreement(store.events(), sets=True).alpha
    exact = agreement(store.events()).alpha  # nominal: a set is one value among others
    assert exact < near < 1  # nominal alpha counts the near miss as a whole disagreement
    # kappa class by class: 7 classes agree exactly (kappa 1); "big" was given to i2 and i4 by
    # ann, to i4 by bob: agreement 4/5, chance 0.4 x 0.2 + 0.6 x 0.8 = 0.56, kappa 0.24 / 0.44
    pair = agreement(store.events(), sets=True).pairs.iloc[0]
    assert pair["class_kappa"] == pytest.approx((7 + 0.24 / 0.44) / 8)
    assert pair["cohen_kappa"] < pair["class_kappa"]  # whole sets: the near miss is a miss
    assert "class_kappa" not in agreement(store.events()).pairs  # classes: nothing to split


def test_a_label_written_outside_a_session_does_not_lock_the_store(pool, tmp_path, caplog):
    """A raw append of a bare class (or an unknown one) to a multi-label store: the session
    still opens, says which label it cannot read, and labeling the item replaces it."""
    Session(pool, tmp_path / "s", watch=False).close()
    raw = LabelStore.open(tmp_path / "s")
    raw.append("002", "odd")
    raw.append("003", '["purple"]')
    with caplog.at_level("WARNING"):
        session = Session(pool, tmp_path / "s", watch=False)
    assert session.labels == {}
    assert "holds label 'odd' for item '002', which this session cannot read" in caplog.text
    assert "label the item again to replace it" in caplog.text
    session.label("002", [2, "even"])
    assert session.store.labels()["002"] == '["2", "even"]'
    session.close()


def test_a_merge_resolution_of_a_set_must_be_a_set_of_its_classes(pool, tmp_path):
    session = Session(pool, tmp_path / "s", watch=False)
    session.label("001", [1, "odd"])
    session.store.commit("base")
    session.store.branch("other")
    session.label("004", [4])           # both label a new item, differently: a conflict
    session.store.commit("ours")
    session.close()
    other = LabelStore.open(tmp_path / "s", branch="other")
    other.append("004", '["4", "even"]')
    other.commit("theirs")
    store = LabelStore.open(tmp_path / "s")
    assert list(store.merge("other").conflicts["item_id"]) == ["004"]
    n = len(store)
    for bad in ("4", '["four"]', '{"4": 1}', "[4]"):
        with pytest.raises(StoreError, match="resolve with a JSON list of its classes"):
            store.resolve("004", bad)
    assert len(store) == n  # nothing written
    store.resolve("004", '["4", "even"]')
    store.commit("merged")
    assert store.labels()["004"] == '["4", "even"]'


def test_every_constructor_takes_task_and_a_store_reopens_its_pool(tmp_path):
    """A DataFrame, a Parquet file and a partitioned Parquet dataset with a list column of
    classes; the dataset's store reopens its session from the store alone, as multi-label."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = ["rates rise", "cup final", "budget and markets", "nothing much"] * 5
    sets = [["business"], ["sport"], ["business", "politics"], []] * 5
    frame = pd.DataFrame({"text": texts, "tags": sets})
    from_frame = Pool.from_dataframe(frame, text_column="text", label_column="tags", task="multi_label")
    assert from_frame.classes == ["business", "politics", "sport"]
    assert from_frame.true_label(from_frame.item_ids[2]) == ["business", "politics"]
    frame.to_parquet(tmp_path / "rows.parquet")
    from_file = Pool.from_file(tmp_path / "rows.parquet", text_column="text", label_column="tags",
                               task="multi_label")
    assert from_file.true_label(from_file.item_ids[3]) == []
    (tmp_path / "ds").mkdir()
    X = np.random.default_rng(0).normal(size=(20, 8)).astype(np.float32)
    pq.write_table(pa.table({"item_id": [f"i{k}" for k in range(20)], "features": list(X), "tags": sets}),
                   tmp_path / "ds" / "part-0.parquet")
    dataset = Pool.from_parquet(tmp_path / "ds", label_column="tags", features="features", task="multi_label")
    assert dataset.task == "multi_label" and dataset.true_label("i2") == ["business", "politics"]
    session = Session(dataset, tmp_path / "s", watch=False)
    session.label("i2", ["business"])
    session.close()
    again = Session.open(tmp_path / "s", watch=False)
    assert again.pool.task == "multi_label" and again.labels == {"i2": LabelSet(["business"])}
    again.close()


def test_a_head_given_without_classes_learns_the_sessions_and_resumes_from_its_arrays(pool, tmp_path):
    """MultiLabelHead(C=1) (no classes=): its columns are the session's 13 classes, in order,
    not 0..12 matched as text (which put '10'..'12' among the digits); a reopened session
    rebuilds it from its saved arrays at once, without training again."""
    from workbench.learn.multilabel import MultiLabelHead

    session = Session(pool, tmp_path / "s", learner=MultiLabelHead(C=1), watch=False, seed=0)
    assert session.learner.classes == session.class_names
    for q in session.peek(60):
        session.label(q, pool.true_label(q.item_id))
    session.retrain()
    model = session.model
    assert list(model.learner.classes_) == session.class_names
    truth = [pool.true_label(i) for i in pool.item_ids[:50]]
    predicted = model.predict(pool.X[:50])
    agree = np.mean([set(map(str, p)) == set(map(str, t)) for p, t in zip(predicted, truth)])
    assert agree > 0.5  # sets of the right classes, not shuffled columns
    session.close()
    again = Session(pool, tmp_path / "s", learner=MultiLabelHead(C=1), watch=False, seed=0)
    assert again.rounds.model is not None and again.resume.rebuild is None  # from the arrays
    np.testing.assert_allclose(again.model.predict_proba(pool.X[:5]), model.predict_proba(pool.X[:5]))
    again.close()


@pytest.mark.parametrize("learner, message", [
    ("torch", "learner 'torch' labels one class per item"),
    ("logreg", "learner 'logreg' labels one class per item"),
    (LightHead(), "LightHead labels one class per item"),
])
def test_a_learner_for_one_class_per_item_is_refused_by_name(pool, tmp_path, learner, message):
    with pytest.raises(ValueError, match=message):
        Session(pool, tmp_path / "s", learner=learner)
    assert not (tmp_path / "s").exists()


def test_the_suggestion_uses_the_learners_threshold_and_duplicates_work_on_sets(pool, tmp_path):
    from workbench.learn.multilabel import MultiLabelHead

    session = Session(pool, tmp_path / "s", learner=MultiLabelHead(threshold=0.3), watch=False)
    for q in session.peek(40):
        session.label(q, pool.true_label(q.item_id))
    session.retrain()
    item = session.next()
    assert item.suggestion == session.model.predict(pool.X[[item.position]])[0]
    table = session.duplicates()  # every label a set: the label column must stay one value per item
    from workbench.loop.duplicates import COLUMNS

    assert list(table.columns) == COLUMNS
    session.close()


def test_test_labels_of_unknown_classes_are_named(pool):
    X = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"y_test names classes \['z'\]"):
        Pool.from_arrays(X, [["a"], ["b"]], X_test=X, y_test=[["a"], ["z"]], task="multi_label")


def test_workbench_export_writes_a_multi_label_stores_bundle(tmp_path, capsys):
    """The command line: `workbench export` on a multi-label store (its pool a Parquet
    dataset, reopened from the store) takes the task's default learner and strategy."""
    import json as json_

    import pyarrow as pa
    import pyarrow.parquet as pq

    from workbench import cli

    rng = np.random.default_rng(0)
    sets = [["a"], ["b"], ["a", "b"], []] * 15
    X = rng.normal(size=(60, 6)).astype(np.float32) + np.array([[len(s), "a" in s, "b" in s, 0, 0, 0]
                                                                for s in sets], dtype=np.float32)
    (tmp_path / "ds").mkdir()
    pq.write_table(pa.table({"item_id": [f"i{k}" for k in range(60)], "features": list(X), "tags": sets}),
                   tmp_path / "ds" / "part-0.parquet")
    pool = Pool.from_parquet(tmp_path / "ds", label_column="tags", features="features", task="multi_label")
    session = Session(pool, tmp_path / "s", watch=False)
    for q in session.peek(30):
        session.label(q, pool.true_label(q.item_id))
    session.close()
    assert cli.main(["export", str(tmp_path / "s"), "--out", str(tmp_path / "bundle")]) == 0
    config = json_.loads((tmp_path / "bundle" / "config.json").read_text())
    assert config["task"] == "multi_label" and config["learner"]["type"] == "MultiLabelHead"


def test_the_map_of_a_multi_label_session_shows_sets(pool, tmp_path):
    session = Session(pool, tmp_path / "s", watch=False)
    for q in session.peek(60):
        session.label(q, pool.true_label(q.item_id))
    session.retrain()
    labeled = sorted(session.labels)[0]
    shown = ", ".join(str(c) for c in session.label_of(labeled))
    for color in ("label", "prediction", "uncertainty", "suspicion"):
        spec = session.map(color=color).chart.to_dict()
        rows = {r["item_id"]: r for data in spec["datasets"].values() for r in data}
        assert rows[labeled]["label"] == shown
        if color == "label":
            assert shown in spec["encoding"]["color"]["scale"]["domain"]
        if color == "uncertainty":
            assert 0 <= rows[labeled]["uncertainty"] <= 1
            assert spec["encoding"]["color"]["scale"]["domain"] == [0, 1]
        if color == "suspicion":
            assert 0 <= rows[labeled]["suspicion"] <= 1
    session.close()
