"""An exact fused step for models built like the tutorial's, with ``BCEWithLogitsLoss``.

Autograd spends most of a tiny step on bookkeeping: dozens of graph nodes (transposes, views,
unbind/stack, per-step ``t()``) for a model whose arithmetic costs microseconds. This module runs
the forward and backward passes of "one ``nn.RNN``/``nn.GRU``/``nn.LSTM``, then ``nn.Linear`` on
the last step" (any class: see :mod:`squareseq.training.structure`) with BCE-with-logits by hand,
calling **the same ATen kernels on the same operands in the same order** as the ``nn`` layers and
autograd do (:mod:`squareseq.training.fused_cells`), so loss, logits and gradients are
bit-identical. The classifier: ``addmm(b_c, h_L, W_c^T)``, the loss kernel, then
``(sigmoid(z) - y) / N`` and ``grad^T @ input`` for the weight (autograd's choice for a
transposed weight operand).

:func:`check` proves it on the running machine before
:class:`~squareseq.stepbystep.StepByStep` uses it: :func:`verify` runs the model's own forward
and autograd on a batch and compares everything bit for bit, and finds what the forward leaves
on the model (``self.hidden``) so the fused step leaves the same. The verdict is cached per
process for what it proved: the model's class and sizes, its plain settings, the batch shapes,
the thread count, the CPU's kernel set and oneDNN's switch. Gradients are written straight into a
:class:`~squareseq.training.optim.FlatAdam`'s flat gradient buffer.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from squareseq.errors import ModelError
from squareseq.training import structure
from squareseq.training.fused_cells import Weights
from squareseq.training.fused_cells import backward as _cell_backward
from squareseq.training.fused_cells import forward as _cell_forward

__all__ = ["supports", "forward", "loss_and_grads", "make_fused_train_step", "make_fused_val_step", "verify",
           "proven_outputs", "check", "clear_cache"]

Outputs = Dict[str, str]
_CACHE: Dict[tuple, Optional[Outputs]] = {}
_CACHE_LIMIT = 512


def supports(model: nn.Module, loss_fn) -> bool:
    """Whether ``model`` is built like the tutorial's (see :mod:`squareseq.training.structure`),
    ``loss_fn`` is a plain ``BCEWithLogitsLoss()`` and nothing hooks into them. Whether the
    model's forward really computes what the fused step computes is :func:`verify`'s to prove."""
    return (structure.loss_ok(loss_fn) and "forward" not in vars(model)
            and structure.find_recurrent(model) is not None and not structure.has_hooks(model))


def _weights(model: nn.Module) -> Weights:
    parts = structure.find_recurrent(model)
    if parts is None:
        raise ModelError(f"{type(model).__name__} is not one recurrent layer and one nn.Linear: "
                         "the fused step cannot run it (use autograd)")
    return Weights(parts.kind, parts.rnn, parts.linear)


def _batch_ok(x: torch.Tensor, y: torch.Tensor, model: nn.Module) -> bool:
    parts = structure.find_recurrent(model)
    return parts is not None and structure.batch_ok(parts, x, y)


def _forward(w: Weights, x: torch.Tensor, for_backward: bool = True):
    last, c_last, saved = _cell_forward(w, x, for_backward)
    return torch.addmm(w.b_c, last, w.w_c_t), last, c_last, saved


def forward(model: nn.Module, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """``(logits, h_n, c_n or None)`` without autograd, with the kernels the ``nn`` layers use
    under ``no_grad``; ``h_n`` and ``c_n`` shaped ``(1, N, H)`` as the layers return them."""
    with torch.no_grad():
        logits, last, c_last, _ = _forward(_weights(model), x, for_backward=False)
    return logits, last.unsqueeze(0), None if c_last is None else c_last.unsqueeze(0)


def _loss_and_grads(w: Weights, x: torch.Tensor, y: torch.Tensor, out: Optional[Sequence[torch.Tensor]]):
    logits, last, c_last, saved = _forward(w, x)
    loss = F.binary_cross_entropy_with_logits(logits, y)
    o: Sequence[Optional[torch.Tensor]] = out if out is not None else [None] * 6
    g = torch.sigmoid(logits).sub_(y).div_(logits.numel())  # (N, O)
    grad_wc = torch.mm(g.t(), last, out=o[4])
    grad_bc = torch.sum(g, 0, out=o[5])
    dh = torch.mm(g, w.w_c)
    grads = _cell_backward(w, saved, dh, o[:4])
    return loss, [*grads, grad_wc, grad_bc], last, c_last


def loss_and_grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                   out: Optional[List[torch.Tensor]] = None) -> Tuple[torch.Tensor, List[torch.Tensor]]:
    """The mean BCE-with-logits loss and the gradients of ``model``'s six parameters (in
    ``model.parameters()`` order), as ``loss.backward()`` computes them. With ``out``, the
    gradients are written into those tensors."""
    with torch.no_grad():
        loss, grads, _, _ = _loss_and_grads(_weights(model), x, y, out)
    return loss, grads


def _set_outputs(model: nn.Module, outputs: Outputs, last: torch.Tensor, c_last: Optional[torch.Tensor]) -> None:
    """Leaves on the model what its own forward leaves (``self.hidden = h_n`` and the like)."""
    if not outputs:
        return
    h_n = last.unsqueeze(0)
    c_n = None if c_last is None else c_last.unsqueeze(0)
    for key, kind in outputs.items():
        setattr(model, key, h_n if kind == "h" else c_n if kind == "c" else (h_n, c_n))


def make_fused_train_step(model: nn.Module, flat, clip: Optional[Callable] = None,
                          outputs: Optional[Outputs] = None):
    """A training step for :func:`squareseq.training.loop.run_epoch`: fused forward and backward
    into ``flat``'s gradient buffer (a :class:`~squareseq.training.optim.FlatAdam` over ``model``'s
    parameters), optional clipping, Adam step. ``outputs`` (from :func:`check`) says what the
    forward leaves on the model. Batches it cannot take go through autograd."""
    params = list(model.parameters())
    grad_views = flat.grad_views
    if [id(p) for p in params] != [id(p) for p in flat.params]:
        raise ModelError("the FlatAdam must hold the model's parameters in model.parameters() order")
    loss_fn = nn.BCEWithLogitsLoss()
    weights = _weights(model)
    parts = structure.find_recurrent(model)
    assert parts is not None  # _weights refused anything else
    outputs = {} if outputs is None else outputs

    def train_step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if structure.batch_ok(parts, x, y):
            if any(p.grad is not v for p, v in zip(params, grad_views)):
                flat._gather_grads()
            # every gradient is overwritten, as loss.backward() fills .grad after zero_grad()
            with torch.no_grad():
                loss, _, last, c_last = _loss_and_grads(weights, x, y, grad_views)
            _set_outputs(model, outputs, last, c_last)
        else:
            loss = loss_fn(model(x), y)
            loss.backward()
            loss = loss.detach()
        if clip is not None:
            clip()
        flat.step()
        flat.zero_grad()
        return loss

    return train_step


def make_fused_val_step(model: nn.Module, outputs: Optional[Outputs] = None):
    """A validation step: the fused forward and the loss kernel (call it under ``no_grad``)."""
    loss_fn = nn.BCEWithLogitsLoss()
    weights = _weights(model)
    parts = structure.find_recurrent(model)
    assert parts is not None
    outputs = {} if outputs is None else outputs

    def val_step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if structure.batch_ok(parts, x, y):
            with torch.no_grad():
                logits, last, c_last, _ = _forward(weights, x, for_backward=False)
            _set_outputs(model, outputs, last, c_last)
            return F.binary_cross_entropy_with_logits(logits, y)
        return loss_fn(model(x), y).detach()

    return val_step


def _outputs_of(model: nn.Module, before: dict, h_n: torch.Tensor, c_n: Optional[torch.Tensor]):
    return structure.output_attributes(before, dict(vars(model)), h_n.unsqueeze(0),
                                       None if c_n is None else c_n.unsqueeze(0))


def proven_outputs(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Optional[Outputs]:
    """Runs the model's own forward and autograd on ``(x, y)`` and the fused step, with and without
    grad mode: None unless loss, logits and gradients are bit-identical and the forward changed
    nothing on the model but attributes holding its final states; else those attributes (name to
    ``"h"``, ``"c"`` or ``"hc"``). The model's gradients, attributes and torch's RNG are left as
    they were."""
    parts = structure.find_recurrent(model)
    if parts is None or not structure.batch_ok(parts, x, y):
        return None
    params = list(model.parameters())
    saved_grads = [p.grad for p in params]
    before = dict(vars(model))
    rng = torch.get_rng_state()
    try:
        for p in params:
            p.grad = None
        loss_ref = F.binary_cross_entropy_with_logits(model(x), y)
        after_grad = dict(vars(model))
        loss_ref.backward()
        if any(p.grad is None for p in params):  # a frozen parameter: autograd gives it no gradient
            return None
        ref: List[torch.Tensor] = [p.grad for p in params if p.grad is not None]
        w = Weights(parts.kind, parts.rnn, parts.linear)
        with torch.no_grad():
            loss, grads, last, c_last = _loss_and_grads(w, x, y, None)
            outputs = structure.output_attributes(before, after_grad, last.unsqueeze(0),
                                                  None if c_last is None else c_last.unsqueeze(0))
            _restore(model, before)
            logits_ref = model(x)
            logits, last_ng, c_ng, _ = _forward(w, x, for_backward=False)
            outputs_ng = _outputs_of(model, before, last_ng, c_ng)
        same = (torch.equal(loss, loss_ref.detach()) and torch.equal(logits, logits_ref)
                and all(a.shape == b.shape and torch.equal(a, b) for a, b in zip(grads, ref)))
        return outputs if same and outputs is not None and outputs == outputs_ng else None
    finally:
        for p, g in zip(params, saved_grads):
            p.grad = g
        _restore(model, before)
        torch.set_rng_state(rng)


def _restore(model: nn.Module, before: dict) -> None:
    state = vars(model)
    for key in [k for k in state if k not in before]:
        del state[key]
    state.update(before)


def verify(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> bool:
    """Whether the fused loss, logits and gradients equal autograd's bit for bit for this model
    and batch on this machine (uncached; see :func:`proven_outputs`)."""
    return proven_outputs(model, x, y) is not None


def _key(model: nn.Module, parts: structure.Recurrent, x: torch.Tensor, y: torch.Tensor) -> tuple:
    return (type(model), parts.kind, parts.rnn.input_size, parts.rnn.hidden_size, parts.linear.out_features,
            structure.simple_attributes(model), model.training, tuple(x.shape), tuple(y.shape),
            torch.get_num_threads(), torch.backends.cpu.get_cpu_capability(), torch.backends.mkldnn.enabled)


def check(model: nn.Module, loss_fn, batches: Sequence[Tuple[torch.Tensor, torch.Tensor]],
          eval_batches: Sequence[Tuple[torch.Tensor, torch.Tensor]] = (), prove: bool = True) -> Optional[Outputs]:
    """The attributes the fused step must set (see :func:`proven_outputs`) if it is proven exact for
    this model and loss for every batch shape in ``batches`` (in training mode) and
    ``eval_batches`` (in evaluation mode, as validation runs), else None. Verdicts are cached per
    process (:func:`clear_cache` empties the cache), so a repeated ``train()`` costs microseconds.
    With ``prove=False`` only cached verdicts count (a shape not yet proven gives None)."""
    if not supports(model, loss_fn):
        return None
    parts = structure.find_recurrent(model)
    assert parts is not None
    found: Optional[Outputs] = None
    was_training = model.training
    try:
        for training, group in ((True, batches), (False, eval_batches)):
            model.train(training)
            for x, y in group:
                if not structure.batch_ok(parts, x, y):
                    return None
                key = _key(model, parts, x, y)
                if key not in _CACHE and not prove:
                    return None
                if key not in _CACHE:
                    if len(_CACHE) >= _CACHE_LIMIT:
                        _CACHE.clear()
                    _CACHE[key] = proven_outputs(model, x, y)
                outputs = _CACHE[key]
                if outputs is None or (found is not None and outputs != found):
                    return None
                found = outputs
    finally:
        model.train(was_training)
    return found


def clear_cache() -> None:
    """Forgets every cached verdict (the next :func:`check` runs the comparison again)."""
    _CACHE.clear()
