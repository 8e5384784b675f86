"""What the store does on every item served: a claim rewritten in place (no file created or
renamed, which waits for the file system's journal while anyone fsyncs), and a few
(item, label) pairs hashed directly, to the same values as the vectorised hash of many."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pandas as pd

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
