"""What a run does to its inputs before the model sees them, kept so predictions can repeat it.

:class:`Preprocessing` holds the input layout, the number of features, the class names and the
standardizer's statistics. A run stores :meth:`Preprocessing.to_dict` in its checkpoint;
``predict`` and ``evaluate`` rebuild it with :meth:`Preprocessing.from_dict` and call
:meth:`Preprocessing.prepare`, which runs the very code training ran
(:func:`squareseq.data.layout.model_array`, then :meth:`Standardizer.transform`), so a model is
given bit-identical inputs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from squareseq.data.file_checks import DataFileError, real_steps
from squareseq.data.layout import LAYOUTS, model_array
from squareseq.errors import DataError
from squareseq.options import is_int, is_number

__all__ = ["Preprocessing", "Standardizer"]


class Standardizer:
    """Per-feature ``(x - mean) / std`` with statistics of real (unpadded) steps.

    Fit it on the training part only, so nothing of the validation or test set leaks into
    training. Padding stays zero after :meth:`transform`.
    """

    def __init__(self, mean=None, std=None):
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float64)
        self.std = None if std is None else np.asarray(std, dtype=np.float64)

    def fit(self, X: np.ndarray, lengths: Optional[np.ndarray] = None) -> "Standardizer":
        steps = X[real_steps(X, lengths)].astype(np.float64)  # (n_real_steps, F)
        self.mean = steps.mean(axis=0)
        std = steps.std(axis=0)
        self.std = np.where(std > 0, std, 1.0)  # a constant feature is centred, not blown up
        return self

    def transform(self, X: np.ndarray, lengths: Optional[np.ndarray] = None) -> np.ndarray:
        if self.mean is None or self.std is None:
            raise DataError("call fit() before transform()")
        out = ((X - self.mean) / self.std).astype(np.float32)
        out[~real_steps(X, lengths)] = 0.0
        return out

    def as_dict(self) -> Dict[str, List[float]]:
        """Plain lists, for a checkpoint or ``metrics.json``."""
        assert self.mean is not None and self.std is not None
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: Dict[str, List[float]]) -> "Standardizer":
        return cls(d["mean"], d["std"])


def _bad(where: str, what: str) -> DataFileError:
    return DataFileError(f"{where}: preprocessing {what}; the run's record is damaged: train the run again")


def _floats(where: str, key: str, value: Any, n: int, positive: bool = False) -> Optional[List[float]]:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != n:
        raise _bad(where, f"{key} must be a list of {n} numbers (one per feature)")
    out = []
    for v in value:
        if not is_number(v) or (positive and not v > 0):
            raise _bad(where, f"{key} holds {v!r}; expected finite{' positive' if positive else ''} numbers")
        out.append(float(v))
    return out


@dataclass
class Preprocessing:
    """How a run's inputs were prepared: ``layout`` of its files (``"NLF"`` or ``"NCL"``),
    ``n_features`` per step, ``class_names`` in class-index order, and the standardizer's
    per-feature ``mean``/``std`` (None when the run was not standardized)."""

    layout: str
    n_features: int
    class_names: List[str] = field(default_factory=list)
    mean: Optional[List[float]] = None
    std: Optional[List[float]] = None

    @property
    def standardizer(self) -> Optional[Standardizer]:
        return None if self.mean is None else Standardizer(self.mean, self.std)

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON-able values (floats are kept exactly: JSON writes them with ``repr``)."""
        return {"layout": self.layout, "n_features": int(self.n_features), "class_names": list(self.class_names),
                "mean": None if self.mean is None else [float(v) for v in self.mean],
                "std": None if self.std is None else [float(v) for v in self.std]}

    @classmethod
    def from_dict(cls, d: Any, where: str = "checkpoint") -> "Preprocessing":
        """Checks and rebuilds a :meth:`to_dict`; ``where`` starts the one-line error.

        Raises:
            DataFileError: a missing or unexpected key, or a value of the wrong kind.
        """
        keys = {"layout", "n_features", "class_names", "mean", "std"}
        if not isinstance(d, dict) or set(d) != keys:
            got = sorted(map(str, d)) if isinstance(d, dict) else type(d).__name__
            raise _bad(where, f"must be a dict with keys {sorted(keys)}, got {got}")
        if d["layout"] not in LAYOUTS:
            raise _bad(where, f"layout must be one of {', '.join(LAYOUTS)}, got {d['layout']!r}")
        n = d["n_features"]
        if not is_int(n) or n < 1:
            raise _bad(where, f"n_features must be a positive integer, got {n!r}")
        names = d["class_names"]
        if not isinstance(names, list) or not all(isinstance(s, str) for s in names) or len(set(names)) != len(names):
            raise _bad(where, "class_names must be a list of distinct strings")
        if (d["mean"] is None) != (d["std"] is None):
            raise _bad(where, "mean and std must be given together or both be null")
        return cls(d["layout"], n, list(names), _floats(where, "mean", d["mean"], n),
                   _floats(where, "std", d["std"], n, positive=True))

    def prepare(self, X: np.ndarray, lengths: Optional[np.ndarray] = None, *, layout: Optional[str] = None,
                name: str = "input") -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """``(X, lengths)`` exactly as the model was trained on them: ``(N, L, F)`` float32,
        standardized, padding zeroed; ``lengths`` from NaN padding when not given, None when
        every sequence has all ``L`` steps.

        ``X`` is in the stored :attr:`layout` unless ``layout`` says otherwise (pass ``"NLF"``
        for arrays :func:`squareseq.data.inputs.read_inputs` returned). ``name`` starts errors.

        Raises:
            DataFileError: not a float 3-D array, another number of features, lengths outside
                ``1..L``, NaN other than trailing padding, or non-finite values.
        """
        layout = self.layout if layout is None else layout
        X = np.asarray(X)
        if X.dtype.kind not in "fiu" or X.ndim != 3 or min(X.shape, default=0) < 1:
            shape = "(N, L, F)" if layout == "NLF" else "(N, C, L)"
            raise DataFileError(f"{name}: expected a numeric array of shape {shape}"
                                f" with at least one sequence, step and feature, got {X.dtype} {tuple(X.shape)}")
        if X.dtype.kind != "f":
            X = X.astype(np.float64)
        features = X.shape[2] if layout == "NLF" else X.shape[1]
        if features != self.n_features:
            raise DataFileError(f"{name}: has {features} feature(s) per step in layout {layout}, but the model was "
                                f"trained on {self.n_features}; give inputs shaped like the training data")
        if lengths is not None:
            lengths = np.asarray(lengths)
            if lengths.dtype.kind not in "iu" or lengths.shape != (X.shape[0],):
                raise DataFileError(f"{name}: lengths must be integers with shape (N,) = ({X.shape[0]},), got "
                                    f"{lengths.dtype} {tuple(lengths.shape)}")
            lengths = lengths.astype(np.int64)
        X32, lengths = model_array(name, "X", X, layout, lengths)
        standardizer = self.standardizer
        if standardizer is not None:
            X32 = standardizer.transform(X32, lengths)
        return X32, lengths
