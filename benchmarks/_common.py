"""Shared helpers for the benchmarks: the checkout's package on the path, tables, timers, data."""
from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, List, Sequence

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
# Benchmark the checkout these scripts live in, whatever is installed.
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))


def subprocess_env() -> dict:
    """Environment for child processes: this checkout's package first, no GUI backend."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("MPLBACKEND", "Agg")
    return env


def timed(fn: Callable[[], object]):
    """``(seconds, result)`` of one call."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def timed_cpu(fn: Callable[[], object]):
    """``(CPU seconds of this process, result)`` of one call: on a machine shared with other
    work, single-threaded runs measured this way are far less noisy than by the wall clock."""
    start = time.process_time()
    result = fn()
    return time.process_time() - start, result


def timer(clock: str) -> Callable:
    """:func:`timed` for ``"wall"``, :func:`timed_cpu` for ``"cpu"``."""
    return timed_cpu if clock == "cpu" else timed


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def table(title: str, header: Sequence[str], rows: List[Sequence[object]]) -> str:
    """A plain-text table with a title line."""
    cells = [[str(h) for h in header]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(cells[0], widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
              for r in cells[1:]]
    return "\n".join(lines)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        if value == 0 or 1e-3 <= abs(value) < 1e6:
            return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
        return f"{value:.3g}"
    return str(value)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"
