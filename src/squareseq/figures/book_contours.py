"""The book's probability contours: a classifier's P(y=1) over a plane, with points on it.

* :func:`probability_contour`: any 2-input model over ``[-1.1, 1.1]^2``, with labelled points;
* :func:`hidden_states_contour`: every sequence's hidden (or cell) state after each step, over
  the classifier's map, one panel per step and one colour bar;
* :func:`canonical_contour`: the eight noise-free sequences' final states, coloured by their
  starting corner, ``+`` clockwise and ``-`` counter-clockwise;
* :func:`compare_cells`: :func:`canonical_contour` for several models side by side (the book's
  RNN / GRU / LSTM comparison) on one shared colour scale.

The maps and points are :mod:`squareseq.figures.hidden`'s panels (larger states projected with
PCA); models only need the book's ``basic_rnn`` and ``classifier`` (and the attribute, such as
``hidden`` or ``cell``, their forward pass leaves the final states in).
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np
import torch
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from torch import nn

from squareseq.data.squares import CORNERS
from squareseq.errors import SquareseqError
from squareseq.figures.hidden import (
    draw_boundary,
    draw_probability,
    draw_states,
    hidden_view,
    panel_figure,
    projected_title,
    spaced_ticks,
    style_hidden_axes,
)
from squareseq.figures.plots import CLASS_COLORS, CORNER_COLORS, LETTERS
from squareseq.models.hidden import hidden_states, probability_grid

__all__ = ["probability_contour", "hidden_states_contour", "canonical_contour", "compare_cells", "step_states",
           "canonical_orders"]


def _palette(cm_bright, default) -> list:
    if cm_bright is None:
        return list(default)
    return list(getattr(cm_bright, "colors", cm_bright))


def probability_contour(ax, model: nn.Module, device, X, y, threshold: float, cm=None, cm_bright=None,
                        cbar: bool = True, s: Optional[float] = None):
    """``model``'s probability of class 1 over ``[-1.1, 1.1]^2`` (``cm``, default red to blue),
    its ``threshold`` line, and the points ``X`` ``(N, 2)`` coloured by ``y`` (``cm_bright``'s
    colours, default red 0 and blue 1). ``device`` is accepted for the book's calls; the model's
    own device is used. Returns ``ax``."""
    grid = probability_grid(model, (-1.1, 1.1), (-1.1, 1.1), 111)
    image = draw_probability(ax, grid, alpha=0.8)
    if cm is not None:
        image.set_cmap(cm)
    if grid.probs.min() < threshold < grid.probs.max():
        ax.contour(grid.xs, grid.ys, grid.probs, levels=[threshold], colors="k", linewidths=1, zorder=1)
    points = np.asarray(torch.as_tensor(X).detach().cpu(), dtype=np.float64).reshape(-1, 2)
    draw_states(ax, points, np.asarray(y).reshape(-1), size=36 if s is None else s,
                palette=_palette(cm_bright, CLASS_COLORS), edgecolors="k")
    ax.set_xlim(-1.1, 1.1)
    ax.set_ylim(-1.1, 1.1)
    ax.set_xlabel(r"$X_1$")
    ax.set_ylabel(r"$X_2$")
    ax.set_title(r"$\sigma(z) = P(y=1)$")
    if cbar:
        ax.get_figure().colorbar(image, ax=ax, ticks=[0, 0.25, 0.5, 0.75, 1])
    return ax


def step_states(model: nn.Module, x, attr: str = "hidden") -> np.ndarray:
    """``(N, L, H)``: the state named ``attr`` after each step of ``x`` ``(N, L, F)``.

    ``hidden`` of a model with a batch-first ``basic_rnn``: its output at every step (one pass);
    any other (``cell``, or a model without such a layer): the model's ``attr`` (its last layer's)
    after running it on the first 1, 2, ... steps, as the book reads it.
    """
    x = torch.as_tensor(np.asarray(x, dtype=np.float32))
    if x.dim() != 3:
        raise SquareseqError(f"points must have shape (N, L, F), got {tuple(x.shape)}")
    rnn = getattr(model, "basic_rnn", None)
    if attr == "hidden" and isinstance(rnn, nn.RNNBase) and rnn.batch_first:
        return hidden_states(model, x).numpy().astype(np.float64)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    states = []
    try:
        with torch.no_grad():
            for t in range(x.shape[1]):
                model(x[:, :t + 1].to(device))
                state = getattr(model, attr, None)
                if not isinstance(state, torch.Tensor):
                    raise SquareseqError(f"{type(model).__name__} keeps no '{attr}' tensor after a forward pass: "
                                         "pass attr='hidden' (or 'cell' for an LSTM)")
                states.append(state[-1].detach().float().cpu().numpy())
    finally:
        model.train(was_training)
    return np.stack(states, axis=1).astype(np.float64)


def _state_axes(ax, view, title: str, attr: str) -> None:
    style_hidden_axes(ax, view, title)
    spaced_ticks(ax)
    if attr == "cell" and view.projection.is_identity:
        ax.set_xlabel(r"$c_0$")
        ax.set_ylabel(r"$c_1$", rotation=0, labelpad=8)


def hidden_states_contour(model: nn.Module, points, directions, cell: bool = False, attr: str = "hidden") -> Figure:
    """Every sequence's state after each step (``Hidden State #0`` after the first corner, ...),
    coloured by its direction (red counter-clockwise, blue clockwise), over the classifier's
    probability map; one panel per step, one colour bar. ``cell=True`` (or ``attr='cell'``) draws
    an LSTM's cell states instead, over the same map as the book does."""
    attr = "cell" if cell else attr
    x = np.asarray(points, dtype=np.float32)
    y = np.asarray(directions).reshape(-1).astype(int)
    view = hidden_view(model, step_states(model, x, attr))
    n_steps = view.states.shape[1]
    n_cols = min(n_steps, 2 if n_steps == 4 else 4)
    n_rows = -(-n_steps // n_cols)
    fig, axs = panel_figure(n_rows, n_cols, (4.4 * n_cols + 1.0, 4.2 * n_rows))
    image = None
    what = "Cell State" if attr == "cell" else "Hidden State"
    for t, ax in enumerate(axs):
        if t >= n_steps:
            ax.set_axis_off()
            continue
        image = draw_probability(ax, view.grid, alpha=0.8)
        draw_boundary(ax, view.line)
        draw_states(ax, view.states[:, t], y, size=30, edgecolors="k")
        _state_axes(ax, view, f"{what} #{t}", attr)
    fig.colorbar(image, ax=list(axs[:n_steps]), shrink=0.8, label="P(clockwise)", ticks=[0, 0.25, 0.5, 0.75, 1])
    projected_title(fig, f"{what}s of the sequences, step by step", view.projection)
    return fig


def canonical_orders() -> List[List[int]]:
    """The corners' order in the eight noise-free sequences: clockwise from A, B, C, D, then
    counter-clockwise from A, B, C, D."""
    return [[(b + i) % 4 for i in range(4)] for b in range(4)] + [[(b - i) % 4 for i in range(4)] for b in range(4)]


def canonical_contour(model: nn.Module, basic_corners=None, basic_colors=None, cell: bool = False, ax=None,
                      supertitle: str = "", cbar: bool = True, attr: str = "hidden") -> Figure:
    """The eight noise-free sequences' final states over the classifier's probability map, each
    coloured by its starting corner (``basic_colors``, default A gray, B green, C blue, D red),
    marked ``+`` (clockwise) or ``-`` (counter-clockwise). Titled ``{supertitle}Hidden State #3``."""
    attr = "cell" if cell else attr
    corners = np.asarray(CORNERS if basic_corners is None else basic_corners, dtype=np.float32)
    colors = list(CORNER_COLORS if basic_colors is None else basic_colors)
    orders = canonical_orders()
    final = step_states(model, corners[orders], attr)[:, -1]
    view = hidden_view(model, final[:, None])
    own = ax is None
    if ax is None:
        fig, (ax,) = panel_figure(1, 1, (5.6, 5.4))
    else:
        fig = ax.get_figure()
    image = draw_probability(ax, view.grid, alpha=0.8)
    draw_boundary(ax, view.line)
    points = view.states[:, 0]
    draw_states(ax, points, np.array([order[0] for order in orders]), size=200, palette=colors, edgecolors="k")
    ax.scatter(points[:4, 0], points[:4, 1], marker="+", c="w", s=90, linewidths=2, zorder=4, label="clockwise")
    ax.scatter(points[4:, 0], points[4:, 1], marker="_", c="w", s=90, linewidths=2, zorder=4,
               label="counter-clockwise")
    what = "Cell State" if attr == "cell" else "Hidden State"
    _state_axes(ax, view, f"{supertitle}{what} #{len(orders[0]) - 1}", attr)
    ax.title.set_fontsize(12)
    if cbar:
        fig.colorbar(image, ax=ax, shrink=0.8, label="P(clockwise)", ticks=[0, 0.25, 0.5, 0.75, 1])
    if own:  # a figure of its own: name the marks (compare_cells names them once for all)
        _canonical_legend(fig, colors)
    return fig


def _canonical_legend(fig: Figure, colors: Sequence[str]) -> None:
    from matplotlib.lines import Line2D

    marks = [Line2D([], [], ls="", marker="o", ms=9, mfc=color, mec="k") for color in colors]
    names = [f"starts at {letter}" for letter in LETTERS[:len(colors)]]
    marks += [Line2D([], [], ls="", marker=m, ms=9, mec="k", mew=2) for m in ("+", "_")]
    names += ["+ clockwise", "- counter-clockwise"]
    fig.legend(marks, names, loc="outside lower center", ncol=3, fontsize=9, frameon=False)


def compare_cells(models: Sequence[nn.Module], titles: Sequence[str], attr: str = "hidden") -> Figure:
    """:func:`canonical_contour` of each model, side by side, on one shared colour scale (one
    colour bar, one norm) and one legend: the book's RNN / GRU / LSTM comparison."""
    if len(models) != len(titles) or not models:
        raise SquareseqError(f"pass one title per model: got {len(models)} models and {len(titles)} titles")
    fig, axs = panel_figure(1, len(models), (4.6 * len(models) + 1.2, 5.6))
    norm = Normalize(vmin=0.0, vmax=1.0)
    images = []
    for ax, model, title in zip(axs, models, titles):
        canonical_contour(model, ax=ax, supertitle=f"{title}\n", cbar=False, attr=attr)
        image = ax.images[0]
        image.set_norm(norm)
        images.append(image)
    fig.colorbar(images[0], ax=list(axs), shrink=0.8, label="P(clockwise)", ticks=[0, 0.25, 0.5, 0.75, 1])
    _canonical_legend(fig, CORNER_COLORS)
    return fig
