"""What the full report costs a default ``squareseq train``, side by side in one run.

Runs ``squareseq train`` (the tutorial's defaults) as a child process, interleaved, ``--repeats``
times each:

* ``--no-figures``: training, metrics and checkpoint only (the baseline);
* default: the figures, the interactive replay (``replay.json``) and ``report.html``;
* ``--gif``: the default plus both GIF replays (what every run drew before they became opt-in).

Prints the medians of each child's CPU time (user + system, from ``getrusage``: robust on a busy
machine, unlike wall time, which is printed too), the CPU ratio to ``--no-figures``, the size of
``report.html`` and of the run folder, and checks the targets: a default run at most 1.5x the CPU
of ``--no-figures``, its ``report.html`` under 1.5 MB.

Usage: ``python benchmarks/bench_report.py [--repeats 3]``.
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import median, subprocess_env, table, verdict

VARIANTS = (("--no-figures", ["--no-figures"]), ("default", []), ("--gif", ["--gif"]))
#: The targets: CPU of a default run over --no-figures, and report.html's size.
MAX_RATIO = 1.5
MAX_REPORT_BYTES = 1_500_000


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_train(out: Path, extra) -> tuple:
    """``(cpu seconds, wall seconds)`` of one ``squareseq train`` into ``out``."""
    cmd = [sys.executable, "-m", "squareseq", "train", "--quiet", "--out", str(out), *extra]
    cpu, start = _children_cpu(), time.perf_counter()
    subprocess.run(cmd, check=True, env=subprocess_env(), stdout=subprocess.DEVNULL)
    return _children_cpu() - cpu, time.perf_counter() - start


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    times = {name: [] for name, _ in VARIANTS}
    sizes = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for name, extra in VARIANTS:  # interleaved: a busy spell hits every variant alike
                out = Path(tmp) / f"{name.strip('-')}-{r}"
                times[name].append(run_train(out, extra))
                report = out / "report.html"
                sizes[name] = (report.stat().st_size if report.exists() else 0, folder_bytes(out))
    base = median([cpu for cpu, _ in times["--no-figures"]])
    rows = []
    for name, _ in VARIANTS:
        cpu = median([c for c, _ in times[name]])
        wall = median([w for _, w in times[name]])
        report, folder = sizes[name]
        rows.append([name, cpu, wall, cpu / base, report / 1e6 if report else "-", folder / 1e6])
    print(table(f"squareseq train, tutorial defaults: medians of {args.repeats} interleaved runs",
                ["variant", "CPU s", "wall s", "CPU / --no-figures", "report.html MB", "run folder MB"], rows))
    default = rows[1]
    ratio_ok, size_ok = default[3] <= MAX_RATIO, sizes["default"][0] < MAX_REPORT_BYTES
    print(f"\ntarget: default run <= {MAX_RATIO}x the CPU of --no-figures: {default[3]:.2f}x {verdict(ratio_ok)}")
    print(f"target: report.html < {MAX_REPORT_BYTES / 1e6} MB: {sizes['default'][0] / 1e6:.2f} MB {verdict(size_ok)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
