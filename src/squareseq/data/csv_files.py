"""The ``.csv`` reader: long-format rows (one per step) to checked, zero-padded arrays (schema
in :mod:`squareseq.data.files`).

Two readers give one answer. The fast one (:mod:`squareseq.data.csv_fast`) takes well-formed
files (plain ASCII, no quoting) in a few C-level passes; on any doubt it steps aside and the strict
one here reads the file row by row, so every error names the file and, where one row is at fault,
its line number, exactly as before. Both build a :class:`~squareseq.data.csv_schema.Table`,
checked, bounded and padded by the same code below. Splitting and standardising happen later,
in :mod:`squareseq.data.files`.

Labels may be any text: a whole number (``7``, ``07``, ``+7``) is read as that number, anything
else (``walking``) as a class name. ``y`` is int64 when every label is a whole number that int64
holds, else a numpy ``'U'`` array of the labels' text; :mod:`squareseq.data.files` maps labels
to classes.
"""
from __future__ import annotations

import csv
import itertools
import math
import re
from array import array
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple, Union

import numpy as np

from squareseq.config import MAX_SEQUENCES
from squareseq.data import csv_fast, file_checks
from squareseq.data.csv_schema import CSV_REQUIRED, Table, check_header, label_key, label_shown, labels_array, shown
from squareseq.data.file_checks import (
    CheckedArrays,
    DataFileError,
    check_is_file,
    check_padded_size,
    first_line,
)

__all__ = ["CSV_REQUIRED", "MAX_LINE_CHARS", "read_csv", "read_csv_inputs"]

#: The longest line read: a file without line breaks is refused before it is held whole.
MAX_LINE_CHARS = 1_000_000


_PARTS = {"train": "training", "test": "test"}
_DIGITS = re.compile(r"[0-9]+")
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_shown = shown


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


class _Rows:
    """The data rows, read one at a time into compact arrays (a row costs 16 bytes plus 4 a
    value; a sequence, its id and six bytes): each row's sequence index (in the order of each
    sequence's first row), step, line and float32 values. Reading stops at the first row past a
    bound: more than :data:`~squareseq.config.MAX_SEQUENCES` sequences, or a part (training or
    test) with more than :data:`~squareseq.data.file_checks.MAX_PADDED_VALUES` values (its padded
    array would hold at least as many). ``labelled`` False: the label and split columns are
    ignored (every sequence is in the training part, with label code 0)."""

    def __init__(self, name: str, header: List[str], features: List[str], labelled: bool = True) -> None:
        self.name, self.header, self.features, self.labelled = name, header, features, labelled
        self.col = {h: i for i, h in enumerate(header)}
        self.feature_cols = [(f, self.col[f]) for f in features]
        self.ids: Dict[str, int] = {}
        self.label_codes: Dict[str, int] = {}  # canonical label -> code
        self.labels, self.parts = array("I"), array("b")  # per sequence; parts: 0 train, 1 test
        self.seq, self.steps, self.lines, self.values = array("I"), array("I"), array("Q"), array("f")
        self.n_values = [0, 0]  # real values per part

    def _label_code(self, line: int, row: List[str]) -> int:
        if not self.labelled:
            return 0
        key = label_key(self.name, line, row[self.col["label"]])
        return self.label_codes.setdefault(key, len(self.label_codes))

    def add(self, line: int, row: List[str]) -> None:
        name, col = self.name, self.col
        if len(row) != len(self.header):
            raise DataFileError(f"{name} line {line}: expected {len(self.header)} fields, got {len(row)}")
        seq_id = row[col["sequence"]].strip()
        if not seq_id:
            raise DataFileError(f"{name} line {line}: empty sequence id")
        limit = file_checks.MAX_PADDED_VALUES
        step = _parse_index(name, line, "step", row[col["step"]], limit, f"a sequence has at most {limit:,} steps")
        label = self._label_code(line, row)
        values = [_parse_float(name, line, f, row[i]) for f, i in self.feature_cols]
        part_name = row[col["split"]].strip().lower() if "split" in col and self.labelled else "train"
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
            names = list(self.label_codes)
            raise DataFileError(f"{name} line {line}: sequence {seq_id!r} has labels "
                                f"{label_shown(names[self.labels[index]])} and {label_shown(names[label])} "
                                "(one label per sequence)")
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

    def table(self) -> Table:
        return Table(list(self.ids), list(self.label_codes), np.frombuffer(self.labels, dtype=np.uint32),
                     np.frombuffer(self.parts, dtype=np.int8), np.frombuffer(self.seq, dtype=np.uint32),
                     np.frombuffer(self.steps, dtype=np.uint32), np.frombuffer(self.lines, dtype=np.uint64),
                     np.frombuffer(self.values, dtype=np.float32).reshape(-1, len(self.features)), self.features)


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


def _read_rows(name: str, path: Path, labelled: bool = True) -> Table:
    """The header and the data rows, read row by row (blank lines carry nothing)."""
    rows: Optional[_Rows] = None
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # a spreadsheet's byte-order mark is no column
            for line, row in enumerate(csv.reader(_lines(name, f)), start=1):
                if not any(cell.strip() for cell in row):
                    continue
                if rows is None:
                    rows = _Rows(name, *check_header(name, line, row, labelled), labelled=labelled)
                else:
                    rows.add(line, row)
    except OSError as exc:
        raise DataFileError(f"{name}: cannot be read ({exc.strerror or first_line(exc)})") from None
    except UnicodeDecodeError:
        raise DataFileError(f"{name}: is not UTF-8 text (is it really a .csv file?)") from None
    except csv.Error as exc:
        raise DataFileError(f"{name}: is not valid CSV ({first_line(exc)})") from None
    if rows is None:
        raise DataFileError(f"{name}: is empty; expected a header row: sequence,step,<features...>"
                            + (",label" if labelled else ""))
    if not rows.ids:
        raise DataFileError(f"{name}: has a header but no data rows")
    return rows.table()


class _Grouped(NamedTuple):
    seq: np.ndarray  # (rows,) sequence index of each row
    steps: np.ndarray  # (rows,) its step
    lengths: np.ndarray  # (sequences,) steps of each sequence


def _group(name: str, table: Table) -> _Grouped:
    """Checks that every sequence has steps 0..L-1, each once: a repeated step is named at the first
    line that repeats one, a gap in the first sequence (in file order) that has one."""
    seq, steps = table.seq, table.steps
    order = np.lexsort((steps, seq))  # stable: of two rows with one step, the later line comes second
    s_seq, s_step = seq[order], steps[order]
    ids = table.ids
    repeats = np.flatnonzero((s_seq[1:] == s_seq[:-1]) & (s_step[1:] == s_step[:-1])) + 1
    if len(repeats):
        lines = table.lines
        row = int(order[repeats[np.argmin(lines[order[repeats]])]])
        raise DataFileError(f"{name} line {int(lines[row])}: sequence {ids[seq[row]]!r} has step {int(steps[row])} "
                            "twice")
    lengths = np.bincount(seq, minlength=len(ids))
    starts = np.cumsum(lengths) - lengths
    gaps = np.flatnonzero(s_step != np.arange(len(s_step)) - starts[s_seq])
    if len(gaps):
        k = int(s_seq[gaps].min())
        first = s_step[starts[k]:starts[k] + min(6, int(lengths[k]))].tolist()
        shown_steps = ", ".join(str(v) for v in first) + (", ..." if lengths[k] > 6 else "")
        raise DataFileError(f"{name}: sequence {ids[k]!r} has steps {shown_steps}; steps must be 0, 1, ..., L-1")
    return _Grouped(seq, steps, lengths)


def _check_sizes(name: str, table: Table, grouped: _Grouped) -> None:
    """Refuses a part whose padded array would pass the bound, before anything is padded."""
    for part, what in enumerate(_PARTS.values()):
        lengths = grouped.lengths[table.parts == part]
        if len(lengths):
            longest = int(lengths.max())
            check_padded_size(f"{name}: the {what} sequences pad to", (len(lengths), longest, len(table.features)),
                              f"the longest has {longest:,} steps; shorten or drop the longest sequences, "
                              "or split them over several files")


def _pad(table: Table, grouped: _Grouped, part: int):
    """``(X, y, lengths, chosen)`` of the sequences in ``part`` (0 train, 1 test) in the order of
    their first row, zero-padded at the end (``lengths`` None when all have the same length;
    ``chosen`` the sequences' indices); four Nones when ``part`` has no sequence."""
    chosen = np.flatnonzero(table.parts == part)
    if not len(chosen):
        return None, None, None, None
    lengths = grouped.lengths[chosen].astype(np.int64)
    n_features = len(table.features)
    X = np.zeros((len(chosen), int(lengths.max()), n_features), dtype=np.float32)
    local = np.full(len(grouped.lengths), -1, dtype=np.int64)
    local[chosen] = np.arange(len(chosen))
    mine = local[grouped.seq] >= 0
    X[local[grouped.seq[mine]], grouped.steps[mine]] = table.values[mine]
    y = labels_array(table.label_names, table.labels[chosen]) if table.label_names else None
    return X, y, (lengths if (lengths != X.shape[1]).any() else None), chosen


def _read_table(name: str, path: Path, labelled: bool) -> Table:
    """The file's table: from the fast reader when it takes the file, else from the strict one."""
    check_is_file(name, path)
    table = csv_fast.read_table(path, labelled, MAX_LINE_CHARS, MAX_SEQUENCES)
    return table if table is not None else _read_rows(name, path, labelled)


def read_csv(path: Union[str, Path]) -> CheckedArrays:
    """Reads a long-format ``.csv`` file into padded arrays; sequences keep the order of their
    first row, and the test part is None when no row is marked ``test``. Labels as the module
    docstring says (int64, or a ``'U'`` array when any is not a whole number).

    Raises:
        DataFileError: the file is missing, not UTF-8 CSV, breaks the schema, or holds more than
            :data:`~squareseq.data.file_checks.MAX_PADDED_VALUES` values (padding included).
    """
    name = str(path)
    table = _read_table(name, Path(path), labelled=True)
    grouped = _group(name, table)
    _check_sizes(name, table, grouped)
    X, y, lengths, _ = _pad(table, grouped, 0)
    if X is None:
        raise DataFileError(f"{name}: every sequence is in the test split; mark some as 'train'")
    X_test, y_test, lengths_test, _ = _pad(table, grouped, 1)
    return CheckedArrays(X, y, lengths, X_test, y_test, lengths_test)


def read_csv_inputs(path: Union[str, Path]) -> Tuple[np.ndarray, Optional[np.ndarray], List[str]]:
    """Reads sequences to classify from a long-format ``.csv`` file: ``sequence``, ``step`` and
    feature columns (``label`` and ``split`` are ignored if present, so a training file can be
    given as it is). Returns ``(X, lengths, ids)``: ``X`` float32 ``(N, L, F)`` zero-padded,
    ``lengths`` None when every sequence has ``L`` steps, ``ids`` the sequence ids, in the order
    of each sequence's first row.

    Raises:
        DataFileError: as :func:`read_csv`.
    """
    name = str(path)
    table = _read_table(name, Path(path), labelled=False)
    grouped = _group(name, table)
    _check_sizes(name, table, grouped)
    X, _, lengths, chosen = _pad(table, grouped, 0)
    return X, lengths, [table.ids[i] for i in chosen]
