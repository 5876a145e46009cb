"""The recurrent layers' forward and backward passes for :mod:`squareseq.training.fused`.

Each kind runs **the ATen kernels its ``nn`` layer and autograd run, on the same operands
(same shapes, same strides) in the same order**, so the numbers are bit-identical:

* RNN (tanh): ``nn.RNN``'s CPU loop: the input projection of all steps as one ``mm`` on the
  time-major copy of ``x`` plus the bias, then ``tanh(addmm(b_hh, h, W_hh^T) + ih_t)`` per step;
  backward with ``tanh_backward``, the per-step ``W_hh``/``b_hh`` gradients summed from the
  last step to the first, as autograd's input buffer sums them.
* GRU: ``nn.GRU``'s CPU cell: the same input projection, then per step the in-place gate
  arithmetic on the chunks of ``addmm(b_hh, h, W_hh^T)`` (``r``, ``z`` by ``sigmoid_``,
  ``n = tanh(i_n + r * h_n)``, ``h' = (h - n) * z + n``), and backward with the derivative
  formulas autograd applies to those ops (``sigmoid_backward``, ``tanh_backward``, products).
* LSTM: ``nn.LSTM`` on CPU runs one oneDNN op (``mkldnn_rnn_layer``) forward and its own
  backward op: they are called directly with the arguments ``nn.LSTM`` and autograd pass.

A state ``(logits_input, saved)`` holds the last hidden state where ``nn`` leaves it (the last
slice of a time-major ``(L, N, H)`` buffer: GEMM kernels may sum in another order for another
alignment) and what backward needs. Call everything under ``torch.no_grad()``.
"""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import torch
from torch import nn

__all__ = ["Weights", "forward", "backward"]

_tanh_backward = torch.ops.aten.tanh_backward
_sigmoid_backward = torch.ops.aten.sigmoid_backward
_NAMES = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
_LSTM_MODE = 2  # the mode number nn.LSTM passes to mkldnn_rnn_layer


class Weights:
    """A recurrent layer's and a linear classifier's parameters, detached, and the transposed
    views the kernels take (the views follow in-place updates of the parameters)."""

    def __init__(self, kind: str, rnn: nn.RNNBase, linear: nn.Linear):
        self.kind = kind
        self.rnn = rnn  # its ``training`` flag picks oneDNN's LSTM kind, as in nn.LSTM
        self.hidden_size = rnn.hidden_size
        with torch.no_grad():
            w_ih, w_hh, b_ih, b_hh = (getattr(rnn, name) for name in _NAMES)
            self.w_ih, self.w_hh, self.b_ih, self.b_hh = w_ih.detach(), w_hh.detach(), b_ih.detach(), b_hh.detach()
            self.w_c, self.b_c = linear.weight.detach(), linear.bias.detach()
            self.w_ih_t, self.w_hh_t, self.w_c_t = self.w_ih.t(), self.w_hh.t(), self.w_c.t()


def _input_projection(w: Weights, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """``x W_ih^T + b_ih`` for all steps, time-major ``(L * N, G * H)``, and the time-major ``x``
    (``at::linear`` on the transposed input: matmul folds a contiguous copy, then ``add_``)."""
    n, seq_len, n_features = x.shape
    x_tm = x.transpose(0, 1).reshape(seq_len * n, n_features)
    ih = torch.mm(x_tm, w.w_ih_t)
    ih.add_(w.b_ih)
    return ih, x_tm


def _last_slice(h: torch.Tensor, seq_len: int) -> torch.Tensor:
    """``h`` copied into the last slice of a fresh ``(L, N, H)`` buffer, where ``nn`` leaves it."""
    return h.new_empty((seq_len, *h.shape))[-1].copy_(h)


def forward(w: Weights, x: torch.Tensor, for_backward: bool = True
            ) -> Tuple[torch.Tensor, Optional[torch.Tensor], Any]:
    """``(h_L, c_L or None, saved)`` for the batch ``x``: the last hidden state (laid out as
    ``nn`` lays it out), the LSTM's last cell state, and what :func:`backward` needs.
    ``for_backward=False`` is the pass ``nn`` runs under ``no_grad`` (oneDNN's inference kind
    for the LSTM)."""
    if w.kind == "lstm":
        return _lstm_forward(w, x, for_backward)
    ih, x_tm = _input_projection(w, x)
    seq_len = x.shape[1]
    steps = ih.view(seq_len, x.shape[0], -1).unbind(0)
    if w.kind == "rnn":
        h = torch.tanh(steps[0] + w.b_hh)  # addmm(b_hh, 0, W_hh^T) is exactly b_hh
        hs = [h]
        for t in range(1, seq_len):
            pre = torch.addmm(w.b_hh, h, w.w_hh_t)
            pre.add_(steps[t])
            h = torch.tanh(pre)
            hs.append(h)
        last = _last_slice(h, seq_len)
        return last, None, (hs[:-1] + [last], x_tm)
    h = x.new_zeros((x.shape[0], w.hidden_size))
    saved = []
    for t in range(seq_len):
        h, step = _gru_cell(w, steps[t], h)
        saved.append(step)
    return _last_slice(h, seq_len), None, (saved, x_tm)


def _gru_cell(w: Weights, ig: torch.Tensor, h: torch.Tensor):
    """One step of ATen's CPU ``GRUCell`` (precomputed input gates), and what backward needs."""
    hg = torch.addmm(w.b_hh, h, w.w_hh_t)
    i_r, i_z, i_n = ig.unsafe_chunk(3, 1)
    h_r, h_z, h_n = hg.unsafe_chunk(3, 1)
    r = h_r.add_(i_r).sigmoid_()
    z = h_z.add_(i_z).sigmoid_()
    h_n_before = h_n.clone()  # mul_ overwrites it; its gradient needs it
    n = i_n.add(h_n.mul_(r)).tanh_()
    diff = h - n
    new_h = diff.clone().mul_(z).add_(n)
    return new_h, (h, r, z, h_n_before, n, diff)


def backward(w: Weights, saved: Any, dh: torch.Tensor, out: Sequence[Optional[torch.Tensor]]) -> List[torch.Tensor]:
    """The gradients of ``W_ih, W_hh, b_ih, b_hh`` given ``dh``, the loss's gradient for the last
    hidden state, written into ``out``'s tensors where given."""
    if w.kind == "lstm":
        return _lstm_backward(w, saved, dh, out)
    if w.kind == "rnn":
        return _rnn_backward(w, saved, dh, out)
    return _gru_backward(w, saved, dh, out)


def _accumulate(total: Optional[torch.Tensor], part: torch.Tensor) -> torch.Tensor:
    return part if total is None else total.add_(part)


def _finish(parts: List[Optional[torch.Tensor]], like: List[torch.Tensor],
            out: Sequence[Optional[torch.Tensor]]) -> List[torch.Tensor]:
    """The gradients into ``out`` (a missing one, for one-step sequences, is zero)."""
    grads = []
    for part, ref, o in zip(parts, like, out):
        if part is None:
            part = torch.zeros_like(ref)
        if o is not None:
            o.copy_(part)
            part = o
        grads.append(part)
    return grads


def _rnn_backward(w: Weights, saved: Any, dh: torch.Tensor, out) -> List[torch.Tensor]:
    hs, x_tm = saved
    seq_len, n = len(hs), hs[0].shape[0]
    gts: List[torch.Tensor] = []  # from the last step to the first
    grad_whh: Optional[torch.Tensor] = None
    grad_bhh: Optional[torch.Tensor] = None
    for t in range(seq_len - 1, 0, -1):
        gt = _tanh_backward(dh, hs[t])
        gts.append(gt)
        grad_whh = _accumulate(grad_whh, torch.mm(gt.t(), hs[t - 1]))
        grad_bhh = _accumulate(grad_bhh, gt.sum(0))
        dh = torch.mm(gt, w.w_hh)
    gt = _tanh_backward(dh, hs[0])
    gts.append(gt)
    gts.reverse()
    # step 0 saw a zero state: its W_hh gradient is zero and adds nothing
    grad_bhh = _accumulate(grad_bhh, gt.sum(0))
    g_ih = torch.stack(gts)  # (L, N, H)
    grad_bih = torch.sum(g_ih, (0, 1))
    grad_wih = torch.mm(g_ih.view(seq_len * n, -1).t(), x_tm)
    return _finish([grad_wih, grad_whh, grad_bih, grad_bhh], [w.w_ih, w.w_hh, w.b_ih, w.b_hh], out)


def _gru_backward(w: Weights, saved: Any, dh: torch.Tensor, out) -> List[torch.Tensor]:
    steps, x_tm = saved
    seq_len, n = len(steps), steps[0][0].shape[0]
    d_igs: List[torch.Tensor] = []  # from the last step to the first
    grad_whh: Optional[torch.Tensor] = None
    grad_bhh: Optional[torch.Tensor] = None
    for t in range(seq_len - 1, -1, -1):
        h, r, z, h_n, n_gate, diff = steps[t]
        d_diff = dh * z  # h' = diff * z + n
        d_z = dh * diff
        d_n = dh + (-d_diff)  # from add_, then from the subtraction
        d_n_pre = _tanh_backward(d_n, n_gate)
        d_h_n = d_n_pre * r
        d_r = d_n_pre * h_n
        d_r_pre = _sigmoid_backward(d_r, r)
        d_z_pre = _sigmoid_backward(d_z, z)
        d_hg = torch.cat([d_r_pre, d_z_pre, d_h_n], 1)
        d_igs.append(torch.cat([d_r_pre, d_z_pre, d_n_pre], 1))
        if t > 0:  # step 0 saw a zero state: its W_hh gradient is zero and adds nothing
            grad_whh = _accumulate(grad_whh, torch.mm(d_hg.t(), h))
        grad_bhh = _accumulate(grad_bhh, d_hg.sum(0))
        if t > 0:
            dh = d_diff + torch.mm(d_hg, w.w_hh)
    d_igs.reverse()
    g_ih = torch.stack(d_igs)  # (L, N, 3H)
    grad_bih = torch.sum(g_ih, (0, 1))
    grad_wih = torch.mm(g_ih.view(seq_len * n, -1).t(), x_tm)
    return _finish([grad_wih, grad_whh, grad_bih, grad_bhh], [w.w_ih, w.w_hh, w.b_ih, w.b_hh], out)


def _lstm_forward(w: Weights, x: torch.Tensor, for_backward: bool):
    n, seq_len, _ = x.shape
    x_tm = x.transpose(0, 1).contiguous()
    hx = x.new_zeros((n, w.hidden_size))
    cx = x.new_zeros((n, w.hidden_size))
    # with grad mode on (as under autograd) oneDNN runs its training kind and keeps a workspace;
    # the weights are detached, so no graph is recorded
    with torch.set_grad_enabled(for_backward):
        output, hy, cy, workspace = torch.ops.aten.mkldnn_rnn_layer(
            x_tm, w.w_ih, w.w_hh, w.b_ih, w.b_hh, hx, cx, False, [], _LSTM_MODE, w.hidden_size, 1, True, False,
            True, w.rnn.training)
    return output[-1], cy, (x_tm, hx, cx, output, hy, cy, workspace)


def _lstm_backward(w: Weights, saved: Any, dh: torch.Tensor, out) -> List[torch.Tensor]:
    x_tm, hx, cx, output, hy, cy, workspace = saved
    seq_len, n, hidden = output.shape
    grad_output = dh.new_zeros((n, seq_len, hidden))  # select_backward's zeros, batch-first
    grad_output[:, -1] = dh
    grads = torch.ops.aten.mkldnn_rnn_layer_backward(
        x_tm, w.w_ih, w.w_hh, w.b_ih, w.b_hh, hx, cx, output, hy, cy, grad_output.transpose(0, 1), None, None,
        False, _LSTM_MODE, hidden, 1, True, w.rnn.training, False, [], True, workspace)
    return _finish(list(grads[1:5]), [w.w_ih, w.w_hh, w.b_ih, w.b_hh], out)
