"""B1: the tutorial's workload in one process, round-robin: a plain DataLoader + loop with the
tutorial's semantics vs squareseq's StepByStep over the same objects. Checks that the per-epoch
losses are bit-identical and the test counts are [[50, 53], [75, 75]].

    python benchmarks/bench_b1_loop.py [--rounds 5] [--epochs 100]
"""
from __future__ import annotations

import argparse

import torch

import _common  # noqa: F401  (puts this checkout's package first on the path)
from _common import median, table, timed, verdict
from plain_tutorial import SquareModel as PlainSquareModel
from plain_tutorial import correct_counts, make_objects, plain_train


def run_plain(n_epochs):
    model, loss_fn, optimizer, train_loader, test_loader = make_objects(PlainSquareModel)
    seconds, (losses, val_losses) = timed(
        lambda: plain_train(model, loss_fn, optimizer, train_loader, test_loader, n_epochs))
    return seconds, losses, val_losses, correct_counts(model, test_loader).tolist()


def run_squareseq(n_epochs):
    from squareseq import SquareModel, StepByStep

    model, loss_fn, optimizer, train_loader, test_loader = make_objects(SquareModel)
    sbs = StepByStep(model, loss_fn, optimizer)
    sbs.set_loaders(train_loader, test_loader)
    seconds, _ = timed(lambda: sbs.train(n_epochs))
    counts = StepByStep.loader_apply(test_loader, sbs.correct).tolist()
    return seconds, sbs.losses, sbs.val_losses, counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=100)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # the same thread count for both (B5 measures threads)
    run_plain(1)  # warm-up: the first Adam.step imports torch._dynamo, the first call allocates
    run_squareseq(1)
    plain_s, fast_s, ratios = [], [], []
    same = True
    counts_ok = True
    for _ in range(args.rounds):
        p = run_plain(args.epochs)
        f = run_squareseq(args.epochs)
        plain_s.append(p[0])
        fast_s.append(f[0])
        ratios.append(f[0] / p[0])
        same &= p[1] == f[1] and p[2] == f[2]
        if args.epochs == 100:
            counts_ok &= p[3] == f[3] == [[50, 53], [75, 75]]
        else:
            counts_ok &= p[3] == f[3]
    steps = args.epochs * 8
    rows = [
        ["plain DataLoader + loop", median(plain_s), median(plain_s) / steps * 1e3, 1.0],
        ["squareseq StepByStep", median(fast_s), median(fast_s) / steps * 1e3, median(fast_s) / median(plain_s)],
    ]
    print(table(f"B1  tutorial workload, {args.epochs} epochs, median of {args.rounds} round-robin rounds",
                ["pipeline", "train s", "ms/batch*", "ratio"], rows))
    print("* training time per training batch, the validation pass included")
    print(f"per-round ratios: {', '.join(f'{r:.3f}' for r in ratios)}")
    print(f"losses bit-identical: {same}; counts {f[3]} equal: {counts_ok}")
    ok = median(ratios) <= 0.45 and same and counts_ok
    print(f"acceptance (ratio <= 0.45, identical losses, [[50, 53], [75, 75]]): {verdict(ok)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
