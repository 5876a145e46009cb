"""What both ``.csv`` readers share: the header check, the label's canonical text, and the table of
rows they hand to the grouping and padding in :mod:`squareseq.data.csv_files`.

The strict reader (row by row, in :mod:`squareseq.data.csv_files`) and the fast one
(:mod:`squareseq.data.csv_fast`) both build a :class:`Table`, so that everything after reading
(steps checked, sizes bounded, sequences padded) is one code path and gives one answer.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import List, NamedTuple, Tuple

import numpy as np

from squareseq.data.file_checks import DataFileError
from squareseq.data.labels import MAX_LABEL_CHARS  # one bound for every file format's labels

__all__ = ["CSV_REQUIRED", "CSV_INPUT_REQUIRED", "MAX_LABEL_CHARS", "Table", "check_header", "label_key",
           "label_shown", "labels_array", "shown"]

CSV_REQUIRED = ("sequence", "step", "label")
#: The columns a file of inputs to classify needs (``label`` and ``split`` are ignored if present).
CSV_INPUT_REQUIRED = ("sequence", "step")

_WHOLE = re.compile(r"([+-]?)0*([0-9]+)")
_CANONICAL_INT = re.compile(r"-?[0-9]+")
_INT64_MAX = int(np.iinfo(np.int64).max)


def shown(text: str) -> str:
    """``text`` quoted for a message, cut short when long."""
    return repr(text if len(text) <= 40 else text[:40] + "...")


def check_header(name: str, line: int, row: List[str], labelled: bool = True) -> Tuple[List[str], List[str]]:
    """The checked header and its feature columns (every column but sequence, step, label, split).
    ``labelled`` False: the label column is not required (inputs to classify)."""
    header = [h.strip() for h in row]
    duplicates = sorted(h for h, n in Counter(header).items() if n > 1)
    if duplicates:
        raise DataFileError(f"{name} line {line}: column {duplicates[0]!r} appears twice")
    missing = [c for c in (CSV_REQUIRED if labelled else CSV_INPUT_REQUIRED) if c not in header]
    if missing:
        example = "sequence,step,x,y,label" if labelled else "sequence,step,x,y"
        raise DataFileError(f"{name} line {line}: missing column(s) {', '.join(missing)}; expected a header like "
                            f"{example}")
    features = [h for h in header if h not in (*CSV_REQUIRED, "split")]
    if not features:
        raise DataFileError(f"{name} line {line}: no feature columns (any columns besides sequence, step, "
                            "label, split)")
    if any(not h for h in features):
        raise DataFileError(f"{name} line {line}: a column has an empty name")
    return header, features


def label_key(name: str, line: int, text: str) -> str:
    """A label's canonical text: surrounding spaces stripped, and a whole number (optional sign,
    ASCII digits) written plainly, so ``7``, ``07``, ``+7`` and `` 7 `` are one class ``7``
    (``-0`` is ``0``); any other text is a class name, kept as written."""
    label = text.strip()
    if not label:
        raise DataFileError(f"{name} line {line}: empty label; give each sequence a class (a number or a name)")
    if len(label) > MAX_LABEL_CHARS:
        raise DataFileError(f"{name} line {line}: label {shown(label)} is longer than {MAX_LABEL_CHARS} characters "
                            "(squareseq.data.csv_schema.MAX_LABEL_CHARS); use shorter class names")
    whole = _WHOLE.fullmatch(label)
    if whole is None:
        return label
    sign, digits = whole.groups()
    return digits if sign != "-" or digits == "0" else "-" + digits


def label_shown(key: str) -> str:
    """A label in a message: whole numbers as they are, names quoted."""
    return key if _CANONICAL_INT.fullmatch(key) else shown(key)


def labels_array(names: List[str], codes: np.ndarray) -> np.ndarray:
    """Each sequence's label from its code into ``names`` (canonical keys): int64 when every
    label is a whole number int64 holds, else the labels' text as a numpy ``'U'`` array."""
    if all(_CANONICAL_INT.fullmatch(n) and abs(int(n)) <= _INT64_MAX for n in names):
        return np.array([int(n) for n in names], dtype=np.int64)[codes]
    return np.array(names, dtype=str)[codes] if names else np.array([], dtype=str)


class Table(NamedTuple):
    """A file's data rows as arrays. Per sequence (in the order of its first row): ``ids``, the
    code of its label into ``label_names`` (``labels``) and its part (``parts``: 0 train, 1 test).
    Per row: its sequence index (``seq``), ``steps``, line number (``lines``) and float32 ``values``
    ``(rows, F)``."""

    ids: List[str]
    label_names: List[str]
    labels: np.ndarray  # (sequences,) uint32
    parts: np.ndarray  # (sequences,) int8
    seq: np.ndarray  # (rows,) uint32
    steps: np.ndarray  # (rows,) uint32
    lines: np.ndarray  # (rows,) uint64
    values: np.ndarray  # (rows, F) float32
    features: List[str]

