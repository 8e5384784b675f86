"""The pool's representation: what it computes, and its cache (reused, rebuilt when the pool
changes, never stale)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from workbench import Pool, datasets
from workbench.data import neighbors as nb
from workbench.data import representation as R


@pytest.fixture(scope="module")
def small_digits():
    """300 of the digits: small enough to learn a representation in about a second."""
    digits = datasets.digits()
    return digits.subset(np.arange(300))


def vectors(n=200, d=6, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    return Pool.from_arrays(rng.normal(size=(n, d)) + 3 * y[:, None], y)


def test_images_get_patch_features_and_a_neighbour_graph(small_digits):
    rep = R.build(small_digits)
    assert rep.method == "patches" and rep.features.shape == (300, 128)
    assert rep.features.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(rep.features, axis=1), 1, atol=1e-5)
    assert rep.neighbors.shape == rep.weights.shape == (300, nb.N_NEIGHBORS)
    assert not (rep.neighbors == np.arange(300)[:, None]).any()  # never its own neighbour
    assert ((rep.weights > 0) & (rep.weights <= 1)).all()
    # the encoder maps new items of the pool's kind the same way (a held-out split)
    np.testing.assert_allclose(rep.transform(small_digits.X[:20]), rep.features[:20], atol=1e-5)
    # neighbours mostly share the class: the representation is about what the items show
    same = small_digits.y[rep.neighbors] == small_digits.y[:, None]
    assert same.mean() > 0.8


def test_progress_is_reported_in_stages(small_digits):
    seen = []
    R.build(small_digits, progress=lambda fraction, message: seen.append((fraction, message)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    messages = {m for _, m in seen}
    assert any("k-means" in m for m in messages) and any("neighbours" in m for m in messages)


def test_vectors_are_standardised_and_texts_normalised():
    pool = vectors()
    rep = R.build(pool)
    assert rep.method == "standardised"
    np.testing.assert_allclose(rep.features.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(rep.features.std(axis=0), 1, atol=1e-3)
    texts = Pool.from_texts(["a cat", "a dog", "the stock market", "shares fell"], [0, 0, 1, 1])
    rep = R.build(texts)
    assert rep.method == "normalised"
    np.testing.assert_allclose(np.linalg.norm(rep.features, axis=1), 1, atol=1e-5)
    assert rep.neighbors.shape == (4, 3)  # fewer items than neighbours: all the others


def test_large_rgb_images_are_downscaled_before_encoding():
    rng = np.random.default_rng(0)
    photos = Pool.from_arrays(rng.random((40, 96, 64, 3)).astype(np.float32), rng.integers(0, 2, 40))
    rep = R.build(photos)
    assert rep.features.shape == (40, min(128, 39))
    assert rep.transform(photos.X[:3]).shape == (3, rep.features.shape[1])


def test_no_graph_above_the_size_limit():
    rep = R.build(vectors(50), max_graph_items=10)
    assert not rep.has_graph and rep.neighbors is None


def test_cache_is_reused_in_memory_and_from_disk(tmp_path, small_digits):
    cache = R.RepresentationCache(tmp_path)
    first = R.RepresentationJob.start(small_digits, cache=cache, background=False).result()
    assert not first.from_cache and len(list(tmp_path.glob("*.npz"))) == 1
    # the same contents in a new Pool object: found in memory, no work
    same = Pool.from_arrays(datasets.digits().X[:300] * 1.0, datasets.digits().y[:300],
                            item_ids=small_digits.item_ids)
    job = R.RepresentationJob.start(same, cache=cache)
    assert job.done() and job.result() is first
    # a new process (a fresh cache object on the same folder) reads the file
    again = R.RepresentationJob.start(small_digits, cache=R.RepresentationCache(tmp_path)).result()
    assert again.from_cache and again.fingerprint == first.fingerprint
    np.testing.assert_array_equal(again.features, first.features)
    np.testing.assert_array_equal(again.neighbors, first.neighbors)
    np.testing.assert_allclose(again.transform(small_digits.X[:5]), first.features[:5], atol=1e-5)
    assert job.state()["status"] == "ready"


@pytest.mark.parametrize("change", ["one pixel", "item order", "item ids", "more items"])
def test_cache_is_rebuilt_when_the_pool_changes(tmp_path, small_digits, change):
    cache = R.RepresentationCache(tmp_path)
    before = R.RepresentationJob.start(small_digits, cache=cache, background=False).result()
    X, ids = small_digits.X.copy(), small_digits.item_ids
    if change == "one pixel":
        X[7, 3, 4] = 0.5 if X[7, 3, 4] != 0.5 else 0.25
        changed = Pool.from_arrays(X, small_digits.y, item_ids=ids)
    elif change == "item order":
        order = np.r_[1, 0, 2:300]
        changed = small_digits.subset(order)
    elif change == "item ids":
        changed = Pool.from_arrays(X, small_digits.y, item_ids=[f"x{i}" for i in range(300)])
    else:
        changed = datasets.digits().subset(np.arange(301))
    after = R.RepresentationJob.start(changed, cache=cache, background=False).result()
    assert after.fingerprint != before.fingerprint and not after.from_cache
    # and the rebuilt one describes the changed pool, row for row
    np.testing.assert_allclose(after.transform(changed.X[:10]), after.features[:10], atol=1e-5)


def test_texts_are_part_of_a_text_pools_fingerprint():
    a = Pool.from_texts(["red", "blue"], embeddings=np.eye(2))
    b = Pool.from_texts(["red", "green"], embeddings=np.eye(2))
    assert R.fingerprint(a, "normalised") != R.fingerprint(b, "normalised")


def test_cache_is_never_stale(tmp_path, small_digits):
    cache = R.RepresentationCache(tmp_path)
    rep = R.RepresentationJob.start(small_digits, cache=cache, background=False).result()
    path = tmp_path / f"{rep.fingerprint}.npz"
    # a pool changed in place after its representation was learned gets a new one
    X = small_digits.X.copy()
    mutated = Pool.from_arrays(X, small_digits.y, item_ids=small_digits.item_ids)
    mutated.X[0] = 1 - mutated.X[0]
    fresh = R.RepresentationJob.start(mutated, cache=cache, background=False).result()
    assert fresh.fingerprint != rep.fingerprint and not fresh.from_cache
    # a file that holds another pool's representation under this name is not used
    other = tmp_path / "elsewhere"
    R.RepresentationJob.start(vectors(), cache=R.RepresentationCache(other), background=False)
    foreign = next(other.glob("*.npz"))
    path.write_bytes(foreign.read_bytes())
    rebuilt = R.RepresentationJob.start(small_digits, cache=R.RepresentationCache(tmp_path),
                                        background=False).result()
    assert not rebuilt.from_cache and rebuilt.fingerprint == rep.fingerprint
    # a truncated file (a crash while writing elsewhere) is rebuilt, and replaced
    path.write_bytes(path.read_bytes()[:100])
    rebuilt = R.RepresentationJob.start(small_digits, cache=R.RepresentationCache(tmp_path),
                                        background=False).result()
    assert not rebuilt.from_cache
    assert R.RepresentationCache(tmp_path).get(rep.fingerprint).from_cache
    # a new method version is a new key: an old file is never read as the new method's
    assert R.fingerprint(small_digits, "patches") != R.fingerprint(small_digits, "standardised")


def test_the_background_job_reports_progress_and_failure(tmp_path, monkeypatch, small_digits):
    release = threading.Event()
    states = []

    def slow_build(pool, progress=None, **kw):
        progress(0.5, "halfway")
        release.wait(10)
        raise RuntimeError("out of memory")

    monkeypatch.setattr(R, "build", slow_build)
    job = R.RepresentationJob.start(small_digits, cache=R.RepresentationCache(tmp_path),
                                    on_progress=states.append)
    assert not job.done()
    assert job.state() == {"status": "building", "progress": 0.5, "message": "halfway"}
    release.set()
    with pytest.raises(RuntimeError, match="out of memory"):
        job.result(timeout=10)
    assert job.state()["status"] == "failed" and "out of memory" in job.state()["message"]
    assert states[-1]["status"] == "failed"
    assert not list(tmp_path.glob("*.npz"))  # nothing half-built was cached


def test_default_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path))
    assert R.default_cache_dir() == tmp_path / "representations"
    assert R.cache_at(None).folder == tmp_path / "representations"
    assert R.cache_at(False).folder is None


def test_a_pool_being_learned_is_learned_once(tmp_path, monkeypatch, small_digits):
    release, builds = threading.Event(), []
    real_build = R.build

    def slow_build(pool, progress=None, **kw):
        builds.append(pool)
        release.wait(10)
        return real_build(pool, progress=progress, **kw)

    monkeypatch.setattr(R, "build", slow_build)
    cache = R.RepresentationCache(tmp_path)
    heard = []
    first = R.RepresentationJob.start(small_digits, cache=cache)
    second = R.RepresentationJob.start(small_digits, cache=cache, on_progress=heard.append)
    assert second is first  # the cell run again joins the running job
    release.set()
    assert first.result(timeout=30) is second.result(timeout=30)
    assert len(builds) == 1 and heard[-1]["status"] == "ready"
    third = R.RepresentationJob.start(small_digits, cache=cache)  # done: from the cache now
    assert third is not first and third.result().fingerprint == first.result().fingerprint


def test_a_write_killed_midway_leaves_the_old_file_or_the_new_and_its_leftover_is_removed(tmp_path):
    """kill -9 while a representation is rewritten (1 GB at 1,000,000 items): the cache file is
    the old one or the new, never torn; the half-written temporary file is removed by a later
    write once it is STALE_SECONDS old (a younger one may be another process's, writing)."""
    import os
    import signal
    import subprocess
    import sys
    import textwrap
    import time

    from workbench.data import representation_cache

    path = tmp_path / "key.npz"
    code = textwrap.dedent(f"""
        import numpy as np
        from workbench.data.feature_space import Representation
        from workbench.data.representation import UnitEncoder
        features = np.arange(150_000 * 64, dtype=np.float32).reshape(150_000, 64)
        rep = Representation(features, None, None, UnitEncoder(), "key", "normalised")
        path = __import__("pathlib").Path({str(path)!r})
        rep.save(path)  # one whole file first, so that every kill lands in a rewrite of it
        print("writing", flush=True)
        while True:
            rep.save(path)
    """)
    rng = np.random.default_rng(0)
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "writing"
        time.sleep(float(rng.uniform(0.05, 0.6)))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        loaded = R.Representation.load(path)  # the old file or the new, whole
        assert loaded.features.shape == (150_000, 64) and loaded.features[-1, -1] == 150_000 * 64 - 1
    leftovers = list(tmp_path.glob("writing-*.tmp"))
    assert leftovers, "no kill landed inside a write"
    cache = representation_cache.RepresentationCache(tmp_path)
    small = R.Representation(np.zeros((3, 2), np.float32), None, None, R.UnitEncoder(), "small", "normalised")
    cache.put(small)
    assert all(f.exists() for f in leftovers)  # young: maybe another process's write
    leftovers.append(tmp_path / "tmpk3j_x9.tmp")  # the name such files had before 2026-12-07
    leftovers[-1].write_bytes(b"half")
    old = time.time() - representation_cache.STALE_SECONDS - 60
    for f in leftovers:
        os.utime(f, (old, old))
    cache.put(small)
    assert not list(tmp_path.glob("writing-*.tmp")) and path.exists()


def test_a_damaged_cache_file_is_read_once_then_rebuilt(tmp_path, monkeypatch, small_digits):
    from workbench.data import representation_cache

    cache = R.RepresentationCache(tmp_path)
    rep = R.RepresentationJob.start(small_digits, cache=cache, background=False).result()
    path = tmp_path / f"{rep.fingerprint}.npz"
    path.write_bytes(path.read_bytes()[:1000])
    reads, real_load = [], R.Representation.load
    monkeypatch.setattr(representation_cache.Representation, "load",
                        lambda p: reads.append(p) or real_load(p))
    again = R.RepresentationJob.start(small_digits, cache=R.RepresentationCache(tmp_path)).result(timeout=60)
    assert not again.from_cache and len(reads) == 1
    assert real_load(path).fingerprint == rep.fingerprint  # and written whole again


@pytest.mark.parametrize("clock_off_by", [2 * 3600, -2 * 3600])
def test_leftovers_are_judged_by_the_file_system_clock_not_a_skewed_process_clock(
        tmp_path, monkeypatch, clock_off_by):
    """On a shared folder, a machine whose clock runs two hours ahead must not remove another
    machine's write in progress, and one whose clock runs behind must still remove a
    leftover that is old by the file system's clock."""
    import os
    import time

    from workbench.data import representation_cache

    in_progress = tmp_path / "writing-abc123.tmp"  # stamped now by the file system
    in_progress.write_bytes(b"being written")
    leftover = tmp_path / "writing-def456.tmp"
    leftover.write_bytes(b"half")
    old = time.time() - representation_cache.STALE_SECONDS - 60
    os.utime(leftover, (old, old))
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + clock_off_by)
    cache = representation_cache.RepresentationCache(tmp_path)
    cache.put(R.Representation(np.zeros((3, 2), np.float32), None, None, R.UnitEncoder(), "small",
                               "normalised"))
    assert in_progress.exists() and not leftover.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.npz", "writing-abc123.tmp"]


def test_a_graph_that_would_not_fit_in_memory_is_not_built_and_the_session_says_so(
        tmp_path, monkeypatch, small_digits, caplog):
    """10,000,000 items x 30 neighbours need about 24 GB while the graph and its matrix are
    built: on a machine without that, the kernel was killed after the search (half an hour in).
    Now the representation is built without the graph, and says why; rounds still train."""
    from workbench import Session
    from workbench.data import representation

    free = 300 * 10 * representation.GRAPH_BYTES_PER_EDGE - 1  # one byte short of 300 items x 10
    monkeypatch.setattr(representation, "available_bytes", lambda: free)
    messages = []
    with caplog.at_level("WARNING", logger="workbench.data.representation"):
        rep = R.build(small_digits, progress=lambda f, m: messages.append(m))
    assert not rep.has_graph and rep.features.shape[0] == 300
    assert "no neighbour graph: 300 items x 10 neighbours need about" in caplog.text
    assert any(m.startswith("no neighbour graph") and "label spreading is off" in m for m in messages)
    assert messages[-1] == "ready, without a neighbour graph: not enough memory free"
    monkeypatch.setattr(representation, "available_bytes", lambda: free + 1)
    assert R.build(small_digits).has_graph  # enough: built as always
    monkeypatch.setattr(representation, "available_bytes", lambda: None)  # unknown: built as always
    assert R.build(small_digits).has_graph

    monkeypatch.setattr(representation, "available_bytes", lambda: free)
    session = Session(small_digits, tmp_path / "labels", watch=False, representation_cache=tmp_path / "cache")
    try:
        assert not session.representation().has_graph
        assert session.model_state()["representation"] == (  # the widget's status line
            "the pool's representation has no neighbour graph (not enough memory was free to build "
            "one): rounds learn without label spreading")
        for _ in range(12):
            item = session.next()
            session.label(item.item_id, str(small_digits.y[item.position]))
        session.retrain()
        assert session.next().suggestion is not None  # the head learned from the labels alone
    finally:
        session.close()


def test_the_memory_left_is_what_the_kernel_and_the_container_allow():
    from workbench.data.memory import available_bytes

    left = available_bytes()
    meminfo = dict(line.split(":", 1) for line in open("/proc/meminfo"))
    assert isinstance(left, int) and 0 < left <= int(meminfo["MemTotal"].split()[0]) * 1024
