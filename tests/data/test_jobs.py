"""Jobs over a pool's parts (workbench.data.jobs): in this process and on a real Dask
LocalCluster of 2 worker processes, with the same results; a worker killed mid-job; a
scheduler that cannot be reached."""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from workbench import Pool
from workbench.data import representation as R
from workbench.data.encoders import VectorEncoder
from workbench.data.jobs import (
    ClusterFallbackWarning,
    ClusterJobFailed,
    ClusterUnreachable,
    connect,
    map_parts,
)
from workbench.data.parts import array_parts_of
from workbench.data.pool_encoding import encode_pool

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from standins import digits_28, digits_base  # noqa: E402


def row_sums(part):
    return part.read().reshape(len(part), -1).sum(axis=1)


def slow_row_sums(part):
    time.sleep(0.5)
    return row_sums(part)


def bad_rows(part):
    if part.start > 0:
        raise ValueError(f"rows {part.start}-{part.stop - 1} hold NaN")
    return row_sums(part)


def free_address() -> str:
    """A local port where nothing listens: what an unreachable scheduler looks like."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture(scope="module", autouse=True)
def _functions_by_value():
    """This module's functions travel to the workers by value (the `client` fixture of
    tests/conftest.py): the workers need not import the tests."""
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def images():
    X8, y8 = digits_base()
    X, y = digits_28(X8, y8, 3000, seed=1)
    return Pool.from_arrays(X, y)


# -- in this process ----------------------------------------------------------------------
def test_in_process_maps_in_part_order_with_progress():
    X = np.arange(100, dtype=np.float32).reshape(25, 4)
    seen = []
    out = map_parts(row_sums, array_parts_of(X, 7), progress=lambda f, m: seen.append(f), what="sums")
    np.testing.assert_array_equal(np.concatenate(out), X.sum(axis=1))
    assert seen == [1 / 4, 2 / 4, 3 / 4, 1.0]
    assert map_parts(row_sums, []) == []


@pytest.mark.slow  # five connection attempts of a second each
def test_an_unreachable_scheduler_is_named_or_falls_back_when_asked(monkeypatch):
    import dask
    import distributed  # noqa: F401  first: config.set would drop the defaults it loads on import

    address = free_address()
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        with pytest.raises(ClusterUnreachable, match=address.replace(".", r"\.") + ".*fallback"):
            connect(address)
        with pytest.warns(ClusterFallbackWarning, match=f"{address}.*in this process"):
            assert connect(address, fallback="in-process") is None
        X = np.ones((10, 3), np.float32)
        with pytest.warns(ClusterFallbackWarning):
            out = map_parts(row_sums, array_parts_of(X, 4), cluster=connect(address, fallback="in-process"))
        np.testing.assert_array_equal(np.concatenate(out), 3)
        # the environment names the scheduler and the fallback when the caller gives none
        monkeypatch.setenv("WORKBENCH_DASK_SCHEDULER", address)
        with pytest.raises(ClusterUnreachable, match="WORKBENCH_DASK_SCHEDULER"):
            connect(None)
        monkeypatch.setenv("WORKBENCH_DASK_FALLBACK", "in-process")
        with pytest.warns(ClusterFallbackWarning):
            assert connect(None) is None
    assert connect(False) is None  # this process, whatever the environment says
    monkeypatch.setenv("WORKBENCH_DASK_FALLBACK", "local")
    with pytest.raises(ValueError, match="WORKBENCH_DASK_FALLBACK.*got 'local'"):
        connect(None)


# -- on a LocalCluster of 2 worker processes ----------------------------------------------

@pytest.mark.slow
@pytest.mark.timeout(300)
def test_map_parts_on_the_cluster_equals_in_process(client):
    X = np.random.default_rng(0).random((1000, 5)).astype(np.float32)
    parts = array_parts_of(X, 90)
    seen = []
    here = map_parts(row_sums, parts)
    there = map_parts(row_sums, parts, cluster=client, progress=lambda f, m: seen.append((f, m)),
                      what="row sums")
    assert len(there) == len(parts)
    for a, b in zip(here, there):
        np.testing.assert_array_equal(a, b)
    assert seen[-1][0] == 1.0 and "row sums" in seen[-1][1] and "Dask cluster" in seen[-1][1]
    # the function's own error comes back as itself, saying where it happened
    with pytest.raises(ValueError, match="hold NaN") as info:
        map_parts(bad_rows, parts, cluster=client, what="checking")
    assert any("checking" in note and "Dask cluster" in note for note in info.value.__notes__)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_representation_built_on_the_cluster_equals_the_in_process_one(client, images):
    here = R.build(images)
    there = R.build(images, cluster=client)
    assert len(images.parts(512)) > 2  # several parts, on both workers
    np.testing.assert_allclose(there.features, here.features, atol=1e-6)
    np.testing.assert_array_equal(there.neighbors, here.neighbors)
    # a vector pool, fitted on a sample and then encoded part by part (a pool larger than the
    # fit sample), and with every item (the whole pool is the sample)
    rng = np.random.default_rng(1)
    vectors = Pool.from_arrays(rng.normal(size=(3000, 150)).astype(np.float32), rng.integers(0, 3, 3000))
    for fit_sample in (1000, 50_000):
        a = encode_pool(vectors, VectorEncoder(), fit=True, fit_sample=fit_sample)
        b = encode_pool(vectors, VectorEncoder(), fit=True, fit_sample=fit_sample, cluster=client)
        np.testing.assert_allclose(b, a, atol=1e-6)
    np.testing.assert_allclose(R.build(vectors, cluster=client).features, R.build(vectors).features,
                               atol=1e-6)


def _kill_a_busy_worker(client, prefix: str, timeout: float = 60) -> int:
    """SIGKILL the process of a worker that is running one of the job's parts."""
    pids = client.run(os.getpid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = [w for w, keys in client.processing().items() if any(str(k).startswith(prefix) for k in keys)]
        if busy:
            os.kill(pids[busy[0]], signal.SIGKILL)
            return pids[busy[0]]
        time.sleep(0.05)
    raise AssertionError("no worker ever ran the job")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_worker_killed_mid_job_the_job_still_completes(client):
    X = np.random.default_rng(2).random((400, 3)).astype(np.float32)
    parts = array_parts_of(X, 40)  # 10 parts of half a second each
    result = {}
    job = threading.Thread(target=lambda: result.update(out=map_parts(slow_row_sums, parts, cluster=client,
                                                                      what="slow sums")))
    job.start()
    killed = _kill_a_busy_worker(client, "workbench-slow-sums")
    job.join(120)
    assert not job.is_alive()
    np.testing.assert_allclose(np.concatenate(result["out"]), X.sum(axis=1), rtol=1e-6)
    assert killed not in client.run(os.getpid).values()  # the nanny started a new process
    client.wait_for_workers(2, timeout=180)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_part_that_cannot_finish_gives_a_clear_error(client):
    scheduler = client.cluster_.scheduler
    before = scheduler.allowed_failures
    scheduler.allowed_failures = 0  # the first death of a part's worker fails the part
    try:
        X = np.ones((200, 3), np.float32)
        failed = {}

        def run():
            try:
                map_parts(slow_row_sums, array_parts_of(X, 20), cluster=client, what="doomed sums")
            except ClusterJobFailed as e:
                failed["error"] = e

        job = threading.Thread(target=run)
        job.start()
        _kill_a_busy_worker(client, "workbench-doomed-sums")
        job.join(120)
        error = failed["error"]
        assert error.what == "doomed sums" and error.part.startswith("rows ")
        message = str(error)
        for words in ("doomed sums failed on the Dask cluster", error.part, "allowed-failures",
                      "What to do", "cluster=False", "labels and the store are untouched"):
            assert words in message
    finally:
        scheduler.allowed_failures = before
    client.wait_for_workers(2, timeout=180)
    # the cluster works on: the next job succeeds
    out = map_parts(row_sums, array_parts_of(X, 50), cluster=client)
    np.testing.assert_array_equal(np.concatenate(out), 3)
