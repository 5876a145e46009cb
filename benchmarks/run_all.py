"""Runs every benchmark (B1-B5, the structure benchmark, then data generation, figures and models), each in a fresh
process, and prints their tables.

    python benchmarks/run_all.py [--quick] [--only B1,B3]

``--quick`` shrinks the workloads (fewer rounds, N = 1,000 and 100,000 in B3) for a fast look; the
acceptance figures are those of the full run. Timings are wall-clock on whatever else the
machine is doing: run it on a quiet machine, and compare ratios, which each benchmark measures
side by side in one run.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from _common import subprocess_env

HERE = Path(__file__).resolve().parent

BENCHMARKS = [
    ("B1", "bench_b1_loop.py", [], ["--rounds", "2"]),
    ("B2", "bench_b2_process.py", [], ["--rounds", "1"]),
    ("B3", "bench_b3_epoch.py", [], ["--n", "1000,100000", "--rounds", "1"]),
    ("B4", "bench_b4_many.py", [], ["--sample", "8"]),
    ("B5", "bench_b5_threads.py", [], ["--rounds", "1"]),
    ("STRUCTURE", "bench_structure.py", [], ["--rounds", "2"]),
    ("DATA", "bench_data.py", [], []),
    ("FIGURES", "bench_figures.py", [], ["--repeats", "1"]),
    ("FIGURE_COSTS", "bench_figure_costs.py", [], ["--repeats", "2"]),
    ("MODELS", "bench_models.py", [], []),
]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller workloads for a fast look")
    parser.add_argument("--only", default="", help="comma-separated benchmark names, e.g. B1,B3,FIGURES")
    args = parser.parse_args(argv)
    only = {name.strip().upper() for name in args.only.split(",") if name.strip()}
    failed = []
    for name, script, full, quick in BENCHMARKS:
        if only and name not in only:
            continue
        print(f"\n=== {name}: {script} {' '.join(quick if args.quick else full)}", flush=True)
        start = time.perf_counter()
        result = subprocess.run([sys.executable, str(HERE / script), *(quick if args.quick else full)],
                                env=subprocess_env())
        print(f"({name} took {time.perf_counter() - start:.0f} s)", flush=True)
        if result.returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nbenchmarks that crashed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
