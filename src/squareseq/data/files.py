"""Your own sequences: loading ``.npz`` and ``.csv`` files into a validated dataset.

``.npz`` schema (``numpy.savez``; read with ``allow_pickle=False``, so object arrays are refused)

=================  ==========================  ================================================
array              dtype and shape             meaning
=================  ==========================  ================================================
``X``              float ``(N, L, F)``         N sequences of up to L steps of F features
``y``              integer ``(N,)``            class of each sequence: 0, 1, ..., C-1, all present
``lengths``        integer ``(N,)``, optional  real steps of each sequence (1..L) when shorter
                                               ones are padded at the end; padding is ignored
``X_test``         float ``(M, L', F)``, opt.  a test set (else a seeded stratified split)
``y_test``         integer ``(M,)``            with ``X_test``: classes within 0..C-1
``lengths_test``   integer ``(M,)``, optional  as ``lengths``, for ``X_test``
=================  ==========================  ================================================

Example::

    np.savez("mine.npz", X=X.astype("float32"), y=y.astype("int64"), lengths=lengths)

``.csv`` schema: long format, one row per step, with a header row naming the columns

* ``sequence``: the sequence's id (any text; rows of one sequence need not be adjacent);
* ``step``: the step's position in its sequence, 0, 1, ..., L-1, each once, in plain digits;
* one or more feature columns (any other names, in the order they should be read): numbers;
* ``label``: the sequence's class 0..C-1, the same on all its rows, in plain digits (no sign,
  no ``_``, no exponent: ``1_0`` or ``1e1`` is refused, not read as 10);
* optional ``split``: ``train`` or ``test``, the same on all rows of a sequence (else a seeded
  stratified split).

Example::

    sequence,step,x,y,label
    s0,0,-1.02,-0.97,1
    s0,1,-0.95,1.04,1
    s1,0,0.98,1.01,0

The file is UTF-8 (a byte-order mark, as spreadsheets write, is skipped).

Sequences of different lengths are padded at the end and carry ``lengths``. Values must be
finite, and within float32's range, on real steps. Sizes are bounded before anything is
allocated: an array (or a CSV's training or test part, padded) holds at most
:data:`~squareseq.data.file_checks.MAX_PADDED_VALUES` values, checked from an ``.npy`` header or
the CSV's sequence lengths, a file has at most :data:`~squareseq.data.file_checks.MAX_CLASSES`
classes, and a CSV at most :data:`~squareseq.config.MAX_SEQUENCES` sequences (it is read row by
row and refused at the first row past a bound). A path that is not a regular file (a directory,
a FIFO) is refused before it is opened.
Without a test set, :func:`stratified_split` holds out ``test_fraction``
of each class (seeded, never touching global random state). :class:`Standardizer` rescales
each feature with statistics of the training part only, over real steps only.

Every violation raises :class:`DataFileError`, a ``ValueError`` whose message is one line
naming the file, what is wrong, and what was expected.

This module holds the dataset, the split, the standardizer and the loaders; the formats are read
by :mod:`squareseq.data.npz_files` and :mod:`squareseq.data.csv_files`, whose shared checks live in
:mod:`squareseq.data.file_checks` (imports flow that way: checks, readers, this module).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch

from squareseq.data.csv_files import CSV_REQUIRED, read_csv  # noqa: F401  (CSV_REQUIRED: importable from here too)
from squareseq.data.file_checks import CheckedArrays, DataFileError, check_finite, check_labels
from squareseq.data.file_checks import real_steps as _real_steps
from squareseq.data.npz_files import NPZ_KEYS, read_npz
from squareseq.data.squares import label_tensor
from squareseq.errors import DataError

__all__ = [
    "DataFileError",
    "NPZ_KEYS",
    "SequenceData",
    "Standardizer",
    "load_csv",
    "load_data",
    "load_npz",
    "stratified_split",
]

PathLike = Union[str, Path]


# -- the dataset --------------------------------------------------------------------------------


@dataclass
class SequenceData:
    """A validated dataset: training and test sequences, zero-padded, with their lengths.

    ``lengths`` / ``lengths_test`` are None when every sequence of that part has all ``L`` steps.
    """

    X: np.ndarray  # (N, L, F) float32
    y: np.ndarray  # (N,) int64
    lengths: Optional[np.ndarray]  # (N,) int64
    X_test: np.ndarray
    y_test: np.ndarray
    lengths_test: Optional[np.ndarray]
    n_classes: int
    source: str = ""
    split: str = "file"  # "file": the file's own test set; "stratified": held out here
    standardizer: Optional["Standardizer"] = None
    meta: Dict[str, object] = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return int(self.X.shape[2])

    @property
    def seq_len(self) -> int:
        """The longest sequence's number of steps (train or test)."""
        return int(max(self.X.shape[1], self.X_test.shape[1]))

    @property
    def variable_length(self) -> bool:
        return self.lengths is not None or self.lengths_test is not None

    def tensors(self, part: str = "train", float_labels: bool = False):
        """``(x, y, lengths)`` tensors of ``part`` (``"train"`` or ``"test"``), as
        :func:`squareseq.data.squares.to_tensors` returns them (``lengths`` None for full sequences)."""
        if part not in ("train", "test"):
            raise DataError(f"part must be 'train' or 'test', not {part!r}")
        X, y, lengths = (self.X, self.y, self.lengths) if part == "train" else (
            self.X_test, self.y_test, self.lengths_test)
        lengths_t = None if lengths is None else torch.from_numpy(lengths)
        return torch.from_numpy(X), label_tensor(y, float_labels), lengths_t

    def summary(self) -> Dict[str, object]:
        """Plain facts for ``metrics.json``."""
        return {
            "source": self.source,
            "n_train": int(len(self.y)),
            "n_test": int(len(self.y_test)),
            "n_features": self.n_features,
            "seq_len": self.seq_len,
            "n_classes": self.n_classes,
            "variable_length": self.variable_length,
            "split": self.split,
            "standardized": self.standardizer is not None,
        }


# -- splitting and standardising ----------------------------------------------------------------


def stratified_split(y, test_fraction: float = 0.2, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, test)`` holding out about ``test_fraction`` of every class.

    Each class keeps at least one training sequence; the draw uses its own
    ``RandomState(seed)``. Both index arrays are sorted.
    """
    if not 0 < test_fraction < 1:
        raise DataError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}")
    y = np.asarray(y).reshape(-1)
    rng = np.random.RandomState(seed)
    test = []
    for cls in np.unique(y):
        members = np.flatnonzero(y == cls)
        n_test = min(int(round(len(members) * test_fraction)), len(members) - 1)
        test.append(rng.permutation(members)[:n_test])
    test_idx = np.sort(np.concatenate(test)) if test else np.array([], dtype=np.int64)
    if len(test_idx) == 0:
        raise DataError(
            f"{len(y)} sequences are too few to hold out {test_fraction:.0%} per class for testing; "
            "add sequences, raise the test fraction, or give a test set"
        )
    train_idx = np.setdiff1d(np.arange(len(y)), test_idx)
    return train_idx.astype(np.int64), test_idx.astype(np.int64)


class Standardizer:
    """Per-feature ``(x - mean) / std`` with statistics of real (unpadded) steps.

    Fit it on the training part only, so nothing of the test set leaks into training.
    Padding stays zero after :meth:`transform`.
    """

    def __init__(self, mean=None, std=None):
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float64)
        self.std = None if std is None else np.asarray(std, dtype=np.float64)

    def fit(self, X: np.ndarray, lengths: Optional[np.ndarray] = None) -> "Standardizer":
        steps = X[_real_steps(X, lengths)].astype(np.float64)  # (n_real_steps, F)
        self.mean = steps.mean(axis=0)
        std = steps.std(axis=0)
        self.std = np.where(std > 0, std, 1.0)  # a constant feature is centred, not blown up
        return self

    def transform(self, X: np.ndarray, lengths: Optional[np.ndarray] = None) -> np.ndarray:
        if self.mean is None:
            raise DataError("call fit() before transform()")
        out = ((X - self.mean) / self.std).astype(np.float32)
        out[~_real_steps(X, lengths)] = 0.0
        return out

    def as_dict(self) -> Dict[str, List[float]]:
        """Plain lists, for a checkpoint or ``metrics.json``."""
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: Dict[str, List[float]]) -> "Standardizer":
        return cls(d["mean"], d["std"])


# -- from checked arrays to a dataset -----------------------------------------------------------


def _zero_padding(X: np.ndarray, lengths: Optional[np.ndarray]) -> np.ndarray:
    if lengths is not None:
        X = X.copy()
        X[~_real_steps(X, lengths)] = 0.0
    return X


def _finish(name: str, arrays: CheckedArrays, test_fraction: float, seed: int,
            standardize: bool) -> SequenceData:
    """A reader's arrays to a :class:`SequenceData`: values and labels checked, split if the file
    has no test set, padding zeroed, standardised if asked."""
    X, y, lengths, X_test, y_test, lengths_test = arrays
    check_finite(name, "X", X, lengths)
    n_classes = check_labels(name, "y", y)
    split = "file"
    if X_test is None:
        try:
            train_idx, test_idx = stratified_split(y, test_fraction, seed)
        except ValueError as exc:
            raise DataFileError(f"{name}: {exc}") from None
        X_test, y_test = X[test_idx], y[test_idx]
        lengths_test = None if lengths is None else lengths[test_idx]
        X, y = X[train_idx], y[train_idx]
        lengths = None if lengths is None else lengths[train_idx]
        split = "stratified"
        if len(np.unique(y)) < n_classes:  # cannot happen (each class keeps one), kept as a guard
            raise DataFileError(f"{name}: the split left a class without training sequences")
    else:
        assert y_test is not None  # the readers give X_test and y_test together, or neither
        check_finite(name, "X_test", X_test, lengths_test)
        check_labels(name, "y_test", y_test, n_classes)
    # padded steps of full-length parts need no lengths
    if lengths is not None and (lengths == X.shape[1]).all():
        lengths = None
    if lengths_test is not None and (lengths_test == X_test.shape[1]).all():
        lengths_test = None
    X, X_test = _zero_padding(X, lengths), _zero_padding(X_test, lengths_test)
    standardizer = None
    if standardize:
        standardizer = Standardizer().fit(X, lengths)
        X, X_test = standardizer.transform(X, lengths), standardizer.transform(X_test, lengths_test)
    return SequenceData(X, y, lengths, X_test, y_test, lengths_test, n_classes, name, split, standardizer)


# -- loading ------------------------------------------------------------------------------------


def load_npz(path: PathLike, test_fraction: float = 0.2, seed: int = 0, standardize: bool = False) -> SequenceData:
    """Loads and validates an ``.npz`` file (schema in the module docstring).

    Args:
        path: the file.
        test_fraction: share of each class held out when the file has no ``X_test``.
        seed: seed of that split.
        standardize: rescale features with training statistics (see :class:`Standardizer`).

    Raises:
        DataFileError: the file is missing, unreadable, holds pickled objects, or breaks the schema.
    """
    return _finish(str(path), read_npz(path), test_fraction, seed, standardize)


def load_csv(path: PathLike, test_fraction: float = 0.2, seed: int = 0, standardize: bool = False) -> SequenceData:
    """Loads and validates a long-format ``.csv`` file (schema in the module docstring).

    Sequences keep the order of their first row. Arguments and errors as for :func:`load_npz`.
    """
    return _finish(str(path), read_csv(path), test_fraction, seed, standardize)


def load_data(path: PathLike, test_fraction: float = 0.2, seed: int = 0, standardize: bool = False) -> SequenceData:
    """Loads ``path`` by its suffix (``.npz`` or ``.csv``); see :func:`load_npz`."""
    suffix = Path(path).suffix.lower()
    if suffix == ".npz":
        return load_npz(path, test_fraction, seed, standardize)
    if suffix == ".csv":
        return load_csv(path, test_fraction, seed, standardize)
    raise DataFileError(f"{path}: unsupported file type {suffix or '(no suffix)'!r}; use .npz or .csv")
