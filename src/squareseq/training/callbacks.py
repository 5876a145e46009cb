"""Callbacks for the fit loop: progress bar, learning-rate schedulers, early stopping.

Where the others live, and the order every event reaches them in ``StepByStep.train`` (the order
matters: each one sees what the ones before it did at the same event):

1. the fast path's optimizer sync (:mod:`squareseq.training.fastpath`), so everyone after it sees a current
   ``torch.optim`` state;
2. :class:`~squareseq.training.guard.FiniteLossCheck`, so a NaN epoch raises before a scheduler steps on it
   or a checkpoint keeps it;
3. learning-rate schedulers (:class:`LRSchedulerCallback`), in the order they were set;
4. the user's callbacks, in the order they were added (``add_callback``); ``run_experiment`` adds
   the progress bar, then the replay's :class:`~squareseq.figures.snapshots.SnapshotRecorder`, then the
   :class:`~squareseq.training.guard.RunGuard` (signals and checkpoints) last, so a checkpoint is written
   after everything else has seen the epoch.
"""
from __future__ import annotations

import math
import sys
from typing import TYPE_CHECKING, Any, Dict, List, Optional

import torch
from torch import optim

from squareseq.training.loop import Callback, FitState

if TYPE_CHECKING:
    from tqdm.auto import tqdm

__all__ = ["ProgressBar", "LRSchedulerCallback", "EarlyStopping", "is_batch_scheduler"]

# Schedulers the tutorial steps once per mini-batch instead of once per epoch.
_BATCH_SCHEDULERS = (
    optim.lr_scheduler.CyclicLR,
    optim.lr_scheduler.OneCycleLR,
    optim.lr_scheduler.CosineAnnealingWarmRestarts,
)


def is_batch_scheduler(scheduler: Any) -> bool:
    """Whether the tutorial would step ``scheduler`` per mini-batch (True) or per epoch."""
    return isinstance(scheduler, _BATCH_SCHEDULERS)


class ProgressBar(Callback):
    """A tqdm bar over epochs showing the latest losses, then a second one over the files of the
    figures phase (:meth:`on_figure`); silent when stderr is not a terminal.

    ``disable``: True hides both bars, False shows them, None (the default) shows them only
    when stderr is a terminal. ``squareseq plot`` uses :meth:`on_figure` alone, without a fit.
    """

    def __init__(self, disable: Optional[bool] = None, desc: str = "train"):
        self.disable = disable
        self.desc = desc
        self._bar: Optional[tqdm] = None
        self._figures: Optional[tqdm] = None

    def _disabled(self) -> bool:
        return self.disable if self.disable is not None else not sys.stderr.isatty()

    def on_fit_start(self, loop: FitState) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(
            total=loop.n_epochs, initial=loop.epoch, desc=self.desc, unit="epoch",
            disable=self._disabled(), dynamic_ncols=True, leave=True,
        )

    def on_epoch_end(self, loop: FitState, logs: Dict[str, Any]) -> None:
        if self._bar is None:
            return
        postfix = {"loss": f"{logs['loss']:.4f}"}
        if logs.get("val_loss") is not None:
            postfix["val_loss"] = f"{logs['val_loss']:.4f}"
        self._bar.set_postfix(postfix, refresh=False)
        self._bar.update(1)

    def on_fit_end(self, loop: FitState) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def on_figure(self, done: int, total: int, name: str) -> None:
        """A :data:`squareseq.figures.run_figures.FigureProgress`: a "drawing figures" bar that advances per
        file written and names the file being drawn; it closes after the last file."""
        if self._figures is None:
            if done >= total:
                return
            from tqdm.auto import tqdm

            self._figures = tqdm(total=total, desc="drawing figures", unit="file", disable=self._disabled(),
                                 dynamic_ncols=True, leave=True)
        bar = self._figures
        bar.total, bar.n = total, done
        bar.set_postfix_str(name)  # shown at once: the file now drawn may take seconds
        if done >= total:
            bar.close()
            self._figures = None


class LRSchedulerCallback(Callback):
    """Steps a learning-rate scheduler per batch or per epoch and records the learning rates.

    Per-epoch ``ReduceLROnPlateau`` steps on the validation loss. Per-batch
    ``CosineAnnealingWarmRestarts`` steps to ``epoch + batch / n_batches`` with the 1-based epoch,
    as the tutorial does.
    """

    def __init__(self, scheduler: Any, per_batch: Optional[bool] = None,
                 learning_rates: Optional[List[List[float]]] = None):
        self.scheduler = scheduler
        self.per_batch = is_batch_scheduler(scheduler) if per_batch is None else per_batch
        self.learning_rates = learning_rates if learning_rates is not None else []

    def _record(self) -> None:
        self.learning_rates.append([g["lr"] for g in self.scheduler.optimizer.param_groups])

    def on_batch_end(self, loop: FitState, batch: int, n_batches: int, loss: torch.Tensor) -> None:
        if not self.per_batch:
            return
        if isinstance(self.scheduler, optim.lr_scheduler.CosineAnnealingWarmRestarts):
            self.scheduler.step(loop.epoch + batch / n_batches)
        else:
            self.scheduler.step()
        self._record()

    def on_epoch_end(self, loop: FitState, logs: Dict[str, Any]) -> None:
        if self.per_batch:
            return
        if isinstance(self.scheduler, optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(logs["val_loss"])
        else:
            self.scheduler.step()
        self._record()


class EarlyStopping(Callback):
    """Stops when the monitored loss has not improved by ``min_delta`` for ``patience`` epochs.

    Keeps what a resumed run needs to stop where an uninterrupted one would (:meth:`state_dict`,
    which ``StepByStep`` checkpoints): the best value, the epochs waited since, the best epoch
    (1-based, None before the first) and the epoch training stopped at (None while it runs on).
    """

    def __init__(self, patience: int = 10, min_delta: float = 0.0, monitor: str = "val_loss"):
        self.patience, self.min_delta, self.monitor = patience, min_delta, monitor
        self.best = math.inf
        self.wait = 0
        self.best_epoch: Optional[int] = None
        self.stopped_epoch: Optional[int] = None

    @property
    def stopped(self) -> bool:
        """Whether training has stopped on patience (a resumed run then trains no further)."""
        return self.stopped_epoch is not None

    def on_epoch_end(self, loop: FitState, logs: Dict[str, Any]) -> None:
        value = logs.get(self.monitor)
        if value is None:
            return
        if value < self.best - self.min_delta:
            self.best, self.wait = value, 0
            self.best_epoch = int(logs.get("epoch", loop.epoch))
        else:
            self.wait += 1
            if self.wait >= self.patience:
                loop.stop = True
                self.stopped_epoch = int(logs.get("epoch", loop.epoch))

    def state_dict(self) -> Dict[str, Any]:
        """Plain data: ``patience``, ``best``, ``wait``, ``best_epoch``, ``stopped_epoch``."""
        return {"patience": self.patience, "best": float(self.best), "wait": self.wait,
                "best_epoch": self.best_epoch, "stopped_epoch": self.stopped_epoch}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Takes back what :meth:`state_dict` returned (``patience`` stays this object's)."""
        self.best = float(state["best"])
        self.wait = int(state["wait"])
        self.best_epoch = None if state.get("best_epoch") is None else int(state["best_epoch"])
        self.stopped_epoch = None if state.get("stopped_epoch") is None else int(state["stopped_epoch"])

    def reset(self) -> None:
        """Back to the state before any epoch."""
        self.best, self.wait, self.best_epoch, self.stopped_epoch = math.inf, 0, None, None
