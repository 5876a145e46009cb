"""SequenceClassifier where scikit-learn users put classifiers: Pipeline, cross_val_score,
GridSearchCV and RandomizedSearchCV, in this process and in joblib's worker processes."""
import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.model_selection import GridSearchCV, RandomizedSearchCV, StratifiedKFold, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer  # noqa: E402

from squareseq import SequenceClassifier  # noqa: E402
from squareseq.data.squares import make_sequences  # noqa: E402

FAST = dict(model="gru", hidden_dim=4, epochs=3, lr=0.05, val_fraction=0.0, early_stopping=0, device="cpu",
            threads=1)


def variable_length_multiclass(n=72):
    """Generated squares of 2 to 4 corners, 8 classes (starting corner and direction)."""
    points, labels = make_sequences(n, variable_len=True, seed=7, task="corner-direction")
    return points, np.asarray(labels)


def ncl_array(n=48, seed=0):
    """(N, C, L) series, three classes told apart by the first channel's level."""
    rng = np.random.RandomState(seed)
    y = np.repeat(np.array(["low", "mid", "high"]), n // 3)
    X = rng.normal(size=(n, 3, 10))
    X[:, 0] += np.select([y == "low", y == "mid"], [-2.0, 0.0], 2.0)[:, None]
    return X, y


def test_grid_search_on_variable_length_multiclass_sequences():
    X, y = variable_length_multiclass()
    search = GridSearchCV(SequenceClassifier(**FAST), {"hidden_dim": [4, 8]}, cv=3).fit(X, y)
    assert search.best_params_["hidden_dim"] in (4, 8)
    assert len(search.cv_results_["mean_test_score"]) == 2
    assert search.best_estimator_.classes_.tolist() == list(range(8))
    assert search.predict(X[:5]).shape == (5,)


def test_grid_search_on_an_ncl_array():
    X, y = ncl_array()
    search = GridSearchCV(SequenceClassifier(**FAST, layout="NCL"), {"hidden_dim": [4, 8]}, cv=3).fit(X, y)
    assert search.best_estimator_.layout_ == "NCL" and search.best_estimator_.n_features_in_ == 3
    assert search.predict_proba(X).shape == (48, 3)


def test_a_pipeline_with_a_function_transformer():
    X, y = ncl_array()
    pipe = make_pipeline(FunctionTransformer(lambda a: a.transpose(0, 2, 1)),  # (N, C, L) -> (N, L, F)
                         SequenceClassifier(**{**FAST, "epochs": 15}, layout="NLF"))
    pipe.fit(X, y)
    assert pipe.score(X, y) > 0.8  # the first channel's level is learnt
    direct = SequenceClassifier(**{**FAST, "epochs": 15}, layout="NCL").fit(X, y)
    np.testing.assert_array_equal(pipe.predict_proba(X), direct.predict_proba(X))


@pytest.mark.slow  # starting joblib's worker processes (each imports torch) takes seconds
def test_cross_val_score_is_the_same_in_one_process_and_in_two_workers():
    X, y = ncl_array()
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    serial = cross_val_score(SequenceClassifier(**FAST, layout="NCL"), X, y, cv=cv, n_jobs=1)
    parallel = cross_val_score(SequenceClassifier(**FAST, layout="NCL"), X, y, cv=cv, n_jobs=2)
    np.testing.assert_array_equal(serial, parallel)  # seeded fits: the same in any process


@pytest.mark.slow
def test_randomized_and_grid_search_with_two_workers():
    X, y = variable_length_multiclass()
    grid = GridSearchCV(SequenceClassifier(**FAST), {"hidden_dim": [4, 8]}, cv=3, n_jobs=2).fit(X, y)
    serial = GridSearchCV(SequenceClassifier(**FAST), {"hidden_dim": [4, 8]}, cv=3, n_jobs=1).fit(X, y)
    np.testing.assert_array_equal(grid.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"])
    search = RandomizedSearchCV(SequenceClassifier(**FAST), {"hidden_dim": [2, 4, 8], "lr": [0.01, 0.05]},
                                n_iter=3, cv=3, n_jobs=2, random_state=0).fit(X, y)
    assert len(search.cv_results_["params"]) == 3
    one = RandomizedSearchCV(SequenceClassifier(**FAST), {"hidden_dim": [2, 4, 8], "lr": [0.01, 0.05]},
                             n_iter=3, cv=3, n_jobs=1, random_state=0).fit(X, y)
    np.testing.assert_array_equal(search.cv_results_["mean_test_score"], one.cv_results_["mean_test_score"])
