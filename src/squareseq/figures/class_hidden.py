"""Hidden-space figures for any classes: the hidden states of real test sequences (projected with
PCA above 2-D), coloured by their true class and named in a legend, over a map of the class the
classifier predicts there, shaded by its confidence.

What runs on a user's data (and the multi-class square task) get instead of the tutorial's
clockwise/counter-clockwise figures of :mod:`squareseq.figures.hidden`:

* :func:`plot_class_final`: every test sequence's final hidden state, what the classifier reads;
* :func:`plot_class_steps`: the states after a few steps (all, for short sequences);
* :func:`plot_class_paths`: paths through hidden space from the zero state, one panel per class;
* :func:`plot_class_journey`: one real test sequence, step by step: its path, its inputs and
  the class probabilities after each step.

Variable-length sequences are drawn up to their own last step (never through their padding).
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from squareseq.errors import SquareseqError
from squareseq.figures.classes import (
    ClassMap,
    class_colors,
    class_legend,
    class_map,
    class_probabilities,
    class_title,
    confidence_bar,
    draw_class_map,
    shown_steps,
)
from squareseq.figures.figure_set import pooled_features
from squareseq.figures.hidden import panel_figure, projected_title, style_hidden_axes
from squareseq.models.hidden import Projection, hidden_limits, hidden_states

__all__ = ["ClassView", "class_view", "final_features", "plot_class_final", "plot_class_steps", "plot_class_paths",
           "plot_class_journey"]

#: Panels of :func:`plot_class_paths` at most (the first classes; the title says so).
MAX_PATH_PANELS = 12


class ClassView(NamedTuple):
    """What the class figures draw, computed once for a model and a set of sequences."""

    x: np.ndarray  # (N, L, F) inputs
    hidden: np.ndarray  # (N, L, H) float32 hidden states (rows past a sequence's length: padding)
    states: np.ndarray  # (N, L, 2) projected, NaN past each sequence's length
    lengths: np.ndarray  # (N,) real steps
    y: np.ndarray  # (N,) true classes
    probs: np.ndarray  # (N, C) the classifier's probabilities of the final states
    projection: Projection
    xlim: tuple
    ylim: tuple
    grid: ClassMap
    names: Sequence[str]
    colors: np.ndarray  # (C, 3)
    what: str = "Final hidden states"  # what each point is (a convolution's: its pooled features)

    @property
    def final(self) -> np.ndarray:
        """``(N, 2)`` each sequence's state after its last real step."""
        return self.states[np.arange(len(self.states)), self.lengths - 1]

    @property
    def predicted(self) -> np.ndarray:
        return self.probs.argmax(axis=1)


def class_view(model: nn.Module, x, y, lengths=None, class_names: Optional[Sequence[str]] = None,
               n_grid: int = 81) -> ClassView:
    """Hidden states of ``x`` ``(N, L, F)`` (labels ``y``, real steps ``lengths`` or None = all),
    their projection to the plane, the classifier's verdict on each and its class map."""
    x_t = torch.as_tensor(x, dtype=torch.float32)
    if x_t.dim() != 3 or len(x_t) == 0:
        raise SquareseqError(f"class figures need a non-empty (N, L, F) batch, got shape {tuple(x_t.shape)}")
    n, seq_len = x_t.shape[0], x_t.shape[1]
    lens = np.full(n, seq_len) if lengths is None else np.asarray(torch.as_tensor(lengths).cpu(), dtype=int)
    pooled = pooled_features(model)
    if pooled or model.get_submodule("basic_rnn").bidirectional:  # one point per sequence: what the classifier reads
        hidden = final_features(model, x_t, lengths)[:, None]
        lens = np.ones(n, dtype=int)
    else:
        hidden = hidden_states(model, x_t).numpy()  # float32: long sequences stay affordable
    real = np.arange(hidden.shape[1])[None] < lens[:, None]  # (N, L)
    projection = Projection.fit(hidden[real])
    states = projection.transform(hidden)
    states[~real] = np.nan
    probs = class_probabilities(model, hidden[np.arange(n), lens - 1])
    n_classes = probs.shape[1]
    names = list(class_names) if class_names is not None and len(class_names) == n_classes \
        else [f"class {k}" for k in range(n_classes)]
    origin = projection.transform(np.zeros(hidden.shape[-1]))
    xlim, ylim = hidden_limits(np.concatenate([states[real], origin[None]]), minimum=0.0)
    grid = class_map(model, xlim, ylim, n_grid, projection)
    labels = np.asarray(torch.as_tensor(y).reshape(-1).cpu()).astype(int)
    return ClassView(x_t.numpy(), hidden, states, lens, labels, probs, projection, xlim, ylim, grid, names,
                     class_colors(n_classes), "Pooled features" if pooled else "Final hidden states")


def final_features(model: nn.Module, x: torch.Tensor, lengths=None) -> np.ndarray:
    """``(N, D * H)`` what the classifier reads: the last layer's final hidden states of both
    directions (the model's ``hidden`` after a forward pass; packed, so padding is never read),
    or a convolution's responses pooled over each sequence's real steps."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            if pooled_features(model):
                pool: Callable[..., torch.Tensor] = model.features  # type: ignore[assignment]  # a ConvClassifier's
                features = pool(x, None if lengths is None else torch.as_tensor(lengths))
                return features.float().cpu().numpy()
            model(x, None if lengths is None else torch.as_tensor(lengths))
    finally:
        model.train(was_training)
    hidden = model.hidden
    if not isinstance(hidden, torch.Tensor):
        raise SquareseqError(f"{type(model).__name__} keeps no final hidden states ('hidden') after a forward pass")
    directions = 2 if model.get_submodule("basic_rnn").bidirectional else 1
    last = hidden[-directions:]  # (D, N, H)
    return last.transpose(0, 1).reshape(last.shape[1], -1).float().cpu().numpy()


def _dots(ax, points: np.ndarray, labels: np.ndarray, view: ClassView, size: float = 22, **kwargs):
    """Points coloured by class (NaN points, past a sequence's end, are left out)."""
    keep = np.isfinite(points).all(axis=1)
    style = {"edgecolors": "w", "linewidths": 0.5, "zorder": 3, **kwargs}
    return ax.scatter(points[keep, 0], points[keep, 1], c=view.colors[labels[keep]], s=size, **style)


def _panel(ax, view: ClassView, title: str, alpha: float = 1.0) -> None:
    image = draw_class_map(ax, view.grid, view.colors)
    image.set_alpha(alpha)
    style_hidden_axes(ax, view, title)  # type: ignore[arg-type]  # reads only limits and projection
    ax.set_aspect("auto")  # PCA's second component spans less: equal axes would leave flat strips


def plot_class_final(view: ClassView) -> Figure:
    """Every sequence's final hidden state (what the classifier reads), coloured by its true
    class; misclassified ones ringed in black."""
    fig, (ax,) = panel_figure(1, 1, (6.8, 5.6))
    _panel(ax, view, "")
    wrong = view.predicted != view.y
    _dots(ax, view.final, view.y, view, size=26)
    ax.scatter(view.final[wrong, 0], view.final[wrong, 1], s=70, facecolors="none", edgecolors="k", linewidths=1.0,
               zorder=4)
    from matplotlib.lines import Line2D

    ring = Line2D([], [], ls="", marker="o", ms=8, mfc="none", mec="k")
    class_legend(fig, view.names, view.colors, extra=[(ring, f"misclassified ({int(wrong.sum())})")])
    confidence_bar(fig, [ax], len(view.names))
    space = "pooled features" if view.what == "Pooled features" else "hidden states"
    projected_title(fig, f"{view.what} of {len(view.y)} test sequences", view.projection, space)
    return fig


def plot_class_steps(view: ClassView) -> Figure:
    """The hidden states after a few steps, one panel each (the last panel: each sequence's
    final state); the classes separate as the sequences are read."""
    seq_len = view.states.shape[1]
    steps = shown_steps(seq_len)
    variable = bool((view.lengths < seq_len).any())
    fig, axs = panel_figure(1, len(steps), (3.0 * len(steps) + 1.2, 4.0))
    for ax, t in zip(axs, steps):
        last = t == seq_len - 1
        if last:
            what = "final (each sequence's last step)" if variable else f"after step {t + 1} (final)"
            points = view.final
        else:
            points, what = view.states[:, t], f"after step {t + 1}"
        _panel(ax, view, what)
        _dots(ax, points, view.y, view)
        if ax is not axs[0]:
            ax.set_ylabel("")
    class_legend(fig, view.names, view.colors)
    confidence_bar(fig, axs, len(view.names))
    projected_title(fig, "Hidden states of the test sequences, step by step", view.projection)
    return fig


def plot_class_paths(view: ClassView, n_paths: int = 12) -> Figure:
    """Paths of the hidden states from the zero initial state, one panel per class (up to
    ``n_paths`` sequences of each, the first :data:`MAX_PATH_PANELS` classes)."""
    n_classes = min(len(view.names), MAX_PATH_PANELS)
    n_cols = min(n_classes, 4 if n_classes != 9 else 3)
    n_rows = -(-n_classes // n_cols)
    fig, axs = panel_figure(n_rows, n_cols, (3.3 * n_cols + 1.0, 2.8 * n_rows + 1.4))
    origin = view.projection.transform(np.zeros(view.hidden.shape[-1]))
    for k, ax in enumerate(axs):
        if k >= n_classes:
            ax.set_axis_off()
            continue
        idx = np.flatnonzero(view.y == k)
        _panel(ax, view, f"{class_title(view.names, k)}: {min(len(idx), n_paths)} of {len(idx)}", alpha=0.6)
        color = view.colors[k]
        for i in idx[:n_paths]:
            path = np.concatenate([origin[None], view.states[i, :view.lengths[i]]])
            ax.plot(path[:, 0], path[:, 1], c=color, lw=1, alpha=0.6, zorder=2)
        _dots(ax, view.final[idx[:n_paths]], view.y[idx[:n_paths]], view, size=24)
        ax.scatter(origin[0], origin[1], marker="x", c="k", s=40, zorder=4)
        if k % n_cols:
            ax.set_ylabel("")
    from matplotlib.lines import Line2D

    start = Line2D([], [], ls="", marker="x", ms=7, mec="k")
    class_legend(fig, view.names, view.colors, extra=[(start, "start (h = 0)")],
                 title="class (paths: true class; background: predicted class)")
    confidence_bar(fig, axs[:n_classes], len(view.names))
    more = f" (the first {n_classes} of {len(view.names)} classes)" if n_classes < len(view.names) else ""
    projected_title(fig, f"Paths of the hidden states through time, per class{more}", view.projection)
    return fig


def plot_class_journey(view: ClassView, model: nn.Module, index: int = 0, most_classes: int = 5) -> Figure:
    """One real test sequence, step by step: its path through hidden space, its inputs, and the
    probability of each class had it ended after each step (the likeliest classes and its own)."""
    if not 0 <= index < len(view.y):
        raise SquareseqError(f"sequence {index} out of range: there are {len(view.y)}")
    length = int(view.lengths[index])
    true, predicted = int(view.y[index]), int(view.predicted[index])
    path = view.states[index, :length]
    origin = view.projection.transform(np.zeros(view.hidden.shape[-1]))
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(12.0, 5.6), layout="constrained")
    grid = fig.add_gridspec(2, 2, width_ratios=[1.0, 1.25])
    ax = fig.add_subplot(grid[:, 0])
    _panel(ax, view, "its hidden states (others' final states faint)", alpha=0.7)
    _dots(ax, view.final, view.y, view, size=12, alpha=0.35, linewidths=0)
    full = np.concatenate([origin[None], path])
    ax.plot(full[:, 0], full[:, 1], c="k", lw=1.4, zorder=4)
    ax.scatter(full[1:, 0], full[1:, 1], c=np.arange(length), cmap="Greys", vmin=-0.3 * length, vmax=length,
               s=28, edgecolors="k", linewidths=0.6, zorder=5)
    ax.scatter(origin[0], origin[1], marker="x", c="k", s=40, zorder=5)
    for t in sorted({0, length - 1}):
        ax.annotate(f"step {t + 1}", path[t], xytext=(6, 6), textcoords="offset points", fontsize=9, zorder=6,
                    bbox=dict(boxstyle="round,pad=0.15", fc="w", ec="none", alpha=0.8))
    inputs = fig.add_subplot(grid[0, 1])
    image = inputs.imshow(view.x[index, :length].T, aspect="auto", cmap="viridis", origin="lower",
                          extent=(0.5, length + 0.5, -0.5, view.x.shape[2] - 0.5), interpolation="nearest")
    fig.colorbar(image, ax=inputs, label="input value")
    inputs.set_ylabel("feature")
    inputs.set_title("its inputs, step by step", fontsize=11)
    probs_ax = fig.add_subplot(grid[1, 1], sharex=inputs)
    probs = class_probabilities(model, view.hidden[index, :length])  # (length, C)
    shown = list(np.argsort(-probs[-1])[:most_classes])
    if true not in shown:
        shown.append(true)
    steps = np.arange(1, length + 1)
    for k in shown:
        style = "-" if k == true else "--"
        probs_ax.plot(steps, probs[:, k], ls=style, c=view.colors[k], lw=2, marker="o", ms=3,
                      label=class_title(view.names, k) + (" (true)" if k == true else ""))
    probs_ax.set_ylim(-0.02, 1.02)
    probs_ax.set_xlabel("step")
    probs_ax.set_ylabel("P(class)")
    probs_ax.set_title("the class probabilities, had it ended after each step", fontsize=11)
    probs_ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    projected_title(fig, f"Journey of test sequence {index} ({length} steps): true class "
                    f"'{class_title(view.names, true)}', predicted '{class_title(view.names, predicted)}' "
                    f"(P = {view.probs[index, predicted]:.2f})", view.projection)
    return fig
