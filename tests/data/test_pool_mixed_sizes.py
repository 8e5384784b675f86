"""A boxes pool of images of different sizes: padded (bottom, right) to the largest width and
height, each image's own size kept, its boxes checked against that size and its rendering at
that size; other tasks keep refusing mixed sizes, and a pool whose padding would take too much
memory is refused before it is allocated. (A session on such a pool:
tests/loop/test_boxes_mixed_sizes.py.)"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from workbench import Pool
from workbench.data import loaders
from workbench.data.boxes import clipped, image_size, image_sizes

SIZES = [(30, 20), (12, 40), (25, 25)]  # (width, height): the canvas is 30 x 40


def _arrays(channels: int | None = None) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(1, 256, (h, w) if channels is None else (h, w, channels)).astype(np.uint8)
            for w, h in SIZES]


def test_arrays_of_three_sizes_pad_to_the_largest_and_keep_each_size():
    images = _arrays()
    truth = [[(0, 0, 30, 20, "a")], [(0, 30, 12, 10, "b")], []]
    pool = Pool.from_arrays(images, y=truth, task="boxes")
    assert pool.X.shape == (3, 40, 30) and pool.X.dtype == np.float32 and pool.image_scale == 255
    assert pool.image_sizes.tolist() == [list(s) for s in SIZES]
    assert [image_size(pool, i) for i in pool.item_ids] == SIZES == [image_size(pool, p) for p in range(3)]
    assert image_sizes(pool).tolist() == [list(s) for s in SIZES]
    for x, raw, (w, h) in zip(pool.X, images, SIZES):  # each image in the top-left, zeros beside it
        np.testing.assert_allclose(x[:h, :w], raw / 255, atol=1e-6)
        assert not x[h:].any() and not x[:, w:].any()
    assert pool.true_label("1") == [(0, 30, 12, 10, "b")] and pool.classes == ["a", "b"]
    with pytest.raises(ValueError, match="differ in size; ask for one image's"):
        image_size(pool)
    with pytest.raises(KeyError, match="'nope' is not in the pool"):
        image_size(pool, "nope")
    part = pool.subset([2, 0])  # a subset keeps each image's size
    assert part.image_sizes.tolist() == [[25, 25], [30, 20]] and part.true_label("0") == truth[0]


def test_a_box_in_the_padding_is_refused_naming_the_images_own_size():
    # (0, 0, 30, 20) fits the canvas (30 x 40) but not image 1 (12 x 40)
    with pytest.raises(ValueError, match=r"y\[1\]: .*reaches outside the image \(12x40 pixels\)"):
        Pool.from_arrays(_arrays(), y=[[], [(0, 0, 30, 20, "a")], []], task="boxes")


def test_one_size_is_no_padding_and_other_tasks_refuse_mixed_sizes(tmp_path):
    same = Pool.from_arrays([np.ones((4, 5)), np.zeros((4, 5))], y=[[], []], task="boxes", classes=["a"])
    assert same.image_sizes is None and same.X.shape == (2, 4, 5) and image_size(same) == (5, 4)
    for task in ("single", "multi_label"):
        with pytest.raises(ValueError, match="images have mixed shapes"):
            Pool.from_arrays(_arrays(), task=task)
    for i, (w, h) in enumerate(SIZES):
        Image.fromarray(np.full((h, w), 9, np.uint8)).save(tmp_path / f"{i}.png")
    with pytest.raises(ValueError, match=r"1.png' is \(40, 12\) but the first is \(20, 30\)"):
        Pool.from_folder(tmp_path)
    with pytest.raises(ValueError, match="image_sizes .* are for task='boxes'"):
        Pool(np.zeros((3, 40, 30)), kind="image", image_sizes=SIZES)
    with pytest.raises(ValueError, match="image 1 has size 12x41; each image lies in the 30x40 pixels"):
        Pool(np.zeros((3, 40, 30)), kind="image", task="boxes", image_sizes=[(30, 20), (12, 41), (1, 1)])


def test_a_folder_of_three_sizes_and_a_greyscale_image_among_colour_ones(tmp_path):
    for i, raw in enumerate(_arrays(3)):
        Image.fromarray(raw).save(tmp_path / f"{i}.png")
    Image.fromarray(np.full((10, 8), 200, np.uint8), mode="L").save(tmp_path / "3.png")
    pool = Pool.from_folder(tmp_path, task="boxes", classes=["a"])
    assert pool.X.shape == (4, 40, 30, 3) and pool.image_source == "path"
    assert pool.image_sizes.tolist() == [[30, 20], [12, 40], [25, 25], [8, 10]]
    np.testing.assert_allclose(pool.X[3, :10, :8], 200 / 255)  # grey in all three channels
    for item, (w, h) in zip(pool.item_ids, [*SIZES, (8, 10)]):  # shown at its own size
        render = pool.render(item)
        assert render["kind"] == "image" and (render["width"], render["height"]) == (w, h)


def test_an_array_pool_renders_each_image_at_its_own_size():
    pool = Pool.from_arrays(_arrays(), y=[[], [], []], task="boxes", classes=["a"])
    import base64
    import io

    for item, (w, h) in zip(pool.item_ids, SIZES):
        render = pool.render(item)
        assert (render["width"], render["height"]) == (w, h)
        with Image.open(io.BytesIO(base64.b64decode(render["data"]))) as im:
            assert im.size == (w, h)


def test_padding_past_the_memory_bound_is_refused_before_it_is_allocated(monkeypatch):
    assert loaders.MAX_PADDED_BYTES == 4 * 2**30
    monkeypatch.setattr(loaders, "MAX_PADDED_BYTES", 3 * 40 * 30 * 4 - 1)
    with pytest.raises(ValueError, match=r"padding 3 images of different sizes to the largest width and "
                                         r"height \(30x40 pixels, 1 channel\) takes 0.0 GiB.*over the"):
        Pool.from_arrays(_arrays(), task="boxes")
    monkeypatch.setattr(loaders, "MAX_PADDED_BYTES", 3 * 40 * 30 * 4)
    assert Pool.from_arrays(_arrays(), task="boxes").X.nbytes == 3 * 40 * 30 * 4


def test_mixed_channels_and_bad_images_are_named():
    with pytest.raises(ValueError, match=r"mixed channels \[3, 4\]"):
        Pool.from_arrays([np.zeros((4, 4, 3)), np.zeros((5, 4, 4))], task="boxes")
    with pytest.raises(ValueError, match=r"image 1 has shape \(0, 4\)"):
        Pool.from_arrays([np.zeros((4, 4)), np.zeros((0, 4))], task="boxes")


def test_detections_are_cut_to_the_images_own_size():
    found = [(20.0, 5.0, 20.0, 10.0, "a", 0.9), (31.0, 0.0, 5.0, 5.0, "b", 0.8),
             (-2.0, 1.5, 4.0, 2.0, "a", 0.7)]
    assert clipped(found, 30, 20) == [(20.0, 5.0, 10.0, 10.0, "a", 0.9), (0.0, 1.5, 2.0, 2.0, "a", 0.7)]
