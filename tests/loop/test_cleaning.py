"""Suspected mislabels (workbench.loop.cleaning): found out of sample, ranked, explained."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from workbench import Pool, Session, datasets
from workbench.loop.cleaning import COLUMNS, cross_fit, suspects, suspicion

N_LABELS, N_FLIPS = 600, 30


@pytest.fixture(scope="module")
def digits():
    return datasets.digits()


def planted(pool, seed=0, n_labels=N_LABELS, n_flips=N_FLIPS):
    """Labels for `n_labels` random digits, `n_flips` of them flipped to another class."""
    rng = np.random.default_rng(seed)
    y = np.asarray(pool.y).astype(int)
    chosen = rng.choice(len(pool), n_labels, replace=False)
    noisy = y[chosen].copy()
    noisy[:n_flips] = (noisy[:n_flips] + rng.integers(1, 10, n_flips)) % 10
    ids = list(pool.item_ids[chosen])
    return dict(zip(ids, noisy.tolist())), set(ids[:n_flips])


@pytest.fixture(scope="module")
def noisy_digits(digits, tmp_path_factory):
    """A default session (LightHead) with 600 labels, 30 of them wrong, and its suspects."""
    labels, flipped = planted(digits)
    session = Session(digits, tmp_path_factory.mktemp("noisy") / "s", watch=False)
    session.label_many(labels)
    table = suspects(session)
    yield session, table, flipped
    session.close()


def test_planted_flips_on_the_digits_are_found(noisy_digits):
    session, table, flipped = noisy_digits
    top = suspects(session, k=N_FLIPS)
    assert np.mean([i in flipped for i in top["item_id"]]) >= 0.9
    assert len(table) == N_LABELS  # k=None: every label, ranked
    assert table["item_id"].head(N_FLIPS).tolist() == top["item_id"].tolist()


def test_the_table_is_ranked_and_explained(noisy_digits, digits):
    session, table, flipped = noisy_digits
    assert list(table.columns) == COLUMNS
    assert (np.diff(table["score"].to_numpy()) <= 0).all()
    assert table["item_id"].is_unique and set(table["item_id"]) == set(session.labels)
    first = table.iloc[0]
    assert first["given"] == session.labels[first["item_id"]]
    assert first["suggested"] != first["given"] and first["score"] > 0
    assert first["suggested"] == digits.true_label(first["item_id"])
    assert 0.5 < first["confidence"] <= 1
    assert first["annotator"] == session.annotator and table["time"].notna().all()
    assert str(table["time"].dtype).endswith("UTC]")
    assert first["reason"].startswith("a model trained without this label (5-fold cross-fitting) "
                                      f"puts {first['suggested']} at ")
    assert f"and the given {first['given']} at " in first["reason"]
    last = table.iloc[-1]
    assert last["suggested"] == last["given"] and "agrees" in last["reason"]
    assert 0 <= last["score"] < np.log(2) < first["score"]  # the loss, -log p[given]: the default
    assert table.attrs["method"] == "loss" and table.attrs["passes"] in (1, 2, 3)
    assert table.attrs["n_labels"] == N_LABELS


def test_a_wrong_label_is_judged_by_a_model_that_never_saw_it(noisy_digits, digits):
    """The flipped items' out-of-sample probability of their true class stays high, which
    in-sample loss (a model fitted to the wrong label) would not give."""
    session, table, flipped = noisy_digits
    rows = table[table["item_id"].isin(flipped)]
    truth = [digits.true_label(i) for i in rows["item_id"]]
    assert np.mean(rows["suggested"].to_numpy() == np.array(truth, dtype=object)) >= 0.9
    assert rows["confidence"].median() > 0.8


def test_a_memorising_learner_still_finds_the_flip(tmp_path, digits):
    """1-nearest-neighbour recalls every training label exactly: in sample it would never
    suspect anything. Out of sample it suggests the nearest other item's label."""
    labels, _ = planted(digits, seed=1, n_flips=0)
    item = next(iter(labels))
    truth = labels[item]
    labels[item] = (truth + 1) % 10
    session = Session(digits, tmp_path / "s", watch=False, learner=KNeighborsClassifier(1))
    session.label_many(labels)
    table = suspects(session)
    row = table.set_index("item_id").loc[item]
    assert row["given"] == (truth + 1) % 10 and row["suggested"] == truth
    assert row["confidence"] == 1.0 and row["score"] == table["score"].max()
    assert suspects(session, method="margin").set_index("item_id").loc[item, "score"] == 1.0


class Spy(LogisticRegression):
    """Records, per fitted copy, the rows it was trained on and the rows it scored."""

    seen: list = []

    def fit(self, X, y, sample_weight=None):
        self.trained_ = {row.tobytes() for row in np.asarray(X)}
        Spy.seen.append(self)
        return super().fit(X, y, sample_weight)

    def predict_proba(self, X):
        self.scored_ = {row.tobytes() for row in np.asarray(X)}
        return super().predict_proba(X)


def blobs(n=240, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=4, size=(3, 5))
    y = rng.integers(0, 3, n)
    X = (centers[y] + rng.normal(size=(n, 5))).astype(np.float32)
    names = np.array(["cat", "dog", "eel"])
    return Pool.from_arrays(X, names[y])


def test_no_item_is_scored_by_a_model_trained_on_it(tmp_path):
    pool = blobs()
    session = Session(pool, tmp_path / "s", watch=False, learner=Spy(max_iter=1000))
    labels = {item: pool.true_label(item) for item in pool.item_ids[:200]}
    labels[pool.item_ids[0]] = "eel" if labels[pool.item_ids[0]] != "eel" else "cat"
    session.label_many(labels)
    Spy.seen = []
    table = suspects(session)
    assert len(Spy.seen) == 5 * table.attrs["passes"]  # 5 folds, one to three passes
    labeled_rows = {pool.X[pool.position(i)].tobytes() for i in labels}
    scored = set()
    for model in Spy.seen:
        assert not model.trained_ & model.scored_
        scored |= model.scored_
    assert scored == labeled_rows  # and every label was scored
    assert set(table["given"]) <= {"cat", "dog", "eel"}  # string classes come back as such
    assert table["item_id"].iloc[0] == pool.item_ids[0]


def test_a_plain_logistic_regression_learner_works_too(tmp_path, digits):
    labels, flipped = planted(digits, seed=2)
    session = Session(digits, tmp_path / "s", watch=False, learner=LogisticRegression(max_iter=1000))
    session.label_many(labels)
    top = suspects(session, k=N_FLIPS)
    assert list(top.columns) == COLUMNS and len(top) == N_FLIPS
    assert np.mean([i in flipped for i in top["item_id"]]) >= 0.8


def test_too_few_labels_say_how_many_are_needed(tmp_path):
    pool = blobs(30)
    session = Session(pool, tmp_path / "s", watch=False, learner=LogisticRegression())
    with pytest.raises(ValueError, match=r"at least 2 labels in each of at least 2 classes .* "
                                         r"the session has 0 label\(s\) \(none\)"):
        suspects(session)
    cats = [i for i in pool.item_ids if pool.true_label(i) == "cat"]
    dogs = [i for i in pool.item_ids if pool.true_label(i) == "dog"]
    session.label_many({cats[0]: "cat", cats[1]: "cat", dogs[0]: "dog"})
    with pytest.raises(ValueError, match=r"the session has 3 label\(s\) \(cat: 2, dog: 1\)"):
        suspects(session)
    session.label(dogs[1], "dog")  # now 2 + 2: enough
    assert len(suspects(session)) == 4


def test_bad_arguments_are_named(noisy_digits):
    session = noisy_digits[0]
    for k in (0, -3, 2.5, "3", True):
        with pytest.raises(ValueError, match=f"k must be a positive int or None, got {k!r}"):
            suspects(session, k)
    with pytest.raises(ValueError, match="method must be one of 'margin', 'loss', "
                                         "'confident_learning', got 'entropy'"):
        suspects(session, method="entropy")
    with pytest.raises(ValueError, match="folds must be an int of at least 2, got 1"):
        suspects(session, folds=1)
    for passes in (0, 1.5, True):
        with pytest.raises(ValueError, match=f"passes must be an int of at least 1, got {passes!r}"):
            suspects(session, passes=passes)
    assert len(suspects(session, np.int64(3))) == 3


def test_a_class_with_one_label_is_left_out_not_accused(tmp_path):
    pool = blobs(120)
    session = Session(pool, tmp_path / "s", watch=False, learner=LogisticRegression(max_iter=1000))
    labels = {i: pool.true_label(i) for i in pool.item_ids if pool.true_label(i) != "eel"}
    eel = next(i for i in pool.item_ids if pool.true_label(i) == "eel")
    session.label_many({**labels, eel: "eel"})
    table = suspects(session)
    assert eel not in set(table["item_id"]) and len(table) == len(labels)
    assert table.attrs["unscored"] == {eel: "the only label of class eel: nothing to compare it with"}
    assert table.attrs["n_labels"] == len(labels) + 1


def test_a_fixed_label_leaves_the_ranking_at_once(tmp_path, digits):
    """Nothing is cached: relabeling the top suspect to its suggestion clears it."""
    labels, flipped = planted(digits, seed=3, n_labels=300, n_flips=10)
    session = Session(digits, tmp_path / "s", watch=False, learner=LogisticRegression(max_iter=1000))
    session.label_many(labels)
    top = suspects(session, k=1).iloc[0]
    session.label(top["item_id"], top["suggested"])
    again = suspects(session).set_index("item_id")
    assert again.loc[top["item_id"], "given"] == top["suggested"]
    assert again.loc[top["item_id"], "score"] < np.log(2)  # the given label now gets over half
    assert again.index[0] != top["item_id"]


def test_audit_labels_are_judged_and_say_so(tmp_path, digits):
    session = Session(digits, tmp_path / "s", watch=False, learner=LogisticRegression(max_iter=1000),
                      audit_every=5)
    shown = session.peek(40)
    audit = [q.item_id for q in shown if q.strategy == "audit"]
    assert audit
    session.label_many({q.item_id: digits.true_label(q.item_id) for q in shown})
    labels, _ = planted(digits, seed=4, n_labels=200, n_flips=0)
    session.label_many({i: v for i, v in labels.items() if i not in session.labels})
    table = suspects(session).set_index("item_id")
    assert set(audit) <= set(table.index)
    for item in audit:
        assert table.loc[item, "reason"].endswith(
            "; an audit label: changing it changes the measured accuracy")
    others = table.drop(index=audit)
    assert not others["reason"].str.contains("audit").any()


def test_scores_from_probabilities():
    proba = np.array([[0.9, 0.05, 0.05],   # agrees
                      [0.1, 0.8, 0.1],     # given 0: suspect
                      [0.4, 0.35, 0.25]])  # given 1, close call
    given = np.array([0, 0, 1])
    margin = suspicion(proba, given, "margin")
    assert np.allclose(margin, [0.05 - 0.9, 0.8 - 0.1, 0.4 - 0.35])
    assert np.allclose(suspicion(proba, given, "loss"), -np.log([0.9, 0.1, 0.35]))
    # thresholds: class 0: mean(0.9, 0.1) = 0.5; class 1: 0.35; row 1 (0.8 >= 0.35) is an
    # issue, row 2 (0.4 < 0.5) is not
    cl = suspicion(proba, given, "confident_learning")
    assert cl[1] >= 1 > cl[2] and cl[0] < 1 and np.argmax(cl) == 1
    with pytest.raises(ValueError, match="method must be one of"):
        suspicion(proba, given, "nope")


def test_cross_fit_gives_each_label_one_held_out_fold(noisy_digits):
    session = noisy_digits[0]
    fit = cross_fit(session, passes=1)
    assert sorted(np.unique(fit.fold).tolist()) == [0, 1, 2, 3, 4]
    sizes = np.bincount(fit.fold)
    assert sizes.max() - sizes.min() <= 1  # balanced, and stratified by label:
    for label in range(10):
        per_fold = np.bincount(fit.fold[fit.given == label], minlength=5)
        assert per_fold.max() - per_fold.min() <= 1
    assert np.allclose(fit.proba.sum(axis=1), 1)
    assert isinstance(fit.proba, np.ndarray) and pd.Index(fit.item_ids).is_unique


def test_each_pass_leaves_out_what_the_pass_before_doubted(tmp_path):
    """Pass p+1 trains without the labels pass p's models prefer another class for; the
    passes are deterministic, so a shorter run is a prefix of a longer one."""
    pool = blobs(300, seed=5)
    session = Session(pool, tmp_path / "s", watch=False, learner=LogisticRegression(max_iter=1000))
    names = ["cat", "dog", "eel"]
    labels = {i: pool.true_label(i) for i in pool.item_ids}
    for i in pool.item_ids[:30]:  # 10% flipped
        labels[i] = names[(names.index(labels[i]) + 1) % 3]
    session.label_many(labels)
    three = cross_fit(session)  # the default: up to 3 passes
    assert three.passes == len(three.by_pass) and 2 <= three.passes <= 3
    assert np.array_equal(three.by_pass[-1], three.proba)
    one, two = cross_fit(session, passes=1), cross_fit(session, passes=2)
    assert one.passes == 1 and one.pruned == [] and np.array_equal(one.proba, three.by_pass[0])
    assert np.array_equal(two.proba, three.by_pass[1])
    doubted = {i for i, d in zip(two.item_ids, suspicion(two.proba, two.given) > 0) if d}
    assert three.pruned and set(three.pruned) <= doubted
    assert suspects(session).attrs["passes"] == three.passes


def test_passes_stop_once_nothing_new_is_doubted(tmp_path):
    """Clean, well separated labels: the first pass doubts nothing, so a second pass would
    repeat it; one pass is made whatever `passes` allows."""
    pool = blobs(150)
    session = Session(pool, tmp_path / "s", watch=False, learner=LogisticRegression(max_iter=1000))
    session.label_many({i: pool.true_label(i) for i in pool.item_ids})
    fit = cross_fit(session, passes=5)
    assert fit.passes == 1 and len(fit.by_pass) == 1 and fit.pruned == []


def test_every_number_on_a_card_comes_from_one_computation(noisy_digits):
    """The reason's percentages are the suggested class's confidence and the given label's
    probability, from the same out-of-sample probabilities as the score."""
    session, table, flipped = noisy_digits
    fit = cross_fit(session)
    proba = dict(zip(fit.item_ids, fit.proba))
    for _, row in table.head(40).iterrows():
        p = proba[row["item_id"]]
        given, best = int(row["given"]), int(row["suggested"])
        assert best == int(p.argmax()) and row["confidence"] == pytest.approx(p[best])
        score = suspicion(p[None], np.array([given]), table.attrs["method"])[0]
        assert row["score"] == pytest.approx(score)
        if best != given:
            assert f"puts {best} at {p[best]:.0%} and the given {given} at {p[given]:.0%}" in row["reason"]
        else:
            assert f"agrees with the given {given} ({p[given]:.0%};" in row["reason"]


def _benchmark():
    """benchmarks/label_noise.py, imported by path (benchmarks/ is not a package)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "label_noise.py"
    spec = importlib.util.spec_from_file_location("label_noise_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_alternatives_vote_and_calibrate():
    bench = _benchmark()
    features = np.array([[1, 0], [0.9, 0.1], [0.95, 0.05], [0, 1], [0.1, 0.9]], dtype=float)
    given = np.array([0, 0, 1, 1, 1])
    vote = bench.knn_vote(features, given, 2, left_out=np.array([], dtype=np.int64), k=2)
    assert np.allclose(vote.sum(axis=1), 1)
    assert vote[2].argmax() == 0  # its two nearest others are labeled 0: they outvote its 1
    assert vote[3].argmax() == 1
    left = bench.knn_vote(features, given, 2, left_out=np.array([0, 1]), k=2)
    assert left[2].argmax() == 1  # with the 0s left out, only 1s are near enough to vote
    proba = np.array([[0.6, 0.4], [0.8, 0.2], [0.3, 0.7]])
    cal = bench.calibrated(proba, np.array([0, 0, 1]))  # t = (0.7, 0.7): no change
    assert np.allclose(cal, proba)
    cal = bench.calibrated(proba, np.array([0, 1, 1]))  # t = (0.6, 0.45): class 1 lifted
    assert np.allclose(cal.sum(axis=1), 1) and (cal[:, 1] > proba[:, 1]).all()


@pytest.mark.slow
def test_the_benchmark_ranks_the_labels_the_queue_chose(tmp_path, digits):
    """The actively chosen setting: the session labels what its queue serves, the flips are
    ranked by suspects() and undone before labeling goes on."""
    bench = _benchmark()
    confused = (np.arange(10) + 1) % 10  # class c is flipped to c + 1
    rows = bench.run_active(digits, 0, confused, tmp_path, tmp_path / "cache", sizes=(60, 80))
    assert [(r["n_labels"], r["kind"]) for r in rows] == [
        (60, "uniform"), (60, "class_conditional"), (80, "uniform"), (80, "class_conditional")]
    for row in rows:
        assert row["n_flips"] == round(0.07 * row["n_labels"])
        assert row["ours"] == row["candidates"]["loss/3"]
        assert set(row["served_as"]) <= {"cold-start", "audit", "diverse_margin"}
        assert 0 <= row["ours"]["precision_at_k"] <= 1
        assert {"folds=10/loss", "knn 0.3/margin", "cl thresholds/loss"} <= set(row["alternatives"])
    assert sum(rows[-1]["served_as"].values()) == 80 and rows[-1]["served_as"].get("diverse_margin")


def test_a_folds_rows_are_freed_as_soon_as_it_is_done(noisy_digits):
    """What a fold is fitted on is freed when the fold drops it, without waiting for the cycle
    collector: a recorder that referred to itself held every fold's copy of the unlabeled
    rows until the collector ran (7.9 GB at 1,000,000 items)."""
    import gc
    import weakref

    from workbench.loop.cleaning_folds import fit_arguments

    session, _, _ = noisy_digits
    labels = session.labels
    ids = list(labels)
    positions = session.pool.positions(ids)
    unlabeled = np.flatnonzero(~session.pool.item_ids.isin(ids))
    gc.disable()
    try:
        X, y, extra = fit_arguments(session.inputs, session.learner, positions,
                                    np.asarray([labels[i] for i in ids]), unlabeled)
        assert len(extra["X_unlabeled"]) == len(unlabeled)
        rows = weakref.ref(extra["X_unlabeled"])
        del X, y, extra
        assert rows() is None
    finally:
        gc.enable()


@pytest.mark.parametrize("task", ["multi_label", "spans"])
def test_k_is_checked_alike_for_every_task(tmp_path, task):
    """suspects(k) of a multi-label or spans session once took head(int(k)): k=-1 dropped the
    last row, 2.5 gave two; every task now says what k must be, before any model is fitted."""
    from workbench import Pool, Session

    if task == "spans":
        pool = Pool.from_texts(["Ann met Bob", "Cy ran"], task="spans", classes=["PER"])
    else:
        pool = Pool.from_arrays(np.zeros((4, 2)), y=[["a"], ["b"], ["a", "b"], []], task="multi_label")
    session = Session(pool, tmp_path / "store", watch=False)
    for k in (0, -1, 2.5, "3", True):
        with pytest.raises(ValueError, match=f"k must be a positive int or None, got {k!r}"):
            session.suspects(k)
    session.close()
