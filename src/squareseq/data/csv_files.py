"""The ``.csv`` reader: long-format rows (one per step) to checked, zero-padded arrays (schema
in :mod:`squareseq.data.files`).

Errors name the file and, where one row is at fault, its line number. Splitting and
standardising happen later, in :mod:`squareseq.data.files`.
"""
from __future__ import annotations

import csv
import itertools
import math
import re
from array import array
from collections import Counter
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple, Union

import numpy as np

from squareseq.config import MAX_SEQUENCES
from squareseq.data import file_checks
from squareseq.data.file_checks import (
    CheckedArrays,
    DataFileError,
    check_is_file,
    check_padded_size,
    first_line,
)

__all__ = ["CSV_REQUIRED", "MAX_LINE_CHARS", "read_csv"]

CSV_REQUIRED = ("sequence", "step", "label")
#: The longest line read: a file without line breaks is refused before it is held whole.
MAX_LINE_CHARS = 1_000_000


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
    duplicates = sorted(h for h, n in Counter(header).items() if n > 1)
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


class _Rows:
    """The data rows, read one at a time into compact arrays (a row costs 16 bytes plus 4 a
    value; a sequence, its id and two bytes): each row's sequence index (in the order of each
    sequence's first row), step, line and float32 values. Reading stops at the first row past a
    bound: more than :data:`~squareseq.config.MAX_SEQUENCES` sequences, or a part (training or
    test) with more than :data:`~squareseq.data.file_checks.MAX_PADDED_VALUES` values (its padded
    array would hold at least as many)."""

    def __init__(self, name: str, header: List[str], features: List[str]) -> None:
        self.name, self.header, self.features = name, header, features
        self.col = {h: i for i, h in enumerate(header)}
        self.feature_cols = [(f, self.col[f]) for f in features]
        self.ids: Dict[str, int] = {}
        self.labels, self.parts = array("H"), array("b")  # per sequence; parts: 0 train, 1 test
        self.seq, self.steps, self.lines, self.values = array("I"), array("I"), array("Q"), array("f")
        self.n_values = [0, 0]  # real values per part

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
        part_name = row[col["split"]].strip().lower() if "split" in col else "train"
        if part_name not in _PARTS:
            raise DataFileError(f"{name} line {line}: split must be 'train' or 'test', got {row[col['split']]!r}")
        part = int(part_name == "test")
        index = self.ids.get(seq_id)
        if index is None:
            if len(self.ids) >= MAX_SEQUENCES:
                raise DataFileError(f"{name} line {line}: more than {MAX_SEQUENCES:,} sequences; squareseq reads at "
                                    f"most {MAX_SEQUENCES:,} (squareseq.config.MAX_SEQUENCES): split them over "
                                    "several files")
            index = self.ids[seq_id] = len(self.ids)
            self.labels.append(label)
            self.parts.append(part)
        elif label != self.labels[index]:
            raise DataFileError(f"{name} line {line}: sequence {seq_id!r} has labels {self.labels[index]} and "
                                f"{label} (one label per sequence)")
        elif part != self.parts[index]:
            raise DataFileError(f"{name} line {line}: sequence {seq_id!r} is in both the train and test splits")
        self.n_values[part] += len(values)
        if self.n_values[part] > limit:
            raise DataFileError(f"{name} line {line}: the {_PARTS[part_name]} sequences hold more than {limit:,} "
                                f"values; squareseq reads at most {limit:,} "
                                "(squareseq.data.file_checks.MAX_PADDED_VALUES): split the sequences over several "
                                "files")
        self.seq.append(index)
        self.steps.append(step)
        self.lines.append(line)
        self.values.extend(values)


def _lines(name: str, f):
    """The file's lines, refusing one longer than :data:`MAX_LINE_CHARS` before holding it whole."""
    for n in itertools.count(1):
        text = f.readline(MAX_LINE_CHARS + 1)
        if not text:
            return
        if len(text) > MAX_LINE_CHARS:
            raise DataFileError(f"{name}: physical line {n} is longer than {MAX_LINE_CHARS:,} characters "
                                "(squareseq.data.csv_files.MAX_LINE_CHARS); is it really a long-format .csv file?")
        yield text


def _read_rows(name: str, path: Path) -> _Rows:
    """The header and the data rows, read row by row (blank lines carry nothing)."""
    rows: Optional[_Rows] = None
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # a spreadsheet's byte-order mark is no column
            for line, row in enumerate(csv.reader(_lines(name, f)), start=1):
                if not any(cell.strip() for cell in row):
                    continue
                if rows is None:
                    rows = _Rows(name, *_header(name, line, row))
                else:
                    rows.add(line, row)
    except OSError as exc:
        raise DataFileError(f"{name}: cannot be read ({exc.strerror or first_line(exc)})") from None
    except UnicodeDecodeError:
        raise DataFileError(f"{name}: is not UTF-8 text (is it really a .csv file?)") from None
    except csv.Error as exc:
        raise DataFileError(f"{name}: is not valid CSV ({first_line(exc)})") from None
    if rows is None:
        raise DataFileError(f"{name}: is empty; expected a header row: sequence,step,<features...>,label")
    if not rows.ids:
        raise DataFileError(f"{name}: has a header but no data rows")
    return rows


class _Grouped(NamedTuple):
    seq: np.ndarray  # (rows,) sequence index of each row
    steps: np.ndarray  # (rows,) its step
    lengths: np.ndarray  # (sequences,) steps of each sequence


def _group(name: str, rows: _Rows) -> _Grouped:
    """Checks that every sequence has steps 0..L-1, each once: a repeated step is named at the first
    line that repeats one, a gap in the first sequence (in file order) that has one."""
    seq = np.frombuffer(rows.seq, dtype=np.uint32)
    steps = np.frombuffer(rows.steps, dtype=np.uint32)
    order = np.lexsort((steps, seq))  # stable: of two rows with one step, the later line comes second
    s_seq, s_step = seq[order], steps[order]
    ids = list(rows.ids)
    repeats = np.flatnonzero((s_seq[1:] == s_seq[:-1]) & (s_step[1:] == s_step[:-1])) + 1
    if len(repeats):
        lines = np.frombuffer(rows.lines, dtype=np.uint64)
        row = int(order[repeats[np.argmin(lines[order[repeats]])]])
        raise DataFileError(f"{name} line {int(lines[row])}: sequence {ids[seq[row]]!r} has step {int(steps[row])} "
                            "twice")
    lengths = np.bincount(seq, minlength=len(ids))
    starts = np.cumsum(lengths) - lengths
    gaps = np.flatnonzero(s_step != np.arange(len(s_step)) - starts[s_seq])
    if len(gaps):
        k = int(s_seq[gaps].min())
        first = s_step[starts[k]:starts[k] + min(6, int(lengths[k]))].tolist()
        shown = ", ".join(str(v) for v in first) + (", ..." if lengths[k] > 6 else "")
        raise DataFileError(f"{name}: sequence {ids[k]!r} has steps {shown}; steps must be 0, 1, ..., L-1")
    return _Grouped(seq, steps, lengths)


def _check_sizes(name: str, rows: _Rows, grouped: _Grouped) -> None:
    """Refuses a part whose padded array would pass the bound, before anything is padded."""
    parts = np.frombuffer(rows.parts, dtype=np.int8)
    for part, what in enumerate(_PARTS.values()):
        lengths = grouped.lengths[parts == part]
        if len(lengths):
            longest = int(lengths.max())
            check_padded_size(f"{name}: the {what} sequences pad to", (len(lengths), longest, len(rows.features)),
                              f"the longest has {longest:,} steps; shorten or drop the longest sequences, "
                              "or split them over several files")


def _pad(rows: _Rows, grouped: _Grouped, part: int):
    """``(X, y, lengths)`` of the sequences in ``part`` (0 train, 1 test) in the order of their
    first row, zero-padded at the end (``lengths`` None when all have the same length); three
    Nones when ``part`` has no sequence."""
    chosen = np.flatnonzero(np.frombuffer(rows.parts, dtype=np.int8) == part)
    if not len(chosen):
        return None, None, None
    lengths = grouped.lengths[chosen].astype(np.int64)
    n_features = len(rows.features)
    X = np.zeros((len(chosen), int(lengths.max()), n_features), dtype=np.float32)
    local = np.full(len(grouped.lengths), -1, dtype=np.int64)
    local[chosen] = np.arange(len(chosen))
    mine = local[grouped.seq] >= 0
    values = np.frombuffer(rows.values, dtype=np.float32).reshape(-1, n_features)
    X[local[grouped.seq[mine]], grouped.steps[mine]] = values[mine]
    y = np.frombuffer(rows.labels, dtype=np.uint16)[chosen].astype(np.int64)
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
    rows = _read_rows(name, path)
    grouped = _group(name, rows)
    _check_sizes(name, rows, grouped)
    X, y, lengths = _pad(rows, grouped, 0)
    if X is None:
        raise DataFileError(f"{name}: every sequence is in the test split; mark some as 'train'")
    X_test, y_test, lengths_test = _pad(rows, grouped, 1)
    return CheckedArrays(X, y, lengths, X_test, y_test, lengths_test)
