"""The ``.ts`` reader: the UEA/UCR time-series archive's own format, read by aeon's loader
(``aeon.datasets.load_from_ts_file``), an optional extra (``pip install 'squareseq[aeon]'``).

aeon gives ``(N, C, L)`` arrays for equal-length series, or a list of ``(C, L_i)`` arrays; both
become squareseq's ``(N, L, F)`` float32, zero-padded at the end, with ``lengths`` for shorter
series (steps where every channel is missing at the end of a series count as padding, as in
archive files padded with ``NaN``). Labels are kept as the file's text (a numpy ``'U'`` array);
:mod:`squareseq.data.files` maps them to classes.

A path ``NAME_TRAIN.ts`` whose folder also holds ``NAME_TEST.ts`` is read with that file as its
test part (the archive's own split); any other path is read as training data only.

Sizes are bounded: a file larger than :data:`MAX_TS_BYTES` is refused before aeon reads it, and
the padded arrays are checked against :data:`~squareseq.data.file_checks.MAX_PADDED_VALUES`
(and the number of series against :data:`~squareseq.config.MAX_SEQUENCES`) before they are built.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np

from squareseq.config import MAX_SEQUENCES
from squareseq.data import file_checks
from squareseq.data.file_checks import CheckedArrays, DataFileError, check_is_file, check_padded_size, first_line

__all__ = ["AEON_MISSING", "MAX_TS_BYTES", "archive_test_path", "read_ts"]

#: What a ``.ts`` file needs that a core install lacks.
AEON_MISSING = "reading .ts files needs the optional aeon extra: pip install 'squareseq[aeon]'"
#: The largest ``.ts`` file read (bytes): four per value allowed by MAX_PADDED_VALUES (a value and
#: its separator take at least two), refused before aeon holds the file's series in memory.
MAX_TS_BYTES = 4 * file_checks.MAX_PADDED_VALUES

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def archive_test_path(path: Path) -> Optional[Path]:
    """The archive's test file beside a ``NAME_TRAIN.ts`` file, if there is one."""
    stem = path.stem
    if not stem.endswith("_TRAIN"):
        return None
    sibling = path.with_name(stem[: -len("_TRAIN")] + "_TEST" + path.suffix)
    return sibling if sibling.is_file() else None


def _load(name: str, path: Path):
    """aeon's ``(series, labels)`` of one file, every failure one line."""
    check_is_file(name, path)
    try:
        from aeon.datasets import load_from_ts_file
    except ImportError:
        raise DataFileError(f"{name}: {AEON_MISSING}") from None
    size = os.stat(path).st_size
    if size > MAX_TS_BYTES:
        raise DataFileError(f"{name}: is {size:,} bytes; squareseq reads .ts files of at most {MAX_TS_BYTES:,} "
                            "(squareseq.data.ts_files.MAX_TS_BYTES): split the series over several files")
    try:
        series, labels, meta = load_from_ts_file(str(path), return_meta_data=True)
    except UnicodeDecodeError:
        raise DataFileError(f"{name}: is not UTF-8 text (is it really a .ts file?)") from None
    except (OSError, ValueError, TypeError, IndexError, KeyError, AttributeError) as exc:
        raise DataFileError(f"{name}: is not a readable .ts file ({first_line(exc)})") from None
    if not meta.get("classlabel") or meta.get("targetlabel"):
        raise DataFileError(f"{name}: has no class labels (@classLabel false); squareseq classifies sequences, so "
                            "give a classification .ts file")
    if len(series) == 0:
        raise DataFileError(f"{name}: holds no series (is it really a .ts file, with an @data section?)")
    labels = np.asarray(labels).astype(str)
    declared = [str(v) for v in meta.get("class_values") or []]
    if declared:
        stray = np.flatnonzero(~np.isin(labels, declared))
        if len(stray):
            i = int(stray[0])
            raise DataFileError(f"{name}: series {i} has label {str(labels[i])!r}, not one of the @classLabel values "
                                f"({', '.join(declared[:10])}{', ...' if len(declared) > 10 else ''})")
    return series, labels


def _shape(name: str, series) -> Tuple[int, int, int]:
    """``(N, L, F)`` of aeon's series, padded to the longest, checked against the bounds."""
    if isinstance(series, np.ndarray):
        if series.ndim != 3:
            raise DataFileError(f"{name}: aeon read an array of shape {series.shape}; expected (N, C, L)")
        n, channels, longest = series.shape
    else:
        shapes = {a.shape[0] for a in series}
        if len(shapes) != 1 or any(a.ndim != 2 for a in series):
            raise DataFileError(f"{name}: the series have different numbers of channels ({sorted(shapes)})")
        n, channels, longest = len(series), shapes.pop(), max(a.shape[1] for a in series)
    if n > MAX_SEQUENCES:
        raise DataFileError(f"{name}: holds {n:,} series; squareseq reads at most {MAX_SEQUENCES:,} "
                            "(squareseq.config.MAX_SEQUENCES): split them over several files")
    check_padded_size(f"{name}: the series pad to", (n, longest, channels),
                      f"the longest has {longest:,} steps; shorten or drop the longest series")
    return n, longest, channels


def _real_length(a: np.ndarray) -> int:
    """Steps of one ``(C, L)`` series before its trailing steps where every channel is NaN."""
    present = np.flatnonzero(~np.isnan(a).all(axis=0))
    return int(present[-1]) + 1 if len(present) else 0


def _convert(name: str, key: str, series) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """aeon's series as ``(X, lengths)``: ``X`` float32 ``(N, L, F)`` zero-padded, ``lengths``
    None when every series has ``L`` steps."""
    n, longest, channels = _shape(name, series)
    X = np.zeros((n, longest, channels), dtype=np.float32)
    lengths = np.zeros(n, dtype=np.int64)
    for i in range(n):
        a = np.asarray(series[i], dtype=np.float64)
        length = _real_length(a)
        if length == 0:
            raise DataFileError(f"{name}: {key} series {i} has no values (every step is missing)")
        real = a[:, :length]
        with np.errstate(invalid="ignore"):
            big = np.argwhere(np.isfinite(real) & (np.abs(real) > _FLOAT32_MAX))
        if len(big):
            f, t = (int(v) for v in big[0])
            raise DataFileError(f"{name}: {key} has {real[f, t]:g} at series {i}, step {t}, channel {f}, beyond "
                                f"float32 (|x| <= {_FLOAT32_MAX:.4g}); rescale the data")
        X[i, :length] = real.T
        lengths[i] = length
    return X, (lengths if (lengths != longest).any() else None)


def _part(name: str, path: Path, key: str) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    series, labels = _load(name, path)
    X, lengths = _convert(name, key, series)
    return X, labels, lengths


def read_ts(path: Union[str, Path]) -> CheckedArrays:
    """Reads a ``.ts`` file (and, for ``NAME_TRAIN.ts``, its ``NAME_TEST.ts``) into padded arrays;
    labels as the file's text (``'U'``). Missing values inside a series stay NaN (the dataset
    check refuses them with their place).

    Raises:
        DataFileError: aeon is not installed, the file is missing, unreadable, unlabelled or too
            large, or the train and test files differ in channels.
    """
    name = str(path)
    path = Path(path)
    X, y, lengths = _part(name, path, "X")
    test = archive_test_path(path)
    if test is None:
        return CheckedArrays(X, y, lengths, None, None, None)
    X_test, y_test, lengths_test = _part(str(test), test, "X_test")
    if X_test.shape[2] != X.shape[2]:
        raise DataFileError(f"{test}: its series have {X_test.shape[2]} channels, but {name} has {X.shape[2]}; "
                            "give a matching pair of _TRAIN and _TEST files")
    return CheckedArrays(X, y, lengths, X_test, y_test, lengths_test)

