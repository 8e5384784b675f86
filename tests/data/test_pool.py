import warnings

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from workbench import Pool, datasets
from workbench.data import loaders


def test_digits_is_the_embedded_default():
    pool = datasets.digits()
    assert len(pool) == 1797 and pool.kind == "image" and pool.X.shape[1:] == (8, 8)
    assert pool.classes == list(range(10))
    assert 0.0 <= pool.X.min() and pool.X.max() == 1.0
    assert pool.item_ids[0] == "digit-0000" and pool.true_label("digit-0000") == 0


def test_render_kinds():
    pool = datasets.digits()
    img = pool.render("digit-0005")
    assert img["kind"] == "image" and img["mime"] == "image/png" and img["width"] == 8
    texts = Pool.from_texts(["a cat", "<b>bold</b>"], ["x", "y"])
    assert texts.render("1") == {"kind": "text", "text": "<b>bold</b>"}
    table = Pool.from_dataframe(pd.DataFrame({"a": [1.0, 2.0], "b": [3, 4], "y": ["p", "q"]}),
                                label_column="y")
    assert table.kind == "table" and table.X.shape == (2, 2)
    assert table.render("0") == {"kind": "table", "rows": [["a", "1"], ["b", "3"]]}


def test_rgb_images_and_vectors():
    rgb = Pool.from_arrays(np.random.default_rng(0).integers(0, 255, (4, 6, 5, 3)), [0, 1, 0, 1])
    assert rgb.kind == "image" and rgb.X.max() <= 1 and rgb.render("0")["height"] == 6
    vec = Pool.from_arrays(np.ones((3, 4)), [0, 1, 1])
    assert vec.kind == "vector" and vec.render("2")["kind"] == "table"


def test_text_pool_has_offline_features_and_accepts_own_embeddings():
    texts = ["good movie", "bad movie", "great film", "awful film", "fine"] * 4
    pool = Pool.from_texts(texts, ["pos", "neg", "pos", "neg", "pos"] * 4)
    assert pool.X.shape[0] == 20 and np.isfinite(pool.X).all()
    own = Pool.from_texts(texts, embeddings=np.ones((20, 7)), classes=["pos", "neg"])
    assert own.X.shape == (20, 7)


def test_files(tmp_path):
    X, y = np.random.default_rng(0).random((10, 4)), np.arange(10) % 2
    np.savez(tmp_path / "d.npz", X=X, y=y, X_test=X[:3], y_test=y[:3])
    npz = Pool.from_file(tmp_path / "d.npz")
    assert len(npz) == 10 and npz.X_test.shape == (3, 4)
    df = pd.DataFrame(X, columns=list("abcd")).assign(label=y, id=[f"r{i}" for i in range(10)])
    df.to_csv(tmp_path / "d.csv", index=False)
    df.to_parquet(tmp_path / "d.parquet")
    for name in ("d.csv", "d.parquet"):
        pool = Pool.from_file(tmp_path / name, label_column="label", id_column="id")
        assert pool.item_ids[0] == "r0" and pool.X.shape == (10, 4) and pool.classes == [0, 1]


def test_folder_with_class_subfolders(tmp_path):
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.fromarray(np.full((5, 5), 40 * i, np.uint8)).save(tmp_path / cls / f"{i}.png")
    pool = Pool.from_folder(tmp_path)
    assert len(pool) == 6 and pool.classes == ["cat", "dog"]
    assert pool.true_label("dog/2.png") == "dog"
    assert pool.render("cat/0.png")["kind"] == "image"


def test_broken_image_renders_a_placeholder_not_a_crash(tmp_path):
    for i in range(2):
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / f"{i}.png")
    df = pd.DataFrame({"path": ["0.png", "1.png"], "y": [0, 1]})
    df.attrs["base_dir"] = str(tmp_path)
    pool = Pool.from_dataframe(df, image_column="path", label_column="y")
    (tmp_path / "0.png").unlink()
    (tmp_path / "1.png").write_bytes(b"not a png")
    assert pool.render("0") == {"kind": "error", "reason": f"image file not found: {tmp_path / '0.png'}"}
    broken = pool.render("1")
    assert broken["kind"] == "error" and "cannot read image" in broken["reason"]


# -- bad input: a clear error naming the value and what was expected ---------------------

def test_nan_and_infinite_features():
    X = np.ones((4, 2))
    X[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite values in 1 rows \(first: item '2'\)"):
        Pool.from_arrays(X)
    X[2, 1] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        Pool.from_arrays(X)


def test_empty_pool():
    with pytest.raises(ValueError, match="pool is empty"):
        Pool.from_arrays(np.empty((0, 3)))
    with pytest.raises(ValueError, match="DataFrame is empty"):
        Pool.from_dataframe(pd.DataFrame({"a": []}))


def test_features_and_ids_of_different_lengths():
    with pytest.raises(ValueError, match="3 feature rows, 2 item ids"):
        Pool.from_arrays(np.ones((3, 2)), item_ids=["a", "b"])
    with pytest.raises(ValueError, match="'a' appears more than once"):
        Pool.from_arrays(np.ones((2, 2)), item_ids=["a", "a"])


def test_images_of_mixed_shapes(tmp_path):
    with pytest.raises(ValueError, match="mixed shapes"):
        Pool.from_arrays(np.array([np.ones((2, 2)), np.ones((3, 3))], dtype=object))
    (tmp_path / "a").mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "a" / "1.png")
    Image.fromarray(np.zeros((5, 4), np.uint8)).save(tmp_path / "a" / "2.png")
    with pytest.raises(ValueError, match=r"2.png' is \(5, 4\) but the first is \(4, 4\)"):
        Pool.from_folder(tmp_path)


def test_images_and_vectors_with_no_pixels_or_features_are_refused():
    for shape in [(3, 0, 8), (3, 8, 0), (3, 0, 0, 3)]:
        with pytest.raises(ValueError, match=rf"images of shape \({shape[1]}, {shape[2]}\) have no pixels"):
            Pool.from_arrays(np.zeros(shape), y=[[]] * 3, task="boxes", classes=["a"])
        with pytest.raises(ValueError, match="have no pixels"):
            Pool.from_arrays(np.zeros(shape), y=[0, 1, 0])
    with pytest.raises(ValueError, match=r"vectors of shape \(3, 0\) have no features"):
        Pool.from_arrays(np.zeros((3, 0)), y=[0, 1, 0])


def test_unknown_item_id_and_missing_columns():
    pool = Pool.from_arrays(np.ones((3, 2)))
    with pytest.raises(KeyError, match="item_id 'nope' is not in the pool"):
        pool.position("nope")
    with pytest.raises(ValueError, match="column 'txt' is not in the DataFrame"):
        Pool.from_dataframe(pd.DataFrame({"text": ["a"]}), text_column="txt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Pool.from_file("/nonexistent/data.csv")


def test_split_is_stratified_and_seeded():
    pool = datasets.digits()
    a_train, a_test = pool.train_test_split(0.3, seed=3)
    b_train, _ = pool.train_test_split(0.3, seed=3)
    assert list(a_train.item_ids) == list(b_train.item_ids)
    assert len(a_test) == 540 and set(a_train.item_ids).isdisjoint(a_test.item_ids)
    counts = pd.Series(a_test.y).value_counts()
    assert counts.min() >= 50


def test_blank_texts_are_refused_naming_their_rows(tmp_path):
    with pytest.raises(ValueError, match=r"texts hold 3 missing or blank values: row 1 \(empty\), "
                                         r"row 2 \(missing\), row 3 \(only whitespace\); expected some "
                                         "text for every item"):
        Pool.from_texts(["a cat", "", None, " \n\t", "a dog"], embeddings=np.ones((5, 2)))
    with pytest.raises(ValueError, match=r"9 missing or blank values: item 'a' \(only whitespace\), "
                                         r"item 'b' .* item 'e' \(only whitespace\) and 4 more;"):
        Pool.from_texts([" "] * 9, item_ids=list("abcdefghi"), embeddings=np.ones((9, 2)))
    # a text column of a frame or a file: named, with the rows' item ids
    frame = pd.DataFrame({"id": ["m1", "m2", "m3"], "body": ["win now", "  ", "lunch?"],
                          "y": ["spam", "spam", "ham"]})
    with pytest.raises(ValueError, match=r"text column 'body' holds 1 missing or blank value: "
                                         r"item 'm2' \(only whitespace\)"):
        Pool.from_dataframe(frame, text_column="body", id_column="id", label_column="y",
                            embeddings=np.ones((3, 2)))
    frame.assign(body=["win now", None, "lunch?"]).to_csv(tmp_path / "sms.csv", index=False)
    with pytest.raises(ValueError, match=r"text column 'body' holds 1 missing or blank value: "
                                         r"item '1' \(missing\)"):
        Pool.from_file(tmp_path / "sms.csv", text_column="body", embeddings=np.ones((3, 2)))


def image_folder(root, classes=("0", "1"), n=3):
    for cls in classes:
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full((4, 4), 40 * i, np.uint8)).save(root / cls / f"{i}{cls}.png")
    return root


def test_files_that_are_not_images_are_skipped_with_one_warning(tmp_path):
    image_folder(tmp_path)
    (tmp_path / "notes.txt").write_text("labels by hand")
    (tmp_path / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    with pytest.warns(UserWarning) as caught:
        pool = Pool.from_folder(tmp_path)
    assert len(pool) == 6 and pool.classes == ["0", "1"]  # the stray files change nothing
    assert len(caught) == 1 and caught[0].category is loaders.SkippedFilesWarning
    assert str(caught[0].message).startswith(
        f"skipped 2 files that are not images under {str(tmp_path)!r}: .DS_Store, notes.txt (")
    assert caught[0].filename == __file__  # it points at the call, not at the loader

    for i in range(5):
        (tmp_path / "1" / f"scan{i}.pdf").write_bytes(b"%PDF")
    with pytest.warns(loaders.SkippedFilesWarning, match=r"skipped 7 files .*: \.DS_Store, "
                      r"1/scan0\.pdf, 1/scan1\.pdf, 1/scan2\.pdf, 1/scan3\.pdf and 2 more \("):
        Pool.from_folder(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a folder of images alone: no warning
        Pool.from_folder(tmp_path / "0")


def test_display_name_hides_the_class_folder_that_is_the_label(tmp_path):
    pool = Pool.from_folder(image_folder(tmp_path / "digits"))
    assert pool.true_label("1/01.png") == "1" and "1/01.png" in pool  # the id keeps its folder
    assert pool.display_name("1/01.png") == "01.png" and pool.display_name("0/20.png") == "20.png"
    with pytest.raises(KeyError, match="'0/nope.png' is not in the pool"):
        pool.display_name("0/nope.png")
    train, test = pool.train_test_split(0.5, seed=0)
    sub = pool.subset([4, 0])
    for part in (train, test, sub):
        assert [part.display_name(i) for i in part.item_ids] == \
            [i.split("/")[1] for i in part.item_ids]
    # a pool reopened from where a store says it came from names its items the same way
    from workbench.loop import pool_source

    again = pool_source.load(pool_source.describe(pool))
    assert again.display_name("1/21.png") == "21.png"

    # where the folder is not the label, the name is the item id
    flat = Pool.from_folder(tmp_path / "digits" / "1")
    assert flat.classes is None and flat.display_name("01.png") == "01.png"
    nested = tmp_path / "nested"
    (nested / "a" / "b").mkdir(parents=True)
    (nested / "c").mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(nested / "a" / "b" / "x.png")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(nested / "c" / "y.png")
    deep = Pool.from_folder(nested)  # not one level of class folders: no ground truth
    assert deep.classes is None and deep.display_name("a/b/x.png") == "a/b/x.png"
    assert datasets.digits().display_name("digit-0005") == "digit-0005"
    assert Pool.from_texts(["a/b", "c"], embeddings=np.ones((2, 2)),
                           item_ids=["x/1", "y"]).display_name("x/1") == "x/1"
