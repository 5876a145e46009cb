"""Whole ``squareseq train`` runs as a user starts them, timed from outside: each run is a fresh
process whose CPU time (user + system, from ``wait4``) and wall time are measured, with the
figure phase's files timed one by one inside it. Runs of two source trees (this checkout and a
baseline, e.g. an exported older commit) are interleaved, so that the machine's load hits both
alike. Used by ``bench_figures.py --whole-runs``."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

# Runs the CLI with the figure phase's steps timed (CPU and wall per file), written as JSON to argv[1].
WRAPPER = r"""
import json, sys, time
import squareseq.runs.experiment as experiment
real = experiment.draw_run
steps_timed = {}

def draw_run(run_dir, record, steps, progress, signals=None):
    def timed(name, write):
        def run():
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return write()
            finally:
                steps_timed[name] = (time.perf_counter() - wall, time.process_time() - cpu)
        return run
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        return real(run_dir, record, [(n, timed(n, w)) for n, w in steps], progress, signals)
    finally:
        steps_timed["figure phase"] = (time.perf_counter() - wall, time.process_time() - cpu)

experiment.draw_run = draw_run
from squareseq.cli import main
code = main(sys.argv[2:])
with open(sys.argv[1], "w") as f:
    json.dump({"code": code, "steps": steps_timed}, f)
"""

VARIANTS: Dict[str, List[str]] = {
    "--no-figures": ["--no-figures"],
    "--no-animation": ["--no-animation"],
    "default (GIFs)": [],
}


def one_run(src: Path, flags: Sequence[str], workdir: Path) -> Tuple[float, float, Dict[str, Tuple[float, float]]]:
    """``(cpu_seconds, wall_seconds, steps)`` of one ``squareseq train`` process using ``src``."""
    env = dict(os.environ, PYTHONPATH=str(src), MPLBACKEND="Agg")
    out = workdir / "steps.json"
    argv = [sys.executable, "-c", WRAPPER, str(out), "train", "--out", str(workdir / "run"), "--overwrite",
            "--quiet", *flags]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"run failed ({proc.returncode}): {stderr[-2000:]}")
    steps = json.loads(out.read_text())["steps"]
    return usage.ru_utime + usage.ru_stime, wall, {k: tuple(v) for k, v in steps.items()}


def _spread(values: Sequence[float]) -> str:
    return f"{statistics.median(values):7.2f} [{min(values):.2f}-{max(values):.2f}]"


def whole_runs(trees: Dict[str, Path], repeats: int) -> str:
    """Times every variant of :data:`VARIANTS` ``repeats`` times per tree, interleaved; returns
    the report (medians, [min-max])."""
    results: Dict[Tuple[str, str], List[Tuple[float, float, Dict]]] = {}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(repeats + 1):  # the first round warms the file caches and is dropped
            for variant, flags in VARIANTS.items():
                for tree, src in trees.items():
                    measured = one_run(src, flags, Path(tmp))
                    if rep:
                        results.setdefault((tree, variant), []).append(measured)
    load_after = os.getloadavg()
    lines = [f"whole `squareseq train` runs (defaults), {repeats} per row after a warm-up, interleaved; "
             f"median [min-max] seconds; load average before {load_before[0]:.1f}, after {load_after[0]:.1f} "
             f"on {os.cpu_count()} CPUs",
             f"{'tree':<10}{'variant':<17}{'CPU s':>22}{'wall s':>22}{'CPU / --no-figures':>20}"]
    for tree in trees:
        base = statistics.median(c for c, _, _ in results[(tree, "--no-figures")])
        for variant in VARIANTS:
            runs = results[(tree, variant)]
            cpu = [c for c, _, _ in runs]
            lines.append(f"{tree:<10}{variant:<17}{_spread(cpu):>22}{_spread([w for _, w, _ in runs]):>22}"
                         f"{statistics.median(cpu) / base:>19.2f}x")
    lines.append("")
    lines.append("figure phase per file, default run (GIFs): median CPU s [min-max] per tree")
    names: List[str] = []
    for tree in trees:
        for _, _, steps in results[(tree, "default (GIFs)")]:
            names += [n for n in steps if n not in names]
    lines.append(f"{'file':<22}" + "".join(f"{tree:>26}" for tree in trees))
    for name in names:
        cells = []
        for tree in trees:
            values = [steps[name][1] for _, _, steps in results[(tree, "default (GIFs)")] if name in steps]
            cells.append(_spread(values) if values else "-")
        lines.append(f"{name:<22}" + "".join(f"{cell:>26}" for cell in cells))
    return "\n".join(lines)


def trees_of(baseline: Optional[str], here: Path) -> Dict[str, Path]:
    """This checkout's ``src`` (``"this"``) and, when given, a baseline's (``"baseline"``)."""
    trees = {"this": here}
    if baseline:
        trees = {"baseline": Path(baseline), **trees}
    return trees
