"""The book's plotting API by name: what ``from squareseq.plots import *`` brings.

The sequences chapter's notebook calls its figures by these names and arguments; each here is
built on squareseq's own figures and returns its ``Figure``:

* the tutorial's figures (:mod:`squareseq.figures.plots`): ``counter_vs_clock``,
  ``plot_sequences``, ``plot_data``, ``plot_losses``, ``plot_lr_range``;
* contours (:mod:`squareseq.figures.book_contours`): ``probability_contour``,
  ``hidden_states_contour``, ``canonical_contour``, ``compare_cells``;
* a cell worked by hand (:mod:`squareseq.figures.book_spaces`, :mod:`squareseq.figures.book_cells`):
  ``feature_spaces``, ``transformed_inputs``, ``paths_clock_and_counter``, ``paths_starts``,
  ``build_rnn_cell``, ``build_gru_cell``, ``disassemble_rnn``, ``disassemble_gru``,
  ``generate_rnn_states``, ``generate_gru_states``;
* the chapter's numbered figures: :func:`figure8` (an RNN cell by hand on one sequence),
  :func:`figure13` (transformed inputs), :func:`figure16` and :func:`figure17` (the hidden state
  through the RNN's stages), :func:`figure20` and :func:`figure25` (RNN / GRU / LSTM side by side),
  :func:`figure22` (the hidden state through the GRU's gates).
"""
from __future__ import annotations

import torch
from matplotlib.figure import Figure
from torch import nn

from squareseq.data.squares import CORNERS
from squareseq.errors import ModelError
from squareseq.figures.book_cells import (
    build_gru_cell,
    build_rnn_cell,
    disassemble_gru,
    disassemble_rnn,
    generate_gru_states,
    generate_rnn_states,
)
from squareseq.figures.book_contours import (
    canonical_contour,
    compare_cells,
    hidden_states_contour,
    probability_contour,
)
from squareseq.figures.book_spaces import feature_spaces, paths_clock_and_counter, paths_starts, transformed_inputs
from squareseq.figures.plots import (  # noqa: F401  # as before
    CLASS_COLORS,
    CLASS_TITLES,
    CORNER_COLORS,
    LETTERS,
    counter_vs_clock,
    plain_log_labels,  # noqa: F401  # squareseq.plots has always had it
    plot_data,
    plot_losses,
    plot_lr_range,
    plot_sequences,
)

__all__ = [
    "counter_vs_clock", "plot_sequences", "plot_data", "plot_losses", "plot_lr_range",
    "probability_contour", "hidden_states_contour", "canonical_contour", "compare_cells",
    "feature_spaces", "transformed_inputs", "paths_clock_and_counter", "paths_starts",
    "build_rnn_cell", "build_gru_cell", "disassemble_rnn", "disassemble_gru",
    "generate_rnn_states", "generate_gru_states",
    "figure8", "figure13", "figure16", "figure17", "figure20", "figure22", "figure25",
]

RNN_TITLES = (r"hidden state ($h$)", r"transformed state ($t_h$)", r"adding $t_x$ ($t_h + t_x$)",
              "activated state\n" + r"$h = \tanh(t_h + t_x)$")
GRU_TITLES = (r"hidden state ($h$)", r"transformed state ($t_h$)", r"reset gate ($r * t_h$)" + "\n" + r"$r =$",
              "adding $t_x$\n" + r"$r * t_h + t_x$", "activated state\n" + r"$n = \tanh(r * t_h + t_x)$",
              r"update gate ($(1 - z) * n$)" + "\n" + r"$1 - z =$", "adding $z * h$\n" + r"$h = (1 - z) * n + z * h$")


def _square() -> torch.Tensor:
    """The noise-free sequence ABCD (clockwise from A), ``(1, 4, 2)``."""
    return torch.as_tensor(CORNERS, dtype=torch.float32)[None]


def _layer(rnn: nn.Module, kind: type) -> nn.Module:
    """``rnn`` itself, or a model's ``basic_rnn``, checked to be a ``kind`` (layer or cell)."""
    layer: nn.Module = getattr(rnn, "basic_rnn", rnn)
    cells = {nn.RNN: nn.RNNCell, nn.GRU: nn.GRUCell}
    if not isinstance(layer, (kind, cells[kind])):
        raise ModelError(f"this figure takes apart an {kind.__name__} (or a model whose basic_rnn is one), "
                         f"not {type(layer).__name__}")
    sizes = (getattr(layer, "input_size", 2), getattr(layer, "hidden_size", 2))
    if sizes != (2, 2):
        raise ModelError("the book's cell figures draw 2 features and a hidden state of size 2 "
                         f"(this layer: {sizes[0]} features, hidden size {sizes[1]})")
    return layer


def _suffix(layer: nn.Module) -> str:
    return "_l0" if "weight_ih_l0" in layer.state_dict() else ""


def figure8(linear_hidden: nn.Linear, linear_input: nn.Linear, X) -> Figure:
    """Figure 8.8: an RNN cell worked by hand on the first step of the sequence ``X`` ``(L, 2)``:
    the hidden state, transformed (``t_h``), plus the transformed input, activated by tanh."""
    cell, states, hiddens, gates = generate_rnn_states(linear_hidden, linear_input, X)
    return feature_spaces(cell, states, hiddens, gates, RNN_TITLES, bounds=(-1.5, 1.5), n_points=1)


def figure13(rnn: nn.Module) -> Figure:
    """Figure 8.13: the square's corners and their images under the RNN's input transform
    ``W_ih x + b_ih`` (its first layer)."""
    layer = _layer(rnn, nn.RNN)
    _, linear_input = disassemble_rnn(layer, _suffix(layer))
    return transformed_inputs(linear_input, title="RNN")


def figure16(rnn: nn.Module) -> Figure:
    """Figure 8.16: the sequence ABCD through the RNN's stages, one row per step."""
    layer = _layer(rnn, nn.RNN)
    cell, states, hiddens, gates = generate_rnn_states(*disassemble_rnn(layer, _suffix(layer)), _square())
    return feature_spaces(cell, states, hiddens, gates, RNN_TITLES, bounded=["activation"])


def figure17(rnn: nn.Module) -> Figure:
    """Figure 8.17: the hidden state's path through the sequence ABCD, step by step."""
    layer = _layer(rnn, nn.RNN)
    return paths_clock_and_counter(*disassemble_rnn(layer, _suffix(layer)), only_clock=True)


def figure20(model_rnn: nn.Module, model_gru: nn.Module) -> Figure:
    """Figure 8.20: the final hidden states of the eight noise-free sequences, RNN and GRU side
    by side on one colour scale."""
    return compare_cells([model_rnn, model_gru], ["RNN", "GRU"])


def figure22(rnn: nn.Module) -> Figure:
    """Figure 8.22: the sequence ABCD through the GRU's stages and gates (reset ``r``, update
    ``1 - z``, their values in the titles), one row per step. ``rnn``: an ``nn.GRU`` (or a
    model whose ``basic_rnn`` is one)."""
    layer = _layer(rnn, nn.GRU)
    cell, states, hiddens, gates = generate_gru_states(*disassemble_gru(layer, _suffix(layer)), _square())
    return feature_spaces(cell, states, hiddens, gates, GRU_TITLES, bounded=["activation", "zmult", "addh"])


def figure25(model_rnn: nn.Module, model_gru: nn.Module, model_lstm: nn.Module) -> Figure:
    """Figure 8.25: :func:`figure20` with the LSTM beside them."""
    return compare_cells([model_rnn, model_gru, model_lstm], ["RNN", "GRU", "LSTM"])

