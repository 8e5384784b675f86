"""Tests for workbench.store: real files in tmp_path, real processes for kill -9 and concurrency."""

from __future__ import annotations

import fcntl
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pandas as pd
import pytest

from workbench.store import (
    SCHEMA_VERSION,
    Event,
    LabelStore,
    SchemaVersionError,
    StoreError,
    compaction,
    schema,
)
from workbench.store.files import STAMP


def parquet_names(path):
    return sorted(n for n in os.listdir(path) if n.endswith(".parquet") and n[0] not in "._")


def file_state(path):
    """name -> (inode, mtime_ns, size) for every entry: proves which files an action touched."""
    return {e.name: (e.inode(), e.stat().st_mtime_ns, e.stat().st_size) for e in os.scandir(path)}


def run_python(code: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)],
                            stdout=subprocess.PIPE, text=True, **kwargs)


def test_create_then_reopen_keeps_every_event(tmp_path):
    path = tmp_path / "labels"
    store = LabelStore.open(path, annotator="ann")
    assert (store.path, store.annotator, store.version, len(store)) == (path, "ann", 3, 0)
    meta = json.loads((path / "_workbench.json").read_text())
    assert meta == {"format": "workbench-labelstore", "schema_version": SCHEMA_VERSION,
                    "store_id": store.store_id} and len(store.store_id) == 32
    event = store.append("a", "cat", query="margin")
    assert isinstance(event, Event) and event.action == "label" and event.source == "human"
    assert event.time.tzinfo is not None and event.seq == 0
    store.append("b", "dog", source="suggestion")
    store.append("c", action="skip")
    assert "events=3" in repr(store) and "ann" in repr(store)

    again = LabelStore.open(path)
    assert len(again) == 3
    assert again.events()["event_id"].iloc[0] == event.event_id
    labels = again.current_labels()
    assert list(labels.columns) == ["label", "annotator", "time", "source", "query", "event_id"]
    assert again.events()[["branch", "store_id"]].drop_duplicates().values.tolist() == [
        ["main", store.store_id]]
    assert labels["label"].to_dict() == {"a": "cat", "b": "dog"}
    assert labels.loc["a", "query"] == "margin" and labels.loc["b", "source"] == "suggestion"
    assert again.skipped() == {"c"}
    assert again.annotator  # defaults to the OS user name, or "anonymous"


def test_empty_directory_becomes_a_store(tmp_path):
    (tmp_path / ".ipynb_checkpoints").mkdir()  # hidden entries do not count as content
    LabelStore.open(tmp_path).append("a", "x")
    assert len(LabelStore.open(tmp_path)) == 1


def test_pandas_reads_the_whole_log_without_help(tmp_path):
    store = LabelStore.open(tmp_path / "s", annotator="ann")
    store.append_many([{"item_id": str(i), "label": "x"} for i in range(50)])
    for i in range(5):
        last = store.append(f"n{i}", "y")
    store.undo(last.event_id)
    (tmp_path / "s" / ".tmp-deadbeef-part-junk.parquet").write_bytes(b"PAR1 half written")
    frame = pd.read_parquet(tmp_path / "s")
    assert len(frame) == 56 and frame["event_id"].is_unique
    assert set(frame["action"]) == {"label", "undo"}
    assert str(frame["time"].dtype) == "datetime64[us, UTC]"
    assert set(store.events()["event_id"]) == set(frame["event_id"])


def test_append_fsyncs_file_then_renames_then_fsyncs_directory(tmp_path, monkeypatch):
    store = LabelStore.open(tmp_path / "s", annotator="ann")
    calls = []
    real_fsync, real_rename = os.fsync, os.rename
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "rename", lambda a, b: (calls.append(f"rename {os.path.basename(a)[:5]}"
                                                                 f" -> {os.path.basename(b)[:5]}"),
                                                    real_rename(a, b))[1])
    store.append("a", "cat")
    assert calls == ["fsync", "rename .tmp- -> part-", "fsync"]


def test_acknowledged_labels_survive_sigkill(tmp_path):
    path = tmp_path / "s"
    proc = run_python(f"""
        import time
        from workbench.store import LabelStore
        store = LabelStore.open({str(path)!r}, annotator="ann")
        print(store.append("a", "cat").event_id, flush=True)
        time.sleep(60)
    """)
    event_id = proc.stdout.readline().strip()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert LabelStore.open(path).events()["event_id"].tolist() == [event_id]


def test_sigkill_at_a_random_moment_loses_no_acknowledged_label(tmp_path):
    path = tmp_path / "s"
    LabelStore.open(path)
    proc = run_python(f"""
        from workbench.store import LabelStore
        store = LabelStore.open({str(path)!r}, annotator="ann")
        i = 0
        while True:
            print(store.append(f"item{{i}}", "x").event_id, flush=True)
            i += 1
    """)
    acknowledged = [proc.stdout.readline().strip() for _ in range(random.randint(20, 60))]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    acknowledged += proc.stdout.read().split()  # printed before the kill, so also acknowledged
    proc.stdout.close()
    on_disk = pd.read_parquet(path)  # never a half file under a visible name
    assert set(acknowledged) <= set(on_disk["event_id"])
    assert set(acknowledged) <= set(LabelStore.open(path).events()["event_id"])


def test_leftover_temp_file_is_ignored_and_cleaned_but_a_live_one_is_kept(tmp_path):
    path = tmp_path / "s"
    LabelStore.open(path).append("a", "cat")
    dead = path / ".tmp-0badc0de-part-abc-000000000007.parquet"
    dead.write_bytes(b"PAR1\x00\x01 half written")  # a writer killed mid-write
    live = path / ".tmp-11111111-part-def-000000000000.parquet"
    with open(live, "wb") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # a writer in another process, still writing
        f.write(b"PAR1 in progress")
        assert len(pd.read_parquet(path)) == 1
        store = LabelStore.open(path)
        assert not dead.exists() and live.exists()
        assert len(store) == 1 and len(store.events()) == 1


def test_two_processes_append_at_once_lose_and_duplicate_nothing(tmp_path):
    path = tmp_path / "s"
    LabelStore.open(path)
    go = tmp_path / "go"
    code = f"""
        import os, sys, time
        from workbench.store import LabelStore
        store = LabelStore.open({str(path)!r}, annotator=sys.argv[1])
        while not os.path.exists({str(go)!r}):
            time.sleep(0.001)
        for i in range(50):
            store.append(f"{{sys.argv[1]}}-{{i}}", "x")
            store.append("shared", sys.argv[1])
        print(len(store.current_labels()))
    """
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), who],
                              stdout=subprocess.PIPE, text=True) for who in ("p1", "p2")]
    time.sleep(0.5)
    go.touch()
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0 and int(out) >= 51
    events = LabelStore.open(path).events()
    assert len(events) == 200 and events["event_id"].is_unique
    assert len(pd.read_parquet(path)) == 200
    for _, mine in events.groupby("writer"):
        assert mine["seq"].tolist() == list(range(100))
        assert mine["time"].is_monotonic_increasing
    labels = LabelStore.open(path).current_labels()
    assert len(labels) == 101
    assert labels.loc["shared", "label"] == events["label"].iloc[-1]  # last in (time, writer, seq)


def test_threads_appending_through_one_handle(tmp_path):
    store = LabelStore.open(tmp_path, annotator="ann")
    store.current_labels()

    def label(prefix):
        for i in range(25):
            store.append(f"{prefix}{i}", "x")

    threads = [threading.Thread(target=label, args=(p,)) for p in "abcd"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    events = LabelStore.open(tmp_path).events()
    assert events["seq"].tolist() == list(range(100)) and events["writer"].nunique() == 1
    assert len(store.current_labels()) == 100


@pytest.mark.timeout(60)
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_a_forked_child_writes_under_its_own_writer_id(tmp_path):
    store = LabelStore.open(tmp_path, annotator="ann")
    parent = store.append("a", "x")
    pid = os.fork()
    if pid == 0:  # the child: append through the inherited handle, then leave at once
        code = 0
        try:
            store.append("b", "y")
        except BaseException:  # report any failure through the exit code
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    store.append("c", "z")
    events = store.events()
    assert len(events) == 3 and len(set(parquet_names(tmp_path))) == 3
    child = events.set_index("item_id").loc["b"]
    assert child["writer"] != parent.writer and child["seq"] == 0


def test_label_label_undo_restores_the_first_label(tmp_path):
    store = LabelStore.open(tmp_path, annotator="ann")
    first = store.append("a", "cat")
    second = store.append("a", "dog")
    undo = store.undo(second.event_id)
    assert (undo.action, undo.target, undo.item_id, undo.label) == ("undo", second.event_id, "a",
                                                                    None)
    assert store.current_labels().loc["a", "event_id"] == first.event_id
    store.undo(first.event_id)
    assert store.current_labels().empty
    with pytest.raises(StoreError, match="already undone"):
        store.undo(first.event_id)
    assert LabelStore.open(tmp_path).current_labels().empty


def test_relabel_skip_and_undo_of_a_skip(tmp_path):
    store = LabelStore.open(tmp_path, annotator="ann")
    store.append("a", "cat")
    store.append("a", "dog", action="relabel", query="audit")
    assert store.current_labels().loc["a", "label"] == "dog"
    store.append("b", action="skip")
    store.append("b", "bird")  # skip then label: labeled
    assert store.current_labels().loc["b", "label"] == "bird" and store.skipped() == set()
    store.append("c", "cow")
    skip = store.append("c", action="skip")  # label then skip: not labeled any more
    assert "c" not in store.current_labels().index and store.skipped() == {"c"}
    undo = store.undo(skip.event_id)  # retracts the skip of c: its label is back
    assert store.skipped() == set() and store.current_labels().loc["c", "label"] == "cow"
    assert store.events().set_index("event_id").loc[undo.target, "action"] == "skip"


def test_undo_names_its_target(tmp_path):
    store = LabelStore.open(tmp_path, annotator="ann")
    mine = store.append("a", "cat")
    store.append("b", "dog", annotator="bob")
    assert store.undo(mine.event_id).target == mine.event_id
    assert store.current_labels().index.tolist() == ["b"]
    with pytest.raises(StoreError, match="an undo must name the event it retracts"):
        store.append("b", action="undo")
    again = store.append("a", "cow")
    store.append("a", "cat", annotator="bob")
    assert store.append("a", action="undo", target=again.event_id).target == again.event_id
    assert store.current_labels().loc["a", "label"] == "cat"  # retracting an older event
    with pytest.raises(StoreError, match="already undone"):
        store.append("a", action="undo", target=again.event_id)
    with pytest.raises(StoreError, match="not a label/relabel/skip/remove/confirm event"):
        store.append("a", action="undo", target="no-such-event")
    with pytest.raises(StoreError, match="is an event on item 'a', not on item 'b'"):
        store.append("b", action="undo", target=store.current_labels().loc["a", "event_id"])
    cow = store.append("b", "cow", annotator="bob")
    store.append("a", "hen", annotator="bob")
    assert store.undo(cow.event_id, annotator="bob").item_id == "b"
    assert store.current_labels()["label"].to_dict() == {"b": "dog", "a": "hen"}


def test_incremental_view_matches_a_rebuild_across_two_handles(tmp_path):
    rng = random.Random(0)
    one = LabelStore.open(tmp_path, annotator="one")
    two = LabelStore.open(tmp_path, annotator="two")
    one.current_labels()  # build the incremental view early, so later calls update it
    written = []
    for step in range(150):
        store = rng.choice([one, two])
        item = f"i{rng.randrange(15)}"
        roll = rng.random()
        if roll < 0.15:
            if written:
                store.undo(written.pop(rng.randrange(len(written))))
        elif roll < 0.3:
            written.append(store.append(item, action="skip").event_id)
        else:
            written.append(store.append(item, rng.choice("xyz"),
                                        action=rng.choice(["label", "relabel"])).event_id)
        if step % 15 == 0:
            assert one.current_labels().equals(LabelStore.open(tmp_path).current_labels())
    fresh = LabelStore.open(tmp_path)
    for store in (one, two):
        assert store.current_labels().equals(fresh.current_labels())
        assert store.skipped() == fresh.skipped()
        assert store.events().equals(fresh.events())


def test_compaction_keeps_every_event_exactly_once(tmp_path):
    a = LabelStore.open(tmp_path, annotator="ann")
    b = LabelStore.open(tmp_path, annotator="bob")
    for i in range(20):
        last = (a if i % 2 else b).append(f"i{i}", "x")
    a.append_many([{"item_id": f"m{i}", "label": "y"} for i in range(30)])
    b.undo(last.event_id)
    a.current_labels()  # a has read every part so far...
    b.append("unseen", "w")  # ...but not this one, which the segment will also hold
    before = b.events()
    assert len(parquet_names(tmp_path)) == 23
    assert b.compact() == 23
    # Not published yet: the parts stay for readers that listed them, and the segment waits
    # under a name that every reader, plain pandas too, skips: nobody sees an event twice.
    assert len(parquet_names(tmp_path)) == 23
    assert len([n for n in os.listdir(tmp_path) if n.startswith("_pending-segment-")]) == 1
    assert len(pd.read_parquet(tmp_path)) == 52
    for store in (a, b, LabelStore.open(tmp_path)):
        assert store.events().equals(before)
    assert b.compact(retire_after=0) == 0  # published once no reader can still need the parts
    names = parquet_names(tmp_path)
    assert len(names) == 1 and names[0].startswith("segment-")
    assert len(pd.read_parquet(tmp_path)) == 52
    for store in (a, b, LabelStore.open(tmp_path)):
        assert store.events().equals(before)
    assert a.current_labels().equals(LabelStore.open(tmp_path).current_labels())
    a.append("late", "z")  # appends after a compaction still show up everywhere
    assert len(b.events()) == 53 and "late" in b.current_labels().index
    assert a.compact() == 0  # a single loose part is not worth a segment


def test_interrupted_compaction_is_finished_by_open(tmp_path):
    writer = LabelStore.open(tmp_path, annotator="ann")
    for i in range(10):
        writer.append(f"i{i}", "x")
    reader = LabelStore.open(tmp_path)  # opened, nothing read yet
    saved = {n: (tmp_path / n).read_bytes() for n in parquet_names(tmp_path)}
    assert LabelStore.open(tmp_path).compact(retire_after=0) == 10
    for name, data in saved.items():  # as if killed after writing the segment, before deleting
        (tmp_path / name).write_bytes(data)
    assert len(pd.read_parquet(tmp_path)) == 20  # plain pandas sees the duplicates...
    assert len(reader.events()) == 10  # ...our readers do not
    assert reader.events()["event_id"].is_unique and len(writer.events()) == 10
    LabelStore.open(tmp_path)  # a published segment's parts go at once (its grace has passed)
    assert len(parquet_names(tmp_path)) == 1 and len(pd.read_parquet(tmp_path)) == 10


def test_compaction_skips_when_another_process_holds_the_lock(tmp_path):
    store = LabelStore.open(tmp_path)
    for i in range(3):
        store.append(f"i{i}", "x")
    with open(tmp_path / ".compact.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert store.compact() == 0
    assert len(parquet_names(tmp_path)) == 3
    assert store.compact() == 3


def test_open_compacts_many_loose_parts(tmp_path, monkeypatch):
    monkeypatch.setattr(compaction, "AUTO_COMPACT_PARTS", 5)
    store = LabelStore.open(tmp_path)
    for i in range(5):
        store.append(f"i{i}", "x")
    LabelStore.open(tmp_path)
    assert len(parquet_names(tmp_path)) == 5  # not above the threshold yet
    store.append("i5", "x")
    assert len(LabelStore.open(tmp_path)) == 6
    assert len(parquet_names(tmp_path)) == 6  # the segment waits for its grace period, unseen
    for i in range(6, 10):
        store.append(f"i{i}", "x")
    LabelStore.open(tmp_path)  # compacted parts do not count towards the threshold
    assert len(parquet_names(tmp_path)) == 10
    monkeypatch.setattr(compaction, "RETIRE_AFTER_S", 0)
    assert len(LabelStore.open(tmp_path)) == 10  # published: the segment, and four loose parts
    assert len(parquet_names(tmp_path)) == 5


def test_append_writes_one_new_file_and_touches_no_other_in_a_big_store(tmp_path, monkeypatch):
    store = LabelStore.open(tmp_path / "s", annotator="ann")
    for start in range(0, 100_000, 25_000):
        store.append_many(pd.DataFrame({"item_id": [f"i{i}" for i in range(start, start + 25_000)],
                                        "label": "x"}))
    store.append("a", "cat")
    reopened = LabelStore.open(tmp_path / "s")
    assert len(reopened) == 100_001
    for handle in (store, reopened):
        before = file_state(tmp_path / "s")
        monkeypatch.setattr(schema, "read_files", None)  # and it reads no file either
        handle.append("b", "dog")
        monkeypatch.undo()
        after = file_state(tmp_path / "s")
        # Same inode, mtime and size; but the log stamp, a token of constant size rewritten
        # in place on every append (files.STAMP), which tells readers to list the folder again
        assert {n: after[n] for n in before if n != STAMP} == {n: v for n, v in before.items() if n != STAMP}
        assert after[STAMP][0] == before[STAMP][0] and after[STAMP][2] == before[STAMP][2]
        new = set(after) - set(before)
        assert len(new) == 1 and new.pop().startswith("part-")


def test_append_many_accepts_frames_and_validates_all_rows_first(tmp_path):
    store = LabelStore.open(tmp_path, annotator="ann")
    ids = store.append_many(pd.DataFrame({
        "item_id": ["a", "b", "c"], "label": ["x", None, "z"], "action": ["label", "skip", None],
        "time": ["2024-01-01T00:00:00Z", None, "2024-01-02 12:00"], "query": "random"}))
    assert len(ids) == 3 and len(parquet_names(tmp_path)) == 1
    events = store.events()
    assert set(events["source"]) == {"import"} and set(events["annotator"]) == {"ann"}
    assert events["time"].iloc[0] == pd.Timestamp("2024-01-01", tz="UTC")
    undo_ids = store.append_many([{"item_id": None, "action": "undo", "target": ids[0]}],
                                 source="human")
    assert store.events().set_index("event_id").loc[undo_ids[0], "item_id"] == "a"
    assert store.current_labels().index.tolist() == ["c"] and store.skipped() == {"b"}
    bad = [
        ([{"item_id": "d", "label": 3}], "column 'label' must hold str"),
        ([{"item_id": "d"}], "label/relabel/confirm needs a label"),
        ([{"item_id": "d", "label": "x", "action": "cut"}], "unknown action 'cut'"),
        ([{"item_id": "d", "label": "x", "colour": "red"}], "append_many got columns"),
        ([{"item_id": "d", "action": "undo", "target": "nope"}], "undo needs a target"),
        ([{"item_id": "d", "label": "x", "time": "yesterday"}], "column 'time' must hold ISO"),
    ]
    for records, message in bad:
        with pytest.raises(StoreError, match=message):
            store.append_many(records)
    with pytest.raises(StoreError, match="unknown source 'web'"):
        store.append_many([{"item_id": "d", "label": "x"}], source="web")
    assert len(store) == 4 and len(pd.read_parquet(tmp_path)) == 4


def test_path_that_is_a_file_is_refused(tmp_path):
    path = tmp_path / "labels.parquet"
    path.write_bytes(b"not a store")
    with pytest.raises(StoreError, match=r"labels.parquet' is a file; expected a directory"):
        LabelStore.open(path)
    assert path.read_bytes() == b"not a store"


def test_directory_holding_something_else_is_refused(tmp_path):
    (tmp_path / "data.csv").write_text("a,b\n")
    with pytest.raises(StoreError, match=r"holds something else \(data.csv\)"):
        LabelStore.open(tmp_path)
    assert os.listdir(tmp_path) == ["data.csv"]
    (tmp_path / "_workbench.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(StoreError, match="holds something else"):
        LabelStore.open(tmp_path)


def test_newer_schema_version_is_refused(tmp_path):
    LabelStore.open(tmp_path).append("a", "cat")
    (tmp_path / "_workbench.json").write_text(
        json.dumps({"format": "workbench-labelstore", "schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(SchemaVersionError, match="schema_version 4, but this workbench reads "
                                                 "versions 1 to 3"):
        LabelStore.open(tmp_path)
    assert len(pd.read_parquet(tmp_path)) == 1
    assert issubclass(SchemaVersionError, StoreError) and issubclass(StoreError, ValueError)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"action": "delete"}, "unknown action 'delete'; expected one of label, skip, undo, relabel"),
    ({"source": "robot"}, "unknown source 'robot'; expected one of human, suggestion, import"),
    ({"label": 3}, "label must be a non-empty str for a 'label' event .* got int 3"),
    ({"label": None}, "label must be a non-empty str"),
    ({"label": "x", "action": "skip"}, "a 'skip' event carries no label"),
    ({"label": "x", "target": "e1"}, "only an undo event has a target"),
    ({"item_id": 7, "label": "x"}, "item_id must be a non-empty str .* got int 7"),
])
def test_bad_events_are_refused_and_lose_nothing(tmp_path, kwargs, message):
    store = LabelStore.open(tmp_path, annotator="ann")
    store.append("a", "cat")
    before = file_state(tmp_path)
    with pytest.raises(StoreError, match=message):
        store.append(kwargs.pop("item_id", "b"), **kwargs)
    assert file_state(tmp_path) == before
    assert len(store) == 1 and len(LabelStore.open(tmp_path)) == 1
    assert store.current_labels()["label"].to_dict() == {"a": "cat"}


def test_undo_of_what_is_not_there(tmp_path):
    store = LabelStore.open(tmp_path, annotator="ann")
    with pytest.raises(StoreError, match="undo target .nope. is not a label/relabel/skip/remove/confirm"):
        store.undo("nope")
    event = store.append("a", "cat")
    undo = store.undo(event.event_id)
    with pytest.raises(StoreError, match="not a label/relabel/skip/remove/confirm event"):
        store.undo(undo.event_id)  # an undo is not undone by undoing it: relabel instead
    assert len(store) == 2


def test_the_caller_may_mint_event_ids_so_an_undo_can_name_an_event_in_flight(tmp_path):
    store = LabelStore.open(tmp_path, annotator="ann")
    minted = "0123456789abcdef0123456789abcdef"
    assert store.append("a", "cat", event_id=minted).event_id == minted
    assert store.undo(minted).target == minted
    before = file_state(tmp_path)
    with pytest.raises(StoreError, match="already in the store"):
        store.append("b", "dog", event_id=minted)
    with pytest.raises(StoreError, match="32 lowercase hex digits"):
        store.append("b", "dog", event_id="not-an-id")
    with pytest.raises(StoreError, match="the same event_id appears on two rows"):
        store.append_many([{"item_id": "b", "label": "x", "event_id": "f" * 32},
                           {"item_id": "c", "label": "x", "event_id": "f" * 32}])
    assert file_state(tmp_path) == before
    ids = store.append_many([{"item_id": "b", "label": "x", "event_id": "e" * 32}, {"item_id": "c",
                                                                                  "label": "y"}])
    assert ids[0] == "e" * 32 and len(ids[1]) == 32


def test_retract_takes_back_several_events_in_one_file_or_none(tmp_path):
    store = LabelStore.open(tmp_path, annotator="ann")
    events = [store.append(f"i{k}", "x") for k in range(4)]
    skip = store.append("i4", action="skip")
    before = file_state(tmp_path)
    with pytest.raises(StoreError, match="'nope' is not a label/relabel/skip/remove/confirm event"):
        store.retract([events[0].event_id, "nope"])
    with pytest.raises(StoreError, match="the same event twice"):
        store.retract([events[0].event_id, events[0].event_id])
    assert file_state(tmp_path) == before  # a bad target anywhere: nothing written
    undone = store.retract([e.event_id for e in events[1:3]] + [skip.event_id])
    assert [u.target for u in undone] == [events[1].event_id, events[2].event_id, skip.event_id]
    assert [u.item_id for u in undone] == ["i1", "i2", "i4"]
    assert len(set(file_state(tmp_path)) - set(before)) == 1
    assert store.current_labels().index.tolist() == ["i0", "i3"] and store.skipped() == set()
    assert LabelStore.open(tmp_path).current_labels().index.tolist() == ["i0", "i3"]


def test_sync_returns_what_arrived_since_the_last_sync(tmp_path):
    mine = LabelStore.open(tmp_path, annotator="me")
    other = LabelStore.open(tmp_path, annotator="them")
    other.append("before", "x")
    assert mine.sync() == []  # the first call starts the count
    own = mine.append("own", "y")
    theirs = other.append("a", "x")
    mine.current_labels()  # an ordinary read in between must not swallow them
    new = mine.sync()
    assert [e["event_id"] for e in new] == [own.event_id, theirs.event_id]
    assert new[1]["annotator"] == "them"
    assert mine.sync() == []
    assert set(mine.current_labels().index) == {"before", "own", "a"}


def test_sidecars_live_beside_the_log_and_pandas_never_sees_them(tmp_path):
    store = LabelStore.open(tmp_path, annotator="ann")
    store.append("a", "x")
    assert store.load_sidecar("_session-ann.json") is None
    store.save_sidecar("_session-ann.json", {"history": [1, 2]})
    assert LabelStore.open(tmp_path).load_sidecar("_session-ann.json") == {"history": [1, 2]}
    with pytest.raises(StoreError, match="sidecar name must look like"):
        store.save_sidecar("part-evil.parquet", {})
    assert len(pd.read_parquet(tmp_path)) == 1


def test_compaction_merges_segments_once_there_are_many(tmp_path, monkeypatch):
    """Pulls and pushes read every segment's list of parts: segments are merged too, and the
    ones merged retire like parts, while a reader that loaded them sees nothing twice."""
    monkeypatch.setattr(compaction, "MAX_SEGMENTS", 3)
    store = LabelStore.open(tmp_path / "s", annotator="ann")
    early = LabelStore.open(tmp_path / "s")
    for round_ in range(4):
        for i in range(3):
            store.append(f"r{round_}-{i}", "x")
        if round_ == 1:
            early.events()  # a reader that has read the first segments and some parts
        assert store.compact(retire_after=0) == 3
    names = parquet_names(tmp_path / "s")
    assert len(names) == 1  # the fourth compaction merged the three segments with its parts
    for handle in (store, early, LabelStore.open(tmp_path / "s")):
        events = handle.events()
        assert len(events) == 12 and events["event_id"].is_unique
    from workbench.store.sync import clone

    copy = clone(tmp_path / "s", tmp_path / "copy")
    assert len(parquet_names(tmp_path / "copy")) == 1 and len(copy.events()) == 12


def test_a_reader_that_listed_parts_before_a_compaction_still_reads_them(tmp_path):
    store = LabelStore.open(tmp_path, annotator="ann")
    for i in range(5):
        store.append(f"i{i}", "x")
    listed = parquet_names(tmp_path)  # a teammate's pull lists the folder...
    assert LabelStore.open(tmp_path).compact() == 5  # ...we compact (default grace period)...
    table = schema.read_files(tmp_path, listed)  # ...and every file it listed is still there
    assert table.num_rows == 5


def _at_once(tmp_path, before: str, then: str, n: int = 8) -> list[str]:
    """What `n` processes print that each run `before`, wait until all have, and run `then`
    at the same moment (`sys.argv[1]`: the process's number)."""
    go = tmp_path / "go"
    barrier = (f"open({str(tmp_path)!r} + '/ready-' + sys.argv[1], 'w').close()\n"
               f"while not os.path.exists({str(go)!r}):\n    time.sleep(0.001)\n")
    code = "import os, sys, time\n" + textwrap.dedent(before) + barrier + textwrap.dedent(then)
    procs = [subprocess.Popen([sys.executable, "-c", code, str(i)], stdout=subprocess.PIPE, text=True)
             for i in range(n)]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready-{i}").exists() for i in range(n)):
        assert time.monotonic() < deadline, "the processes never got ready"
        assert all(proc.poll() is None for proc in procs), "a process died before the start"
        time.sleep(0.01)
    go.touch()
    return [proc.communicate(timeout=60)[0].strip() for proc in procs]


def test_processes_that_make_one_new_store_at_once_all_get_the_same_store(tmp_path):
    """Two notebooks started together on a new store's path: each used to make a store of
    its own id, one overwriting the other's, and then took the other's labels for another
    store's (never in its view: both labeled every item). Eight processes race here."""
    path = tmp_path / "new-store"
    ids = set(_at_once(tmp_path, "from workbench.store import LabelStore\n", f"""
        store = LabelStore.open({str(path)!r}, annotator="p" + sys.argv[1])
        store.append("item-" + sys.argv[1], "a")
        print(store.store_id)
    """))
    assert len(ids) == 1 and ids == {LabelStore.open(path).store_id}
    assert LabelStore.open(path).labels().to_dict() == {f"item-{i}": "a" for i in range(8)}


def test_sessions_binding_other_class_sets_at_once_cannot_both_win(tmp_path):
    """Each session binds the store to its pool's classes; two at once used to both read an
    unbound store and both write, the last one's classes kept and the first never refused."""
    path = tmp_path / "store"
    LabelStore.open(path)
    outcomes = [out.split() for out in _at_once(tmp_path, f"""
        from workbench.store import LabelStore, StoreError
        store = LabelStore.open({str(path)!r})
        classes = ["a", "b"] if int(sys.argv[1]) % 2 else ["x", "y"]
    """, """
        try:
            store.bind(classes=classes, items_hash="h", n_items=2)
            print("bound", ",".join(classes))
        except StoreError:
            print("refused", ",".join(classes))
    """)]
    winners = {classes for outcome, classes in outcomes if outcome == "bound"}
    kept = ",".join(json.loads((path / "_workbench.json").read_text())["classes"])
    assert winners == {kept}, outcomes  # every other class set was refused
