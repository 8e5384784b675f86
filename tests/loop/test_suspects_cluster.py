"""suspects() on a Dask cluster (a real LocalCluster of 2 worker processes): each fold is a task
on the workers, and the probabilities and the ranking equal the in-process ones; a worker
killed mid-fold has its fold run again elsewhere, and a fold that cannot finish raises
ClusterJobFailed with the session still usable and every label kept."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

from workbench import Pool, Session, datasets, logistic_regression
from workbench.data.jobs import ClusterJobFailed
from workbench.loop.cleaning import cross_fit

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

N_LABELS, FLIP_EVERY = 200, 25  # 8 of the 200 labels flipped to the next class


@pytest.fixture(scope="module")
def digits():
    return datasets.digits().subset(np.arange(600))


def labeled(session) -> Session:
    """The first N_LABELS digits labeled, every FLIP_EVERY-th one with the next class."""
    classes = list(session.pool.classes)
    for i, item in enumerate(session.pool.item_ids[:N_LABELS]):
        label = session.pool.true_label(item)
        if i % FLIP_EVERY == 0:
            label = classes[(classes.index(label) + 1) % len(classes)]
        session.label(item, label)
    return session


@pytest.fixture(scope="module")
def pair(client, digits, tmp_path_factory):
    """The same labels in a session working here and in one on the cluster."""
    folder = tmp_path_factory.mktemp("suspects")
    here = labeled(Session(digits, folder / "here", watch=False))
    there = labeled(Session(digits, folder / "there", cluster=client, watch=False))
    yield here, there
    here.close()
    there.close()


def test_suspects_on_the_cluster_equal_the_in_process_ones(client, pair):
    here, there = pair
    assert here.cluster is None and there.cluster is client
    a, b = cross_fit(here), cross_fit(there)
    assert b.item_ids == a.item_ids and b.passes == a.passes >= 2
    np.testing.assert_array_equal(b.fold, a.fold)
    np.testing.assert_allclose(b.proba, a.proba, atol=1e-6)
    for x, y in zip(a.by_pass, b.by_pass):
        np.testing.assert_allclose(y, x, atol=1e-6)
    assert b.pruned == a.pruned
    table_here, table_there = here.suspects(), there.suspects()
    assert list(table_there.item_id) == list(table_here.item_id)  # the same ranking
    np.testing.assert_allclose(table_there.score, table_here.score, atol=1e-6)
    # the flips are found (what suspects() is for), on the cluster as here
    flipped = {here.pool.item_ids[i] for i in range(0, N_LABELS, FLIP_EVERY)}
    assert len(flipped & set(table_there.item_id[:len(flipped)])) >= len(flipped) - 2


def test_a_learner_without_unlabeled_rows_or_graph_folds_on_the_cluster_too(client, digits, tmp_path):
    here = labeled(Session(digits, tmp_path / "here", learner=logistic_regression(), watch=False))
    there = labeled(Session(digits, tmp_path / "there", learner=logistic_regression(), cluster=client,
                            watch=False))
    a, b = cross_fit(here, passes=1), cross_fit(there, passes=1)
    np.testing.assert_allclose(b.proba, a.proba, atol=1e-6)
    here.close()
    there.close()


def test_multi_label_suspects_fold_on_the_cluster_with_the_same_table(client, digits, tmp_path):
    # sets of a digit and its parity, every 10th with the parity wrong: decisions to doubt
    sets = [[str(y), "odd" if (y % 2) != (i % 10 == 0) else "even"] for i, y in enumerate(digits.y)]
    pool = Pool.from_arrays(digits.X, sets, task="multi_label")
    here = Session(pool, tmp_path / "here", watch=False)
    there = Session(pool, tmp_path / "there", cluster=client, watch=False)
    for session in (here, there):
        session.label_many({i: pool.true_label(i) for i in pool.item_ids[:150]})
    a, b = here.suspects(), there.suspects()
    assert list(zip(b.item_id, b["class"])) == list(zip(a.item_id, a["class"]))  # the same ranking
    np.testing.assert_allclose(b.p_held_out, a.p_held_out, atol=1e-6)
    wrong = {pool.item_ids[i] for i in range(0, 150, 10)}
    top = set(b.item_id[b["class"].isin(["odd", "even"])][:len(wrong)])
    # chance: 15 of the 300 parity decisions' items, x 2 decisions each: 1.5 in the top 15
    assert len(wrong & top) >= 5
    here.close()
    there.close()


def _kill_a_worker_running_a_fold(client, timeout: float = 120) -> int:
    pids = client.run(os.getpid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = [w for w, keys in client.processing().items()
                if any(str(k).startswith("workbench-suspects-folds") for k in keys)]
        if busy:
            os.kill(pids[busy[0]], signal.SIGKILL)
            return pids[busy[0]]
        time.sleep(0.02)
    raise AssertionError("no worker ever ran a fold")


def _in_thread(fn):
    out = {}

    def run():
        try:
            out["result"] = fn()
        except BaseException as e:  # handed to the test's thread
            out["error"] = e

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def test_a_worker_killed_mid_fold_the_fold_runs_again_elsewhere(client, pair):
    here, there = pair
    expected = cross_fit(here)
    job, out = _in_thread(lambda: cross_fit(there))
    killed = _kill_a_worker_running_a_fold(client)
    job.join(180)
    assert not job.is_alive() and "error" not in out, out.get("error")
    np.testing.assert_allclose(out["result"].proba, expected.proba, atol=1e-6)
    assert killed not in client.run(os.getpid).values()  # the nanny started a new process
    client.wait_for_workers(2, timeout=180)


def test_a_fold_that_cannot_finish_is_named_and_the_session_goes_on(client, pair):
    here, there = pair
    labels_before = dict(there.labels)
    scheduler = client.cluster_.scheduler
    before = scheduler.allowed_failures
    scheduler.allowed_failures = 0  # the first death of a fold's worker fails the fold
    try:
        job, out = _in_thread(lambda: there.suspects())
        _kill_a_worker_running_a_fold(client)
        job.join(180)
    finally:
        scheduler.allowed_failures = before
    error = out.get("error")
    assert isinstance(error, ClusterJobFailed), out
    assert error.what == "suspects folds" and error.part.startswith("fold ")
    message = str(error)
    for words in ("suspects folds failed on the Dask cluster", error.part, "held-out labels",
                  "What to do", "cluster=False", "labels and the store are untouched"):
        assert words in message
    client.wait_for_workers(2, timeout=180)
    # nothing lost, and the session works on: labeling, and suspects() on the cluster again
    assert dict(there.labels) == labels_before
    item = there.pool.item_ids[N_LABELS]
    there.label(item, there.pool.true_label(item))
    assert len(there.labels) == N_LABELS + 1
    table = there.suspects()
    assert len(table) == N_LABELS + 1
    there.undo()  # the pair's labels as they were, for any test after this one
    assert dict(there.labels) == labels_before
