"""A file's age is judged by the file system's clock, never by this machine's: on a store that
several machines share, one whose clock runs two hours ahead must not take a live session's
claim for a dead one, publish a compaction under readers still in their grace period, or
remove a write or a clone in progress; one whose clock runs behind must still tidy up what is
really old. Each test fails with `time.time()` in place of the file system's clock."""

from __future__ import annotations

import contextlib
import os
import time

import pytest

from workbench.store import LabelStore, compaction, files, sync
from workbench.store.claims import Claims

HOURS = [2, -2]


@contextlib.contextmanager
def process_clock_off(monkeypatch, hours: float):
    """This process's clock `hours` off (another machine's) while the block runs; the file
    system keeps stamping files with the true time, as a shared server does."""
    real = time.time
    with monkeypatch.context() as patch:
        patch.setattr(time, "time", lambda: real() + hours * 3600)
        yield


def make_old(path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_a_claim_written_on_a_skewed_clock_is_live_for_its_lease(tmp_path, monkeypatch):
    mine = Claims(tmp_path, annotator="ann")
    for hours in HOURS:
        writer = Claims(tmp_path, annotator="bob")
        with process_clock_off(monkeypatch, hours):
            writer.hold([f"x{hours}"])
        assert mine.others() == {f"x{hours}": ["bob"]}
        writer.close()


@pytest.mark.parametrize("hours", HOURS)
def test_a_reader_on_a_skewed_clock_sees_live_claims_and_removes_only_dead_ones(tmp_path, monkeypatch, hours):
    live = Claims(tmp_path, annotator="bob", lease_s=60)
    live.hold(["x"])
    dead = Claims(tmp_path, annotator="cat", lease_s=60)
    dead.hold(["y"])
    dead_file = tmp_path / "_claims" / f"{dead.session}.json"
    make_old(dead_file, 130)  # not renewed for more than two leases: its session is gone
    reader = Claims(tmp_path, annotator="ann", lease_s=60)
    with process_clock_off(monkeypatch, hours):
        assert reader.others() == {"x": ["bob"]}
    assert (tmp_path / "_claims" / f"{live.session}.json").exists() and not dead_file.exists()


def test_a_claim_file_with_a_hostile_lease_falls_back_to_the_readers(tmp_path):
    import json

    other = Claims(tmp_path, annotator="bob")
    other.hold(["x"])
    path = tmp_path / "_claims" / f"{other.session}.json"
    claim = json.loads(path.read_text())
    for lease in ["forever", True, -1, float("inf"), None, 2 ** 1024]:  # the last: no float holds it
        path.write_text(json.dumps({**claim, "lease_s": lease}))
        assert Claims(tmp_path, annotator="ann", lease_s=60).others() == {"x": ["bob"]}
    make_old(path, 121)  # past the reader's lease, and a lease more: tidied away
    assert Claims(tmp_path, annotator="ann", lease_s=60).others() == {} and not path.exists()


def test_claim_files_nobody_could_have_written_are_ignored_then_tidied(tmp_path):
    """Whatever a claims folder holds, serving items goes on: a file whose items are not a list
    of ids claims nothing, and goes once it is a lease old."""
    import json

    folder = Claims(tmp_path, annotator="ann", lease_s=60).folder
    odd = {"items-a-number": {"items": 5}, "items-nested": {"items": [["x"], 7, "y"]},
           "no-items": {"annotator": "eve"}, "a-list": [1, 2], "a-string": "claim"}
    for name, content in odd.items():
        (folder / f"{name}.json").write_text(json.dumps(content))
    reader = Claims(tmp_path, annotator="bob", lease_s=60)
    assert reader.others() == {"y": ["?"]}
    for name in odd:
        make_old(folder / f"{name}.json", 121)
    assert reader.others() == {}
    assert sorted(p.name for p in folder.glob("*.json")) == []


def test_the_lock_file_removed_while_sessions_run_is_no_error(tmp_path):
    claims = Claims(tmp_path, annotator="ann")
    other = Claims(tmp_path, annotator="bob")
    other.hold(["x"])
    for _ in range(3):
        (claims.folder / ".lock").unlink()
        assert claims.others() == {"x": ["bob"]}
        with claims.claiming() as taken:
            assert taken == {"x": ["bob"]}


@pytest.mark.parametrize("hours", HOURS)
def test_a_compaction_is_published_after_its_grace_period_by_the_file_systems_clock(
        tmp_path, monkeypatch, hours):
    store = LabelStore.open(tmp_path / "s", annotator="ann")
    for k in range(5):
        store.append(f"i{k}", "a")
    assert store.compact() == 5  # pending: readers may still hold the parts
    parts = files.list_names(store.path, ("part-",))
    (pending,) = files.list_names(store.path, (compaction.PENDING,))
    with process_clock_off(monkeypatch, hours):
        compaction.compact(store.path)  # young by the file system's clock: not published
    assert files.list_names(store.path, ("part-",)) == parts
    assert files.list_names(store.path, (compaction.PENDING,)) == [pending]
    make_old(store.path / pending, compaction.RETIRE_AFTER_S + 60)
    with process_clock_off(monkeypatch, hours):
        compaction.compact(store.path)  # old enough: published, its parts retired
    assert files.list_names(store.path, ("part-", compaction.PENDING)) == []
    assert LabelStore.open(store.path).labels().to_dict() == {f"i{k}": "a" for k in range(5)}


@pytest.mark.parametrize("hours", HOURS)
def test_an_empty_temp_file_is_kept_while_its_writer_may_be_about_to_lock_it(tmp_path, monkeypatch, hours):
    young = tmp_path / ".tmp-0123abcd-part-x.parquet"  # created, not locked yet
    young.touch()
    old = tmp_path / ".tmp-4567cdef-part-y.parquet"  # its writer was killed before it wrote
    old.touch()
    make_old(old, files.STALE_EMPTY_TMP_S + 30)
    with process_clock_off(monkeypatch, hours):
        files.clean_temp_files(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [young.name]


@pytest.mark.parametrize("hours", HOURS)
def test_a_clone_in_progress_is_kept_and_a_dead_one_removed(tmp_path, monkeypatch, hours):
    running = tmp_path / ".copy.clone-aaaa1111"  # another process's clone, still building
    (running / "labels").mkdir(parents=True)
    dead = tmp_path / ".copy.clone-bbbb2222"  # a clone killed half way, long ago
    (dead / "labels").mkdir(parents=True)
    for path in (dead / "labels", dead):
        make_old(path, sync.STALE_CLONE_S + 60)
    with process_clock_off(monkeypatch, hours):
        sync._remove_dead_clones(tmp_path / "copy")
    assert running.is_dir() and not dead.exists()
