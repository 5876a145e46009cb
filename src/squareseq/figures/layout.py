"""Fixed figure layouts: margins and gaps in inches, set once when a figure is made.

matplotlib's automatic layouts (``tight_layout``, constrained layout) measure every tick label,
title and legend before each draw: a third of the CPU time of a run's PNGs. The run's figures
have known contents (tick labels of a few characters, titles of one or two lines), so they are
laid out with fixed margins instead, sized so that nothing is cut or overlaps (the tests check
every text's box against the figure and the other axes). Margins are in inches, so a figure that
grows with its panels (``plot_data(n_cols=8)``) keeps the same room around each panel.

Importing this module loads no matplotlib.
"""
from __future__ import annotations

from typing import Optional, Tuple

__all__ = ["Margins", "fixed_layout", "fixed_subplots", "below_legend", "constrained", "title_lines"]

#: ``(left, right, bottom, top, wspace, hspace)`` in inches: the figure's edges to the panels'
#: grid, and the gaps between panels.
Margins = Tuple[float, float, float, float, float, float]


def fixed_layout(fig, margins: Margins) -> None:
    """Places ``fig``'s grid of panels ``margins`` (inches) from its edges, the panels
    ``wspace``/``hspace`` inches apart, and turns automatic layout off."""
    left, right, bottom, top, wspace, hspace = margins
    width, height = fig.get_size_inches()
    fig.set_layout_engine("none")
    n_rows, n_cols = _grid_shape(fig)
    inner_w = width - left - right
    inner_h = height - bottom - top
    panel_w = max((inner_w - wspace * (n_cols - 1)) / n_cols, 1e-3)
    panel_h = max((inner_h - hspace * (n_rows - 1)) / n_rows, 1e-3)
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height,
                        wspace=wspace / panel_w, hspace=hspace / panel_h)


def fixed_subplots(n_rows: int, n_cols: int, figsize, margins: Margins):
    """``plt.subplots(n_rows, n_cols, squeeze=False)`` laid out with fixed ``margins``, its panels'
    titles at a fixed height above them (matplotlib would otherwise measure every panel's tick
    labels at each draw to keep titles clear of labels on top, which these panels never have)."""
    import matplotlib.pyplot as plt

    with plt.rc_context({"axes.titley": 1.0}):
        fig, axs = plt.subplots(n_rows, n_cols, figsize=figsize, squeeze=False)
    fixed_layout(fig, margins)
    return fig, axs


def _grid_shape(fig) -> Tuple[int, int]:
    for ax in fig.axes:
        spec = ax.get_subplotspec()
        if spec is not None:
            return spec.get_gridspec().get_geometry()
    return 1, 1


def below_legend(fig, handles, names, *, ncol: int, fontsize: float = 9, **kwargs):
    """A legend centred at the bottom of ``fig``: outside the panels under constrained layout,
    in the bottom margin (which the figure's fixed layout keeps free for it) otherwise."""
    outside = constrained(fig)
    loc = "outside lower center" if outside else "lower center"
    extra = {} if outside else {"bbox_to_anchor": (0.5, 0.0)}
    return fig.legend(handles, names, loc=loc, ncol=ncol, fontsize=fontsize, frameon=False, **extra, **kwargs)


def constrained(fig) -> bool:
    """Whether ``fig`` is laid out by constrained layout (else: fixed)."""
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    return isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine)


def title_lines(text: Optional[str]) -> int:
    """How many lines ``text`` takes (0 for none)."""
    return 0 if not text else text.count("\n") + 1
