"""Array layouts and NaN padding: a file's float array to the ``(N, L, F)`` float32 a model reads.

Two layouts are read: ``"NLF"``, ``(N, L, F)``, steps then features (the README's), and
``"NCL"``, ``(N, C, L)``, channels then steps (aeon's, sktime's, tsai's). ``"auto"`` decides from
evidence, strongest first: the lengths (the step axis must hold the longest sequence), a test
array (it shares the feature axis), NaN padding (whole trailing all-NaN steps run along the step
axis), an axis exactly as long as the longest sequence; failing all of these, the longer axis is
time (more steps than features). Equal sizes with no evidence are refused: ``--layout`` decides.

NaN padding (aeon's convention for unequal lengths): when an array comes without lengths, its
trailing all-NaN steps are padding and give each sequence's length; a NaN anywhere else (inside
a sequence, or on a step that is only partly NaN) is refused.

:func:`model_array` is the one path from a file's array to what training sees; predict and
evaluate go through it too (via :class:`~squareseq.data.preprocessing.Preprocessing`), so they
see bit-identical inputs.
"""
from __future__ import annotations

from typing import Iterable, List, Optional, Tuple

import numpy as np

from squareseq.data.file_checks import DataFileError, as_float32, check_finite, check_lengths, real_steps

__all__ = ["LAYOUTS", "model_array", "nan_lengths", "resolve_layout", "to_nlf"]

LAYOUTS = ("NLF", "NCL")
_NAMES = {"NLF": "(N, L, F)", "NCL": "(N, C, L)"}


def to_nlf(X: np.ndarray, layout: str) -> np.ndarray:
    """``X`` as ``(N, L, F)``: itself for ``"NLF"``, a transposed view for ``"NCL"``."""
    return X if layout == "NLF" else X.transpose(0, 2, 1)


def _trailing_nan(X: np.ndarray) -> Tuple[Optional[np.ndarray], Optional[str]]:
    """``(lengths, None)`` when the NaNs of ``(N, L, F)`` ``X`` are whole trailing steps (lengths
    None when there is no NaN), else ``(None, what is wrong)``."""
    if X.dtype.kind != "f":
        return None, None
    nan = np.isnan(X)
    if not nan.any():
        return None, None
    real = ~nan.all(axis=2)  # (N, L): a step that is not all NaN
    has_real = real.any(axis=1)
    if not has_real.all():
        i = int(np.flatnonzero(~has_real)[0])
        return None, f"sequence {i} is NaN at every step (no data)"
    L = X.shape[1]
    lengths = (L - np.argmax(real[:, ::-1], axis=1)).astype(np.int64)
    inside = nan & real_steps(X, lengths)[:, :, None]
    first = int(np.argmax(inside))  # the first True (argmax stops there); 0 when there is none
    if inside.flat[first]:
        i, t, f = (int(v) for v in np.unravel_index(first, inside.shape))
        where = "on a step that is only partly NaN" if real[i, t] else "inside the sequence"
        return None, f"NaN at sequence {i}, step {t}, feature {f}, {where}"
    return lengths, None


def nan_lengths(name: str, key: str, X: np.ndarray) -> Optional[np.ndarray]:
    """The lengths NaN padding gives ``(N, L, F)`` ``X`` (None when it holds no NaN).

    Raises:
        DataFileError: a NaN that is not part of whole trailing all-NaN steps, or an all-NaN sequence.
    """
    lengths, problem = _trailing_nan(X)
    if problem is not None:
        raise DataFileError(f"{name}: {key} has {problem}; NaN may only pad the end of a sequence as whole "
                            "steps (every feature NaN): fill or drop the missing values")
    return lengths


def _steps(X: np.ndarray, layout: str) -> int:
    return int(X.shape[1] if layout == "NLF" else X.shape[2])


def _features(X: np.ndarray, layout: str) -> int:
    return int(X.shape[2] if layout == "NLF" else X.shape[1])


def _shape(X: np.ndarray) -> str:
    return "(" + ", ".join(str(n) for n in X.shape) + ")"


def _fit_lengths(arrays: Iterable[Tuple[np.ndarray, Optional[np.ndarray]]], layout: str) -> bool:
    return all(lengths is None or not len(lengths) or int(lengths.max()) <= _steps(X, layout)
               for X, lengths in arrays)


def _exact_lengths(arrays: Iterable[Tuple[np.ndarray, Optional[np.ndarray]]], layout: str) -> bool:
    given = [(X, lengths) for X, lengths in arrays if lengths is not None and len(lengths)]
    return bool(given) and all(int(lengths.max()) == _steps(X, layout) for X, lengths in given)


def resolve_layout(name: str, X: np.ndarray, lengths: Optional[np.ndarray] = None,
                   X_test: Optional[np.ndarray] = None, lengths_test: Optional[np.ndarray] = None,
                   layout: str = "auto", key: str = "X") -> Tuple[str, Optional[str]]:
    """``(layout, note)``: ``"NLF"`` or ``"NCL"``, and a one-line notice when ``"auto"`` chose
    ``"NCL"`` from the shape alone (None otherwise). See the module docstring for the evidence.

    Raises:
        DataFileError: an explicit layout the lengths contradict, or an ambiguous shape.
    """
    arrays = [(X, lengths)] + ([(X_test, lengths_test)] if X_test is not None else [])
    if layout in LAYOUTS:
        other = "NCL" if layout == "NLF" else "NLF"
        if not _fit_lengths(arrays, layout) and _fit_lengths(arrays, other):
            longest = max(int(n.max()) for _, n in arrays if n is not None and len(n))
            raise DataFileError(
                f"{name}: the lengths go up to {longest} steps, but {key} {_shape(X)} read as {layout} "
                f"{_NAMES[layout]} has {_steps(X, layout)}; pass --layout {other} (or --layout auto)")
        return layout, None
    if layout != "auto":
        raise DataFileError(f"{name}: unknown layout {layout!r}; use NLF, NCL or auto")
    candidates: List[str] = [c for c in LAYOUTS if _fit_lengths(arrays, c)]
    if X_test is not None:
        candidates = [c for c in candidates if _features(X, c) == _features(X_test, c)]
    unpadded = [a for a, n in arrays if n is None and a.dtype.kind == "f"]
    if any(np.isnan(a).any() for a in unpadded):  # NaN padding runs along the step axis only
        by_nan = [c for c in candidates if all(_trailing_nan(to_nlf(a, c))[1] is None for a in unpadded)]
        candidates = by_nan or candidates
    if len(candidates) == 1:
        return candidates[0], None
    if not candidates:
        return "NLF", None  # nothing fits either way: the (N, L, F) checks say what is wrong
    exact = [c for c in candidates if _exact_lengths(arrays, c)]
    if len(exact) == 1:
        return exact[0], None
    if X.shape[1] == X.shape[2] == 1:
        return "NLF", None  # one step of one feature either way
    if X.shape[1] == X.shape[2]:
        n = X.shape[1]
        raise DataFileError(f"{name}: {key} {_shape(X)} has as many rows as columns per sequence, so its layout "
                            f"cannot be told; pass --layout NLF for {n} steps of {n} features (N, L, F) or "
                            f"--layout NCL for {n} channels of {n} steps (N, C, L)")
    if X.shape[2] > X.shape[1]:
        c, steps = X.shape[1], X.shape[2]
        return "NCL", (f"read {key} {_shape(X)} as {steps} steps of {c} channel(s) ((N, C, L), more steps than "
                       f"features); pass --layout NLF if it is {c} steps of {steps} features")
    return "NLF", None


def model_array(name: str, key: str, X: np.ndarray, layout: str, lengths: Optional[np.ndarray] = None,
                lengths_key: str = "lengths") -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """A file's float array in ``layout`` to ``(X, lengths)`` as training sees it: ``(N, L, F)``
    float32, C-contiguous, padding zeroed, ``lengths`` from the array's NaN padding when not
    given, and None when every sequence has all ``L`` steps.

    Raises:
        DataFileError: lengths outside ``1..L``, NaN other than trailing padding, infinity on a
            real step, or a value beyond float32.
    """
    Xn = to_nlf(X, layout)
    if lengths is None:
        lengths = nan_lengths(name, key, Xn)
    else:
        lengths = check_lengths(name, lengths_key, lengths, Xn)
    X32 = np.ascontiguousarray(as_float32(name, key, Xn, lengths))
    check_finite(name, key, X32, lengths)
    if lengths is not None and (lengths == X32.shape[1]).all():
        lengths = None
    if lengths is not None:
        X32[~real_steps(X32, lengths)] = 0.0
    return X32, lengths
