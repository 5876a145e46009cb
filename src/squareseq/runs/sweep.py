"""A seed sweep's outputs: ``sweep.json``, ``sweep.csv``, the accuracy histogram, a summary line.

:func:`squareseq.training.many.train_many` computes a sweep; this module writes it down. JSON and CSV are
written atomically (as a run's files are, by :mod:`squareseq.runs.folder`), so a sweep killed while
writing never leaves a half file. matplotlib is imported only to draw the histogram.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from squareseq.runs.folder import write_json
from squareseq.training.checkpoint import atomic_write_bytes
from squareseq.training.many import CONVERGED_ACCURACY, ManyResults

__all__ = [
    "SWEEP_JSON",
    "SWEEP_CSV",
    "SWEEP_HISTOGRAM",
    "write_sweep_csv",
    "write_rows_csv",
    "save_sweep",
    "format_summary",
    "plot_accuracy_histogram",
]

#: File names :func:`save_sweep` writes in its folder.
SWEEP_JSON, SWEEP_CSV, SWEEP_HISTOGRAM = "sweep.json", "sweep.csv", "accuracy_hist.png"


def write_sweep_csv(results: ManyResults, path: Union[str, Path]) -> Path:
    """Writes one row per seed (seed, per-class counts, accuracy, converged, losses); returns the
    path."""
    return write_rows_csv(results.records(), path)


def write_rows_csv(rows: List[Dict], path: Union[str, Path]) -> Path:
    """Writes ``rows`` (dicts with the same keys) as CSV, atomically; returns the path."""
    path = Path(path)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["seed"])
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, lambda f: f.write(buffer.getvalue().encode()))
    return path


def save_sweep(results: ManyResults, out_dir: Union[str, Path], figures: bool = True) -> Dict[str, Path]:
    """Writes ``sweep.json`` (config, summary and per-seed results), ``sweep.csv`` and (with
    ``figures``) ``accuracy_hist.png`` into ``out_dir`` (created if missing); returns the paths
    by kind (``"json"``, ``"csv"``, ``"histogram"``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / SWEEP_JSON, results.as_dict())
    paths = {"json": out / SWEEP_JSON, "csv": write_sweep_csv(results, out / SWEEP_CSV)}
    if figures:
        import matplotlib.pyplot as plt

        fig = plot_accuracy_histogram(results)
        fig.savefig(out / SWEEP_HISTOGRAM, dpi=100)
        plt.close(fig)
        paths["histogram"] = out / SWEEP_HISTOGRAM
    return paths


def format_summary(results: ManyResults, seed: Optional[int] = 21) -> str:
    """One line for a terminal: the accuracy range, median, converged share, and ``seed``'s
    accuracy when it is among the seeds (the tutorial's 21 by default)."""
    s = results.summary()
    line = (f"{s['n_models']} seeds: test accuracy min {s['accuracy_min']:.3f}, median "
            f"{s['accuracy_median']:.3f}, max {s['accuracy_max']:.3f}; {s['converged_share']:.0%} converge "
            f"(accuracy >= {CONVERGED_ACCURACY})")
    if seed is not None and seed in results.seeds:
        line += f"; seed {seed}: {results.accuracy[results.seeds.index(seed)]:.3f}"
    return line


def plot_accuracy_histogram(results: ManyResults, ax=None, bins: Union[Sequence[float], np.ndarray, None] = None,
                            highlight_seed: Optional[int] = 21):
    """A histogram of test accuracy across seeds, with the median, the convergence threshold and
    ``highlight_seed``'s accuracy (the tutorial's seed, when present) marked; returns the Figure."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 4))
    else:
        fig = ax.figure
    acc = np.asarray(results.accuracy, dtype=float)
    if bins is None:
        bins = np.linspace(0.0, 1.0, 41)
    ax.hist(acc, bins=bins, color="tab:blue", edgecolor="white")
    median = float(np.median(acc)) if len(acc) else float("nan")
    ax.axvline(median, color="k", linestyle="--", label=f"median {median:.3f}")
    ax.axvline(CONVERGED_ACCURACY, color="tab:red", linestyle=":",
               label=f"converged (>= {CONVERGED_ACCURACY}): {results.converged_share():.0%}")
    if highlight_seed is not None and highlight_seed in results.seeds:
        value = results.accuracy[results.seeds.index(highlight_seed)]
        ax.axvline(value, color="tab:orange", linestyle="-", label=f"seed {highlight_seed}: {value:.3f}")
    ax.set_xlabel("test accuracy")
    ax.set_ylabel("seeds")
    ax.set_title(f"Test accuracy of {len(acc)} seeds")
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig
