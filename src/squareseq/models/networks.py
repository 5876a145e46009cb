"""Models that classify ``(N, L, F)`` batches of sequences.

* :class:`SquareModel`: the tutorial's recurrent classifier, with an ``nn.RNN`` (the default,
  bit for bit the tutorial's model), ``nn.GRU`` or ``nn.LSTM``, several layers, one or two
  directions.
* :class:`SquareConv1d`: a 1-D convolution over time, ReLU, flatten, linear classifier.
* :func:`build_model`: builds either from a name, and rebuilds a saved model from its
  ``config()`` (``build_model(**model.config())``).

Every model takes a padded ``(N, L, F)`` tensor, optionally with ``lengths``, or a
``PackedSequence`` (as :func:`squareseq.data.loaders.collate_packed` and
:class:`squareseq.data.loaders.PackedLoader` yield), and returns ``(N, n_outputs)`` in the batch's
original order.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple, Union

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from squareseq.config import MAX_PARAMETERS, check_parameter_count, parameter_count
from squareseq.data.squares import pack_padded
from squareseq.errors import ModelError
from squareseq.sizes import CELL_GATES

__all__ = ["CELLS", "MODELS", "MAX_PARAMETERS", "SquareModel", "SquareConv1d", "build_model", "parameter_count",
           "parameter_shapes", "outputs_probabilities"]

#: Recurrent layers :class:`SquareModel` can use.
CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
#: Names :func:`build_model` accepts (besides the class names a ``config()`` records).
MODELS = ("rnn", "gru", "lstm", "conv1d")

Batch = Union[torch.Tensor, PackedSequence]


def _make_activation(output_activation: Optional[str]) -> Optional[nn.Module]:
    if output_activation not in (None, "sigmoid"):
        raise ModelError(f"output_activation must be None or 'sigmoid', not {output_activation!r}")
    return nn.Sigmoid() if output_activation == "sigmoid" else None


def _check_padded(x: torch.Tensor, n_features: int) -> None:
    if x.dim() != 3 or x.shape[-1] != n_features:
        raise ModelError(
            f"expected a batch of shape (N, L, {n_features}) (batch first), got {tuple(x.shape)}"
        )


class SquareModel(nn.Module):
    """The tutorial's model: a recurrent layer whose last step feeds a linear classifier.

    The recurrent layer (``basic_rnn``) is created before the classifier, so a model built after
    ``torch.manual_seed(s)`` has exactly the weights of the model one writes by hand with
    ``nn.RNN`` (the tutorial's), ``nn.GRU`` or ``nn.LSTM`` for the same seed.

    Which step the classifier reads:

    * fixed length, one direction: the last step's output, ``output[:, -1]`` (the tutorial's).
    * variable length (``lengths`` or a ``PackedSequence``) or two directions: the final hidden
      states ``h_n`` of the last layer, forward then backward. With packing, the forward
      direction's ``h_n`` is its state after each sequence's *true* last step (a padded,
      unpacked batch would run on through the zeros), and the backward direction's ``h_n`` is
      its state after reading the whole sequence back to the first step. ``output[:, -1]``
      would be wrong for both directions: its backward half has seen only one step.

    Args:
        n_features: features per step (2 for points in the plane).
        hidden_dim: size of the hidden state, per direction.
        n_outputs: logits per sequence (1 for BCE, the number of classes for cross-entropy).
        output_activation: ``None`` for logits, or ``"sigmoid"`` to output probabilities
            (for ``BCELoss``); the activation is the model's last module.
        cell: ``"rnn"``, ``"gru"`` or ``"lstm"``.
        num_layers: stacked recurrent layers.
        bidirectional: run a second layer backwards over time and concatenate both.
        reference_logit: if true, the first of the ``n_outputs`` logits is pinned at 0 and the
            classifier learns the other ``n_outputs - 1``. With two outputs, softmax over
            ``[0, z]`` is ``sigmoid(z)``: cross-entropy then trains exactly the tutorial's model.

    Attributes:
        hidden: final hidden states ``(num_layers * directions, N, H)`` of the last forward pass.
        cell: for LSTMs, the final cell states of the last forward pass, same shape; else None.
        cell_type: ``"rnn"``, ``"gru"`` or ``"lstm"``.
    """

    def __init__(
        self,
        n_features: int,
        hidden_dim: int,
        n_outputs: int,
        output_activation: "str | None" = None,
        cell: str = "rnn",
        num_layers: int = 1,
        bidirectional: bool = False,
        reference_logit: bool = False,
    ):
        super().__init__()
        if cell not in CELLS:
            raise ModelError(f"cell must be one of {', '.join(CELLS)}, not {cell!r}")
        _check_sizes(n_features=n_features, hidden_dim=hidden_dim, n_outputs=n_outputs, num_layers=num_layers)
        self.n_features = n_features
        self.hidden_dim = hidden_dim
        self.n_outputs = n_outputs
        self.cell_type = cell
        self.num_layers = num_layers
        self.bidirectional = bool(bidirectional)
        self.n_directions = 2 if bidirectional else 1
        self.hidden = None  # final hidden states (layers * directions, N, H) of the last forward pass
        self.cell = None  # LSTM only: final cell states, same shape
        self.basic_rnn = CELLS[cell](
            n_features, hidden_dim, num_layers=num_layers, batch_first=True, bidirectional=bidirectional
        )
        if reference_logit and n_outputs < 2:
            raise ModelError("reference_logit needs n_outputs >= 2")
        self.reference_logit = bool(reference_logit)
        n_learned = n_outputs - 1 if reference_logit else n_outputs
        self.classifier = nn.Linear(hidden_dim * self.n_directions, n_learned)
        self.output_activation = _make_activation(output_activation)

    def forward(self, x: Batch, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Logits ``(N, n_outputs)`` for a padded ``(N, L, F)`` batch (with optional ``lengths``,
        the real steps of each sequence) or a ``PackedSequence``."""
        packed = isinstance(x, PackedSequence)
        if not isinstance(x, PackedSequence):
            _check_padded(x, self.n_features)
            if lengths is not None:
                x, packed = pack_padded(x, lengths), True
        output, hidden = self.basic_rnn(x)
        if isinstance(hidden, tuple):  # LSTM: (h_n, c_n)
            hidden, self.cell = hidden
        self.hidden = hidden
        if packed or self.bidirectional:
            last = hidden[-self.n_directions:]  # the last layer's directions: (D, N, H)
            features = last.transpose(0, 1).reshape(last.shape[1], -1)  # (N, D * H)
        else:
            features = output[:, -1]  # the last step's output: (N, H)
        logits = self.classifier(features)
        if self.reference_logit:
            logits = torch.cat([logits.new_zeros(len(logits), 1), logits], dim=1)
        if self.output_activation is not None:
            return self.output_activation(logits)
        return logits.view(-1, self.n_outputs)

    def config(self) -> dict:
        """The constructor's arguments, enough to rebuild the model: ``build_model(**config)``."""
        return _description(self, "SquareModel", n_features=self.n_features, hidden_dim=self.hidden_dim,
                            n_outputs=self.n_outputs, cell=self.cell_type, num_layers=self.num_layers,
                            bidirectional=self.bidirectional, reference_logit=self.reference_logit)


class SquareConv1d(nn.Module):
    """A 1-D convolution over time, ReLU, flatten and a linear classifier.

    Takes the same batch-first ``(N, L, F)`` batches as :class:`SquareModel` and transposes them
    to the ``(N, F, L)`` layout ``nn.Conv1d`` expects. Each of its ``channels`` filters spans
    ``kernel_size`` consecutive points (by default two: one edge of the square), so a trained
    filter is a detector for one directed edge.

    Shorter sequences (``lengths`` or a ``PackedSequence``) are zero-padded to ``seq_len`` and the
    filter responses whose window reaches past a sequence's end are set to zero, so padding never
    looks like a point at the origin.

    Args:
        n_features: features per step.
        seq_len: the (maximum) number of steps; the classifier has one input per window.
        n_outputs: logits per sequence.
        channels: number of filters.
        kernel_size: steps per filter.
        output_activation: ``None`` or ``"sigmoid"``, as for :class:`SquareModel`.
    """

    def __init__(
        self,
        n_features: int = 2,
        seq_len: int = 4,
        n_outputs: int = 1,
        channels: int = 1,
        kernel_size: int = 2,
        output_activation: "str | None" = None,
    ):
        super().__init__()
        _check_sizes(n_features=n_features, seq_len=seq_len, n_outputs=n_outputs, channels=channels,
                     kernel_size=kernel_size)
        if kernel_size > seq_len:
            raise ModelError(f"kernel_size ({kernel_size}) must not exceed seq_len ({seq_len})")
        self.n_features = n_features
        self.seq_len = seq_len
        self.n_outputs = n_outputs
        self.channels = channels
        self.kernel_size = kernel_size
        self.n_windows = seq_len - kernel_size + 1
        self.conv1d = nn.Conv1d(n_features, channels, kernel_size=kernel_size)
        self.relu = nn.ReLU()
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(channels * self.n_windows, n_outputs)
        self.output_activation = _make_activation(output_activation)

    def filter_responses(self, x: Batch, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The ReLU'd filter responses ``(N, channels, n_windows)``, masked past each end."""
        if isinstance(x, PackedSequence):
            x, lengths = pad_packed_sequence(x, batch_first=True)
        _check_padded(x, self.n_features)
        if x.shape[1] > self.seq_len:
            raise ModelError(f"this model reads at most seq_len={self.seq_len} steps, got {x.shape[1]}")
        if x.shape[1] < self.seq_len:
            if lengths is None:
                lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.int64)
            x = nn.functional.pad(x, (0, 0, 0, self.seq_len - x.shape[1]))
        features = self.relu(self.conv1d(x.transpose(1, 2)))  # (N, C, W)
        if lengths is not None:
            lengths = torch.as_tensor(lengths, device=x.device).view(-1, 1, 1)
            window_end = torch.arange(self.n_windows, device=x.device) + self.kernel_size
            features = features * (window_end <= lengths).to(features.dtype)
        return features

    def forward(self, x: Batch, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Logits ``(N, n_outputs)``, like :meth:`SquareModel.forward`."""
        logits = self.classifier(self.flatten(self.filter_responses(x, lengths)))
        if self.output_activation is not None:
            return self.output_activation(logits)
        return logits

    def config(self) -> dict:
        """The constructor's arguments, enough to rebuild the model: ``build_model(**config)``."""
        return _description(self, "SquareConv1d", n_features=self.n_features, seq_len=self.seq_len,
                            n_outputs=self.n_outputs, channels=self.channels, kernel_size=self.kernel_size)


def _check_sizes(**sizes: object) -> None:
    """Raises :class:`~squareseq.errors.ModelError` for the first size that is not a positive int."""
    for name, value in sizes.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ModelError(f"{name} must be a positive integer, got {value!r}")


def _description(model: nn.Module, name: str, **sizes: object) -> dict:
    """What :func:`build_model` needs to rebuild ``model``: the model's ``name`` (its
    class's, also for subclasses), ``sizes`` and its output activation."""
    activation = "sigmoid" if getattr(model, "output_activation", None) is not None else None
    return {"name": name, **sizes, "output_activation": activation}


def parameter_shapes(name: str, n_features: int = 2, hidden_dim: int = 2, n_outputs: int = 1, num_layers: int = 1,
                     bidirectional: bool = False, output_activation: "str | None" = None, cell: Optional[str] = None,
                     reference_logit: bool = False, seq_len: int = 4, channels: int = 1,
                     kernel_size: int = 2) -> Dict[str, Tuple[int, ...]]:
    """The ``state_dict`` shapes of the model :func:`build_model` would build from these arguments,
    in its order, computed without building it (so a checkpoint's tensors can be checked against
    its description before anything is allocated). Refuses what :func:`build_model` refuses."""
    check_parameter_count(name, dict(n_features=n_features, hidden_dim=hidden_dim, n_outputs=n_outputs,
                                     num_layers=num_layers, bidirectional=bidirectional, cell=cell,
                                     seq_len=seq_len, channels=channels, kernel_size=kernel_size))
    _make_activation(output_activation)
    if name in ("conv1d", "SquareConv1d"):
        _check_sizes(n_features=n_features, seq_len=seq_len, n_outputs=n_outputs, channels=channels,
                     kernel_size=kernel_size)
        if kernel_size > seq_len:
            raise ModelError(f"kernel_size ({kernel_size}) must not exceed seq_len ({seq_len})")
        return {"conv1d.weight": (channels, n_features, kernel_size), "conv1d.bias": (channels,),
                "classifier.weight": (n_outputs, channels * (seq_len - kernel_size + 1)),
                "classifier.bias": (n_outputs,)}
    cell = cell or (name if name in CELLS else "rnn")
    if cell not in CELLS or name not in (*CELLS, "SquareModel") or (name in CELLS and cell != name):
        raise ModelError(f"unknown model {name!r} (cell {cell!r}); choose one of: {', '.join(MODELS)}")
    _check_sizes(n_features=n_features, hidden_dim=hidden_dim, n_outputs=n_outputs, num_layers=num_layers)
    gates, directions = CELL_GATES[cell] * hidden_dim, 2 if bidirectional else 1
    n_learned = n_outputs - 1 if reference_logit else n_outputs
    shapes: Dict[str, Tuple[int, ...]] = {}
    for layer in range(num_layers):
        inputs = n_features if layer == 0 else hidden_dim * directions
        for suffix in ("", "_reverse")[:directions]:
            shapes[f"basic_rnn.weight_ih_l{layer}{suffix}"] = (gates, inputs)
            shapes[f"basic_rnn.weight_hh_l{layer}{suffix}"] = (gates, hidden_dim)
            shapes[f"basic_rnn.bias_ih_l{layer}{suffix}"] = (gates,)
            shapes[f"basic_rnn.bias_hh_l{layer}{suffix}"] = (gates,)
    shapes["classifier.weight"] = (n_learned, hidden_dim * directions)
    shapes["classifier.bias"] = (n_learned,)
    return shapes


def build_model(
    name: str,
    n_features: int = 2,
    hidden_dim: int = 2,
    n_outputs: int = 1,
    num_layers: int = 1,
    bidirectional: bool = False,
    output_activation: "str | None" = None,
    cell: Optional[str] = None,
    reference_logit: bool = False,
    seq_len: int = 4,
    channels: int = 1,
    kernel_size: int = 2,
) -> nn.Module:
    """Builds a model by name; ``build_model(**model.config())`` rebuilds a saved one.

    Args:
        name: ``"rnn"``, ``"gru"``, ``"lstm"``, ``"conv1d"``, or a class name a ``config()``
            recorded (``"SquareModel"`` with ``cell``, ``"SquareConv1d"``).
        n_features, hidden_dim, n_outputs, num_layers, bidirectional, output_activation, cell,
        reference_logit: as for :class:`SquareModel` (``hidden_dim`` is unused by the convolution).
        seq_len, channels, kernel_size: as for :class:`SquareConv1d`.

    Create it right after ``torch.manual_seed(seed)`` for reproducible weights. A description of
    more than :data:`MAX_PARAMETERS` parameters is refused before anything is allocated.
    """
    check_parameter_count(name, dict(n_features=n_features, hidden_dim=hidden_dim, n_outputs=n_outputs,
                                      num_layers=num_layers, bidirectional=bidirectional, cell=cell,
                                      seq_len=seq_len, channels=channels, kernel_size=kernel_size))
    if name in ("conv1d", "SquareConv1d"):
        if num_layers != 1 or bidirectional or reference_logit:
            raise ModelError("num_layers, bidirectional and reference_logit apply to recurrent models only, "
                             "not conv1d")
        return SquareConv1d(n_features, seq_len, n_outputs, channels, kernel_size, output_activation)
    if name in CELLS:
        if cell is not None and cell != name:
            raise ModelError(f"model {name!r} conflicts with cell {cell!r}")
        cell = name
    elif name != "SquareModel":
        raise ModelError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    return SquareModel(n_features, hidden_dim, n_outputs, output_activation, cell or "rnn",
                       num_layers, bidirectional, reference_logit)


def outputs_probabilities(model: nn.Module) -> bool:
    """Whether ``model`` outputs probabilities: its last registered module is a sigmoid (as in
    ``nn.Sequential(..., nn.Sigmoid())`` or ``SquareModel(..., output_activation="sigmoid")``)."""
    last = None
    for module in model.modules():
        last = module
    return isinstance(last, nn.Sigmoid)
