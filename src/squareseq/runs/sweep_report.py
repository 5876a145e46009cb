"""A settings sweep's outputs (:class:`~squareseq.runs.sweep_train.SweepResult`): ``sweep.json``,
``sweep.csv``, the accuracy histogram and the summary table the CLI prints.

A sweep of one batched setting writes exactly what a seed sweep always wrote (through
:mod:`squareseq.runs.sweep`), plus the ``"validation"``, ``"grid"``, ``"settings"`` and ``"best"``
keys every sweep's JSON has. "Validation accuracy" is measured on the run's validation split, or
on the test set where it has none (``"validation": "test set"``, and the table says so); settings
are judged by it, the test accuracy is reported beside it. matplotlib is imported only to draw.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Union

from squareseq.runs.folder import write_json
from squareseq.runs.grid import GRID_FIELDS
from squareseq.runs.sweep import (
    SWEEP_CSV,
    SWEEP_HISTOGRAM,
    SWEEP_JSON,
    plot_accuracy_histogram,
    write_rows_csv,
    write_sweep_csv,
)
from squareseq.runs.sweep_train import VALIDATION_TEST, SweepResult, spread

__all__ = ["MAX_SERIES", "sweep_dict", "sweep_rows", "save_settings_sweep", "format_table", "plot_settings"]

#: The most settings the histogram draws (the best ones, by mean validation accuracy).
MAX_SERIES = 8


def _one_batched(result: SweepResult) -> bool:
    return len(result.settings) == 1 and result.settings[0].many is not None


def _grid(result: SweepResult) -> Dict[str, List[Any]]:
    """Each varying grid field's values, in the order given."""
    return {name: list(dict.fromkeys(r.setting.values[name] for r in result.settings))
            for name in result.settings[0].setting.varying}


def sweep_dict(result: SweepResult) -> Dict[str, Any]:
    """``sweep.json``'s content: a one-setting batched sweep's keys as before (config, summary,
    seconds, seeds) and, for every sweep, what validation was measured on, the grid, each
    setting's spread and per-seed results, and the best setting."""
    first = result.settings[0]
    if _one_batched(result):
        assert first.many is not None
        out = first.many.as_dict()
    else:
        config: Dict[str, Any] = {"seeds": f"{len(first.seeds)} seeds", **first.setting.config.to_dict()}
        config.update(_grid(result))  # the varying fields as their lists of values
        out = {"config": config, "seconds": result.seconds}
    best = result.best
    out.update({
        "validation": result.validation,
        "notes": list(result.notes),
        "grid": _grid(result),
        "settings": [r.as_dict() for r in result.settings],
        "best": {"index": best, "setting": dict(result.settings[best].setting.values),
                 "label": result.settings[best].setting.label()},
    })
    return out


def sweep_rows(result: SweepResult) -> List[Dict[str, Any]]:
    """``sweep.csv``'s rows: one per (setting, seed), with every grid field's value."""
    rows = []
    for r in result.settings:
        for record in r.records():
            rows.append({**{name: r.setting.values[name] for name in GRID_FIELDS}, "seed": record["seed"],
                         "validation": result.validation, "val_accuracy": record["val_accuracy"],
                         "test_accuracy": record["test_accuracy"], "loss": record["loss"],
                         "val_loss": record["val_loss"], "batched": r.batched, "error": record["error"]})
    return rows


def save_settings_sweep(result: SweepResult, out_dir: Union[str, Path], figures: bool = True) -> Dict[str, Path]:
    """Writes ``sweep.json``, ``sweep.csv`` and (with ``figures``) ``accuracy_hist.png`` into
    ``out_dir``; returns the paths by kind (``"json"``, ``"csv"``, ``"histogram"``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / SWEEP_JSON, sweep_dict(result))
    many = result.settings[0].many
    csv_path = write_sweep_csv(many, out / SWEEP_CSV) if _one_batched(result) and many is not None \
        else write_rows_csv(sweep_rows(result), out / SWEEP_CSV)
    paths = {"json": out / SWEEP_JSON, "csv": csv_path}
    if figures:
        import matplotlib.pyplot as plt

        fig = plot_accuracy_histogram(many) if _one_batched(result) and many is not None else plot_settings(result)
        fig.savefig(out / SWEEP_HISTOGRAM, dpi=100)
        plt.close(fig)
        paths["histogram"] = out / SWEEP_HISTOGRAM
    return paths


def _measure(result: SweepResult) -> str:
    return ("test accuracy (no validation split: the test set stands in for it)"
            if result.validation == VALIDATION_TEST else "validation accuracy")


def format_table(result: SweepResult) -> str:
    """The summary a terminal shows: what accuracy judged the settings, then one line per setting
    (mean ± std over the seeds, and the test accuracy beside a real validation split's), the best
    marked with ``*``."""
    n_seeds = len(result.settings[0].seeds)
    on_test = result.validation == VALIDATION_TEST
    head = (f"{len(result.settings)} setting{'s' if len(result.settings) > 1 else ''} x {n_seeds} seeds, judged by "
            f"{_measure(result)}: mean ± std over the seeds")
    if on_test and not result.settings[0].setting.config.has_validation_split:
        head += "; give --val-fraction to choose settings without the test set"
    labels = [r.setting.label() for r in result.settings]
    width = max(len("setting"), *(len(label) for label in labels))
    columns = f"  {'setting':<{width}}  " + ("test" if on_test else f"{'validation':<17}test")
    lines = [head, columns]
    best = result.best
    for i, (r, label) in enumerate(zip(result.settings, labels)):
        val, test = spread(r.val_accuracy), spread(r.test_accuracy)
        line = f"{'*' if i == best else ' '} {label:<{width}}  {val['mean']:.3f} ± {val['std']:.3f}"
        if not on_test:
            line += f"    {test['mean']:.3f} ± {test['std']:.3f}"
        if r.failures:
            line += f"  ({len(r.failures)} of {len(r.seeds)} seeds diverged)"
        lines.append(line + ("  <- best" if i == best and len(result.settings) > 1 else ""))
    return "\n".join([*lines, *(f"note: {note}" for note in result.notes)])


def plot_settings(result: SweepResult, ax=None):
    """One histogram series per setting (the :data:`MAX_SERIES` best by mean validation accuracy)
    of the accuracy the settings were judged by; returns the Figure."""
    import matplotlib.pyplot as plt
    import numpy as np

    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4.5))
    else:
        fig = ax.figure
    order = sorted(range(len(result.settings)), key=lambda i: -np.nan_to_num(spread(
        result.settings[i].val_accuracy)["mean"], nan=-1.0))[:MAX_SERIES]
    bins = np.linspace(0.0, 1.0, 41)
    best = result.best
    for i in order:
        r = result.settings[i]
        s = spread(r.val_accuracy)
        values = np.asarray(r.val_accuracy, dtype=float)
        label = f"{r.setting.label()}: {s['mean']:.3f} ± {s['std']:.3f}" + (" (best)" if i == best else "")
        ax.hist(values[np.isfinite(values)], bins=bins, histtype="step", linewidth=2 if i == best else 1.2,
                label=label)
    shown = f"the {len(order)} best of {len(result.settings)} settings" if len(order) < len(result.settings) \
        else f"{len(result.settings)} setting{'s' if len(result.settings) > 1 else ''}"
    ax.set_xlabel(_measure(result))
    ax.set_ylabel("seeds")
    ax.set_title(f"{shown}, {len(result.settings[0].seeds)} seeds each")
    ax.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    return fig
