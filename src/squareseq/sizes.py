"""Sizes computed from a description alone, before anything is allocated: how many parameters a
model would have (:func:`parameter_count`) and how much memory a run's largest forward pass
would hold (:func:`activation_bytes`), with the bounds squareseq keeps them under
(:data:`MAX_PARAMETERS`, :data:`MAX_ACTIVATION_BYTES`), so that a typo or a stranger's file
cannot ask for gigabytes. Plain arithmetic: imports no torch, only :mod:`squareseq.errors`
(and :mod:`squareseq.config` for type annotations).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Optional

from squareseq.errors import ConfigError

if TYPE_CHECKING:
    from squareseq.config import RunConfig

__all__ = ["MAX_PARAMETERS", "MAX_ACTIVATION_BYTES", "CELL_GATES", "GENERATED_STEPS", "GENERATED_FEATURES",
           "SQUARE_CONV_NAMES", "CONV_NAMES", "SQUARE_CONV_KERNEL", "CONV_KERNEL", "default_kernel_size",
           "effective_dilation", "conv_values", "parameter_count", "check_parameter_count", "activation_bytes",
           "check_activation_memory"]

#: The most parameters a model may have (:func:`check_parameter_count`): 200 MB of float32 weights,
#: under 1 GB to train with Adam.
MAX_PARAMETERS = 50_000_000
#: The most memory a run's largest forward pass may need for its activations, as
#: :func:`activation_bytes` estimates it from the configuration alone (4 GiB).
MAX_ACTIVATION_BYTES = 4 * 2**30
#: Gate blocks per step of each recurrent cell (an RNN computes one, a GRU three, an LSTM four).
CELL_GATES = {"rnn": 1, "gru": 3, "lstm": 4}
#: Steps of a generated square (its four corners) and features per step (x, y).
GENERATED_STEPS, GENERATED_FEATURES = 4, 2


#: Model names (a CLI choice or a ``config()`` class name) of the book's one-filter convolution and
#: of the stacked convolutional classifier.
SQUARE_CONV_NAMES, CONV_NAMES = ("square-conv1d", "SquareConv1d"), ("conv1d", "ConvClassifier")
#: The book's convolution: one filter spanning two steps (one edge of the square).
SQUARE_CONV_KERNEL = 2
#: ``kernel_size`` of the stacked convolutional classifier when none is given.
CONV_KERNEL = 5


def default_kernel_size(name: str) -> int:
    """The kernel size model ``name`` has when none is given: the book's 2, or 5 for ``conv1d``."""
    return CONV_KERNEL if name in CONV_NAMES else SQUARE_CONV_KERNEL


def effective_dilation(dilation: int, layer: int, length: int) -> int:
    """The dilation layer ``layer`` of the convolutional classifier uses on ``length`` steps:
    ``dilation ** layer``, capped at ``2 * length + 1``. Past the cap every tap but a centre one
    reads only the zero padding, at any dilation, so the cap changes no output while it keeps the
    padding (``dilation * (kernel_size - 1)`` steps) bounded by the sequence length."""
    return min(dilation ** layer, 2 * length + 1)


def parameter_count(name: str, n_features: int = 2, hidden_dim: int = 2, n_outputs: int = 1, num_layers: int = 1,
                    bidirectional: bool = False, cell: Optional[str] = None, seq_len: int = 4, channels: int = 1,
                    kernel_size: Optional[int] = None) -> int:
    """How many parameters ``build_model`` (:mod:`squareseq.models.networks`) would create for this
    description (exact for the recurrent and convolutional classifiers without a reference logit,
    which has one fewer classifier row; an upper bound for the book's convolution), computed
    without building it. ``square-conv1d`` is the book's model: one filter of kernel 2, whatever
    ``channels`` and ``kernel_size`` say (``SquareConv1d`` reads them)."""
    if name in CONV_NAMES:
        kernel = kernel_size or CONV_KERNEL
        total = 0
        for layer in range(num_layers):
            inputs = n_features if layer == 0 else hidden_dim
            total += hidden_dim * (inputs * kernel + 1) + 2 * hidden_dim  # a convolution, its normalisation
        return total + hidden_dim * n_outputs + n_outputs
    if name in SQUARE_CONV_NAMES:
        if name == "square-conv1d":
            channels, kernel_size = 1, SQUARE_CONV_KERNEL
        kernel = kernel_size or SQUARE_CONV_KERNEL
        windows = max(seq_len - kernel + 1, 1)
        return channels * n_features * kernel + channels + channels * windows * n_outputs + n_outputs
    gates = CELL_GATES.get(cell or name, 1)
    directions = 2 if bidirectional else 1
    total = 0
    for layer in range(num_layers):
        inputs = n_features if layer == 0 else hidden_dim * directions
        total += directions * gates * hidden_dim * (inputs + hidden_dim + 2)
    return total + hidden_dim * directions * n_outputs + n_outputs


def check_parameter_count(name: str, sizes: Mapping[str, Any]) -> None:
    """Raises :class:`~squareseq.errors.ConfigError` naming :data:`MAX_PARAMETERS` when the model
    ``name`` of these ``sizes`` (``parameter_count``'s arguments) would have more parameters."""
    numbers = [v for k, v in sizes.items()
               if k not in ("cell", "bidirectional") and not (k == "kernel_size" and v is None)]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in numbers):
        return  # the constructors name the bad value
    count = parameter_count(name, **sizes)
    if count > MAX_PARAMETERS:
        raise ConfigError(f"this model would have {count:,} parameters ({count * 16 / 1e9:.1f} GB to train); "
                          f"squareseq builds at most {MAX_PARAMETERS:,}: choose a smaller {{hidden_dim}}, "
                          "{num_layers} or number of channels", ("hidden_dim", "num_layers"))


def activation_bytes(config: "RunConfig", models: int = 1, seq_len: int = GENERATED_STEPS,
                     n_features: int = GENERATED_FEATURES) -> int:
    """A rough but safe upper estimate, from the configuration alone, of the bytes of activations
    the largest forward pass of ``models`` models of ``config`` holds: the whole test set at once
    (evaluation and figures) or a training batch, each step's input and, in every layer and
    direction, its gate pre-activations and output (float32), kept for the backward pass and
    counted twice for the gradients. Never allocates anything."""
    rows = max(min(config.batch_size, config.n_train), config.n_test)
    if config.model == "conv1d":
        return 2 * 4 * models * rows * conv_values(config, seq_len, n_features)
    if config.model == "square-conv1d":
        per_step = 2  # one filter (its response and the ReLU's), over at most seq_len windows
    else:
        directions = 2 if config.bidirectional else 1
        per_step = config.num_layers * directions * config.hidden_dim * (CELL_GATES.get(config.model, 4) + 1)
    return 2 * 4 * models * rows * seq_len * (n_features + per_step)


def conv_values(config: "RunConfig", seq_len: int, n_features: int) -> int:
    """Values one sequence of ``seq_len`` steps holds in the convolutional classifier's forward pass:
    its (masked) input and, in every layer, the zero-padded input (``effective_dilation * (kernel -
    1)`` steps longer), the convolution's output, the normalised one, the ReLU's and the masked one."""
    total = seq_len * n_features
    for layer in range(config.num_layers):
        inputs = n_features if layer == 0 else config.hidden_dim
        padding = effective_dilation(config.dilation, layer, seq_len) * (config.kernel_size - 1)
        total += inputs * (seq_len + padding) + 4 * config.hidden_dim * seq_len
    return total


def check_activation_memory(config: "RunConfig", models: int = 1, seq_len: int = GENERATED_STEPS,
                            n_features: int = GENERATED_FEATURES, from_file: bool = False) -> None:
    """Raises :class:`~squareseq.errors.ConfigError` naming :data:`MAX_ACTIVATION_BYTES` when
    :func:`activation_bytes` passes it; ``from_file``: the sizes are a data file's, so the advice
    is about the file and the split rather than ``n_test``."""
    needed = activation_bytes(config, models, seq_len, n_features)
    if needed > MAX_ACTIVATION_BYTES:
        rows = max(min(config.batch_size, config.n_train), config.n_test)
        who = f"{models:,} models on " if models > 1 else ""
        raise ConfigError(f"this run's largest forward pass ({who}{rows:,} sequences of {seq_len} steps at once) "
                          f"would hold about {needed / 1e9:.1f} GB of activations; squareseq allows at most "
                          f"{MAX_ACTIVATION_BYTES / 1e9:.1f} GB (MAX_ACTIVATION_BYTES): " + (
                              "choose a smaller {test_fraction}, {batch_size}, {hidden_dim} or {num_layers}, or "
                              "use fewer or shorter sequences" if from_file else
                              "choose a smaller {n_test}, {batch_size}, {hidden_dim} or {num_layers}")
                          + (", or give fewer seeds" if models > 1 else ""),
                          ("test_fraction" if from_file else "n_test", "batch_size", "hidden_dim", "num_layers"))
