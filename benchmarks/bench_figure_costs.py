"""Where a default run's figure time goes, file by file, and what the 1.5x target leaves for it.

Measures, on this machine:

* the CPU of ``squareseq train --no-figures`` (the baseline, a child process, median of
  ``--repeats``) and the CPU that importing matplotlib adds to a process that has torch already;
* the CPU of each file a default run draws (``squareseq plot``'s redraw of a default run, in this
  process, after one warm-up redraw: the figures' own cost, without first-use costs);

then prints each file with the run's ratio to the baseline when the files up to it are drawn, so
it shows how many of the figures fit under 1.5x the CPU of ``--no-figures``.

Usage: ``python benchmarks/bench_figure_costs.py [--repeats 5]``.
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import median, subprocess_env, table

MAX_RATIO = 1.5


def _child_cpu(args) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, *args], check=True, env=subprocess_env(), stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def per_file_cpu(run_dir: Path) -> dict:
    """CPU seconds of each file :func:`squareseq.runs.rebuild.redraw_run` writes (second redraw)."""
    from squareseq.runs.rebuild import redraw_run

    costs: dict = {}
    marks = []

    def progress(done, total, name):
        marks.append((time.process_time(), name))

    for _ in range(2):  # the first redraw pays matplotlib's first-use costs (fonts, caches)
        marks.clear()
        redraw_run(run_dir, progress=progress)
    for (start, name), (end, _) in zip(marks, marks[1:]):
        costs[name] = end - start
    return costs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        base = median([_child_cpu(["-m", "squareseq", "train", "--quiet", "--no-figures", "--out", f"{tmp}/b{r}"])
                       for r in range(args.repeats)])
        torch_only = median([_child_cpu(["-c", "import torch, squareseq.data"]) for _ in range(args.repeats)])
        with_mpl = median([_child_cpu(["-c", "import torch, squareseq.data, matplotlib.pyplot"])
                           for _ in range(args.repeats)])
        run = Path(tmp) / "default"
        subprocess.run([sys.executable, "-m", "squareseq", "train", "--quiet", "--out", str(run)], check=True,
                       env=subprocess_env(), stdout=subprocess.DEVNULL)
        costs = per_file_cpu(run)
    mpl = max(0.0, with_mpl - torch_only)
    rows = [["--no-figures (baseline)", base, base, 1.0], ["import matplotlib", mpl, base + mpl, (base + mpl) / base]]
    total = base + mpl
    for name, cost in costs.items():
        total += cost
        rows.append([name, cost, total, total / base])
    print(table(f"a default run's figure phase, file by file (medians of {args.repeats} for the first two rows)",
                ["step", "CPU s", "run CPU s so far", "ratio to --no-figures"], rows))
    fit = [row[0] for row in rows[2:] if row[3] <= MAX_RATIO]
    print(f"\nwithin {MAX_RATIO}x of --no-figures: matplotlib and {len(fit)} of the {len(costs)} files "
          f"({', '.join(fit) or 'none'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
