"""One sequence's journey through a recurrent cell, one panel per step, as arrows from the previous
state to the new one through every part of the update: an Elman RNN's (transform, add the input,
tanh), a GRU's gates (reset, update) and an LSTM's cell state (forget, add the gated input) and
hidden state (tanh, output gate).

The parts come from :func:`squareseq.models.hidden.unroll_rnn` and
:mod:`squareseq.figures.cell_steps`; the panels are the hidden-space panels of
:mod:`squareseq.figures.hidden` (the classifier's probability map, its 0.5 line).
"""
from __future__ import annotations

from typing import List, NamedTuple, Optional

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from squareseq.errors import ModelError, SquareseqError
from squareseq.figures.cell_steps import unroll_gru, unroll_lstm
from squareseq.figures.layout import below_legend
from squareseq.figures.plots import CLASS_COLORS, CLASS_TITLES
from squareseq.models.hidden import Projection, hidden_limits, probability_grid, recurrent_layer, unroll_rnn

__all__ = ["Journey", "journey_parts", "plot_cell_journey"]

#: Each cell's arrows: name (the legend's) and colour, in the order a step draws them.
ARROWS = {
    "RNN": (("transformed hidden", "#2ca02c"), ("+ transformed input", "#ff7f0e"), ("tanh", "#9467bd")),
    "GRU": (("transformed hidden", "#2ca02c"), ("reset gate: r *", "#d62728"), ("+ transformed input", "#ff7f0e"),
            ("tanh: candidate n", "#9467bd"), ("update gate: (1 - z) *", "#1f77b4"), ("+ z h", "#8c564b")),
    "LSTM": (("forget gate: f * c", "#d62728"), ("+ input gate * g", "#ff7f0e"), ("tanh(c)", "#9467bd"),
             ("output gate: o *", "#1f77b4")),
}


class Journey(NamedTuple):
    """What a journey draws, per step ``t``: the chains of points its arrows join."""

    cell: str  # "RNN", "GRU" or "LSTM"
    chains: List[List[np.ndarray]]  # per step, the chains: each (K, H), arrows join consecutive rows
    previous: np.ndarray  # (L, H) h_{t-1}
    hidden: np.ndarray  # (L, H) h_t
    previous_cell: Optional[np.ndarray]  # (L, H) c_{t-1} (LSTM only)
    gates: List[str]  # per step, the gates' values as text ("" for the RNN)


def _np(t: torch.Tensor) -> np.ndarray:
    return t[0].detach().cpu().numpy().astype(np.float64)


def _values(name: str, t: torch.Tensor) -> str:
    return f"{name} = [" + ", ".join(f"{v:.2f}" for v in _np(t)) + "]"


def journey_parts(rnn: nn.Module, sequence) -> Journey:
    """The journey of ``sequence`` ``(L, F)`` through the first layer of ``rnn`` (``nn.RNN``,
    ``nn.GRU`` or ``nn.LSTM``), from zero states."""
    x = torch.as_tensor(np.asarray(sequence, dtype=np.float32))[None]
    zero = np.zeros(int(getattr(rnn, "hidden_size", 0)))
    if isinstance(rnn, nn.GRU):
        gru = unroll_gru(rnn, x)
        hidden = np.stack([_np(s.hidden) for s in gru])
        previous = np.concatenate([zero[None], hidden[:-1]])
        chains = [[np.stack([previous[t], *(_np(p) for p in (s.transformed_hidden, s.reset_hidden, s.pre_activation,
                                                               s.candidate, s.gated_candidate, s.hidden))])]
                  for t, s in enumerate(gru)]
        gates = [f"{_values('r', s.reset)}, {_values('z', s.update)}" for s in gru]
        return Journey("GRU", chains, previous, hidden, None, gates)
    if isinstance(rnn, nn.LSTM):
        lstm = unroll_lstm(rnn, x)
        hidden, cells = np.stack([_np(s.hidden) for s in lstm]), np.stack([_np(s.cell) for s in lstm])
        previous = np.concatenate([zero[None], hidden[:-1]])
        previous_cell = np.concatenate([zero[None], cells[:-1]])
        chains = [[np.stack([previous_cell[t], _np(s.forgotten_cell), cells[t]]),
                   np.stack([cells[t], _np(s.squashed_cell), hidden[t]])] for t, s in enumerate(lstm)]
        gates = [f"{_values('f', s.forget_gate)}, {_values('o', s.output_gate)}" for s in lstm]
        return Journey("LSTM", chains, previous, hidden, previous_cell, gates)
    if isinstance(rnn, nn.RNN):
        steps = unroll_rnn(rnn, x)
        hidden = np.stack([_np(s.hidden) for s in steps])
        previous = np.concatenate([zero[None], hidden[:-1]])
        chains = [[np.stack([previous[t], _np(s.transformed_hidden), _np(s.pre_activation), hidden[t]])]
                  for t, s in enumerate(steps)]
        return Journey("RNN", chains, previous, hidden, None, [""] * len(steps))
    raise ModelError(f"a journey needs an nn.RNN, nn.GRU or nn.LSTM recurrent layer, not {type(rnn).__name__}")


def _letters(seq: np.ndarray) -> str:
    from squareseq.data.squares import CORNERS

    idx = [int(np.argmin(((CORNERS - p) ** 2).sum(axis=1))) for p in seq]
    return "".join("ABCD"[i] for i in idx)


def _points(journey: Journey) -> np.ndarray:
    """Every point a journey draws, ``(M, H)``."""
    parts = [np.concatenate(chains) for chains in journey.chains] + [journey.previous]
    return np.concatenate(parts)


def _view(model: nn.Module, journey: Journey):
    from squareseq.figures.hidden import HiddenView, _classifier, _line_of

    size = journey.hidden.shape[1]
    projection = Projection.fit(_points(journey).reshape(-1, size))
    xlim, ylim = hidden_limits(projection.transform(_points(journey)), margin=0.25)
    classifier = _classifier(model)
    grid = probability_grid(classifier, xlim, ylim, 61, None if projection.is_identity else projection)
    return HiddenView(projection.transform(journey.hidden)[None], projection, xlim, ylim, grid,
                      _line_of(classifier, xlim, ylim, projection))


def _arrows(ax, journey: Journey, t: int, projection: Projection) -> None:
    """Step ``t``'s arrows, named for the legend."""
    specs = iter(ARROWS[journey.cell])
    for chain in journey.chains[t]:
        points = projection.transform(chain)
        for start, end in zip(points[:-1], points[1:]):
            name, color = next(specs)
            ax.annotate("", xy=end, xytext=start, zorder=4,
                        arrowprops=dict(arrowstyle="-|>", color=color, lw=2, shrinkA=0, shrinkB=0))
            ax.plot([], [], c=color, lw=2, label=name)  # legend entry for the arrow


def plot_cell_journey(model: nn.Module, sequence, label: Optional[int] = None) -> Figure:
    """One sequence's hidden state through time, one panel per step, as arrows through the parts
    of the update of ``model.basic_rnn``'s first layer (see :data:`ARROWS`): for an ``nn.RNN``,
    ``h_{t-1}`` transformed (``W_hh h + b_hh``), plus the transformed input, squashed by tanh;
    for an ``nn.GRU``, the same through the reset gate, then the update gate's blend with
    ``h_{t-1}``; for an ``nn.LSTM``, the cell state (forget gate, plus the gated input) and the
    hidden state read from it (tanh, output gate). Larger states are projected with PCA.
    """
    from squareseq.figures.hidden import (
        draw_boundary,
        draw_probability,
        hidden_margins,
        panel_figure,
        projected_text,
        spaced_ticks,
        style_hidden_axes,
    )

    rnn = recurrent_layer(model)
    seq = np.asarray(sequence, dtype=np.float32)
    if seq.ndim != 2:
        raise SquareseqError(f"sequence must have shape (L, F), got {seq.shape}")
    journey = journey_parts(rnn, seq)
    view = _view(model, journey)
    projection, (xlim, ylim) = view.projection, (view.xlim, view.ylim)
    previous, hidden = projection.transform(journey.previous), projection.transform(journey.hidden)
    n_steps = len(hidden)
    aspect = (ylim[1] - ylim[0]) / (xlim[1] - xlim[0])
    letters = _letters(seq) if seq.shape[1] == 2 else ""
    what = f"{CLASS_TITLES[label]} (y={label})" if label is not None else ""
    through = {"RNN": "", "GRU": " through the GRU's gates", "LSTM": " (and cell state) through the LSTM"}
    heading = f"Journey of one sequence's hidden state{through[journey.cell]}{': ' + letters if letters else ''}"
    heading = projected_text(f"{heading}, {what}" if what else heading, view.projection)
    legend_rows = 1 if journey.cell == "RNN" else 2
    margins = hidden_margins(heading, title_lines=1 if journey.cell == "RNN" else 2, legend_rows=legend_rows)
    panel_h = min(3.4, 2.9 * aspect)  # no blank band
    fig, axs = panel_figure(1, n_steps, (3.4 * n_steps, panel_h + margins[2] + margins[3]), margins)
    for t, ax in enumerate(axs):
        draw_probability(ax, view.grid, alpha=0.3)
        draw_boundary(ax, view.line)
        if projection.is_identity:  # tanh's range
            ax.plot([-1, 1, 1, -1, -1], [-1, -1, 1, 1, -1], c="0.5", lw=0.8, ls=":", zorder=1)
        _arrows(ax, journey, t, projection)
        ax.scatter(*previous[t], c="0.3", s=40, zorder=5, label="hₜ₋₁")
        if journey.previous_cell is not None:
            ax.scatter(*projection.transform(journey.previous_cell[t]), c="0.3", marker="s", s=36, zorder=5,
                       label="cₜ₋₁")
        final_color = CLASS_COLORS[label] if label is not None else "k"
        ax.scatter(*hidden[t], c=final_color, s=60, edgecolors="w", zorder=5, label="hₜ")
        point = ", ".join(f"{v:.2f}" for v in seq[t])
        corner = f" ({letters[t]})" if letters else ""
        title = f"Step {t + 1}: x = ({point}){corner}"
        style_hidden_axes(ax, view, f"{title}\n{journey.gates[t]}" if journey.gates[t] else title)
        spaced_ticks(ax)
        if journey.gates[t]:
            ax.title.set_fontsize(9)
    handles, names = axs[0].get_legend_handles_labels()
    ncol = len(names) if len(names) <= 6 else -(-len(names) // 2)
    below_legend(fig, handles, names, ncol=ncol)
    fig.suptitle(heading, fontsize=12)
    return fig

