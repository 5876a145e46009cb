"""Kept for old import paths: the run report's names, re-exported from where they live now.

* :mod:`squareseq.figures.run_figures`: the figure set of a run (which figures, why some are skipped,
  drawing them with progress);
* :mod:`squareseq.runs.page`: the HTML page, ``report.html``;
* :mod:`squareseq.runs.rebuild`: finishing a run after training and redrawing a run folder.

New code imports from those modules.
"""
from squareseq.figures.run_figures import (
    ANIMATIONS,
    FIGURES,
    SKIPPED_KEY,
    FigureProgress,
    figure_inputs,
    hidden_figures_apply,
    hidden_figures_skip_reason,
    replay_skip_reason,
    write_figures,
)
from squareseq.runs.page import write_report
from squareseq.runs.rebuild import finish_run, load_model, redraw_run

__all__ = ["FIGURES", "ANIMATIONS", "SKIPPED_KEY", "FigureProgress", "figure_inputs", "hidden_figures_apply",
           "hidden_figures_skip_reason", "replay_skip_reason", "write_figures", "write_report", "finish_run",
           "redraw_run", "load_model"]
