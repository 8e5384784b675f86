import numpy as np
import pytest
from scipy.stats import entropy as scipy_entropy

from workbench import strategies as st

PROBA = np.array([
    [0.90, 0.05, 0.05],   # confident
    [0.40, 0.35, 0.25],   # least confident, small margin
    [0.50, 0.49, 0.01],   # smallest margin
    [0.34, 0.33, 0.33],   # near uniform: highest entropy
])


def test_least_confidence_hand_computed():
    positions, scores = st.least_confidence(PROBA, 2, rng=0)
    np.testing.assert_allclose(st.least_confidence_scores(PROBA), [0.10, 0.60, 0.50, 0.66])
    assert positions.tolist() == [3, 1]
    np.testing.assert_allclose(scores, [0.66, 0.60])


def test_margin_hand_computed():
    np.testing.assert_allclose(st.margin_scores(PROBA), [-0.85, -0.05, -0.01, -0.01])
    positions, _ = st.margin(PROBA, 1, rng=0)
    assert positions[0] in (2, 3)  # tie between 0.50-0.49 and 0.34-0.33


def test_entropy_matches_scipy():
    rng = np.random.default_rng(1)
    proba = rng.dirichlet(np.ones(5), size=200)
    np.testing.assert_allclose(st.entropy_scores(proba), scipy_entropy(proba, axis=1), atol=1e-9)
    positions, scores = st.entropy(proba, 10, rng=0)
    assert positions.tolist() == np.argsort(-scipy_entropy(proba, axis=1))[:10].tolist()
    assert np.all(np.diff(scores) <= 0)


def test_bald_against_independent_formula():
    rng = np.random.default_rng(2)
    samples = rng.dirichlet(np.ones(4), size=(8, 50))  # T x N x C
    expected = np.array([
        scipy_entropy(samples[:, i].mean(0)) - np.mean([scipy_entropy(s) for s in samples[:, i]])
        for i in range(50)
    ])
    np.testing.assert_allclose(st.bald_scores(samples), expected, atol=1e-9)


def test_bald_is_zero_when_samples_agree_and_high_when_they_disagree():
    agree = np.tile([[0.5, 0.5]], (10, 1, 1))
    disagree = np.array([[[1.0, 0.0]], [[0.0, 1.0]]] * 5)
    assert st.bald_scores(agree)[0] == pytest.approx(0.0, abs=1e-9)
    assert st.bald_scores(disagree)[0] == pytest.approx(np.log(2), abs=1e-6)


def test_random_is_seeded_and_a_permutation():
    a = st.random(PROBA, 4, rng=5).positions
    b = st.random(PROBA, 4, rng=5).positions
    assert a.tolist() == b.tolist()
    assert sorted(a.tolist()) == [0, 1, 2, 3]


def test_ties_broken_by_seed_not_by_position():
    scores = np.zeros(1000)
    firsts = {int(st.select_top(scores, 1, rng=s).positions[0]) for s in range(20)}
    assert len(firsts) > 10


def test_select_top_handles_n_larger_than_pool_and_zero():
    assert len(st.select_top(np.arange(3.0), 10).positions) == 3
    assert len(st.select_top(np.arange(3.0), 0).positions) == 0
    with pytest.raises(ValueError, match="n must be >= 0"):
        st.select_top(np.arange(3.0), -1)


def test_bad_shapes_and_names():
    with pytest.raises(ValueError, match="2-d array"):
        st.margin(np.ones(3), 1)
    with pytest.raises(ValueError, match="samples, items, classes"):
        st.bald(np.ones((3, 3)), 1)
    with pytest.raises(ValueError, match="unknown strategy 'magin'"):
        st.get_strategy("magin")


def test_custom_strategy_in_three_lines():
    def most_likely_class_two(proba, n, *, rng=None):
        return st.select_top(proba[:, 2], n, rng=rng)
    assert st.get_strategy(most_likely_class_two)(PROBA, 1).positions.tolist() == [3]


def test_query_round_is_linear_time_friendly():
    # Correctness on a big pool (speed is measured in benchmarks/, not here).
    proba = np.random.default_rng(0).dirichlet(np.ones(10), size=100_000)
    positions, scores = st.margin(proba, 10, rng=0)
    assert scores.tolist() == sorted(st.margin_scores(proba), reverse=True)[:10]


def test_diverse_margin_spreads_a_batch_over_confusions():
    # Six near-copies of one confusion (features near 0) with the smallest margins, and
    # three items of another confusion (features near 10) with slightly larger margins.
    proba = np.array([[0.50, 0.49, 0.01]] * 6 + [[0.55, 0.44, 0.01]] * 3 + [[0.9, 0.05, 0.05]] * 3)
    features = np.array([[0.0, 0.0]] * 6 + [[10.0, 10.0]] * 3 + [[5.0, -5.0]] * 3)
    features += np.random.default_rng(0).normal(scale=0.01, size=features.shape)
    plain = st.margin(proba, 2, rng=0).positions
    assert set(plain.tolist()) <= set(range(6))  # plain margin: two copies of one confusion
    query = st.diverse_margin(proba, 12, features=features, batch=2, prefilter=4, rng=0)
    assert len({int(p) < 6 for p in query.positions[:2]}) == 2  # one from each confusion
    assert sorted(query.positions.tolist()) == list(range(12))  # still ranks every item
    np.testing.assert_allclose(query.scores, st.margin_scores(proba)[query.positions])
    # after the diverse batches the queue goes on in margin order
    rest = query.positions[2 * 5:]
    assert list(st.margin_scores(proba)[rest]) == sorted(st.margin_scores(proba)[rest], reverse=True)


def test_diverse_margin_checks_its_features():
    with pytest.raises(ValueError, match="features has 3 rows but proba has 4"):
        st.diverse_margin(PROBA, 2, features=np.zeros((3, 2)), batch=2)
    assert st.get_strategy("diverse_margin").needs_features
    assert st.diverse_margin(PROBA, 0, features=np.zeros((4, 2))).positions.size == 0
