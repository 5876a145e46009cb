"""What ``predict`` reads: sequences without labels, from ``.npy``, ``.npz`` or ``.csv``.

* ``.npy``: one float array ``(N, L, F)`` or ``(N, C, L)``; lengths, if any, in a second
  ``.npy`` of integers ``(N,)`` (``lengths_path``) or as NaN padding;
* ``.npz``: ``X`` and optionally ``lengths`` (labels and test arrays, if present, are ignored);
* ``.csv``: the training schema's long format (``sequence``, ``step``, features; ``label`` and
  ``split`` are ignored when present).

The same bounds and checks as training files apply (a regular file, headers read before
anything is allocated, at most :data:`~squareseq.data.file_checks.MAX_PADDED_VALUES` values, no
pickled objects). :func:`read_prepared` reads and prepares in one call, as a run's model wants.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Tuple, Union

import numpy as np

from squareseq.data.file_checks import (
    DataFileError,
    check_ints,
    check_padded_size,
    check_X,
    file_problem,
    first_line,
    npy_header,
)
from squareseq.data.layout import model_array, resolve_layout
from squareseq.data.npz_files import check_dtype, read_arrays
from squareseq.data.preprocessing import Preprocessing

__all__ = ["INPUT_SUFFIXES", "read_inputs", "read_inputs_and_ids", "read_prepared"]

INPUT_SUFFIXES = (".npy", ".npz", ".csv")
PathLike = Union[str, Path]


def _check_is_file(path: PathLike) -> None:
    problem = file_problem(Path(path))
    if problem is not None:
        raise DataFileError(f"{path}: {problem}; give a {', '.join(INPUT_SUFFIXES)} file")


def _read_npy(path: PathLike) -> np.ndarray:
    """One ``.npy`` array, its header checked before numpy allocates what it sizes."""
    name = str(path)
    _check_is_file(path)
    try:
        with open(path, "rb") as f:
            shape, dtype = npy_header(name, f)
    except OSError as exc:
        raise DataFileError(f"{name}: cannot be read ({exc.strerror or first_line(exc)})") from None
    check_dtype(name, dtype)
    check_padded_size(f"{name}: has shape", shape, "use fewer or shorter sequences, or split them over several files")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataFileError(f"{name}: is not a readable .npy array ({first_line(exc)}); write it with "
                            "numpy.save") from None


def read_inputs(path: PathLike, layout: str = "auto",
                lengths_path: Optional[PathLike] = None) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """``(X, lengths)``: the sequences of ``path`` as ``(N, L, F)`` float32, padding zeroed,
    ``lengths`` None when every sequence has all ``L`` steps (NaN padding gives them too).

    ``layout`` is the file's: ``"NLF"``, ``"NCL"`` or ``"auto"`` (decided as for training files;
    a run's stored layout is the natural choice). A CSV is always ``(N, L, F)``.

    Raises:
        DataFileError: a missing or unreadable file, an unknown suffix, or arrays that break the
            schema (one line naming the file).
    """
    X, lengths, _ = read_inputs_and_ids(path, layout, lengths_path)
    return X, lengths


def read_inputs_and_ids(path: PathLike, layout: str = "auto", lengths_path: Optional[PathLike] = None
                        ) -> Tuple[np.ndarray, Optional[np.ndarray], Optional[List[str]]]:
    """:func:`read_inputs` and the sequences' ids: a CSV's ``sequence`` column (in the order its
    sequences are read), None for arrays, which have none."""
    name = str(path)
    suffix = Path(path).suffix.lower()
    if suffix not in INPUT_SUFFIXES:
        raise DataFileError(f"{name}: unsupported input type {suffix or '(no suffix)'!r}; use "
                            f"{', '.join(INPUT_SUFFIXES)}")
    if suffix == ".csv":
        if lengths_path is not None:
            raise DataFileError(f"{name}: a .csv file gives each sequence's steps itself; drop the lengths file")
        _check_is_file(path)
        from squareseq.data.csv_files import read_csv_inputs

        X, lengths, ids = read_csv_inputs(path)
        return (*model_array(name, "X", X, "NLF", lengths), [str(v) for v in ids])
    if suffix == ".npy":
        X = check_X(name, "X", _read_npy(path))
        lengths = None
    else:
        _check_is_file(path)
        arrays = read_arrays(name, Path(path), required=("X",))
        X = check_X(name, "X", arrays["X"])
        lengths = arrays.get("lengths")
        if lengths is not None and lengths_path is not None:
            raise DataFileError(f"{name}: holds lengths and a lengths file was given too; give one of them")
    if lengths_path is not None:
        lengths = _read_npy(lengths_path)
        name_l = str(lengths_path)
        lengths = check_ints(name_l, "the lengths", lengths.reshape(-1) if lengths.ndim == 2 and 1 in lengths.shape
                             else lengths, X.shape[0])
    elif lengths is not None:
        lengths = check_ints(name, "lengths", lengths, X.shape[0])
    resolved, _ = resolve_layout(name, X, lengths, layout=layout)
    return (*model_array(name, "X", X, resolved, lengths), None)


def read_prepared(path: PathLike, preprocessing: Preprocessing, lengths_path: Optional[PathLike] = None,
                  layout: Optional[str] = None) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """``path``'s sequences exactly as the run's model was trained on them: read in ``layout``
    (the run's stored one by default) and prepared by ``preprocessing``."""
    X, lengths = read_inputs(path, preprocessing.layout if layout is None else layout, lengths_path)
    return preprocessing.prepare(X, lengths, layout="NLF", name=str(path))
