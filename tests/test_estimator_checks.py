"""scikit-learn's own estimator checks on SequenceClassifier, with the checks it is expected to
fail and why. Its input is sequences: a 2-D ``X`` is read as ``(N, L)`` univariate sequences of L
steps (one feature), which lets scikit-learn's 2-D checks run; ``n_features_in_`` is the
features per step, and a sequence model predicts sequences of any length."""
import warnings

import pytest

pytest.importorskip("sklearn")

from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from squareseq import SequenceClassifier  # noqa: E402

#: The checks SequenceClassifier fails by design, each with the reason.
EXPECTED_FAILED_CHECKS = {
    "check_n_features_in": "n_features_in_ is the features per step (1 for a 2-D X of univariate sequences), not "
                           "X.shape[1], which is the number of steps",
    "check_n_features_in_after_fitting": "as check_n_features_in; and a 2-D X of another width is sequences of "
                                         "another length, which a sequence model predicts",
    "check_classifiers_train": "it predicts X.T (as many sequences as features, each as long as there were "
                               "samples) without an error: sequences of any length are valid input",
}

#: A tiny, fast instance: two epochs of a small GRU, no validation split (the checks' data sets
#: have classes too small to split), one thread.
CHECKED = SequenceClassifier(model="gru", hidden_dim=8, epochs=2, lr=0.05, batch_size=32, val_fraction=0.0,
                             early_stopping=0, device="cpu", threads=1)


def _expected_failures(estimator):
    return EXPECTED_FAILED_CHECKS


@parametrize_with_checks([CHECKED], expected_failed_checks=_expected_failures)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_the_expected_failures_are_real_checks():
    """Every name in the skip list is a check scikit-learn runs on it (a typo would skip nothing)."""
    from sklearn.exceptions import SkipTestWarning
    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkipTestWarning)  # array API checks need SCIPY_ARRAY_API
        results = check_estimator(CHECKED, on_fail=None, expected_failed_checks=EXPECTED_FAILED_CHECKS)
    names = {result["check_name"] for result in results if result["status"] == "xfail"}
    assert names == set(EXPECTED_FAILED_CHECKS)
