"""Trained models back from run folders and checkpoints, and what they predict."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Tuple, Union

import torch
from torch import nn

from squareseq.config import MAX_HIDDEN, RunConfig
from squareseq.models.networks import build_model, outputs_probabilities, parameter_shapes
from squareseq.runs.folder import resolve_checkpoint
from squareseq.training.checkpoint import CheckpointError, check_fits, check_shapes, load

__all__ = ["model_from_checkpoint", "load_trained", "stored_config", "class_probabilities"]

# model_config entries that size the model: bounded so a stranger's file cannot allocate huge models
_SIZES = ("n_features", "hidden_dim", "n_outputs", "num_layers", "seq_len", "channels", "kernel_size", "dilation")


def model_from_checkpoint(data: Dict[str, Any], where: str = "checkpoint") -> nn.Module:
    """Rebuilds the model a squareseq checkpoint describes (``model_config``) and loads its
    weights; one-line :class:`CheckpointError` for anything that does not fit. The description is
    bounded and the stored tensors' names and shapes are checked against it before the model is
    built, so a file whose tensors do not match allocates nothing."""
    config = data.get("model_config")
    if not isinstance(config, dict) or not isinstance(config.get("name"), str):
        raise CheckpointError(f"{where} does not say which model it holds (no model_config): "
                              "was it written by squareseq train?")
    kwargs = dict(config)
    for key in _SIZES:
        value = kwargs.get(key)
        if key in kwargs and (not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_HIDDEN):
            raise CheckpointError(f"{where}: model_config {key} must be an integer in [1, {MAX_HIDDEN}], "
                                  f"got {value!r}")
    for key in ("bidirectional", "reference_logit"):
        if key in kwargs and not isinstance(kwargs[key], bool):
            raise CheckpointError(f"{where}: model_config {key} must be true or false, got {kwargs[key]!r}")
    try:
        shapes = parameter_shapes(**kwargs)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{where} has an unusable model_config ({' '.join(str(exc).split())})") from None
    check_shapes(shapes, data["model_state_dict"], where)
    model = build_model(**kwargs)
    check_fits(model, data["model_state_dict"], where)
    model.load_state_dict(data["model_state_dict"])
    model.eval()
    return model


def stored_config(data: Dict[str, Any], where: str, required: bool = False) -> RunConfig:
    """The run configuration a checkpoint stores (``run_config``), validated: the one way a run's
    configuration is read back (resume, evaluate, predict, redraw). A checkpoint without one (the
    tutorial's own) gives the defaults, or an error if ``required``."""
    stored = data.get("run_config")
    if stored is None and not required:
        return RunConfig()
    if not isinstance(stored, dict):
        raise CheckpointError(f"{where} holds no run_config: it was not written by squareseq train")
    config = RunConfig.from_dict(stored, where=where)
    _check_same_model(data.get("model_config"), config, where)
    return config


def _check_same_model(model_config: Any, config: RunConfig, where: str) -> None:
    """The model a checkpoint describes (``model_config``) must be the one its run configuration
    trains: a file that mixes two runs would otherwise be evaluated, or redrawn, as neither."""
    if not isinstance(model_config, dict):
        return  # model_from_checkpoint says what is missing
    expected: Dict[str, Any]
    if config.model == "square-conv1d":
        expected = {"name": "SquareConv1d"}
    elif config.model == "conv1d":
        expected = {"name": "ConvClassifier", "hidden_dim": config.hidden_dim, "num_layers": config.num_layers,
                    "kernel_size": config.kernel_size, "dilation": config.dilation, "pooling": config.pooling}
    else:
        expected = {"name": "SquareModel", "cell": config.model, "hidden_dim": config.hidden_dim,
                    "num_layers": config.num_layers, "bidirectional": config.bidirectional}
    for key, value in expected.items():
        if model_config.get(key) != value or type(model_config.get(key)) is not type(value):
            raise CheckpointError(f"{where}: its model_config ({key} {model_config.get(key)!r}) and its run_config "
                                  f"({key} {value!r}) describe different models: the file was altered or mixes two "
                                  "runs; use the checkpoint the run wrote")


def load_trained(run: Union[str, Path]) -> Tuple[nn.Module, RunConfig]:
    """The trained model and configuration of a run folder or checkpoint file."""
    path = resolve_checkpoint(str(run))
    data = load(path)
    return model_from_checkpoint(data, str(path)), stored_config(data, str(path))


def class_probabilities(model: nn.Module, x) -> torch.Tensor:
    """``(N, C)`` class probabilities (``C >= 2``) of a model's outputs for input ``x`` (a tensor or
    a PackedSequence), whether it outputs one logit, a probability, or one logit per class."""
    model.eval()
    with torch.no_grad():
        outputs = model(x)
    if outputs.shape[1] > 1:
        return torch.softmax(outputs, dim=1)
    p1 = outputs[:, 0] if outputs_probabilities(model) else torch.sigmoid(outputs[:, 0])
    return torch.stack([1 - p1, p1], dim=1)
