"""What a box label is: checked against its image and classes, stored as versioned JSON that
reads back exactly, refused with a message that names the box and what was expected."""

from __future__ import annotations

import json

import numpy as np
import pytest

from workbench import Pool
from workbench.data.boxes import Box, BoxList, box_list

CLASSES = ["cat", "dog"]


def test_a_box_list_is_ordered_and_stored_as_versioned_json():
    boxes = box_list([(30, 20, 10, 12, "dog"), {"x": 1.234567, "y": 2, "w": 3, "h": 4, "label": "cat"}],
                     40, 32, CLASSES)
    assert boxes == BoxList([Box(1.23, 2, 3, 4, "cat"), Box(30, 20, 10, 12, "dog")])
    assert json.loads(str(boxes)) == {"v": 1, "boxes": [[1.23, 2, 3, 4, "cat"], [30, 20, 10, 12, "dog"]]}
    assert box_list(str(boxes), 40, 32, CLASSES) == boxes  # the store's text reads back exactly
    assert box_list([], 40, 32, CLASSES) == BoxList() and str(BoxList()) == '{"v": 1, "boxes": []}'
    assert boxes.describe() == "1.23,2 3x4 cat; 30,20 10x12 dog"
    assert isinstance(box_list([(np.int64(1), np.float32(2.5), 3, 4, "cat")], 40, 32, CLASSES)[0].x, int)


@pytest.mark.parametrize("bad, words", [
    ([(1, 2, 0, 4, "cat")], "size 0x4"),
    ([(1, 2, 3, -4, "cat")], "size 3x-4"),
    ([(38, 2, 3, 4, "cat")], "reaches outside the image (40x32 pixels)"),
    ([(-1, 2, 3, 4, "cat")], "reaches outside the image"),
    ([(1, 30, 3, 4, "cat")], "y + h <= 32"),
    ([(1, 2, 3, 4, "bird")], "label 'bird', which is not among the classes ['cat', 'dog']"),
    ([(1, 2, 3, 4, 7)], "label 7 is not a string"),
    ([(True, 2, 3, 4, "cat")], "x 'True' is not a finite number"),
    ([(1, 2, 3, float("inf"), "cat")], "h 'inf' is not a finite number"),
    ([(10 ** 400, 2, 3, 4, "cat")], "is not a finite number"),
    ('[[' + "9" * 400 + ', 2, 3, 4, "cat"]]', "is not a finite number"),
    ([("1", 2, 3, 4, "cat")], "x '1' is not a finite number"),
    ([(1, 2, 3, 4, "cat"), (1, 2, 3, 4, "cat")], "is given twice"),
    ([(1, 2, 3, 4)], "a box is (x, y, w, h, label)"),
    ([{"x": 1, "y": 2, "w": 3, "h": 4}], "has no label"),
    ([{"x": 1, "y": 2, "w": 3, "h": 4, "label": "cat", "score": 1}], "keys ['score']"),
    ("cat", "is not the JSON of a list of boxes"),
    ('{"v": 2, "boxes": []}', "schema version 2"),
    ('{"v": 1, "boxes": [], "x": 1}', "fields ['x']"),
    ({"x": 1}, "takes a list of (x, y, w, h, label) boxes"),
    (("cat",), "box 0 is 'cat'"),
])
def test_a_bad_box_is_refused_by_name(bad, words):
    with pytest.raises(ValueError) as e:
        box_list(bad, 40, 32, CLASSES)
    assert words in str(e.value)


def test_a_boxes_pool_checks_its_ground_truth_and_kind():
    images = np.zeros((2, 32, 40), np.float32)
    pool = Pool.from_arrays(images, y=[[(1, 2, 3, 4, "dog")], []], task="boxes")
    assert pool.classes == ["dog"] and pool.true_label("0") == [Box(1, 2, 3, 4, "dog")]
    assert "task='boxes'" in repr(pool)
    with pytest.raises(ValueError, match=r"y\[1\]: box \(39, 2, 3, 4, 'dog'\) reaches outside"):
        Pool.from_arrays(images, y=[[], [(39, 2, 3, 4, "dog")]], task="boxes")
    with pytest.raises(ValueError, match="1 box lists for 2 images"):
        Pool.from_arrays(images, y=[[]], task="boxes", classes=CLASSES)
    with pytest.raises(ValueError, match="task='boxes' draws boxes on the pixels of images"):
        Pool.from_arrays(np.zeros((2, 5)), task="boxes", classes=CLASSES)
    with pytest.raises(ValueError, match="task='boxes' draws boxes on the pixels of images"):
        Pool.from_texts(["a b", "c d"], task="boxes", classes=CLASSES)


def test_a_boxes_pool_splits_and_subsets_with_its_boxes():
    images = np.zeros((10, 32, 40), np.float32)
    y = [[(i, 2, 3, 4, "dog")] if i % 2 else [] for i in range(10)]
    pool = Pool.from_arrays(images, y=y, task="boxes", classes=CLASSES)
    train, test = pool.train_test_split(0.3, seed=0)
    assert train.task == test.task == "boxes" and len(train) + len(test) == 10
    for part in (train, test):
        for item_id in part.item_ids:
            assert part.true_label(item_id) == pool.true_label(item_id)


def test_rounding_to_a_hundredth_of_a_pixel_keeps_a_box_inside_its_image():
    """The store keeps 1/100 pixel; rounding a box's end, not its size, never pushes a box
    that was inside the image out of it (100.005 + 27.995 = 128 must not become 128.01)."""
    boxes = box_list([(100.005, 0.004, 27.995, 31.996, "cat"), (1.234567, 2, 3, 4, "dog"),
                      (0, 0, 40.0000001, 5.5, "cat")], 40 * 4, 32, CLASSES)
    for box in boxes:
        assert box.x + box.w <= 160 and box.y + box.h <= 32
    assert Box(1.23, 2, 3, 4, "dog") in boxes  # whole numbers stay whole
    assert box_list(str(boxes), 160, 32, CLASSES) == boxes
    with pytest.raises(ValueError, match="less than 0.01 pixel"):
        box_list([(1, 1, 0.001, 3, "cat")], 40, 32, CLASSES)


def test_a_folder_of_images_is_boxed_in_its_own_pixels(tmp_path):
    """Pool.from_folder(task="boxes") reads the files at full size: boxes are in their pixels
    (40 wide, 30 high here), the session checks them against that size, and what the widget
    is sent has it too."""
    from PIL import Image

    from workbench import Session
    from workbench.ui.box_payload import box_fields

    folder = tmp_path / "scans"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray((rng.random((30, 40)) * 255).astype(np.uint8)).save(folder / f"scan-{i}.png")
    pool = Pool.from_folder(folder, task="boxes", classes=CLASSES)
    assert pool.task == "boxes" and pool.X.shape == (3, 30, 40) and pool.image_source == "path"
    session = Session(pool, tmp_path / "store", watch=False)
    session.label("scan-0.png", [(30, 20, 10, 10, "cat")])  # right and bottom edges: inside
    with pytest.raises(ValueError, match=r"reaches outside the image \(40x30 pixels\)"):
        session.label("scan-1.png", [(30, 20, 11, 10, "cat")])
    assert box_fields(session, "scan-0.png") == {"width": 40, "height": 30}
    render = pool.render("scan-0.png")
    assert (render["width"], render["height"]) == (40, 30)
    session.close()
