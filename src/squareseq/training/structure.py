"""Which models the fused exact step can take: found by their structure, not their class.

A model qualifies when it is built like the tutorial's: exactly two child modules, one
``nn.RNN`` (tanh) / ``nn.GRU`` / ``nn.LSTM`` (one layer, one direction, batch-first, with biases)
and then one ``nn.Linear`` reading its hidden state, six trainable float32 CPU parameters in that
order, no buffers and no hooks. The class and its ``forward`` are the user's: whether the forward
really is "the layer, then the classifier on the last step" is proven by
:func:`squareseq.training.fused.verify`, which compares the fused step with the model's own
autograd pass bit for bit. What the forward leaves on the model (the tutorial's ``self.hidden``,
or ``SquareModel``'s ``hidden`` and ``cell``) is found by :func:`output_attributes`; a forward that
changes anything else keeps autograd.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple

import torch
from torch import nn
from torch.nn.modules import module as module_mod

__all__ = ["Recurrent", "find_recurrent", "has_hooks", "loss_ok", "batch_ok", "output_attributes",
           "simple_attributes"]

#: The recurrent layer types the fused step knows, and their name.
KINDS: Dict[type, str] = {nn.RNN: "rnn", nn.GRU: "gru", nn.LSTM: "lstm"}

_NAMES = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")

#: What an attribute the forward sets may hold: the final hidden state ``h_n``, the LSTM's final
#: cell state ``c_n``, or the pair ``(h_n, c_n)`` as ``nn.LSTM`` returns it.
OUTPUT_KINDS = ("h", "c", "hc")


@dataclass(frozen=True)
class Recurrent:
    """The two parts of a qualifying model."""

    kind: str
    rnn: nn.RNNBase
    linear: nn.Linear


def find_recurrent(model: nn.Module) -> Optional[Recurrent]:
    """The recurrent layer and classifier of a model built like the tutorial's, else None."""
    children = list(model.children())
    if len(children) != 2 or model._parameters or list(model.buffers()):
        return None
    rnn, linear = children
    kind = KINDS.get(type(rnn))
    if kind is None or not isinstance(rnn, nn.RNNBase) or not isinstance(linear, nn.Linear):
        return None
    if type(linear) is not nn.Linear or linear.bias is None:
        return None
    if (rnn.num_layers != 1 or not rnn.bias or not rnn.batch_first or rnn.bidirectional or rnn.proj_size
            or (kind == "rnn" and rnn.mode != "RNN_TANH") or linear.in_features != rnn.hidden_size):
        return None
    params = list(model.parameters())
    expected = [getattr(rnn, name) for name in _NAMES] + [linear.weight, linear.bias]
    if len(params) != 6 or [id(p) for p in params] != [id(p) for p in expected]:
        return None
    if any(p.dtype != torch.float32 or p.device.type != "cpu" or not p.requires_grad for p in params):
        return None
    return Recurrent(kind, rnn, linear)


def has_hooks(model: nn.Module) -> bool:
    """Whether any hook (global, on a module, or on a parameter) could see the forward or backward."""
    global_hooks = (
        module_mod._global_forward_hooks, module_mod._global_forward_pre_hooks,
        module_mod._global_backward_hooks, getattr(module_mod, "_global_backward_pre_hooks", {}),
    )
    if any(len(h) for h in global_hooks):
        return True
    for m in model.modules():
        if m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or getattr(m, "_backward_pre_hooks", None):
            return True
    return any(p._backward_hooks for p in model.parameters()) or any(
        getattr(p, "_post_accumulate_grad_hooks", None) for p in model.parameters()
    )


def loss_ok(loss_fn: Callable) -> bool:
    """Whether the loss is the one the fused step computes: a plain mean ``BCEWithLogitsLoss``."""
    return (type(loss_fn) is nn.BCEWithLogitsLoss and loss_fn.reduction == "mean"
            and loss_fn.weight is None and loss_fn.pos_weight is None)


def batch_ok(parts: Recurrent, x: Any, y: Any) -> bool:
    """Whether a batch is one the fused step takes: float32 CPU ``(N, L, F)`` inputs and
    ``(N, outputs)`` float32 labels."""
    return (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)
            and x.dim() == 3 and x.dtype == torch.float32 and x.device.type == "cpu" and x.shape[1] >= 1
            and x.shape[0] >= 1 and x.shape[2] == parts.rnn.input_size
            and y.dtype == torch.float32 and y.shape == (x.shape[0], parts.linear.out_features))


def simple_attributes(model: nn.Module) -> Tuple[Tuple[str, Any], ...]:
    """The model's own plain settings (bools, numbers, strings), which a ``forward`` might read:
    part of the key under which a verdict is cached."""
    return tuple(sorted((k, v) for k, v in vars(model).items()
                        if isinstance(v, (bool, int, float, str)) and k != "training"))


def output_attributes(before: Dict[str, Any], after: Dict[str, Any], h_n: torch.Tensor,
                      c_n: Optional[torch.Tensor]) -> Optional[Dict[str, str]]:
    """What a forward set on the model (``vars`` before and after it): each changed attribute
    mapped to ``"h"``, ``"c"`` or ``"hc"`` (see :data:`OUTPUT_KINDS`), or None if it changed
    anything else (the fused step could not reproduce it)."""
    found: Dict[str, str] = {}
    for key, value in after.items():
        if key in before and before[key] is value:
            continue
        if _same(value, h_n):
            found[key] = "h"
        elif c_n is not None and _same(value, c_n):
            found[key] = "c"
        elif (c_n is not None and isinstance(value, tuple) and len(value) == 2
              and _same(value[0], h_n) and _same(value[1], c_n)):
            found[key] = "hc"
        else:
            return None
    if any(key not in after for key in before):
        return None
    return found


def _same(value: Any, ref: torch.Tensor) -> bool:
    return isinstance(value, torch.Tensor) and value.shape == ref.shape and torch.equal(value.detach(), ref)
