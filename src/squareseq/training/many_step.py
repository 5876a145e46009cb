"""One training step of :func:`squareseq.training.many.train_many`: the K stacked models' losses,
gradients and Adam update.

For the tutorial's cell (tanh RNN) with small hidden states (the models-last layout, where every
product is a broadcast multiply and a sum) the backward pass is written out by hand: autograd's
graph for K tiny models is dozens of nodes per step, and its bookkeeping costs more than the
arithmetic. Other cells and layouts run through autograd. Both compute the same derivatives;
their sums may round differently in the last bit (batched runs are compared with tolerances,
not bit for bit, anyway).
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch.nn import functional as F

from squareseq.training.optim import FlatAdam

__all__ = ["make_step"]

Step = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def make_step(stack: Any, optimizer: FlatAdam) -> Step:
    """``step(x, y) -> (K,)`` losses of one batch, after updating the stacked parameters of
    ``stack`` (a ``many._Stack`` whose leaves ``optimizer`` holds, in their order)."""
    if stack.model == "rnn" and stack.models_last:
        return _manual_rnn_step(stack, optimizer)

    def step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        losses = stack.losses(x, y)
        losses.sum().backward()
        optimizer.step()
        optimizer.zero_grad()
        return losses.detach()

    return step


def _manual_rnn_step(stack: Any, optimizer: FlatAdam) -> Step:
    p = {name: t.detach() for name, t in stack.params.items()}
    w_ih, w_hh, b_ih, b_hh, w_c, b_c = (p[n] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh",
                                                         "weight_c", "bias_c"))
    g_wih, g_whh, g_bih, g_bhh, g_wc, g_bc = optimizer.grad_views
    gh, n_features, k = w_ih.shape

    @torch.no_grad()
    def step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        n, seq_len, _ = x.shape
        x_tm = x.transpose(0, 1).reshape(seq_len * n, n_features)  # time-major: each step's gates contiguous
        # forward, as _Stack.logits computes it: gates (L, N, H, K), states (N, H, K)
        w = w_ih.permute(1, 0, 2).reshape(n_features, gh * k)
        gates_x = torch.mm(x_tm, w).view(seq_len, n, gh, k).add_(b_ih + b_hh)
        hs = [torch.tanh(gates_x[0])]
        for t in range(1, seq_len):
            hs.append(torch.tanh(gates_x[t] + (hs[-1].unsqueeze(2) * w_hh).sum(dim=1)))
        h = hs[-1]
        logits = (h.unsqueeze(2) * w_c).sum(dim=1) + b_c  # (N, 1, K)
        logits = logits.squeeze(1)  # (N, K)
        target = y.reshape(-1, 1).expand_as(logits)
        losses = F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(dim=0)
        # backward of sum_k mean_n BCE
        d_logits = (torch.sigmoid(logits) - target) / n  # (N, K)
        g_wc.copy_((h * d_logits.unsqueeze(1)).sum(dim=0).unsqueeze(1))  # (H, 1, K)
        g_bc.copy_(d_logits.sum(dim=0, keepdim=True))  # (1, K)
        dh = d_logits.unsqueeze(1) * w_c[:, 0]  # (N, H, K)
        d_gates = torch.empty_like(gates_x)
        g_whh.zero_()
        for t in range(seq_len - 1, -1, -1):
            da = dh * (1 - hs[t] * hs[t])
            d_gates[t] = da
            if t > 0:
                g_whh.add_((hs[t - 1].unsqueeze(2) * da.unsqueeze(1)).sum(dim=0))  # (H, H, K)
                dh = (da.unsqueeze(1) * w_hh).sum(dim=2)
        d_bias = d_gates.sum(dim=(0, 1))  # (H, K)
        g_bih.copy_(d_bias)
        g_bhh.copy_(d_bias)
        d_w = torch.mm(x_tm.t(), d_gates.view(seq_len * n, gh * k))  # (F, H*K)
        g_wih.copy_(d_w.view(n_features, gh, k).permute(1, 0, 2))
        optimizer.step()
        optimizer.zero_grad()
        return losses

    return step
