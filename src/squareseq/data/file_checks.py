"""Schema checks shared by the ``.npz`` and ``.csv`` readers, and the error they raise.

Each check takes the file's name and the array's key, so that its :class:`DataFileError` is one
line naming the file, what is wrong and what was expected (the schemas are described in
:mod:`squareseq.data.files`). Checks return arrays in the dtypes training uses (float32, int64).
The readers (:mod:`squareseq.data.npz_files`, :mod:`squareseq.data.csv_files`) import this module;
it imports neither of them.
"""
from __future__ import annotations

import math
import os
import stat
from pathlib import Path
from typing import IO, NamedTuple, Optional, Tuple

import numpy as np

from squareseq.errors import SquareseqError

__all__ = [
    "MAX_CLASSES",
    "MAX_PADDED_VALUES",
    "CheckedArrays",
    "DataFileError",
    "check_padded_size",
    "as_float32",
    "check_X",
    "check_finite",
    "check_ints",
    "check_is_file",
    "check_labels",
    "check_lengths",
    "file_problem",
    "first_line",
    "npy_header",
    "real_steps",
]

#: The most values (N x L x F, padding included) one array or one part of a file may hold: 400 MB
#: as float32. Checked from a .npy header or a CSV's sequence lengths, before anything is allocated.
MAX_PADDED_VALUES = 100_000_000
#: The most classes a data file may have (a model's outputs, the confusion matrix's C x C cells).
MAX_CLASSES = 256


class DataFileError(SquareseqError):
    """A data file that breaks its schema; the message is one line saying what and where."""


class CheckedArrays(NamedTuple):
    """What a reader hands on: the training part and, if the file has one, the test part
    (``X_test``/``y_test`` None otherwise); ``lengths*`` None for full-length sequences."""

    X: np.ndarray  # (N, L, F) float32
    y: np.ndarray  # (N,) int64
    lengths: Optional[np.ndarray]  # (N,) int64
    X_test: Optional[np.ndarray]
    y_test: Optional[np.ndarray]
    lengths_test: Optional[np.ndarray]


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def file_problem(path: Path) -> Optional[str]:
    """What makes ``path`` unreadable as a data file, from ``stat`` alone (a FIFO is never opened,
    so it cannot block): ``"no such file"``, ``"is a directory"``, ``"is not a regular file ..."``,
    ``"cannot be read (...)"``; None for a regular file (or a link to one)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "no such file"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or type(exc).__name__})"
    if stat.S_ISDIR(mode):
        return "is a directory"
    if not stat.S_ISREG(mode):
        return "is not a regular file (a pipe, socket or device)"
    return None


def check_is_file(name: str, path: Path) -> None:
    """Refuses a path that does not exist or is not a regular file, before opening it."""
    problem = file_problem(path)
    if problem is not None:
        raise DataFileError(f"{name}: {problem}; give a .npz or .csv data file")


def npy_header(where: str, f: IO[bytes]) -> Tuple[Tuple[int, ...], np.dtype]:
    """The shape and dtype a ``.npy`` stream declares, read from its header alone (nothing is
    allocated); the stream is left at the start of the data. ``where`` starts the message."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    except (ValueError, OSError, EOFError) as exc:
        raise DataFileError(f"{where} is not a readable .npy array ({first_line(exc)})") from None
    if version not in ((1, 0), (2, 0)):
        raise DataFileError(f"{where} is a .npy array of format version {version[0]}.{version[1]}, which squareseq "
                            "does not read; save it with numpy.save")
    return tuple(int(n) for n in shape), dtype


def check_padded_size(where: str, shape: Tuple[int, ...], fix: str) -> None:
    """Refuses a shape of more than :data:`MAX_PADDED_VALUES` values, saying what to do (``fix``)."""
    count = math.prod(shape)
    if count > MAX_PADDED_VALUES:
        dims = " x ".join(f"{n:,}" for n in shape)
        raise DataFileError(f"{where} {dims} = {count:,} values; squareseq reads at most {MAX_PADDED_VALUES:,} "
                            f"(squareseq.data.file_checks.MAX_PADDED_VALUES): {fix}")


def real_steps(X: np.ndarray, lengths: Optional[np.ndarray]) -> np.ndarray:
    """A boolean ``(N, L)`` mask of the steps that are data, not padding."""
    if lengths is None:
        return np.ones(X.shape[:2], dtype=bool)
    return np.arange(X.shape[1])[None, :] < lengths[:, None]


def _describe(a: np.ndarray) -> str:
    return f"{a.dtype} {tuple(a.shape)}"


def check_X(name: str, key: str, X: np.ndarray) -> np.ndarray:
    """A float ``(N, L, F)`` array with at least one sequence, step and feature (returned as given:
    :func:`as_float32` casts it once its lengths are known)."""
    if X.dtype.kind != "f" or X.ndim != 3 or min(X.shape[1:], default=0) < 1:
        raise DataFileError(f"{name}: {key} must be float with shape (N, L, F), got {_describe(X)}")
    if X.shape[0] == 0:
        raise DataFileError(f"{name}: {key} holds no sequences (N = 0)")
    return X


def as_float32(name: str, key: str, X: np.ndarray, lengths: Optional[np.ndarray]) -> np.ndarray:
    """``X`` as float32, refusing finite values on real steps that float32 cannot hold (they would
    become infinity); padding may hold anything."""
    if X.dtype.itemsize > 4:
        with np.errstate(invalid="ignore"):
            big = np.isfinite(X) & (np.abs(X) > np.finfo(np.float32).max) & real_steps(X, lengths)[:, :, None]
        if big.any():
            i, t, f = (int(v) for v in np.argwhere(big)[0])
            raise DataFileError(f"{name}: {key} has {X[i, t, f]:g} at sequence {i}, step {t}, feature {f}, beyond "
                                f"float32 (|x| <= {np.finfo(np.float32).max:.4g}); rescale the data")
    with np.errstate(over="ignore"):  # only padding can overflow here, and padding is zeroed later
        return X.astype(np.float32)


def check_ints(name: str, key: str, a: np.ndarray, n: int) -> np.ndarray:
    """An integer ``(n,)`` array of values int64 holds, as int64."""
    if a.dtype.kind not in "iu" or a.shape != (n,):
        raise DataFileError(f"{name}: {key} must be integers with shape (N,) = ({n},), got {_describe(a)}")
    if a.dtype.kind == "u" and len(a) and int(a.max()) > np.iinfo(np.int64).max:
        i = int(np.argmax(a))
        raise DataFileError(f"{name}: {key} has {int(a[i])} at index {i}, beyond a 64-bit integer; "
                            f"{'use class indices 0..C-1' if key.startswith('y') else 'give lengths 1..L'}")
    return a.astype(np.int64)


def check_lengths(name: str, key: str, lengths: np.ndarray, X: np.ndarray) -> np.ndarray:
    """One length in ``1..L`` per sequence of ``X``, as int64."""
    lengths = check_ints(name, key, lengths, X.shape[0])
    bad = np.flatnonzero((lengths < 1) | (lengths > X.shape[1]))
    if len(bad):
        i = int(bad[0])
        raise DataFileError(
            f"{name}: {key} must lie in 1..{X.shape[1]} (the padded length L), got {lengths[i]} at index {i}"
        )
    return lengths


def check_finite(name: str, key: str, X: np.ndarray, lengths: Optional[np.ndarray]) -> None:
    """Refuses NaN or infinity on real steps (padding may hold anything; it is zeroed later)."""
    bad = ~np.isfinite(X) & real_steps(X, lengths)[:, :, None]
    if bad.any():
        i, t, f = (int(v) for v in np.argwhere(bad)[0])
        raise DataFileError(f"{name}: {key} has a non-finite value ({X[i, t, f]}) at sequence {i}, step {t}, "
                            f"feature {f}; fill or drop it (padding past a sequence's length may hold anything)")


def check_labels(name: str, key: str, y: np.ndarray, n_classes: Optional[int] = None) -> int:
    """Checks class indices; returns the number of classes (from ``y`` when not given)."""
    if len(y) and int(y.min()) < 0:
        i = int(np.argmin(y))
        raise DataFileError(f"{name}: {key} must hold class indices 0, 1, ..., C-1, got {y[i]} at index {i}")
    if n_classes is not None:
        if len(y) and int(y.max()) >= n_classes:
            raise DataFileError(
                f"{name}: {key} has class {int(y.max())}, but the training labels are 0..{n_classes - 1}; every "
                "test class must also occur in training"
            )
        return n_classes
    present = np.unique(y)
    if len(present) < 2:
        raise DataFileError(f"{name}: {key} holds a single class ({present[0]}); a classifier needs at least two")
    # every class 0..C-1 present means the sorted distinct labels are exactly 0, 1, ..., C-1: the first
    # place they differ names the missing class, and nothing is ever sized by a label's value
    gaps = np.flatnonzero(present != np.arange(len(present)))
    if len(gaps):
        shown = ", ".join(str(v) for v in present[:10].tolist()) + (", ..." if len(present) > 10 else "")
        raise DataFileError(
            f"{name}: {key} has no sequence of class {int(gaps[0])} (labels must be 0..C-1 with every class "
            f"present; found {shown})"
        )
    if len(present) > MAX_CLASSES:
        raise DataFileError(f"{name}: {key} has {len(present)} classes; squareseq reads at most {MAX_CLASSES} "
                            f"(squareseq.data.file_checks.MAX_CLASSES): merge classes")
    return len(present)
