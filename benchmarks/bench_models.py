"""Trains every model configuration of the "beyond the basic RNN" acceptance list and prints a
table of test counts, accuracy and training seconds.

Each run follows the tutorial's recipe: train data n=128 seed 13, test data n=128 seed 19,
``torch.manual_seed(21)`` right before the model is built, Adam lr 0.01, batch 16 shuffled,
``StepByStep.train(100, seed=42)``. Fixed-length data travels through ``DataLoader`` over a
``TensorDataset`` (as in the tutorial); variable-length data through ``DataLoader`` with
``collate_packed`` (``--fast`` uses ``PackedLoader``, which yields the same batches).

    python benchmarks/bench_models.py            # all runs, one thread
    python benchmarks/bench_models.py --only gru  # the runs whose label contains "gru"
    python benchmarks/bench_models.py --noise 0.5 # every run on harder squares
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from squareseq import StepByStep
from squareseq.data.loaders import make_variable_length_loader
from squareseq.data.squares import make_sequences, n_classes, to_tensors
from squareseq.models.networks import build_model


@dataclass
class Run:
    label: str
    model: str
    hidden_dim: int = 2
    task: str = "direction"
    variable_len: bool = False
    noise: float = 0.1
    bidirectional: bool = False
    num_layers: int = 1


RUNS = [
    Run("rnn (tutorial)", "rnn"),
    Run("gru", "gru"),
    Run("lstm", "lstm"),
    Run("square-conv1d (the book's)", "square-conv1d"),
    Run("bi-lstm packed, variable length", "lstm", variable_len=True, bidirectional=True),
    Run("gru 8-class", "gru", task="corner-direction"),
    Run("gru 8-class noise 0.3 variable, hidden 8", "gru", hidden_dim=8, task="corner-direction",
        variable_len=True, noise=0.3),
    Run("gru 8-class noise 0.3 variable, hidden 4", "gru", hidden_dim=4, task="corner-direction",
        variable_len=True, noise=0.3),
    Run("gru 8-class noise 0.3 variable, hidden 2", "gru", hidden_dim=2, task="corner-direction",
        variable_len=True, noise=0.3),
]


def loaders(run: Run, fast: bool):
    """Train and test loaders of ``run``, labels as its loss needs them."""
    binary = n_classes(run.task) == 2
    data = [make_sequences(128, variable_len=run.variable_len, seed=seed, noise=run.noise, task=run.task)
            for seed in (13, 19)]
    if run.variable_len:
        return [make_variable_length_loader(p, y, batch_size=16, shuffle=shuffle, float_labels=binary, fast=fast)
                for (p, y), shuffle in zip(data, (True, False))]
    out = []
    for (p, y), shuffle in zip(data, (True, False)):
        x, y_t, _ = to_tensors(p, y, float_labels=binary)
        out.append(DataLoader(TensorDataset(x, y_t), batch_size=16, shuffle=shuffle))
    return out


def train(run: Run, fast: bool = False, n_epochs: int = 100):
    """Trains ``run`` the tutorial's way; returns ``(counts, seconds)``."""
    train_loader, test_loader = loaders(run, fast)
    classes = n_classes(run.task)
    torch.manual_seed(21)
    model = build_model(run.model, n_features=2, hidden_dim=run.hidden_dim,
                        n_outputs=1 if classes == 2 else classes,
                        num_layers=run.num_layers, bidirectional=run.bidirectional)
    loss_fn = nn.BCEWithLogitsLoss() if classes == 2 else nn.CrossEntropyLoss()
    sbs = StepByStep(model, loss_fn, torch.optim.Adam(model.parameters(), lr=0.01))
    sbs.set_loaders(train_loader, test_loader)
    started = time.perf_counter()
    sbs.train(n_epochs, seed=42)
    seconds = time.perf_counter() - started
    return StepByStep.loader_apply(test_loader, sbs.correct), seconds


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run only configurations whose label contains this")
    parser.add_argument("--fast", action="store_true", help="PackedLoader instead of DataLoader for packed data")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--noise", type=float, default=None,
                        help="override every run's noise (default: each run's own; 0.1 is the tutorial's)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, {args.epochs} epochs, "
          f"{'PackedLoader' if args.fast else 'DataLoader'} for packed data")
    print(f"{'run':44s} {'correct/total':>14s} {'accuracy':>9s} {'train s':>8s}  per class [correct, total]")
    for run in RUNS:
        if args.only not in run.label:
            continue
        if args.noise is not None:
            run = replace(run, noise=args.noise, label=f"{run.label} @noise {args.noise}")
        counts, seconds = train(run, args.fast, args.epochs)
        hits, total = int(counts[:, 0].sum()), int(counts[:, 1].sum())
        print(f"{run.label:44s} {f'{hits}/{total}':>14s} {hits / total:9.1%} {seconds:8.2f}  {counts.tolist()}",
              flush=True)


if __name__ == "__main__":
    main()
