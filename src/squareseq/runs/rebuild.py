"""Finishing and rebuilding a run folder: the figures, replays and ``report.html`` of a run,
after training (:func:`finish_run`; ``squareseq train`` draws the same steps while its record says
``"drawing"``, see :mod:`squareseq.runs.record`) or from a finished run
folder without retraining (:func:`redraw_run`, what ``squareseq plot RUN_DIR`` calls), and the
model of a checkpoint (:func:`load_model`).

The run layer: this module may import everything below it, the figure set
(:mod:`squareseq.figures.run_figures`), the page (:mod:`squareseq.runs.page`), ``config``,
``rundata``, ``checkpoint`` and ``inference``; torch and the data load when a run is rebuilt.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from squareseq.errors import SquareseqError
from squareseq.figures.run_figures import (
    SKIPPED_KEY,
    FigureProgress,
    PathLike,
    Step,
    figure_steps,
    replay_skip_reason,
    run_steps,
    skipped_figures,
)
from squareseq.runs.page import read_metrics, write_report

if TYPE_CHECKING:
    from torch import nn

__all__ = ["finish_run", "load_model", "redraw_run"]


def _with_report(run_dir: Path, model: nn.Module, replays: Optional[str], steps: List[Step],
                 progress: Optional[FigureProgress]) -> List[Path]:
    """Runs ``steps``, then writes ``report.html`` saying why ``model``'s run lacks what it lacks
    (``replays``: why it has no replays, or None)."""
    steps = steps + [("report.html", lambda: write_report(run_dir, skipped=skipped_figures(model, replays)))]
    return run_steps(steps, progress)


def finish_run(run_dir: PathLike, model: nn.Module, train_data, test_data, history, snapshots=None,
               animation: bool = True, dpi: int = 100, *, task: str = "direction",
               progress: Optional[FigureProgress] = None) -> List[Path]:
    """After training: saves ``snapshots.pt`` (when given), writes every figure and the GIFs, then
    ``report.html``. ``metrics.json`` must already be in ``run_dir``. Returns the paths written;
    the arguments are :func:`~squareseq.figures.run_figures.write_figures`'s."""
    from squareseq.runs.record import figure_phase_steps

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_steps(figure_phase_steps(run_dir, model, train_data, test_data, history, snapshots, animation, task,
                                        dpi), progress)


def load_model(checkpoint: Dict[str, Any]) -> nn.Module:
    """Rebuilds the model of a squareseq checkpoint from its ``model_config`` and weights."""
    from squareseq.runs.inference import model_from_checkpoint

    return model_from_checkpoint(checkpoint)


def redraw_run(run_dir: PathLike, animation: bool = True, dpi: int = 100, *,
               progress: Optional[FigureProgress] = None) -> List[Path]:
    """Redraws every figure, the GIFs (from ``snapshots.pt``, if the run kept it) and
    ``report.html`` of a finished run, without retraining.

    Reads ``checkpoint.pt`` (the model and its stored configuration, validated), ``metrics.json``
    (the losses) and rebuilds the data from the run's configuration (generated squares from their seeds, or the
    run's data file). ``progress`` is told about each file as it is drawn (see
    :data:`~squareseq.figures.run_figures.FigureProgress`).
    """
    from squareseq.figures.replay import Snapshots
    from squareseq.runs.data import build_data
    from squareseq.runs.inference import stored_config
    from squareseq.training import checkpoint as ckpt

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SquareseqError(f"run folder not found: {run_dir}")
    metrics = read_metrics(run_dir)
    saved = ckpt.load(run_dir / "checkpoint.pt")
    model = load_model(saved)
    config = stored_config(saved, str(run_dir / "checkpoint.pt"))
    data = build_data(config)
    history = {"losses": metrics.get("losses", []), "val_losses": metrics.get("val_losses", [])}
    snapshots = None
    if animation and (run_dir / "snapshots.pt").exists():
        snapshots = Snapshots.load(run_dir / "snapshots.pt")
    replays = replay_skip_reason(model, animation)
    if replays is None and snapshots is None:  # why training kept none, as it recorded it
        replays = (metrics.get(SKIPPED_KEY) or {}).get("replays") or "the run folder holds no snapshots.pt"
    steps = figure_steps(run_dir, model, data.figure_train, data.figure_test, history, snapshots, animation, dpi,
                         config.task)
    return _with_report(run_dir, model, replays, steps, progress)
