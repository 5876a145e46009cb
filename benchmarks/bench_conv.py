"""The convolutional classifier (``--model conv1d``) against the book's one-filter convolution
(``--model square-conv1d``) and the GRU on a public 9-class speech set of short variable-length
sequences, JapaneseVowels (UEA archive: 12 cepstrum coefficients, 7-29 steps, 270 train / 370
test), bundled with aeon (``pip install squareseq[aeon]``). Prints a table of test accuracy.

Every model trains the same way, what ``squareseq train --data`` does by default: features
standardised by the training part's mean and deviation (over real steps only), a stratified 20 %
validation split carved from the training part (seeded), Adam lr 0.01, batches of 16 shuffled,
at most 200 epochs, early stopping on the validation loss with patience 30 and the best epoch's
weights restored; the test set is evaluated once, at the end. Each seed seeds the split, the
model's initial weights and the shuffles. Variable lengths travel as padded batches with lengths.

    python benchmarks/bench_conv.py                  # conv1d (avg, max), square-conv1d, gru; 3 seeds
    python benchmarks/bench_conv.py --seeds 0-4 --only conv1d

Published results for comparison (UEA archive, Bagnall et al. 2018, "The UEA multivariate time
series classification archive"): 1-NN DTW_D 0.949, 1-NN DTW_I 0.959.

Measured (``--seeds 0-4``, torch 2.13 CPU, one thread; test accuracy over the 5 seeds):

    model                                              mean acc  spread    min    max  best ep  s/run
    conv1d hidden 64 (3 layers, k5, dilation 2, avg)      0.979   0.003  0.976  0.984     37.0   59.9
    conv1d hidden 64 (3 layers, k5, dilation 2, max)      0.983   0.006  0.976  0.992     30.6   30.8
    square-conv1d (the book's one filter)                 0.571   0.033  0.522  0.597     28.4    1.9
    gru hidden 64                                         0.964   0.006  0.957  0.970     67.0   50.6

(spread: standard deviation over the seeds; s/run on a shared two-core machine.)
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np
import torch
from torch.nn import functional

import _common  # noqa: F401  (this checkout's package on the path)
from squareseq.models.networks import build_model

DTW_D = 0.949  # 1-NN DTW (dependent), Bagnall et al. 2018


@dataclass
class Model:
    label: str
    name: str
    sizes: Dict[str, object] = field(default_factory=dict)


MODELS = [
    Model("conv1d hidden 64 (3 layers, k5, dilation 2, avg)", "conv1d", dict(hidden_dim=64, num_layers=3)),
    Model("conv1d hidden 64 (3 layers, k5, dilation 2, max)", "conv1d",
          dict(hidden_dim=64, num_layers=3, pooling="max")),
    Model("square-conv1d (the book's one filter)", "square-conv1d"),
    Model("gru hidden 64", "gru", dict(hidden_dim=64)),
]


def load() -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, List[str]]:
    """JapaneseVowels as zero-padded ``(N, L, F)`` float32 arrays, lengths and class indices."""
    try:
        from aeon.datasets import load_japanese_vowels
    except ImportError:
        sys.exit("this benchmark needs aeon: pip install 'squareseq[aeon]'")
    parts = [load_japanese_vowels(split=split) for split in ("train", "test")]
    names = sorted({str(label) for _, y in parts for label in y}, key=lambda s: (len(s), s))
    steps = max(x.shape[1] for xs, _ in parts for x in xs)
    out = []
    for xs, y in parts:
        lengths = np.array([x.shape[1] for x in xs], dtype=np.int64)
        padded = np.zeros((len(xs), steps, xs[0].shape[0]), dtype=np.float32)
        for i, x in enumerate(xs):  # aeon's (C, L) per sequence -> (L, C)
            padded[i, : x.shape[1]] = np.asarray(x, dtype=np.float32).T
        out += [padded, lengths, np.array([names.index(str(label)) for label in y], dtype=np.int64)]
    return (*out, names)  # type: ignore[return-value]


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, val)``: ``fraction`` of each class (at least one) held out, seeded."""
    rng = np.random.RandomState(seed)
    val = []
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        val += members[: max(1, int(round(fraction * len(members))))].tolist()
    mask = np.zeros(len(y), dtype=bool)
    mask[val] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def standardize(x: np.ndarray, lengths: np.ndarray, mean: np.ndarray, std: np.ndarray) -> torch.Tensor:
    real = np.arange(x.shape[1])[None, :, None] < lengths[:, None, None]
    return torch.from_numpy(np.where(real, (x - mean) / std, 0.0).astype(np.float32))


def train_one(model_spec: Model, data, seed: int, epochs: int, patience: int) -> Tuple[float, int, float]:
    """Test accuracy, best epoch and seconds of one seed's run."""
    x, lengths, y, x_test, lengths_test, y_test, names = data
    train_idx, val_idx = stratified_split(y, 0.2, seed)
    real = np.concatenate([x[i, : lengths[i]] for i in train_idx])
    mean, std = real.mean(0), real.std(0) + 1e-8
    xs = {part: standardize(x[idx], lengths[idx], mean, std) for part, idx in (("train", train_idx), ("val", val_idx))}
    ls = {part: torch.from_numpy(lengths[idx]) for part, idx in (("train", train_idx), ("val", val_idx))}
    ys = {part: torch.from_numpy(y[idx]) for part, idx in (("train", train_idx), ("val", val_idx))}
    xt, lt, yt = standardize(x_test, lengths_test, mean, std), torch.from_numpy(lengths_test), torch.from_numpy(y_test)

    torch.manual_seed(seed)
    model = build_model(model_spec.name, n_features=x.shape[2], n_outputs=len(names), seq_len=x.shape[1],
                        **model_spec.sizes)  # type: ignore[arg-type]
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    generator = torch.Generator().manual_seed(seed)
    best, best_epoch, best_state = float("inf"), 0, None
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        for batch in torch.randperm(len(ys["train"]), generator=generator).split(16):
            optimizer.zero_grad()
            loss = functional.cross_entropy(model(xs["train"][batch], ls["train"][batch]), ys["train"][batch])
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            val_loss = functional.cross_entropy(model(xs["val"], ls["val"]), ys["val"]).item()
        if val_loss < best:
            best, best_epoch = val_loss, epoch
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        elif epoch - best_epoch >= patience:
            break
    seconds = time.perf_counter() - started
    assert best_state is not None
    model.load_state_dict(best_state)
    model.eval()
    with torch.no_grad():
        accuracy = (model(xt, lt).argmax(1) == yt).double().mean().item()
    return accuracy, best_epoch, seconds


def parse_seeds(text: str) -> List[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1)) if "," not in text else [int(s) for s in text.split(",")]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-2", help="seeds, as 0-4 or 1,5,9 (default 0-2)")
    parser.add_argument("--only", default="", help="run only the models whose label contains this")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--patience", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    seeds = parse_seeds(args.seeds)
    data = load()
    print(f"JapaneseVowels: {len(data[2])} train / {len(data[5])} test sequences, {data[0].shape[2]} features, "
          f"{int(data[1].min())}-{int(max(data[1].max(), data[4].max()))} steps, {len(data[6])} classes; "
          f"torch {torch.__version__}, {args.threads} thread(s), seeds {seeds}, <= {args.epochs} epochs, "
          f"patience {args.patience}")
    header = f"{'model':50s} {'mean acc':>8s} {'spread':>7s} {'min':>6s} {'max':>6s} {'best ep':>8s} {'s/run':>6s}"
    print(header)
    print("-" * len(header))
    for spec in MODELS:
        if args.only not in spec.label:
            continue
        results = [train_one(spec, data, seed, args.epochs, args.patience) for seed in seeds]
        accs = [r[0] for r in results]
        spread = statistics.stdev(accs) if len(accs) > 1 else 0.0
        print(f"{spec.label:50s} {statistics.mean(accs):8.3f} {spread:7.3f} {min(accs):6.3f} {max(accs):6.3f} "
              f"{statistics.mean(r[1] for r in results):8.1f} {statistics.mean(r[2] for r in results):6.1f}",
              flush=True)
    print(f"published 1-NN DTW_D (Bagnall et al. 2018): {DTW_D:.3f}")


if __name__ == "__main__":
    main()
