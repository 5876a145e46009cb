"""Runs the book's sequences chapter notebook on squareseq and reports, cell by cell, what fails.

    python tools/run_book_notebook.py PATH/TO/Chapter08.ipynb [--json report.json] [--out run.ipynb] [--timeout 120]

It reads the notebook (yours: nothing of the book is stored here), changes only the imports of the
book's ``StepByStep``, data generator and plots module to squareseq's::

    from stepbystep.v4 import StepByStep                             -> from squareseq import StepByStep
    from data_generation.square_sequences import generate_sequences  -> from squareseq import generate_sequences
    from plots.chapter8 import *                                     -> from squareseq.plots import *

turns off the book's Colab set-up lines (``from config import *`` and ``config_chapter8()``, which
only download the book's files when run on Colab), runs every cell in order with nbclient on a
kernel of this interpreter (a failing cell does not stop the next), and prints one line per code
cell: ``ok``, ``error`` (with the exception), or ``expected`` for the two cells the book itself shows
failing (found by their content: a tensor made from sequences of different lengths, and a
``DataLoader`` over them without a packing ``collate_fn``). Any other book import left in a cell is
named; cells that show counts (``loader_apply``) are compared with the results the book's notebook
stores. ``--out`` keeps the executed copy, its figures included, to compare with the book's by eye
(outside this repository: the book's notebook is never stored here). Exit code 0 when every cell is
ok or fails as the book shows, 1 otherwise, 2 for bad usage.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_notebooks import CELL_TIMEOUT, ROOT, execute  # noqa: E402

#: The book's modules and squareseq's replacements (module paths in ``from X import ...``).
REPLACEMENTS: Tuple[Tuple[str, str], ...] = (
    (r"stepbystep(?:\.v\d+)?", "squareseq"),
    (r"data_generation\.square_sequences", "squareseq"),
    (r"plots\.chapter8", "squareseq.plots"),
)
#: The book's Colab set-up: downloads its files on Colab, nothing elsewhere; not needed here.
SETUP_LINES = (re.compile(r"^\s*from\s+config\s+import\s+\*\s*$"), re.compile(r"^\s*config_chapter\d+\(.*\)\s*$"))
SETUP_NOTE = "# run_book_notebook: the book's Colab set-up, not needed on squareseq: "
#: Top-level modules of the book's repository: an import of one of them that is left is reported.
BOOK_MODULES = ("config", "plots", "stepbystep", "data_generation", "data_preparation", "model_configuration",
                "model_training", "helpers", "seq2seq", "replay")
_BOOK_IMPORT = re.compile(r"^\s*(?:from|import)\s+(" + "|".join(BOOK_MODULES) + r")\b[\w.]*")


def _ragged_tensor(source: str) -> bool:
    return re.search(r"torch\.as_tensor\(\s*all_seqs\s*\)", source) is not None


def _loader_without_collate(source: str) -> bool:
    return "DataLoader(" in source and "next(iter(" in source and "collate_fn" not in source


#: The cells the book shows failing on purpose: what each demonstrates, how to find it, its exception.
EXPECTED_FAILURES: Tuple[Tuple[str, Callable[[str], bool], str], ...] = (
    ("sequences of different lengths made into one tensor, unpadded", _ragged_tensor, "ValueError"),
    ("a DataLoader over variable-length sequences without a packing collate_fn", _loader_without_collate,
     "RuntimeError"),
)


def rewrite_source(source: str) -> Tuple[str, List[str], List[str]]:
    """One cell's code with the book's imports replaced and its Colab set-up lines turned into
    comments. Returns the code, the lines changed (as ``old -> new``) and the book modules still
    imported."""
    changed, left = [], []
    lines = []
    for line in source.splitlines():
        new = line
        if any(pattern.match(line) for pattern in SETUP_LINES):
            new = SETUP_NOTE + line.strip()
        else:
            for book, ours in REPLACEMENTS:
                new = re.sub(rf"^(\s*from\s+){book}(\s+import\b)", rf"\g<1>{ours}\g<2>", new)
        if new != line:
            changed.append(f"{line.strip()} -> {new.strip()}")
        found = _BOOK_IMPORT.match(new)
        if found:
            left.append(found.group(1))
        lines.append(new)
    return "\n".join(lines), changed, left


def expected_failure(source: str) -> Optional[Tuple[str, str]]:
    """``(what it demonstrates, the exception name)`` if the book shows this cell failing."""
    for what, matches, ename in EXPECTED_FAILURES:
        if matches(source):
            return what, ename
    return None


@dataclass
class CellReport:
    """What one code cell did. ``status``: ok, error, expected (failed as the book shows), or
    unexpected-pass (a cell the book shows failing ran)."""

    index: int
    status: str
    first_line: str
    error: str = ""
    changed: List[str] = field(default_factory=list)
    book_imports: List[str] = field(default_factory=list)
    book_result: str = ""  # the result the book's notebook stores for this cell (counts cells only)
    result: str = ""  # the result here, for the same cells

    @property
    def fine(self) -> bool:
        return self.status in ("ok", "expected")


def _error_of(cell: Any) -> Optional[Tuple[str, str]]:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return output.get("ename", ""), output.get("evalue", "")
    return None


def _result_of(cell: Any) -> str:
    """The cell's displayed value as one line of text (``tensor([[50, 53], [75, 75]])``)."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "execute_result":
            return " ".join(str(output.get("data", {}).get("text/plain", "")).split())
    return ""


def _shows_counts(source: str) -> bool:
    return "loader_apply(" in source


def prepare(nb: Any) -> List[CellReport]:
    """Rewrites ``nb``'s code cells in place (outputs cleared) and returns their reports, still
    without a status; cells that show counts keep the book's result to compare with."""
    reports = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        book_result = _result_of(cell) if _shows_counts(cell.source) else ""
        cell.source, changed, left = rewrite_source(cell.source)
        cell.outputs, cell.execution_count = [], None
        first = next((line.strip() for line in cell.source.splitlines() if line.strip()), "")
        reports.append(CellReport(index, "", first, changed=changed, book_imports=left, book_result=book_result))
    return reports


def judge(nb: Any, reports: List[CellReport]) -> List[CellReport]:
    """Fills in each report's status from the executed cell's outputs."""
    for report in reports:
        cell = nb.cells[report.index]
        error = _error_of(cell)
        expected = expected_failure(cell.source)
        report.error = f"{error[0]}: {error[1]}" if error else ""
        if _shows_counts(cell.source):
            report.result = _result_of(cell)
        if expected is None:
            report.status = "error" if error else "ok"
        elif error is None:
            report.status = "unexpected-pass"
            report.error = f"the book shows this cell failing ({expected[0]}), it ran"
        else:
            report.status = "expected" if error[0] == expected[1] else "error"
    return reports


def run(path: Path, timeout: int = CELL_TIMEOUT, out: Optional[Path] = None) -> List[CellReport]:
    """Reads the notebook at ``path``, rewrites its imports, runs it in a scratch folder and
    returns one report per code cell. With ``out``, writes the executed notebook there, figures
    as images (drawn by ipykernel's inline backend; without ``out``, by Agg and not kept)."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    reports = prepare(nb)
    with tempfile.TemporaryDirectory(prefix="squareseq-book-") as scratch:
        execute(nb, Path(scratch), timeout, allow_errors=True, mpl_backend=None if out else "Agg")
    if out is not None:
        nbformat.write(nb, str(out))
    return judge(nb, reports)


def format_report(reports: Sequence[CellReport]) -> str:
    """One line per code cell, then the changes made and a summary."""
    lines = []
    for r in reports:
        detail = f"  {r.error}" if r.error else ""
        left = f"  [book import left: {', '.join(r.book_imports)}]" if r.book_imports else ""
        lines.append(f"cell {r.index:3d}  {r.status:<15} {r.first_line[:60]}{detail}{left}")
    for r in reports:
        if r.result or r.book_result:
            same = "same as the book" if r.result == r.book_result else f"the book shows {r.book_result or '-'}"
            lines.append(f"cell {r.index:3d}  counts: {r.result or '-'} ({same})")
    for r in reports:
        for change in r.changed:
            lines.append(f"cell {r.index:3d}  changed: {change}")
    counts = {s: sum(r.status == s for r in reports) for s in ("ok", "expected", "error", "unexpected-pass")}
    lines.append(f"{len(reports)} code cells: {counts['ok']} ok, {counts['expected']} failed as the book shows, "
                 f"{counts['error']} errors, {counts['unexpected-pass']} expected failures that ran")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook", type=Path, help="the book's Chapter08.ipynb (or another chapter's)")
    parser.add_argument("--json", type=Path, help="also write the per-cell report as JSON to this file")
    parser.add_argument("--out", type=Path, help="also write the executed notebook, with its figures, to this file")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT, help="seconds per cell (default: %(default)s)")
    args = parser.parse_args(argv)
    if not args.notebook.is_file():
        print(f"run_book_notebook: no such notebook: {args.notebook}", file=sys.stderr)
        return 2
    for given in (args.json, args.out):
        if given is not None and ROOT in given.resolve().parents:
            print(f"run_book_notebook: write {given} outside the repository: nothing of the book is stored here",
                  file=sys.stderr)
            return 2
    reports = run(args.notebook, args.timeout, args.out)
    print(format_report(reports))
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in reports], indent=1))
    return 0 if all(r.fine for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
