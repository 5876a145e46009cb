"""The ``.csv`` reader: long-format rows (one per step) to checked, zero-padded arrays (schema
in :mod:`squareseq.data.files`).

Errors name the file and, where one row is at fault, its line number. Splitting and
standardising happen later, in :mod:`squareseq.data.files`.
"""
from __future__ import annotations

import csv
import math
import re
from pathlib import Path
from typing import Dict, List, Tuple, Union

import numpy as np

from squareseq.data.file_checks import (
    MAX_CLASSES,
    MAX_PADDED_VALUES,
    CheckedArrays,
    DataFileError,
    check_is_file,
    check_padded_size,
    first_line,
)

__all__ = ["CSV_REQUIRED", "read_csv"]

CSV_REQUIRED = ("sequence", "step", "label")

Rows = List[Tuple[int, List[str]]]  # (line number, fields)


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


def _read_csv_rows(name: str, path: Path) -> Tuple[List[str], List[str], Rows]:
    """The header, the feature columns and the data rows (with their line numbers), checked
    for shape."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # a spreadsheet's byte-order mark is no column
            rows = list(enumerate(csv.reader(f), start=1))
    except OSError as exc:
        raise DataFileError(f"{name}: cannot be read ({exc.strerror or first_line(exc)})") from None
    except UnicodeDecodeError:
        raise DataFileError(f"{name}: is not UTF-8 text (is it really a .csv file?)") from None
    except csv.Error as exc:
        raise DataFileError(f"{name}: is not valid CSV ({first_line(exc)})") from None
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
        raise DataFileError(f"{name} line {header_line}: no feature columns (any columns besides sequence, step, "
                            "label, split)")
    if any(not h for h in features):
        raise DataFileError(f"{name} line {header_line}: a column has an empty name")
    if len(rows) == 1:
        raise DataFileError(f"{name}: has a header but no data rows")
    for line, row in rows[1:]:
        if len(row) != len(header):
            raise DataFileError(f"{name} line {line}: expected {len(header)} fields, got {len(row)}")
    return header, features, rows[1:]


def _group_sequences(name: str, header: List[str], features: List[str], rows: Rows) -> Dict[str, dict]:
    """``{sequence id: {"label", "part", "steps": {step: values}}}`` in the order of each
    sequence's first row, with one label and one split per sequence and steps 0..L-1."""
    col = {h: i for i, h in enumerate(header)}
    has_split = "split" in col
    seqs: Dict[str, dict] = {}
    for line, row in rows:
        seq_id = row[col["sequence"]].strip()
        if not seq_id:
            raise DataFileError(f"{name} line {line}: empty sequence id")
        step = _parse_index(name, line, "step", row[col["step"]], MAX_PADDED_VALUES,
                            f"a sequence has at most {MAX_PADDED_VALUES:,} steps")
        label = _parse_index(name, line, "label", row[col["label"]], MAX_CLASSES,
                             f"labels are class indices 0..C-1 and squareseq reads at most {MAX_CLASSES} classes "
                             "(squareseq.data.file_checks.MAX_CLASSES)")
        values = [_parse_float(name, line, f, row[col[f]]) for f in features]
        part = row[col["split"]].strip().lower() if has_split else "train"
        if part not in ("train", "test"):
            raise DataFileError(f"{name} line {line}: split must be 'train' or 'test', got {row[col['split']]!r}")
        seq = seqs.setdefault(seq_id, {"label": label, "part": part, "steps": {}})
        if label != seq["label"]:
            raise DataFileError(
                f"{name} line {line}: sequence {seq_id!r} has labels {seq['label']} and {label} "
                "(one label per sequence)"
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
    return seqs


def _check_sizes(name: str, seqs: Dict[str, dict], n_features: int) -> None:
    """Refuses a part whose padded array would pass the bound, before anything is padded."""
    for part, what in (("train", "training"), ("test", "test")):
        lengths = [len(s["steps"]) for s in seqs.values() if s["part"] == part]
        if lengths:
            check_padded_size(f"{name}: the {what} sequences pad to", (len(lengths), max(lengths), n_features),
                              f"the longest has {max(lengths):,} steps; shorten or drop the longest sequences, "
                              "or split them over several files")


def _pad(seqs: Dict[str, dict], part: str, n_features: int):
    """``(X, y, lengths)`` of the sequences in ``part``, zero-padded at the end (``lengths``
    None when all have the same length); three Nones when ``part`` has no sequence."""
    chosen = [s for s in seqs.values() if s["part"] == part]
    if not chosen:
        return None, None, None
    lengths = np.array([len(s["steps"]) for s in chosen], dtype=np.int64)
    X = np.zeros((len(chosen), int(lengths.max()), n_features), dtype=np.float32)
    for i, s in enumerate(chosen):
        X[i, : lengths[i]] = [s["steps"][t] for t in range(lengths[i])]
    y = np.array([s["label"] for s in chosen], dtype=np.int64)
    return X, y, (lengths if (lengths != X.shape[1]).any() else None)


def read_csv(path: Union[str, Path]) -> CheckedArrays:
    """Reads a long-format ``.csv`` file into padded arrays; sequences keep the order of their
    first row, and the test part is None when no row is marked ``test``.

    Raises:
        DataFileError: the file is missing, not UTF-8 CSV, or breaks the schema.
    """
    name = str(path)
    path = Path(path)
    check_is_file(name, path)
    header, features, rows = _read_csv_rows(name, path)
    seqs = _group_sequences(name, header, features, rows)
    _check_sizes(name, seqs, len(features))
    X, y, lengths = _pad(seqs, "train", len(features))
    if X is None:
        raise DataFileError(f"{name}: every sequence is in the test split; mark some as 'train'")
    X_test, y_test, lengths_test = _pad(seqs, "test", len(features))
    return CheckedArrays(X, y, lengths, X_test, y_test, lengths_test)
