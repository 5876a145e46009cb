"""STRUCTURE: the tutorial's code with its *own* ``SquareModel`` class (only the imports changed)
vs the book's plain loop, round robin in one process; and what ``train()`` costs when called
repeatedly (the fused step's proof is cached per process).

    python benchmarks/bench_structure.py [--rounds 5] [--epochs 100]

Table 1: train seconds per pipeline (medians of round-robin rounds), ms per training step, the
ratio to the plain loop with its spread over rounds, and whether the per-epoch losses are
bit-identical to the plain loop's. Table 2: ``train(1)`` over 128 sequences at hidden 128, the
first call in the process (it proves the fused step: three comparisons) vs later calls (cached
verdict) vs the plain loop's one epoch.
"""
from __future__ import annotations

import argparse
import statistics

import torch
from torch import nn, optim
from torch.utils.data import DataLoader, TensorDataset

import _common  # noqa: F401  (puts this checkout's package first on the path)
from _common import table, timer, verdict
from plain_tutorial import SquareModel as BookSquareModel
from plain_tutorial import make_objects, plain_train

timed = timer("wall")  # main() may switch it to CPU time


def run_plain(n_epochs):
    model, loss_fn, optimizer, train_loader, test_loader = make_objects(BookSquareModel)
    seconds, losses = timed(lambda: plain_train(model, loss_fn, optimizer, train_loader, test_loader, n_epochs))
    return seconds, losses


def run_squareseq(n_epochs, model_cls):
    from squareseq import StepByStep

    model, loss_fn, optimizer, train_loader, test_loader = make_objects(model_cls)
    sbs = StepByStep(model, loss_fn, optimizer)
    sbs.set_loaders(train_loader, test_loader)
    seconds, _ = timed(lambda: sbs.train(n_epochs))
    return seconds, (sbs.losses, sbs.val_losses)


def _spread(values):
    return f"{min(values):.3f}-{max(values):.3f}"


def first_and_later_calls(repeats: int):
    """train(1) at hidden 128 on the tutorial's 128 sequences: first call, later calls, plain."""
    from squareseq import StepByStep
    from squareseq.data.squares import make_tensors
    from squareseq.training import fused

    x, y, _ = make_tensors(128, seed=13)
    xt, yt, _ = make_tensors(128, seed=19)

    def objects():
        torch.manual_seed(21)
        model = BookSquareModel(2, 128, 1)
        return (model, nn.BCEWithLogitsLoss(), optim.Adam(model.parameters(), lr=0.01),
                DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True), DataLoader(TensorDataset(xt, yt), batch_size=16))

    def squareseq_train(epochs):
        model, loss_fn, optimizer, train_loader, val_loader = objects()
        sbs = StepByStep(model, loss_fn, optimizer)
        sbs.set_loaders(train_loader, val_loader)
        return timed(lambda: sbs.train(epochs))[0]

    def plain(epochs):
        model, loss_fn, optimizer, train_loader, val_loader = objects()
        return timed(lambda: plain_train(model, loss_fn, optimizer, train_loader, val_loader, epochs))[0]

    rows = []
    for epochs in (1, 10):
        first, later, plain_s = [], [], []
        for _ in range(repeats):
            fused.clear_cache()
            first.append(squareseq_train(epochs))
            later.append(squareseq_train(epochs))
            plain_s.append(plain(epochs))
        p = statistics.median(plain_s)
        rows.append([f"train({epochs}): first call in the process", statistics.median(first) * 1e3,
                     statistics.median(first) / p])
        rows.append([f"train({epochs}): later calls (cached verdict)", statistics.median(later) * 1e3,
                     statistics.median(later) / p])
        rows.append([f"train({epochs}): plain loop", p * 1e3, 1.0])
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall-clock or this process's CPU time (steadier on a shared machine)")
    args = parser.parse_args(argv)
    global timed
    timed = timer(args.clock)
    from squareseq import SquareModel

    torch.set_num_threads(1)
    run_plain(1)  # warm-up: the first Adam.step imports torch._dynamo, the first call allocates
    run_squareseq(1, BookSquareModel)
    run_squareseq(1, SquareModel)
    times = {"plain": [], "own": [], "squareseq": []}
    same = True
    for r in range(args.rounds):
        order = ["plain", "own", "squareseq"]
        order = order[r % 3:] + order[:r % 3]  # rotate who goes first
        losses = {}
        for which in order:
            if which == "plain":
                seconds, losses[which] = run_plain(args.epochs)
            else:
                seconds, losses[which] = run_squareseq(args.epochs, BookSquareModel if which == "own" else SquareModel)
            times[which].append(seconds)
        same &= losses["own"] == losses["plain"] and losses["squareseq"] == losses["plain"]
    steps = args.epochs * 8
    plain_med = statistics.median(times["plain"])
    rows = []
    for which, label in (("plain", "book's plain DataLoader loop"), ("own", "StepByStep, the tutorial's own class"),
                         ("squareseq", "StepByStep, squareseq's SquareModel")):
        ratios = [t / p for t, p in zip(times[which], times["plain"])]
        rows.append([label, statistics.median(times[which]), statistics.median(times[which]) / steps * 1e3,
                     statistics.median(ratios), _spread(ratios)])
    print(table(f"STRUCTURE  tutorial workload, {args.epochs} epochs, median of {args.rounds} round-robin rounds",
                ["pipeline", "train s", "ms/step*", "ratio", "ratio spread"], rows))
    print(f"* training time per training batch, the validation pass included; plain median {plain_med:.3f} s")
    print(f"losses bit-identical to the plain loop: {same}")
    own_ratio = rows[1][3]
    print(f"acceptance (own class ratio <= 0.35, identical losses): {verdict(own_ratio <= 0.35 and same)}")
    print(table("STRUCTURE  train() called once or repeatedly, hidden 128, 128 sequences, batch 16",
                ["call", "ms", "ratio to plain"], first_and_later_calls(max(3, args.rounds))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
