"""What the store does on every item served: a claim rewritten in place (no file created or
renamed, which waits for the file system's journal while anyone fsyncs), and a few
(item, label) pairs hashed directly, to the same values as the vectorised hash of many."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pandas as pd
import pytest

from workbench.store.claims import Claims
from workbench.store.views import labels_hash, pair_hashes


def test_a_claim_is_rewritten_in_place(tmp_path):
    a = Claims(tmp_path, annotator="ann")
    b = Claims(tmp_path, annotator="bob")
    with a.claiming():
        a.hold(["x", "y", "z"])
    path = tmp_path / "_claims" / f"{a.session}.json"
    inode = path.stat().st_ino
    with a.claiming():
        a.hold(["w"])
    a.release(["x", "y", "z"])  # shorter than before: nothing of the old text is left behind
    assert path.stat().st_ino == inode
    assert json.loads(path.read_text())["items"] == ["w"]
    assert b.others() == {"w": ["ann"]}
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".tmp")] == []


def test_a_claim_cut_short_by_a_crash_is_no_claim_and_is_tidied_after_a_lease(tmp_path):
    live = Claims(tmp_path, annotator="bob", lease_s=60)
    torn = tmp_path / "_claims" / "0123456789abcdef.json"
    torn.write_text('{"session": "0123456789abcdef", "items": ["x", "y"')
    assert live.others() == {}
    assert torn.exists()  # young: its writer may be about to finish it
    old = time.time() - 120
    os.utime(torn, (old, old))
    assert live.others() == {}
    assert not torn.exists()


def test_a_few_pairs_hash_like_many():
    rng = np.random.default_rng(0)
    ids = [f"item-{i}" for i in range(200)] + ["é漢字", "", "a\x1fb"]
    labels = [str(v) for v in rng.integers(0, 5, len(ids))]
    many = pair_hashes(ids, labels)  # the vectorised path
    for k in range(len(ids)):
        few = pair_hashes([ids[k]], [labels[k]])
        assert (few[0][0], few[1][0]) == (many[0][k], many[1][k])
    # non-string values take the vectorised path, as before
    assert labels_hash([1, 2], ["3", "4"]) == labels_hash(["1", "2"], ["3", "4"])


def test_many_pairs_hash_as_pandas_series_hashing_did_for_arrow_backed_ids():
    """Stores keep these hashes: the large path hashes an object array in C, and must give
    the values that hashing the pairs as a pandas Series gave, for ids held as Arrow-backed
    text (a Parquet pool's) and as Python strings, non-ASCII included."""
    from workbench.store.views import _HASH_KEYS

    ids = [f"item-{i}" for i in range(300)] + ["é-ü", "数字", "a b", ""]
    labels = [str(i % 7) for i in range(len(ids))]
    pairs = (pd.Series(ids, dtype=object).astype(str) + "\x1f"
             + pd.Series(labels, dtype=object).astype(str).to_numpy())
    before = tuple(pd.util.hash_pandas_object(pairs, index=False, hash_key=k).to_numpy() for k in _HASH_KEYS)
    for given in (ids, pd.Index(pd.array(ids, dtype="str"))):
        after = pair_hashes(given, labels)
        assert all(np.array_equal(a, b) for a, b in zip(before, after))


class Listings:
    """Counts the store's listings of its folder (what a quick sync leaves out)."""

    def __init__(self, monkeypatch):
        from workbench.store import files

        self.count, real = 0, files.list_names

        def counted(*args, **kwargs):
            self.count += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(files, "list_names", counted)

    def since(self) -> int:
        count, self.count = self.count, 0
        return count


def test_a_quick_sync_lists_the_folder_only_when_a_writer_stamped_it(tmp_path, monkeypatch):
    from workbench import LabelStore

    ann = LabelStore.open(tmp_path / "s", annotator="ann")
    bob = LabelStore.open(tmp_path / "s", annotator="bob")
    bob.sync()  # starts the count
    listings = Listings(monkeypatch)
    ann.append("x", "1")
    assert [e["item_id"] for e in bob.sync(quick=True)] == ["x"] and listings.since() == 1
    assert bob.sync(quick=True) == [] and listings.since() == 0  # nothing published since
    bob.append("y", "2")  # its own file: the stamp it replaced was the one it had seen
    assert [e["item_id"] for e in bob.sync(quick=True)] == ["y"] and listings.since() == 0
    ann.append("z", "3")
    bob.append("w", "4")  # ann stamped in between: bob's own stamp does not hide ann's file
    assert sorted(e["item_id"] for e in bob.sync(quick=True)) == ["w", "z"] and listings.since() == 1
    assert bob.sync() == [] and listings.since() == 1  # a full sync always lists


def test_a_store_without_a_readable_stamp_is_listed_on_every_quick_sync(tmp_path, monkeypatch):
    from workbench import LabelStore
    from workbench.store.files import STAMP

    ann = LabelStore.open(tmp_path / "s", annotator="ann")
    ann.append("x", "1")
    (tmp_path / "s" / STAMP).unlink()  # a store written before stamps, or one deleted by hand
    bob = LabelStore.open(tmp_path / "s", annotator="bob")
    bob.sync()
    listings = Listings(monkeypatch)
    assert bob.sync(quick=True) == [] and bob.sync(quick=True) == [] and listings.since() == 2
    ann.append("y", "2")  # stamps it again
    (tmp_path / "s" / STAMP).write_bytes(b"\xff garbled by hand")
    assert [e["item_id"] for e in bob.sync(quick=True)] == ["y"] and listings.since() == 1


def test_a_file_published_by_a_writer_killed_before_it_stamped_is_seen_by_a_full_sync(
        tmp_path, monkeypatch):
    from workbench import LabelStore
    from workbench.store import files

    ann = LabelStore.open(tmp_path / "s", annotator="ann")
    bob = LabelStore.open(tmp_path / "s", annotator="bob")
    ann.append("x", "1")
    bob.sync()
    bob.sync(quick=True)

    def killed(directory):
        raise KeyboardInterrupt("killed between publishing the part and stamping the log")

    monkeypatch.setattr(files, "bump_stamp", killed)
    try:
        ann.append("y", "2")
    except KeyboardInterrupt:
        pass
    monkeypatch.undo()
    # The label was never acknowledged; a quick look may miss it (its item is still claimed,
    # or served again), and the next full sync (the session's watcher, twice a second) has it.
    assert bob.sync(quick=True) == []
    assert [e["item_id"] for e in bob.sync()] == ["y"]


def test_a_pull_stamps_the_log_so_every_handle_on_the_store_sees_what_it_copied(tmp_path, monkeypatch):
    from workbench import LabelStore
    from workbench.store.sync import clone, pull

    shared = LabelStore.open(tmp_path / "shared", annotator="ann")
    shared.append("a", "x")
    shared.commit("start")
    laptop = clone(tmp_path / "shared", tmp_path / "laptop", annotator="bob")
    other = LabelStore.open(tmp_path / "laptop", annotator="bob")  # the session's handle
    other.append("c", "x")
    other.sync()
    listings = Listings(monkeypatch)
    assert other.sync(quick=True) == [] and listings.since() == 0
    shared.append("b", "y")
    shared.commit("more")
    pull(laptop)
    listings.since()
    assert "b" in [e["item_id"] for e in other.sync(quick=True)] and listings.since() == 1


def test_a_stamp_that_cannot_be_written_or_read_costs_no_label(tmp_path, monkeypatch):
    from workbench import LabelStore
    from workbench.store.files import STAMP

    ann = LabelStore.open(tmp_path / "s", annotator="ann")
    bob = LabelStore.open(tmp_path / "s", annotator="bob")
    (tmp_path / "s" / STAMP).mkdir()  # something else in its place
    bob.sync()
    with pytest.warns(RuntimeWarning, match="could not stamp the log"):
        ann.append("x", "1")
    listings = Listings(monkeypatch)
    assert [e["item_id"] for e in bob.sync(quick=True)] == ["x"] and listings.since() == 1
    assert LabelStore.open(tmp_path / "s").labels().to_dict() == {"x": "1"}


def test_a_listing_torn_by_a_compaction_is_listed_again(tmp_path, monkeypatch):
    """A listing that runs across compaction's publish (the segment renamed into place, then
    the parts it holds deleted) may hold neither: publishing stamps the log, so the reader's
    next quick look lists again and finds the segment."""
    from workbench import LabelStore
    from workbench.store import compaction, files

    ann = LabelStore.open(tmp_path / "s", annotator="ann")
    reader = LabelStore.open(tmp_path / "s", annotator="r")
    ann.append("i0", "x")
    ann.append("i1", "x")
    reader.sync()
    reader.sync(quick=True)
    ann.append("i2", "x")
    real, torn = files.list_names, []

    def torn_listing(path, prefixes, suffix=".parquet"):
        names = real(path, prefixes, suffix)
        if "part-" in prefixes and not torn:
            torn.append(1)
            compaction.compact(path, retire_after=0)  # publishes while the listing runs
            return [n for n in names if n != f"part-{ann._writer}-{2:012d}.parquet"]  # i2's
        return names

    monkeypatch.setattr(files, "list_names", torn_listing)
    assert reader.sync(quick=True) == []  # the torn listing had neither i2's part nor the segment
    monkeypatch.undo()
    assert [e["item_id"] for e in reader.sync(quick=True)] == ["i2"]
