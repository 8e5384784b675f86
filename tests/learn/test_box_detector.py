"""BoxDetector: learns where and what the boxes are on a tiny synthetic set, in a second or
two; keeps its outputs inside the image; is deterministic for a seed; refuses bad input."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from workbench.data.box_scores import box_scores
from workbench.learn.box_detector import UNCERTAINTY, BoxDetector

LABELS = ["ring", "square"]
FAST = dict(labels=LABELS, steps=150, random_state=0)  # ~1 s on 64x64 images


def shapes(n: int, seed: int, size: int = 64, channels: int = 0):
    """n images with one or two objects each: filled squares and hollow rings (outlined
    squares), 10-20 pixels, apart; their boxes (x, y, w, h, label)."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, size, size), np.float32)
    boxes = []
    for i in range(n):
        placed = []
        for _ in range(int(rng.integers(1, 3))):
            side = int(rng.integers(10, 21))
            x, y = (int(v) for v in rng.integers(0, size - side + 1, size=2))
            if any(x < px + ps + 2 and px < x + side + 2 and y < py + ps + 2 and py < y + side + 2
                   for px, py, ps, _ in placed):
                continue
            label = LABELS[int(rng.integers(2))]
            images[i, y:y + side, x:x + side] = 1.0
            if label == "ring":
                images[i, y + 3:y + side - 3, x + 3:x + side - 3] = 0.0
            placed.append((x, y, side, label))
        boxes.append([(x, y, s, s, label) for x, y, s, label in placed])
    images = np.clip(images + rng.normal(0, 0.03, images.shape).astype(np.float32), 0, 1)
    if channels:
        images = np.repeat(images[..., None], channels, axis=-1)
    return images, boxes


@pytest.fixture(scope="module")
def fitted():
    images, boxes = shapes(48, seed=0)
    return BoxDetector(**FAST).fit_boxes(images, boxes)


def test_it_learns_a_tiny_set(fitted):
    images, boxes = shapes(40, seed=1)  # images it never saw
    scores = box_scores(boxes, fitted.predict_boxes(images))
    assert scores["map50"] > 0.7, scores  # 0.85 when written
    assert fitted.labels_ == LABELS
    assert fitted.history_[-1]["loss"] < fitted.history_[0]["loss"] / 2


def test_outputs_are_sorted_typed_boxes_inside_the_image(fitted):
    images, _ = shapes(6, seed=2)
    predicted = fitted.predict_boxes(images)
    assert isinstance(predicted, list) and len(predicted) == 6
    for boxes in predicted:
        scores = [b[5] for b in boxes]
        assert scores == sorted(scores, reverse=True) and all(s >= 0.05 for s in scores)
        for x, y, w, h, label, score in boxes:
            assert all(type(v) is float for v in (x, y, w, h, score))
            assert label in LABELS and 0 <= score <= 1
            assert x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= 64 + 1e-6 and y + h <= 64 + 1e-6
    strict = fitted.predict_boxes(images, min_score=0.5)
    assert all(len(s) <= len(p) and all(b[5] >= 0.5 for b in s) for s, p in zip(strict, predicted))
    assert fitted.threshold == 0.5
    assert fitted.predict_boxes(images[:0]) == []


def test_any_image_size_and_colour_images():
    images, boxes = shapes(16, seed=3, size=60, channels=3)  # 60 is not a multiple of the stride
    detector = BoxDetector(**{**FAST, "steps": 20}).fit_boxes(images[:, :, :45], [
        [b for b in image_boxes if b[0] + b[2] <= 45] for image_boxes in boxes])
    tall = shapes(3, seed=4, size=75, channels=3)[0][:, :, :37]  # other sizes predict too
    for boxes_of in detector.predict_boxes(tall, min_score=0.0):
        for x, y, w, h, _, _ in boxes_of:
            assert x >= 0 and y >= 0 and x + w <= 37 + 1e-6 and y + h <= 75 + 1e-6
    with pytest.raises(ValueError, match="channels"):
        detector.predict_boxes(tall[..., 0])


def test_deterministic_for_a_seed_and_leaves_torch_alone(fitted):
    images, boxes = shapes(48, seed=0)
    probe = shapes(4, seed=5)[0]
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    again = BoxDetector(**FAST).fit_boxes(images, boxes)
    assert torch.equal(torch.rand(3), expected)  # the caller's generator was not reseeded
    assert torch.get_num_threads() == threads
    assert again.predict_boxes(probe) == fitted.predict_boxes(probe)
    np.testing.assert_array_equal(again.uncertainty(probe), fitted.uncertainty(probe))
    other = BoxDetector(**{**FAST, "random_state": 1}).fit_boxes(images, boxes)
    assert other.predict_boxes(probe) != fitted.predict_boxes(probe)


def test_clone_gives_the_same_unfitted_detector(fitted):
    copy = clone(fitted)
    assert copy.get_params() == fitted.get_params()
    assert not hasattr(copy, "net_")
    with pytest.raises(NotFittedError):
        copy.predict_boxes(shapes(1, seed=6)[0])


def test_uncertainty_comes_from_the_candidate_box_scores(fitted):
    images, _ = shapes(8, seed=7)
    u = fitted.uncertainty(images)
    assert UNCERTAINTY == ("least_confident_box", "box_entropy")
    assert u.shape == (8, 2) and u.dtype == np.float64
    for row, boxes in zip(u, fitted.predict_boxes(images, min_score=0.05)):
        s = np.array([b[5] for b in boxes])
        least = max(1 - abs(2 * s - 1), default=0.0)
        entropy = float(-(s * np.log(s) + (1 - s) * np.log(1 - s)).sum())
        np.testing.assert_allclose(row, [least, entropy], rtol=1e-5, atol=1e-6)
    boxes, both = fitted.predict_with_uncertainty(images)
    assert boxes == fitted.predict_boxes(images)
    np.testing.assert_array_equal(both, u)
    blank = np.zeros((2, 64, 64), np.float32)
    assert (fitted.uncertainty(blank) >= 0).all()
    assert fitted.uncertainty(blank[:0]).shape == (0, 2)


def test_bad_input_raises_a_clear_value_error():
    images, boxes = shapes(4, seed=8)
    with pytest.raises(ValueError, match="labels=\\[\\]"):
        BoxDetector(labels=[]).fit_boxes(images, boxes)
    with pytest.raises(ValueError, match="not among the detector's labels"):
        BoxDetector(labels=["ring"]).fit_boxes(images, [[(1, 1, 5, 5, "square")]] * 4)
    with pytest.raises(ValueError, match="no labels and no boxes"):
        BoxDetector().fit_boxes(images, [[]] * 4)
    with pytest.raises(ValueError, match="one list of boxes per image"):
        BoxDetector(labels=LABELS).fit_boxes(images, boxes[:2])
    with pytest.raises(ValueError, match="w, h > 0"):
        BoxDetector(labels=LABELS).fit_boxes(images, [[(1, 1, 0, 5, "ring")]] * 4)
    with pytest.raises(ValueError, match="x, y, w, h, label"):
        BoxDetector(labels=LABELS).fit_boxes(images, [[(1, 1, 5, 5)]] * 4)
    with pytest.raises(ValueError, match="NaN"):
        BoxDetector(labels=LABELS).fit_boxes(np.full((1, 8, 8), np.nan), [[]])
    with pytest.raises(ValueError, match="shape"):
        BoxDetector(labels=LABELS).fit_boxes(np.zeros((2, 8)), [[], []])


def test_images_without_boxes_teach_that_nothing_is_there():
    images = np.zeros((4, 32, 32), np.float32)
    detector = BoxDetector(labels=LABELS, steps=30).fit_boxes(images, [[]] * 4)
    assert detector.predict_boxes(images, min_score=0.5) == [[]] * 4


def test_large_images_are_seen_at_max_side_and_boxed_in_their_own_pixels():
    """An image over `max_side` is averaged down before the network and its boxes scaled
    back: a detector fitted on scenes drawn at twice the size (each pixel a 2 x 2 block) with
    max_side=128 is the detector fitted on the scenes themselves, and finds the same boxes at
    twice the coordinates."""
    from workbench.data.box_digits import digit_scenes

    images, boxes = digit_scenes(12, seed=0)
    twice = np.repeat(np.repeat(images, 2, axis=1), 2, axis=2)  # 256 x 256
    twice_boxes = [[(x * 2, y * 2, w * 2, h * 2, label) for x, y, w, h, label in bs] for bs in boxes]
    native = BoxDetector(steps=30, random_state=0).fit_boxes(images, boxes)
    large = BoxDetector(steps=30, max_side=128, random_state=0).fit_boxes(twice, twice_boxes)
    assert large.scale_ == 0.5 and native.scale_ == 1.0
    for small, big in zip(native.predict_boxes(images[:4]), large.predict_boxes(twice[:4])):
        assert [b[4] for b in small] == [b[4] for b in big]
        assert np.allclose([b[:4] for b in small], np.array([b[:4] for b in big]) / 2, atol=0.02)
        assert np.allclose([b[5] for b in small], [b[5] for b in big], atol=1e-4)
        assert all(0 <= x and x + w <= 256 and 0 <= y and y + h <= 256 for x, y, w, h, *_ in big)
