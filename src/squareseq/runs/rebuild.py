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

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from squareseq.errors import SquareseqError
from squareseq.figures.run_figures import (
    ANIMATIONS,
    SKIPPED_KEY,
    FigureProgress,
    PathLike,
    Step,
    empty_sample_reason,
    figure_steps,
    replay_skip_reason,
    run_steps,
    skipped_figures,
)
from squareseq.options import is_int, is_number
from squareseq.runs.page import write_report

if TYPE_CHECKING:
    from torch import nn

__all__ = ["finish_run", "load_model", "redraw_run", "read_run_record", "MAX_RECORD_BYTES", "MAX_RECORD_DEPTH"]

#: The largest ``metrics.json`` :func:`read_run_record` reads (a million epochs of losses fit in 64 MB).
MAX_RECORD_BYTES = 64 * 2**20
#: The deepest nesting of lists and objects in a ``metrics.json`` (squareseq writes 3 levels).
MAX_RECORD_DEPTH = 8
#: The most classes a run record may list (tables and a confusion matrix are drawn from them).
MAX_RECORD_CLASSES = 1024


def _with_report(run_dir: Path, model: nn.Module, replays: Optional[str], steps: List[Step],
                 progress: Optional[FigureProgress], **data: Any) -> List[Path]:
    """Runs ``steps``, then writes ``report.html`` saying why ``model``'s run lacks what it lacks
    (``replays``: why it has no replays, or None; ``data``: ``data_file`` and ``class_names``)."""
    skipped = skipped_figures(model, replays, **data)
    steps = steps + [("report.html", lambda: write_report(run_dir, skipped=skipped))]
    return run_steps(steps, progress)


def finish_run(run_dir: PathLike, model: nn.Module, train_data, test_data, history, snapshots=None,
               animation: bool = True, dpi: int = 100, *, task: str = "direction",
               progress: Optional[FigureProgress] = None, class_names: Optional[List[str]] = None,
               data_file: Optional[str] = None, gif: bool = False) -> List[Path]:
    """After training: saves ``snapshots.pt`` (when given), writes every figure and the replay
    (``replay.json``, with ``gif`` the GIFs too), then
    ``report.html``. ``metrics.json`` must already be in ``run_dir``. Returns the paths written;
    the arguments are :func:`~squareseq.figures.run_figures.write_figures`'s."""
    from squareseq.runs.record import figure_phase_steps

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_steps(figure_phase_steps(run_dir, model, train_data, test_data, history, snapshots, animation, task,
                                        dpi, class_names=class_names, data_file=data_file, gif=gif), progress)


def load_model(checkpoint: Dict[str, Any]) -> nn.Module:
    """Rebuilds the model of a squareseq checkpoint from its ``model_config`` and weights."""
    from squareseq.runs.inference import model_from_checkpoint

    return model_from_checkpoint(checkpoint)


def _depth(value: Any) -> int:
    """How deeply lists and dicts nest in ``value`` (without recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _count(value: Any) -> bool:
    return is_int(value) and value >= 0


def _pairs_ok(counts: Any) -> bool:
    return isinstance(counts, list) and len(counts) <= MAX_RECORD_CLASSES and all(
        isinstance(c, list) and len(c) == 2 and all(_count(v) for v in c) and c[0] <= c[1] for c in counts)


def _matrix_ok(matrix: Any) -> bool:
    return isinstance(matrix, list) and len(matrix) <= MAX_RECORD_CLASSES and all(
        isinstance(row, list) and len(row) == len(matrix) and all(_count(v) for v in row) for row in matrix)


#: What each ``metrics.json`` entry that ``plot`` reads must be, and the test it must pass.
_RECORD_TYPES = {
    "status": ("a string", lambda v: isinstance(v, str)),
    "epochs": ("a count", _count),
    "losses": ("a list of numbers", lambda v: isinstance(v, list) and all(x is None or is_number(x) for x in v)),
    "val_losses": ("a list of numbers", lambda v: isinstance(v, list) and all(x is None or is_number(x) for x in v)),
    "test": ("an object", lambda v: isinstance(v, dict)),
    "test.accuracy": ("a number from 0 to 1", lambda v: is_number(v) and 0 <= v <= 1),
    "test.correct_per_class": ("a list of [correct, total] counts", _pairs_ok),
    "test.confusion_matrix": ("a square table of counts", _matrix_ok),
    "class_names": ("a list of names", lambda v: isinstance(v, list) and len(v) <= MAX_RECORD_CLASSES
                    and all(isinstance(x, str) for x in v)),
    SKIPPED_KEY: ("an object of reasons", lambda v: isinstance(v, dict) and all(
        x is None or isinstance(x, str) for x in v.values())),
    "config": ("an object", lambda v: isinstance(v, dict)),
    "model": ("an object", lambda v: isinstance(v, dict)),
}


def read_run_record(run_dir: Path) -> Dict[str, Any]:
    """A run folder's ``metrics.json``, validated before anything is drawn from it: a regular file
    of at most :data:`MAX_RECORD_BYTES`, JSON nested at most :data:`MAX_RECORD_DEPTH` deep, an
    object whose entries have the types squareseq writes. One-line :class:`SquareseqError` otherwise."""
    path = run_dir / "metrics.json"
    if not path.exists():
        raise SquareseqError(f"{run_dir} holds no metrics.json: is it a squareseq run folder?")
    if not path.is_file():
        raise SquareseqError(f"{path} is not a regular file: a run's metrics.json is one")
    size = path.stat().st_size
    if size > MAX_RECORD_BYTES:
        raise SquareseqError(f"{path} holds {size:,} bytes; squareseq reads a metrics.json of at most "
                             f"{MAX_RECORD_BYTES:,} (MAX_RECORD_BYTES): it is not a record squareseq wrote")
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SquareseqError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except UnicodeDecodeError:
        raise SquareseqError(f"{path} is not UTF-8 text: it is not a record squareseq wrote") from None
    except RecursionError:
        metrics = None  # nested past Python's own limit: refused as too deep below
    if metrics is None or _depth(metrics) > MAX_RECORD_DEPTH:
        raise SquareseqError(f"{path} nests lists or objects more than {MAX_RECORD_DEPTH} deep (MAX_RECORD_DEPTH): "
                             "it is not a record squareseq wrote")
    if not isinstance(metrics, dict):
        kind = {list: "an array", str: "a string", bool: "true or false", int: "a number", float: "a number"}
        raise SquareseqError(f"{path} holds {kind.get(type(metrics), 'null')}, not the JSON object squareseq "
                             "writes: it is not a record squareseq wrote")
    for key, (expected, test) in _RECORD_TYPES.items():
        outer, _, inner = key.partition(".")
        owner = metrics.get("test") if inner else metrics
        value = owner.get(inner or outer) if isinstance(owner, dict) else None
        if value is not None and not test(value):
            raise SquareseqError(f"{path}: {key} must be {expected}, got {_brief(value)}")
    return metrics


def _brief(value: Any) -> str:
    text = " ".join(json.dumps(value).split())
    return text if len(text) <= 60 else text[:57] + "..."


def _check_record_matches(metrics: Dict[str, Any], saved: Dict[str, Any], run_dir: Path) -> None:
    """``metrics.json``'s configuration and model must be the checkpoint's: ``plot`` redraws the
    checkpoint's run, and a record from another run would label its page with the wrong settings."""
    for key, stored_key in (("config", "run_config"), ("model", "model_config")):
        recorded, stored = metrics.get(key), saved.get(stored_key)
        if recorded is None or not isinstance(stored, dict):
            continue
        differs = sorted(k for k in set(recorded) | set(stored) if recorded.get(k) != stored.get(k))
        if differs:
            k = differs[0]
            raise SquareseqError(
                f"{run_dir / 'metrics.json'} and checkpoint.pt come from different runs: metrics.json's {key} has "
                f"{k} {_brief(recorded.get(k))}, the checkpoint's {stored_key} {_brief(stored.get(k))}; plot redraws "
                "the checkpoint's run, so restore the run's own metrics.json (or retrain)")


def redraw_run(run_dir: PathLike, animation: bool = True, dpi: int = 100, *,
               progress: Optional[FigureProgress] = None, gif: Optional[bool] = None) -> List[Path]:
    """Redraws every figure, the replay (``replay.json``, from ``snapshots.pt``, if the run kept it)
    and ``report.html`` of a finished run, without retraining. ``gif``: also redraw the GIFs
    (default: when the folder holds one already, as runs from before the interactive replay do).

    Reads ``checkpoint.pt`` (the model and its stored configuration, validated), ``metrics.json``
    (the losses; validated by :func:`read_run_record`, and refused when its configuration or model
    is not the checkpoint's: the checkpoint's is the one used) and rebuilds the data from the
    run's configuration (generated squares from their seeds, or the run's data file). ``progress``
    is told about each file as it is drawn (see :data:`~squareseq.figures.run_figures.FigureProgress`).
    """
    from squareseq.figures.replay import Snapshots
    from squareseq.runs.data import build_data
    from squareseq.runs.folder import model_checkpoint
    from squareseq.runs.inference import stored_config
    from squareseq.training import checkpoint as ckpt

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SquareseqError(f"run folder not found: {run_dir}")
    metrics = read_run_record(run_dir)
    path = model_checkpoint(run_dir)  # best.pt under early stopping: the weights the run tested and drew
    saved = ckpt.load(path)
    config = stored_config(saved, str(path))
    _check_record_matches(metrics, saved, run_dir)
    model = load_model(saved)
    data = build_data(config)
    history = {"losses": metrics.get("losses", []), "val_losses": metrics.get("val_losses", [])}
    snapshots = None
    if animation and (run_dir / "snapshots.pt").exists():
        snapshots = Snapshots.load(run_dir / "snapshots.pt")
    replays = replay_skip_reason(model, animation)
    if replays is None and snapshots is None:  # why training kept none, as it recorded it
        replays = (metrics.get(SKIPPED_KEY) or {}).get("replays") or "the run folder holds no snapshots.pt"
    elif replays is None:
        replays = empty_sample_reason(snapshots)
    # the names the run recorded (the data rebuilt from its file names them the same way)
    recorded = metrics.get("class_names")
    names = recorded if isinstance(recorded, list) and len(recorded) == data.n_classes else data.class_names
    data_file = None if data.generated else config.data
    if gif is None:
        gif = any((run_dir / name).exists() for name, _, _, _ in ANIMATIONS)
    steps = figure_steps(run_dir, model, data.figure_train, data.figure_test if data.generated else data.test,
                         history, snapshots, animation, dpi, config.task, class_names=names, data_file=data_file,
                         gif=gif)
    return _with_report(run_dir, model, replays, steps, progress, data_file=data_file, class_names=names)
