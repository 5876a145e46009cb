"""B3: training epochs over many sequences at batch 1024, the scaling table:
``DataLoader(TensorDataset)`` with a plain loop vs squareseq's ``StepByStep`` given the same
DataLoader (which swaps in its exact in-memory loader, flat Adam and, where it pays, the fused
RNN/GRU/LSTM step), for RNN/GRU/LSTM at hidden 2, 32 and 128 and N = 1e3 to 1e6 sequences.
Sequences per second (medians over round-robin rounds, with the spread of the speed-up), and
whether both runs give the same epoch loss bit for bit.

    python benchmarks/bench_b3_epoch.py [--n 1000,10000,100000,1000000] [--hidden 2,32,128]
        [--models rnn,gru,lstm] [--rounds 3] [--max-work 2e8]

``--max-work`` skips configurations whose ``N * hidden`` exceeds it (the big ones take minutes
per run on a shared machine); skipped ones are listed.
"""
from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch
from torch import nn, optim
from torch.utils.data import DataLoader, TensorDataset

import _common  # noqa: F401
from _common import table, timer, verdict

LAYERS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


def build(kind: str, hidden_dim: int):
    """SquareModel with its recurrent layer swapped for the kind asked (same forward)."""
    from squareseq import SquareModel

    torch.manual_seed(21)
    model = SquareModel(2, hidden_dim, 1)
    if kind != "rnn":
        torch.manual_seed(21)
        model.basic_rnn = LAYERS[kind](2, hidden_dim, batch_first=True)
    return model


def plain_epoch(model, loader):
    loss_fn = nn.BCEWithLogitsLoss()
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    torch.manual_seed(42)
    losses = []
    for x, y in loader:
        model.train()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return float(np.mean(losses))


def squareseq_epoch(model, loader):
    from squareseq import StepByStep

    sbs = StepByStep(model, nn.BCEWithLogitsLoss(), optim.Adam(model.parameters(), lr=0.01))
    sbs.set_loaders(loader)
    sbs.train(1, seed=42)
    return sbs.losses[0]


def _ints(text: str):
    return [int(float(v)) for v in text.split(",") if v]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", default="1000,10000,100000,1000000")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--models", default="rnn,gru,lstm")
    parser.add_argument("--hidden", default="2,32,128")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-work", type=float, default=float("inf"), help="skip N * hidden above this")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall-clock or this process's CPU time (steadier on a shared machine)")
    args = parser.parse_args(argv)
    timed = timer(args.clock)
    from squareseq.data.squares import make_tensors

    torch.set_num_threads(1)
    sizes = _ints(args.n)
    x_all, y_all, _ = make_tensors(max(sizes), seed=13)
    kinds = args.models.split(",")
    # warm-up: the first Adam.step imports torch._dynamo, first calls allocate
    warm = DataLoader(TensorDataset(x_all[:4096], y_all[:4096]), batch_size=args.batch_size, shuffle=True)
    for kind in kinds:
        plain_epoch(build(kind, 2), warm)
        squareseq_epoch(build(kind, 2), warm)
    rows, skipped, small_hidden = [], [], {}
    for n in sizes:
        x, y = x_all[:n], y_all[:n]
        for kind in kinds:
            for hidden_dim in _ints(args.hidden):
                if n * hidden_dim > args.max_work:
                    skipped.append(f"{kind} h{hidden_dim} N={n:,}")
                    continue
                loader = DataLoader(TensorDataset(x, y), batch_size=args.batch_size, shuffle=True)
                plain_s, fast_s, same = [], [], True
                for r in range(args.rounds):  # round robin, alternating which goes first
                    order = ("plain", "fast") if r % 2 == 0 else ("fast", "plain")
                    result = {}
                    for which in order:
                        fn = plain_epoch if which == "plain" else squareseq_epoch
                        result[which] = timed(lambda: fn(build(kind, hidden_dim), loader))
                    plain_s.append(result["plain"][0])
                    fast_s.append(result["fast"][0])
                    same &= result["plain"][1] == result["fast"][1]
                ratios = [p / f for p, f in zip(plain_s, fast_s)]
                speed_up = statistics.median(ratios)
                if hidden_dim == 2 and n == max(sizes):
                    small_hidden[kind] = speed_up
                rows.append([f"{kind} h{hidden_dim}", f"{n:,}", n / statistics.median(plain_s),
                             n / statistics.median(fast_s), speed_up, f"{min(ratios):.2f}-{max(ratios):.2f}", same])
                print(f"  {rows[-1][0]} N={n:,}: x{speed_up:.2f} ({rows[-1][5]})", flush=True)
    print(table(f"B3  one epoch, batch {args.batch_size}, one thread, median of {args.rounds} round-robin rounds",
                ["model", "N", "DataLoader seq/s", "squareseq seq/s", "speed-up", "spread", "same loss"], rows))
    if skipped:
        print(f"skipped (N * hidden > {args.max_work:g}): {', '.join(skipped)}")
    slowest = min((r[4] for r in rows), default=float("nan"))
    print(f"acceptance (no configuration slower than the plain loop, slowest x{slowest:.2f}): {verdict(slowest >= 1)}")
    if small_hidden:
        text = ", ".join(f"{k} x{v:.2f}" for k, v in small_hidden.items())
        print(f"acceptance (hidden 2 at N={max(sizes):,} >= 6x: {text}): {verdict(min(small_hidden.values()) >= 6)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
