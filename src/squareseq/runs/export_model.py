"""A trained model rewritten for export: the forward pass ``squareseq export`` writes.

The training models (:mod:`squareseq.models`) take a padded batch with lengths or a
``PackedSequence``, and pack inside ``forward``; packing, and recurrent layers over a length that
may change, are what exporters cannot follow. :func:`export_module` rebuilds a run's model from
the same trained weights as a module that every exporter reads:

* inputs: ``x`` ``(N, L, F)`` float32, the *raw* values ``squareseq predict`` takes (the run's
  standardization, if it had one, is the module's first step), and ``lengths`` ``(N,)`` int64
  (each sequence's real steps) where the run trained on sequences of different lengths. Steps
  past a sequence's length are ignored, whatever they hold (zeros or NaN).
* outputs: ``probabilities`` ``(N, C)`` (``C >= 2`` classes, in the run's class order, rows sum
  to 1) and ``logits`` ``(N, n_outputs)``: the classifier's scores before any sigmoid or softmax
  (one column, the logit of the second class, for a binary run trained with BCE).
* recurrent layers run over the padded batch, one layer and direction at a time; the forward
  direction's state at step ``lengths - 1`` is the packed final state, and the backward
  direction reads each sequence reversed within its length, so both equal what packing gives.
  ``recurrence="module"`` runs each direction with ``nn.RNN``/``nn.GRU``/``nn.LSTM`` (what
  ``torch.jit.script`` keeps, for any length); ``"scan"`` writes the cell's update out and loops
  with ``torch``'s scan, so ``torch.export`` keeps the length dimension dynamic.
* convolutions use the uncapped dilation ``dilation ** layer``: the cap the training model
  applies (:func:`squareseq.sizes.effective_dilation`) changes no output.
"""

import copy
from typing import List, Optional, Tuple, cast

import torch
from torch import nn
from torch.nn import functional

from squareseq.errors import ModelError
from squareseq.models.conv import ConvClassifier, MaskedBatchNorm1d
from squareseq.models.networks import SquareConv1d, SquareModel

__all__ = ["export_module", "RECURRENCES", "MAX_CONV_PADDING"]

#: How recurrent layers are written: ``module`` (nn.RNN/GRU/LSTM) or ``scan`` (the cell written out).
RECURRENCES = ("module", "scan")
#: An exported convolution pads each side by ``dilation ** layer * (kernel_size - 1) / 2`` steps;
#: a deeper model than this allows is refused rather than exported with a huge padding.
MAX_CONV_PADDING = 1 << 16


def reverse_within(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``x`` ``(N, L, H)`` with each sequence's first ``lengths`` steps in reverse order (the
    padding stays where it is); its own inverse."""
    steps = torch.arange(x.shape[1], device=x.device).unsqueeze(0)
    ends = lengths.unsqueeze(1)
    index = torch.where(steps < ends, ends - 1 - steps, steps)
    return x.gather(1, index.unsqueeze(2).expand(x.shape[0], x.shape[1], x.shape[2]))


def at_last_step(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Row ``lengths[i] - 1`` of each sequence of ``x`` ``(N, L, H)``: ``(N, H)``."""
    index = (lengths - 1).view(-1, 1, 1).expand(x.shape[0], 1, x.shape[2])
    return x.gather(1, index).squeeze(1)


class _ModuleRecurrence(nn.Module):
    """One direction of one layer as a one-layer ``nn.RNN``/``nn.GRU``/``nn.LSTM``: ``(N, L, H)`` outputs."""

    def __init__(self, rnn: nn.Module) -> None:
        super().__init__()
        self.rnn = rnn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]


class _ScanRecurrence(nn.Module):
    """One direction of one layer with the cell's update written out and looped with scan."""

    weight_ih: torch.Tensor
    weight_hh: torch.Tensor
    bias_ih: torch.Tensor
    bias_hh: torch.Tensor

    def __init__(self, cell: str, weights: List[torch.Tensor]) -> None:
        super().__init__()
        self.cell = cell
        self.hidden_dim = weights[1].shape[1]
        for name, value in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), weights):
            self.register_buffer(name, value.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from torch._higher_order_ops.scan import scan

        w_hh, b_hh, cell = self.weight_hh, self.bias_hh, self.cell
        inputs = x @ self.weight_ih.T + self.bias_ih  # every step's input term at once: (N, L, gates)
        h0 = x.new_zeros(x.shape[0], self.hidden_dim)

        def cell_step(h, xt):
            hh = h @ w_hh.T + b_hh
            if cell == "rnn":
                h = torch.tanh(xt + hh)
            else:
                r_i, z_i, n_i = xt.chunk(3, dim=1)
                r_h, z_h, n_h = hh.chunk(3, dim=1)
                r, z = torch.sigmoid(r_i + r_h), torch.sigmoid(z_i + z_h)
                h = (1 - z) * torch.tanh(n_i + r * n_h) + z * h
            return h, h.clone()

        def lstm_step(carry, xt):
            h, c = carry
            i, f, g, o = (xt + h @ w_hh.T + b_hh).chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            return (h, c), h.clone()

        if cell == "lstm":
            _, outputs = scan(lstm_step, (h0, h0.clone()), inputs, dim=1)
        else:
            _, outputs = scan(cell_step, h0, inputs, dim=1)
        return outputs


class _RecurrentLayer(nn.Module):
    """One recurrent layer, one or two directions: ``(outputs (N, L, D*H), final states (N, D*H))``."""

    def __init__(self, directions: List[nn.Module]) -> None:
        super().__init__()
        self.directions = nn.ModuleList(directions)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        outputs: List[torch.Tensor] = []
        finals: List[torch.Tensor] = []
        for d, direction in enumerate(self.directions):
            seen = x if d == 0 else reverse_within(x, lengths)
            out = direction(seen)
            finals.append(at_last_step(out, lengths))
            outputs.append(out if d == 0 else reverse_within(out, lengths))
        return torch.cat(outputs, dim=2), torch.cat(finals, dim=1)


def _recurrent_layers(model: SquareModel, recurrence: str) -> List[nn.Module]:
    rnn = model.basic_rnn
    hidden, cls = model.hidden_dim, type(rnn)
    layers: List[nn.Module] = []
    for layer in range(model.num_layers):
        directions: List[nn.Module] = []
        for suffix in ("", "_reverse")[:model.n_directions]:
            weights = [getattr(rnn, f"{kind}_l{layer}{suffix}") for kind in ("weight_ih", "weight_hh", "bias_ih",
                                                                                "bias_hh")]
            if recurrence == "scan":
                directions.append(_ScanRecurrence(model.cell_type, weights))
                continue
            one = cls(weights[0].shape[1], hidden, num_layers=1, batch_first=True)
            with torch.no_grad():
                for name, value in zip(("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"), weights):
                    getattr(one, name).copy_(value)
            directions.append(_ModuleRecurrence(one))
        layers.append(_RecurrentLayer(directions))
    return layers


class _Head(nn.Module):
    """Standardizes the raw inputs and zeroes the padding; turns scores into probabilities."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, model: nn.Module, mean: Optional[List[float]], std: Optional[List[float]]) -> None:
        super().__init__()
        self.standardize = mean is not None and std is not None
        n_features = int(getattr(model, "n_features", 0))
        self.register_buffer("mean", torch.tensor(mean if mean is not None else [0.0] * n_features))
        self.register_buffer("std", torch.tensor(std if std is not None else [1.0] * n_features))
        self.reference_logit = bool(getattr(model, "reference_logit", False))
        self.sigmoid = getattr(model, "output_activation", None) is not None

    def inputs(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.standardize:
            x = (x - self.mean) / self.std
        return torch.where(mask.unsqueeze(2), x, torch.zeros_like(x))

    def outputs(self, scores: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if self.reference_logit:
            scores = torch.cat([scores.new_zeros(scores.shape[0], 1), scores], dim=1)
        if scores.shape[1] > 1:
            return torch.softmax(scores, dim=1), scores
        p1 = torch.sigmoid(scores[:, 0])
        return torch.stack([1 - p1, p1], dim=1), scores


class _Recurrent(nn.Module):
    def __init__(self, model: SquareModel, head: _Head, recurrence: str) -> None:
        super().__init__()
        self.head = head
        self.layers = nn.ModuleList(_recurrent_layers(model, recurrence))
        self.classifier = model.classifier

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        mask = torch.arange(x.shape[1], device=x.device).unsqueeze(0) < lengths.unsqueeze(1)
        h = self.head.inputs(x, mask)
        features = h[:, 0]
        for layer in self.layers:
            h, features = layer(h, lengths)
        return self.head.outputs(self.classifier(features))


class _ConvLayer(nn.Module):
    """One convolution (padded to keep the length, uncapped dilation) and its batch normalisation."""

    def __init__(self, conv: nn.Conv1d, norm: MaskedBatchNorm1d, dilation: int) -> None:
        super().__init__()
        self.conv, self.norm, self.dilation = conv, norm, dilation
        total = dilation * (conv.kernel_size[0] - 1)
        self.padding = [total // 2, total - total // 2]  # an even kernel: one more step after than before

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = functional.conv1d(functional.pad(h, self.padding), self.conv.weight, self.conv.bias,
                              dilation=self.dilation)
        return self.norm(h)  # in evaluation: nn.BatchNorm1d's


class _Conv(nn.Module):
    """:class:`ConvClassifier`'s evaluation forward pass."""

    def __init__(self, model: ConvClassifier, head: _Head) -> None:
        super().__init__()
        self.head = head
        self.classifier = model.classifier
        self.max_pool = model.pooling == "max"
        layers: List[nn.Module] = []
        for layer, (conv, norm) in enumerate(zip(model.convs, model.norms)):
            step = model.dilation ** layer
            if step * (model.kernel_size - 1) > MAX_CONV_PADDING:
                raise ModelError(f"layer {layer} of this conv1d model spaces its taps {step} steps apart: too deep to "
                                 f"export (at most {MAX_CONV_PADDING} steps of padding per layer)")
            layers.append(_ConvLayer(cast(nn.Conv1d, conv), cast(MaskedBatchNorm1d, norm), step))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        mask = torch.arange(x.shape[1], device=x.device).unsqueeze(0) < lengths.unsqueeze(1)
        keep = mask.unsqueeze(1)  # (N, 1, L)
        h = self.head.inputs(x, mask).transpose(1, 2)
        for layer in self.layers:
            h = torch.relu(layer(h))
            h = torch.where(keep, h, torch.zeros_like(h))
        if self.max_pool:  # after the ReLU every response is >= 0: the zeroed padding never wins
            features = h.amax(dim=2)
        else:
            features = h.sum(dim=2) / lengths.to(h.dtype).unsqueeze(1)
        return self.head.outputs(self.classifier(features))


class _SquareConv(nn.Module):
    """:class:`SquareConv1d`'s forward pass (its inputs have exactly ``seq_len`` steps)."""

    def __init__(self, model: SquareConv1d, head: _Head) -> None:
        super().__init__()
        self.head = head
        self.conv1d, self.classifier = model.conv1d, model.classifier
        self.kernel_size = model.kernel_size

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        mask = torch.arange(x.shape[1], device=x.device).unsqueeze(0) < lengths.unsqueeze(1)
        features = torch.relu(self.conv1d(self.head.inputs(x, mask).transpose(1, 2)))  # (N, C, W)
        window_end = torch.arange(features.shape[2], device=x.device) + self.kernel_size
        features = features * (window_end.view(1, 1, -1) <= lengths.view(-1, 1, 1)).to(features.dtype)
        return self.head.outputs(self.classifier(features.flatten(1)))


class _FullLength(nn.Module):
    """Takes ``x`` alone: every sequence has all ``L`` steps."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        lengths = torch.ones_like(x[:, 0, 0], dtype=torch.int64) * x.shape[1]
        return self.inner(x, lengths)


def export_module(model: nn.Module, mean: Optional[List[float]] = None, std: Optional[List[float]] = None,
                  lengths: bool = True, recurrence: str = "module") -> nn.Module:
    """The export forward pass of a trained ``model`` (in evaluation mode): ``forward(x, lengths)``,
    or ``forward(x)`` without ``lengths``; returns ``(probabilities, logits)``. ``mean``/``std``:
    the run's per-feature standardization (None: inputs go in as they are)."""
    if recurrence not in RECURRENCES:
        raise ModelError(f"recurrence must be one of {', '.join(RECURRENCES)}, not {recurrence!r}")
    model = copy.deepcopy(model).eval()  # the export's own weights, frozen: inference needs no gradients
    model.requires_grad_(False)
    head = _Head(model, mean, std)
    inner: nn.Module
    if isinstance(model, SquareModel):
        inner = _Recurrent(model, head, recurrence)
    elif isinstance(model, ConvClassifier):
        inner = _Conv(model, head)
    elif isinstance(model, SquareConv1d):
        inner = _SquareConv(model, head)
    else:
        raise ModelError(f"cannot export a {type(model).__name__}: squareseq exports its own models only")
    module = inner if lengths else _FullLength(inner)
    module.requires_grad_(False)
    return module.eval()
