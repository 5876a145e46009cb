"""``AeonSequenceClassifier``: :class:`~squareseq.estimators.classifier.SequenceClassifier` as an
aeon classifier, usable wherever aeon takes one (its benchmarking, pipelines and checks).

aeon hands it collections in its own layout: a 3-D ``(N, C, L)`` array, or a list of ``(C, L_i)``
arrays of different lengths; aeon checks the labels and keeps ``classes_`` in ``np.unique``
order, which ``predict_proba``'s columns follow. The wrapped estimator (``estimator``, a
``SequenceClassifier``; None: its defaults) is cloned and fitted on them, so ``GridSearchCV`` can
tune it as ``estimator__hidden_dim``.

Needs the ``aeon`` extra; without it, importing this module says in one line how to install it.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Union

import numpy as np

from squareseq.errors import SquareseqError

try:
    from aeon.classification.base import BaseClassifier
except ImportError:  # pragma: no cover - the extra is installed wherever the tests run
    raise SquareseqError("squareseq.estimators.aeon needs the optional package aeon: "
                         "pip install 'squareseq[aeon]'") from None

from sklearn.base import clone

from squareseq.estimators.classifier import SequenceClassifier

__all__ = ["AeonSequenceClassifier"]


class AeonSequenceClassifier(BaseClassifier):
    """A squareseq sequence classifier behind aeon's ``BaseClassifier`` interface.

    Args:
        estimator: the :class:`SequenceClassifier` to fit (cloned; its ``layout`` is set to aeon's
            ``"NCL"``); None: ``SequenceClassifier()`` with its defaults.

    Attributes:
        estimator_: the fitted clone.
    """

    _tags = {
        "capability:multivariate": True,
        "capability:unequal_length": True,
        "X_inner_type": ["np-list", "numpy3D"],
        "algorithm_type": "deeplearning",
        "non_deterministic": False,
        "python_dependencies": "torch",
    }

    def __init__(self, estimator: Optional[SequenceClassifier] = None):
        self.estimator = estimator
        super().__init__()

    @staticmethod
    def _inputs(X: Union[np.ndarray, List[np.ndarray]]) -> Any:
        """aeon's collection as the estimator reads it: the array itself (layout ``"NCL"``), or
        each ``(C, L_i)`` series of a list turned into ``(L_i, C)`` steps."""
        return X if isinstance(X, np.ndarray) else [np.asarray(x).T for x in X]

    def _fit(self, X: Union[np.ndarray, List[np.ndarray]], y: np.ndarray) -> "AeonSequenceClassifier":
        estimator = clone(self.estimator) if self.estimator is not None else SequenceClassifier()
        estimator.set_params(layout="NCL")
        estimator.fit(self._inputs(X), y)
        self.estimator_ = estimator
        # the wrapped estimator's classes (squareseq's order) as columns of aeon's classes_
        position = {repr(label): i for i, label in enumerate(estimator.classes_.tolist())}
        self._columns = np.array([position[repr(label)] for label in np.asarray(self.classes_).tolist()])
        return self

    def _predict_proba(self, X: Union[np.ndarray, List[np.ndarray]]) -> np.ndarray:
        return self.estimator_.predict_proba(self._inputs(X))[:, self._columns]

    def _predict(self, X: Union[np.ndarray, List[np.ndarray]]) -> np.ndarray:
        return np.asarray(self.classes_)[np.argmax(self._predict_proba(X), axis=1)]

    @classmethod
    def _get_test_params(cls, parameter_set: str = "default") -> Union[Dict[str, Any], List[Dict[str, Any]]]:
        """A few epochs of a small GRU: aeon's checks run in seconds."""
        return {"estimator": SequenceClassifier(model="gru", hidden_dim=4, epochs=2, val_fraction=0.0,
                                                early_stopping=0, device="cpu", threads=1)}
