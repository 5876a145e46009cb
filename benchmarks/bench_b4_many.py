"""B4: K models that differ in their seed (K=256 by default) on the tutorial's settings:
sequential separate runs (a sample of seeds timed, the rest extrapolated) vs one batched
``train_many`` pass. Milliseconds per model, and whether the sampled seeds' test counts agree.

    python benchmarks/bench_b4_many.py [--k 256] [--sample 32] [--epochs 100] [--model rnn]
"""
from __future__ import annotations

import argparse

import torch
from torch import nn, optim
from torch.utils.data import DataLoader, TensorDataset

import _common  # noqa: F401
from _common import table, timer, verdict


def separate_run(seed, n_epochs, hidden_dim, x, y, xt, yt, cell="rnn"):
    """One tutorial run with squareseq's StepByStep (its fast exact path)."""
    from squareseq import SquareModel, StepByStep

    train_loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
    test_loader = DataLoader(TensorDataset(xt, yt), batch_size=16)
    torch.manual_seed(seed)
    model = SquareModel(2, hidden_dim, 1) if cell == "rnn" else SquareModel(2, hidden_dim, 1, cell=cell)
    sbs = StepByStep(model, nn.BCEWithLogitsLoss(), optim.Adam(model.parameters(), lr=0.01))
    sbs.set_loaders(train_loader, test_loader)
    sbs.train(n_epochs)
    return StepByStep.loader_apply(test_loader, sbs.correct).tolist()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=256)
    parser.add_argument("--sample", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--hidden-dim", type=int, default=2)
    parser.add_argument("--model", default="rnn")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall-clock or this process's CPU time (steadier on a shared machine)")
    args = parser.parse_args(argv)
    timed = timer(args.clock)
    from squareseq.config import RunConfig
    from squareseq.data.squares import make_tensors
    from squareseq.training.many import train_many

    torch.set_num_threads(1)
    x, y, _ = make_tensors(128, seed=13)
    xt, yt, _ = make_tensors(128, seed=19)
    seeds = list(range(args.k))
    sample = seeds[:: max(1, args.k // args.sample)][: args.sample]
    train_many(seeds[:4], RunConfig(epochs=1, model=args.model, hidden_dim=args.hidden_dim))  # warm-up
    import inspect

    from squareseq import SquareModel

    sequential = args.model == "rnn" or "cell" in inspect.signature(SquareModel).parameters
    if sequential:
        separate_run(0, 1, args.hidden_dim, x, y, xt, yt, args.model)
    config = RunConfig(epochs=args.epochs, model=args.model, hidden_dim=args.hidden_dim)
    batched_s, results = timed(lambda: train_many(seeds, config))
    counts = {}
    seq_s = 0.0
    if sequential:
        for seed in sample:
            s, c = timed(lambda: separate_run(seed, args.epochs, args.hidden_dim, x, y, xt, yt, args.model))
            seq_s += s
            counts[seed] = c
        per_model_seq = seq_s / len(sample) * 1e3
    per_model_batched = batched_s / args.k * 1e3
    rows = [[f"batched train_many (K={args.k})", batched_s, per_model_batched,
             per_model_seq / per_model_batched if counts else float("nan")]]
    if counts:
        rows.insert(0, [f"sequential StepByStep (sample {len(sample)}, extrapolated)",
                        per_model_seq * args.k / 1e3, per_model_seq, 1.0])
    print(table(f"B4  {args.k} seeds, {args.model} hidden {args.hidden_dim}, {args.epochs} epochs, one thread",
                ["run", "total s", "ms/model", "speed-up"], rows))
    summary = results.summary()
    print(f"test accuracy over {args.k} seeds: min {summary['accuracy_min']:.3f}, median "
          f"{summary['accuracy_median']:.3f}, max {summary['accuracy_max']:.3f}; converged (>= 0.9): "
          f"{summary['converged_share']:.1%}")
    if counts:
        agree = sum(counts[s] == results.counts[seeds.index(s)] for s in sample)
        print(f"sampled seeds with the same test counts as separate runs: {agree}/{len(sample)}")
        ok = per_model_batched <= 10 and per_model_seq / per_model_batched >= 50 and agree / len(sample) >= 0.97
        print(f"acceptance (<= 10 ms/model, >= 50x, >= 97% same counts): {verdict(ok)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
