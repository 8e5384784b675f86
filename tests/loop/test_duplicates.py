"""Duplicates and leakage: exact copies by their bytes (and normalised text), near copies
where the learner looks, and evaluation items that copy a training label."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench import Pool, Session, datasets, logistic_regression
from workbench.learn.queue import audit_reserve
from workbench.loop import duplicates as D
from workbench.loop.duplicates import NEAR_FRACTION, duplicates, normalise_text


@pytest.fixture(scope="module")
def digits():
    return datasets.digits()


def planted(digits, *, exact=(3, 50, 700), near=(10, 400, 1200), noise=0.02, seed=0):
    """The digits plus exact copies and noisy copies (2% pixel noise) of some of them."""
    rng = np.random.default_rng(seed)
    X = digits.X
    copies = [X[i] for i in exact] + [np.clip(X[i] + rng.normal(0, noise, X[i].shape), 0, 1)
                                      for i in near]
    ids = [*digits.item_ids, *(f"copy-{i}" for i in exact), *(f"near-{i}" for i in near)]
    y = np.concatenate([digits.y, digits.y[list(exact)], digits.y[list(near)]])
    return Pool.from_arrays(np.concatenate([X, np.asarray(copies, np.float32)]), y, item_ids=ids,
                            name="digits+copies")


def test_no_duplicates_in_the_clean_digits_at_the_default_threshold(digits, tmp_path):
    session = Session(digits, tmp_path / "s", watch=False)
    table = duplicates(session)
    assert table.empty and list(table.columns) == D.COLUMNS
    attrs = table.attrs
    assert attrs["threshold"] == pytest.approx(NEAR_FRACTION * attrs["median_nn_distance"])
    assert attrs["median_nn_distance"] > 0 and attrs["n_items"] == len(digits)
    session.close()


def test_planted_exact_and_near_copies_are_found(digits, tmp_path):
    pool = planted(digits)
    session = Session(pool, tmp_path / "s", watch=False)
    table = duplicates(session)
    exact = table[table.kind == "exact"]
    near = table[table.kind == "near"]
    assert sorted(zip(exact.item_id, exact.duplicate_of)) == [
        ("copy-3", "digit-0003"), ("copy-50", "digit-0050"), ("copy-700", "digit-0700")]
    assert (exact.distance < 1e-5).all()  # the same pixels: the same features, up to rounding
    assert sorted(zip(near.item_id, near.duplicate_of)) == [
        ("near-10", "digit-0010"), ("near-1200", "digit-1200"), ("near-400", "digit-0400")]
    assert (near.distance > 0).all() and (near.distance <= table.attrs["threshold"]).all()
    # nothing labeled yet: audit items (the reserve) may have twins, none leaks
    assert not table.leakage.any() and set(table.item_in) <= {"unlabeled", "audit"}
    assert table.label.isna().all()  # nothing labeled yet
    # near=False: the exact ones only; a tiny threshold: no near ones
    assert set(duplicates(session, near=False).kind) == {"exact"}
    assert set(duplicates(session, threshold=1e-6).kind) == {"exact"}
    session.close()


def test_a_labeled_copy_is_listed_against_its_training_twin(digits, tmp_path):
    pool = planted(digits)
    session = Session(pool, tmp_path / "s", watch=False, learner=logistic_regression(),
                      audit_every=None)
    session.label("copy-3", pool.true_label("copy-3"))  # the copy is labeled, the original not
    table = duplicates(session)
    row = table[table.item_id == "digit-0003"].iloc[0]  # the training item is the representative
    assert row.duplicate_of == "copy-3" and row.duplicate_in == "train"
    assert row.duplicate_label == pool.true_label("copy-3") and row.item_in == "unlabeled"
    assert not row.leakage
    session.close()


def test_a_test_split_copy_of_a_training_label_is_leakage(digits, tmp_path):
    train, test = digits.train_test_split(0.3, seed=0)
    X_test, y_test = test.X.copy(), test.y.copy()
    rng = np.random.default_rng(1)
    # test row 0: an exact copy of pool item 5, row 1: a noisy copy of item 6, row 2: an exact
    # copy of item 7, which stays unlabeled
    X_test[0] = train.X[5]
    X_test[1] = np.clip(train.X[6] + rng.normal(0, 0.02, train.X[6].shape), 0, 1)
    X_test[2] = train.X[7]
    y_test[:3] = train.y[5:8]
    session = Session(train, tmp_path / "s", watch=False, test=(X_test, y_test))
    for position in (5, 6):
        item = train.item_ids[position]
        session.label(item, train.true_label(item))
    table = duplicates(session).set_index("item_id")
    assert table.loc["test-0", ["duplicate_of", "kind", "leakage"]].tolist() == [
        train.item_ids[5], "exact", True]
    assert table.loc["test-1", ["duplicate_of", "kind", "leakage"]].tolist() == [
        train.item_ids[6], "near", True]
    assert table.loc["test-2", ["duplicate_of", "kind", "leakage"]].tolist() == [
        train.item_ids[7], "exact", False]  # would leak once item 7 is labeled
    assert table.loc["test-0", "label"] == y_test[0] and table.loc["test-0", "item_in"] == "test"
    assert table.loc["test-0", "duplicate_label"] == train.y[5]
    leaks = duplicates(session)
    assert leaks.leakage.iloc[:2].all() and leaks.attrs["n_test"] == len(X_test)  # leaks first
    session.close()


def test_an_audit_item_that_copies_a_training_label_is_leakage(digits, tmp_path):
    base = digits.subset(np.arange(300))
    ids = list(base.item_ids)
    reserve = audit_reserve(pd.Index(ids + ["twin"]), 10)
    audited = int(reserve[0])  # an item kept for the audit; its twin is not in the reserve
    assert len(ids) not in reserve
    pool = Pool.from_arrays(np.concatenate([base.X, base.X[audited][None]]),
                            np.append(base.y, base.y[audited]), item_ids=ids + ["twin"])
    session = Session(pool, tmp_path / "s", watch=False, learner=logistic_regression(),
                      audit_every=10)
    session.label("twin", pool.true_label("twin"))  # a training label (role "manual")
    row = duplicates(session).iloc[0]
    assert (row.item_id, row.duplicate_of, row.kind) == (ids[audited], "twin", "exact")
    assert (row.item_in, row.duplicate_in, row.leakage) == ("audit", "train", True)
    session.close()


def test_texts_that_differ_only_in_case_and_spacing_are_exact_duplicates(tmp_path):
    texts = ["Hello  World", "hello world", "Another text", "something else entirely",
             "a fourth one", "and a fifth"]
    embeddings = np.random.default_rng(0).normal(size=(len(texts), 8)).astype(np.float32)
    pool = Pool.from_texts(texts, ["a", "a", "b", "b", "a", "b"], embeddings=embeddings)
    session = Session(pool, tmp_path / "s", watch=False, learner=logistic_regression())
    table = duplicates(session, near=False)
    assert table[["item_id", "duplicate_of", "kind"]].values.tolist() == [["1", "0", "exact"]]
    assert normalise_text("  Ｈello\tWORLD ") == "hello world"
    session.close()


def test_the_forest_finds_close_pairs_in_a_big_pool():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20_000, 32)).astype(np.float32)
    X[10_000:10_020] = X[:20] + rng.normal(0, 0.05, (20, 32)).astype(np.float32)
    assert len(X) ** 2 > D.BRUTE_MAX_PAIRS  # the forest, not every pair
    i, j = D._close_pairs(X, 1.0)
    assert sorted(zip(i.tolist(), j.tolist())) == [(k, 10_000 + k) for k in range(20)]
    # a second set against the pool (a test split)
    Q = X[[3, 7, 11]] + rng.normal(0, 0.05, (3, 32)).astype(np.float32)
    Q = np.concatenate([Q, rng.normal(size=(5_000, 32)).astype(np.float32)])
    qi, pj = D._close_pairs(Q, 1.0, X)
    assert sorted(zip(qi.tolist(), pj.tolist())) == sorted(
        [(0, 3), (0, 10_003), (1, 7), (1, 10_007), (2, 11), (2, 10_011)])
    # every pair compared (small) gives the same as the forest
    small = X[:3000]
    bi, bj = D._brute_pairs(small, 6.0, None)
    fi, fj = D._forest_pairs(small, 6.0)
    assert set(zip(fi.tolist(), fj.tolist())) <= set(zip(bi.tolist(), bj.tolist()))


def test_bad_threshold(digits, tmp_path):
    session = Session(digits.subset(np.arange(50)), tmp_path / "s", watch=False,
                      learner=logistic_regression())
    with pytest.raises(ValueError, match="threshold must be a distance"):
        duplicates(session, threshold=-1)
    session.close()
