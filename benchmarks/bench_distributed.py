"""Distributed throughput: data-parallel training (torch DDP, gloo) and sharded sweeps, 1 vs 2 ranks.

Training: 1e6 generated squares (squareseq's generator, made once and shared through a file),
squareseq's ``SquareModel`` (``build_model("gru", hidden_dim=H)``; ``rnn-2`` is the tutorial's) wrapped in
``DistributedDataParallel``; each rank reads its ``DistributedSampler``-style shard (one seeded
permutation, rank r takes every world-th index) in batches of B per rank, so 2 ranks step through
2 x B sequences per step, as one process with batch 2 x B would. A fixed number of steps is timed
after a warm-up (a small fraction of an epoch: the throughput of a whole epoch is the same), the
slowest rank's time counts. Configurations: 1 rank x 1 thread, 2 ranks x 1 thread, 1 rank x 2
threads. Sweep: ``squareseq sweep`` of 64 seeds, one process vs ``torchrun --nproc-per-node 2``.

    python benchmarks/bench_distributed.py [--steps 200] [--batch 16,64,512] [--models rnn-2,gru-32,gru-128]
        [--configs 1x1,2x1,1x2] [--repeats 3] [--sweep-seeds 64] [--sweep-epochs 20]

The worker (``--worker``) is what torchrun starts; it is this file's own minimal DDP loop, the
same data-parallel scheme ``squareseq train`` follows under torchrun.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

import _common  # noqa: F401  (this checkout's package first)
from _common import median, subprocess_env, table

HERE = Path(__file__).resolve()
N_SEQUENCES = 1_000_000


def _torchrun(nproc: int) -> List[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--rdzv-backend", "c10d",
            "--rdzv-endpoint", "localhost:0"]


def worker(args: argparse.Namespace) -> None:
    """One rank: DDP training steps for every (hidden size, batch) asked; rank 0 prints a RESULT line."""
    import torch
    import torch.distributed as dist
    from torch import nn
    from torch.nn.parallel import DistributedDataParallel

    from squareseq.models.networks import build_model

    torch.set_num_threads(args.threads)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    dist.init_process_group("gloo", rank=rank, world_size=world)
    x, y = torch.load(args.data)
    results = []
    for cell, hidden in args.models:
        for batch in args.batch:
            torch.manual_seed(0)
            model = DistributedDataParallel(build_model(cell, hidden_dim=hidden))
            optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
            loss_fn = nn.BCEWithLogitsLoss()
            order = torch.randperm(len(x), generator=torch.Generator().manual_seed(42))
            shard = order[rank::world]  # DistributedSampler's split (1e6 divides by 1 and 2: no padding)

            def step(i: int) -> None:
                index = shard[i * batch:(i + 1) * batch]
                optimizer.zero_grad()
                loss_fn(model(x[index]), y[index]).backward()  # DDP averages the gradients here
                optimizer.step()

            for i in range(args.warmup):
                step(i)
            dist.barrier()
            start = time.perf_counter()
            for i in range(args.warmup, args.warmup + args.steps):
                step(i)
            took = torch.tensor([time.perf_counter() - start], dtype=torch.float64)
            dist.all_reduce(took, op=dist.ReduceOp.MAX)  # the slowest rank sets the pace
            results.append({"model": f"{cell.upper()}-{hidden}", "batch": batch, "seconds": float(took),
                            "seq_per_s": args.steps * batch * world / float(took)})
    if rank == 0:
        print("RESULT " + json.dumps(results), flush=True)
    dist.destroy_process_group()


def _train(data: Path, nproc: int, threads: int, args: argparse.Namespace) -> List[Dict]:
    command = [*_torchrun(nproc), str(HERE), "--worker", "--data", str(data), "--threads", str(threads),
               "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--models", ",".join(f"{c}-{h}" for c, h in args.models), "--batch", ",".join(map(str, args.batch))]
    env = {**subprocess_env(), "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"worker failed ({nproc} ranks):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def _sweep(nproc: int, seeds: int, extra: List[str], folder: Path) -> Dict[str, float]:
    out = folder / f"sweep-{nproc}-{len(list(folder.iterdir()))}"
    command = ["-m", "squareseq", "sweep", "--seeds", f"0-{seeds - 1}", *extra, "--quiet", "--no-figures",
               "--out", str(out)]
    command = [sys.executable, *command] if nproc == 1 else [*_torchrun(nproc), *command]
    start = time.perf_counter()
    subprocess.run(command, env={**subprocess_env(), "OMP_NUM_THREADS": "1"}, check=True, capture_output=True)
    wall = time.perf_counter() - start
    return {"wall": wall, "training": json.loads((out / "sweep.json").read_text())["seconds"]}


def _ints(text: str) -> List[int]:
    return [int(v) for v in text.split(",")]


def _models(text: str) -> List[Tuple[str, int]]:
    return [(name.split("-")[0], int(name.split("-")[1])) for name in text.split(",")]


CONFIGS = {"1x1": (1, 1), "1x2": (1, 2), "2x1": (2, 1)}  # ranks x intra-op threads


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=200, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps first")
    parser.add_argument("--models", type=_models, default=_models("rnn-2,gru-32,gru-128"),
                        help="cell-hidden size pairs (rnn-2: the tutorial's model)")
    parser.add_argument("--batch", type=_ints, default=[16, 64, 512], help="sequences per rank per step")
    parser.add_argument("--configs", default="1x1,2x1,1x2", help="ranks x threads to run (1x1 is always run)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each configuration (the median counts)")
    parser.add_argument("--sweep-seeds", type=int, default=64)
    parser.add_argument("--sweep-epochs", type=int, default=20, help="epochs of the GRU-32 sweep")
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    import torch

    from squareseq.data.squares import make_tensors

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "squares.pt"
        start = time.perf_counter()
        x, y, _ = make_tensors(N_SEQUENCES, seed=13)
        torch.save((x, y), data)
        print(f"generated {N_SEQUENCES:,} sequences in {time.perf_counter() - start:.1f} s", flush=True)
        names = ["1x1", *(c for c in args.configs.split(",") if c != "1x1")]
        tries: Dict[str, List[List[Dict]]] = {name: [] for name in names}
        for _ in range(args.repeats):  # interleaved, so that a change in the machine's load hits every configuration
            for name in names:
                tries[name].append(_train(data, *CONFIGS[name], args))
        runs = {name: [{**t[0][i], "seq_per_s": median([r[i]["seq_per_s"] for r in t])} for i in range(len(t[0]))]
                for name, t in tries.items()}
        rows = []
        for i, one in enumerate(runs["1x1"]):
            row = [one["model"], one["batch"], *(runs[name][i]["seq_per_s"] for name in names)]
            if "2x1" in runs:
                row.append(runs["2x1"][i]["seq_per_s"] / one["seq_per_s"])
            rows.append(row)
        header = ["model", "B/rank", *(f"{CONFIGS[n][0]} rank x{CONFIGS[n][1]} thr" for n in names)]
        print(table(f"DDP training, sequences/s, median of {args.repeats} ({args.steps} steps of B per rank after "
                    f"{args.warmup} warm-up; {N_SEQUENCES:,} sequences)", header + (["2 ranks / 1"] if "2x1" in runs else []), rows))
        sweeps = []
        folder = Path(tmp) / "sweeps"
        folder.mkdir()
        for label, extra in (("rnn-2, 100 epochs (tutorial)", []),
                             (f"GRU-32, {args.sweep_epochs} epochs", ["--model", "gru", "--hidden-dim", "32",
                                                                      "--epochs", str(args.sweep_epochs)])):
            pairs = [(_sweep(1, args.sweep_seeds, extra, folder), _sweep(2, args.sweep_seeds, extra, folder))
                     for _ in range(args.repeats)]
            one, two = ({key: median([p[i][key] for p in pairs]) for key in ("training", "wall")} for i in (0, 1))
            sweeps.append([label, one["training"], two["training"], one["training"] / two["training"], one["wall"],
                           two["wall"], one["wall"] / two["wall"]])
        print(table(f"squareseq sweep of {args.sweep_seeds} seeds, seconds, median of {args.repeats} (training = sweep.json's; wall = the "
                    "whole command, start-up included)",
                    ["sweep", "train 1r", "train 2r", "speed-up", "wall 1r", "wall 2r", "speed-up"], sweeps))
    print(f"machine: {os.cpu_count()} cores; load average (1, 5, 15 min) before {load_before}, after "
          f"{os.getloadavg()}; torch {torch.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
