"""Metrics that do not hide the rare classes: macro-F1, balanced accuracy, recall per class."""

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score

from workbench.learn.metrics import scores


def test_imbalanced_data_where_accuracy_hides_everything():
    truth = ["ok"] * 87 + ["defect"] * 13
    always_ok = ["ok"] * 100
    s = scores(truth, always_ok)
    assert s["accuracy"] == pytest.approx(0.87)
    assert s["balanced_accuracy"] == pytest.approx(0.5)
    assert s["macro_f1"] == pytest.approx((2 * 0.87 / 1.87 + 0) / 2)
    assert s["recall"] == {"defect": 0.0, "ok": 1.0}


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_matches_scikit_learn_on_the_classes_in_the_truth():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, 200)
    pred = np.where(rng.random(200) < 0.7, truth, rng.integers(0, 5, 200))  # class 4: never true
    s = scores(truth, pred)
    present = sorted(set(truth))
    assert s["macro_f1"] == pytest.approx(f1_score(truth, pred, labels=present, average="macro"))
    assert s["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(truth, pred))
    assert set(s["recall"]) == {"0", "1", "2", "3"}


def test_labels_compare_as_text_and_empty_is_nan():
    assert scores([1, 2], ["1", "2"])["accuracy"] == 1.0
    empty = scores([], [])
    assert np.isnan(empty["accuracy"]) and np.isnan(empty["macro_f1"]) and empty["recall"] == {}
    with pytest.raises(ValueError, match="y_true has 2 labels but y_pred has 1"):
        scores([1, 2], [1])


def test_wilson_matches_scipy_and_arrays_work():
    from scipy.stats import binomtest

    from workbench.learn.metrics import wilson

    for k, n in [(0, 1), (5, 5), (38, 45), (280, 300), (0, 3)]:
        ci = binomtest(k, n).proportion_ci(0.95, method="wilson")
        assert wilson(k, n) == pytest.approx((ci.low, ci.high), abs=1e-12)
    low, high = wilson(np.array([5, 50]), np.array([5, 50]))
    assert low.tolist() == pytest.approx([0.5655, 0.9287], abs=1e-4) and high.tolist() == [1, 1]
    assert all(np.isnan(wilson(0, 0)))


def test_a_headline_accuracy_says_how_sure_it_is():
    """Issue 18 item 1: "accuracy 100.0%" on 5 audit items is not a figure to believe."""
    from workbench.learn.metrics import accuracy_headline, labels_needed

    five = accuracy_headline(1.0, 5, "random audit sample (5 items)")
    assert five.startswith("accuracy: not enough audit labels yet (5 of ~")
    assert "somewhere in 57%–100%" in five and "100.0%" not in five
    assert labels_needed(1.0, 5) > 30  # a few more right answers do not make it sure
    assert accuracy_headline(0.932, 300, "held-out test split (300 items)") == (
        "accuracy 93.2% (95% CI 89.9%–95.6%, 300 test items)")
    assert accuracy_headline(0.9, 10, "held-out test split (10 items)").startswith(
        "accuracy: too few test items for a figure (10 of ~")
    assert accuracy_headline(float("nan"), 2, "audit sample too small (2 of 5 needed)") == (
        "accuracy not measured yet (audit sample too small (2 of 5 needed))")
    # the interval narrows below +-10 points exactly when the point figure appears
    n = labels_needed(0.9, 100)
    assert accuracy_headline(0.9, n, "random audit sample").startswith("accuracy 90")
    assert accuracy_headline(round(0.9 * (n // 2)) / (n // 2), n // 2, "random audit sample").startswith(
        "accuracy: not enough")
