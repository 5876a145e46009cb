"""B2: whole process, round-robin: ``squareseq train`` without figures vs the plain tutorial
script (DataLoader + loop), and the tutorial's code on squareseq for reference. Each row is a
fresh Python process, from interpreter start to exit.

    python benchmarks/bench_b2_process.py [--rounds 3]
"""
from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import ROOT, median, subprocess_env, table, timed, verdict

HERE = Path(__file__).resolve().parent


def _cli_available() -> bool:
    if importlib.util.find_spec("squareseq.cli") is None:
        return False
    out = subprocess.run([sys.executable, "-m", "squareseq", "train", "--help"], capture_output=True, text=True,
                         env=subprocess_env(), cwd=ROOT)
    return out.returncode == 0 and "--no-figures" in out.stdout and "--quiet" in out.stdout


def _run(cmd) -> float:
    seconds, result = timed(lambda: subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(),
                                                   cwd=ROOT))
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed:\n{result.stderr[-2000:]}")
    return seconds


def _loaded_modules(cmd_prefix) -> str:
    """Heavy modules a squareseq process loads (printed by the script itself)."""
    out = subprocess.run(cmd_prefix + ["--report-modules"], capture_output=True, text=True, env=subprocess_env(),
                         cwd=ROOT)
    lines = [line for line in out.stdout.splitlines() if line.startswith("loaded:")]
    return lines[-1] if lines else "?"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    commands = {"plain script (DataLoader + loop)": [sys.executable, str(HERE / "plain_tutorial.py")]}
    cli = _cli_available()
    tmp = tempfile.TemporaryDirectory()
    if cli:
        commands["squareseq train --quiet --no-figures"] = [
            sys.executable, "-m", "squareseq", "train", "--quiet", "--no-figures", "--overwrite", "--out",
            str(Path(tmp.name) / "run")]
    commands["tutorial code on squareseq"] = [sys.executable, str(HERE / "squareseq_tutorial.py")]
    commands["same, FlatAdam (no torch._dynamo)"] = [sys.executable, str(HERE / "squareseq_tutorial.py"),
                                                     "--flat-adam"]
    times = {name: [] for name in commands}
    _run(commands["plain script (DataLoader + loop)"])  # warm the file cache
    for _ in range(args.rounds):
        for name, cmd in commands.items():
            times[name].append(_run(cmd))
    base = median(times["plain script (DataLoader + loop)"])
    rows = [[name, median(t), min(t), median(t) / base] for name, t in times.items()]
    print(table(f"B2  whole process, 100 epochs, median of {args.rounds} round-robin rounds",
                ["process", "median s", "min s", "ratio"], rows))
    for name in ("tutorial code on squareseq", "same, FlatAdam (no torch._dynamo)"):
        print(f"{name}: {_loaded_modules(commands[name])}")
    if cli:
        ratio = median(times["squareseq train --quiet --no-figures"]) / base
        print(f"acceptance (squareseq train <= 0.6x the plain script): {verdict(ratio <= 0.6)}")
    else:
        print("note: `squareseq train` (with --quiet and --no-figures) is not available in this checkout; "
              "its row is skipped")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
