"""Models that classify ``(N, L, F)`` batches of sequences.

* :class:`SquareModel`: the tutorial's recurrent classifier, with an ``nn.RNN`` (the default,
  bit for bit the tutorial's model), ``nn.GRU`` or ``nn.LSTM``, several layers, one or two
  directions.
* :class:`SquareConv1d`: the book's 1-D convolution over time (``square-conv1d``), ReLU,
  flatten, linear classifier: tied to the sequence length.
* :class:`~squareseq.models.conv.ConvClassifier` (``conv1d``): stacked dilated convolutions with
  global pooling over each sequence's real steps, for sequences of any length.
* :func:`build_model`: builds any of them from a name, and rebuilds a saved model from its
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
from squareseq.models.conv import ConvClassifier, check_conv_arguments, conv_parameter_shapes
from squareseq.models.parts import check_padded, check_sizes, description, make_activation
from squareseq.sizes import CELL_GATES, CONV_NAMES, SQUARE_CONV_KERNEL, SQUARE_CONV_NAMES, default_kernel_size

__all__ = ["CELLS", "MODELS", "MAX_PARAMETERS", "SquareModel", "SquareConv1d", "ConvClassifier", "build_model",
           "parameter_count", "parameter_shapes", "outputs_probabilities"]

#: Recurrent layers :class:`SquareModel` can use.
CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
#: Names :func:`build_model` accepts (besides the class names a ``config()`` records).
MODELS = ("rnn", "gru", "lstm", "conv1d", "square-conv1d")

Batch = Union[torch.Tensor, PackedSequence]


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
        check_sizes(n_features=n_features, hidden_dim=hidden_dim, n_outputs=n_outputs, num_layers=num_layers)
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
        self.output_activation = make_activation(output_activation)

    def forward(self, x: Batch, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Logits ``(N, n_outputs)`` for a padded ``(N, L, F)`` batch (with optional ``lengths``,
        the real steps of each sequence) or a ``PackedSequence``."""
        packed = isinstance(x, PackedSequence)
        if not isinstance(x, PackedSequence):
            check_padded(x, self.n_features)
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
        return description(self, "SquareModel", n_features=self.n_features, hidden_dim=self.hidden_dim,
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
        check_sizes(n_features=n_features, seq_len=seq_len, n_outputs=n_outputs, channels=channels,
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
        self.output_activation = make_activation(output_activation)

    def filter_responses(self, x: Batch, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The ReLU'd filter responses ``(N, channels, n_windows)``, masked past each end."""
        if isinstance(x, PackedSequence):
            x, lengths = pad_packed_sequence(x, batch_first=True)
        check_padded(x, self.n_features)
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
        return description(self, "SquareConv1d", n_features=self.n_features, seq_len=self.seq_len,
                            n_outputs=self.n_outputs, channels=self.channels, kernel_size=self.kernel_size)


def _square_conv_sizes(name: str, channels: int, kernel_size: Optional[int]) -> Tuple[int, Optional[int]]:
    """``square-conv1d`` is the book's model (one filter of kernel 2) whatever ``channels`` and
    ``kernel_size`` say (the run options ``--hidden-dim`` and ``--kernel-size`` are ``conv1d``'s);
    ``SquareConv1d`` (a stored ``config()``) reads them."""
    if name == "square-conv1d":
        return 1, SQUARE_CONV_KERNEL
    return channels, kernel_size


def _refuse_recurrent_options(name: str, num_layers: int, bidirectional: bool, reference_logit: bool) -> None:
    if name in CONV_NAMES and bidirectional:
        raise ModelError(f"bidirectional applies to recurrent models only, not {name}")
    if name in SQUARE_CONV_NAMES and (num_layers != 1 or bidirectional or reference_logit):
        raise ModelError("num_layers, bidirectional and reference_logit apply to recurrent models only, "
                         f"not {name} (the book's one-layer convolution; conv1d stacks layers)")


def _counted_sizes(name: str, n_features: int, hidden_dim: int, n_outputs: int, num_layers: int,
                   bidirectional: bool, cell: Optional[str], seq_len: int, channels: int,
                   kernel_size: Optional[int]) -> Tuple[int, int]:
    """The ``(channels, kernel_size)`` a model description resolves to (the book's convolution has
    its own; ``kernel_size`` None is the model's default), refused above :data:`MAX_PARAMETERS`
    before anything is built: the one start of :func:`parameter_shapes` and :func:`build_model`."""
    if name in SQUARE_CONV_NAMES:
        channels, kernel_size = _square_conv_sizes(name, channels, kernel_size)
    kernel_size = default_kernel_size(name) if kernel_size is None else kernel_size
    check_parameter_count(name, dict(n_features=n_features, hidden_dim=hidden_dim, n_outputs=n_outputs,
                                     num_layers=num_layers, bidirectional=bidirectional, cell=cell,
                                     seq_len=seq_len, channels=channels, kernel_size=kernel_size))
    return channels, kernel_size


def parameter_shapes(name: str, n_features: int = 2, hidden_dim: int = 2, n_outputs: int = 1, num_layers: int = 1,
                     bidirectional: bool = False, output_activation: "str | None" = None, cell: Optional[str] = None,
                     reference_logit: bool = False, seq_len: int = 4, channels: int = 1,
                     kernel_size: Optional[int] = None, dilation: int = 2,
                     pooling: str = "avg") -> Dict[str, Tuple[int, ...]]:
    """The ``state_dict`` shapes of the model :func:`build_model` would build from these arguments,
    in its order, computed without building it (so a checkpoint's tensors can be checked against
    its description before anything is allocated). Refuses what :func:`build_model` refuses."""
    channels, kernel_size = _counted_sizes(name, n_features, hidden_dim, n_outputs, num_layers, bidirectional, cell,
                                           seq_len, channels, kernel_size)
    make_activation(output_activation)
    _refuse_recurrent_options(name, num_layers, bidirectional, reference_logit)
    if name in CONV_NAMES:
        check_conv_arguments(n_features, hidden_dim, n_outputs, num_layers, kernel_size, dilation, pooling,
                             reference_logit)
        return conv_parameter_shapes(n_features, hidden_dim, n_outputs, num_layers, kernel_size, reference_logit)
    if name in SQUARE_CONV_NAMES:
        check_sizes(n_features=n_features, seq_len=seq_len, n_outputs=n_outputs, channels=channels,
                    kernel_size=kernel_size)
        if kernel_size > seq_len:
            raise ModelError(f"kernel_size ({kernel_size}) must not exceed seq_len ({seq_len})")
        return {"conv1d.weight": (channels, n_features, kernel_size), "conv1d.bias": (channels,),
                "classifier.weight": (n_outputs, channels * (seq_len - kernel_size + 1)),
                "classifier.bias": (n_outputs,)}
    cell = cell or (name if name in CELLS else "rnn")
    if cell not in CELLS or name not in (*CELLS, "SquareModel") or (name in CELLS and cell != name):
        raise ModelError(f"unknown model {name!r} (cell {cell!r}); choose one of: {', '.join(MODELS)}")
    check_sizes(n_features=n_features, hidden_dim=hidden_dim, n_outputs=n_outputs, num_layers=num_layers)
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
    kernel_size: Optional[int] = None,
    dilation: int = 2,
    pooling: str = "avg",
) -> nn.Module:
    """Builds a model by name; ``build_model(**model.config())`` rebuilds a saved one.

    Args:
        name: ``"rnn"``, ``"gru"``, ``"lstm"``, ``"conv1d"`` (a :class:`ConvClassifier`),
            ``"square-conv1d"`` (the book's :class:`SquareConv1d`: one filter of kernel 2), or a
            class name a ``config()`` recorded (``"SquareModel"`` with ``cell``,
            ``"SquareConv1d"``, ``"ConvClassifier"``).
        n_features: as for :class:`SquareModel`.
        hidden_dim: as for :class:`SquareModel`; the channels of ``conv1d`` (the book's
            convolution ignores it).
        n_outputs: as for :class:`SquareModel`.
        num_layers: as for :class:`SquareModel`; the layers of ``conv1d`` (the book's
            convolution ignores it).
        bidirectional: as for :class:`SquareModel`.
        output_activation: as for :class:`SquareModel`.
        cell: as for :class:`SquareModel`.
        reference_logit: as for :class:`SquareModel`.
        seq_len: as for :class:`SquareConv1d` (``conv1d`` reads any length).
        channels: as for :class:`SquareConv1d`.
        kernel_size: taps per filter: ``conv1d``'s (default 5) or ``SquareConv1d``'s (default 2).
        dilation: as for :class:`ConvClassifier`.
        pooling: as for :class:`ConvClassifier`.

    Create it right after ``torch.manual_seed(seed)`` for reproducible weights. A description of
    more than :data:`MAX_PARAMETERS` parameters is refused before anything is allocated.
    """
    channels, kernel_size = _counted_sizes(name, n_features, hidden_dim, n_outputs, num_layers, bidirectional, cell,
                                           seq_len, channels, kernel_size)
    _refuse_recurrent_options(name, num_layers, bidirectional, reference_logit)
    if name in CONV_NAMES:
        return ConvClassifier(n_features, hidden_dim, n_outputs, num_layers, kernel_size, dilation, pooling,
                              output_activation, reference_logit)
    if name in SQUARE_CONV_NAMES:
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
