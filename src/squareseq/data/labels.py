"""Labels as they come (any integers, or text) to class indices ``0..C-1`` with their names.

Classes are the distinct training labels in sorted order: numeric order when every label is an
integer or integer text (``'1'``, ``'2'``, ..., ``'10'``; ``-1`` before ``1``), text order
otherwise. A class's name is its label as text (``'walking'``, ``'3'``). A test label that never
occurs in training is refused, naming it, since the model could never predict it.
"""
from __future__ import annotations

import re
from typing import List, Optional, Tuple

import numpy as np

from squareseq.data.file_checks import MAX_CLASSES, DataFileError

__all__ = ["MAX_LABEL_CHARS", "check_label_array", "encode_labels"]

#: The longest label text read (a class name shown in reports and figures).
MAX_LABEL_CHARS = 100
_INTEGER = re.compile(r"[+-]?[0-9]+")


def _shown_list(values: List[str], limit: int = 10) -> str:
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (", ..." if len(values) > limit else "")


def check_label_array(name: str, key: str, a: np.ndarray, n: int) -> np.ndarray:
    """A ``(n,)`` array of integers or text (numpy ``'U'``): one label per sequence.

    Raises:
        DataFileError: another dtype or shape, an empty label, or a label over
            :data:`MAX_LABEL_CHARS` characters.
    """
    if a.dtype.kind not in "iuU" or a.shape != (n,):
        raise DataFileError(f"{name}: {key} must be integers or text with shape (N,) = ({n},), got {a.dtype} "
                            f"{tuple(a.shape)}")
    if a.dtype.kind == "U" and n:
        sizes = np.char.str_len(a)
        if int(sizes.max()) > MAX_LABEL_CHARS:
            i = int(np.argmax(sizes))
            raise DataFileError(f"{name}: {key} has a label of {int(sizes[i])} characters at index {i}; labels are "
                                f"class names of at most {MAX_LABEL_CHARS} characters")
        blank = np.flatnonzero(np.char.str_len(np.char.strip(a)) == 0)
        if len(blank):
            raise DataFileError(f"{name}: {key} has an empty label at index {int(blank[0])}; give every sequence "
                                "its class")
    return a


def _as_text(a: np.ndarray) -> np.ndarray:
    return a if a.dtype.kind == "U" else np.array([str(v) for v in a.tolist()], dtype=str)


def _normalise(a: np.ndarray) -> np.ndarray:
    """Integers as int64 (those beyond it as text), text as it is."""
    if a.dtype.kind == "u" and len(a) and int(a.max()) > np.iinfo(np.int64).max:
        return _as_text(a)
    return a.astype(np.int64) if a.dtype.kind in "iu" else a


def _order(classes: np.ndarray) -> Tuple[np.ndarray, List[str]]:
    """The distinct labels ``classes`` (np.unique's) in class order, and their names."""
    if classes.dtype.kind in "iu":
        return classes, [str(v) for v in classes.tolist()]
    names = [str(v) for v in classes.tolist()]
    if all(_INTEGER.fullmatch(v) for v in names):
        names.sort(key=lambda v: (int(v), v))
    return np.array(names, dtype=classes.dtype), names


def encode_labels(name: str, y: np.ndarray, y_test: Optional[np.ndarray] = None, key: str = "y",
                  test_key: str = "y_test") -> Tuple[np.ndarray, Optional[np.ndarray], List[str]]:
    """``(y, y_test, class_names)``: labels as int64 class indices in class order (see the module
    docstring), ``y_test`` None when not given.

    Raises:
        DataFileError: fewer than two classes, more than
            :data:`~squareseq.data.file_checks.MAX_CLASSES`, or test labels absent from training.
    """
    y = _normalise(y)
    y_test = None if y_test is None else _normalise(y_test)
    if y_test is not None and (y.dtype.kind == "U") != (y_test.dtype.kind == "U"):
        y, y_test = _as_text(y), _as_text(y_test)  # integers and text together: compared as text
    present = np.unique(y)
    if len(present) < 2:
        shown = str(present[0].item()) if len(present) else "none"
        raise DataFileError(f"{name}: {key} holds a single class ({shown}); a classifier needs at least two")
    if len(present) > MAX_CLASSES:
        raise DataFileError(f"{name}: {key} has {len(present)} classes; squareseq reads at most {MAX_CLASSES} "
                            f"(squareseq.data.file_checks.MAX_CLASSES): merge classes")
    classes, names = _order(present)
    # np.unique sorts; position in ``present`` -> position in class order
    rank = np.empty(len(classes), dtype=np.int64)
    rank[np.searchsorted(present, classes)] = np.arange(len(classes))
    out = rank[np.searchsorted(present, y)]
    out_test = None
    if y_test is not None:
        unseen = np.setdiff1d(np.unique(y_test), present)
        if len(unseen):
            raise DataFileError(f"{name}: {test_key} has label(s) {_shown_list([str(v) for v in unseen.tolist()])} "
                                f"that no training sequence has ({key} has {_shown_list(names)}); every test class "
                                "must also occur in training")
        out_test = rank[np.searchsorted(present, y_test)]
    return out.astype(np.int64), out_test, names
