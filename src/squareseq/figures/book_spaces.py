"""The book's figures of a recurrent cell worked by hand, in the plane of a 2-D hidden state:

* :func:`feature_spaces`: how each stage of a cell (:mod:`squareseq.figures.book_cells`) bends
  the square of tanh's range, and where the hidden state goes, one row per step;
* :func:`transformed_inputs`: the square's corners and their images ``W_ih x + b_ih``;
* :func:`paths_clock_and_counter` and :func:`paths_starts`: the hidden state's path through the
  steps of the noise-free sequences, arrow by arrow (transform, add the input, tanh).

Every function returns its ``Figure`` (given an ``ax``, that axes' figure); panels use
constrained layout, and the parts of a path are told apart by markers named in one legend,
so no label lands on another.
"""
from __future__ import annotations

import copy
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from squareseq.data.squares import CORNERS
from squareseq.errors import SquareseqError
from squareseq.figures.book_cells import assemble_rnn
from squareseq.figures.hidden import panel_figure
from squareseq.figures.plots import CORNER_COLORS, LETTERS
from squareseq.models.hidden import unroll_rnn

__all__ = ["feature_spaces", "transformed_inputs", "paths_clock_and_counter", "paths_starts", "square_grid",
           "STEP_COLORS"]

#: The colour of the hidden state a row starts from (black: the initial zero state), then of
#: each corner's step, as the book colours them.
STEP_COLORS = ("k", *CORNER_COLORS)
#: The markers of a path's parts (see :func:`_draw_steps`).
PART_MARKERS = (("s", r"$t_h = W_{hh} h + b_{hh}$"), ("^", r"$t_h + t_x$"), ("o", r"$h = \tanh(t_h + t_x)$"))


def square_grid(n_lines: int = 9, n_points: int = 41, limit: float = 1.0) -> np.ndarray:
    """Grid lines of the square ``[-limit, limit]^2``: ``(2 * n_lines, n_points, 2)``."""
    ticks, along = np.linspace(-limit, limit, n_lines), np.linspace(-limit, limit, n_points)
    vertical = np.stack([np.stack([np.full_like(along, t), along], axis=-1) for t in ticks])
    return np.concatenate([vertical, vertical[..., ::-1]])


def _stages(model: nn.Module, points: torch.Tensor) -> List[np.ndarray]:
    """``points`` ``(M, 2)`` after each of ``model``'s stages, in order."""
    out = []
    with torch.no_grad():
        for stage in model.children():
            points = stage(points)
            out.append(points.numpy().astype(np.float64))
    return out


def _limits(bounds, points: np.ndarray) -> tuple:
    """``bounds``, widened (with a margin) to hold ``points`` when they fall outside."""
    low, high = float(bounds[0]), float(bounds[1])
    finite = points[np.isfinite(points)]
    if len(finite):
        low, high = min(low, finite.min() * 1.1 - 0.05), max(high, finite.max() * 1.1 + 0.05)
    return low, high


def _gate_title(title: str, values: Sequence[float]) -> str:
    text = ", ".join(f"{v:.2f}" for v in values)
    if title.endswith("$"):  # inside the book's mathtext
        return title[:-1] + r"\ [" + text + "]$"
    return f"{title} [{text}]"


def _space_panel(ax, lines: np.ndarray, point: np.ndarray, color: str, limits: tuple, title: str) -> None:
    from matplotlib.collections import LineCollection

    ax.add_collection(LineCollection(list(lines), colors="k", linewidths=0.5, alpha=0.6, zorder=1))
    ax.scatter(point[:, 0], point[:, 1], c=color, s=100, edgecolors="w", zorder=3)
    ax.set_xlim(limits)
    ax.set_ylim(limits)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=10)


def feature_spaces(model: nn.Module, mstates: Sequence[dict], hstates: Sequence[torch.Tensor], gates: Dict,
                   titles: Optional[Sequence[str]] = None, bounded: Optional[Sequence[str]] = None,
                   bounds=(-7.2, 7.2), n_points: int = 4) -> Figure:
    """One row per step (the first ``n_points``), one column per stage of the cell ``model`` (an
    ``nn.Sequential`` of :mod:`squareseq.figures.book_cells`), after a first column with the
    hidden state the step starts from: the grid of ``[-1, 1]^2`` as each stage bends it, and the
    hidden state (coloured by the step's corner, black for the zero state) going through.

    Args:
        mstates: per step, the cell's ``state_dict`` (as ``generate_rnn_states`` returns them).
        hstates: per step, the hidden state the step starts from (as ``generate_rnn_states``
            returns them).
        gates: the gated stages' values per step (``{"rmult": [...], ...}``), printed in their titles.
        titles: the columns' titles (default: ``hidden`` and the stages' names).
        bounded: the stages whose output lies in ``[-1, 1]`` (drawn on that square); the others
            on ``bounds``, widened when the hidden state falls outside.
    """
    layers = [name for name, _ in model.named_children()]
    titles = ["hidden", *layers] if titles is None else list(titles)
    bounded = list(bounded or [])
    if len(titles) != len(layers) + 1:
        raise SquareseqError(f"titles needs {len(layers) + 1} entries (the hidden state, then each stage), "
                             f"got {len(titles)}")
    n_points = min(n_points, len(mstates), len(hstates))
    fig, axs = panel_figure(n_points, len(layers) + 1, (2.9 * (len(layers) + 1), 3.0 * n_points + 0.4))
    axs = axs.reshape(n_points, -1)
    grid = square_grid()
    cell = copy.deepcopy(model).cpu()
    for i in range(n_points):
        cell.load_state_dict(mstates[i])
        hidden = torch.as_tensor(hstates[i], dtype=torch.float32).detach().cpu().reshape(1, -1)
        if hidden.shape[1] != 2:
            raise SquareseqError(f"feature spaces draw 2-D hidden states, got size {hidden.shape[1]}")
        stages = _stages(cell, torch.as_tensor(np.concatenate([grid.reshape(-1, 2), hidden.numpy()]),
                                               dtype=torch.float32))
        start = hidden.numpy().astype(np.float64)
        first = (-1.05, 1.05) if layers[-1] in bounded else _limits(bounds, start)
        _space_panel(axs[i, 0], grid, start, "k" if i == 0 else CORNER_COLORS[(i - 1) % 4], first, titles[0])
        axs[i, 0].set_ylabel(f"Input #{i}", fontsize=13)
        for j, (layer, out) in enumerate(zip(layers, stages)):
            lines, point = out[:-1].reshape(grid.shape), out[-1:]
            limits = (-1.05, 1.05) if layer in bounded else _limits(bounds, point)
            title = _gate_title(titles[j + 1], gates[layer][i]) if layer in gates else titles[j + 1]
            _space_panel(axs[i, j + 1], lines, point, CORNER_COLORS[i % 4], limits, title)
    return fig


def transformed_inputs(linear_input: nn.Module, basic_corners=None, basic_letters=None, basic_colors=None, ax=None,
                       title: Optional[str] = None) -> Figure:
    """The square's corners (faint, dashed edges) and their images under ``linear_input``
    (``t_x = W_ih x + b_ih``, solid edges), each corner with its letter."""
    corners = np.asarray(CORNERS if basic_corners is None else basic_corners, dtype=np.float64)
    letters = list(LETTERS if basic_letters is None else basic_letters)
    colors = list(CORNER_COLORS if basic_colors is None else basic_colors)
    device = next(linear_input.parameters()).device
    with torch.no_grad():
        moved = linear_input(torch.as_tensor(corners, dtype=torch.float32, device=device)).cpu().numpy()
    if moved.shape[-1] != 2:
        raise SquareseqError(f"transformed inputs draw a 2-D transform, this one has {moved.shape[-1]} outputs")
    if ax is None:
        fig, (ax,) = panel_figure(1, 1, (5, 5))
    else:
        fig = ax.get_figure()
    for points, alpha, style in ((corners, 0.35, "--"), (moved.astype(np.float64), 1.0, "-")):
        closed = np.concatenate([points, points[:1]])
        ax.plot(closed[:, 0], closed[:, 1], c="k", lw=1, ls=style, alpha=0.5, zorder=1)
        for (x, y), letter, color in zip(points, letters, colors):
            ax.scatter(x, y, c=color, s=400, alpha=alpha, zorder=2)
            ax.text(x, y, letter, color="w", ha="center", va="center", fontsize=12, zorder=3)
    both = np.concatenate([corners, moved])
    centre, half = (both.max(0) + both.min(0)) / 2, (both.max(0) - both.min(0)).max() / 2 * 1.25 + 0.3
    ax.set_xlim(centre[0] - half, centre[0] + half)
    ax.set_ylim(centre[1] - half, centre[1] + half)
    ax.set_aspect("equal")
    ax.set_xlabel(r"$x_0$")
    ax.set_ylabel(r"$x_1$", rotation=0)
    if title is not None:
        ax.set_title(title)
    return fig


def _sequence(b: int, clockwise: bool) -> List[int]:
    return [(b + i) % 4 if clockwise else (b - i) % 4 for i in range(4)]


def _rnn_path(rnn: nn.RNN, order: List[int]) -> np.ndarray:
    """``(L, 4, 2)``: per step, ``h_{t-1}``, ``t_h``, ``t_h + t_x`` and ``h_t``."""
    steps = unroll_rnn(rnn, torch.as_tensor(CORNERS[order], dtype=torch.float32)[None])
    h = np.zeros(2)
    rows = []
    for step in steps:
        parts = [p[0].numpy().astype(np.float64) for p in (step.transformed_hidden, step.pre_activation, step.hidden)]
        rows.append(np.stack([h, *parts]))
        h = parts[-1]
    return np.stack(rows)


def _draw_steps(ax, path: np.ndarray, order: List[int], upto: int, limit: float) -> None:
    """Steps ``0..upto`` of ``path``: arrows and markers in each step's corner colour (earlier
    steps faint), the tanh square in red, a star on the final state."""
    from matplotlib import patches

    for k in range(upto + 1):
        color, alpha = CORNER_COLORS[order[k]], 1.0 if k == upto else 0.35
        for start, end in zip(path[k, :-1], path[k, 1:]):
            ax.annotate("", xy=end, xytext=start, zorder=3,
                        arrowprops=dict(arrowstyle="-|>", color=color, lw=1.5, alpha=alpha, shrinkA=3, shrinkB=3))
        for (marker, name), point in zip(PART_MARKERS, path[k, 1:]):
            ax.scatter(*point, c=color, marker=marker, s=36, alpha=alpha, zorder=4, label=name)
    if upto == len(path) - 1:
        ax.scatter(*path[-1, -1], c=CORNER_COLORS[order[-1]], marker="*", s=256, edgecolors="k", zorder=5,
                   label="final hidden state")
    ax.add_patch(patches.Rectangle((-1, -1), 2, 2, lw=1, edgecolor="r", facecolor="none", zorder=2))
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")
    ax.set_xlabel(r"$h_0$")


def _path_rows(fig, axs: np.ndarray, rnn: nn.RNN, rows: List[tuple], letters: List[str]) -> None:
    """One row of panels per ``(start, clockwise)`` in ``rows``: panel ``n`` adds step ``n``."""
    paths = [_rnn_path(rnn, _sequence(b, clockwise)) for b, clockwise in rows]
    limit = max(7.2, max(float(np.abs(p).max()) * 1.1 for p in paths))
    for panels, path, (b, clockwise) in zip(axs, paths, rows):
        order = _sequence(b, clockwise)
        for n, ax in enumerate(panels):
            _draw_steps(ax, path, order, n, limit)
            ax.set_title(f"Input #{n} ({letters[order[n]]})")
        direction = "Clockwise" if clockwise else "Counter-Clockwise"
        panels[0].set_ylabel(f"Start at {letters[b]}, {direction}\n" + r"$h_1$", rotation=90)
    handles, names = axs[0][-1].get_legend_handles_labels()
    unique = dict(zip(names, handles))
    fig.legend(list(unique.values()), list(unique), loc="outside lower center", ncol=len(unique), frameon=False)


def paths_clock_and_counter(linear_hidden: nn.Linear, linear_input: nn.Linear, b: int = 0, basic_letters=None,
                            only_clock: bool = False) -> Figure:
    """The hidden state's path through the noise-free sequence starting at corner ``b``,
    clockwise (top row) and counter-clockwise (bottom row); panel ``n`` adds step ``n``'s
    arrows: ``h`` transformed (``t_h``), plus the transformed input (``t_h + t_x``), squashed by
    tanh into the red square. ``only_clock``: the clockwise row alone, as a 2 x 2 grid."""
    letters = list(LETTERS if basic_letters is None else basic_letters)
    rnn = assemble_rnn(linear_hidden, linear_input)
    if only_clock:
        fig, axs = panel_figure(2, 2, (9, 10))
        _path_rows(fig, axs.reshape(1, 4), rnn, [(b, True)], letters)
        for ax in axs[1::2]:
            ax.set_ylabel("")
        axs[2].set_ylabel(r"$h_1$")
    else:
        fig, axs = panel_figure(2, 4, (17, 9.5))
        _path_rows(fig, axs.reshape(2, 4), rnn, [(b, True), (b, False)], letters)
    return fig


def paths_starts(linear_hidden: nn.Linear, linear_input: nn.Linear, basic_letters=None) -> Figure:
    """:func:`paths_clock_and_counter`'s clockwise row for each starting corner, one row each:
    the paths differ at first and end in the same region."""
    letters = list(LETTERS if basic_letters is None else basic_letters)
    fig, axs = panel_figure(4, 4, (17, 18))
    _path_rows(fig, axs.reshape(4, 4), assemble_rnn(linear_hidden, linear_input), [(b, True) for b in range(4)],
               letters)
    return fig
