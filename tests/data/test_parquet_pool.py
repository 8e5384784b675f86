"""Pool.from_parquet over real partitioned Parquet datasets written by pyarrow."""

import pickle
import re
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workbench import Pool, Session
from workbench.data import ParquetDatasetError, PartitionedFeatures
from workbench.data.representation import fingerprint

SPLITS = [(0, 25), (25, 60), (60, 90)]  # three files of different sizes


def images(n=90, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 8, 8), dtype=np.uint8), rng.integers(0, 3, n)


def write(folder, X, y=None, *, splits=SPLITS, row_group_size=10, ids=None, extra=None,
          fixed=True, metadata=None):
    """One file per split, `features` a list column of each row's numbers."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = [f"item-{i:03d}" for i in range(len(X))] if ids is None else ids
    flat = X.reshape(len(X), -1)
    for k, (a, b) in enumerate(splits):
        values = pa.array(flat[a:b].reshape(-1))
        column = pa.FixedSizeListArray.from_arrays(values, flat.shape[1]) if fixed else \
            pa.array([list(r) for r in flat[a:b]], type=pa.list_(pa.from_numpy_dtype(flat.dtype)))
        cols = {"item_id": ids[a:b], "features": column}
        if y is not None:
            cols["label"] = pa.array(y[a:b])
        for name, values in (extra or {}).items():
            cols[name] = values[a:b]
        table = pa.table(cols)
        if metadata:
            table = table.replace_schema_metadata(metadata)
        pq.write_table(table, folder / f"part-{k}.parquet", row_group_size=row_group_size)
    return folder


@pytest.fixture
def data(tmp_path):
    X, y = images()
    return write(tmp_path / "ds", X, y), X.astype(np.float32) / 255, y


def test_ids_labels_classes_and_rows_as_in_the_files(data):
    folder, X, y = data
    pool = Pool.from_parquet(folder, label_column="label", image_shape=(8, 8))
    assert isinstance(pool.X, PartitionedFeatures)
    assert (len(pool), pool.kind, pool.classes, pool.image_scale) == (90, "image", [0, 1, 2], 255.0)
    assert list(pool.item_ids) == [f"item-{i:03d}" for i in range(90)]
    assert np.array_equal(pool.y, y) and pool.true_label("item-042") == y[42]
    assert (pool.X.shape, pool.X.dtype, pool.X.ndim, len(pool.X)) == ((90, 8, 8), np.float32, 3, 90)
    assert np.array_equal(pool.X[30], X[30]) and np.array_equal(pool.X[-1], X[-1])
    assert np.array_equal(pool.X[[89, 3, 3, 27, 61]], X[[89, 3, 3, 27, 61]])
    assert np.array_equal(pool.X[20:70], X[20:70]) and np.array_equal(pool.X[5:80:7], X[5:80:7])
    assert np.array_equal(pool.X[np.arange(90) % 4 == 0], X[::4])
    assert np.array_equal(pool.X[2, 3], X[2, 3]) and pool.X[[]].shape == (0, 8, 8)
    assert np.array_equal(np.asarray(pool.X), X)
    with pytest.raises(IndexError, match="row 90 is out of range"):
        pool.X[90]


def test_a_folder_a_glob_a_file_and_a_list_in_path_order(data, tmp_path):
    folder, X, _ = data
    (folder / "_SUCCESS").write_text("")  # what Spark leaves: not data
    nested = folder / "more" / "z"
    nested.mkdir(parents=True)
    shutil.copy(folder / "part-0.parquet", nested / "copy.parquet")
    assert len(Pool.from_parquet(folder, id_column=None, image_shape=(8, 8))) == 115
    globbed = Pool.from_parquet(str(folder / "part-*.parquet"), image_shape=(8, 8))
    listed = Pool.from_parquet([folder / "part-2.parquet", folder / "part-0.parquet"], image_shape=(8, 8))
    one = Pool.from_parquet(folder / "part-1.parquet", image_shape=(8, 8))
    assert list(globbed.item_ids) == [f"item-{i:03d}" for i in range(90)]
    assert np.array_equal(np.asarray(listed.X), np.concatenate([X[:25], X[60:]]))
    assert one.name == "part-1" and np.array_equal(np.asarray(one.X), X[25:60])
    ids = Pool.from_parquet(folder, id_column=None, image_shape=(8, 8)).item_ids
    assert ids[0] == "more/z/copy.parquet:0" and ids[-1] == "part-2.parquet:29"


def test_parts_cover_the_pool_in_order_read_their_rows_and_pickle(data):
    folder, X, _ = data
    pool = Pool.from_parquet(folder, image_shape=(8, 8))
    per_file = pool.parts()
    assert [(p.start, p.stop) for p in per_file] == SPLITS
    small = pool.parts(rows_per_part=20)  # row groups of 10: two per part at most
    assert [(p.start, p.stop, p.row_groups) for p in small[:3]] == [(0, 20, (0, 1)), (20, 25, (2,)),
                                                                    (25, 45, (0, 1))]
    assert [p.start for p in small[1:]] == [p.stop for p in small[:-1]] and small[-1].stop == 90
    for part in small:
        back = pickle.loads(pickle.dumps(part))
        assert back == part and np.array_equal(back.read(), X[part.start:part.stop])
    assert "part-1.parquet" in small[2].describe() and "pool rows 25-44" in small[2].describe()


def test_image_shape_and_scale_from_the_files_metadata(tmp_path):
    X, _ = images()
    floats = (X / 255).astype(np.float32)
    folder = write(tmp_path / "m", floats, metadata={"workbench.image_shape": "[8, 8]"})
    pool = Pool.from_parquet(folder)
    assert pool.kind == "image" and pool.image_scale == 1.0  # largest pixel <= 1: already scaled
    assert np.allclose(pool.X[7], floats[7])


def test_vectors_from_a_list_column_and_a_table_from_numeric_columns(tmp_path):
    rng = np.random.default_rng(1)
    V = rng.normal(size=(90, 5))
    vectors = Pool.from_parquet(write(tmp_path / "v", V, fixed=False))
    assert vectors.kind == "vector" and vectors.X.shape == (90, 5)
    assert np.allclose(vectors.X[10:12], V[10:12].astype(np.float32))
    table = Pool.from_parquet(write(tmp_path / "t", V, extra={"a": V[:, 0], "b": V[:, 1]}),
                              features=["a", "b"])
    assert (table.kind, table.feature_names, table.X.shape) == ("table", ["a", "b"], (90, 2))
    assert table.render("item-004") == {"kind": "table", "rows": [["a", f"{V[4, 0]:.4g}"],
                                                                  ["b", f"{V[4, 1]:.4g}"]]}


def test_render_an_image_pool_a_text_pool_and_image_paths(data, tmp_path):
    folder, X, _ = data
    shown = Pool.from_parquet(folder, image_shape=(8, 8)).render("item-031")
    assert (shown["kind"], shown["width"], shown["height"]) == ("image", 8, 8)
    texts = np.array([f"text number {i}" for i in range(90)], dtype=object)
    text_pool = Pool.from_parquet(write(tmp_path / "tx", X, extra={"text": texts}), text_column="text")
    assert text_pool.kind == "text" and text_pool.render("item-050") == {"kind": "text",
                                                                         "text": "text number 50"}
    from PIL import Image
    Image.fromarray((X[0] * 255).astype(np.uint8)).save(tmp_path / "pic.png")
    paths = np.array(["../pic.png"] * 90, dtype=object)  # relative to the file that names it
    with_paths = Pool.from_parquet(write(tmp_path / "ip", X, extra={"path": paths}), image_column="path")
    assert with_paths.image_source == "path" and with_paths.render("item-003")["kind"] == "image"


@pytest.mark.slow  # computing text features: ~5 s on 2 cores
def test_a_text_pool_without_stored_features_gets_text_features(tmp_path):
    X, _ = images()
    texts = pa.array([f"{w} {w} words about {i % 5}" for i, w in enumerate(["cat", "dog", "bird"] * 30)])
    folder = write(tmp_path / "t", X, extra={"body": texts})
    pq.write_table(pq.read_table(folder / "part-0.parquet").drop_columns(["features"]),
                   tmp_path / "only_text.parquet")
    pool = Pool.from_parquet(tmp_path / "only_text.parquet", text_column="body")
    assert pool.kind == "text" and len(pool) == 25 and isinstance(pool.X, np.ndarray)


def test_subset_and_split_materialise_their_rows(data):
    folder, X, y = data
    pool = Pool.from_parquet(folder, label_column="label", image_shape=(8, 8))
    train, test = pool.train_test_split(0.3, seed=0)
    assert len(train) + len(test) == 90 and isinstance(train.X, np.ndarray)
    assert np.array_equal(train.X, X[pool.positions(train.item_ids)])
    sub = pool.subset([5, 70])
    assert list(sub.item_ids) == ["item-005", "item-070"] and np.array_equal(sub.X, X[[5, 70]])


def test_fingerprint_reads_no_features_and_follows_the_files(tmp_path):
    X, _ = images()
    bad = X.astype(np.float32)
    bad[40, 2, 2] = np.nan  # any read of file 1's features fails: the key must not read them
    folder = write(tmp_path / "a", bad)
    pool = Pool.from_parquet(folder, image_shape=(8, 8), image_scale=255)
    key = fingerprint(pool, "patches")
    with pytest.raises(ParquetDatasetError):
        np.asarray(pool.X)
    copy = tmp_path / "b"
    shutil.copytree(folder, copy)  # a copy elsewhere is the same content: same key
    assert fingerprint(Pool.from_parquet(copy, image_shape=(8, 8), image_scale=255), "patches") == key
    changed = bad.copy()
    changed[60:] = images(seed=5)[0][60:]  # file 2 rewritten with other images, same ids:
    write(copy, changed)  # same size and statistics (random pixels do not compress; 0 to 255)
    assert fingerprint(Pool.from_parquet(copy, image_shape=(8, 8), image_scale=255), "patches") != key


def test_a_session_labels_and_runs_a_round(data, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    folder, _, _ = data
    pool = Pool.from_parquet(folder, label_column="label", image_shape=(8, 8))
    session = Session(pool, tmp_path / "labels")
    for item in session.peek(12):
        session.label(item.item_id, pool.true_label(item.item_id))
    session.retrain()
    assert len(session.labels) == 12 and session.history["round"].iloc[-1] >= 1  # (audit items aside)
    assert session.next().suggestion in pool.classes


# -- bad input and faults: each error names the file (and the rows) -----------------------------
def test_duplicate_ids_name_both_files_and_rows(tmp_path):
    X, _ = images()
    ids = [f"item-{i:03d}" for i in range(90)]
    ids[70] = "item-010"  # file 2, row 10 repeats file 0, row 10
    folder = write(tmp_path / "d", X, ids=ids)
    with pytest.raises(ParquetDatasetError, match=r"item id 'item-010' appears 2 times: "
                       r"'.*part-0.parquet' row 10, '.*part-2.parquet' row 10") as e:
        Pool.from_parquet(folder, image_shape=(8, 8))
    assert [f.rsplit("/", 1)[-1] for f in e.value.files] == ["part-0.parquet", "part-2.parquet"]
    ids[70], ids[12] = "item-070", "item-011"  # within one file
    with pytest.raises(ParquetDatasetError, match=r"'item-011' appears 2 times: .*part-0.parquet' row 11, "
                       r".*part-0.parquet' row 12"):
        Pool.from_parquet(write(tmp_path / "w", X, ids=ids), image_shape=(8, 8))


def test_a_file_whose_columns_or_types_differ_is_named(data):
    folder, X, y = data
    table = pq.read_table(folder / "part-1.parquet")
    pq.write_table(table.set_column(2, "label", pa.array(y[25:60].astype(str))), folder / "part-1.parquet")
    with pytest.raises(ParquetDatasetError, match=r"part-1.parquet': column 'label' is string, expected "
                       r"int64 as in .*part-0.parquet"):
        Pool.from_parquet(folder, label_column="label", image_shape=(8, 8))
    pq.write_table(table.drop_columns(["label"]), folder / "part-1.parquet")
    with pytest.raises(ParquetDatasetError, match=r"part-1.parquet' has no column 'label' \(int64\)"):
        Pool.from_parquet(folder, image_shape=(8, 8))


def test_missing_paths_empty_globs_and_unreadable_files_are_named(data, tmp_path):
    folder, _, _ = data
    with pytest.raises(FileNotFoundError, match=r"'.*part-7.parquet' does not exist; did you mean"):
        Pool.from_parquet(folder / "part-7.parquet")
    with pytest.raises(ParquetDatasetError, match=r"no files match '.*\*.pq'"):
        Pool.from_parquet(str(folder / "*.pq"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match=r"holds no Parquet files .*it holds notes.txt"):
        Pool.from_parquet(tmp_path / "empty")
    (folder / "part-1.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(ParquetDatasetError, match=r"cannot read Parquet file '.*part-1.parquet'"):
        Pool.from_parquet(folder, image_shape=(8, 8))


def test_a_file_gone_or_changed_after_opening_is_named_when_read(data):
    folder, X, _ = data
    pool = Pool.from_parquet(folder, image_shape=(8, 8))
    part = pool.parts()[2]
    shutil.copy(folder / "part-0.parquet", folder / "part-2.parquet")
    with pytest.raises(ParquetDatasetError, match=r"part-2.parquet' changed since the pool was opened"):
        part.read()
    (folder / "part-2.parquet").unlink()
    with pytest.raises(FileNotFoundError, match=r"part-2.parquet' was part of the dataset .* not there"):
        pool.X[75]
    assert np.array_equal(pool.X[3], X[3])  # the other files still read


def test_vectors_of_the_wrong_length_are_named_with_their_rows(tmp_path):
    X, _ = images()
    folder = write(tmp_path / "v", X, fixed=False)
    rows = pq.read_table(folder / "part-1.parquet").to_pylist()
    rows[4]["features"] = rows[4]["features"][:-1]
    pq.write_table(pa.Table.from_pylist(rows, schema=pq.read_schema(folder / "part-1.parquet")),
                   folder / "part-1.parquet")
    pool = Pool.from_parquet(folder, image_shape=(8, 8))  # opening reads no features
    assert np.array_equal(pool.X[0], X[0].astype(np.float32) / 255)
    message = r"part-1.parquet': features column 'features' has a vector of the wrong length " \
              r"\(e.g. 63 numbers\) in 1 rows: file rows 4 \(items 'item-029'\); expected 64 numbers"
    with pytest.raises(ParquetDatasetError, match=message):
        pool.X[25:35]
    with pytest.raises(ParquetDatasetError, match=message):
        Pool.from_parquet(folder, image_shape=(8, 8), check="full")


def test_nan_features_are_named_when_read_or_at_open_with_a_full_check(tmp_path):
    rng = np.random.default_rng(2)
    V = rng.normal(size=(90, 4))
    V[[63, 65]] = [np.nan, 0, np.inf, 1]
    folder = write(tmp_path / "n", V)
    pool = Pool.from_parquet(folder)
    assert np.isfinite(pool.X[62]).all()  # a row beside the bad ones reads
    message = re.escape("contain NaN or infinite values in 2 rows: file rows 3, 5 (items 'item-063', "
                        "'item-065')")
    with pytest.raises(ParquetDatasetError, match=r"part-2.parquet' " + message):
        pool.parts()[2].read()
    with pytest.raises(ParquetDatasetError, match=message):
        Pool.from_parquet(folder, check="full")


def test_missing_ids_labels_and_columns_are_named(data, tmp_path):
    folder, X, y = data
    labels = pa.array([None if i == 33 else int(v) for i, v in enumerate(y)])
    table = pq.read_table(folder / "part-1.parquet")
    pq.write_table(table.set_column(2, "label", labels[25:60]), folder / "part-1.parquet")
    with pytest.raises(ParquetDatasetError, match=r"label column 'label' is missing in 1 rows: "
                       r"'.*part-1.parquet' row 8"):
        Pool.from_parquet(folder, label_column="label", image_shape=(8, 8))
    with pytest.raises(ParquetDatasetError, match=r"label column 'kind' is not in"):
        Pool.from_parquet(folder, label_column="kind")
    with pytest.raises(ParquetDatasetError, match=r"id column 'key' is not in .* or id_column=None"):
        Pool.from_parquet(folder, id_column="key")
    with pytest.raises(ParquetDatasetError, match=r"features column 'item_id' of .* is string; expected"):
        Pool.from_parquet(folder, features="item_id")
    with pytest.raises(ParquetDatasetError, match=r"holds 64 numbers per row, but an image of \(9, 9\)"):
        Pool.from_parquet(folder, image_shape=(9, 9))


@pytest.mark.slow  # a real 2-process Dask cluster: a few seconds to start
def test_dask_workers_read_their_own_parts(data, client):
    from workbench.data.jobs import map_parts

    folder, X, _ = data
    pool = Pool.from_parquet(folder, image_shape=(8, 8))
    sums = map_parts(lambda part: part.read().sum(axis=(1, 2)), pool.parts(20), cluster=client)
    assert np.allclose(np.concatenate(sums), X.sum(axis=(1, 2)))
