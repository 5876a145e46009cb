"""The ``.csv`` reader: long-format rows (one per step) to checked, zero-padded arrays (schema
in :mod:`squareseq.data.files`).

Errors name the file and, where one row is at fault, its line number. Splitting and
standardising happen later, in :mod:`squareseq.data.files`.
"""
from __future__ import annotations

import csv
import math
import re
from array import array
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from squareseq.data import file_checks
from squareseq.data.file_checks import (
    CheckedArrays,
    DataFileError,
    check_is_file,
    check_padded_size,
    first_line,
)

__all__ = ["CSV_REQUIRED", "read_csv"]

CSV_REQUIRED = ("sequence", "step", "label")


_PARTS = {"train": "training", "test": "test"}
_DIGITS = re.compile(r"[0-9]+")
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _shown(text: str) -> str:
    """``text`` quoted for a message, cut short when long."""
    return repr(text if len(text) <= 40 else text[:40] + "...")


def _parse_index(name: str, line: int, column: str, text: str, limit: int, why: str) -> int:
    """A plain decimal whole number (ASCII digits only: no sign, no ``_``, no exponent) below
    ``limit``; ``why`` says where the limit comes from."""
    digits = text.strip()
    if not _DIGITS.fullmatch(digits):
        raise DataFileError(f"{name} line {line}: {column} must be a whole number 0, 1, 2, ... written in plain "
                            f"digits, got {_shown(text)}")
    if len(digits.lstrip("0")) > len(str(limit)) or int(digits) >= limit:
        raise DataFileError(f"{name} line {line}: {column} {_shown(digits)} is too large; {why}")
    return int(digits)


def _parse_float(name: str, line: int, column: str, text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise DataFileError(f"{name} line {line}: feature {column!r} must be a number, got {_shown(text)}") from None
    if not math.isfinite(value):
        raise DataFileError(f"{name} line {line}: feature {column!r} must be finite, got {_shown(text)}")
    if abs(value) > _FLOAT32_MAX:
        raise DataFileError(f"{name} line {line}: feature {column!r} is {text.strip()}, beyond float32 "
                            f"(|x| <= {_FLOAT32_MAX:.4g}); rescale the data")
    return value


def _header(name: str, line: int, row: List[str]) -> Tuple[List[str], List[str]]:
    """The checked header and its feature columns."""
    header = [h.strip() for h in row]
    duplicates = sorted({h for h in header if header.count(h) > 1})
    if duplicates:
        raise DataFileError(f"{name} line {line}: column {duplicates[0]!r} appears twice")
    missing = [c for c in CSV_REQUIRED if c not in header]
    if missing:
        raise DataFileError(
            f"{name} line {line}: missing column(s) {', '.join(missing)}; expected a header like "
            "sequence,step,x,y,label"
        )
    features = [h for h in header if h not in (*CSV_REQUIRED, "split")]
    if not features:
        raise DataFileError(f"{name} line {line}: no feature columns (any columns besides sequence, step, "
                            "label, split)")
    if any(not h for h in features):
        raise DataFileError(f"{name} line {line}: a column has an empty name")
    return header, features


class _Sequence:
    """One sequence's rows as they come, in compact arrays (a row costs 12 bytes plus 4 per
    feature): its steps, the line of each, and the values, float32 (larger ones are refused)."""

    __slots__ = ("label", "part", "steps", "lines", "values")

    def __init__(self, label: int, part: str) -> None:
        self.label, self.part = label, part
        self.steps, self.lines, self.values = array("I"), array("Q"), array("f")


class _Reader:
    """Reads the data rows one at a time into :class:`_Sequence` objects, keyed by id in the order
    of each sequence's first row; stops as soon as a part (training or test) holds more values
    than the bound (its padded array would hold at least as many)."""

    def __init__(self, name: str, header: List[str], features: List[str]) -> None:
        self.name, self.header, self.features = name, header, features
        self.col = {h: i for i, h in enumerate(header)}
        self.feature_cols = [(f, self.col[f]) for f in features]
        self.seqs: Dict[str, _Sequence] = {}
        self.n_values = {"train": 0, "test": 0}  # real values per part

    def add(self, line: int, row: List[str]) -> None:
        name, col = self.name, self.col
        if len(row) != len(self.header):
            raise DataFileError(f"{name} line {line}: expected {len(self.header)} fields, got {len(row)}")
        seq_id = row[col["sequence"]].strip()
        if not seq_id:
            raise DataFileError(f"{name} line {line}: empty sequence id")
        limit = file_checks.MAX_PADDED_VALUES
        step = _parse_index(name, line, "step", row[col["step"]], limit, f"a sequence has at most {limit:,} steps")
        label = _parse_index(name, line, "label", row[col["label"]], file_checks.MAX_CLASSES,
                             f"labels are class indices 0..C-1 and squareseq reads at most "
                             f"{file_checks.MAX_CLASSES} classes (squareseq.data.file_checks.MAX_CLASSES)")
        values = [_parse_float(name, line, f, row[i]) for f, i in self.feature_cols]
        part = row[col["split"]].strip().lower() if "split" in col else "train"
        if part not in ("train", "test"):
            raise DataFileError(f"{name} line {line}: split must be 'train' or 'test', got {row[col['split']]!r}")
        seq = self.seqs.get(seq_id)
        if seq is None:
            seq = self.seqs[seq_id] = _Sequence(label, part)
        if label != seq.label:
            raise DataFileError(
                f"{name} line {line}: sequence {seq_id!r} has labels {seq.label} and {label} (one label per sequence)"
            )
        if part != seq.part:
            raise DataFileError(f"{name} line {line}: sequence {seq_id!r} is in both the train and test splits")
        self.n_values[part] += len(values)
        if self.n_values[part] > limit:
            raise DataFileError(f"{name} line {line}: the {_PARTS[part]} sequences hold more than {limit:,} values; "
                                f"squareseq reads at most {limit:,} (squareseq.data.file_checks.MAX_PADDED_VALUES): "
                                "split the sequences over several files")
        seq.steps.append(step)
        seq.lines.append(line)
        seq.values.extend(values)


def _read_sequences(name: str, path: Path) -> Tuple[List[str], Dict[str, _Sequence]]:
    """The feature columns and the sequences, read row by row (blank lines carry nothing)."""
    reader: Optional[_Reader] = None
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # a spreadsheet's byte-order mark is no column
            for line, row in enumerate(csv.reader(f), start=1):
                if not any(cell.strip() for cell in row):
                    continue
                if reader is None:
                    reader = _Reader(name, *_header(name, line, row))
                else:
                    reader.add(line, row)
    except OSError as exc:
        raise DataFileError(f"{name}: cannot be read ({exc.strerror or first_line(exc)})") from None
    except UnicodeDecodeError:
        raise DataFileError(f"{name}: is not UTF-8 text (is it really a .csv file?)") from None
    except csv.Error as exc:
        raise DataFileError(f"{name}: is not valid CSV ({first_line(exc)})") from None
    if reader is None:
        raise DataFileError(f"{name}: is empty; expected a header row: sequence,step,<features...>,label")
    if not reader.seqs:
        raise DataFileError(f"{name}: has a header but no data rows")
    return reader.features, reader.seqs


def _step_order(name: str, seq_id: str, seq: _Sequence) -> np.ndarray:
    """The order that puts ``seq``'s rows at steps 0, 1, ..., L-1; refuses a repeated step (at
    its first repeating line) or a gap."""
    steps = np.frombuffer(seq.steps, dtype=np.uint32)
    order = np.argsort(steps, kind="stable")
    ordered = steps[order]
    repeats = np.flatnonzero(ordered[1:] == ordered[:-1]) + 1  # stable: the later line of each pair
    if len(repeats):
        lines = np.frombuffer(seq.lines, dtype=np.uint64)[order[repeats]]
        first = int(np.argmin(lines))
        raise DataFileError(f"{name} line {int(lines[first])}: sequence {seq_id!r} has step "
                            f"{int(ordered[repeats[first]])} twice")
    if int(ordered[-1]) != len(ordered) - 1:
        shown = ", ".join(str(s) for s in ordered[:6].tolist()) + (", ..." if len(ordered) > 6 else "")
        raise DataFileError(f"{name}: sequence {seq_id!r} has steps {shown}; steps must be 0, 1, ..., L-1")
    return order


def _check_sizes(name: str, seqs: Dict[str, _Sequence], n_features: int) -> None:
    """Refuses a part whose padded array would pass the bound, before anything is padded."""
    for part, what in _PARTS.items():
        lengths = [len(s.steps) for s in seqs.values() if s.part == part]
        if lengths:
            check_padded_size(f"{name}: the {what} sequences pad to", (len(lengths), max(lengths), n_features),
                              f"the longest has {max(lengths):,} steps; shorten or drop the longest sequences, "
                              "or split them over several files")


def _pad(name: str, seqs: Dict[str, _Sequence], part: str, n_features: int):
    """``(X, y, lengths)`` of the sequences in ``part``, zero-padded at the end (``lengths``
    None when all have the same length); three Nones when ``part`` has no sequence."""
    chosen = [(seq_id, s) for seq_id, s in seqs.items() if s.part == part]
    if not chosen:
        return None, None, None
    lengths = np.array([len(s.steps) for _, s in chosen], dtype=np.int64)
    X = np.zeros((len(chosen), int(lengths.max()), n_features), dtype=np.float32)
    for i, (seq_id, s) in enumerate(chosen):
        values = np.frombuffer(s.values, dtype=np.float32).reshape(-1, n_features)
        X[i, : lengths[i]] = values[_step_order(name, seq_id, s)]
    y = np.array([s.label for _, s in chosen], dtype=np.int64)
    return X, y, (lengths if (lengths != X.shape[1]).any() else None)


def read_csv(path: Union[str, Path]) -> CheckedArrays:
    """Reads a long-format ``.csv`` file into padded arrays; sequences keep the order of their
    first row, and the test part is None when no row is marked ``test``.

    Raises:
        DataFileError: the file is missing, not UTF-8 CSV, breaks the schema, or holds more than
            :data:`~squareseq.data.file_checks.MAX_PADDED_VALUES` values (padding included).
    """
    name = str(path)
    path = Path(path)
    check_is_file(name, path)
    features, seqs = _read_sequences(name, path)
    for seq_id, seq in seqs.items():  # every sequence's steps checked before the sizes
        _step_order(name, seq_id, seq)
    _check_sizes(name, seqs, len(features))
    X, y, lengths = _pad(name, seqs, "train", len(features))
    if X is None:
        raise DataFileError(f"{name}: every sequence is in the test split; mark some as 'train'")
    X_test, y_test, lengths_test = _pad(name, seqs, "test", len(features))
    return CheckedArrays(X, y, lengths, X_test, y_test, lengths_test)
