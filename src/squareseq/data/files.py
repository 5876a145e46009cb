"""Your own sequences: loading ``.npz``, ``.csv`` and ``.ts`` files into a validated dataset.

``.npz`` schema (``numpy.savez``; read with ``allow_pickle=False``, so object arrays are refused)

=================  ==========================  ================================================
array              dtype and shape             meaning
=================  ==========================  ================================================
``X``              float ``(N, L, F)`` or      N sequences of up to L steps of F features (or
                   ``(N, C, L)``               C channels of L steps: see *Layout* below)
``y``              integers or text ``(N,)``   the class of each sequence (see *Labels* below)
``lengths``        integer ``(N,)``, optional  real steps of each sequence (1..L) when shorter
                                               ones are padded at the end; padding is ignored
``X_test``         float, as ``X``, optional   a test set (else a seeded stratified split)
``y_test``         as ``y``                    with ``X_test``: labels that occur in ``y``
``lengths_test``   integer ``(M,)``, optional  as ``lengths``, for ``X_test``
=================  ==========================  ================================================

Example::

    np.savez("mine.npz", X=X.astype("float32"), y=y, lengths=lengths)

*Layout*: ``layout="NLF"`` reads ``(N, L, F)`` (steps, then features), ``"NCL"`` reads
``(N, C, L)`` (channels, then steps: aeon's, sktime's and tsai's convention). ``"auto"`` (the
default) decides from the lengths (the step axis holds the longest sequence), the test arrays
(they share the feature axis), NaN padding (it runs along the step axis), else from the shape:
the longer axis is time; an array with as many steps as features and no other evidence is
refused, asking for ``--layout``. :mod:`squareseq.data.layout` has the rules; an array read as
``(N, C, L)`` from its shape alone leaves a one-line notice in ``meta["layout_note"]``.

*Labels*: integers of any range (1-based, negative, sparse) or text (numpy ``'U'`` arrays:
``'walking'``, ``'1'``..``'9'``), one per sequence. The distinct training labels become classes
0..C-1 in sorted order (numeric when every label is an integer or integer text), and keep their
text as :attr:`SequenceData.class_names`; a test label no training sequence has is refused,
naming it. At most :data:`~squareseq.data.file_checks.MAX_CLASSES` classes.

*NaN padding* (aeon's convention): without ``lengths``, trailing steps that are NaN in every
feature are padding and give each sequence's length; any other NaN (inside a sequence, or on a
step only partly NaN) is refused.

``.csv`` schema: long format, one row per step, with a header row naming the columns

* ``sequence``: the sequence's id (any text; rows of one sequence need not be adjacent);
* ``step``: the step's position in its sequence, 0, 1, ..., L-1, each once, in plain digits;
* one or more feature columns (any other names, in the order they should be read): numbers;
* ``label``: the sequence's class, the same on all its rows (labels as above);
* optional ``split``: ``train`` or ``test``, the same on all rows of a sequence (else a seeded
  stratified split).

Example::

    sequence,step,x,y,label
    s0,0,-1.02,-0.97,1
    s0,1,-0.95,1.04,1
    s1,0,0.98,1.01,0

The file is UTF-8 (a byte-order mark, as spreadsheets write, is skipped). A CSV is read step by
step, so it has no layout to choose.

``.ts``: the UEA/UCR archive's own files, read by :mod:`squareseq.data.ts_files` (needs the
``aeon`` extra).

Sequences of different lengths are padded at the end and carry ``lengths``. Values must be
finite, and within float32's range, on real steps. Sizes are bounded before anything is
allocated: an array (or a CSV's training or test part, padded) holds at most
:data:`~squareseq.data.file_checks.MAX_PADDED_VALUES` values, checked from an ``.npy`` header or
the CSV's sequence lengths, and a CSV at most :data:`~squareseq.config.MAX_SEQUENCES` sequences.
A path that is not a regular file (a directory, a FIFO) is refused before it is opened.

Without a test set, :func:`stratified_split` holds out ``test_fraction`` of each class (seeded,
never touching global random state). With ``val_fraction``, :func:`validation_split` holds out
that share of each class of the training part for validation (seeded too, from a stream of its
own). :class:`Standardizer` rescales each feature with statistics of the remaining training part
only, over real steps only; :attr:`SequenceData.preprocessing` is what predict must repeat.

Every violation raises :class:`DataFileError` with a message of one line naming the file, what
is wrong, and what was expected.

This module holds the dataset, the splits and the loaders; the formats are read by
:mod:`squareseq.data.npz_files`, :mod:`squareseq.data.csv_files` and
:mod:`squareseq.data.ts_files`, whose shared checks live in :mod:`squareseq.data.file_checks`;
layouts and NaN padding in :mod:`squareseq.data.layout`, labels in :mod:`squareseq.data.labels`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch

from squareseq.data.csv_files import CSV_REQUIRED, read_csv  # noqa: F401  (CSV_REQUIRED: importable from here too)
from squareseq.data.file_checks import CheckedArrays, DataFileError
from squareseq.data.labels import encode_labels
from squareseq.data.layout import model_array, resolve_layout
from squareseq.data.npz_files import NPZ_KEYS, read_npz
from squareseq.data.preprocessing import Preprocessing, Standardizer
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
    "validation_split",
]

PathLike = Union[str, Path]


# -- the dataset --------------------------------------------------------------------------------


@dataclass
class SequenceData:
    """A validated dataset: training, validation and test sequences, zero-padded, with their lengths.

    ``lengths*`` are None when every sequence of that part has all ``L`` steps; the validation
    part (``X_val``, ...) is None without a validation split. Labels are class indices into
    ``class_names`` (the file's labels as text); ``layout`` is the file's (``"NLF"``/``"NCL"``).
    ``meta["layout_note"]`` says so when ``"auto"`` read the file as ``(N, C, L)`` from its
    shape alone.
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
    X_val: Optional[np.ndarray] = None
    y_val: Optional[np.ndarray] = None
    lengths_val: Optional[np.ndarray] = None
    class_names: List[str] = field(default_factory=list)
    layout: str = "NLF"

    @property
    def preprocessing(self) -> Preprocessing:
        """What predict and evaluate must repeat: layout, features, class names, standardizer."""
        stats = None if self.standardizer is None else self.standardizer.as_dict()
        return Preprocessing(self.layout, self.n_features, list(self.class_names),
                             None if stats is None else stats["mean"], None if stats is None else stats["std"])

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
        """``(x, y, lengths)`` tensors of ``part`` (``"train"``, ``"val"`` or ``"test"``), as
        :func:`squareseq.data.squares.to_tensors` returns them (``lengths`` None for full sequences)."""
        parts = {"train": (self.X, self.y, self.lengths), "val": (self.X_val, self.y_val, self.lengths_val),
                 "test": (self.X_test, self.y_test, self.lengths_test)}
        if part not in parts:
            raise DataError(f"part must be 'train', 'val' or 'test', not {part!r}")
        X, y, lengths = parts[part]
        if X is None or y is None:
            raise DataError("this dataset has no validation part; load it with val_fraction > 0")
        lengths_t = None if lengths is None else torch.from_numpy(lengths)
        return torch.from_numpy(X), label_tensor(y, float_labels), lengths_t

    def summary(self) -> Dict[str, object]:
        """Plain facts for ``metrics.json``."""
        return {
            "source": self.source,
            "n_train": int(len(self.y)),
            "n_val": 0 if self.y_val is None else int(len(self.y_val)),
            "n_test": int(len(self.y_test)),
            "n_features": self.n_features,
            "seq_len": self.seq_len,
            "n_classes": self.n_classes,
            "variable_length": self.variable_length,
            "split": self.split,
            "standardized": self.standardizer is not None,
            "layout": self.layout,
            "class_names": list(self.class_names),
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


# -- from checked arrays to a dataset -----------------------------------------------------------


def validation_split(y, val_fraction: float, seed: int = 0, class_names: Optional[List[str]] = None,
                     name: str = "data") -> Tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, val)`` holding out about ``val_fraction`` of every class (at least one
    sequence each, and at least one left for training), drawn from a stream of ``seed`` of its
    own (not the test split's). Both index arrays are sorted.

    Raises:
        DataFileError: a class too small to give both parts a sequence (one line saying what to do).
    """
    if not 0 < val_fraction < 1:
        raise DataError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}")
    y = np.asarray(y).reshape(-1)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))  # test split: RandomState(seed)
    val = []
    for cls in np.unique(y):
        members = np.flatnonzero(y == cls)
        shown = repr(class_names[int(cls)]) if class_names else str(cls)
        n_val = max(1, int(round(len(members) * val_fraction)))
        if len(members) < 2:
            raise DataFileError(f"{name}: class {shown} has {len(members)} training sequence, too few to hold one out "
                                "for validation; add sequences of it, or pass --val-fraction 0 to validate on the "
                                "test set")
        if n_val >= len(members):
            raise DataFileError(f"{name}: a validation fraction of {val_fraction:g} leaves class {shown} "
                                f"({len(members)} training sequences) none for training; lower --val-fraction")
        val.append(rng.permutation(members)[:n_val])
    val_idx = np.sort(np.concatenate(val))
    return np.setdiff1d(np.arange(len(y)), val_idx).astype(np.int64), val_idx.astype(np.int64)


def _part(X: np.ndarray, y: np.ndarray, lengths: Optional[np.ndarray], idx: np.ndarray):
    """Rows ``idx`` of a part; ``lengths`` None when all of them are full length."""
    lengths = None if lengths is None else lengths[idx]
    if lengths is not None and (lengths == X.shape[1]).all():
        lengths = None
    return X[idx], y[idx], lengths


def _finish(name: str, arrays: CheckedArrays, test_fraction: float, seed: int, standardize: bool,
            layout: str = "auto", val_fraction: float = 0.0, long_format: bool = False) -> SequenceData:
    """A reader's arrays to a :class:`SequenceData`: layout resolved, values and labels checked,
    split if the file has no test set, a validation part carved from training if asked, padding
    zeroed, standardised (training statistics) if asked. ``long_format``: a file read step by
    step (``.csv``, ``.ts``), whose arrays are ``(N, L, F)`` already."""
    X, y, lengths, X_test, y_test, lengths_test = arrays
    note = None
    if long_format:
        if layout not in ("auto", "NLF"):
            raise DataFileError(f"{name}: the file gives its sequences step by step, so it has no array layout; "
                                f"drop --layout {layout}")
        layout = "NLF"
    else:
        layout, note = resolve_layout(name, X, lengths, X_test, lengths_test, layout)
    X, lengths = model_array(name, "X", X, layout, lengths)
    y, y_test, names = encode_labels(name, y, y_test)
    split = "file"
    if X_test is None:
        try:
            train_idx, test_idx = stratified_split(y, test_fraction, seed)
        except ValueError as exc:
            raise DataFileError(f"{name}: {exc}") from None
        X_test, y_test, lengths_test = _part(X, y, lengths, test_idx)
        X, y, lengths = _part(X, y, lengths, train_idx)
        split = "stratified"
    else:
        assert y_test is not None  # the readers give X_test and y_test together, or neither
        n_test = X_test.shape[2] if layout == "NLF" else X_test.shape[1]
        if n_test != X.shape[2]:
            raise DataFileError(f"{name}: X_test has {n_test} feature(s) per step but X has {X.shape[2]}")
        X_test, lengths_test = model_array(name, "X_test", X_test, layout, lengths_test, "lengths_test")
    X_val = y_val = lengths_val = None
    if val_fraction > 0:
        train_idx, val_idx = validation_split(y, val_fraction, seed, names, name)
        X_val, y_val, lengths_val = _part(X, y, lengths, val_idx)
        X, y, lengths = _part(X, y, lengths, train_idx)
    standardizer = None
    if standardize:
        standardizer = Standardizer().fit(X, lengths)
        X, X_test = standardizer.transform(X, lengths), standardizer.transform(X_test, lengths_test)
        if X_val is not None:
            X_val = standardizer.transform(X_val, lengths_val)
    meta: Dict[str, object] = {} if note is None else {"layout_note": note}
    return SequenceData(X, y, lengths, X_test, y_test, lengths_test, len(names), name, split, standardizer, meta,
                        X_val, y_val, lengths_val, names, layout)


# -- loading ------------------------------------------------------------------------------------


def load_npz(path: PathLike, test_fraction: float = 0.2, seed: int = 0, standardize: bool = False, *,
             layout: str = "auto", val_fraction: float = 0.0) -> SequenceData:
    """Loads and validates an ``.npz`` file (schema in the module docstring).

    Args:
        path: the file.
        test_fraction: share of each class held out when the file has no ``X_test``.
        seed: seed of that split and of the validation split (a stream of its own).
        standardize: rescale features with training statistics (see :class:`Standardizer`).
        layout: ``"NLF"`` (N, L, F), ``"NCL"`` (N, C, L), or ``"auto"`` (see :mod:`squareseq.data.layout`).
        val_fraction: share of each class of the training part held out for validation (0: none).

    Raises:
        DataFileError: the file is missing, unreadable, holds pickled objects, or breaks the schema.
    """
    return _finish(str(path), read_npz(path), test_fraction, seed, standardize, layout, val_fraction)


def load_csv(path: PathLike, test_fraction: float = 0.2, seed: int = 0, standardize: bool = False, *,
             layout: str = "auto", val_fraction: float = 0.0) -> SequenceData:
    """Loads and validates a long-format ``.csv`` file (schema in the module docstring).

    Sequences keep the order of their first row. Arguments and errors as for :func:`load_npz`
    (a CSV has no array layout: ``layout`` must be ``"auto"`` or ``"NLF"``).
    """
    return _finish(str(path), read_csv(path), test_fraction, seed, standardize, layout, val_fraction,
                   long_format=True)


def load_ts(path: PathLike, test_fraction: float = 0.2, seed: int = 0, standardize: bool = False, *,
            layout: str = "auto", val_fraction: float = 0.0) -> SequenceData:
    """Loads a ``.ts`` file of the UEA/UCR archive (read by :mod:`squareseq.data.ts_files`, with
    aeon); arguments and errors as for :func:`load_csv`."""
    try:
        from squareseq.data.ts_files import read_ts
    except ImportError:
        raise DataFileError(f"{path}: this squareseq cannot read .ts files; convert the data to .npz or .csv") from None
    return _finish(str(path), read_ts(path), test_fraction, seed, standardize, layout, val_fraction,
                   long_format=True)


_LOADERS = {".npz": load_npz, ".csv": load_csv, ".ts": load_ts}


def load_data(path: PathLike, test_fraction: float = 0.2, seed: int = 0, standardize: bool = False, *,
              layout: str = "auto", val_fraction: float = 0.0) -> SequenceData:
    """Loads ``path`` by its suffix (``.npz``, ``.csv`` or ``.ts``); see :func:`load_npz`."""
    suffix = Path(path).suffix.lower()
    if suffix not in _LOADERS:
        raise DataFileError(f"{path}: unsupported file type {suffix or '(no suffix)'!r}; use .npz, .csv or .ts")
    return _LOADERS[suffix](path, test_fraction, seed, standardize, layout=layout, val_fraction=val_fraction)
