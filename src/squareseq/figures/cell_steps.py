"""A GRU's and an LSTM's update taken apart by hand, step by step, as arrays: what the journeys
(:mod:`squareseq.figures.journeys`) and the book's gate figures draw.

:func:`squareseq.models.hidden.unroll_rnn` does the same for an Elman RNN. Here, for the first
layer of an ``nn.GRU`` (gates in PyTorch's order r, z, n)::

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)      z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(r * (W_hn h + b_hn) + W_in x + b_in)   h' = (1 - z) * n + z * h

and of an ``nn.LSTM`` (gates i, f, g, o)::

    c' = f * c + i * g      h' = o * tanh(c')

Every intermediate is kept, so a figure can draw the path from ``h`` to ``h'`` arrow by arrow.
"""
from __future__ import annotations

from typing import List, NamedTuple, Optional, Tuple

import torch
from torch import nn

from squareseq.errors import ModelError

__all__ = ["GRUStep", "LSTMStep", "layer_weights", "unroll_gru", "unroll_lstm"]


class GRUStep(NamedTuple):
    """The parts of one GRU update, each ``(N, H)``."""

    reset: torch.Tensor  # r
    update: torch.Tensor  # z
    transformed_hidden: torch.Tensor  # t_h = W_hn h + b_hn
    reset_hidden: torch.Tensor  # r * t_h
    pre_activation: torch.Tensor  # r * t_h + t_x (t_x = W_in x + b_in)
    candidate: torch.Tensor  # n = tanh(r * t_h + t_x)
    gated_candidate: torch.Tensor  # (1 - z) * n
    hidden: torch.Tensor  # h' = (1 - z) * n + z * h


class LSTMStep(NamedTuple):
    """The parts of one LSTM update, each ``(N, H)``."""

    input_gate: torch.Tensor  # i
    forget_gate: torch.Tensor  # f
    candidate: torch.Tensor  # g = tanh(...)
    output_gate: torch.Tensor  # o
    forgotten_cell: torch.Tensor  # f * c
    cell: torch.Tensor  # c' = f * c + i * g
    squashed_cell: torch.Tensor  # tanh(c')
    hidden: torch.Tensor  # h' = o * tanh(c')


def layer_weights(rnn: nn.Module, layer: str = "_l0") -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                                  torch.Tensor]:
    """``(W_ih, b_ih, W_hh, b_hh)`` of one layer of ``rnn`` (``layer``: ``"_l0"`` for a layer,
    ``""`` for a cell such as ``nn.RNNCell``), detached; zero biases when it has none."""
    state = rnn.state_dict()
    try:
        w_ih, w_hh = state[f"weight_ih{layer}"], state[f"weight_hh{layer}"]
    except KeyError:
        raise ModelError(f"{type(rnn).__name__} has no weights 'weight_ih{layer}'/'weight_hh{layer}': pass the "
                         "layer suffix its state_dict uses ('_l0' for nn.RNN/nn.GRU/nn.LSTM, '' for a cell)") from None
    b_ih = state.get(f"bias_ih{layer}", torch.zeros(w_ih.shape[0]))
    b_hh = state.get(f"bias_hh{layer}", torch.zeros(w_hh.shape[0]))
    return w_ih.detach(), b_ih.detach(), w_hh.detach(), b_hh.detach()


def _start(rnn: nn.Module, kind: type, x, h0: Optional[torch.Tensor]):
    if not isinstance(rnn, kind):
        raise ModelError(f"this hand-written step needs an {kind.__name__}, not {type(rnn).__name__}")
    if getattr(rnn, "proj_size", 0):
        raise ModelError("the hand-written LSTM step does not take proj_size > 0: build the LSTM without it")
    w_ih, b_ih, w_hh, b_hh = layer_weights(rnn)
    x = torch.as_tensor(x, dtype=torch.float32)
    if x.dim() != 3:
        raise ModelError(f"x must have shape (N, L, F), got {tuple(x.shape)}")
    x = x.to(w_ih.device)
    size = w_hh.shape[1]
    h = torch.zeros(x.shape[0], size, device=w_ih.device) if h0 is None else torch.as_tensor(h0, dtype=torch.float32)
    return x, h, (w_ih, b_ih, w_hh, b_hh), size


def unroll_gru(gru: nn.Module, x, h0: Optional[torch.Tensor] = None) -> List[GRUStep]:
    """The first layer of ``gru`` (an ``nn.GRU``) over every step of ``x`` ``(N, L, F)``, from
    ``h0`` (zeros by default): one :class:`GRUStep` per step."""
    x, h, (w_ih, b_ih, w_hh, b_hh), size = _start(gru, nn.GRU, x, h0)
    steps = []
    with torch.no_grad():
        for t in range(x.shape[1]):
            tx_r, tx_z, tx_n = (x[:, t] @ w_ih.T + b_ih).split(size, dim=-1)
            th_r, th_z, th_n = (h @ w_hh.T + b_hh).split(size, dim=-1)
            r, z = torch.sigmoid(tx_r + th_r), torch.sigmoid(tx_z + th_z)
            reset_hidden = r * th_n
            pre = reset_hidden + tx_n
            n = torch.tanh(pre)
            gated = (1 - z) * n
            h_new = gated + z * h
            steps.append(GRUStep(r, z, th_n, reset_hidden, pre, n, gated, h_new))
            h = h_new
    return steps


def unroll_lstm(lstm: nn.Module, x, h0: Optional[torch.Tensor] = None,
                c0: Optional[torch.Tensor] = None) -> List[LSTMStep]:
    """The first layer of ``lstm`` (an ``nn.LSTM``) over every step of ``x`` ``(N, L, F)``, from
    ``h0`` and ``c0`` (zeros by default): one :class:`LSTMStep` per step."""
    x, h, (w_ih, b_ih, w_hh, b_hh), size = _start(lstm, nn.LSTM, x, h0)
    c = torch.zeros_like(h) if c0 is None else torch.as_tensor(c0, dtype=torch.float32)
    steps = []
    with torch.no_grad():
        for t in range(x.shape[1]):
            pre_i, pre_f, pre_g, pre_o = (x[:, t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh).split(size, dim=-1)
            i, f, g, o = torch.sigmoid(pre_i), torch.sigmoid(pre_f), torch.tanh(pre_g), torch.sigmoid(pre_o)
            forgotten = f * c
            c = forgotten + i * g
            squashed = torch.tanh(c)
            h = o * squashed
            steps.append(LSTMStep(i, f, g, o, forgotten, c, squashed, h))
    return steps
