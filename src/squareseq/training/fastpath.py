"""Exact fast stand-ins for the tutorial's training pipeline, chosen at each ``train()``.

Given the tutorial's plain objects, training runs through equivalents that give the same numbers
bit for bit (see docs/performance.md): a :class:`~squareseq.data.loaders.FastLoader` for a
``DataLoader`` over a ``TensorDataset``, a :class:`~squareseq.training.optim.FlatAdam` for a default
``Adam``, and, for a model built like the tutorial's (one ``nn.RNN``/``nn.GRU``/``nn.LSTM`` then
one ``nn.Linear``, whatever its class) with ``BCEWithLogitsLoss``, the fused step of
:mod:`squareseq.training.fused`, proven bit-identical to autograd for the batch shapes it will run
(a verdict cached per process). Anything else runs as given.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import torch
from torch import nn

from squareseq.data.loaders import FastLoader
from squareseq.training import fused
from squareseq.training.loop import Callback, StepFn, make_train_step
from squareseq.training.optim import FlatAdam, flat_adam_from

__all__ = ["STEPS_PER_PROOF", "TrainParts", "select_parts"]

#: Training steps per batch shape to prove from which proving the fused step pays for itself.
STEPS_PER_PROOF = 8


@dataclass
class TrainParts:
    """The loaders and steps one ``train()`` runs, and the flat optimizer standing in for the
    user's (None when the user's optimizer runs as given)."""

    train_loader: Iterable
    val_loader: Optional[Iterable]
    train_step: StepFn
    val_step: StepFn
    flat: Optional[FlatAdam] = None
    user_optimizer: Any = None

    @property
    def stands_in(self) -> bool:
        """Whether a FlatAdam trains in place of the user's own optimizer object."""
        return self.flat is not None and self.flat is not self.user_optimizer

    def callbacks(self, others: List[Callback]) -> List[Callback]:
        """A callback that keeps the user's optimizer current every epoch, when other callbacks
        might read or save its state."""
        return [_SyncOptimizer(self.flat)] if self.flat is not None and self.stands_in and others else []

    def finish(self) -> None:
        """Writes the stand-in's state back into the user's optimizer and returns the model's
        parameters to their own tensors."""
        if self.flat is not None and self.stands_in:
            self.flat.store_to(self.user_optimizer)
            self.flat.close()


def select_parts(
    model: nn.Module,
    loss_fn: Callable,
    optimizer: Any,
    train_loader: Iterable,
    val_loader: Optional[Iterable],
    train_step: StepFn,
    val_step: StepFn,
    *,
    own_train_step: bool,
    own_val_step: bool,
    clipping: Optional[Callable[[], Any]],
    device: "str | torch.device",
    n_epochs: Optional[int] = None,
) -> TrainParts:
    """The exact fast parts for this set-up. ``own_*_step`` say whether the steps are the
    trainer's own (a user-assigned step always runs as given); ``n_epochs`` (None: many) says
    whether proving the fused step can pay for itself."""
    parts = TrainParts(train_loader, val_loader, train_step, val_step, user_optimizer=optimizer)
    fast_train = FastLoader.from_dataloader(train_loader)
    if fast_train is not None:
        parts.train_loader = fast_train
    fast_val = FastLoader.from_dataloader(val_loader)
    if fast_val is not None:
        parts.val_loader = fast_val
    if own_train_step:
        parts.flat = optimizer if isinstance(optimizer, FlatAdam) else flat_adam_from(optimizer)
        if parts.flat is not None:
            parts.train_step = make_train_step(model, loss_fn, parts.flat, clipping)
    outputs = _fused_outputs(model, loss_fn, optimizer, fast_train, fast_val, device, n_epochs) if fast_train else None
    if outputs is not None:
        if parts.flat is not None:
            parts.train_step = fused.make_fused_train_step(model, parts.flat, clipping, outputs)
        if own_val_step and (val_loader is None or fast_val is not None):  # batch shapes it proved
            parts.val_step = fused.make_fused_val_step(model, outputs)
    return parts


def _edge_batches(loader: Optional[FastLoader]) -> List[Tuple[torch.Tensor, torch.Tensor]]:
    """A full first batch and, when the last batch is smaller, one of the last batch's size: the
    batch shapes a pass over ``loader`` runs."""
    if loader is None or loader.n_samples == 0:
        return []
    x, y = loader.tensors[0], loader.tensors[1]
    b = loader.batch_size
    batches = [(x[:b], y[:b])]
    rest = loader.n_samples % b
    if rest and loader.n_samples > b and not loader.drop_last:
        batches.append((x[-rest:], y[-rest:]))
    return batches


def _fused_outputs(model: nn.Module, loss_fn: Callable, optimizer: Any, train: FastLoader,
                   val: Optional[FastLoader], device: "str | torch.device",
                   n_epochs: Optional[int] = None) -> Optional[Dict[str, str]]:
    """What the fused step leaves on the model (see :func:`squareseq.training.fused.check`) if
    the model and loss can take it: built like the tutorial's model (any class), no hooks, on CPU,
    optimized in ``model.parameters()`` order, and proven bit-identical to autograd on this
    machine for every batch shape training and validation run; else None.

    A proof costs about three training steps per batch shape; a run of fewer than
    :data:`STEPS_PER_PROOF` steps per shape to prove skips it (autograd then trains: the same
    numbers) unless this process has already proven it."""
    if torch.device(device).type != "cpu" or not fused.supports(model, loss_fn):
        return None
    if [id(p) for p in model.parameters()] != [id(p) for p in optimizer.param_groups[0]["params"]]:
        return None
    batches, eval_batches = _edge_batches(train), _edge_batches(val)
    prove = n_epochs is None or n_epochs * len(train) >= STEPS_PER_PROOF * (len(batches) + len(eval_batches))
    return fused.check(model, loss_fn, batches, eval_batches, prove=prove)


class _SyncOptimizer(Callback):
    """Writes a FlatAdam's state into the user's optimizer at the end of every epoch."""

    def __init__(self, flat: FlatAdam):
        self.flat = flat

    def on_epoch_end(self, loop, logs) -> None:
        source = self.flat.source
        assert source is not None  # a stand-in from flat_adam_from, the only kind that gets this callback
        self.flat.store_to(source)
