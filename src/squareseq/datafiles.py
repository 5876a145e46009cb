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
* ``step``: the step's position in its sequence, 0, 1, ..., L-1, each once;
* one or more feature columns (any other names, in the order they should be read): numbers;
* ``label``: the sequence's class 0..C-1, the same on all its rows;
* optional ``split``: ``train`` or ``test``, the same on all rows of a sequence (else a seeded
  stratified split).

Example::

    sequence,step,x,y,label
    s0,0,-1.02,-0.97,1
    s0,1,-0.95,1.04,1
    s1,0,0.98,1.01,0

Sequences of different lengths are padded at the end and carry ``lengths``. Values must be
finite on real steps. Without a test set, :func:`stratified_split` holds out ``test_fraction``
of each class (seeded, never touching global random state). :class:`Standardizer` rescales
each feature with statistics of the training part only, over real steps only.

Every violation raises :class:`DataFileError`, a ``ValueError`` whose message is one line
naming the file, what is wrong, and what was expected.
"""
from __future__ import annotations

import csv
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch

from .data import label_tensor
from .errors import SquareseqError

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

NPZ_KEYS = ("X", "y", "lengths", "X_test", "y_test", "lengths_test")
CSV_REQUIRED = ("sequence", "step", "label")

PathLike = Union[str, Path]


class DataFileError(SquareseqError):
    """A data file that breaks its schema; the message is one line saying what and where."""


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
        :func:`squareseq.data.to_tensors` returns them (``lengths`` None for full sequences)."""
        if part not in ("train", "test"):
            raise ValueError(f"part must be 'train' or 'test', not {part!r}")
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
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}")
    y = np.asarray(y).reshape(-1)
    rng = np.random.RandomState(seed)
    test = []
    for cls in np.unique(y):
        members = np.flatnonzero(y == cls)
        n_test = min(int(round(len(members) * test_fraction)), len(members) - 1)
        test.append(rng.permutation(members)[:n_test])
    test_idx = np.sort(np.concatenate(test)) if test else np.array([], dtype=np.int64)
    if len(test_idx) == 0:
        raise ValueError(
            f"{len(y)} sequences are too few to hold out {test_fraction:.0%} per class for testing; "
            "add sequences, raise the test fraction, or give a test set"
        )
    train_idx = np.setdiff1d(np.arange(len(y)), test_idx)
    return train_idx.astype(np.int64), test_idx.astype(np.int64)


def _real_steps(X: np.ndarray, lengths: Optional[np.ndarray]) -> np.ndarray:
    """A boolean ``(N, L)`` mask of the steps that are data, not padding."""
    if lengths is None:
        return np.ones(X.shape[:2], dtype=bool)
    return np.arange(X.shape[1])[None, :] < lengths[:, None]


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
            raise ValueError("call fit() before transform()")
        out = ((X - self.mean) / self.std).astype(np.float32)
        out[~_real_steps(X, lengths)] = 0.0
        return out

    def as_dict(self) -> Dict[str, List[float]]:
        """Plain lists, for a checkpoint or ``metrics.json``."""
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: Dict[str, List[float]]) -> "Standardizer":
        return cls(d["mean"], d["std"])


# -- validation shared by both formats ----------------------------------------------------------


def _describe(a: np.ndarray) -> str:
    return f"{a.dtype} {tuple(a.shape)}"


def _check_X(name: str, key: str, X: np.ndarray) -> np.ndarray:
    if X.dtype.kind != "f" or X.ndim != 3 or min(X.shape[1:], default=0) < 1:
        raise DataFileError(f"{name}: {key} must be float with shape (N, L, F), got {_describe(X)}")
    if X.shape[0] == 0:
        raise DataFileError(f"{name}: {key} holds no sequences (N = 0)")
    return X.astype(np.float32)


def _check_ints(name: str, key: str, a: np.ndarray, n: int) -> np.ndarray:
    if a.dtype.kind not in "iu" or a.shape != (n,):
        raise DataFileError(f"{name}: {key} must be integers with shape (N,) = ({n},), got {_describe(a)}")
    return a.astype(np.int64)


def _check_lengths(name: str, key: str, lengths: np.ndarray, X: np.ndarray) -> np.ndarray:
    lengths = _check_ints(name, key, lengths, X.shape[0])
    bad = np.flatnonzero((lengths < 1) | (lengths > X.shape[1]))
    if len(bad):
        i = int(bad[0])
        raise DataFileError(
            f"{name}: {key} must lie in 1..{X.shape[1]} (the padded length L), got {lengths[i]} at index {i}"
        )
    return lengths


def _check_finite(name: str, key: str, X: np.ndarray, lengths: Optional[np.ndarray]) -> None:
    bad = ~np.isfinite(X) & _real_steps(X, lengths)[:, :, None]
    if bad.any():
        i, t, f = (int(v) for v in np.argwhere(bad)[0])
        raise DataFileError(f"{name}: {key} has a non-finite value ({X[i, t, f]}) at sequence {i}, step {t}, feature {f}")


def _check_labels(name: str, key: str, y: np.ndarray, n_classes: Optional[int] = None) -> int:
    """Checks class indices; returns the number of classes (from ``y`` when not given)."""
    if len(y) and int(y.min()) < 0:
        i = int(np.argmin(y))
        raise DataFileError(f"{name}: {key} must hold class indices 0, 1, ..., C-1, got {y[i]} at index {i}")
    if n_classes is not None:
        if len(y) and int(y.max()) >= n_classes:
            raise DataFileError(
                f"{name}: {key} has class {int(y.max())}, but the training labels are 0..{n_classes - 1}"
            )
        return n_classes
    present = np.unique(y)
    if len(present) < 2:
        raise DataFileError(f"{name}: {key} holds a single class ({present[0]}); a classifier needs at least two")
    n_classes = int(present[-1]) + 1
    missing = sorted(set(range(n_classes)) - set(present.tolist()))
    if missing:
        raise DataFileError(
            f"{name}: {key} has no sequence of class {missing[0]} (labels must be 0..C-1 with every class "
            f"present; found {', '.join(str(v) for v in present.tolist())})"
        )
    return n_classes


def _zero_padding(X: np.ndarray, lengths: Optional[np.ndarray]) -> np.ndarray:
    if lengths is not None:
        X = X.copy()
        X[~_real_steps(X, lengths)] = 0.0
    return X


def _finish(name: str, X, y, lengths, X_test, y_test, lengths_test, test_fraction: float, seed: int,
            standardize: bool) -> SequenceData:
    """Validated arrays to a :class:`SequenceData`: split if needed, standardise if asked."""
    _check_finite(name, "X", X, lengths)
    n_classes = _check_labels(name, "y", y)
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
        _check_finite(name, "X_test", X_test, lengths_test)
        _check_labels(name, "y_test", y_test, n_classes)
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


# -- .npz ---------------------------------------------------------------------------------------


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
    name = str(path)
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{name}: no such file" if not path.exists() else f"{name}: is not a file")
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic.startswith(b"\x93NUMPY"):
        raise DataFileError(f"{name}: is a single .npy array, not an .npz archive of named arrays (X, y, ...)")
    if not magic.startswith(b"PK"):  # numpy would try to unpickle anything that is not a zip or .npy
        raise DataFileError(f"{name}: is not a readable .npz archive (no zip header); write it with numpy.savez")
    try:
        archive = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise DataFileError(f"{name}: is not a readable .npz archive ({_first_line(exc)})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataFileError(f"{name}: is not a readable .npz archive ({_first_line(exc)})") from None
    with archive:
        unknown = sorted(set(archive.files) - set(NPZ_KEYS))
        if unknown:
            raise DataFileError(
                f"{name}: unknown array(s) {', '.join(repr(k) for k in unknown)} "
                f"(allowed: {', '.join(NPZ_KEYS)})"
            )
        for key, what in (("X", "the sequences, float (N, L, F)"), ("y", "the labels, integer (N,)")):
            if key not in archive.files:
                raise DataFileError(f"{name}: missing array {key!r} ({what})")
        arrays = {}
        for key in archive.files:
            try:
                arrays[key] = archive[key]
            except ValueError as exc:
                if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
                    raise DataFileError(
                        f"{name}: array {key!r} holds Python objects (pickled); save plain numeric arrays"
                    ) from None
                raise DataFileError(f"{name}: array {key!r} is unreadable ({_first_line(exc)})") from None
            except (OSError, zipfile.BadZipFile, EOFError) as exc:
                raise DataFileError(f"{name}: array {key!r} is unreadable ({_first_line(exc)})") from None

    X = _check_X(name, "X", arrays["X"])
    y = _check_ints(name, "y", arrays["y"], X.shape[0])
    lengths = _check_lengths(name, "lengths", arrays["lengths"], X) if "lengths" in arrays else None
    X_test = y_test = lengths_test = None
    has_test = "X_test" in arrays, "y_test" in arrays
    if any(has_test) and not all(has_test):
        given, other = ("X_test", "y_test") if has_test[0] else ("y_test", "X_test")
        raise DataFileError(f"{name}: {given} given without {other} (give both or neither)")
    if "lengths_test" in arrays and not has_test[0]:
        raise DataFileError(f"{name}: lengths_test given without X_test and y_test")
    if has_test[0]:
        X_test = _check_X(name, "X_test", arrays["X_test"])
        if X_test.shape[2] != X.shape[2]:
            raise DataFileError(
                f"{name}: X_test has {X_test.shape[2]} feature(s) per step but X has {X.shape[2]}"
            )
        y_test = _check_ints(name, "y_test", arrays["y_test"], X_test.shape[0])
        if "lengths_test" in arrays:
            lengths_test = _check_lengths(name, "lengths_test", arrays["lengths_test"], X_test)
    return _finish(name, X, y, lengths, X_test, y_test, lengths_test, test_fraction, seed, standardize)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# -- .csv ---------------------------------------------------------------------------------------


def _parse_int(name: str, line: int, column: str, text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise DataFileError(f"{name} line {line}: {column} must be an integer, got {text!r}") from None


def _parse_float(name: str, line: int, column: str, text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise DataFileError(f"{name} line {line}: feature {column!r} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise DataFileError(f"{name} line {line}: feature {column!r} must be finite, got {text!r}")
    return value


def _read_csv_rows(name: str, path: Path):
    """The header and the data rows (with their line numbers), checked for shape."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(enumerate(csv.reader(f), start=1))
    except UnicodeDecodeError:
        raise DataFileError(f"{name}: is not UTF-8 text (is it really a .csv file?)") from None
    except csv.Error as exc:
        raise DataFileError(f"{name}: is not valid CSV ({_first_line(exc)})") from None
    rows = [(n, r) for n, r in rows if any(cell.strip() for cell in r)]  # blank lines carry nothing
    if not rows:
        raise DataFileError(f"{name}: is empty; expected a header row: sequence,step,<features...>,label")
    header_line, header = rows[0]
    header = [h.strip() for h in header]
    duplicates = sorted({h for h in header if header.count(h) > 1})
    if duplicates:
        raise DataFileError(f"{name} line {header_line}: column {duplicates[0]!r} appears twice")
    missing = [c for c in CSV_REQUIRED if c not in header]
    if missing:
        raise DataFileError(
            f"{name} line {header_line}: missing column(s) {', '.join(missing)}; expected a header like "
            "sequence,step,x,y,label"
        )
    features = [h for h in header if h not in (*CSV_REQUIRED, "split")]
    if not features:
        raise DataFileError(f"{name} line {header_line}: no feature columns (any columns besides sequence, step, label, split)")
    if any(not h for h in features):
        raise DataFileError(f"{name} line {header_line}: a column has an empty name")
    if len(rows) == 1:
        raise DataFileError(f"{name}: has a header but no data rows")
    for line, row in rows[1:]:
        if len(row) != len(header):
            raise DataFileError(f"{name} line {line}: expected {len(header)} fields, got {len(row)}")
    return header, features, rows[1:]


def load_csv(path: PathLike, test_fraction: float = 0.2, seed: int = 0, standardize: bool = False) -> SequenceData:
    """Loads and validates a long-format ``.csv`` file (schema in the module docstring).

    Sequences keep the order of their first row. Arguments and errors as for :func:`load_npz`.
    """
    name = str(path)
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{name}: no such file" if not path.exists() else f"{name}: is not a file")
    header, features, rows = _read_csv_rows(name, path)
    col = {h: i for i, h in enumerate(header)}
    has_split = "split" in col
    seqs: Dict[str, dict] = {}
    for line, row in rows:
        seq_id = row[col["sequence"]].strip()
        if not seq_id:
            raise DataFileError(f"{name} line {line}: empty sequence id")
        step = _parse_int(name, line, "step", row[col["step"]])
        label = _parse_int(name, line, "label", row[col["label"]])
        values = [_parse_float(name, line, f, row[col[f]]) for f in features]
        part = row[col["split"]].strip().lower() if has_split else "train"
        if part not in ("train", "test"):
            raise DataFileError(f"{name} line {line}: split must be 'train' or 'test', got {row[col['split']]!r}")
        seq = seqs.setdefault(seq_id, {"label": label, "part": part, "steps": {}})
        if label != seq["label"]:
            raise DataFileError(
                f"{name} line {line}: sequence {seq_id!r} has labels {seq['label']} and {label} (one label per sequence)"
            )
        if part != seq["part"]:
            raise DataFileError(f"{name} line {line}: sequence {seq_id!r} is in both the train and test splits")
        if step in seq["steps"]:
            raise DataFileError(f"{name} line {line}: sequence {seq_id!r} has step {step} twice")
        seq["steps"][step] = values
    for seq_id, seq in seqs.items():
        steps = sorted(seq["steps"])
        if steps != list(range(len(steps))):
            shown = ", ".join(str(s) for s in steps[:6]) + (", ..." if len(steps) > 6 else "")
            raise DataFileError(
                f"{name}: sequence {seq_id!r} has steps {shown}; steps must be 0, 1, ..., L-1"
            )

    def arrays(part: str):
        chosen = [s for s in seqs.values() if s["part"] == part]
        if not chosen:
            return None, None, None
        lengths = np.array([len(s["steps"]) for s in chosen], dtype=np.int64)
        X = np.zeros((len(chosen), int(lengths.max()), len(features)), dtype=np.float32)
        for i, s in enumerate(chosen):
            X[i, : lengths[i]] = [s["steps"][t] for t in range(lengths[i])]
        y = np.array([s["label"] for s in chosen], dtype=np.int64)
        return X, y, (lengths if (lengths != X.shape[1]).any() else None)

    X, y, lengths = arrays("train")
    if X is None:
        raise DataFileError(f"{name}: every sequence is in the test split; mark some as 'train'")
    X_test, y_test, lengths_test = arrays("test")
    return _finish(name, X, y, lengths, X_test, y_test, lengths_test, test_fraction, seed, standardize)


def load_data(path: PathLike, test_fraction: float = 0.2, seed: int = 0, standardize: bool = False) -> SequenceData:
    """Loads ``path`` by its suffix (``.npz`` or ``.csv``); see :func:`load_npz`."""
    suffix = Path(path).suffix.lower()
    if suffix == ".npz":
        return load_npz(path, test_fraction, seed, standardize)
    if suffix == ".csv":
        return load_csv(path, test_fraction, seed, standardize)
    raise DataFileError(f"{path}: unsupported file type {suffix or '(no suffix)'!r}; use .npz or .csv")
