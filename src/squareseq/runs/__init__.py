"""Layer 6, runs: one experiment from configuration to run folder.

What lives here: ``experiment`` (``run_experiment(config, options)``: data, model, training,
evaluation, the run folder), ``data`` (a run's train/test data from its configuration),
``folder`` (run folder paths and atomic JSON/CSV files; ``metrics.json`` is written last),
``lock`` (one writer per run folder), ``record`` (what ``metrics.json`` says in each phase),
``inference`` (trained models back from checkpoints, their stored configuration, predictions),
``report`` (the self-contained ``report.html``), ``rebuild`` (redrawing a finished run),
``grid`` (a sweep's settings grid), ``sweep_train`` (training a sweep's settings and seeds),
``sweep_report`` and ``sweep`` (a sweep's JSON, CSV, table and histogram). It may import every
layer below it (figures, the ``StepByStep`` facade, training, models, data, the base); only the
CLI imports it.

The run folder's names are importable from here as before (``squareseq.runs.prepare_run_dir``),
loaded on first use, so that ``squareseq.runs.page`` (which needs no torch) stays light.
"""
import importlib as _importlib
from typing import Any as _Any

__all__ = [
    "CHECKPOINT", "BEST", "METRICS", "HISTORY",
    "default_run_dir", "prepare_run_dir", "resolve_checkpoint", "model_checkpoint",
    "write_json", "read_json", "write_history_csv",
]


def __getattr__(name: str) -> _Any:
    if name in __all__:
        return getattr(_importlib.import_module("squareseq.runs.folder"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
