"""An exact fused step for the tutorial's model: ``SquareModel`` + ``BCEWithLogitsLoss``.

Autograd spends most of a tiny step on bookkeeping: about 35 graph nodes (transposes, views,
unbind/stack, per-step ``t()``) for a model whose arithmetic costs a microsecond. This module
runs the forward and backward passes of ``SquareModel`` (one-layer tanh ``nn.RNN``, then
``nn.Linear``) with BCE-with-logits by hand, calling **the same ATen kernels on the same
operands in the same order** as ``nn.RNN``'s CPU implementation and autograd do:

* forward: the input projection of all steps as one ``mm`` on the time-major copy of ``x``
  plus the bias, then per step ``tanh(addmm(b_hh, h, W_hh^T) + ih_t)`` (at the first step,
  with a zero state, ``addmm`` is exactly ``b_hh``), then
  ``addmm(b_c, h_L, W_c^T)`` with ``h_L`` read from the time-major stack of all steps, as
  ``nn.RNN`` leaves it (a fresh copy would sit at another memory alignment, and GEMM kernels may
  then sum in another order: 1 ulp apart at some hidden sizes), and the loss kernel;
* backward: ``(sigmoid(z) - y) / N``; weight gradients as ``grad^T @ input`` (autograd's choice
  for the transposed weight operands); per step ``tanh_backward``; the per-step ``W_hh`` and
  ``b_hh`` gradients summed from the last step to the first, as autograd's input buffer does.

So the gradients are bit-identical, which the tests check against autograd, and
:func:`verify` checks on the running machine before :class:`~squareseq.stepbystep.StepByStep`
uses the fused step (falling back to autograd if anything differs). Gradients are written
straight into a :class:`~squareseq.training.optim.FlatAdam`'s flat gradient buffer.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from squareseq.errors import ModelError
from squareseq.models.networks import SquareModel

__all__ = ["supports", "forward", "loss_and_grads", "make_fused_train_step", "make_fused_val_step", "verify"]

_tanh_backward = torch.ops.aten.tanh_backward


def _has_hooks(module: nn.Module) -> bool:
    from torch.nn.modules import module as module_mod

    global_hooks = (
        module_mod._global_forward_hooks, module_mod._global_forward_pre_hooks,
        module_mod._global_backward_hooks, getattr(module_mod, "_global_backward_pre_hooks", {}),
    )
    if any(len(h) for h in global_hooks):
        return True
    for m in module.modules():
        if m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or getattr(m, "_backward_pre_hooks", None):
            return True
    return any(p._backward_hooks for p in module.parameters()) or any(
        getattr(p, "_post_accumulate_grad_hooks", None) for p in module.parameters()
    )


def supports(model: nn.Module, loss_fn) -> bool:
    """Whether ``model`` and ``loss_fn`` are exactly the tutorial's kind (a plain ``SquareModel``
    with a one-layer tanh RNN on CPU float32, logits out, ``BCEWithLogitsLoss()`` without
    weights) and nothing hooks into them."""
    if type(model) is not SquareModel or model.output_activation is not None:
        return False
    if getattr(model, "reference_logit", False) or getattr(model, "bidirectional", False):
        return False
    if type(loss_fn) is not nn.BCEWithLogitsLoss or loss_fn.reduction != "mean":
        return False
    if loss_fn.weight is not None or loss_fn.pos_weight is not None:
        return False
    rnn = model.basic_rnn
    if (type(rnn) is not nn.RNN or rnn.mode != "RNN_TANH" or rnn.num_layers != 1 or not rnn.bias
            or not rnn.batch_first or rnn.bidirectional or rnn.proj_size):
        return False
    if type(model.classifier) is not nn.Linear or model.classifier.bias is None:
        return False
    params = list(model.parameters())
    if len(params) != 6 or any(p.dtype != torch.float32 or p.device.type != "cpu" or not p.requires_grad
                               for p in params):
        return False
    return not _has_hooks(model)


class _Weights:
    """The model's parameters and the transposed views the kernels take, made once per step
    factory (the views follow in-place updates of the parameters)."""

    def __init__(self, model: SquareModel):
        rnn, clf = model.basic_rnn, model.classifier
        with torch.no_grad():
            self.w_ih, self.w_hh = rnn.weight_ih_l0.detach(), rnn.weight_hh_l0.detach()
            self.b_ih, self.b_hh = rnn.bias_ih_l0.detach(), rnn.bias_hh_l0.detach()
            self.w_c, self.b_c = clf.weight.detach(), clf.bias.detach()
            self.w_ih_t, self.w_hh_t, self.w_c_t = self.w_ih.t(), self.w_hh.t(), self.w_c.t()


def _batch_ok(x: torch.Tensor, y: torch.Tensor, model: SquareModel) -> bool:
    return (x.dim() == 3 and x.dtype == torch.float32 and x.device.type == "cpu" and x.shape[1] >= 1
            and x.shape[0] >= 1 and x.shape[2] == model.basic_rnn.input_size
            and y.dtype == torch.float32 and y.shape == (x.shape[0], model.n_outputs))


def _forward(w: _Weights, x: torch.Tensor):
    """Logits, hidden states and the time-major input (call under ``no_grad``).

    The first step's ``addmm(b_hh, 0, W_hh^T)`` is exactly ``b_hh``, so it is skipped.
    """
    n, seq_len, n_features = x.shape
    x_tm = x.transpose(0, 1).reshape(seq_len * n, n_features)  # the copy matmul's fold makes
    ih = torch.mm(x_tm, w.w_ih_t)
    ih.add_(w.b_ih)
    ih_steps = ih.view(seq_len, n, -1).unbind(0)
    h = torch.tanh(ih_steps[0] + w.b_hh)
    hs = [h]
    for t in range(1, seq_len):
        pre = torch.addmm(w.b_hh, h, w.w_hh_t)
        pre.add_(ih_steps[t])
        h = torch.tanh(pre)
        hs.append(h)
    # nn.RNN stacks its step outputs time-major and the classifier reads the last step's slice
    # of that buffer: the same place in a buffer of that size here (only the last step is
    # copied), so the matmul kernels see the same memory alignment
    last = h.new_empty((seq_len, *h.shape))[-1].copy_(h)
    logits = torch.addmm(w.b_c, last, w.w_c_t)
    return logits, hs[:-1] + [last], x_tm


def forward(model: SquareModel, x: torch.Tensor) -> Tuple[torch.Tensor, List[torch.Tensor], torch.Tensor]:
    """``(logits, hidden states h_0..h_{L-1}, time-major x)`` without autograd, with the kernels
    ``nn.RNN`` and ``nn.Linear`` use."""
    with torch.no_grad():
        return _forward(_Weights(model), x)


def _loss_and_grads(w: _Weights, x: torch.Tensor, y: torch.Tensor, out: Optional[List[torch.Tensor]]):
    n, seq_len, _ = x.shape
    logits, hs, x_tm = _forward(w, x)
    loss = F.binary_cross_entropy_with_logits(logits, y)
    o: Sequence[Optional[torch.Tensor]] = out if out is not None else [None] * 6
    g = torch.sigmoid(logits).sub_(y).div_(logits.numel())  # (N, O)
    grad_wc = torch.mm(g.t(), hs[-1], out=o[4])
    grad_bc = torch.sum(g, 0, out=o[5])
    dh = torch.mm(g, w.w_c)
    gts: List[torch.Tensor] = []  # from the last step to the first
    grad_whh: Optional[torch.Tensor] = None
    grad_bhh: Optional[torch.Tensor] = None
    for t in range(seq_len - 1, 0, -1):
        gt = _tanh_backward(dh, hs[t])
        gts.append(gt)
        d_w = torch.mm(gt.t(), hs[t - 1])
        d_b = gt.sum(0)
        if grad_whh is None or grad_bhh is None:  # both None before the first step back, neither after
            grad_whh, grad_bhh = d_w, d_b
        else:
            grad_whh.add_(d_w)
            grad_bhh.add_(d_b)
        dh = torch.mm(gt, w.w_hh)
    gt = _tanh_backward(dh, hs[0])
    gts.append(gt)
    gts.reverse()
    # step 0 saw a zero state: its W_hh gradient is zero and adds nothing
    d_b = gt.sum(0)
    if grad_whh is None or grad_bhh is None:
        grad_whh = torch.zeros_like(w.w_hh) if o[1] is None else o[1].zero_()
        grad_bhh = torch.sum(gt, 0, out=o[3])
    else:
        if o[1] is not None:
            o[1].copy_(grad_whh)
            grad_whh = o[1]
        grad_bhh = torch.add(grad_bhh, d_b, out=o[3])
    g_ih = torch.stack(gts)  # (L, N, H)
    grad_bih = torch.sum(g_ih, (0, 1), out=o[2])
    grad_wih = torch.mm(g_ih.view(seq_len * n, -1).t(), x_tm, out=o[0])
    return loss, [grad_wih, grad_whh, grad_bih, grad_bhh, grad_wc, grad_bc], hs


def loss_and_grads(model: SquareModel, x: torch.Tensor, y: torch.Tensor,
                   out: Optional[List[torch.Tensor]] = None) -> Tuple[torch.Tensor, List[torch.Tensor]]:
    """The mean BCE-with-logits loss and the gradients of ``model``'s six parameters (in
    ``model.parameters()`` order), as ``loss.backward()`` computes them. With ``out``, the
    gradients are written into those tensors."""
    with torch.no_grad():
        loss, grads, hs = _loss_and_grads(_Weights(model), x, y, out)
    model.hidden = hs[-1].unsqueeze(0)
    return loss, grads


def make_fused_train_step(model: SquareModel, flat, clip: Optional[Callable] = None):
    """A training step for :func:`squareseq.training.loop.run_epoch`: fused forward and backward
    into ``flat``'s gradient buffer (a :class:`~squareseq.training.optim.FlatAdam` over ``model``'s
    parameters), optional clipping, Adam step. Batches it cannot take go through autograd."""
    params = list(model.parameters())
    grad_views = flat.grad_views
    if [id(p) for p in params] != [id(p) for p in flat.params]:
        raise ModelError("the FlatAdam must hold the model's parameters in model.parameters() order")
    loss_fn = nn.BCEWithLogitsLoss()
    weights = _Weights(model)

    def train_step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if _batch_ok(x, y, model):
            if any(p.grad is not v for p, v in zip(params, grad_views)):
                flat._gather_grads()
            # every gradient is overwritten, as loss.backward() fills .grad after zero_grad()
            with torch.no_grad():
                loss, _, hs = _loss_and_grads(weights, x, y, grad_views)
            model.hidden = hs[-1].unsqueeze(0)
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


def make_fused_val_step(model: SquareModel):
    """A validation step: the fused forward and the loss kernel (call it under ``no_grad``)."""
    loss_fn = nn.BCEWithLogitsLoss()
    weights = _Weights(model)

    def val_step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if _batch_ok(x, y, model):
            with torch.no_grad():
                logits, hs, _ = _forward(weights, x)
            model.hidden = hs[-1].unsqueeze(0)
            return F.binary_cross_entropy_with_logits(logits, y)
        return loss_fn(model(x), y).detach()

    return val_step


def verify(model: SquareModel, x: torch.Tensor, y: torch.Tensor) -> bool:
    """Whether the fused loss, logits and gradients equal autograd's bit for bit for this model
    and batch on this machine (the model's gradients are left as they were)."""
    saved = [None if p.grad is None else p.grad.clone() for p in model.parameters()]
    try:
        for p in model.parameters():
            p.grad = None
        loss_ref = F.binary_cross_entropy_with_logits(model(x), y)
        loss_ref.backward()
        ref: List[torch.Tensor] = []
        for p in model.parameters():
            if p.grad is None:  # a frozen parameter: autograd gives it no gradient, the fused step does
                return False
            ref.append(p.grad.clone())
        loss, grads = loss_and_grads(model, x, y)
        with torch.no_grad():
            logits_ref = model(x)
        logits, _, _ = forward(model, x)
        return (torch.equal(loss, loss_ref.detach()) and torch.equal(logits, logits_ref)
                and all(torch.equal(a, b) for a, b in zip(grads, ref)))
    finally:
        for p, g in zip(model.parameters(), saved):
            p.grad = g
