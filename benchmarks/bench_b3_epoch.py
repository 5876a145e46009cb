"""B3: one training epoch over many sequences (1,000,000 by default) at batch 1024:
``DataLoader(TensorDataset)`` with a plain loop vs squareseq's ``StepByStep`` given the same
DataLoader (which swaps in its exact in-memory loader, flat Adam and, for the RNN, the fused
step), for RNN/GRU/LSTM at hidden 2 and 32. Sequences per second, and whether both runs give the
same epoch loss bit for bit.

    python benchmarks/bench_b3_epoch.py [--n 1000000] [--batch-size 1024] [--models rnn,gru,lstm]
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
from torch import nn, optim
from torch.utils.data import DataLoader, TensorDataset

import _common  # noqa: F401
from _common import table, timed, verdict

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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--models", default="rnn,gru,lstm")
    parser.add_argument("--hidden", default="2,32")
    args = parser.parse_args(argv)
    from squareseq.data.squares import make_tensors

    torch.set_num_threads(1)
    x, y, _ = make_tensors(args.n, seed=13)
    # warm-up: the first Adam.step imports torch._dynamo, first calls allocate
    warm = DataLoader(TensorDataset(x[:4096], y[:4096]), batch_size=args.batch_size, shuffle=True)
    for kind in args.models.split(","):
        plain_epoch(build(kind, 2), warm)
        squareseq_epoch(build(kind, 2), warm)
    rows = []
    rnn2_ratio = None
    for kind in args.models.split(","):
        for hidden_dim in (int(h) for h in args.hidden.split(",")):
            loader = DataLoader(TensorDataset(x, y), batch_size=args.batch_size, shuffle=True)
            plain_s, plain_loss = timed(lambda: plain_epoch(build(kind, hidden_dim), loader))
            fast_s, fast_loss = timed(lambda: squareseq_epoch(build(kind, hidden_dim), loader))
            ratio = plain_s / fast_s
            if kind == "rnn" and hidden_dim == 2:
                rnn2_ratio = ratio
            rows.append([f"{kind} hidden {hidden_dim}", args.n / plain_s, args.n / fast_s, ratio,
                         plain_loss == fast_loss])
            print(f"  {rows[-1][0]}: {args.n / plain_s:,.0f} vs {args.n / fast_s:,.0f} seq/s", flush=True)
    print(table(f"B3  one epoch over {args.n:,} sequences, batch {args.batch_size}, one thread",
                ["model", "DataLoader seq/s", "squareseq seq/s", "speed-up", "same loss"], rows))
    if rnn2_ratio is not None:
        print(f"acceptance (hidden-2 RNN >= 6x): {verdict(rnn2_ratio >= 6)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
