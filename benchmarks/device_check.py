"""Device check: the tutorial's run on a GPU against the same run on the CPU, and checkpoints
moved across devices. Run it where a GPU is (without CUDA it says so and exits 0):

    python benchmarks/device_check.py [--device cuda] [--epochs 100] [--tolerance 1e-3]

Checks, one table row each: the test counts and the per-epoch losses of both runs (a GPU sums in
other orders, so losses agree within ``--tolerance``, not bit for bit); the GPU run's checkpoint
holds CPU tensors only (``torch.load`` without ``map_location`` reads it on any machine);
``squareseq evaluate`` reads the GPU run on the CPU with the GPU run's counts; a CPU run resumed
on the GPU and a GPU run resumed on the CPU end where the uninterrupted runs do (within the
tolerance); ``StepByStep.load_checkpoint`` moves each checkpoint onto the other device. Exit code
0 when every row passes, 1 otherwise.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
from pathlib import Path
from typing import Any, List, Sequence

import _common  # noqa: F401  (this checkout's package on the path)
from _common import table, verdict


def _tensors(obj: Any) -> List[Any]:
    import torch

    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, dict):
        return [t for v in obj.values() for t in _tensors(v)]
    if isinstance(obj, (list, tuple)):
        return [t for v in obj for t in _tensors(v)]
    return []


def _max_diff(a: Sequence[float], b: Sequence[float]) -> float:
    return max((abs(x - y) for x, y in zip(a, b)), default=0.0) if len(a) == len(b) else float("inf")


def _correct(counts: Any) -> int:
    return int(counts[:, 0].sum())


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="the GPU to check (cuda, cuda:N or mps)")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--tolerance", type=float, default=1e-3, help="largest loss difference accepted")
    args = parser.parse_args(list(argv))
    import torch

    from squareseq.errors import SquareseqError
    from squareseq.training.choices import resolve_device

    try:
        device = resolve_device(args.device)
    except SquareseqError as exc:
        print(f"device check skipped: {exc} (torch {torch.__version__})")
        return 0
    from squareseq.cli import main as cli
    from squareseq.config import RunConfig, RunOptions
    from squareseq.runs.experiment import build_trainer, run_experiment

    config, half = RunConfig(epochs=args.epochs), RunConfig(epochs=max(1, args.epochs // 2))
    rows: List[List[Any]] = []

    def row(check: str, cpu: Any, gpu: Any, ok: bool) -> None:
        rows.append([check, cpu, gpu, verdict(ok)])

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)

        def run(name: str, cfg: RunConfig, on: str, resume: bool = False):
            options = RunOptions(run_dir=folder / name, figures=False, device=on, resume=resume, handle_signals=False)
            return run_experiment(cfg, options)

        cpu, gpu = run("cpu", config, "cpu"), run("gpu", config, str(device))
        row("test: correct of n", f"{_correct(cpu.counts)}/{int(cpu.counts[:, 1].sum())}",
            f"{_correct(gpu.counts)}/{int(gpu.counts[:, 1].sum())}", abs(_correct(cpu.counts) - _correct(gpu.counts)) <= 2)
        diff = max(_max_diff(cpu.trainer.losses, gpu.trainer.losses),
                   _max_diff(cpu.trainer.val_losses, gpu.trainer.val_losses))
        row(f"max |loss difference| over {args.epochs} epochs", "-", f"{diff:.2e}", diff <= args.tolerance)
        raw = torch.load(folder / "gpu" / "checkpoint.pt", weights_only=True)  # no map_location: as stored
        devices = sorted({t.device.type for t in _tensors(raw)})
        row("GPU run's checkpoint: tensor devices", "-", ",".join(devices), devices == ["cpu"])
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cli(["evaluate", str(folder / "gpu")])
        expected = f"correct per class [n_correct, n_total]: {gpu.counts.tolist()}"
        row("evaluate the GPU run here (CPU)", "-", expected.split(": ")[1], code == 0 and expected in out.getvalue())

        for name, first, then, reference in (("cpu->gpu", "cpu", str(device), cpu), ("gpu->cpu", str(device), "cpu", gpu)):
            run(name, half, first)
            resumed = run(name, config, then, resume=True)
            diff = _max_diff(resumed.trainer.losses, reference.trainer.losses)
            row(f"resume {name} at epoch {half.epochs}: max |loss difference|", "-", f"{diff:.2e}",
                diff <= args.tolerance)

        for name, source, target in (("cpu", "cpu", device), ("gpu", "gpu", torch.device("cpu"))):
            trainer, _ = build_trainer(config, device=target)
            trainer.load_checkpoint(folder / source / "checkpoint.pt")
            on = {p.device.type for p in trainer.model.parameters()}
            same = all(torch.equal(p.detach().cpu(), q.detach().cpu()) for p, q in
                       zip(trainer.model.parameters(), (cpu if name == "cpu" else gpu).trainer.model.parameters()))
            row(f"load_checkpoint: {name} run onto {target.type}", "-", ",".join(sorted(on)),
                on == {target.type} and same and trainer.total_epochs == args.epochs)

    print(table(f"device check: {device} against cpu, torch {torch.__version__}, the tutorial's run",
                ["check", "cpu", str(device), "verdict"], rows))
    return 0 if all(r[-1] == "PASS" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
