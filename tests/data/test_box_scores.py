"""box_scores: IoU, VOC all-point mAP@0.5, precision and recall at score 0.5, on cases worked
out by hand."""

import math

import numpy as np
import pytest

from workbench.data.box_scores import box_scores, iou, iou_matrix


def test_iou_of_hand_computed_pairs():
    assert iou((0, 0, 10, 10, "a"), (0, 0, 10, 10, "b")) == 1.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (10, 0, 5, 5)) == 0.0  # touching edges share no area
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0
    assert iou((0, 0, 10, 10), (2, 2, 4, 4)) == pytest.approx(16 / 100)  # one inside the other


def test_iou_matrix_shape_and_values():
    A = [(0, 0, 10, 10, "a"), (5, 0, 10, 10, "a")]
    B = [(0, 0, 10, 10, "a"), (100, 100, 1, 1, "a"), (5, 0, 10, 10, "b")]
    m = iou_matrix(A, B)
    assert m.shape == (2, 3)
    np.testing.assert_allclose(m, [[1, 0, 1 / 3], [1 / 3, 0, 1]])
    assert iou_matrix([], B).shape == (0, 3)
    assert iou_matrix(A, []).shape == (2, 0)


def test_a_perfect_prediction_scores_one():
    truth = [[(0, 0, 10, 10, "1"), (20, 20, 8, 12, "2")], [(5, 5, 30, 30, "1")]]
    predicted = [[(*b, 0.9) for b in boxes] for boxes in truth]
    s = box_scores(truth, predicted)
    assert s == {"map50": 1.0, "ap": {"1": 1.0, "2": 1.0}, "precision": 1.0, "recall": 1.0}


def test_a_box_shifted_below_iou_half_is_a_miss():
    truth = [[(0, 0, 10, 10, "1")]]
    assert iou((0, 0, 10, 10), (4, 0, 10, 10)) == pytest.approx(60 / 140)  # < 0.5
    s = box_scores(truth, [[(4, 0, 10, 10, "1", 0.9)]])
    assert s["map50"] == 0.0 and s["precision"] == 0.0 and s["recall"] == 0.0
    # shifted by 3 pixels it still overlaps enough: 70 / 130 > 0.5
    assert box_scores(truth, [[(3, 0, 10, 10, "1", 0.9)]])["map50"] == 1.0


def test_duplicate_predictions_are_false_positives():
    truth = [[(0, 0, 10, 10, "1")], [(50, 50, 10, 10, "1")]]
    predicted = [[(0, 0, 10, 10, "1", 0.95), (0, 0, 10, 10, "1", 0.9)],  # found twice
                 [(50, 50, 10, 10, "1", 0.8)]]
    s = box_scores(truth, predicted)
    # ranked: hit (p 1, r .5), duplicate (p .5, r .5), hit (p 2/3, r 1) -> .5 * 1 + .5 * 2/3
    assert s["ap"]["1"] == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert s["precision"] == pytest.approx(2 / 3) and s["recall"] == 1.0


def test_a_box_of_the_wrong_class_finds_nothing():
    truth = [[(0, 0, 10, 10, "1")]]
    s = box_scores(truth, [[(0, 0, 10, 10, "7", 0.9)]])
    assert s["ap"] == {"1": 0.0}  # "7" is not in the truth: no AP of its own
    assert s["map50"] == 0.0 and s["precision"] == 0.0 and s["recall"] == 0.0


def test_ranking_order_matters_for_ap():
    truth = [[(0, 0, 10, 10, "1")], [(50, 50, 10, 10, "1")], []]
    hits = [[(0, 0, 10, 10, "1", 0.8)], [(50, 50, 10, 10, "1", 0.7)]]
    false_high = box_scores(truth, [*hits, [(0, 0, 5, 5, "1", 0.9)]])
    # miss (p 0), hit (p .5, r .5), hit (p 2/3, r 1); interpolated precision is 2/3 throughout
    assert false_high["map50"] == pytest.approx(2 / 3)
    false_low = box_scores(truth, [*hits, [(0, 0, 5, 5, "1", 0.1)]])
    assert false_low["map50"] == 1.0  # the miss ranks after every hit
    assert false_low["precision"] == 1.0  # below the 0.5 shown score it is not counted


def test_map_is_the_mean_over_classes_present_in_the_truth():
    truth = [[(0, 0, 10, 10, "1"), (40, 40, 10, 10, "2")]]
    predicted = [[(0, 0, 10, 10, "1", 0.9), (90, 90, 10, 10, "2", 0.9), (60, 0, 10, 10, "3", 0.9)]]
    s = box_scores(truth, predicted)
    assert s["ap"] == {"1": 1.0, "2": 0.0}
    assert s["map50"] == 0.5
    assert s["precision"] == pytest.approx(1 / 3) and s["recall"] == 0.5
    only = box_scores(truth, predicted, labels=["1"])  # other classes left out entirely
    assert only == {"map50": 1.0, "ap": {"1": 1.0}, "precision": 1.0, "recall": 1.0}


def test_each_truth_box_is_matched_once_and_by_the_best_overlap():
    truth = [[(0, 0, 10, 10, "1"), (4, 0, 10, 10, "1")]]
    # the top box overlaps both; it takes the closer one, leaving the other for the next box
    predicted = [[(3, 0, 10, 10, "1", 0.9), (0, 0, 10, 10, "1", 0.8)]]
    assert box_scores(truth, predicted)["map50"] == 1.0


def test_empty_cases():
    s = box_scores([[], []], [[], []])
    assert math.isnan(s["map50"]) and s["ap"] == {} and s["precision"] == 1.0 and s["recall"] == 1.0
    s = box_scores([[(0, 0, 1, 1, "1")]], [[]])
    assert s["map50"] == 0.0 and s["precision"] == 0.0 and s["recall"] == 0.0
    s = box_scores([[]], [[(0, 0, 1, 1, "1", 0.9)]])
    assert math.isnan(s["map50"]) and s["precision"] == 0.0 and s["recall"] == 0.0


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="one list of boxes per image"):
        box_scores([[]], [[], []])
    with pytest.raises(ValueError, match="score"):
        box_scores([[(0, 0, 1, 1, "1")]], [[(0, 0, 1, 1, "1")]])
