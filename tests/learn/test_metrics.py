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
