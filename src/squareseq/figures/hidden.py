"""Figures of a trained model's hidden space: where each sequence's hidden state goes, step by
step, over the classifier's probability map (blue: clockwise, red: counter-clockwise).

Arrays come from :mod:`squareseq.models.hidden`; the ``draw_*`` helpers here take those arrays and an
``Axes``, so the static figures and the replays in :mod:`squareseq.figures.replay` draw the same way.
Hidden states larger than 2-D are projected to the plane with PCA, and the titles say so.
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Union

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.legend_handler import HandlerTuple
from matplotlib.ticker import MaxNLocator
from torch import nn

from squareseq.figures.labels import place_labels
from squareseq.figures.layout import Margins, below_legend, constrained, fixed_subplots
from squareseq.figures.plots import CLASS_COLORS, CLASS_TITLES
from squareseq.models.hidden import (
    Grid,
    Projection,
    canonical_sequences,
    decision_line,
    hidden_limits,
    hidden_states,
    probability_grid,
)

__all__ = [
    "HiddenView",
    "hidden_view",
    "draw_probability",
    "draw_boundary",
    "draw_states",
    "style_hidden_axes",
    "spaced_ticks",
    "plot_hidden_steps",
    "plot_canonical_hidden",
    "plot_journey",
    "plot_hidden_paths",
]

PROB_CMAP = "RdBu"  # 0 (counter-clockwise) red, 1 (clockwise) blue, 0.5 white


class HiddenView(NamedTuple):
    """Everything a hidden-space panel draws, as arrays."""

    states: np.ndarray  # (N, L, 2) plane coordinates of the hidden states
    projection: Projection
    xlim: tuple
    ylim: tuple
    grid: Grid  # classifier probabilities over the plane
    line: np.ndarray  # (2, 2) the 0.5 boundary's end points (NaN if none or not linear)


def _classifier(model: nn.Module) -> nn.Module:
    """``model.classifier``, the layer the probability maps evaluate (typed: a plain attribute of
    an ``nn.Module`` reads as ``Tensor | Module``)."""
    return model.get_submodule("classifier")


def _line_of(classifier: nn.Module, xlim, ylim, projection: Projection) -> np.ndarray:
    if isinstance(classifier, nn.Linear) and classifier.out_features in (1, 2):
        return decision_line(classifier.weight, classifier.bias, xlim, ylim, projection)
    return np.full((2, 2), np.nan)


def hidden_view(
    model: nn.Module,
    hidden: Union[torch.Tensor, np.ndarray],
    projection: Optional[Projection] = None,
    n_grid: int = 81,
    extra_points: Optional[np.ndarray] = None,
) -> HiddenView:
    """Projects ``hidden`` ``(N, L, H)`` to the plane and evaluates ``model.classifier`` on a grid
    covering it (and ``extra_points``, ``(..., 2)`` plane points that must be in view)."""
    h = np.asarray(hidden, dtype=np.float64)
    if projection is None:
        projection = Projection.fit(h)
    states = projection.transform(h)
    shown = states if extra_points is None else np.concatenate(
        [states.reshape(-1, 2), np.asarray(extra_points).reshape(-1, 2)])
    xlim, ylim = hidden_limits(shown)
    classifier = _classifier(model)
    grid = probability_grid(classifier, xlim, ylim, n_grid, None if projection.is_identity else projection)
    return HiddenView(states, projection, xlim, ylim, grid, _line_of(classifier, xlim, ylim, projection))


def draw_probability(ax, grid: Grid, alpha: float = 0.55, interpolation: str = "bilinear"):
    """The class-1 probability map as an image (its array is ``grid.probs``)."""
    return ax.imshow(grid.probs, origin="lower", extent=grid.extent, cmap=PROB_CMAP, vmin=0.0, vmax=1.0,
                     alpha=alpha, interpolation=interpolation, aspect="auto", zorder=0)


def draw_boundary(ax, line: np.ndarray):
    """The 0.5 decision boundary as a dashed line (invisible when ``line`` is NaN)."""
    (artist,) = ax.plot(line[:, 0], line[:, 1], ls="--", c="k", lw=1.2, zorder=1, label="P = 0.5")
    return artist


def draw_states(ax, points: np.ndarray, y: np.ndarray, size: float = 22, palette=None, **kwargs):
    """Hidden states ``(N, 2)`` as one scatter, coloured by class (red 0, blue 1, or the colours
    of ``palette``, one per class)."""
    palette = np.array(CLASS_COLORS) if palette is None else np.asarray(palette)
    colors = palette[np.asarray(y).reshape(-1).astype(int)]
    style = {"edgecolors": "w", "linewidths": 0.5, "zorder": 3, **kwargs}
    return ax.scatter(points[:, 0], points[:, 1], c=colors, s=size, **style)


def style_hidden_axes(ax, view: HiddenView, title: str = "") -> None:
    """Limits, equal aspect and axis names (``h_0, h_1`` or the principal components)."""
    ax.set_xlim(*view.xlim)
    ax.set_ylim(*view.ylim)
    ax.set_aspect("equal", adjustable="box")
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.yaxis.set_major_locator(MaxNLocator(5))
    if view.projection.is_identity:
        ax.set_xlabel("h₀")
        ax.set_ylabel("h₁", rotation=0, labelpad=8)
    else:
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
    if title:
        ax.set_title(title, fontsize=11)


def spaced_ticks(ax) -> None:
    """Drops the lowest y tick, so its label cannot touch the first x tick's label in the
    lower-left corner (they collide when both axes start just below a tick, as at -1.05)."""
    ax.yaxis.set_major_locator(MaxNLocator(5, prune="lower"))


def panel_figure(n_rows: int, n_cols: int, figsize, margins: Optional[Margins] = None):
    """A figure of ``n_rows`` x ``n_cols`` panels in one flat array: laid out with fixed
    ``margins`` (inches, see :func:`~squareseq.figures.layout.fixed_layout`), or by constrained
    layout without them."""
    import matplotlib.pyplot as plt

    if margins is not None:
        fig, axs = fixed_subplots(n_rows, n_cols, figsize, margins)
    else:
        fig, axs = plt.subplots(n_rows, n_cols, figsize=figsize, squeeze=False, layout="constrained")
    return fig, axs.ravel()


def hidden_margins(suptitle: str = "", title_lines: int = 1, legend_rows: int = 0, colorbar: bool = False,
                   wspace: float = 0.85) -> Margins:
    """The fixed margins of a hidden-space figure: a suptitle of its lines, panel titles of
    ``title_lines``, ``legend_rows`` of legend below the panels, a colorbar on the right."""
    top = 0.12 + 0.22 * (suptitle.count("\n") + 1 if suptitle else 0) + 0.22 * title_lines
    bottom = 0.55 + (0.1 + 0.22 * legend_rows if legend_rows else 0.0)
    return 0.65, 1.1 if colorbar else 0.2, bottom, top, wspace, 0.0


def hidden_panels(n_panels: int, panel_width: float, view: HiddenView, suptitle: str = "", title_lines: int = 1,
                  legend_rows: int = 0, colorbar: bool = False):
    """A row of ``n_panels`` panels ``panel_width`` inches wide, as tall as ``view``'s limits
    make them (equal aspect, within reason), in a figure sized to them and their fixed margins
    (see :func:`hidden_margins`): no blank band around panels that keep their aspect."""
    margins = hidden_margins(suptitle, title_lines, legend_rows, colorbar)
    left, right, bottom, top, wspace, _ = margins
    aspect = (view.ylim[1] - view.ylim[0]) / max(view.xlim[1] - view.xlim[0], 1e-12)
    size = (left + right + n_panels * panel_width + (n_panels - 1) * wspace,
            bottom + top + panel_width * min(max(aspect, 0.5), 1.3))
    return panel_figure(1, n_panels, size, margins)


def panel_colorbar(fig: Figure, image, axs, label: str = "P(clockwise)"):
    """``image``'s colorbar right of the panels ``axs``: in the right margin of a fixed layout
    (see :func:`hidden_margins`), or taking room from the panels under constrained layout."""
    if constrained(fig):
        return fig.colorbar(image, ax=list(axs), shrink=0.8, label=label)
    boxes = [ax.get_position() for ax in axs]
    x1, y0, y1 = max(b.x1 for b in boxes), min(b.y0 for b in boxes), max(b.y1 for b in boxes)
    width = fig.get_size_inches()[0]
    cax = fig.add_axes((x1 + 0.2 / width, y0 + 0.1 * (y1 - y0), 0.15 / width, 0.8 * (y1 - y0)))
    return fig.colorbar(image, cax=cax, label=label)


def projected_text(text: str, projection: Projection, space: str = "hidden states") -> str:
    """``text``, with what the projection of ``space`` to 2-D kept on a second line (PCA above two dimensions)."""
    note = projection.describe(space)
    return f"{text}\n{note}" if note else text


def projected_title(fig: Figure, text: str, projection: Projection, space: str = "hidden states") -> None:
    """The figure's title, with what the projection of ``space`` to 2-D kept (PCA above two dimensions)."""
    fig.suptitle(projected_text(text, projection, space), fontsize=12)


def _labels(y) -> np.ndarray:
    return np.asarray(torch.as_tensor(y).reshape(-1).cpu(), dtype=int)


_STEPS_TITLE = "Hidden states of the sequences, step by step (red: counter-clockwise, blue: clockwise)"


def plot_hidden_steps(model: nn.Module, x, y, hidden: Optional[torch.Tensor] = None, n_grid: int = 81) -> Figure:
    """One panel per step: every sequence's hidden state after that step, over the classifier's
    probability map. The classes separate step by step; the last panel is what the classifier sees.

    Args:
        model: a trained model with ``basic_rnn`` and ``classifier``.
        x: ``(N, L, F)`` sequences.
        y: their labels ``(N,)`` or ``(N, 1)``.
        hidden: ``hidden_states(model, x)`` if already computed.
    """
    hidden = hidden_states(model, x) if hidden is None else hidden
    y = _labels(y)
    view = hidden_view(model, hidden, n_grid=n_grid)
    n_steps = view.states.shape[1]
    title = projected_text(_STEPS_TITLE, view.projection)
    fig, axs = hidden_panels(n_steps, 2.55, view, title, colorbar=True)
    image = None
    for t, ax in enumerate(axs):
        image = draw_probability(ax, view.grid)
        draw_boundary(ax, view.line)
        draw_states(ax, view.states[:, t], y)
        style_hidden_axes(ax, view, f"Hidden state after step {t + 1}" + (" (final)" if t == n_steps - 1 else ""))
    panel_colorbar(fig, image, axs)
    fig.suptitle(title, fontsize=12)
    return fig


def plot_canonical_hidden(model: nn.Module, n_grid: int = 81, ax=None) -> Figure:
    """The eight noise-free sequences' final hidden states, named by their corners, over the
    classifier's probability map."""
    x, y, names = canonical_sequences()
    hidden = hidden_states(model, torch.as_tensor(x))
    view = hidden_view(model, hidden, n_grid=n_grid)
    note = view.projection.describe()
    if ax is None:
        fig, (ax,) = hidden_panels(1, 3.9, view, title_lines=2 if note else 1, colorbar=True)
        own = True
    else:
        fig, own = ax.get_figure(), False
    image = draw_probability(ax, view.grid)
    draw_boundary(ax, view.line)
    final = view.states[:, -1]
    draw_states(ax, final, y, size=70)
    style_hidden_axes(ax, view, "Final hidden states of the eight noise-free sequences")
    if own:
        panel_colorbar(fig, image, [ax])
    else:
        fig.colorbar(image, ax=ax, shrink=0.8, label="P(clockwise)")
    if note:
        ax.set_title(f"Final hidden states of the eight noise-free sequences\n{note}", fontsize=10)
    place_labels(ax, final, names, [CLASS_COLORS[label] for label in y], marker_size=70)
    return fig


def plot_journey(model: nn.Module, sequence, label: Optional[int] = None) -> Figure:
    """One sequence's hidden state through time, one panel per step, as arrows: for an ``nn.RNN``,
    the previous state ``h_{t-1}``, transformed (``W_hh h + b_hh``), plus the transformed input
    (``W_ih x_t + b_ih``), then squashed by tanh into ``h_t``; for an ``nn.GRU``, the same
    through its reset and update gates; for an ``nn.LSTM``, its cell and hidden states (see
    :func:`squareseq.figures.journeys.plot_cell_journey`). Larger states are projected with PCA.
    """
    from squareseq.figures.journeys import plot_cell_journey

    return plot_cell_journey(model, sequence, label)


def plot_hidden_paths(model: nn.Module, x, y, hidden: Optional[torch.Tensor] = None,
                      n_paths: int = 16, n_grid: int = 81) -> Figure:
    """Paths of the hidden states through time, from the zero initial state, for clockwise and
    counter-clockwise sequences side by side (up to ``n_paths`` of each)."""
    states = hidden_states(model, x) if hidden is None else hidden
    y = _labels(y)
    h = np.asarray(states, dtype=np.float64)
    h0 = np.zeros((h.shape[0], 1, h.shape[2]))
    full = np.concatenate([h0, h], axis=1)  # (N, L + 1, H) from the initial zero state
    view = hidden_view(model, full, n_grid=n_grid)
    title = projected_text("Paths of the hidden states through time", view.projection)
    fig, axs = hidden_panels(2, 3.9, view, title, legend_rows=1, colorbar=True)
    image, finals = None, []
    for ax, label in zip(axs, (1, 0)):
        image = draw_probability(ax, view.grid, alpha=0.4)
        draw_boundary(ax, view.line)
        idx = np.flatnonzero(y == label)[:n_paths]
        color = CLASS_COLORS[label]
        for i in idx:
            path = view.states[i]
            ax.plot(path[:, 0], path[:, 1], c=color, lw=1, alpha=0.5, zorder=2)
            ax.scatter(path[1:-1, 0], path[1:-1, 1], c=color, s=8, alpha=0.6, zorder=2)
        ax.scatter(view.states[idx, 0, 0], view.states[idx, 0, 1], marker="x", c="k", s=40, zorder=4,
                   label="start (h = 0)")
        finals.append(draw_states(ax, view.states[idx, -1], np.full(len(idx), label), size=40, label="final state"))
        style_hidden_axes(ax, view, f"{CLASS_TITLES[label]} (y={label}): {len(idx)} sequences")
    panel_colorbar(fig, image, axs)
    handles, names = axs[0].get_legend_handles_labels()  # below the panels: no point hidden
    # the final states are blue in one panel, red in the other: the legend shows both
    handles = [tuple(finals) if name == "final state" else handle for handle, name in zip(handles, names)]
    below_legend(fig, handles, names, ncol=len(names), handler_map={tuple: HandlerTuple(ndivide=None, pad=0.3)})
    fig.suptitle(title, fontsize=12)
    return fig
