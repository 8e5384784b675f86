"""box_digits: handwritten digits on canvases with their tight ink boxes, built offline."""

import numpy as np
import pytest

from workbench.data.box_digits import CLASSES, INK, box_digits, digit_scenes
from workbench.data.box_scores import iou_matrix


def test_scenes_are_images_in_the_unit_range_with_valid_boxes():
    images, boxes = digit_scenes(30, size=96, seed=3, max_objects=4, scale=(16, 30))
    assert images.shape == (30, 96, 96) and images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 1
    assert len(boxes) == 30
    for image_boxes in boxes:
        assert 1 <= len(image_boxes) <= 4
        assert image_boxes == sorted(image_boxes, key=lambda b: (b[1], b[0]))
        for x, y, w, h, label in image_boxes:
            assert all(type(v) is int for v in (x, y, w, h))
            assert x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= 96 and y + h <= 96
            assert label in CLASSES and w <= 30 and h <= 30
        overlap = iou_matrix(image_boxes, image_boxes)
        assert (overlap[~np.eye(len(image_boxes), dtype=bool)] == 0).all()  # digits never overlap


def test_each_box_is_the_tight_box_of_its_digit_ink():
    noisy, boxes = digit_scenes(20, seed=1)
    images, clean_boxes = digit_scenes(20, seed=1, noise=0)  # the same scenes without the noise
    assert clean_boxes == boxes and np.abs(noisy - images).max() > 0
    for image, image_boxes in zip(images, boxes):
        ink = image > INK
        inside = np.zeros(image.shape, bool)
        for x, y, w, h, _ in image_boxes:
            box_ink = ink[y:y + h, x:x + w]
            # ink on every edge of the box: no box is any larger than its digit
            assert box_ink[0].any() and box_ink[-1].any() and box_ink[:, 0].any() and box_ink[:, -1].any()
            inside[y:y + h, x:x + w] = True
        assert not ink[~inside].any()  # and no ink outside the boxes: none is any smaller


def test_deterministic_for_a_seed_and_different_across_seeds():
    a = digit_scenes(5, seed=7)
    b = digit_scenes(5, seed=7)
    c = digit_scenes(5, seed=8)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1] and a[1] != c[1]


def test_halves_draw_from_disjoint_digits():
    from workbench.data import box_digits as module

    assert set(module._half(0)).isdisjoint(module._half(1))
    assert len(module._half(0)) + len(module._half(1)) == len(module._half(None))
    with pytest.raises(ValueError, match="half"):
        module._half(2)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="scale"):
        digit_scenes(2, scale=(30, 200))
    with pytest.raises(ValueError, match="max_objects"):
        digit_scenes(2, max_objects=0)


def test_box_digits_gives_a_boxes_pool_and_a_test_pool():
    pool, test = box_digits(12, n_test=5, seed=2)
    assert pool.task == "boxes" and test.task == "boxes"
    assert len(pool) == 12 and len(test) == 5
    assert list(pool.classes) == CLASSES
    assert pool.X.shape == (12, 128, 128) and test.X.shape == (5, 128, 128)
    assert pool.item_ids[0] == "scene-0000" and test.item_ids[-1] == "test-0004"
    images, boxes = digit_scenes(12, seed=2, half=0)
    np.testing.assert_array_equal(pool.X, images)
    assert [[tuple(b) for b in y] for y in pool.y] == boxes
