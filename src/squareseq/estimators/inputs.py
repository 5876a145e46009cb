"""What an estimator is given, as the arrays squareseq's data path reads: ``X`` and ``y`` in
memory instead of a file.

``X`` may be

* a 3-D array, ``(N, L, F)`` or ``(N, C, L)`` as ``layout`` says (``"auto"``: read from the
  shape and NaN padding by :func:`squareseq.data.layout.resolve_layout`, as ``--layout auto``);
* a 2-D array ``(N, L)``: N univariate sequences of L steps (one feature), as scikit-learn and
  aeon pass univariate series;
* a list (or tuple) of sequences of different lengths, each ``(L_i, F)`` (or ``(L_i,)`` for one
  feature): padded at the end, with their lengths (trained packed).

Trailing steps that are NaN in every feature are padding (aeon's convention); any other NaN is
refused. Labels go through :func:`squareseq.data.labels.encode_labels`, so classes are ordered as
a file's labels are (numeric order for integer labels and integer text, text order otherwise).
Every problem is one :class:`~squareseq.errors.DataError` line.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from squareseq.data.file_checks import DataFileError, check_padded_size
from squareseq.data.labels import check_label_array, encode_labels
from squareseq.data.layout import LAYOUTS, model_array, resolve_layout
from squareseq.errors import DataError

__all__ = ["NotNumbers", "Sequences", "as_data_errors", "as_sequences", "encode_targets", "fitted_layout",
           "model_input", "targets_as_codes"]

#: What a sequence list's rows are read as, and an array's dimensions as.
_NAME = "X"


class NotNumbers(DataError, TypeError):
    """Values that are not numbers (a ``TypeError`` too, as numpy and scikit-learn raise for them)."""


class Sequences:
    """``X`` as given, in one layout, before any of squareseq's checks: ``array`` is ``(N, L, F)``
    for ``"NLF"`` or ``(N, C, L)`` for ``"NCL"`` (float or integer), ``lengths`` the real steps of
    each sequence of a list (None for arrays: their NaN padding says), ``layout`` the array's."""

    def __init__(self, array: np.ndarray, lengths: Optional[np.ndarray], layout: str):
        self.array, self.lengths, self.layout = array, lengths, layout

    def __len__(self) -> int:
        return int(self.array.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.array.shape[2] if self.layout == "NLF" else self.array.shape[1])


def _numeric(a: np.ndarray, what: str) -> np.ndarray:
    """``a`` as a real-valued array (objects holding numbers are converted), or one line why not."""
    if a.dtype.kind == "c":
        raise DataError(f"{what} holds complex numbers (Complex data not supported); give real values")
    if a.dtype.kind == "b":
        return a.astype(np.float32)
    if a.dtype.kind not in "fiu":
        try:
            return a.astype(np.float64)
        except (TypeError, ValueError):
            raise NotNumbers(f"{what} must hold numbers, got {a.dtype} values (the argument must be a string or "
                            "a real number, not text): encode them as numbers first") from None
    return a


def _from_list(X: Sequence[Any]) -> Sequences:
    """A list of ``(L_i, F)`` or ``(L_i,)`` sequences, zero-padded at the end to ``(N, L, F)``."""
    if len(X) == 0:
        raise DataError(f"{_NAME} holds no sequences (N = 0); give at least one")
    rows: List[np.ndarray] = []
    for i, item in enumerate(X):
        a = _numeric(np.asarray(item), f"{_NAME}[{i}]")
        if a.ndim == 1:
            a = a[:, None]
        if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
            raise DataError(f"{_NAME}[{i}] has shape {tuple(a.shape)}; each sequence of a list must be (L_i, F) or "
                            "(L_i,) with at least one step")
        if rows and a.shape[1] != rows[0].shape[1]:
            raise DataError(f"{_NAME}[{i}] has {a.shape[1]} feature(s) per step but {_NAME}[0] has "
                            f"{rows[0].shape[1]}; every sequence needs the same features")
        rows.append(a)
    lengths = np.array([len(a) for a in rows], dtype=np.int64)
    shape = (len(rows), int(lengths.max()), int(rows[0].shape[1]))
    check_padded_size(f"{_NAME}: padded to", shape, "give fewer or shorter sequences")
    padded = np.zeros(shape, dtype=np.result_type(*[a.dtype for a in rows], np.float32))
    for i, a in enumerate(rows):
        padded[i, : len(a)] = a
    return Sequences(padded, lengths, "NLF")


def as_sequences(X: Any, layout: str) -> Sequences:
    """``X`` (see the module docstring) as :class:`Sequences`, its layout still to be resolved
    when ``layout`` is ``"auto"`` (see :func:`fitted_layout`).

    Raises:
        DataError: not 2-D or 3-D, no sequences, steps or features, non-numeric or complex values.
    """
    if isinstance(X, (list, tuple)):
        try:
            arrays = [np.asarray(item) for item in X]
        except ValueError:
            arrays = []
        ragged = any(a.ndim != 1 or a.shape != arrays[0].shape for a in arrays) if arrays else True
        if ragged or any(a.ndim == 0 for a in arrays):
            return _from_list(X)  # sequences of their own lengths (or bad rows: its errors say which)
    if hasattr(X, "toarray") and hasattr(X, "nnz"):  # scipy.sparse, without importing it
        raise DataError("X is a sparse matrix; sparse input is not supported: pass a dense array (X.toarray())")
    a = np.asarray(X)
    if a.dtype.kind == "O" and a.ndim == 1:
        return _from_list(list(a))
    a = _numeric(a, _NAME)
    if a.ndim == 2:
        if min(a.shape) < 1:
            raise DataError(f"{_NAME} of shape {tuple(a.shape)} holds no sequences or steps: found array with "
                            f"{a.shape[1]} feature(s) (shape={tuple(a.shape)}) while a minimum of 1 is required. "
                            "Give at least one sequence of at least one step")
        a = a[:, :, None]  # N univariate sequences of L steps
        layout = "NLF"
    if a.ndim != 3:
        raise DataError(f"Reshape your data: {_NAME} must be (N, L, F), (N, C, L) with layout='NCL', (N, L) "
                        f"univariate sequences or a list of (L_i, F) sequences; got an array of shape "
                        f"{tuple(a.shape)} ({a.ndim}-D)")
    if min(a.shape) < 1:
        raise DataError(f"{_NAME} of shape {tuple(a.shape)} holds no sequences, steps or features; give at least "
                        "one of each")
    check_padded_size(f"{_NAME} holds", tuple(a.shape), "give fewer or shorter sequences")
    if layout not in ("auto", *LAYOUTS):
        raise DataError(f"layout must be 'auto', 'NLF' or 'NCL', got {layout!r}")
    return Sequences(a, None, layout)


def fitted_layout(seqs: Sequences) -> Tuple[str, Optional[str]]:
    """``(layout, note)`` of ``seqs`` as :func:`~squareseq.data.layout.resolve_layout` reads it (a
    note when ``"auto"`` chose ``(N, C, L)`` from the shape alone); the CLI's ``--layout`` is the
    estimator's ``layout=``."""
    return resolve_layout("fit", seqs.array, seqs.lengths, layout=seqs.layout)


def model_input(seqs: Sequences, layout: str) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """``(X, lengths)`` as training reads them (:func:`~squareseq.data.layout.model_array`):
    ``(N, L, F)`` float32, padding zeroed, lengths None where every sequence is full."""
    return model_array("fit", _NAME, seqs.array, layout, seqs.lengths)


@contextlib.contextmanager
def as_data_errors() -> Iterator[None]:
    """The data layer's file errors (:class:`~squareseq.data.file_checks.DataFileError`) as
    :class:`~squareseq.errors.DataError`, the CLI's flags in their advice as parameters."""
    try:
        yield
    except DataFileError as exc:
        text = str(exc)
        for flag, name in (("--layout ", "layout="), ("--val-fraction ", "val_fraction=")):
            text = text.replace(flag, name)
        raise DataError(text) from None


def _labels(y: Any, n: int) -> np.ndarray:
    """``y`` as integers or text (what :func:`encode_labels` reads), one per sequence."""
    a = np.asarray(y)
    if a.ndim != 1:
        raise DataError(f"y must hold one label per sequence, shape (N,), got {tuple(a.shape)}")
    if len(a) != n:
        raise DataError(f"X holds {n} sequence(s) but y holds {len(a)} label(s); give one label per sequence")
    if a.dtype.kind == "b":
        return a.astype(np.int64)
    if a.dtype.kind == "f":
        if not np.isfinite(a).all() or not (a == np.round(a)).all():
            raise DataError("Unknown label type: y holds continuous values; a classifier needs class labels "
                            "(integers or text)")
        return a.astype(np.int64)
    if a.dtype.kind in "OS":
        return np.array([str(v) for v in a.tolist()], dtype=str)
    return a


def encode_targets(y: Any, n: int) -> Tuple[np.ndarray, np.ndarray, List[str]]:
    """``(codes, classes, names)``: each label's class index, the distinct labels as given (in
    class order: ``classes[codes]`` is ``y``), and their names as text.

    Raises:
        DataError: not one label per sequence, continuous values, a single class, too many classes.
    """
    labels = check_label_array("fit", "y", _labels(y, n), n)
    if len(np.unique(labels)) < 2:
        raise DataError(f"fit: y holds one class ({labels[0] if n else 'none'}) in {n} sample(s); a classifier needs "
                        "at least two classes")
    codes, _, names = encode_labels("fit", labels)
    given = np.asarray(y)
    first = np.unique(codes, return_index=True)[1]  # one sequence of each class, in class order
    return codes, given[first], names


def targets_as_codes(y: Any, n: int, classes: np.ndarray) -> np.ndarray:
    """``y``'s class indices into the fitted ``classes`` (a warm start's labels).

    Raises:
        DataError: a label the fitted classes do not hold.
    """
    labels = _labels(y, n)
    known = _labels(classes, len(classes))
    if labels.dtype.kind != known.dtype.kind:
        labels, known = labels.astype(str), known.astype(str)
    order = np.argsort(known, kind="stable")
    at = np.searchsorted(known, labels, sorter=order)
    at = np.minimum(at, len(known) - 1)
    codes = order[at]
    unseen = labels[known[codes] != labels]
    if len(unseen):
        raise DataError(f"y has label {unseen[0]!r}, which the first fit did not see (classes: "
                        f"{', '.join(map(str, known.tolist()))}); fit afresh (warm_start=False) to learn new classes")
    return codes.astype(np.int64)
