"""Trained models back from run folders and checkpoints, and what they predict."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from torch import nn

from squareseq.config import MAX_HIDDEN, RunConfig
from squareseq.data.preprocessing import Preprocessing
from squareseq.errors import DataError
from squareseq.models.networks import build_model, outputs_probabilities, parameter_shapes
from squareseq.runs.data import Split
from squareseq.runs.folder import METRICS, resolve_checkpoint
from squareseq.training.checkpoint import CheckpointError, check_fits, check_shapes, load

__all__ = ["model_from_checkpoint", "load_trained", "stored_config", "class_probabilities", "TrainedRun", "load_run",
           "stored_preprocessing", "run_class_names", "prepared_split"]

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


# -- a run's preprocessing: what evaluate and predict put between the user's arrays and the model --


@dataclass
class TrainedRun:
    """A trained model with everything needed to reproduce its answers.

    Attributes:
        preprocessing: the layout, standardizer and class names the run trained with; None for
            generated squares and runs written before it was stored (inputs go in as they are).
        class_names: the name of each class, in the model's output order.
    """

    model: nn.Module
    config: RunConfig
    preprocessing: Optional[Preprocessing]
    class_names: List[str]
    path: Path

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def n_features(self) -> Optional[int]:
        """Features per step the model reads (None if the model does not say)."""
        return getattr(self.model, "n_features", None)

    @property
    def layout(self) -> str:
        """The layout the run's arrays came in (``NLF`` for generated squares and older runs)."""
        return self.preprocessing.layout if self.preprocessing is not None else "NLF"


def stored_preprocessing(saved: Dict[str, Any], config: RunConfig, where: str) -> Optional[Preprocessing]:
    """The preprocessing a checkpoint stores, validated; None where inputs go in as they are. A
    ``--data`` run that standardized its inputs but predates stored preprocessing is refused: its
    statistics are lost, and raw inputs would give wrong answers without a word."""
    stored = saved.get("preprocessing")
    if stored is not None:
        return Preprocessing.from_dict(stored, where)
    if config.data is not None and config.standardize:
        raise DataError(f"{where} predates stored preprocessing: its run standardized its inputs but did not keep "
                        "the statistics, so its predictions would be wrong; retrain it (squareseq train --data ...)")
    return None


def run_class_names(path: Path, config: RunConfig, n_classes: int) -> List[str]:
    """Class names of a run without stored preprocessing: ``class_names`` in the ``metrics.json``
    beside its checkpoint, else the task's for generated data, else ``class k``. Only labels: a
    missing or unusable ``metrics.json`` falls back quietly."""
    from squareseq.data.squares import class_names

    try:
        names = json.loads((path.parent / METRICS).read_text()).get("class_names")
    except (OSError, ValueError, AttributeError):
        names = None
    if (isinstance(names, list) and len(names) == n_classes and all(isinstance(n, str) for n in names)
            and len(set(names)) == n_classes):
        return names
    if config.data is None and len(class_names(config.task)) == n_classes:
        return class_names(config.task)
    return [f"class {k}" for k in range(n_classes)]


def load_run(run: Union[str, Path]) -> TrainedRun:
    """The trained model of a run folder or checkpoint file with its preprocessing and class names."""
    path = resolve_checkpoint(str(run))
    saved = load(path)
    where = str(path)
    model = model_from_checkpoint(saved, where)
    config = stored_config(saved, where)
    preprocessing = stored_preprocessing(saved, config, where)
    n_classes = max(int(getattr(model, "n_outputs", 2)), 2)
    if preprocessing is None:
        return TrainedRun(model, config, None, run_class_names(path, config, n_classes), path)
    n_features = getattr(model, "n_features", preprocessing.n_features)
    if preprocessing.n_features != n_features or len(preprocessing.class_names) != n_classes:
        raise CheckpointError(f"{where}: its preprocessing ({preprocessing.n_features} features, "
                              f"{len(preprocessing.class_names)} classes) does not fit its model ({n_features} "
                              f"features, {n_classes} classes): the file was altered or mixes two runs")
    return TrainedRun(model, config, preprocessing, list(preprocessing.class_names), path)


def prepared_split(run: TrainedRun, x: np.ndarray, lengths: Optional[np.ndarray] = None,
                   y: Optional[torch.Tensor] = None, name: str = "input", layout: str = "NLF") -> Split:
    """Sequences ``x`` ``(N, L, F)`` (``(N, C, L)`` with ``layout="NCL"``), padded at the end with
    zeros and cut by ``lengths`` or padded with NaN, as the run's model reads them: through the
    run's stored preprocessing (the code training ran: its standardizer, mask-aware), float32,
    zero-padded, with lengths only where some sequence is shorter than ``L``, as
    :func:`squareseq.runs.data.build_data` gives its splits. The one path evaluate and predict
    share; ``name`` starts its errors."""
    from squareseq.data.layout import model_array

    prep = run.preprocessing
    if prep is not None:
        x, lengths = prep.prepare(x, lengths, layout=layout, name=name)
    else:  # generated squares and older runs: the values as they are, NaN padding made lengths
        x, lengths = model_array(name, "X", np.asarray(x), layout, lengths)
    labels = torch.zeros(len(x), dtype=torch.int64) if y is None else y
    return Split(torch.from_numpy(x), labels,
                 None if lengths is None else torch.as_tensor(np.asarray(lengths), dtype=torch.int64))
