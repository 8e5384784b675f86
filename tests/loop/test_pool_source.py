"""Where a store's pool came from, recorded by the Session and rebuilt from the store alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from workbench.data.datasets import digits
from workbench.data.pool import Pool
from workbench.learn.learners import logistic_regression
from workbench.loop import pool_source
from workbench.loop.session import Session
from workbench.store import StoreError
from workbench.store.log import read_meta


@pytest.fixture
def image_folder(tmp_path):
    """Twelve 8x8 digit images in class subfolders zero/ and one/."""
    pool = digits()
    root = tmp_path / "images"
    for digit, name in ((0, "zero"), (1, "one")):
        (root / name).mkdir(parents=True)
        for position in np.flatnonzero(pool.y == digit)[:6]:
            pixels = (pool.X[position] * 16).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{pool.item_ids[position]}.png")
    return root


def test_the_builtin_digits_are_described_by_name():
    assert pool_source.describe(digits()) == {"kind": "dataset", "name": "digits"}
    assert pool_source.describe(digits().subset(range(100))) is None  # not the whole data set
    rebuilt = pool_source.load({"kind": "dataset", "name": "digits"})
    assert rebuilt.item_ids.equals(digits().item_ids)


def test_a_folder_pool_is_described_by_its_absolute_path(image_folder, monkeypatch):
    monkeypatch.chdir(image_folder.parent)
    pool = Pool.from_folder("images")  # a relative path, recorded absolute
    source = pool_source.describe(pool)
    assert source == {"kind": "folder", "path": str(image_folder.resolve())}
    rebuilt = pool_source.load(source)
    assert rebuilt.item_ids.equals(pool.item_ids) and rebuilt.classes == pool.classes
    np.testing.assert_array_equal(rebuilt.X, pool.X)
    assert pool_source.describe(pool.subset(range(5))) is None  # part of a folder is not the folder
    named = Pool.from_folder(image_folder, name="scans")
    assert pool_source.describe(named) == {**source, "name": "scans"}
    assert pool_source.load(pool_source.describe(named)).name == "scans"


def test_a_pool_read_from_a_file_by_its_data_flag_knows_its_source(tmp_path):
    frame = pd.DataFrame({"text": [f"word {i} " * 3 for i in range(20)],
                          "topic": ["a", "b"] * 10})
    frame.to_csv(tmp_path / "texts.csv", index=False)
    source = pool_source.from_data_flag(str(tmp_path / "texts.csv"), "topic", "text")
    assert source == {"kind": "file", "path": str((tmp_path / "texts.csv").resolve()),
                      "label_column": "topic", "text_column": "text"}
    pool = pool_source.load(source)
    assert pool.kind == "text" and pool.classes == ["a", "b"]
    assert pool_source.describe(pool) == source
    assert pool_source.from_data_flag("digits") == {"kind": "dataset", "name": "digits"}


def test_a_pool_built_in_memory_has_no_known_source():
    assert pool_source.describe(Pool.from_arrays(np.eye(4), [0, 1, 0, 1])) is None


def test_the_data_flag_names_what_it_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="'nope.csv' is neither 'digits' nor an existing"):
        pool_source.from_data_flag("nope.csv")
    np.savez(tmp_path / "x.npz", X=np.eye(3))
    with pytest.raises(ValueError, match="--text-column needs a CSV or Parquet file, got 'x.npz'"):
        pool_source.from_data_flag(str(tmp_path / "x.npz"), text_column="text")
    with pytest.raises(ValueError, match="unknown pool source .*'kind': 'tape'.*expected"):
        pool_source.load({"kind": "tape"})


def test_a_session_records_the_source_and_session_open_rebuilds_it(image_folder, tmp_path):
    store = tmp_path / "store"
    pool = Pool.from_folder(image_folder)
    session = Session(pool, store, learner=logistic_regression(), watch=False)
    session.label(pool.item_ids[0], pool.y[0])
    session.close()
    meta = read_meta(store)
    assert meta["pool_source"] == {"kind": "folder", "path": str(image_folder.resolve())}
    assert set(meta["pool"]) == {"items_hash", "n_items"}  # what "pool" means is unchanged

    reopened = Session.open(store, learner=logistic_regression(), watch=False)
    try:
        assert reopened.pool.item_ids.equals(pool.item_ids)
        assert reopened.classes == pool.classes
        assert reopened.labels == {pool.item_ids[0]: pool.y[0]}
    finally:
        reopened.close()

    # a later session on a pool built in memory does not forget where the pool came from
    arrays = Pool.from_arrays(pool.X, pool.y, item_ids=pool.item_ids)
    Session(arrays, store, learner=logistic_regression(), watch=False).close()
    assert read_meta(store)["pool_source"] == meta["pool_source"]


def test_session_open_says_what_to_pass_when_the_source_is_unknown(tmp_path):
    store = tmp_path / "store"
    Session(Pool.from_arrays(np.eye(4), [0, 1, 0, 1]), store, learner=logistic_regression(),
            watch=False).close()
    with pytest.raises(ValueError, match=r"does not record where its pool came from .*"
                                         r"Session\(pool, store\)"):
        Session.open(store)
    with pytest.raises(StoreError, match="not a workbench label store"):
        Session.open(tmp_path / "typo")
    assert not (tmp_path / "typo").exists()


def test_a_parquet_dataset_is_recorded_by_its_call_and_session_open_reopens_it(tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    (tmp_path / "shards").mkdir()
    for k in range(3):
        X = rng.normal(size=(20, 4)).astype(np.float32)
        pq.write_table(pa.table({
            "item_id": [f"{k}-{i}" for i in range(20)], "kind": rng.integers(0, 2, 20),
            "features": pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), 4)}),
            tmp_path / "shards" / f"part-{k}.parquet")
    monkeypatch.chdir(tmp_path)  # a relative path is recorded as the absolute one
    pool = Pool.from_parquet("shards", label_column="kind")
    store = tmp_path / "store"
    session = Session(pool, store, learner=logistic_regression(), watch=False)
    session.label(pool.item_ids[5], pool.y[5])
    session.close()
    assert read_meta(store)["pool_source"] == {
        "kind": "parquet", "args": {"source": str(tmp_path / "shards"), "label_column": "kind"}}

    reopened = Session.open(store, learner=logistic_regression(), watch=False)
    try:
        assert reopened.pool.item_ids.equals(pool.item_ids)
        assert reopened.labels == {pool.item_ids[5]: pool.y[5]}
        np.testing.assert_array_equal(reopened.pool.X[[0, 59]], pool.X[[0, 59]])
    finally:
        reopened.close()

    (tmp_path / "shards" / "part-0.parquet").rename(tmp_path / "elsewhere.parquet")
    import shutil

    shutil.rmtree(tmp_path / "shards")
    with pytest.raises(FileNotFoundError, match="shards.*not there any more"):
        Session.open(store, learner=logistic_regression(), watch=False)
