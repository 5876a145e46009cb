"""The run record: what ``metrics.json`` says in each phase of a run, so that it is true whenever
the process stops (by its own failure, a signal, a full disk).

* training: no ``metrics.json`` (a folder without one is not a finished run);
* the run stopped (a signal, a NaN loss, an error): ``"status": "interrupted"`` or ``"failed"``,
  ``"message"``, and the last completed epoch's checkpoint and history;
* training finished, figures being drawn: ``"status": "drawing"``, the results, and under
  :data:`MISSING_KEY` every file still to draw (``report.html`` last); a drawing that is stopped
  or fails rewrites it as ``"interrupted"``/``"failed"`` naming the files it did not write (a
  resume, or ``squareseq plot``, draws them and completes the record);
* everything written: ``"status": "complete"``, written last.

The drawing phase renames each file into place whole and makes them all durable in one pass
(:mod:`squareseq.figures.durable`) before any record says they are there: before
``"complete"``, and before an ``"interrupted"``/``"failed"`` record that names the files still missing.

While the record is written, signals never interrupt it (see
:class:`~squareseq.training.guard.SignalStop`).
"""
from __future__ import annotations

import contextlib
import json
import signal
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch

from squareseq.figures.durable import SyncBatch, deferred_sync
from squareseq.figures.run_figures import (
    FigureProgress,
    Step,
    empty_sample_reason,
    figure_steps,
    replay_skip_reason,
    skipped_figures,
)
from squareseq.runs.folder import CHECKPOINT, HISTORY, METRICS, write_history_csv, write_json
from squareseq.runs.page import write_report
from squareseq.training.guard import NonFiniteLossError, RunGuard, SignalStop, TrainingInterrupted, signal_number

__all__ = ["MISSING_KEY", "STATUSES", "draw_run", "drawing_record", "figure_phase_steps", "kept_message",
           "record_drawn", "stop_failed", "stop_interrupted", "stop_record", "write_results"]

#: The key of ``metrics.json`` that lists the files a run has not written (yet).
MISSING_KEY = "missing_figures"
#: Every ``"status"`` a run record can hold.
STATUSES = ("complete", "drawing", "interrupted", "failed")


def _protected(signals: Optional[SignalStop]):
    return signals.protected() if signals is not None else contextlib.nullcontext()


def stop_record(trainer: Any, guard: RunGuard, config: Any, run_dir: Optional[Path], status: str, message: str,
                signals: Optional[SignalStop] = None) -> None:
    """Rolls the trainer back to the last completed epoch and, with a run folder, writes that
    state's checkpoint, history and a ``metrics.json`` marked with ``status`` (no signal
    interrupts these writes)."""
    if signals is not None:
        signals.begin_stop()
    guard.restore()
    if run_dir is None:
        return
    run_dir = Path(run_dir)
    guard.save(run_dir / CHECKPOINT)
    write_history_csv(run_dir / HISTORY, trainer.losses, trainer.val_losses)
    write_json(run_dir / METRICS, {
        "status": status,
        "message": message,
        "epochs": trainer.total_epochs,
        "epochs_completed": trainer.total_epochs,
        "losses": list(trainer.losses),
        "val_losses": list(trainer.val_losses),
        "config": config.to_dict(),
        "resumed_from": guard.extra.get("resumed_from", []),
        "versions": {"torch": torch.__version__},
    })



def stop_interrupted(trainer: Any, guard: RunGuard, config: Any, run_dir: Optional[Path], exc: BaseException,
                     signals: Optional[SignalStop], default: int = signal.SIGINT) -> TrainingInterrupted:
    """Records the run as interrupted at its last completed epoch (:func:`stop_record`) and
    returns the error to raise (the signal's, see :func:`~squareseq.training.guard.signal_number`)."""
    interrupted = TrainingInterrupted(signal_number(exc, signals, default), guard.epochs_completed)
    stop_record(trainer, guard, config, run_dir, "interrupted", str(interrupted), signals)
    return interrupted


def stop_failed(trainer: Any, guard: RunGuard, config: Any, run_dir: Optional[Path], fault: NonFiniteLossError,
                signals: Optional[SignalStop]) -> NonFiniteLossError:
    """Records the run as failed at its last good epoch (:func:`stop_record`) and returns the error
    to raise, which names that epoch."""
    failed = NonFiniteLossError(f"{fault}; kept epoch {guard.epochs_completed}, the last good one", fault.epoch,
                                fault.step)
    stop_record(trainer, guard, config, run_dir, "failed", str(failed), signals)
    return failed

def write_results(trainer: Any, guard: RunGuard, run_dir: Path, record: Dict[str, Any],
                  signals: Optional[SignalStop] = None) -> None:
    """The finished training's checkpoint, history, then ``record`` as ``metrics.json``; signals
    received meanwhile wait until these files are whole."""
    with _protected(signals):
        guard.save(run_dir / CHECKPOINT)
        write_history_csv(run_dir / HISTORY, trainer.losses, trainer.val_losses)
        write_json(run_dir / METRICS, record)


def figure_phase_steps(run_dir: Path, model: Any, train_data: Any, test_data: Any, history: Any, snapshots: Any,
                       animation: bool, task: str, dpi: int = 100, *, class_names: Optional[List[str]] = None,
                       data_file: Optional[str] = None, gif: bool = False) -> List[Step]:
    """The files a run writes after training (:func:`squareseq.runs.rebuild.finish_run`), as steps:
    ``snapshots.pt`` (when recorded), the figures and replays (``replay.json``; with ``gif`` the GIFs
    too), then ``report.html``. ``class_names``
    and ``data_file`` (None: generated squares) choose the figures, see
    :func:`~squareseq.figures.run_figures.figure_steps`."""
    recorded = snapshots is not None and len(snapshots) > 0
    replays = replay_skip_reason(model, animation)
    if replays is None and not recorded:
        replays = "no snapshots were recorded"
    elif replays is None:
        replays = empty_sample_reason(snapshots)
    steps: List[Step] = [("snapshots.pt", lambda: snapshots.save(run_dir / "snapshots.pt"))] if recorded else []
    steps += figure_steps(run_dir, model, train_data, test_data, history, snapshots, animation, dpi, task,
                          class_names=class_names, data_file=data_file, gif=gif)
    skipped = skipped_figures(model, replays, data_file=data_file, class_names=class_names)
    steps.append(("report.html", lambda: write_report(run_dir, skipped=skipped)))
    return steps


def drawing_record(record: Dict[str, Any], steps: List[Step]) -> Dict[str, Any]:
    """What ``metrics.json`` says while ``steps`` are drawn: ``record``'s results, ``"drawing"``,
    and every file of the phase under :data:`MISSING_KEY`."""
    return {**record, "status": "drawing", MISSING_KEY: [name for name, _ in steps]}


def draw_run(run_dir: Path, record: Dict[str, Any], steps: List[Step], progress: Optional[FigureProgress],
             signals: Optional[SignalStop] = None) -> None:
    """Writes ``steps`` while ``metrics.json`` says :func:`drawing_record` (written by the caller,
    see :func:`write_results`), then ``record`` (``"complete"``) last.

    Raises:
        TrainingInterrupted: a signal (``phase="figures"``); the record says ``"interrupted"``.
        OSError: a file could not be written (naming it); the record says ``"failed"``.
        Exception: whatever else a step raised; the record says ``"failed"``.
    """
    missing = [name for name, _ in steps]
    deferred = signals.deferred if signals is not None else False
    batch: Optional[SyncBatch] = None
    try:
        if signals is not None:
            signals.check()  # a signal that came while the record was written
            signals.deferred = False  # drawing takes seconds: a signal stops it at once
        with deferred_sync() as batch:  # each file renamed into place whole; all made durable at the end
            for done, (name, write) in enumerate(steps):
                if progress is not None:
                    progress(done, len(steps), name)
                write()
                missing.remove(name)
            if signals is not None:
                signals.deferred = deferred
            if progress is not None:
                progress(len(steps), len(steps), "")
            with _protected(signals):
                batch.sync()  # one pass, before the record says the files are there
                write_json(run_dir / METRICS, record)
    except KeyboardInterrupt as exc:
        stopped = TrainingInterrupted(signal_number(exc, signals), int(record.get("epochs_completed", 0)),
                                      phase="figures")
        _record_missing(run_dir, record, "interrupted", str(stopped), missing, signals, batch)
        raise stopped from None
    except OSError as exc:
        if exc.filename is None and missing:
            exc = OSError(exc.errno, exc.strerror or str(exc), str(run_dir / missing[0]))
        _record_missing(run_dir, record, "failed", f"{exc.strerror or exc} ({exc.filename})", missing, signals,
                        batch)
        raise exc from None
    except Exception as exc:
        _record_missing(run_dir, record, "failed", f"{type(exc).__name__}: {exc}", missing, signals, batch)
        raise
    finally:
        if signals is not None:
            signals.deferred = deferred


def _record_missing(run_dir: Path, record: Dict[str, Any], status: str, message: str, missing: List[str],
                    signals: Optional[SignalStop], batch: Optional[SyncBatch] = None) -> None:
    """Makes the files written so far durable (``batch``), then rewrites ``metrics.json`` as
    ``status``, naming the files not written; when even that fails (the disk is full), the
    ``"drawing"`` record already there says they are missing."""
    if signals is not None:
        signals.begin_stop()
    try:
        if batch is not None:
            batch.sync()
        write_json(run_dir / METRICS, {**record, "status": status, "message": " ".join(message.split()),
                                       MISSING_KEY: list(missing)})
    except OSError:
        pass


def record_drawn(run_dir: Path) -> None:
    """After ``squareseq plot`` redrew every file of a run whose drawing stopped (its record lists
    :data:`MISSING_KEY`), the record says ``"complete"``; any other record stays as it is."""
    path = Path(run_dir) / METRICS
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if not isinstance(record, dict) or MISSING_KEY not in record:
        return
    write_json(path, {**{k: v for k, v in record.items() if k not in (MISSING_KEY, "message")},
                      "status": "complete"})


def kept_message(run_dir: Optional[Path], guard: RunGuard) -> Callable[[], str]:
    """What a forced quit leaves, for :attr:`SignalStop.kept`."""
    def kept() -> str:
        if run_dir is None:
            return "nothing was written"
        if guard.saved_epoch is None:
            return f"{run_dir} holds no checkpoint of this run (every file there is whole)"
        return (f"{run_dir} keeps the checkpoint of epoch {guard.saved_epoch} (every file there is whole); "
                f"continue with: squareseq train --resume {run_dir}")
    return kept
