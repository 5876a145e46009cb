"""The tutorial's experiment as a function: data, model, training, evaluation, run folder.

The CLI parses options into a :class:`RunConfig` and calls :func:`run_experiment`; notebooks can
call it too.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
from torch.utils.data import DataLoader, TensorDataset

from . import metrics
from .config import RunConfig
from .data import make_tensors
from .losses import get_loss_spec
from .models import SquareModel, outputs_probabilities
from .runs import CHECKPOINT, HISTORY, METRICS, write_history_csv, write_json
from .stepbystep import StepByStep
from .training import Callback

__all__ = ["RunResult", "build_trainer", "evaluate_counts", "run_experiment", "test_tensors"]


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


def run_experiment(
    config: RunConfig,
    run_dir: Optional[Path] = None,
    callbacks: Optional[List[Callback]] = None,
    write_figures: bool = True,
) -> RunResult:
    """Trains and evaluates the run ``config`` describes; writes its run folder if given.

    The folder gets ``checkpoint.pt``, ``history.csv``, figures, and ``metrics.json`` last.
    """
    config.validate()
    trainer = build_trainer(config)
    for callback in callbacks or []:
        trainer.add_callback(callback)
    started = time.perf_counter()
    trainer.train(config.epochs, seed=config.fit_seed)
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
        "test": {
            "correct_per_class": counts.tolist(),
            "accuracy": metrics.accuracy(counts),
            "confusion_matrix": metrics.confusion_matrix(predicted, y_test, n_classes).tolist(),
        },
        "epochs": trainer.total_epochs,
        "losses": list(trainer.losses),
        "val_losses": list(trainer.val_losses),
        "config": config.to_dict(),
        "train_seconds": train_seconds,
        "versions": {"torch": torch.__version__},
    }
    if run_dir is not None:
        _write_run(trainer, config, Path(run_dir), result_metrics, write_figures)
    return RunResult(trainer, counts, result_metrics, run_dir)


def _write_run(trainer: StepByStep, config: RunConfig, run_dir: Path, result_metrics: Dict[str, Any],
               write_figures: bool) -> None:
    from .data import make_sequences

    checkpoint_extra = {"run_config": config.to_dict()}
    trainer.save_checkpoint(run_dir / CHECKPOINT, extra=checkpoint_extra)
    write_history_csv(run_dir / HISTORY, trainer.losses, trainer.val_losses)
    if write_figures:
        import matplotlib.pyplot as plt

        from .plots import plot_data, plot_losses

        points, directions = make_sequences(config.n_train, seed=config.train_seed)
        for name, fig in (("data.png", plot_data(points, directions)), ("losses.png", plot_losses(trainer.history))):
            fig.savefig(run_dir / name, dpi=100)
            plt.close(fig)
    write_json(run_dir / METRICS, result_metrics)
