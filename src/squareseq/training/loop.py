"""The training core: step factories, an epoch runner, a fit loop with callbacks, and History.

The loop only does what every run needs: set the mode once per phase, forward, loss, backward,
clip, step, record, fire events. Everything else (progress bars, schedulers, checkpoints,
snapshots for replays) is a :class:`Callback`.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

from squareseq.errors import SquareseqError
from squareseq.training.optim import OptimizerLike

__all__ = [
    "StepFn",
    "History",
    "Callback",
    "make_train_step",
    "make_val_step",
    "run_epoch",
    "fit",
    "set_seed",
]

#: A step takes a batch ``(x, y)`` already on the device and returns the batch's detached loss.
StepFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def set_seed(seed: int = 42) -> None:
    """Seeds torch, numpy's global legacy generator and ``random``, and makes cuDNN deterministic."""
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


@dataclass
class History:
    """Per-epoch records of a run: mean training and validation losses, learning rates."""

    losses: List[float] = field(default_factory=list)
    val_losses: List[Optional[float]] = field(default_factory=list)
    learning_rates: List[List[float]] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        return len(self.losses)

    def append(self, loss: float, val_loss: Optional[float]) -> None:
        self.losses.append(loss)
        self.val_losses.append(val_loss)

    def as_dict(self) -> Dict[str, list]:
        return {"losses": list(self.losses), "val_losses": list(self.val_losses)}


class Callback:
    """Hooks into the fit loop; every hook is a no-op until overridden.

    ``loop`` is the :class:`FitState` of the running fit: its ``stop`` flag ends training after
    the current epoch, and ``epoch`` counts epochs from the start of the run (1-based).
    """

    def on_fit_start(self, loop: "FitState") -> None: ...

    def on_epoch_start(self, loop: "FitState") -> None: ...

    def on_batch_end(self, loop: "FitState", batch: int, n_batches: int, loss: torch.Tensor) -> None: ...

    def on_epoch_end(self, loop: "FitState", logs: Dict[str, Any]) -> None: ...

    def on_fit_end(self, loop: "FitState") -> None: ...


def make_train_step(
    model: nn.Module,
    loss_fn: Callable,
    optimizer: OptimizerLike,
    clip: Optional[Callable[[], Any]] = None,
) -> StepFn:
    """A training step: forward, loss, backward, optional gradient clipping, optimizer step."""

    def train_step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = loss_fn(model(x), y)
        loss.backward()
        if clip is not None:
            clip()
        optimizer.step()
        optimizer.zero_grad()
        return loss.detach()

    return train_step


def make_val_step(model: nn.Module, loss_fn: Callable) -> StepFn:
    """A validation step: forward and loss, nothing else (call it under ``torch.no_grad``)."""

    def val_step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return loss_fn(model(x), y).detach()

    return val_step


def run_epoch(
    step: StepFn,
    loader: Iterable,
    device: "str | torch.device" = "cpu",
    after_batch: Optional[Callable[[int, int, torch.Tensor], None]] = None,
) -> float:
    """Runs ``step`` over every batch of ``loader`` and returns the mean of the batch losses.

    Batch losses stay on the device and are synced once, at the end. Their mean is numpy's
    float64 mean over the float32 batch losses, the number the tutorial's loop reports.
    """
    n_batches = len(loader)  # type: ignore[arg-type]
    losses = []
    for i, (x, y) in enumerate(loader):
        loss = step(x.to(device), y.to(device))
        losses.append(loss)
        if after_batch is not None:
            after_batch(i, n_batches, loss)
    if not losses:
        raise SquareseqError("the loader yielded no batches: the dataset is empty")
    return float(np.mean(torch.stack(losses).double().cpu().numpy()))


@dataclass
class FitState:
    """What callbacks see of a running fit."""

    model: nn.Module
    optimizer: OptimizerLike
    history: History
    epoch: int = 0
    stop: bool = False
    n_epochs: int = 0
    extra: Dict[str, Any] = field(default_factory=dict)


def fit(
    state: FitState,
    train_step: StepFn,
    val_step: Optional[StepFn],
    train_loader: Iterable,
    val_loader: Optional[Iterable],
    n_epochs: int,
    callbacks: Sequence[Callback] = (),
    device: "str | torch.device" = "cpu",
) -> History:
    """Trains for ``n_epochs``: per epoch, one pass over ``train_loader``, then one over
    ``val_loader`` under ``no_grad``. Stops early when a callback sets ``state.stop``."""
    if train_loader is None:
        raise SquareseqError("no training loader: call set_loaders(train_loader, val_loader) before train()")
    if n_epochs < 0:
        raise SquareseqError(f"n_epochs must be >= 0, got {n_epochs}")
    model = state.model
    state.stop = False
    state.n_epochs = state.epoch + n_epochs

    def after_batch(i: int, n: int, loss: torch.Tensor) -> None:
        for cb in callbacks:
            cb.on_batch_end(state, i, n, loss)

    for cb in callbacks:
        cb.on_fit_start(state)
    try:
        for _ in range(n_epochs):
            state.epoch += 1
            for cb in callbacks:
                cb.on_epoch_start(state)
            model.train()
            loss = run_epoch(train_step, train_loader, device, after_batch)
            val_loss = None
            if val_loader is not None and val_step is not None:
                model.eval()
                with torch.no_grad():
                    val_loss = run_epoch(val_step, val_loader, device)
                model.train()
            state.history.append(loss, val_loss)
            logs = {"epoch": state.epoch, "loss": loss, "val_loss": val_loss}
            for cb in callbacks:
                cb.on_epoch_end(state, logs)
            if state.stop:
                break
    finally:
        model.train()
        for cb in callbacks:
            cb.on_fit_end(state)
    return state.history
