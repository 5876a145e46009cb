"""Runs that fail or get interrupted lose nothing: signals, non-finite losses, epoch snapshots.

* :class:`SignalStop` turns SIGINT/SIGTERM into a request to stop after the current step.
* :class:`FiniteLossCheck` stops training at the end of an epoch whose loss is NaN or infinite,
  naming the epoch and the first bad step.
* :class:`RunGuard` keeps, in memory, the complete state at the end of the last completed epoch
  (the square model is tiny, so that costs microseconds), writes periodic checkpoints, and on a
  stop request rolls the trainer back to that state. A resumed run then repeats exactly what the
  uninterrupted run would have done; only the interrupted epoch's partial work is redone.
"""
from __future__ import annotations

import math
import signal
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

from squareseq.errors import SquareseqError
from squareseq.training import checkpoint as ckpt
from squareseq.training.loop import Callback, FitState

__all__ = ["NonFiniteLossError", "TrainingInterrupted", "SignalStop", "FiniteLossCheck", "RunGuard"]


class NonFiniteLossError(SquareseqError):
    """Training produced a NaN or infinite loss (or overflowed); names the epoch and step."""

    def __init__(self, message: str, epoch: int, step: Optional[int] = None):
        super().__init__(message)
        self.epoch = epoch
        self.step = step


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on SIGINT or SIGTERM after finishing its current step.

    Attributes:
        signum: the signal received.
        epochs_completed: epochs whose results were kept (the trainer holds their state).
    """

    def __init__(self, signum: int, epochs_completed: int):
        super().__init__(f"interrupted by {signal.Signals(signum).name} after {epochs_completed} completed epoch(s)")
        self.signum = signum
        self.epochs_completed = epochs_completed

    @property
    def exit_code(self) -> int:
        """The conventional shell code: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum


class SignalStop:
    """Context manager: while active, SIGINT and SIGTERM set :attr:`signum` instead of killing the
    process. A second signal raises :class:`KeyboardInterrupt` at once (for a step that hangs).
    A signal the process ignores (``nohup``, a background job of a script) stays ignored.
    Installs nothing outside the main thread; restores the previous handlers on exit."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: Optional[int] = None
        self._previous: Dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> "SignalStop":
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                if signal.getsignal(sig) is not signal.SIG_IGN:
                    self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


class FiniteLossCheck(Callback):
    """Raises :class:`NonFiniteLossError` at the end of an epoch whose training or validation loss
    is not finite. Keeps the batch losses of the epoch (no sync per step) to name the first bad
    step."""

    def __init__(self) -> None:
        self._batch_losses: List[torch.Tensor] = []

    def on_epoch_start(self, loop: FitState) -> None:
        self._batch_losses = []

    def on_batch_end(self, loop: FitState, batch: int, n_batches: int, loss: torch.Tensor) -> None:
        self._batch_losses.append(loss)

    def on_epoch_end(self, loop: FitState, logs: Dict[str, Any]) -> None:
        loss, val_loss = logs.get("loss"), logs.get("val_loss")
        if loss is not None and not math.isfinite(loss):
            losses = torch.stack([v.reshape(()) for v in self._batch_losses]).cpu() if self._batch_losses \
                else torch.tensor([loss])
            finite = torch.isfinite(losses)
            step = int((~finite).nonzero()[0, 0]) + 1 if self._batch_losses and not bool(finite.all()) else None
            where = f"epoch {loop.epoch}, step {step} of {len(losses)}" if step else f"epoch {loop.epoch}"
            raise NonFiniteLossError(
                f"training loss became {losses[step - 1].item() if step else loss} at {where}: lower the learning "
                "rate or check the data", loop.epoch, step)
        if val_loss is not None and not math.isfinite(val_loss):
            raise NonFiniteLossError(
                f"validation loss became {val_loss} at epoch {loop.epoch}: lower the learning rate or check the "
                "data", loop.epoch)
        self._batch_losses = []


class RunGuard(Callback):
    """Keeps the trainer's state at the last epoch boundary, checkpoints every ``every`` epochs,
    and stops cleanly when ``signals`` received a signal.

    Args:
        trainer: a :class:`~squareseq.stepbystep.StepByStep` (anything with ``checkpoint_state``
            and ``restore_state``).
        path: where periodic checkpoints go (None: none are written).
        every: checkpoint every this many epochs (0: never).
        extra: plain data added to every checkpoint (the run's configuration).
        signals: a :class:`SignalStop` whose signal ends training after the current step.
    """

    def __init__(self, trainer: Any, path: Optional[Path] = None, every: int = 0,
                 extra: Optional[Dict[str, Any]] = None, signals: Optional[SignalStop] = None):
        self.trainer = trainer
        self.path = Path(path) if path is not None else None
        self.every = every
        self.extra = dict(extra or {})
        self.signals = signals
        self.last_good: Optional[Dict[str, Any]] = None
        self.epoch = 0  # the epoch running now (1-based), 0 before the first
        self.step = 0  # steps finished in the running epoch

    @property
    def epochs_completed(self) -> int:
        return int(self.last_good["epoch"]) if self.last_good is not None else 0

    def _check_signal(self) -> None:
        if self.signals is not None and self.signals.signum is not None:
            raise TrainingInterrupted(self.signals.signum, self.epochs_completed)

    def on_fit_start(self, loop: FitState) -> None:
        self.last_good = self.trainer.checkpoint_state(epoch=loop.epoch)
        self._check_signal()

    def on_epoch_start(self, loop: FitState) -> None:
        self.epoch, self.step = loop.epoch, 0

    def on_batch_end(self, loop: FitState, batch: int, n_batches: int, loss: torch.Tensor) -> None:
        self.step = batch + 1
        self._check_signal()

    def on_epoch_end(self, loop: FitState, logs: Dict[str, Any]) -> None:
        self.last_good = self.trainer.checkpoint_state(epoch=loop.epoch)
        if self.path is not None and self.every and loop.epoch % self.every == 0:
            self.save()
        self._check_signal()

    def restore(self) -> None:
        """Puts the trainer back in the state of the last completed epoch (and its RNG states)."""
        if self.last_good is not None:
            self.trainer.restore_state(self.last_good)

    def save(self, path: Optional[Path] = None) -> None:
        """Writes the last completed epoch's state (never a half-trained or diverged one)."""
        target = Path(path) if path is not None else self.path
        if target is None or self.last_good is None:
            return
        ckpt.save(target, {**self.extra, **self.last_good})
