"""The tutorial's experiment as a function: data, model, training, evaluation, run folder.

The CLI parses options into a :class:`RunConfig` and calls :func:`run_experiment`; notebooks can
call it too.
"""
from __future__ import annotations

import contextlib
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
from torch.utils.data import DataLoader, TensorDataset

from . import checkpoint as ckpt
from . import metrics
from .config import RunConfig
from .data import make_tensors
from .errors import SquareseqError
from .guard import NonFiniteLossError, RunGuard, SignalStop, TrainingInterrupted
from .losses import get_loss_spec
from .models import SquareModel, outputs_probabilities
from .runs import CHECKPOINT, HISTORY, METRICS, prepare_run_dir, write_history_csv, write_json
from .stepbystep import StepByStep
from .training import Callback
from .validation import check_dataset, check_model_output

__all__ = ["RunResult", "build_trainer", "check_setup", "evaluate_counts", "run_experiment", "test_tensors"]


@dataclass
class RunResult:
    """What a finished run produced."""

    trainer: StepByStep
    counts: torch.Tensor  # (n_classes, 2): [n_correct, n_total] per class
    metrics: Dict[str, Any]
    run_dir: Optional[Path]


def test_tensors(config: RunConfig):
    """The test set ``(x, y)`` of a run, labels in the format its loss needs."""
    spec = get_loss_spec(config.loss)
    x, y, _ = make_tensors(config.n_test, seed=config.test_seed, float_labels=spec.float_labels)
    return x, y


def build_trainer(config: RunConfig) -> StepByStep:
    """Data, model, loss and optimizer of a run, in the tutorial's order of random draws."""
    spec = get_loss_spec(config.loss)
    x_train, y_train, _ = make_tensors(config.n_train, seed=config.train_seed, float_labels=spec.float_labels)
    x_test, y_test = test_tensors(config)
    train_loader = DataLoader(TensorDataset(x_train, y_train), batch_size=config.batch_size, shuffle=True)
    test_loader = DataLoader(TensorDataset(x_test, y_test), batch_size=config.batch_size)

    torch.manual_seed(config.seed)
    model = SquareModel(x_train.shape[-1], config.hidden_dim, spec.n_outputs, spec.output_activation,
                        reference_logit=spec.reference_logit)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    trainer = StepByStep(model, spec.make(), optimizer)
    trainer.set_loaders(train_loader, test_loader)
    return trainer


def evaluate_counts(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-class ``[n_correct, n_total]`` of ``model`` on ``(x, y)``."""
    model.eval()
    with torch.no_grad():
        outputs = model(x)
    probabilities = outputs_probabilities(model)
    return metrics.correct_per_class(outputs, y, probabilities=probabilities)


def check_setup(config: RunConfig, trainer: StepByStep) -> None:
    """Checks the run's data and that the model's output fits the loss, before any training."""
    spec = get_loss_spec(config.loss)
    tensors = getattr(getattr(trainer.train_loader, "dataset", None), "tensors", None)
    if tensors is not None:
        x, y = tensors
    else:  # a loader without a TensorDataset: the same data, made again (it is deterministic)
        x, y, _ = make_tensors(config.n_train, seed=config.train_seed, float_labels=spec.float_labels)
    check_dataset(x, y, n_features=trainer.model.n_features, n_classes=max(spec.n_outputs, 2),
                  float_labels=spec.float_labels)
    check_model_output(trainer.model, x, trainer.loss_fn, y)


def run_experiment(
    config: RunConfig,
    run_dir: Optional[Path] = None,
    callbacks: Optional[List[Callback]] = None,
    write_figures: bool = True,
    *,
    resume: bool = False,
    overwrite: bool = False,
    checkpoint_every: int = 0,
    detect_anomaly: bool = False,
    handle_signals: bool = True,
) -> RunResult:
    """Trains and evaluates the run ``config`` describes; writes its run folder if given.

    The folder gets ``checkpoint.pt``, ``history.csv``, figures, and ``metrics.json`` last.

    Args:
        config: the run; with ``resume``, ``config.epochs`` is the new total.
        run_dir: the run folder (None: nothing is written).
        callbacks: extra callbacks (a progress bar).
        write_figures: also write the PNG figures.
        resume: continue the run in ``run_dir`` from its checkpoint, exactly as if it had not
            stopped (model, optimizer, history and RNG states come from the checkpoint).
        overwrite: replace the run in ``run_dir``; without it (or ``resume``) a folder that
            already holds files is refused.
        checkpoint_every: also write the checkpoint every this many epochs (0: only at the end).
        detect_anomaly: train under ``torch.autograd.set_detect_anomaly``.
        handle_signals: turn SIGINT/SIGTERM into a clean stop (main thread only).

    Raises:
        SquareseqError: bad configuration, data or checkpoint, before any training.
        NonFiniteLossError: the loss became NaN/inf (or overflowed); the last good epoch's state
            is written to the run folder with ``"status": "failed"`` in ``metrics.json``.
        TrainingInterrupted: SIGINT/SIGTERM; the last completed epoch's state is written with
            ``"status": "interrupted"``.
    """
    config.validate()
    if resume and run_dir is None:
        raise SquareseqError("resuming needs the run folder that holds the checkpoint")
    if run_dir is not None:
        run_dir = prepare_run_dir(Path(run_dir), overwrite=overwrite, resume=resume)
    trainer = build_trainer(config)
    check_setup(config, trainer)
    resumed_from: List[int] = []
    if resume:
        path = Path(run_dir) / CHECKPOINT
        data = ckpt.load(path)
        if data.get("rng_state") is None:
            raise SquareseqError(f"{path} holds no RNG state (written by an older squareseq or the tutorial): "
                                 "it cannot be resumed exactly; start a new run")
        trainer.restore_state(data, where=str(path))
        if trainer.total_epochs > config.epochs:
            raise SquareseqError(f"the run in {run_dir} has already trained {trainer.total_epochs} epochs; "
                                 f"--epochs is the new total: pass at least {trainer.total_epochs}")
        resumed_from = [*data.get("resumed_from", []), trainer.total_epochs]
    for callback in callbacks or []:
        trainer.add_callback(callback)
    if run_dir is not None:  # from now on the folder holds no results until this run ends
        (run_dir / METRICS).unlink(missing_ok=True)
    extra = {"run_config": config.to_dict(), "resumed_from": resumed_from}
    guard = RunGuard(trainer, Path(run_dir) / CHECKPOINT if run_dir is not None else None,
                     checkpoint_every, extra)
    trainer.add_callback(guard)
    started = time.perf_counter()
    try:
        with (SignalStop() if handle_signals else contextlib.nullcontext()) as signals:
            guard.signals = signals
            try:
                with torch.autograd.set_detect_anomaly(detect_anomaly):
                    trainer.train(config.epochs - trainer.total_epochs, seed=None if resume else config.fit_seed)
            except (NonFiniteLossError, RuntimeError) as exc:
                fault = exc if isinstance(exc, NonFiniteLossError) else _numerical_fault(exc, guard)
                if fault is None:
                    raise
                fault = NonFiniteLossError(f"{fault}; kept epoch {guard.epochs_completed}, the last good one",
                                           fault.epoch, fault.step)
                _stop(trainer, guard, config, run_dir, "failed", str(fault))
                raise fault from None
            except KeyboardInterrupt as exc:
                signum = getattr(exc, "signum", None) or (signals.signum if signals else None) or signal.SIGINT
                interrupted = TrainingInterrupted(signum, guard.epochs_completed)
                _stop(trainer, guard, config, run_dir, "interrupted", str(interrupted))
                raise interrupted from None
    finally:
        trainer.callbacks.remove(guard)
    train_seconds = time.perf_counter() - started

    counts = StepByStep.loader_apply(trainer.val_loader, trainer.correct)
    x_test, y_test = test_tensors(config)
    model = trainer.model
    model.eval()
    with torch.no_grad():
        outputs = model(x_test)
    predicted = metrics.predicted_classes(outputs, probabilities=outputs_probabilities(model))
    n_classes = counts.shape[0]
    result_metrics = {
        "status": "complete",
        "test": {
            "correct_per_class": counts.tolist(),
            "accuracy": metrics.accuracy(counts),
            "confusion_matrix": metrics.confusion_matrix(predicted, y_test, n_classes).tolist(),
        },
        "epochs": trainer.total_epochs,
        "epochs_completed": trainer.total_epochs,
        "losses": list(trainer.losses),
        "val_losses": list(trainer.val_losses),
        "config": config.to_dict(),
        "resumed_from": resumed_from,
        "train_seconds": train_seconds,
        "versions": {"torch": torch.__version__},
    }
    if run_dir is not None:
        _write_run(trainer, guard, config, Path(run_dir), result_metrics, write_figures)
    return RunResult(trainer, counts, result_metrics, run_dir)


def _numerical_fault(exc: RuntimeError, guard: RunGuard) -> Optional[NonFiniteLossError]:
    """A :class:`NonFiniteLossError` for torch's overflow and anomaly-mode errors, else None."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "overflow" not in message and "nan values" not in message.lower() and "inf values" not in message.lower():
        return None
    return NonFiniteLossError(f"numerical fault at epoch {guard.epoch}, step {guard.step + 1}: {message}; lower the "
                              "learning rate", guard.epoch, guard.step + 1)


def _stop(trainer: StepByStep, guard: RunGuard, config: RunConfig, run_dir: Optional[Path], status: str,
          message: str) -> None:
    """Rolls the trainer back to the last completed epoch and, with a run folder, writes that
    state's checkpoint, history and a ``metrics.json`` marked with ``status``."""
    guard.restore()
    if run_dir is None:
        return
    run_dir = Path(run_dir)
    guard.save(run_dir / CHECKPOINT)
    write_history_csv(run_dir / HISTORY, trainer.losses, trainer.val_losses)
    write_json(run_dir / METRICS, {
        "status": status,
        "message": message,
        "epochs": trainer.total_epochs,
        "epochs_completed": trainer.total_epochs,
        "losses": list(trainer.losses),
        "val_losses": list(trainer.val_losses),
        "config": config.to_dict(),
        "resumed_from": guard.extra.get("resumed_from", []),
        "versions": {"torch": torch.__version__},
    })


def _write_run(trainer: StepByStep, guard: RunGuard, config: RunConfig, run_dir: Path,
               result_metrics: Dict[str, Any], write_figures: bool) -> None:
    from .data import make_sequences

    guard.save(run_dir / CHECKPOINT)
    write_history_csv(run_dir / HISTORY, trainer.losses, trainer.val_losses)
    if write_figures:
        import matplotlib.pyplot as plt

        from .plots import plot_data, plot_losses

        points, directions = make_sequences(config.n_train, seed=config.train_seed)
        for name, fig in (("data.png", plot_data(points, directions)), ("losses.png", plot_losses(trainer.history))):
            fig.savefig(run_dir / name, dpi=100)
            plt.close(fig)
    write_json(run_dir / METRICS, result_metrics)
