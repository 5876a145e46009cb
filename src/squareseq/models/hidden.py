"""Hidden states of a trained model, as arrays: what the hidden-state figures and replays draw.

Everything here computes; nothing draws. The figures in :mod:`squareseq.figures.hidden` and the
replays in :mod:`squareseq.figures.replay` take these arrays, so a plot never re-runs a model to read a
side attribute.

* :func:`hidden_states` runs the recurrent layer ``model.basic_rnn`` (RNN, GRU or LSTM) and
  returns the hidden state after every step.
* :func:`rnn_cell_step` and :func:`unroll_rnn` redo an Elman RNN's update by hand, keeping its
  parts (transformed hidden state, transformed input, their sum, the activation).
* :class:`Projection` maps hidden states to the plane: the identity for ``hidden_dim == 2``,
  PCA (numpy SVD) above, so models with larger hidden states are drawn instead of refused.
* :func:`classifier_probability` and :func:`probability_grid` give the classifier's probability
  of class 1 (clockwise) over hidden space; :func:`decision_line` its 0.5 boundary.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from squareseq.errors import ModelError

__all__ = [
    "recurrent_layer",
    "hidden_states",
    "CellStep",
    "rnn_cell_step",
    "unroll_rnn",
    "Projection",
    "project_2d",
    "classifier_probability",
    "Grid",
    "probability_grid",
    "linear_boundary",
    "decision_line",
    "hidden_limits",
    "canonical_sequences",
]


def recurrent_layer(model: nn.Module) -> nn.RNNBase:
    """The model's recurrent layer, ``model.basic_rnn`` (an ``nn.RNN``, ``nn.GRU`` or ``nn.LSTM``)."""
    rnn = getattr(model, "basic_rnn", None)
    if not isinstance(rnn, nn.RNNBase):
        raise ModelError(
            f"{type(model).__name__} has no recurrent layer 'basic_rnn' (nn.RNN, nn.GRU or nn.LSTM): "
            "hidden-state figures need a SquareModel-like model"
        )
    return rnn


def _param_device(module: nn.Module) -> torch.device:
    for p in module.parameters():
        return p.device
    return torch.device("cpu")


def hidden_states(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The hidden state after every step, for every sequence.

    Runs only the recurrent layer, in eval mode and without gradients, and restores the layer's
    mode afterwards. The initial state is zero, as in the model's forward pass.

    Args:
        model: a model whose recurrent layer is ``model.basic_rnn`` (batch first).
        x: ``(N, L, F)`` sequences (any array-like).

    Returns:
        A CPU float tensor ``(N, L, H)``: the last layer's output at each step (for an LSTM, its
        ``h``; for a bidirectional layer, both directions side by side).
    """
    rnn = recurrent_layer(model)
    x = torch.as_tensor(x, dtype=torch.float32)
    if x.dim() != 3:
        raise ModelError(f"x must have shape (N, L, F), got {tuple(x.shape)}")
    if not rnn.batch_first:
        raise ModelError("hidden_states expects a batch-first recurrent layer (batch_first=True)")
    was_training = rnn.training
    rnn.eval()
    try:
        with torch.no_grad():
            result = rnn(x.to(_param_device(rnn)))
    finally:
        rnn.train(was_training)
    output = result[0] if isinstance(result, tuple) else result  # LSTM: (out, (h, c)); RNN/GRU: (out, h)
    return output.detach().float().cpu()


class CellStep(NamedTuple):
    """The parts of one Elman RNN update ``h_t = tanh(W_hh h_{t-1} + b_hh + W_ih x_t + b_ih)``."""

    transformed_hidden: torch.Tensor  # W_hh h_{t-1} + b_hh, (N, H)
    transformed_input: torch.Tensor  # W_ih x_t + b_ih, (N, H)
    pre_activation: torch.Tensor  # their sum, (N, H)
    hidden: torch.Tensor  # the activation of the sum: the new hidden state, (N, H)


def _check_elman(rnn: nn.Module) -> nn.RNN:
    if not isinstance(rnn, nn.RNN):
        raise ModelError(
            f"the hand-written cell step needs an nn.RNN (tanh or relu), not {type(rnn).__name__}"
        )
    return rnn


def _layer_param(rnn: nn.RNN, name: str) -> torch.Tensor:
    """``rnn``'s parameter ``name`` (``weight_ih_l0``, ...): ``nn.RNN`` registers them by name at
    run time, so type checkers only see ``nn.Module.__getattr__``'s ``Tensor | Module``."""
    return getattr(rnn, name)


def rnn_cell_step(rnn: nn.Module, x_t: torch.Tensor, h_prev: torch.Tensor) -> CellStep:
    """One step of ``rnn``'s first layer written out by hand, keeping every intermediate.

    Args:
        rnn: an ``nn.RNN``; its layer-0 weights are used.
        x_t: the inputs at this step, ``(N, F)`` or ``(F,)``.
        h_prev: the previous hidden state, ``(N, H)`` or ``(H,)``.
    """
    rnn = _check_elman(rnn)
    w_ih, w_hh = _layer_param(rnn, "weight_ih_l0"), _layer_param(rnn, "weight_hh_l0")
    with torch.no_grad():
        x_t = torch.as_tensor(x_t, dtype=w_ih.dtype, device=w_ih.device)
        h_prev = torch.as_tensor(h_prev, dtype=w_hh.dtype, device=w_hh.device)
        t_hidden = h_prev @ w_hh.T
        t_input = x_t @ w_ih.T
        if rnn.bias:
            t_hidden = t_hidden + _layer_param(rnn, "bias_hh_l0")
            t_input = t_input + _layer_param(rnn, "bias_ih_l0")
        pre = t_hidden + t_input
        h = torch.tanh(pre) if rnn.nonlinearity == "tanh" else torch.relu(pre)
    return CellStep(t_hidden, t_input, pre, h)


def unroll_rnn(rnn: nn.Module, x: torch.Tensor, h0: Optional[torch.Tensor] = None) -> List[CellStep]:
    """Runs :func:`rnn_cell_step` over every step of ``x`` (``(N, L, F)``), from ``h0`` (zeros by
    default), and returns the ``L`` steps' parts."""
    rnn = _check_elman(rnn)
    x = torch.as_tensor(x, dtype=torch.float32)
    if x.dim() != 3:
        raise ModelError(f"x must have shape (N, L, F), got {tuple(x.shape)}")
    device = _layer_param(rnn, "weight_ih_l0").device
    x = x.to(device)
    h = (torch.zeros(x.shape[0], rnn.hidden_size, device=device) if h0 is None
         else torch.as_tensor(h0, dtype=torch.float32))
    steps = []
    for t in range(x.shape[1]):
        step = rnn_cell_step(rnn, x[:, t], h)
        steps.append(step)
        h = step.hidden
    return steps


@dataclass(frozen=True)
class Projection:
    """An affine map from hidden space ``R^H`` to the plane, and back onto its plane.

    ``transform(h) = (h - mean) @ components.T``; ``inverse(z) = mean + z @ components``.
    For ``H == 2`` it is the identity; above, the two leading principal components.
    """

    mean: np.ndarray  # (H,)
    components: np.ndarray  # (2, H), orthonormal rows
    explained: Optional[np.ndarray] = None  # (2,) share of variance, None for the identity

    @property
    def hidden_dim(self) -> int:
        return int(self.mean.shape[0])

    @property
    def is_identity(self) -> bool:
        return self.explained is None and self.hidden_dim == 2

    def transform(self, h) -> np.ndarray:
        """``(..., H)`` hidden states to ``(..., 2)`` plane coordinates."""
        h = np.asarray(h, dtype=np.float64)
        if h.shape[-1] != self.hidden_dim:
            raise ModelError(f"hidden states have size {h.shape[-1]}, the projection expects {self.hidden_dim}")
        return (h - self.mean) @ self.components.T

    def inverse(self, z) -> np.ndarray:
        """``(..., 2)`` plane coordinates to the ``(..., H)`` hidden states on the plane."""
        return self.mean + np.asarray(z, dtype=np.float64) @ self.components

    def describe(self, space: str = "hidden states") -> str:
        """A short note for titles: empty for the identity. ``space`` names the vectors projected."""
        if self.is_identity:
            return ""
        if self.hidden_dim == 1:
            return "hidden size 1: the state is on the horizontal axis"
        if self.explained is None:  # built by hand, without the shares PCA gives
            return f"projection of {self.hidden_dim}-D {space}"
        share = 100 * float(np.sum(self.explained))
        return f"PCA projection of {self.hidden_dim}-D {space} ({share:.0f}% of variance)"

    @classmethod
    def fit(cls, h) -> "Projection":
        """The identity for 2-D states; otherwise PCA on the ``(..., H)`` states ``h``."""
        h = np.asarray(h, dtype=np.float64)
        dim = h.shape[-1]
        if dim == 2:
            return cls(np.zeros(2), np.eye(2))
        if dim == 1:
            return cls(np.zeros(1), np.array([[1.0], [0.0]]), np.array([1.0, 0.0]))
        flat = h.reshape(-1, dim)
        mean = flat.mean(axis=0)
        _, s, vt = np.linalg.svd(flat - mean, full_matrices=False)
        var = s**2
        total = var.sum()
        explained = var[:2] / total if total > 0 else np.zeros(2)
        components = vt[:2].copy()
        # SVD leaves each component's sign arbitrary: make its largest entry positive, so that
        # figures fitted on different samples of similar states face the same way
        rows = np.arange(len(components))
        components *= np.sign(components[rows, np.abs(components).argmax(axis=1)])[:, None]
        return cls(mean, components, explained)


def project_2d(h, projection: Optional[Projection] = None) -> Tuple[np.ndarray, Projection]:
    """Hidden states ``(..., H)`` as plane coordinates ``(..., 2)``, with the projection used
    (fitted on ``h`` when not given): identity for ``H == 2``, PCA above."""
    h = h.numpy() if isinstance(h, torch.Tensor) else np.asarray(h)
    if projection is None:
        projection = Projection.fit(h)
    return projection.transform(h), projection


def classifier_probability(classifier: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """The classifier's probability of class 1 (clockwise) for hidden states ``h`` ``(M, H)``.

    One logit: ``sigmoid``; two logits: softmax's class-1 share.
    """
    with torch.no_grad():
        h = torch.as_tensor(h, dtype=torch.float32, device=_param_device(classifier))
        logits = classifier(h)
    if logits.shape[-1] == 1:
        return torch.sigmoid(logits[..., 0]).cpu()
    if logits.shape[-1] == 2:
        return torch.softmax(logits, dim=-1)[..., 1].cpu()
    raise ModelError(
        f"the classifier has {logits.shape[-1]} outputs; hidden-space probability maps need 1 or 2"
    )


class Grid(NamedTuple):
    """Probabilities on a regular grid of the plane: ``probs[i, j]`` is at ``(xs[j], ys[i])``."""

    xs: np.ndarray  # (n,)
    ys: np.ndarray  # (n,)
    probs: np.ndarray  # (n, n)

    @property
    def extent(self) -> Tuple[float, float, float, float]:
        """``imshow``'s extent, so pixel centres sit on the grid points."""
        dx = (self.xs[-1] - self.xs[0]) / max(len(self.xs) - 1, 1)
        dy = (self.ys[-1] - self.ys[0]) / max(len(self.ys) - 1, 1)
        return (self.xs[0] - dx / 2, self.xs[-1] + dx / 2, self.ys[0] - dy / 2, self.ys[-1] + dy / 2)


def probability_grid(
    classifier: nn.Module,
    xlim: Sequence[float] = (-1.05, 1.05),
    ylim: Sequence[float] = (-1.05, 1.05),
    n: int = 81,
    projection: Optional[Projection] = None,
) -> Grid:
    """The classifier's class-1 probability on an ``n x n`` grid of the (projected) hidden plane.

    With a PCA ``projection``, each grid point is mapped back onto the plane in hidden space
    before the classifier sees it.
    """
    xs = np.linspace(xlim[0], xlim[1], n)
    ys = np.linspace(ylim[0], ylim[1], n)
    zz = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)  # (n*n, 2), x varies fastest
    h = zz if projection is None else projection.inverse(zz)
    probs = classifier_probability(classifier, torch.as_tensor(h, dtype=torch.float32))
    return Grid(xs, ys, probs.numpy().reshape(n, n))


def linear_boundary(weight, bias) -> Tuple[np.ndarray, float]:
    """``(w, b)`` with ``w . h + b = 0`` on the decision boundary of a linear classifier with
    1 logit (``weight`` ``(1, H)``) or 2 logits (``(2, H)``: class 1 minus class 0)."""
    weight = np.asarray(torch.as_tensor(weight).detach().cpu(), dtype=np.float64)
    bias = np.asarray(torch.as_tensor(bias).detach().cpu(), dtype=np.float64)
    if weight.shape[0] == 1:
        return weight[0], float(bias[0])
    if weight.shape[0] == 2:
        return weight[1] - weight[0], float(bias[1] - bias[0])
    raise ModelError(f"the classifier has {weight.shape[0]} outputs; a decision line needs 1 or 2")


def decision_line(
    weight, bias, xlim: Sequence[float], ylim: Sequence[float], projection: Optional[Projection] = None
) -> np.ndarray:
    """The linear classifier's 0.5-probability line inside the box, as ``(2, 2)`` end points;
    all NaN when the line misses the box.

    On a PCA plane ``h = mean + z C`` the boundary ``w . h + b = 0`` is still a line:
    ``(C w) . z + (w . mean + b) = 0``.
    """
    w, b = linear_boundary(weight, bias)
    if projection is not None:
        w, b = projection.components @ w, float(w @ projection.mean + b)
    (x0, x1), (y0, y1) = xlim, ylim
    candidates = []
    if abs(w[1]) > 1e-12:  # crossings of the vertical edges
        candidates += [(x, -(w[0] * x + b) / w[1]) for x in (x0, x1)]
    if abs(w[0]) > 1e-12:  # crossings of the horizontal edges
        candidates += [(-(w[1] * y + b) / w[0], y) for y in (y0, y1)]
    eps = 1e-9 * max(x1 - x0, y1 - y0)
    inside = [p for p in candidates if x0 - eps <= p[0] <= x1 + eps and y0 - eps <= p[1] <= y1 + eps]
    if len(inside) < 2:
        return np.full((2, 2), np.nan)
    pts = np.array(inside)
    # the two crossings farthest apart are the segment's ends (corners may appear twice)
    d = ((pts[:, None] - pts[None]) ** 2).sum(-1)
    i, j = np.unravel_index(np.argmax(d), d.shape)
    return pts[[i, j]]


def hidden_limits(points2d, minimum: float = 1.05,
                  margin: float = 0.1) -> Tuple[Tuple[float, float], Tuple[float, float]]:
    """Square-ish axis limits holding all ``(..., 2)`` points, and at least ``[-minimum, minimum]``
    (the range of tanh states)."""
    pts = np.asarray(points2d, dtype=np.float64).reshape(-1, 2)
    pts = pts[np.isfinite(pts).all(axis=1)]
    lo = np.minimum(pts.min(axis=0) - margin, -minimum) if len(pts) else np.array([-minimum] * 2)
    hi = np.maximum(pts.max(axis=0) + margin, minimum) if len(pts) else np.array([minimum] * 2)
    return (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))


def canonical_sequences() -> Tuple[np.ndarray, np.ndarray, List[str]]:
    """The eight noise-free sequences: ``x`` ``(8, 4, 2)``, labels ``(8,)`` (1 = clockwise) and
    names like ``"ABCD"``; clockwise ones first, each from corners A, B, C, D."""
    from squareseq.data.squares import CORNERS

    letters = "ABCD"
    xs, ys, names = [], [], []
    for clockwise in (1, 0):
        for start in range(4):
            order = [(start + i) % 4 for i in range(4)]
            if not clockwise:
                order = [(start - i) % 4 for i in range(4)]
            xs.append(CORNERS[order].astype(np.float32))
            ys.append(clockwise)
            names.append("".join(letters[i] for i in order))
    return np.stack(xs), np.array(ys), names
