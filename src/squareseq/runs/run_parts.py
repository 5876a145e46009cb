"""The parts of a run that one process and a torchrun group share: the run guard around training,
the record of a completed run, and the results and figures written at its end.

:func:`~squareseq.runs.experiment.run_experiment` and
:func:`~squareseq.runs.distributed_run.run_distributed` differ in how they train and evaluate (one
process, or shards reduced over ranks); what they keep and write is the same, so it is said once.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch

from squareseq.config import RunConfig, RunOptions
from squareseq.figures.run_figures import SKIPPED_KEY, replay_skip_reason, skipped_figures
from squareseq.runs.data import RunData
from squareseq.runs.folder import BEST, CHECKPOINT, METRICS, remove_stale_temporaries
from squareseq.runs.record import draw_run, drawing_record, figure_phase_steps, kept_message, write_results
from squareseq.stepbystep import StepByStep
from squareseq.training.guard import RunGuard, SignalStop

__all__ = ["BOOK_VALIDATION", "make_guard", "complete_record", "write_run"]

#: What ``metrics.json``'s ``"validation"`` says of a run without a validation split of its own.
BOOK_VALIDATION = "test set (the book's way)"


def make_guard(trainer: StepByStep, run_dir: Optional[Path], options: RunOptions, extra: Dict[str, Any],
               signals: Optional[SignalStop], resumed_best: Optional[Dict[str, Any]],
               guard_signals: Any = None) -> RunGuard:
    """The run guard (checkpoints, the best epoch, stops) for a run writing ``run_dir`` (None: this
    process writes nothing), added to ``trainer``'s callbacks. ``guard_signals`` is what the guard
    asks about signals (default ``signals``; a torchrun group's agreed stop)."""
    guard = RunGuard(trainer, run_dir / CHECKPOINT if run_dir is not None else None, options.checkpoint_every,
                     extra, signals if guard_signals is None else guard_signals,
                     best_path=run_dir / BEST if run_dir is not None else None)
    guard.saved_epoch = trainer.total_epochs if options.resume else None
    guard.best = resumed_best
    if run_dir is not None:
        remove_stale_temporaries(run_dir)
        # a resumed run's record stays true until its checkpoint is first replaced; from then on the
        # folder holds no results until this run ends (a resume that fails first loses nothing)
        guard.before_first_save = lambda: (run_dir / METRICS).unlink(missing_ok=True)
    if signals is not None:
        # from here on a signal stops the run where it can keep what it has (training: after the
        # step; drawing: at once); a second one while nothing is being written stops it at once
        signals.kept = kept_message(run_dir, guard)
        signals.deferred = True
    trainer.add_callback(guard)
    return guard


def complete_record(trainer: StepByStep, config: RunConfig, options: RunOptions, data: RunData,
                    test_metrics: Dict[str, Any], val_metrics: Optional[Dict[str, Any]], best_epoch: Optional[int],
                    resumed_from: List[int], train_seconds: float) -> Dict[str, Any]:
    """``metrics.json`` of a run that trained to its end and was evaluated."""
    stopping = trainer.early_stopping
    model = trainer.model
    return {
        "status": "complete",
        "test": test_metrics,
        **({"val": val_metrics} if val_metrics is not None else {}),
        "validation": "split" if data.val is not None else BOOK_VALIDATION,
        "best_epoch": best_epoch,
        "stopped_epoch": stopping.stopped_epoch if stopping is not None else None,
        "epochs": trainer.total_epochs,
        "epochs_completed": trainer.total_epochs,
        "losses": list(trainer.losses),
        "val_losses": list(trainer.val_losses),
        "config": config.to_dict(),
        "model": model.config(),  # type: ignore[operator]  # build_model's models have config()
        "data": data.summary,
        "class_names": data.class_names,
        "resumed_from": resumed_from,
        SKIPPED_KEY: skipped_figures(model, replay_skip_reason(model, options.animation, figures=options.figures),
                                     data_file=None if data.generated else config.data, class_names=data.class_names),
        "train_seconds": train_seconds,
        "versions": {"torch": torch.__version__},
    }


def write_run(trainer: StepByStep, guard: RunGuard, run_dir: Path, record: Dict[str, Any], options: RunOptions,
              config: RunConfig, data: RunData, recorder: Any, signals: Optional[SignalStop],
              progress: Optional[Callable[[int, int, str], None]] = None) -> None:
    """Writes a finished run's results into ``run_dir``: the checkpoint and ``metrics.json`` (last),
    and with ``options.figures`` the figures, replays and report, under a ``"drawing"`` record
    until they are all there (see :mod:`squareseq.runs.record`)."""
    if not options.figures:
        write_results(trainer, guard, run_dir, record, signals)
        return
    snapshots = recorder.snapshots if recorder is not None and len(recorder.snapshots) else None
    steps = figure_phase_steps(run_dir, trainer.model, data.figure_train,
                               data.figure_test if data.generated else data.test, trainer.history, snapshots,
                               options.animation, config.task, class_names=data.class_names, gif=options.gif,
                               data_file=None if data.generated else config.data)
    write_results(trainer, guard, run_dir, drawing_record(record, steps), signals)
    draw_run(run_dir, record, steps, progress, signals)
