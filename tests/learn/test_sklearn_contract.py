"""scikit-learn's own estimator checks, run on TorchClassifier.

The settings are the smallest that still learn the checks' blobs (check_classifiers_train
wants training accuracy above 0.83; min_steps=5 trains 5 epochs and stayed near 0.6):
100 steps of a 16-wide MLP, about 0.1 s a fit. Every check passes, so nothing is listed
in expected_failed_checks; the one skip is sklearn's array-API check, which runs only
with SCIPY_ARRAY_API=1 set. The checks feed 2-d data only: images are covered by
test_learners.py. LightHead, the default learner, passes them too (a plain `fit(X, y)` is
its logistic-regression head alone).
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from workbench import LightHead, TorchClassifier


@parametrize_with_checks(
    [TorchClassifier(hidden=16, min_steps=100, max_epochs=10, n_members=1, random_state=0),
     LightHead(random_state=0)]
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
