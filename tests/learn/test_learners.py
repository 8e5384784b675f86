import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from workbench import TorchClassifier, datasets, features_for

FAST = dict(min_steps=60, max_epochs=60, n_members=2)


@pytest.fixture(scope="module")
def digits_split():
    return datasets.digits().train_test_split(0.3, seed=0)


def test_sklearn_contract():
    clf = TorchClassifier(hidden=32, random_state=7)
    twin = clone(clf)
    assert twin.get_params() == clf.get_params() and twin is not clf
    X = np.random.default_rng(0).random((30, 5)).astype(np.float32)
    y = np.array(["b", "a", "c"] * 10)
    assert clf.set_params(**FAST).fit(X, y) is clf
    assert list(clf.classes_) == ["a", "b", "c"]
    proba = clf.predict_proba(X)
    assert proba.shape == (30, 3) and np.allclose(proba.sum(1), 1, atol=1e-5)
    assert set(clf.predict(X)) <= {"a", "b", "c"}


@pytest.mark.slow
def test_cnn_learns_digits_and_records_curves(digits_split):
    train, test = digits_split
    clf = TorchClassifier(random_state=0).fit(train.X[:300], train.y[:300])
    assert clf.is_image_
    accuracy = (clf.predict(test.X) == test.y).mean()
    assert accuracy > 0.85, accuracy
    losses = [h["loss"] for h in clf.history_]
    assert len(losses) == len(clf.history_) >= 10 and losses[-1] < losses[0] / 3


def test_mlp_for_vectors_learns(digits_split):
    train, test = digits_split
    X = features_for(None, train.X)
    clf = TorchClassifier(random_state=0, min_steps=200, max_epochs=40).fit(X, train.y)
    assert not clf.is_image_
    assert (clf.predict(features_for(None, test.X)) == test.y).mean() > 0.9


def test_seeded_training_is_reproducible(digits_split):
    train, test = digits_split
    a = TorchClassifier(random_state=3, **FAST).fit(train.X[:50], train.y[:50])
    b = TorchClassifier(random_state=3, **FAST).fit(train.X[:50], train.y[:50])
    np.testing.assert_allclose(a.predict_proba(test.X), b.predict_proba(test.X), atol=1e-6)


def test_mc_dropout_samples_for_bald(digits_split):
    train, test = digits_split
    clf = TorchClassifier(**FAST).fit(train.X[:50], train.y[:50])
    samples = clf.predict_proba_samples(test.X[:7], n_samples=5)
    assert samples.shape == (5, 7, 10)
    assert samples.std(axis=0).max() > 0  # dropout is really on


def test_custom_module():
    from torch import nn

    def tiny(input_shape, n_classes):
        return nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(input_shape)), n_classes))

    X = np.random.default_rng(0).random((20, 4, 4)).astype(np.float32)
    clf = TorchClassifier(module=tiny, **FAST).fit(X, np.arange(20) % 2)
    assert clf.predict_proba(X).shape == (20, 2)


def test_any_sklearn_classifier_gets_flat_features(digits_split):
    train, _ = digits_split
    assert features_for(LogisticRegression(), train.X).shape == (len(train), 64)
    assert features_for(TorchClassifier(), train.X).shape == (len(train), 8, 8)


def test_bad_input():
    with pytest.raises(ValueError, match="3 rows but y has 2"):
        TorchClassifier().fit(np.ones((3, 2)), [0, 1])
    clf = TorchClassifier(**FAST).fit(np.eye(4, dtype=np.float32), [0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"expected inputs of shape \(N, 4\)"):
        clf.predict_proba(np.ones((2, 5)))


def test_self_training_uses_confident_unlabeled_items(digits_split):
    train, test = digits_split
    labeled, unlabeled = slice(0, 60), slice(60, None)
    clf = TorchClassifier(random_state=0, **FAST).fit(train.X[labeled], train.y[labeled],
                                                      X_unlabeled=train.X[unlabeled])
    assert 0 < clf.n_pseudo_labels_ <= len(train.X[unlabeled])
    alone = TorchClassifier(random_state=0, pseudo_label_threshold=None, **FAST).fit(
        train.X[labeled], train.y[labeled], X_unlabeled=train.X[unlabeled])
    assert alone.n_pseudo_labels_ == 0
    capped = TorchClassifier(random_state=0, max_unlabeled=50, **FAST).fit(
        train.X[labeled], train.y[labeled], X_unlabeled=train.X[unlabeled])
    assert 0 < capped.n_pseudo_labels_ <= 50
    with pytest.raises(ValueError, match=r"X_unlabeled items have shape \(64,\), but the labeled items have"):
        TorchClassifier(**FAST).fit(train.X[labeled], train.y[labeled],
                                    X_unlabeled=train.X[unlabeled].reshape(-1, 64))


def test_training_schedule():
    clf = TorchClassifier()  # batch 32, min_steps 300, max_epochs 300
    assert clf._schedule(20) == (32, 300)       # one batch per epoch, capped epochs
    assert clf._schedule(100) == (32, 75)       # 4 batches x 75 epochs = 300 steps
    assert clf._schedule(1257) == (64, 8)       # big enough: double batch, >= 300 base steps
    assert clf._schedule(10_000) == (64, 5)     # many labels: at least 5 epochs


def test_uncertainty_comes_from_the_labels_only_networks(digits_split):
    train, test = digits_split
    X, y, rest = train.X[:40], train.y[:40], train.X[40:]
    self_trained = TorchClassifier(random_state=0, **FAST).fit(X, y, X_unlabeled=rest)
    labels_only = TorchClassifier(random_state=0, **FAST).fit(X, y)
    assert self_trained.n_pseudo_labels_ > 0
    # the first stage is exactly the model trained on the labels alone (same seed)...
    np.testing.assert_allclose(self_trained.query_proba(test.X), labels_only.predict_proba(test.X), atol=1e-6)
    np.testing.assert_allclose(self_trained.predict_proba_samples(test.X[:5], 4),
                               labels_only.predict_proba_samples(test.X[:5], 4), atol=1e-6)
    # ...and predictions come from the self-trained one
    assert np.abs(self_trained.predict_proba(test.X) - labels_only.predict_proba(test.X)).max() > 0.05
    np.testing.assert_allclose(labels_only.query_proba(test.X), labels_only.predict_proba(test.X))


# -- the scikit-learn contract (review finding 9) ---------------------------------------------
# Each test below failed before the fix: NaN trained into NaN probabilities, there was no
# n_features_in_, random_state=None crashed, and fit reseeded torch's global generator.

def test_nan_and_inf_are_rejected_with_a_clear_message():
    X = np.random.default_rng(0).random((12, 4, 4)).astype(np.float32)
    y = np.arange(12) % 2
    bad = X.copy()
    bad[3, 1, 2] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        TorchClassifier(**FAST).fit(bad, y)
    with pytest.raises(ValueError, match="Input X contains infinity"):
        TorchClassifier(**FAST).fit(np.where(np.isnan(bad), np.inf, bad), y)
    with pytest.raises(ValueError, match="Input X_unlabeled contains NaN"):
        TorchClassifier(**FAST).fit(X, y, X_unlabeled=bad)
    clf = TorchClassifier(**FAST).fit(X, y)
    # every way in to the fitted networks checks too, not only fit
    for method in (clf.predict_proba, clf.predict, clf.query_proba, clf.predict_proba_samples):
        with pytest.raises(ValueError, match="Input X contains NaN"):
            method(bad)


def test_n_features_in_counts_the_values_of_one_item():
    rng = np.random.default_rng(0)
    vectors = TorchClassifier(**FAST).fit(rng.random((10, 5)), np.arange(10) % 2)
    assert vectors.n_features_in_ == 5 and vectors.input_shape_ == (5,)
    with pytest.raises(ValueError, match="X has 3 features, but TorchClassifier is expecting 5"):
        vectors.predict(rng.random((2, 3)))
    # images: all of an item's pixels (validate_data alone would count X.shape[1], the rows)
    images = TorchClassifier(**FAST).fit(rng.random((10, 6, 6, 3)), np.arange(10) % 2)
    assert images.n_features_in_ == 108 and images.input_shape_ == (6, 6, 3)
    assert images.predict_proba(rng.random((4, 6, 6, 3))).shape == (4, 2)
    # the same number of values in another shape is still the wrong input
    with pytest.raises(ValueError, match=r"expected inputs of shape \(N, 6, 6, 3\), got \(2, 6, 3, 6\)"):
        images.predict(rng.random((2, 6, 3, 6)))
    assert TorchClassifier(**FAST).fit(rng.random((10, 4, 4)), np.arange(10) % 2).n_features_in_ == 16


def test_random_state_none_or_a_random_state_works():
    X = np.random.default_rng(0).random((20, 4)).astype(np.float32)
    y = np.arange(20) % 2
    for random_state in (None, np.random.RandomState(0)):
        clf = TorchClassifier(random_state=random_state, **FAST).fit(X, y, X_unlabeled=X)
        assert np.allclose(clf.predict_proba(X).sum(1), 1, atol=1e-5)
        assert clf.predict_proba_samples(X, 3).shape == (3, 20, 2)
    # a RandomState seeded alike gives the same network, as scikit-learn estimators do
    a = TorchClassifier(random_state=np.random.RandomState(5), **FAST).fit(X, y)
    b = TorchClassifier(random_state=np.random.RandomState(5), **FAST).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    with pytest.raises(ValueError, match="cannot be used to seed"):
        TorchClassifier(random_state="seven", **FAST).fit(X, y)


def test_fit_and_mc_dropout_leave_torch_global_random_state_alone():
    import torch

    X = np.random.default_rng(0).random((20, 4, 4)).astype(np.float32)
    y = np.arange(20) % 2

    def draws():
        return torch.rand(4)

    torch.manual_seed(1234)
    expected = [draws(), draws()]
    torch.manual_seed(1234)
    first = draws()
    # fit with self-training (two trainings) and MC-dropout sampling, between two draws
    clf = TorchClassifier(random_state=7, **FAST).fit(X, y, X_unlabeled=X)
    assert torch.initial_seed() == 1234  # torch.manual_seed(7) used to make this 7
    clf.predict_proba_samples(X, 3)
    second = draws()
    torch.testing.assert_close([first, second], expected, rtol=0, atol=0)


def test_int_seed_gives_the_same_model_whatever_the_global_state():
    X = np.random.default_rng(0).random((24, 5, 5)).astype(np.float32)
    y = np.arange(24) % 3
    import torch

    torch.manual_seed(1)
    a = TorchClassifier(random_state=3, **FAST).fit(X, y)
    torch.manual_seed(2)  # determinism comes from random_state alone, not the caller's seed
    torch.rand(10)
    b = TorchClassifier(random_state=3, **FAST).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    np.testing.assert_array_equal(a.predict_proba_samples(X, 4), b.predict_proba_samples(X, 4))
    # ...and asking twice gives the same MC-dropout samples
    np.testing.assert_array_equal(a.predict_proba_samples(X, 4), a.predict_proba_samples(X, 4))
    c = TorchClassifier(random_state=4, **FAST).fit(X, y)
    assert not np.array_equal(a.predict_proba(X), c.predict_proba(X))
