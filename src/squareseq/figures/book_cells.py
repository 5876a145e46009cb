"""The book's recurrent cells taken apart into linear layers, and rebuilt as ``nn.Sequential``
chains whose every stage is a 2-D map a figure can draw (:func:`squareseq.figures.book_spaces.feature_spaces`).

* :func:`disassemble_rnn` / :func:`disassemble_gru`: a layer's weights as ``nn.Linear`` layers
  (``t_h = W_hh h + b_hh``, ``t_x = W_ih x + b_ih``, one pair per GRU gate).
* :func:`build_rnn_cell` / :func:`build_gru_cell`: the update as a chain of named stages
  (``th``, ``rmult``, ``addtx``, ``activation``, ``zmult``, ``addh``); the stages that depend on
  the step (the input added, the gates' values) are set per step by
  :func:`generate_rnn_states` / :func:`generate_gru_states`, which return one ``state_dict`` per
  step and the hidden state each step starts from.

The numbers are :func:`squareseq.figures.cell_steps.layer_weights`'s; a chain run over a sequence
gives the layer's own hidden states (the tests check it against ``nn.RNN``/``nn.GRU``).
"""
from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Dict, List, Tuple

import torch
from torch import nn

from squareseq.errors import ModelError
from squareseq.figures.cell_steps import layer_weights

__all__ = ["disassemble_rnn", "disassemble_gru", "assemble_rnn", "build_rnn_cell", "build_gru_cell",
           "generate_rnn_states", "generate_gru_states"]

Linears = Tuple[nn.Linear, nn.Linear]  # (hidden's, input's)


def _linear(weight: torch.Tensor, bias: torch.Tensor) -> nn.Linear:
    """An ``nn.Linear`` computing ``weight @ x + bias`` (CPU copies of both)."""
    layer = nn.Linear(weight.shape[1], weight.shape[0])
    layer.load_state_dict({"weight": weight.detach().cpu().clone(), "bias": bias.detach().cpu().clone()})
    return layer


def _identity(size: int) -> nn.Linear:
    return _linear(torch.eye(size), torch.zeros(size))


def disassemble_rnn(rnn_model: nn.Module, layer: str = "") -> Linears:
    """``(linear_hidden, linear_input)`` of an ``nn.RNN`` layer or an ``nn.RNNCell``: ``t_h`` and
    ``t_x`` as linear layers. ``layer`` is the weights' suffix: ``"_l0"`` for a layer's first,
    ``""`` for a cell."""
    w_ih, b_ih, w_hh, b_hh = layer_weights(rnn_model, layer)
    return _linear(w_hh, b_hh), _linear(w_ih, b_ih)


def disassemble_gru(gru_model: nn.Module, layer: str = "") -> Tuple[Linears, Linears, Linears]:
    """``((n_hidden, n_input), (r_hidden, r_input), (z_hidden, z_input))``: an ``nn.GRU`` layer's
    or ``nn.GRUCell``'s candidate, reset gate and update gate as pairs of linear layers."""
    w_ih, b_ih, w_hh, b_hh = layer_weights(gru_model, layer)
    size = w_hh.shape[1]
    ih = list(zip(w_ih.split(size), b_ih.split(size)))  # PyTorch's order: r, z, n
    hh = list(zip(w_hh.split(size), b_hh.split(size)))
    pairs = [(_linear(*hh[k]), _linear(*ih[k])) for k in range(3)]
    reset, update, candidate = pairs
    return candidate, reset, update


def assemble_rnn(linear_hidden: nn.Linear, linear_input: nn.Linear) -> nn.RNN:
    """The one-layer, batch-first ``nn.RNN`` (tanh) whose update is ``tanh(linear_hidden(h) +
    linear_input(x))``: what :func:`squareseq.models.hidden.unroll_rnn` takes apart again."""
    rnn = nn.RNN(linear_input.in_features, linear_hidden.out_features, batch_first=True)
    rnn.load_state_dict({"weight_ih_l0": linear_input.weight.detach().cpu(),
                         "weight_hh_l0": linear_hidden.weight.detach().cpu(),
                         "bias_ih_l0": _bias(linear_input), "bias_hh_l0": _bias(linear_hidden)})
    return rnn


def _bias(layer: nn.Linear) -> torch.Tensor:
    return layer.bias.detach().cpu() if layer.bias is not None else torch.zeros(layer.out_features)


_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid}


def build_rnn_cell(linear_hidden: nn.Linear, activation: str = "tanh") -> nn.Sequential:
    """An RNN update as three stages: ``th`` (``linear_hidden``), ``addtx`` (adds the step's
    transformed input, its bias, set per step) and ``activation`` (tanh, relu or sigmoid)."""
    if activation not in _ACTIVATIONS:
        raise ModelError(f"unknown activation {activation!r}: use one of {', '.join(_ACTIVATIONS)}")
    size = linear_hidden.out_features
    stages = [("th", copy.deepcopy(linear_hidden).cpu()), ("addtx", _identity(size)),
              ("activation", _ACTIVATIONS[activation]())]
    return nn.Sequential(OrderedDict(stages))


def build_gru_cell(linear_hidden: nn.Linear) -> nn.Sequential:
    """A GRU update as six stages: ``th`` (the candidate's ``linear_hidden``), ``rmult`` (times
    the reset gate), ``addtx`` (plus the transformed input), ``activation`` (tanh: the candidate
    ``n``), ``zmult`` (times ``1 - z``) and ``addh`` (plus ``z * h``); all but ``th`` set per step."""
    size = linear_hidden.out_features
    stages = [("th", copy.deepcopy(linear_hidden).cpu()), ("rmult", _identity(size)), ("addtx", _identity(size)),
              ("activation", nn.Tanh()), ("zmult", _identity(size)), ("addh", _identity(size))]
    return nn.Sequential(OrderedDict(stages))


def _set(cell: nn.Sequential, name: str, weight=None, bias=None) -> None:
    """Sets the linear stage ``name`` of ``cell`` for this step."""
    stage = cell.get_submodule(name)
    assert isinstance(stage, nn.Linear)
    with torch.no_grad():
        if weight is not None:
            stage.weight.copy_(weight)
        if bias is not None:
            stage.bias.copy_(bias)


def _steps(X: torch.Tensor) -> torch.Tensor:
    """``X`` as ``(1, L, F)`` (a single sequence ``(L, F)`` is taken as one)."""
    x = torch.as_tensor(X, dtype=torch.float32).detach().cpu()
    x = x[None] if x.dim() == 2 else x
    if x.dim() != 3 or x.shape[0] != 1:
        raise ModelError(f"X must be one sequence, shape (1, L, F) or (L, F); got {tuple(x.shape)}")
    return x


def generate_rnn_states(linear_hidden: nn.Linear, linear_input: nn.Linear,
                        X: torch.Tensor) -> Tuple[nn.Sequential, List[dict], List[torch.Tensor], Dict]:
    """Runs :func:`build_rnn_cell` over the sequence ``X`` ``(1, L, F)``.

    Returns ``(cell, states, hiddens, {})``: the cell (holding the last step's state), its
    ``state_dict`` at each step, and the hidden state ``(1, 1, H)`` each step starts from (zeros
    first); the empty dict is for :func:`squareseq.figures.book_spaces.feature_spaces`'s gates.
    """
    x = _steps(X)
    cell = build_rnn_cell(linear_hidden)
    with torch.no_grad():
        inputs = linear_input.cpu()(x)  # (1, L, H)
        hidden = torch.zeros(1, 1, linear_hidden.out_features)
        states, hiddens = [], []
        for t in range(x.shape[1]):
            hiddens.append(hidden)
            _set(cell, "addtx", bias=inputs[0, t])
            states.append(copy.deepcopy(cell.state_dict()))
            hidden = cell(hidden)
    return cell, states, hiddens, {}


def generate_gru_states(n_linear: Linears, r_linear: Linears, z_linear: Linears,
                        X: torch.Tensor) -> Tuple[nn.Sequential, List[dict], List[torch.Tensor], Dict]:
    """Runs :func:`build_gru_cell` over the sequence ``X`` ``(1, L, F)`` with the pairs of
    :func:`disassemble_gru`.

    Returns ``(cell, states, hiddens, gates)`` as :func:`generate_rnn_states` does, with
    ``gates = {"rmult": [r per step], "zmult": [1 - z per step]}`` (lists of floats): the
    values the figures print in the gated stages' titles.
    """
    x = _steps(X)
    cell = build_gru_cell(n_linear[0])
    gates: Dict[str, list] = {"rmult": [], "zmult": []}
    with torch.no_grad():
        hidden = torch.zeros(1, 1, n_linear[0].out_features)
        states, hiddens = [], []
        for t in range(x.shape[1]):
            hiddens.append(hidden)
            x_t = x[:, t:t + 1]
            r = torch.sigmoid(r_linear[0].cpu()(hidden) + r_linear[1].cpu()(x_t)).reshape(-1)
            z = torch.sigmoid(z_linear[0].cpu()(hidden) + z_linear[1].cpu()(x_t)).reshape(-1)
            _set(cell, "rmult", weight=torch.diag(r))
            _set(cell, "addtx", bias=n_linear[1].cpu()(x_t).reshape(-1))
            _set(cell, "zmult", weight=torch.diag(1 - z))
            _set(cell, "addh", bias=z * hidden.reshape(-1))
            gates["rmult"].append(r.tolist())
            gates["zmult"].append((1 - z).tolist())
            states.append(copy.deepcopy(cell.state_dict()))
            hidden = cell(hidden)
    return cell, states, hiddens, gates
