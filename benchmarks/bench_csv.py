"""CSV loading: the strict row-by-row reader vs the fast reader, on a 190,000-row long-format file
(2,000 sequences x 95 steps x 3 features, text labels, in a temporary folder).

Both readers give the same arrays bit for bit (checked here too). Prints the best of 3 wall-clock
seconds and CPU seconds of each (CPU seconds say what the reader costs on a machine busy with
other work), their ratio, and whether the fast reader meets the target (under 0.5 s). When pandas
is installed, ``pandas.read_csv`` of the same file (no checks, no padding) is timed as a yardstick
of the machine's speed.
Run: python benchmarks/bench_csv.py [--sequences 2000] [--steps 95] [--repeats 3]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np

from _common import table, verdict
from squareseq.data import csv_fast
from squareseq.data.csv_files import read_csv

TARGET_S = 0.5


def write_csv(path: Path, sequences: int, steps: int, digits: int) -> int:
    """A long-format file with 3 features written with ``digits`` significant digits (17: every
    float64 exactly, as ``repr`` and pandas write them); returns its number of data rows."""
    rng = np.random.default_rng(0)
    names = np.array(["walking", "running", "sitting", "standing"])
    values = rng.normal(size=(sequences * steps, 3))
    seq = np.repeat(np.arange(sequences), steps)
    step = np.tile(np.arange(steps), sequences)
    label = names[seq % len(names)]
    fmt = f"%.{digits}g"
    with open(path, "w") as f:
        f.write("sequence,step,x,y,z,label\n")
        f.writelines(f"s{s},{t},{fmt % a},{fmt % b},{fmt % c},{lab}\n"
                     for s, t, (a, b, c), lab in zip(seq.tolist(), step.tolist(), values.tolist(), label.tolist()))
    return len(seq)


def best_of(fn, repeats: int):
    """``(best wall s, best CPU s, result)``."""
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus), result


def strict(path: Path):
    with mock.patch.object(csv_fast, "read_table", lambda *args: None):
        return read_csv(path)


def same(a, b) -> bool:
    return all((x is None and y is None) or (x.dtype == y.dtype and x.tobytes() == y.tobytes()) for x, y in zip(a, b))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=95)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for digits in (17, 7):
            path = Path(folder) / f"data{digits}.csv"
            n_rows = write_csv(path, args.sequences, args.steps, digits)
            strict_s, strict_cpu, expected = best_of(lambda: strict(path), args.repeats)
            fast_s, fast_cpu, got = best_of(lambda: read_csv(path), args.repeats)
            pandas_s = pandas_cpu = "-"
            try:
                import pandas
                pandas_s, pandas_cpu, _ = best_of(lambda: pandas.read_csv(path), args.repeats)
            except ImportError:
                pass
            rows.append([f"{n_rows:,} rows, {digits} digits", f"{path.stat().st_size / 1e6:.1f} MB", strict_s,
                         fast_s, f"{strict_s / fast_s:.1f}x", strict_cpu, fast_cpu, pandas_s, pandas_cpu,
                         str(same(expected, got)), verdict(fast_s < TARGET_S)])
    print(table(f"CSV loading, best of {args.repeats} (wall and CPU seconds; target: fast under {TARGET_S} s)",
                ["file", "size", "strict s", "fast s", "ratio", "strict cpu s", "fast cpu s", "pandas s",
                 "pandas cpu s", "identical", "target"], rows))


if __name__ == "__main__":
    main()
