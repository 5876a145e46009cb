"""The tutorial's figures. Each function returns a matplotlib ``Figure``, never calls
``plt.show()`` and never changes global style (styles apply inside ``plt.style.context``)."""
from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np
from matplotlib.figure import Figure

from squareseq.data.squares import CORNERS
from squareseq.errors import SquareseqError
from squareseq.figures.layout import fixed_subplots

__all__ = ["counter_vs_clock", "plot_sequences", "plot_data", "plot_losses", "plot_lr_range"]
# helpers for other figure modules, not star-exported: plain_log_labels, CLASS_COLORS, CLASS_TITLES

LETTERS = ("A", "B", "C", "D")
CORNER_COLORS = ("gray", "g", "b", "r")
CLASS_COLORS = ("#d62728", "#1f77b4")  # red: counter-clockwise (0), blue: clockwise (1)
#: The direction task's classes (``data.class_names("direction")``) as the tutorial's figure
#: titles spell them, by label; the hidden-state figures and the report's tables use them too.
CLASS_TITLES = ("Counter-Clockwise", "Clockwise")


#: Fixed margins (inches, see :func:`~squareseq.figures.layout.fixed_layout`) of the square panels
#: (ticks -1, 0, 1, labels x_0 and x_1, a title of one line).
SQUARE_MARGINS = (0.75, 0.15, 0.55, 0.4, 0.85, 0.8)
#: ... and of one wide plot with its axes labels (the loss curve, the learning-rate range).
PLOT_MARGINS = (0.85, 0.2, 0.6, 0.25, 0.0, 0.0)


def _figure(n_rows: int, n_cols: int, figsize, margins=SQUARE_MARGINS) -> "tuple[Figure, np.ndarray]":
    """A pyplot figure (so notebooks show it, as the tutorial expects) and its flat axes, laid
    out with fixed ``margins``. Scripts that draw many figures should ``plt.close(fig)`` once
    they have saved them."""
    fig, axs = fixed_subplots(n_rows, n_cols, figsize, margins)
    return fig, axs.ravel()


def _square_axes(ax, limit: float = 1.5) -> None:
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")
    ax.set_xticks([-1, 0, 1])
    ax.set_yticks([-1, 0, 1])
    ax.set_xlabel("x₀")
    ax.set_ylabel("x₁", rotation=0)


def _draw_corners(ax) -> None:
    for (x, y), letter, color in zip(CORNERS, LETTERS, CORNER_COLORS):
        ax.scatter(x, y, c=color, s=400, zorder=2)
        ax.text(x, y, letter, color="w", ha="center", va="center", fontsize=12, zorder=3)


def _draw_path(ax, points: np.ndarray, color: str = "k", label_steps: bool = True) -> None:
    ax.plot(points[:, 0], points[:, 1], c=color, lw=2, alpha=0.5, zorder=1)
    for start, end in zip(points[:-1], points[1:]):
        ax.annotate("", xy=end, xytext=start,
                    arrowprops=dict(arrowstyle="->", color=color, lw=1.5, shrinkA=12, shrinkB=12))
    ax.scatter(points[:, 0], points[:, 1], c=color, s=400, zorder=2)
    if label_steps:
        for i, (x, y) in enumerate(points):
            ax.text(x, y, str(i + 1), color="w", ha="center", va="center", fontsize=12, zorder=3)


def counter_vs_clock(draw_arrows: bool = True) -> Figure:
    """The square's corners A-D; with arrows, one panel per direction of travel."""
    n_panels = 2 if draw_arrows else 1
    fig, axs = _figure(1, n_panels, (3.5 * n_panels, 3.5))
    for panel, ax in enumerate(axs):
        _square_axes(ax)
        if draw_arrows:
            clockwise = panel == 1
            order = [0, 1, 2, 3, 0] if clockwise else [0, 3, 2, 1, 0]
            corners = CORNERS[order].astype(float)
            for start, end in zip(corners[:-1], corners[1:]):
                ax.annotate("", xy=end, xytext=start,
                            arrowprops=dict(arrowstyle="->", color="k", lw=1.5, shrinkA=14, shrinkB=14))
            ax.set_title(CLASS_TITLES[int(clockwise)])
        _draw_corners(ax)
    return fig


def plot_sequences(basic_corners: Optional[np.ndarray] = None, task: str = "direction") -> Figure:
    """The eight noise-free sequences: every starting corner, in both directions.

    Titles name each sequence's class in ``task`` (see :data:`squareseq.data.squares.TASKS`); the
    default, ``"direction"``, draws the tutorial's figure.
    """
    from squareseq.data.squares import class_names, task_labels

    names = class_names(task)
    corners = CORNERS if basic_corners is None else np.asarray(basic_corners)
    fig, axs = _figure(2, 4, (12, 6.5))
    for clockwise in (1, 0):
        for start in range(4):
            ax = axs[(1 - clockwise) * 4 + start]
            order = [(start + i) % 4 for i in range(4)]
            if not clockwise:
                order = order[::-1]
            seq = corners[order].astype(float)
            _square_axes(ax)
            _draw_path(ax, seq, color=CLASS_COLORS[clockwise], label_steps=False)
            for (x, y), idx in zip(seq, order):
                ax.text(x, y, LETTERS[idx], color="w", ha="center", va="center", fontsize=12, zorder=3)
            letters = "".join(LETTERS[i] for i in order)
            if task == "direction":
                what = f"{CLASS_TITLES[clockwise]} (y={clockwise})"
            else:
                label = int(task_labels(task, [clockwise], [order[0]])[0])
                what = f"{names[label]} (y={label})"
            ax.set_title(f"{letters}: {what}", fontsize=11)
    return fig


def plot_data(points: Sequence[np.ndarray], directions: Union[Sequence[int], np.ndarray], n_rows: int = 2,
              n_cols: int = 5, labels: Union[Sequence[int], np.ndarray, None] = None,
              class_names: Optional[Sequence[str]] = None) -> Figure:
    """The first ``n_rows * n_cols`` noisy sequences, with their points numbered in order
    (blue: clockwise, red: counter-clockwise).

    Panels are titled by direction, as in the tutorial, or, with ``labels`` and ``class_names``
    (for tasks with more classes, e.g. ``"B cw"``), by each sequence's class name and label.
    """
    if n_rows < 1 or n_cols < 1:
        raise SquareseqError(f"n_rows and n_cols must be at least 1, got {n_rows} and {n_cols}")
    if len(points) != len(directions):
        raise SquareseqError(f"got {len(points)} sequences but {len(directions)} directions: pass one label per "
                             "sequence")
    if (labels is None) != (class_names is None):
        raise SquareseqError("pass labels and class_names together, or neither")
    if labels is not None and len(labels) != len(points):
        raise SquareseqError(f"got {len(points)} sequences but {len(labels)} labels: pass one label per sequence")
    fig, axs = _figure(n_rows, n_cols, (3 * n_cols, 3 * n_rows))
    for i, ax in enumerate(axs):
        if i >= len(points):
            ax.set_axis_off()
            continue
        label = int(directions[i])
        _square_axes(ax)
        _draw_path(ax, np.asarray(points[i]), color=CLASS_COLORS[label])
        if labels is None or class_names is None:  # both None or neither (checked above)
            title = f"{CLASS_TITLES[label]} (y={label})"
        else:
            title = f"{class_names[int(labels[i])]} (y={int(labels[i])})"
        ax.set_title(title, fontsize=12, color=CLASS_COLORS[label])
    return fig


def plain_log_labels(ax) -> None:
    """Labels a log-scaled y axis with plain numbers (0.1, 0.2, 0.5, ...) instead of
    ``2 x 10^-1``; minor ticks get a label only for 2s and 5s on short ranges, so labels
    never crowd."""
    from matplotlib.ticker import FuncFormatter

    def minor(value: float, _pos) -> str:
        low, high = ax.get_ylim()
        if value <= 0 or low <= 0 or high / low > 30:  # over 1.5 decades the major labels suffice
            return ""
        lead = value / 10 ** np.floor(np.log10(value) + 1e-9)
        return f"{value:g}" if round(lead) in (2, 5) and abs(lead - round(lead)) < 1e-6 else ""

    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(minor))


def plot_losses(history, ax=None) -> Figure:
    """Training and validation losses per epoch, on a log scale.

    ``history`` is a :class:`squareseq.training.loop.History` or any object with ``losses`` and
    ``val_losses``; a mapping with those keys works too.
    """
    losses = history["losses"] if isinstance(history, dict) else history.losses
    val_losses = history["val_losses"] if isinstance(history, dict) else history.val_losses
    if ax is None:
        fig, (ax,) = _figure(1, 1, (10, 4), PLOT_MARGINS)
    else:
        fig = ax.get_figure()
    epochs = np.arange(1, len(losses) + 1)
    ax.plot(epochs, losses, label="Training Loss", c="b")
    if any(v is not None for v in val_losses):
        ax.plot(epochs[: len(val_losses)], [np.nan if v is None else v for v in val_losses],
                label="Validation Loss", c="r")
    ax.set_yscale("log")
    plain_log_labels(ax)
    ax.set_xlabel("Epochs")
    ax.set_ylabel("Loss")
    ax.legend()
    return fig


def plot_lr_range(tracking, log_x: bool = True, ax=None) -> Figure:
    """The learning-rate range test's smoothed loss against the learning rate."""
    if ax is None:
        fig, (ax,) = _figure(1, 1, (6, 4), PLOT_MARGINS)
    else:
        fig = ax.get_figure()
    ax.plot(tracking["lr"], tracking["loss"])
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel("Learning Rate")
    ax.set_ylabel("Loss")
    return fig
