"""Mutation testing of one module: small deliberate bugs, each checked against the tests.

Usage (or ``make mutate MODULE=... [TESTS="..."] [ARGS="..."]``)::

    python tools/mutate.py src/squareseq/training/metrics.py
    python tools/mutate.py src/squareseq/data/loaders.py --tests tests/test_loader.py -j 1
    python tools/mutate.py src/squareseq/data/files.py --sample 80 --seed 0
    python tools/mutate.py src/squareseq/training/metrics.py --list     # the mutants, nothing run

Each mutant is one small change to the module's source (a comparison, an arithmetic or boolean
operator, a constant, an augmented assignment, a statement replaced by ``pass``, a returned value
replaced by None, a slice bound moved by one). It is written into a fresh copy of ``src/`` and the
tests run in a subprocess with PYTHONPATH pointing at that copy
(``python -m pytest -x -q -p no:cacheprovider TESTS``). A mutant is *killed* when the tests fail
(or time out: counted as killed and reported as such), and *survives* when they pass.

Not mutated: docstrings, type annotations, ``__all__``, imports, string constants and f-strings
(message text), logging and ``warnings.warn`` calls.

Mutants judged equivalent (no test can tell them apart from the original) are listed in
``tools/mutation-equivalent.txt`` with a reason each, keyed by module, the stripped source line,
the operator, the change and an ordinal (so a key survives code moving up or down). The score is
killed / (mutants run - equivalent ones). A JSON and a markdown summary go to ``build/mutation/``.

Only the standard library is used; the interpreter running this script runs the tests.
"""
from __future__ import annotations

import argparse
import ast
import concurrent.futures
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENTS = ROOT / "tools" / "mutation-equivalent.txt"
REPORTS = ROOT / "build" / "mutation"

#: Each module's own tests (globs, relative to the repository root); other modules get every test
#: file that imports them.
DATAFILE_TESTS = ["tests/test_datafiles.py", "tests/test_datafiles_mutants.py", "tests/test_datafile_bounds.py",
                  "tests/test_data_layout.py", "tests/test_data_labels.py", "tests/test_preprocessing.py"]
CSV_TESTS = [*DATAFILE_TESTS, "tests/test_csv_fast.py"]
DEFAULT_TESTS: Dict[str, List[str]] = {
    "src/squareseq/data/loaders.py": ["tests/test_loader.py", "tests/test_loader_mutants.py"],
    "src/squareseq/training/metrics.py": ["tests/test_metrics.py", "tests/test_metrics_mutants.py"],
    "src/squareseq/training/checkpoint.py": ["tests/test_checkpoint.py", "tests/test_checkpoint_mutants.py"],
    "src/squareseq/data/files.py": DATAFILE_TESTS,
    "src/squareseq/data/npz_files.py": DATAFILE_TESTS,
    "src/squareseq/data/csv_files.py": CSV_TESTS,
    "src/squareseq/data/csv_fast.py": CSV_TESTS,
    "src/squareseq/data/csv_schema.py": CSV_TESTS,
    "src/squareseq/data/ts_files.py": ["tests/test_ts_files.py"],
    "src/squareseq/data/layout.py": DATAFILE_TESTS,
    "src/squareseq/data/labels.py": DATAFILE_TESTS,
    "src/squareseq/data/preprocessing.py": [*DATAFILE_TESTS, "tests/test_predict_preprocessing.py"],
    "src/squareseq/data/file_checks.py": DATAFILE_TESTS,
    "src/squareseq/runs/lock.py": ["tests/test_run_folder_lock.py"],
    "src/squareseq/sizes.py": ["tests/test_config_bounds.py", "tests/test_bounds.py"],
}

COMPARE_SWAPS = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
    ast.In: ast.NotIn, ast.NotIn: ast.In,
}
BINOP_SWAPS = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div, ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult,
    ast.LShift: ast.RShift, ast.RShift: ast.LShift, ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd,
    ast.BitXor: ast.BitOr,
}
LOG_CALLS = re.compile(r"^(log|logger|logging|_log|_logger|LOG)\.|^warnings\.warn$")


@dataclass
class Mutant:
    index: int
    line: int
    operator: str
    original: str  # the source segment changed
    mutant: str  # what replaces it
    key: str = ""  # stable key: module :: stripped line :: operator :: change :: #ordinal
    status: str = "not run"  # killed | timeout | survived | equivalent | error
    seconds: float = 0.0
    detail: str = ""
    # where the change goes: (start line, start col, end line, end col), cols in UTF-8 bytes
    span: Tuple[int, int, int, int] = field(default=(0, 0, 0, 0), repr=False)


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


TYPING_NAMES = {"Tuple", "List", "Dict", "Optional", "Union", "Callable", "Sequence", "Iterator", "Iterable",
                "Mapping", "Any", "Type"}


def _is_type_alias(value: ast.expr) -> bool:
    if isinstance(value, ast.Subscript):
        base = value.value
        name = base.id if isinstance(base, ast.Name) else base.attr if isinstance(base, ast.Attribute) else ""
        return name in TYPING_NAMES
    return False


class _Finder(ast.NodeVisitor):
    """Collects the mutation points of a module, skipping what is not behaviour."""

    def __init__(self, source: str):
        self.source = source
        self.found: List[Tuple[ast.AST, str, str, str]] = []  # (node, operator, original, mutant)

    def seg(self, node: ast.AST) -> str:
        return ast.get_source_segment(self.source, node) or ast.unparse(node)

    def add(self, node: ast.AST, operator: str, mutant: str) -> None:
        self.found.append((node, operator, self.seg(node), mutant))

    # -- what is skipped ------------------------------------------------------------------------
    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:  # message text
        return

    def visit_Import(self, node: ast.Import) -> None:
        return

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        return

    def _body(self, body: List[ast.stmt]) -> None:
        for i, stmt in enumerate(body):
            if i == 0 and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) \
                    and isinstance(stmt.value.value, str):
                continue  # docstring
            self.visit(stmt)

    def visit_Module(self, node: ast.Module) -> None:
        self._body(node.body)

    def _function(self, node) -> None:
        for d in node.decorator_list:
            self.visit(d)
        args = node.args
        for default in [*args.defaults, *[d for d in args.kw_defaults if d is not None]]:
            self.visit(default)
        self._body(node.body)  # annotations (args, returns) are not visited

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for d in node.decorator_list:
            self.visit(d)
        self._body(node.body)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        for default in [*node.args.defaults, *[d for d in node.args.kw_defaults if d is not None]]:
            self.visit(default)
        self.visit(node.body)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
            if node.simple:
                self.add(node, "remove statement", "pass")

    # -- statements -----------------------------------------------------------------------------
    def visit_Assign(self, node: ast.Assign) -> None:
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return
        if _is_type_alias(node.value):  # a type alias (``Rows = List[...]``) is annotation, not behaviour
            return
        self.add(node, "remove statement", "pass")
        self.visit(node.value)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        swap = BINOP_SWAPS.get(type(node.op))
        if swap is not None:
            new = ast.AugAssign(target=node.target, op=swap(), value=node.value)
            self.add(node, "augmented assignment", ast.unparse(new))
        self.add(node, "remove statement", "pass")
        self.visit(node.value)

    def visit_Expr(self, node: ast.Expr) -> None:
        if isinstance(node.value, ast.Call):
            name = ast.unparse(node.value.func)
            if LOG_CALLS.search(name):
                return
            self.add(node, "remove statement", "pass")
        self.visit(node.value)

    def visit_Raise(self, node: ast.Raise) -> None:
        self.add(node, "remove statement", "pass")  # the message itself is not mutated

    def visit_Return(self, node: ast.Return) -> None:
        if node.value is not None and not (isinstance(node.value, ast.Constant) and node.value.value is None):
            self.add(node, "return None", "return None")
            self.visit(node.value)

    def visit_Assert(self, node: ast.Assert) -> None:
        self.add(node, "remove statement", "pass")
        self.visit(node.test)

    # -- expressions ----------------------------------------------------------------------------
    def visit_Compare(self, node: ast.Compare) -> None:
        for i, op in enumerate(node.ops):
            swap = COMPARE_SWAPS.get(type(op))
            if swap is None:
                continue
            ops = list(node.ops)
            ops[i] = swap()
            new = ast.Compare(left=node.left, ops=ops, comparators=node.comparators)
            self.add(node, "comparison", ast.unparse(new))
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        stringy = any(
            isinstance(side, ast.JoinedStr) or (isinstance(side, ast.Constant) and isinstance(side.value, str))
            for side in (node.left, node.right)
        )
        swap = BINOP_SWAPS.get(type(node.op))
        if swap is not None and not stringy:
            self.add(node, "arithmetic", ast.unparse(ast.BinOp(left=node.left, op=swap(), right=node.right)))
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        other = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        self.add(node, "boolean", ast.unparse(ast.BoolOp(op=other, values=node.values)))
        self.generic_visit(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if isinstance(node.op, ast.Not):
            self.add(node, "boolean", ast.unparse(node.operand))
        elif isinstance(node.op, ast.USub) and not isinstance(node.operand, ast.Constant):
            self.add(node, "arithmetic", ast.unparse(node.operand))
        elif isinstance(node.op, ast.USub) and isinstance(node.operand.value, (int, float)) \
                and not isinstance(node.operand.value, bool):
            self.add(node, "constant", repr(-node.operand.value + 1))
            return
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, bool):
            self.add(node, "constant", repr(not value))
        elif isinstance(value, int):
            self.add(node, "constant", repr(value + 1))
            if value == 1:
                self.add(node, "constant", "0")
        elif isinstance(value, float):
            self.add(node, "constant", repr(value + 1.0))

    def visit_Slice(self, node: ast.Slice) -> None:
        for part in (node.lower, node.upper):
            if part is not None and not isinstance(part, ast.Constant):
                self.add(part, "slice off-by-one", f"{ast.unparse(part)} + 1")
        self.generic_visit(node)

    def visit_IfExp(self, node: ast.IfExp) -> None:
        self.generic_visit(node)


def find_mutants(module: str, source: str) -> List[Mutant]:
    tree = ast.parse(source)
    finder = _Finder(source)
    finder.visit(tree)
    lines = source.splitlines()
    mutants: List[Mutant] = []
    seen: Dict[str, int] = {}
    finder.found.sort(key=lambda f: (f[0].lineno, f[0].col_offset, f[1]))  # type: ignore[attr-defined]
    for node, operator, original, mutant in finder.found:
        line = node.lineno  # type: ignore[attr-defined]
        if isinstance(node, ast.stmt):
            change = mutant
        else:
            change = f"{_short(original, 80)} -> {_short(mutant, 80)}"
        base = f"{module} :: {lines[line - 1].strip()} :: {operator} :: {change}"
        seen[base] = seen.get(base, 0) + 1
        m = Mutant(index=len(mutants), line=line, operator=operator, original=original, mutant=mutant,
                   key=f"{base} :: #{seen[base]}",
                   span=(line, node.col_offset, node.end_lineno, node.end_col_offset))  # type: ignore[attr-defined]
        mutants.append(m)
    return mutants


def apply(source: str, m: Mutant) -> str:
    """The module's source with mutant ``m`` written in place of its span."""
    lines = source.encode().splitlines(keepends=True)
    l0, c0, l1, c1 = m.span
    head = b"".join(lines[: l0 - 1]) + lines[l0 - 1][:c0]
    tail = lines[l1 - 1][c1:] + b"".join(lines[l1:])
    text = m.mutant if m.operator in ("remove statement", "return None", "augmented assignment") else f"({m.mutant})"
    out = (head + text.encode() + tail).decode()
    ast.parse(out)  # a mutant must compile
    return out


def load_equivalents(path: Path = EQUIVALENTS) -> Dict[str, str]:
    """``{key: reason}`` from the equivalents file: a key line, then indented ``reason:`` lines."""
    out: Dict[str, str] = {}
    if not path.exists():
        return out
    key = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        if raw[0].isspace():
            if key is not None:
                out[key] = (out[key] + " " + raw.strip().removeprefix("reason:").strip()).strip()
        else:
            key = raw.strip()
            out[key] = ""
    return out


def default_tests(module: str) -> List[str]:
    if module in DEFAULT_TESTS:
        return [t for t in DEFAULT_TESTS[module] if (ROOT / t).exists()]
    dotted = module.removeprefix("src/").removesuffix(".py").replace("/", ".")
    pattern = re.compile(rf"\b{re.escape(dotted)}\b|from {re.escape(dotted.rsplit('.', 1)[0])} import")
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*.py")
                  if pattern.search(p.read_text(encoding="utf-8")))


def run_tests(src_dir: Path, tests: List[str], timeout: float) -> Tuple[str, float, str]:
    """``(status, seconds, last output line)`` of pytest over ``tests`` with ``src_dir`` first on the path."""
    env = dict(os.environ, PYTHONPATH=str(src_dir), PYTHONDONTWRITEBYTECODE="1")
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return "timeout", time.monotonic() - start, f"no result after {timeout:.0f} s"
    text = out.decode(errors="replace").strip().splitlines()
    last = text[-1] if text else ""
    status = "survived" if proc.returncode == 0 else "killed"
    return status, time.monotonic() - start, last


def run_mutant(module: str, source: str, m: Mutant, tests: List[str], timeout: float) -> Mutant:
    with tempfile.TemporaryDirectory(prefix="squareseq-mutant-") as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        (Path(tmp) / module).write_text(apply(source, m), encoding="utf-8")
        m.status, m.seconds, m.detail = run_tests(src, tests, timeout)
    return m


def _table(rows: List[Mutant]) -> List[str]:
    out = ["| line | operator | original -> mutant |", "|---:|---|---|"]
    for m in rows:
        change = f"`{_short(m.original)}` -> `{_short(m.mutant)}`".replace("|", "\\|")
        out.append(f"| {m.line} | {m.operator} | {change} |")
    return out


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("module", help="the module to mutate, e.g. src/squareseq/training/metrics.py")
    p.add_argument("--tests", nargs="*", help="test files (default: the module's own, see DEFAULT_TESTS)")
    p.add_argument("-j", "--jobs", type=int, default=2, help="mutants tested at once (default 2)")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds per mutant before it counts as killed (default: 3x the clean run + 10)")
    p.add_argument("--sample", type=int, default=None, help="test a random sample of N mutants")
    p.add_argument("--seed", type=int, default=0, help="the sample's seed (default 0)")
    p.add_argument("--lines", default=None, help="only mutants on these lines, e.g. 120-160")
    p.add_argument("--list", action="store_true", help="list the mutants and their keys, run nothing")
    p.add_argument("--out", default=str(REPORTS), help="folder for the JSON and markdown summary")
    args = p.parse_args(argv)

    module = Path(args.module).resolve().relative_to(ROOT).as_posix()
    source = (ROOT / module).read_text(encoding="utf-8")
    mutants = find_mutants(module, source)
    for m in mutants:
        apply(source, m)
    if args.lines:
        lo, _, hi = args.lines.partition("-")
        mutants = [m for m in mutants if int(lo) <= m.line <= int(hi or lo)]
    if args.sample is not None and args.sample < len(mutants):
        mutants = sorted(random.Random(args.seed).sample(mutants, args.sample), key=lambda m: m.index)
    equivalents = load_equivalents()
    if args.list:
        for m in mutants:
            mark = "  [equivalent]" if m.key in equivalents else ""
            print(f"{m.key}{mark}")
        print(f"{len(mutants)} mutants", file=sys.stderr)
        return 0

    tests = args.tests if args.tests else default_tests(module)
    if not tests:
        print(f"mutate: no tests found for {module}; give them with --tests", file=sys.stderr)
        return 2
    print(f"mutate: {module}: {len(mutants)} mutants; tests: {' '.join(tests)}", flush=True)
    status, clean_s, last = run_tests(ROOT / "src", tests, timeout=3600)
    if status != "survived":
        print(f"mutate: the tests fail on the unmutated code, fix that first: {last}", file=sys.stderr)
        return 2
    timeout = args.timeout if args.timeout else 3 * clean_s + 10
    print(f"mutate: clean run {clean_s:.1f} s, per-mutant timeout {timeout:.0f} s, {args.jobs} worker(s)", flush=True)

    to_run = []
    for m in mutants:
        if m.key in equivalents:
            m.status, m.detail = "equivalent", equivalents[m.key]
        else:
            to_run.append(m)
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(run_mutant, module, source, m, tests, timeout) for m in to_run]
        for done, fut in enumerate(concurrent.futures.as_completed(futures), 1):
            m = fut.result()
            if m.status != "killed":
                print(f"  [{done}/{len(to_run)}] {m.status}: line {m.line} {m.operator}: "
                      f"{_short(m.original)} -> {_short(m.mutant)}", flush=True)
            elif done % 10 == 0:
                print(f"  [{done}/{len(to_run)}] {time.monotonic() - start:.0f} s", flush=True)
    elapsed = time.monotonic() - start

    counts = {s: sum(m.status == s for m in mutants) for s in ("killed", "timeout", "survived", "equivalent")}
    scored = len(mutants) - counts["equivalent"]
    killed = counts["killed"] + counts["timeout"]
    score = 100.0 * killed / scored if scored else 100.0
    survivors = [m for m in mutants if m.status == "survived"]
    stale = sorted(k for k in equivalents if k.startswith(module + " :: ")
                   and k not in {m.key for m in find_mutants(module, source)})

    summary = {
        "module": module, "tests": tests, "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "mutants": len(mutants), "killed": counts["killed"], "timeout": counts["timeout"],
        "survived": counts["survived"], "equivalent": counts["equivalent"], "score_percent": round(score, 1),
        "sample": args.sample, "seed": args.seed if args.sample else None, "seconds": round(elapsed, 1),
        "stale_equivalents": stale, "results": [{k: v for k, v in asdict(m).items() if k != "span"} for m in mutants],
    }
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = module.removeprefix("src/").removesuffix(".py").replace("/", ".")
    (out_dir / f"{stem}.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    md = [f"# Mutation testing: {module}", "",
          f"{summary['date']}; tests: {' '.join(tests)}", "",
          f"- mutants: {len(mutants)}" + (f" (sample of {args.sample}, seed {args.seed})" if args.sample else ""),
          f"- killed: {counts['killed']}, timed out (counted as killed): {counts['timeout']}",
          f"- survived: {counts['survived']}, equivalent (not scored): {counts['equivalent']}",
          f"- score: {killed}/{scored} = {score:.1f}%", ""]
    if survivors:
        md += ["## Survivors", "", *_table(survivors), ""]
        md += ["Keys (for tools/mutation-equivalent.txt, when a survivor is judged equivalent):", "",
               *[f"    {m.key}" for m in survivors], ""]
    if stale:
        md += ["## Equivalents that no longer match a mutant", "", *[f"    {k}" for k in stale], ""]
    (out_dir / f"{stem}.md").write_text("\n".join(md), encoding="utf-8")

    print()
    if survivors:
        print("\n".join(_table(survivors)))
        print()
    for k in stale:
        print(f"mutate: stale equivalent (no such mutant now): {k}")
    print(f"mutate: {module}: {len(mutants)} mutants, {counts['killed']} killed, {counts['timeout']} timed out "
          f"(counted as killed), {counts['survived']} survived, {counts['equivalent']} equivalent; "
          f"score {killed}/{scored} = {score:.1f}% in {elapsed:.0f} s")
    print(f"mutate: summary in {out_dir / (stem + '.md')} and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
