"""Runs that fail or get interrupted lose nothing: signals, non-finite losses, epoch snapshots.

* :class:`SignalStop` turns SIGINT/SIGTERM into a request to stop after the current step (or at
  once outside training), and keeps further signals from interrupting the writes that follow.
* :class:`FiniteLossCheck` stops training at the end of an epoch whose loss is NaN or infinite,
  naming the epoch and the first bad step.
* :class:`RunGuard` keeps, in memory, the complete state at the end of the last completed epoch
  (the square model is tiny, so that costs microseconds), writes periodic checkpoints, and on a
  stop request rolls the trainer back to that state. A resumed run then repeats exactly what the
  uninterrupted run would have done; only the interrupted epoch's partial work is redone. Under
  early stopping it also keeps the best epoch's state (:attr:`RunGuard.best`), inside every
  checkpoint and as a checkpoint file of its own.
"""
from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import torch

from squareseq.errors import SquareseqError
from squareseq.training import checkpoint as ckpt
from squareseq.training.loop import Callback, FitState

__all__ = ["NonFiniteLossError", "TrainingInterrupted", "SignalStop", "FiniteLossCheck", "RunGuard", "interrupt",
           "signal_number"]


class NonFiniteLossError(SquareseqError):
    """Training produced a NaN or infinite loss (or overflowed); names the epoch and step."""

    def __init__(self, message: str, epoch: int, step: Optional[int] = None):
        super().__init__(message)
        self.epoch = epoch
        self.step = step


class TrainingInterrupted(KeyboardInterrupt):
    """A run stopped on SIGINT or SIGTERM, after saving what it had.

    Attributes:
        signum: the signal received.
        epochs_completed: epochs whose results were kept (the trainer holds their state).
        phase: when the signal came: ``"setup"`` (before training: the run folder is as it was),
            ``"training"`` (training or evaluating: the last completed epoch is kept) or
            ``"figures"`` (training finished; some figures or the report are missing).
    """

    def __init__(self, signum: int, epochs_completed: int, phase: str = "training"):
        name = signal.Signals(signum).name
        if phase == "setup":
            message = f"interrupted by {name} before training started"
        elif phase == "figures":
            message = f"interrupted by {name} while drawing the figures, after all {epochs_completed} epoch(s)"
        else:
            message = f"interrupted by {name} after {epochs_completed} completed epoch(s)"
        super().__init__(message)
        self.signum = signum
        self.epochs_completed = epochs_completed
        self.phase = phase

    @property
    def exit_code(self) -> int:
        """The conventional shell code: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum


def interrupt(signum: int) -> KeyboardInterrupt:
    """A :class:`KeyboardInterrupt` that remembers its signal (``.signum``)."""
    exc = KeyboardInterrupt()
    exc.signum = signum  # type: ignore[attr-defined]
    return exc


class SignalStop:
    """Context manager: while active, SIGINT and SIGTERM stop the run without losing what it has.

    * While :attr:`deferred` (training), the first signal only sets :attr:`signum`, and training
      stops after its current step; a second one raises :class:`KeyboardInterrupt` at once (for a
      step that hangs). Otherwise (data preparation, evaluation, drawing), the first signal raises
      :class:`KeyboardInterrupt` (with ``.signum``) at once.
    * Once stopping has begun (:meth:`begin_stop`, or a signal raised), and inside
      :meth:`protected`, signals never raise: the writes that keep the run's state finish. Another
      signal is acknowledged on stderr; the third in all force-quits at once (exit 128 + signal),
      printing :attr:`kept` (what the run folder keeps).

    A signal the process ignores (``nohup``, a background job of a script) stays ignored.
    Installs nothing outside the main thread; restores the previous handlers on exit."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)
    #: The signal that force-quits (counting from the first).
    FORCE_QUIT_AT = 3

    def __init__(self, deferred: bool = True, kept: Optional[Callable[[], str]] = None) -> None:
        self.signum: Optional[int] = None
        self.count = 0
        self.deferred = deferred
        self.stopping = False
        self.kept = kept
        self._protected = 0
        self._previous: Dict[int, Any] = {}
        self._unraisable: Optional[Callable[[Any], Any]] = None

    def _handle(self, signum: int, frame: Any) -> None:
        self.count += 1
        if self.signum is None:
            self.signum = signum
        if self.stopping or self._protected:
            if self.count >= self.FORCE_QUIT_AT:
                kept = self.kept() if self.kept is not None else "files already written are whole"
                _say(f"squareseq: forced to quit by {signal.Signals(signum).name} while saving; {kept}")
                os._exit(128 + signum)
            if self.count > 1:
                _say("squareseq: still saving what the run has; one more signal quits without waiting")
            return
        if self.deferred and self.count == 1:
            return
        self.stopping = True
        raise interrupt(self.signum)

    def begin_stop(self) -> None:
        """From now on, signals never interrupt the process (the run is saving its state)."""
        self.stopping = True

    @contextlib.contextmanager
    def protected(self) -> Iterator[None]:
        """Signals received inside the block are only recorded (:meth:`check` acts on them after)."""
        self._protected += 1
        try:
            yield
        finally:
            self._protected -= 1

    def check(self) -> None:
        """Raises the :class:`KeyboardInterrupt` of a signal received but not acted on yet."""
        if self.signum is not None and not self.stopping:
            self.stopping = True
            raise interrupt(self.signum)

    def __enter__(self) -> "SignalStop":
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                if signal.getsignal(sig) is not signal.SIG_IGN:
                    self._previous[sig] = signal.signal(sig, self._handle)
            self._unraisable = sys.unraisablehook
            sys.unraisablehook = self._unraisable_hook
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
        if self._unraisable is not None:
            sys.unraisablehook, self._unraisable = self._unraisable, None

    def _unraisable_hook(self, unraisable: Any) -> None:
        """An interrupt this handler raised inside a finalizer (a weakref callback, ``__del__``)
        cannot propagate, and Python would print it as a traceback: it is dropped instead, since
        :attr:`signum` keeps the signal and the run acts on it at its next check."""
        if isinstance(unraisable.exc_value, KeyboardInterrupt) and self.signum is not None:
            return
        (self._unraisable or sys.__unraisablehook__)(unraisable)


def _say(line: str) -> None:
    """Writes ``line`` to stderr from a signal handler (no buffered I/O, which is not reentrant)."""
    try:
        os.write(2, (line + "\n").encode())
    except OSError:
        pass


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
        best_path: where the best epoch's checkpoint goes (under the trainer's early stopping),
            written with every checkpoint, before it; None: nowhere.
    """

    def __init__(self, trainer: Any, path: Optional[Path] = None, every: int = 0,
                 extra: Optional[Dict[str, Any]] = None, signals: Optional[SignalStop] = None,
                 best_path: Optional[Path] = None):
        self.trainer = trainer
        self.path = Path(path) if path is not None else None
        self.every = every
        self.extra = dict(extra or {})
        self.signals = signals
        self.last_good: Optional[Dict[str, Any]] = None
        #: the complete state of the best epoch so far under the trainer's early stopping (else None)
        self.best: Optional[Dict[str, Any]] = None
        self.best_path = Path(best_path) if best_path is not None else None
        self._best_written: Optional[Dict[str, Any]] = None
        self.epoch = 0  # the epoch running now (1-based), 0 before the first
        self.step = 0  # steps finished in the running epoch
        self.saved_epoch: Optional[int] = None  # the epoch of the checkpoint last written to ``path``
        #: called once, before the first checkpoint is written (to retire the old run record)
        self.before_first_save: Optional[Callable[[], None]] = None

    @property
    def epochs_completed(self) -> int:
        return int(self.last_good["epoch"]) if self.last_good is not None else 0

    def _check_signal(self) -> None:
        if self.signals is not None and self.signals.signum is not None:
            self.signals.begin_stop()
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
        stopping = getattr(self.trainer, "early_stopping", None)
        if stopping is not None and stopping.best_epoch == loop.epoch:
            self.best = self.last_good
        if self.path is not None and self.every and loop.epoch % self.every == 0:
            self.save()
        self._check_signal()

    def restore(self) -> None:
        """Puts the trainer back in the state of the last completed epoch (and its RNG states)."""
        if self.last_good is not None:
            self.trainer.restore_state(self.last_good)

    def restore_best(self) -> Optional[int]:
        """Loads the best epoch's weights into the trainer's model (nothing else changes: the
        trainer's histories, optimizer and :attr:`last_good` stay the last epoch's); returns that
        epoch, or None where no best epoch is kept."""
        if self.best is None:
            return None
        self.trainer.model.load_state_dict(self.best["model_state_dict"])
        return int(self.best["epoch"])

    def save(self, path: Optional[Path] = None) -> None:
        """Writes the last completed epoch's state (never a half-trained or diverged one)."""
        target = Path(path) if path is not None else self.path
        if target is None or self.last_good is None:
            return
        if self.before_first_save is not None:
            hook, self.before_first_save = self.before_first_save, None
            hook()
        with self.signals.protected() if self.signals is not None else contextlib.nullcontext():
            self._save_best()
            kept = {"best": self.best} if self.best is not None else {}
            ckpt.save(target, {**self.extra, **self.last_good, **kept})
        self.saved_epoch = self.epochs_completed

    def _save_best(self) -> None:
        """Writes the best epoch's checkpoint to :attr:`best_path` when it changed since last written."""
        if self.best_path is None or self.best is None or self.best is self._best_written:
            return
        epoch = int(self.best["epoch"])
        # a run resumed after its best epoch lists later epochs, which this file's own epoch precedes
        resumed = [e for e in self.extra.get("resumed_from", []) if e <= epoch]
        ckpt.save(self.best_path, {**self.extra, "resumed_from": resumed, **self.best})
        self._best_written = self.best


def signal_number(exc: BaseException, signals: Optional[SignalStop], default: int = signal.SIGINT) -> int:
    """The signal that stopped a run: the one ``exc`` carries, else the one ``signals`` caught, else
    ``default`` (a plain ``KeyboardInterrupt``: Ctrl-C)."""
    return getattr(exc, "signum", None) or (signals.signum if signals is not None else None) or default
