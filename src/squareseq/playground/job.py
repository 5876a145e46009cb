"""One page's training job: squareseq's own trainer (:func:`~squareseq.runs.experiment.build_trainer`),
driven one epoch at a time so the server can pause it, step it, change its learning rate,
interleave it fairly with other pages' jobs and cancel it mid-epoch.

Every method that trains or computes runs in a worker thread (the server never calls them on its
event loop); a job is used by one page, so by one thread at a time.
"""
from __future__ import annotations

import io
import json
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import Any, Dict, Optional

import torch

from squareseq.config import RunConfig
from squareseq.playground.records import RecordMaker
from squareseq.runs.data import build_data
from squareseq.runs.experiment import build_trainer, check_setup, evaluate, resolved_config
from squareseq.runs.folder import CHECKPOINT, HISTORY, METRICS, write_history_csv, write_json
from squareseq.training.loop import Callback, FitState

__all__ = ["JobCancelled", "TrainingJob"]


class JobCancelled(Exception):
    """Raised inside an epoch when the job's page went away or reset: the job is dropped."""


class _CancelCheck(Callback):
    """Stops the running epoch at its next mini-batch once the job is cancelled."""

    def __init__(self, cancelled: threading.Event) -> None:
        self.cancelled = cancelled

    def on_batch_end(self, loop: FitState, batch: int, n_batches: int, loss: torch.Tensor) -> None:
        if self.cancelled.is_set():
            raise JobCancelled("cancelled")


class TrainingJob:
    """Trains ``config`` one epoch per :meth:`step` and describes each epoch for the page's viewer.

    ``config`` is checked already (:func:`~squareseq.playground.settings.parse_settings`). The
    first :meth:`step` seeds training with ``config.fit_seed`` as ``squareseq train`` does; later
    ones continue from the random state, so the run is the one the CLI trains.
    """

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.cancelled = threading.Event()
        self.trainer: Any = None
        self.data: Any = None
        self.records: Optional[RecordMaker] = None
        self.accuracy: Optional[float] = None
        #: an epoch is being trained now (in a worker thread)
        self.busy = False

    @property
    def epoch(self) -> int:
        return int(self.trainer.total_epochs) if self.trainer is not None else 0

    @property
    def finished(self) -> bool:
        return self.epoch >= self.config.epochs

    def prepare(self) -> Dict[str, Any]:
        """Builds data, model and optimizer; returns the viewer's ``meta`` message and epoch 0's record."""
        data = build_data(self.config)
        self.config = resolved_config(self.config, data)
        self.trainer, self.data = build_trainer(self.config, data, threads=1)
        check_setup(self.trainer, self.data)
        self.trainer.add_callback(_CancelCheck(self.cancelled))
        self.records = RecordMaker(self.trainer.model, self.data, self.config)
        return {"meta": self.records.meta(), "epoch": self._record()}

    def step(self) -> Dict[str, Any]:
        """Trains one more epoch and returns its record for the viewer."""
        if self.cancelled.is_set():
            raise JobCancelled("cancelled")
        self.busy = True
        try:
            self.trainer.train(1, seed=self.config.fit_seed if self.epoch == 0 else None)
            return self._record()
        finally:
            self.busy = False

    def _record(self) -> Dict[str, Any]:
        assert self.records is not None  # prepare() made it
        model = self.trainer.model
        self.accuracy = float(evaluate(model, self.data.test, self.data.n_classes)["accuracy"])
        losses, val_losses = self.trainer.losses, self.trainer.val_losses
        return self.records.epoch(self.epoch, losses[-1] if losses else None,
                                  val_losses[-1] if val_losses else None, self.accuracy, self.lr)

    @property
    def lr(self) -> float:
        return float(self.trainer.optimizer.param_groups[0]["lr"]) if self.trainer is not None else self.config.lr

    def set_lr(self, lr: float) -> None:
        """The optimizer's learning rate from the next epoch on (the page allows it while paused)."""
        for group in self.trainer.optimizer.param_groups:
            group["lr"] = lr

    def archive(self) -> bytes:
        """The run as a zip of a run folder squareseq reads (``squareseq evaluate RUN``):
        ``checkpoint.pt`` (with the run's configuration), ``history.csv`` and ``metrics.json``."""
        with tempfile.TemporaryDirectory(prefix="squareseq-playground-") as tmp:
            run_dir = Path(tmp) / "run"
            run_dir.mkdir()
            self.trainer.save_checkpoint(run_dir / CHECKPOINT, extra={"run_config": self.config.to_dict(),
                                                                      "resumed_from": []})
            write_history_csv(run_dir / HISTORY, self.trainer.losses, self.trainer.val_losses)
            test = evaluate(self.trainer.model, self.data.test, self.data.n_classes)
            write_json(run_dir / METRICS, {
                "status": "complete" if self.finished else "interrupted",
                "message": "trained in squareseq playground",
                "test": test, "validation": "test set (the book's way)",
                "epochs": self.epoch, "epochs_completed": self.epoch,
                "losses": list(self.trainer.losses), "val_losses": list(self.trainer.val_losses),
                "learning_rates": [float(g[0]) for g in self.trainer.learning_rates] if self.trainer.learning_rates
                else [],
                "config": self.config.to_dict(), "model": self.trainer.model.config(),
                "data": self.data.summary, "class_names": self.data.class_names,
                "versions": {"torch": torch.__version__},
            })
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
                for path in sorted(run_dir.iterdir()):
                    zf.write(path, f"playground-run/{path.name}")
                zf.writestr("playground-run/settings.json", json.dumps(self.config.to_dict(), indent=2))
            return buffer.getvalue()
