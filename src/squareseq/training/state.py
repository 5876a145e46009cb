"""A trainer's complete state as a checkpoint dict and back, all or nothing.

:class:`~squareseq.stepbystep.StepByStep` delegates its ``checkpoint_state``, ``restore_state``,
``save_checkpoint`` and ``load_checkpoint`` here; :mod:`squareseq.training.checkpoint` owns the file
format, its atomic writing and its validation. The functions work on anything with the
trainer's attributes (:class:`Trainer`), so the state logic is testable without the facade.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Protocol

import torch
from torch import nn

from squareseq.training import checkpoint as ckpt
from squareseq.training.loop import History
from squareseq.training.optim import OptimizerLike
from squareseq.training.rng import get_state as get_rng_state
from squareseq.training.rng import set_state as set_rng_state

__all__ = ["Trainer", "capture_state", "check_optimizer_state", "clone_tensors", "load", "restore_state", "save"]


class Trainer(Protocol):
    """What these functions read and write on a trainer (``StepByStep`` has all of it)."""

    model: nn.Module
    optimizer: OptimizerLike
    scheduler: Any
    history: History
    train_loader: Any
    total_epochs: int
    device: Any
    losses: List[float]
    val_losses: List[Optional[float]]

    @property
    def learning_rates(self) -> List[List[float]]: ...


def clone_tensors(obj: Any) -> Any:
    """A copy of nested dicts, lists and tuples with every tensor cloned (``copy.deepcopy`` of an
    optimizer state costs ten times more)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return {k: clone_tensors(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(clone_tensors(v) for v in obj)
    return obj


def capture_state(trainer: Trainer, epoch: Optional[int] = None) -> Dict[str, Any]:
    """Everything a checkpoint holds, as copies: model, optimizer and scheduler states, the
    histories, the model's config, and every RNG state training consumes (format in
    :mod:`squareseq.training.checkpoint`). ``epoch`` defaults to the epochs in the history."""
    payload: Dict[str, Any] = {
        "epoch": trainer.history.epochs if epoch is None else int(epoch),
        "model_state_dict": {k: v.detach().clone() for k, v in trainer.model.state_dict().items()},
        "optimizer_state_dict": clone_tensors(trainer.optimizer.state_dict()),
        "loss": list(trainer.losses),
        "val_loss": list(trainer.val_losses),
        "learning_rates": [list(v) for v in trainer.learning_rates],
        "rng_state": get_rng_state(trainer.train_loader),
    }
    config = getattr(trainer.model, "config", None)
    if config is not None:
        payload["model_config"] = config()
    if trainer.scheduler is not None:
        payload["scheduler_state_dict"] = clone_tensors(trainer.scheduler.state_dict())
    stopping = getattr(trainer, "early_stopping", None)
    if stopping is not None:
        payload["early_stopping"] = stopping.state_dict()
    return payload


def restore_state(trainer: Trainer, data: Dict[str, Any], restore_rng: bool = True,
                  where: str = "checkpoint") -> None:
    """Loads what :func:`capture_state` returned (or a loaded checkpoint) into ``trainer``; all
    or nothing: if any part does not fit, the trainer is put back as it was.

    Raises:
        CheckpointError: the state does not fit the model, optimizer, scheduler or loader;
            ``where`` names its source in the message.
    """
    ckpt.check_fits(trainer.model, data["model_state_dict"], where)
    backup = capture_state(trainer)
    try:
        _apply(trainer, data, restore_rng, where)
    except Exception:
        _apply(trainer, backup, True, "the previous state")
        raise


def _apply(trainer: Trainer, data: Dict[str, Any], restore_rng: bool, where: str) -> None:
    """Writes ``data`` into the trainer part by part (the model's fit is already checked)."""
    trainer.model.load_state_dict(data["model_state_dict"])
    if "optimizer_state_dict" in data:
        try:
            trainer.optimizer.load_state_dict(data["optimizer_state_dict"])
        except (ValueError, KeyError, TypeError, RuntimeError, AttributeError, IndexError) as exc:
            raise ckpt.CheckpointError(f"{where}'s optimizer state does not fit this optimizer: "
                                       f"{str(exc).splitlines()[0]}") from None
        check_optimizer_state(trainer.optimizer, where)
    if trainer.scheduler is not None and data.get("scheduler_state_dict") is not None:
        try:
            trainer.scheduler.load_state_dict(data["scheduler_state_dict"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ckpt.CheckpointError(f"{where}'s scheduler state does not fit this scheduler: {exc}") from None
    stopping = getattr(trainer, "early_stopping", None)
    if stopping is not None:  # a checkpoint without early-stopping state: start counting afresh
        if data.get("early_stopping") is not None:
            stopping.load_state_dict(data["early_stopping"])
        else:
            stopping.reset()
    trainer.total_epochs = int(data.get("epoch", 0))
    trainer.losses = [float(v) for v in data.get("loss", [])]
    trainer.val_losses = [None if v is None else float(v) for v in data.get("val_loss", [])]
    trainer.history.learning_rates = [list(v) for v in data.get("learning_rates", [])]
    if restore_rng and data.get("rng_state") is not None:
        set_rng_state(data["rng_state"], trainer.train_loader, where)
    trainer.model.train()


def check_optimizer_state(optimizer: OptimizerLike, where: str) -> None:
    """Loaded optimizer buffers must have their parameters' shapes (else the next step fails).
    Optimizers without torch's per-parameter ``state`` (``FlatAdam``) check shapes as they load.

    Raises:
        CheckpointError: the first buffer whose shape differs from its parameter's.
    """
    state = getattr(optimizer, "state", None)
    if not isinstance(state, dict):
        return
    for group in optimizer.param_groups:
        for p in group["params"]:
            for key, value in state.get(p, {}).items():
                if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != p.shape:
                    raise ckpt.CheckpointError(
                        f"{where}'s optimizer state does not fit this model: {key} has shape "
                        f"{tuple(value.shape)} for a parameter of shape {tuple(p.shape)}")


def save(trainer: Trainer, filename: ckpt.PathLike, extra: Optional[Dict[str, Any]] = None) -> None:
    """Saves the trainer's complete state atomically, with ``extra`` plain data beside it (the
    state's own keys win over ``extra``'s)."""
    ckpt.save(filename, {**(extra or {}), **capture_state(trainer)})


def load(trainer: Trainer, filename: ckpt.PathLike, restore_rng: bool = True) -> Dict[str, Any]:
    """Loads a checkpoint (onto the trainer's device, without unpickling code) into ``trainer``
    with :func:`restore_state`; returns the checkpoint's contents."""
    data = ckpt.load(filename, map_location=trainer.device)
    restore_state(trainer, data, restore_rng=restore_rng, where=str(filename))
    return data
