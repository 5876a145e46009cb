"""Layer 7, estimators: squareseq as a scikit-learn and aeon classifier.

What lives here: ``classifier`` (:class:`SequenceClassifier`, the scikit-learn estimator; needs the
``sklearn`` extra), ``inputs`` (arrays, 2-D univariate arrays and lists of sequences in memory to
squareseq's data path; labels of any type), ``fitting`` (a fit on the one training core:
``build_trainer`` and ``StepByStep.train``, warm starts continuing as ``--resume`` does),
``persist`` (a fitted estimator as a safe checkpoint file) and ``aeon`` (an aeon ``BaseClassifier``
around it; needs the ``aeon`` extra). It may import every layer below the CLI (runs, the
``StepByStep`` facade, training, models, data, the base); nothing imports it but the package's
lazy names.

``squareseq.estimators.SequenceClassifier`` loads on first use, so that ``import squareseq``
needs no scikit-learn; without it, the name says in one line how to install it.
"""
import importlib as _importlib
from typing import Any as _Any

__all__ = ["SequenceClassifier", "AeonSequenceClassifier"]

_WHERE = {"SequenceClassifier": "classifier", "AeonSequenceClassifier": "aeon"}


def __getattr__(name: str) -> _Any:
    if name in _WHERE:
        return getattr(_importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
