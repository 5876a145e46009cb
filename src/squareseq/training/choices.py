"""A run's training options as torch objects: the device, the optimizer and the learning-rate schedule.

:func:`~squareseq.runs.experiment.build_trainer` takes them from a
:class:`~squareseq.config.RunConfig` and :class:`~squareseq.config.RunOptions`; with the defaults
they are the tutorial's own (Adam at ``lr``, no schedule, on the CPU), bit for bit.
"""
from __future__ import annotations

from typing import Any, Iterable, Optional

import torch

from squareseq.errors import ConfigError
from squareseq.training.optim import FlatAdam, OptimizerLike

__all__ = ["PLATEAU_FACTOR", "PLATEAU_PATIENCE", "make_optimizer", "make_scheduler", "resolve_device"]

#: ``--scheduler plateau``: the learning rate is multiplied by this when the validation loss has
#: not improved for :data:`PLATEAU_PATIENCE` epochs.
PLATEAU_FACTOR = 0.5
PLATEAU_PATIENCE = 10


def resolve_device(name: str) -> torch.device:
    """The device ``--device name`` stands for (``auto``: CUDA when available, else the CPU).

    Raises:
        ConfigError: the device is not available here (one line, naming ``{device}``).
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ConfigError("{device} mps: no MPS (Apple GPU) device is available; use {device} cpu", ("device",))
        return torch.device("mps")
    if not torch.cuda.is_available():
        raise ConfigError("{device} %s: no CUDA device is available; use {device} cpu" % name, ("device",))
    _, _, index = name.partition(":")
    count = torch.cuda.device_count()
    if index and int(index) >= count:
        raise ConfigError("{device} %s: this machine has %d CUDA device(s), cuda:0 to cuda:%d; choose one of them"
                          % (name, count, count - 1), ("device",))
    return torch.device(name)


def make_optimizer(params: Iterable[torch.Tensor], lr: float, weight_decay: float = 0.0, scheduler: str = "none",
                   device: Any = "cpu") -> OptimizerLike:
    """Adam at ``lr`` over ``params`` (already on ``device``).

    The tutorial's set-up (no weight decay, no schedule, CPU) gets a :class:`FlatAdam`: torch's
    Adam bit for bit, without the second that building a ``torch.optim`` optimizer costs a fresh
    process. Anything else gets ``torch.optim.Adam`` itself: torch's schedulers accept only a
    ``torch.optim.Optimizer`` (``StepByStep`` still trains through an exact ``FlatAdam`` stand-in
    on the CPU when there is no weight decay), and ``FlatAdam`` has no weight decay.
    """
    if weight_decay == 0 and scheduler == "none" and torch.device(device).type == "cpu":
        return FlatAdam(params, lr=lr)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


def make_scheduler(optimizer: OptimizerLike, scheduler: str, epochs: int) -> Optional[Any]:
    """The learning-rate schedule ``--scheduler`` names, stepped once per epoch (None for ``none``):
    ``cosine`` anneals to 0 over ``epochs`` (``CosineAnnealingLR(T_max=epochs)``); ``plateau``
    multiplies the rate by :data:`PLATEAU_FACTOR` when the validation loss has not improved for
    :data:`PLATEAU_PATIENCE` epochs (``ReduceLROnPlateau``). A resumed run keeps the schedule its
    checkpoint holds (a cosine's ``T_max`` included)."""
    if scheduler == "none":
        return None
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ConfigError("{scheduler} %s needs a torch.optim optimizer" % scheduler, ("scheduler",))
    if scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    if scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=PLATEAU_FACTOR,
                                                          patience=PLATEAU_PATIENCE)
    raise ConfigError("{scheduler} must be none, cosine or plateau, got %s" % scheduler, ("scheduler",))
