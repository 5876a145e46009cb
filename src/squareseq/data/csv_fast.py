"""The fast ``.csv`` reader: a well-formed long-format file in a few C-level passes per block
(``bytes.translate``, ``str.split``, ``map``, ``np.fromiter``) instead of a Python loop per row:
about three times less CPU than the strict reader in :mod:`squareseq.data.csv_files`
(``benchmarks/bench_csv.py``); parsing each value with ``float()`` is most of what is left.

It takes only files it can read exactly as the strict reader would: plain ASCII text (after a
byte-order mark) without quotes or control characters (``\\r`` only before ``\\n``), every line
with the header's number of fields, and every field one the strict reader accepts (the same
``float()``, the same label and id rules, the same bounds). On any doubt, :func:`read_table`
returns None and the strict reader reads the file, with its errors. Files are read in blocks of
:data:`BLOCK_BYTES`, so memory stays bounded by the block, not the file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from squareseq.data import file_checks
from squareseq.data.csv_schema import Table, check_header, label_key

__all__ = ["BLOCK_BYTES", "FAST_LINE_CHARS", "read_table"]

#: Bytes read per block (whole lines: a block ends at a line break).
BLOCK_BYTES = 1 << 22
#: The longest line the fast reader takes (well below the csv module's field limit).
FAST_LINE_CHARS = 100_000

_BOM = b"\xef\xbb\xbf"
#: What a block may hold: printable ASCII but the quote, tab and line breaks.
_PLAIN = bytes(range(32, 127)).replace(b'"', b"") + b"\t\n\r"
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_PARTS = {"train": 0, "test": 1}


class _Doubt(Exception):
    """The block is not one the fast reader takes for sure: the strict reader reads the file."""


class _Reader:
    """Reads block after block into arrays, keeping ids, labels and parts across blocks."""

    def __init__(self, labelled: bool, max_line_chars: int, max_sequences: int) -> None:
        self.labelled, self.max_sequences = labelled, max_sequences
        self.max_line = min(max_line_chars, FAST_LINE_CHARS)
        self.header: Optional[List[str]] = None
        self.features: List[str] = []
        self.ids: Dict[str, int] = {}
        self.label_codes: Dict[str, int] = {}
        self.seq_labels = np.zeros(0, dtype=np.int64)  # per sequence; -1 until its first row
        self.seq_parts = np.zeros(0, dtype=np.int64)
        self.blocks: List[tuple] = []
        self.n_values = [0, 0]

    def _rows(self, block: bytes):
        """The block's data rows, as bytes ending in a line break, and their line numbers (from 0
        within the block); blank lines are dropped and the header, when not yet read, is taken."""
        if block.translate(None, _PLAIN):  # anything left is a doubt: non-ASCII, control, quote
            raise _Doubt
        if b"\r" in block:
            if block.count(b"\r") != block.count(b"\r\n"):
                raise _Doubt
            block = block.replace(b"\r\n", b"\n")
        if not block.endswith(b"\n"):
            block += b"\n"
        breaks = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10)
        sizes = np.diff(breaks, prepend=-1) - 1
        if int(sizes.max()) + 2 > self.max_line:
            raise _Doubt
        numbers = np.arange(len(breaks), dtype=np.uint64)
        if not sizes.all():
            lines = block.split(b"\n")
            numbers = np.flatnonzero(sizes).astype(np.uint64)
            block = b"".join(lines[i] + b"\n" for i in numbers.tolist())
        if self.header is None and len(numbers):
            end = block.index(b"\n")
            self._start(block[:end].decode("ascii"))
            block, numbers = block[end + 1:], numbers[1:]
        return block, numbers

    def _start(self, line: str) -> None:
        """Takes the header from the first line."""
        row = line.split(",")
        if not any(cell.strip() for cell in row):
            raise _Doubt
        try:
            self.header, self.features = check_header("", 1, row, self.labelled)
        except file_checks.DataFileError:
            raise _Doubt from None

    def _fields(self, block: bytes, n: int) -> List[str]:
        """The rows' fields, row after row, once every row is checked to have the header's number."""
        assert self.header is not None
        width = len(self.header)
        text = np.frombuffer(block, dtype=np.uint8)
        delimiters = text[np.flatnonzero((text == 44) | (text == 10))]
        if len(delimiters) != n * width or not (delimiters[width - 1::width] == 10).all():
            raise _Doubt
        flat = block.decode("ascii").replace("\n", ",").split(",")
        flat.pop()  # after the last line break
        return flat

    def _index(self, column: List[str], n: int) -> np.ndarray:
        """Each row's sequence index, new ids numbered in the order of their first row."""
        index_of = {}
        for raw in dict.fromkeys(column):
            seq_id = raw.strip()
            if not seq_id:
                raise _Doubt
            i = self.ids.get(seq_id)
            if i is None:
                if len(self.ids) >= self.max_sequences:
                    raise _Doubt
                i = self.ids[seq_id] = len(self.ids)
            index_of[raw] = i
        return np.fromiter(map(index_of.__getitem__, column), dtype=np.int64, count=n)

    @staticmethod
    def _steps(column: List[str], n: int) -> np.ndarray:
        if not "".join(column).isdigit():  # ASCII text: isdigit is 0-9
            column = [s.strip(" \t") for s in column]
            if not "".join(column).isdigit():
                raise _Doubt
        # int() refuses an empty step (ValueError), fromiter one past int64 (OverflowError): both doubts
        steps = np.fromiter(map(int, column), dtype=np.int64, count=n)
        if int(steps.max()) >= file_checks.MAX_PADDED_VALUES:
            raise _Doubt
        return steps

    def _codes(self, column: List[str], n: int) -> np.ndarray:
        code_of = {}
        for raw in dict.fromkeys(column):
            try:
                key = label_key("", 0, raw)
            except file_checks.DataFileError:
                raise _Doubt from None
            code_of[raw] = self.label_codes.setdefault(key, len(self.label_codes))
        return np.fromiter(map(code_of.__getitem__, column), dtype=np.int64, count=n)

    @staticmethod
    def _parts(column: List[str], n: int) -> np.ndarray:
        part_of = {}
        for raw in dict.fromkeys(column):
            part = _PARTS.get(raw.strip().lower())
            if part is None:
                raise _Doubt
            part_of[raw] = part
        return np.fromiter(map(part_of.__getitem__, column), dtype=np.int64, count=n)

    def _per_sequence(self, kept: np.ndarray, seq: np.ndarray, row_values: np.ndarray) -> np.ndarray:
        """Gives each new sequence its first row's value (label or part); refuses a row that differs."""
        if len(kept) < len(self.ids):
            kept = np.concatenate([kept, np.full(len(self.ids) - len(kept), -1, dtype=np.int64)])
        new = kept[seq] == -1
        if new.any():
            new_seq, first = np.unique(seq[new], return_index=True)
            kept[new_seq] = row_values[new][first]
        if (kept[seq] != row_values).any():
            raise _Doubt
        return kept

    def add(self, block: bytes, first_line: int) -> None:
        block, numbers = self._rows(block)
        n = len(numbers)
        if not n:
            return
        assert self.header is not None
        header, width = self.header, len(self.header)
        flat = self._fields(block, n)
        col = {h: i for i, h in enumerate(header)}
        seq = self._index(flat[col["sequence"]::width], n)
        steps = self._steps(flat[col["step"]::width], n)
        if self.labelled:
            self.seq_labels = self._per_sequence(self.seq_labels, seq, self._codes(flat[col["label"]::width], n))
        parts = self._parts(flat[col["split"]::width], n) if self.labelled and "split" in col else np.zeros(n, np.int64)
        self.seq_parts = self._per_sequence(self.seq_parts, seq, parts)
        values = np.empty((n, len(self.features)), dtype=np.float32)
        for k, feature in enumerate(self.features):
            v = np.fromiter(map(float, flat[col[feature]::width]), dtype=np.float64, count=n)
            if not (np.abs(v) <= _FLOAT32_MAX).all():  # NaN too
                raise _Doubt
            values[:, k] = v
        tests = int(parts.sum())
        self.n_values[0] += (n - tests) * len(self.features)
        self.n_values[1] += tests * len(self.features)
        if max(self.n_values) > file_checks.MAX_PADDED_VALUES:
            raise _Doubt
        self.blocks.append((seq.astype(np.uint32), steps.astype(np.uint32), numbers + np.uint64(first_line), values))

    def table(self) -> Optional[Table]:
        if self.header is None or not self.ids:
            return None  # the strict reader says what is missing
        seq, steps, lines, values = (np.concatenate(parts) for parts in zip(*self.blocks))
        labels = self.seq_labels if self.labelled else np.zeros(len(self.ids), dtype=np.int64)
        return Table(list(self.ids), list(self.label_codes), labels.astype(np.uint32), self.seq_parts.astype(np.int8),
                     seq, steps, lines, values, self.features)


def read_table(path: Path, labelled: bool, max_line_chars: int, max_sequences: int) -> Optional[Table]:
    """The file's :class:`~squareseq.data.csv_schema.Table`, or None when the fast reader is not
    sure to read it as the strict reader would (then that one reads it). Never raises for the
    file's content."""
    reader = _Reader(labelled, max_line_chars, max_sequences)
    try:
        with open(path, "rb") as f:
            first_line = 1
            block = f.read(BLOCK_BYTES)
            if block.startswith(_BOM):
                block = block[len(_BOM):]
            while block:
                if not block.endswith(b"\n"):
                    rest = f.readline(reader.max_line + 1)
                    if len(rest) > reader.max_line:
                        return None
                    block += rest
                reader.add(block, first_line)
                first_line += block.count(b"\n")
                block = f.read(BLOCK_BYTES)
    except (_Doubt, OSError, ValueError, OverflowError):
        return None
    return reader.table()
