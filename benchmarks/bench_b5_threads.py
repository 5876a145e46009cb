"""B5: intra-op threads with a busy neighbour. The default run (squareseq picks one thread for
tiny models) and torch's default thread count, each timed quiet and with a busy neighbour
process that this benchmark starts and stops itself, round-robin.

    python benchmarks/bench_b5_threads.py [--rounds 3] [--epochs 100]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import torch

import _common  # noqa: F401
from _common import median, table, timed, verdict


def tutorial_run(n_epochs: int, threads):
    """The tutorial's training with StepByStep, with the given ``threads`` setting."""
    from plain_tutorial import make_objects
    from squareseq import SquareModel, StepByStep

    model, loss_fn, optimizer, train_loader, test_loader = make_objects(SquareModel)
    sbs = StepByStep(model, loss_fn, optimizer, threads=threads)
    sbs.set_loaders(train_loader, test_loader)
    seconds, _ = timed(lambda: sbs.train(n_epochs))
    return seconds


class BusyNeighbour:
    """A child process spinning on one core while the block runs."""

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.3)
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=100)
    args = parser.parse_args(argv)
    torch_default = torch.get_num_threads()
    settings = {"squareseq default (threads='auto' -> 1)": "auto",
                f"torch default ({torch_default} threads)": torch_default}
    tutorial_run(1, "auto")  # warm-up
    times = {(name, busy): [] for name in settings for busy in (False, True)}
    for _ in range(args.rounds):
        for name, threads in settings.items():
            times[(name, False)].append(tutorial_run(args.epochs, threads))
            with BusyNeighbour():
                times[(name, True)].append(tutorial_run(args.epochs, threads))
    rows = []
    for name in settings:
        quiet, busy = median(times[(name, False)]), median(times[(name, True)])
        rows.append([name, quiet, busy, busy / quiet])
    print(table(f"B5  tutorial training, {args.epochs} epochs, {os.cpu_count()} cores, median of {args.rounds} rounds",
                ["threads", "quiet s", "busy neighbour s", "busy/quiet"], rows))
    print(f"acceptance (default run with a busy neighbour <= 1.5x quiet): {verdict(rows[0][3] <= 1.5)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
