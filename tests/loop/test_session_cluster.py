"""A Session on a Dask cluster (a real LocalCluster of 2 worker processes): its representation
is built on the workers and equals the in-process one; a worker killed while it is built
loses no label and the session goes on; a scheduler that cannot be reached is named, or, when
asked, the session works in this process."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from workbench import LabelStore, Pool, Session, datasets, logistic_regression
from workbench.data import representation as R
from workbench.data.jobs import ClusterFallbackWarning, ClusterJobFailed, ClusterUnreachable

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from standins import digits_28, digits_base  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]


@pytest.fixture(scope="module")
def digits():
    return datasets.digits().subset(np.arange(600))


def label_truth(session, n):
    for item in session.peek(n):
        session.label(item.item_id, session.pool.true_label(item.item_id))


def free_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def test_a_session_on_the_cluster_labels_trains_and_returns_its_representation(client, digits, tmp_path):
    session = Session(digits, tmp_path / "labels", cluster=client, watch=False)
    rep = session.representation()
    assert session.cluster is client and rep.has_graph and rep.features.shape == (600, 128)
    here = R.build(digits)
    np.testing.assert_allclose(rep.features, here.features, atol=1e-6)
    label_truth(session, 30)
    session.retrain()
    assert len(session.history) == 1 and session.model is not None
    session.close()
    assert client.status == "running"  # the user's client is theirs: the session leaves it open
    # a learner that reads the pool's own features: no representation is built
    plain = Session(digits, tmp_path / "plain", cluster=client, learner=logistic_regression(), watch=False)
    assert plain.representation() is None
    plain.close()


def test_the_environment_names_the_scheduler(client, digits, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_DASK_SCHEDULER", client.scheduler.address)
    session = Session(digits, tmp_path / "labels", watch=False)
    assert session.cluster is not None and session.cluster.scheduler.address == client.scheduler.address
    assert session.representation().has_graph
    opened = session.cluster
    session.close()
    assert opened.status == "closed"  # a client the session opened itself, it closes


def test_bad_input_is_refused_before_a_client_is_opened_and_a_refusing_store_closes_it(
        client, digits, tmp_path):
    def clients_on_the_scheduler():
        return client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.clients))

    before = clients_on_the_scheduler()
    address = free_address()  # unreachable: were it connected first, ClusterUnreachable would win
    with pytest.raises(ValueError, match="no-such-strategy"):
        Session(digits, tmp_path / "labels", cluster=address, strategy="no-such-strategy", watch=False)
    assert not (tmp_path / "labels").exists()
    Session(digits, tmp_path / "bound", classes=list(range(10)), watch=False).close()
    with pytest.raises(ValueError, match="classes"):  # the store was made for other classes
        Session(digits, tmp_path / "bound", classes=["a", "b"], cluster=client.scheduler.address,
                watch=False)
    deadline = time.monotonic() + 10
    while clients_on_the_scheduler() > before and time.monotonic() < deadline:
        time.sleep(0.1)  # the scheduler hears of a closed client shortly after
    assert clients_on_the_scheduler() == before


def test_an_unreachable_scheduler_is_named_before_the_store_is_touched(digits, tmp_path):
    import dask
    import distributed  # noqa: F401  first: config.set would drop the defaults it loads on import

    address = free_address()
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        with pytest.raises(ClusterUnreachable, match=address.replace(".", r"\.")):
            Session(digits, tmp_path / "labels", cluster=address, watch=False)
        assert not (tmp_path / "labels").exists()
        with pytest.warns(ClusterFallbackWarning, match="in this process"):
            session = Session(digits, tmp_path / "labels", cluster=address, fallback="in-process",
                              watch=False)
    assert session.cluster is None
    np.testing.assert_allclose(session.representation().features, R.build(digits).features, atol=1e-6)
    session.close()


def test_a_worker_killed_while_the_representation_is_built_loses_no_label(client, tmp_path):
    X8, y8 = digits_base()
    X, y = digits_28(X8, y8, 4000, seed=7)
    pool = Pool.from_arrays(X, y, name="killed")
    scheduler = client.cluster_.scheduler
    before = scheduler.allowed_failures
    scheduler.allowed_failures = 0  # the first death fails the job: the worst case
    try:
        session = Session(pool, tmp_path / "labels", cluster=client, watch=False)
        pids = client.run(os.getpid)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            busy = [w for w, keys in client.processing().items()
                    if any(str(k).startswith("workbench-encoding") for k in keys)]
            if busy:
                os.kill(pids[busy[0]], signal.SIGKILL)
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the representation was never encoded on the workers")
        label_truth(session, 12)  # labeling goes on meanwhile
        with pytest.raises(ClusterJobFailed, match=r"encoding .* failed on the Dask cluster.*rows \d+-\d+"):
            session.representation()
        assert session.inputs.state()["status"] in ("building", "failed")
        label_truth(session, 12)
    finally:
        scheduler.allowed_failures = before
    client.wait_for_workers(2, timeout=180)
    # asking again built it again (started when it failed), on the workers that are back
    rep = session.representation()
    assert len(rep) == 4000 and rep.has_graph
    label_truth(session, 6)
    session.retrain()
    assert session.history["n_labels"].iloc[-1] > 0
    labels = dict(session.labels)
    assert len(labels) == 30
    session.close()
    reopened = LabelStore.open(tmp_path / "labels")
    stored = reopened.current_labels()
    assert set(stored.index) == set(labels)
