"""An estimator's fit on squareseq's one training core: arrays in memory become a
:class:`~squareseq.runs.data.RunData` (the validation split and standardizer of a ``--data``
run), a :class:`~squareseq.config.RunConfig` the hyperparameters stand for, and a trainer from
:func:`~squareseq.runs.experiment.build_trainer`, trained by ``StepByStep.train``; a warm start
continues from the state the last fit kept, as ``--resume`` continues from a checkpoint.

Imports no scikit-learn: :mod:`squareseq.estimators.classifier` wraps this in its API.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch

from squareseq.config import RunConfig, RunOptions, check_activation_memory
from squareseq.data.files import validation_split
from squareseq.data.preprocessing import Preprocessing, Standardizer
from squareseq.errors import ConfigError, literal
from squareseq.runs.data import RunData, Split
from squareseq.runs.experiment import build_trainer, check_setup
from squareseq.training.callbacks import ProgressBar
from squareseq.training.choices import resolve_device
from squareseq.training.guard import RunGuard
from squareseq.training.rng import get_state, set_state

__all__ = ["ARRAYS", "Fitted", "Prepared", "cpu_copy", "forget_hidden", "kept_rng", "losses", "prepare", "run_config",
           "train"]

#: What a fitted estimator's stored run configuration names as its data (arrays, not a file).
ARRAYS = "<arrays given to fit>"


def run_config(params: Dict[str, Any], layout: str) -> RunConfig:
    """The run configuration an estimator's hyperparameters stand for (one ``seed`` seeds the
    model, the shuffles and the validation split), validated.

    Raises:
        ConfigError: a bad value, named by its parameter (``hidden_dim must be ...``).
    """
    seed = params["seed"]
    try:
        config = RunConfig(
            data=ARRAYS, layout=layout, model=params["model"], hidden_dim=params["hidden_dim"],
            num_layers=params["num_layers"], bidirectional=params["bidirectional"], lr=params["lr"],
            epochs=params["epochs"], batch_size=params["batch_size"], standardize=params["standardize"],
            val_fraction=params["val_fraction"], early_stopping=params["early_stopping"],
            weight_decay=params["weight_decay"], clip_grad=params["clip_grad"], scheduler=params["scheduler"],
            kernel_size=params["kernel_size"], dilation=params["dilation"], pooling=params["pooling"],
            loss=params["loss"], seed=seed, fit_seed=seed, split_seed=seed,
        ).validate()
    except ConfigError as exc:
        raise ConfigError(exc.template.replace(f"{{data}} {literal(ARRAYS)}", "fit's arrays"), exc.names) from None
    if config.scheduler == "plateau" and not config.has_validation_split:
        raise ConfigError("{scheduler} plateau lowers the rate when the validation loss stalls: give {val_fraction} "
                          "> 0 (fit has no test set to watch instead)", ("scheduler", "val_fraction"))
    return config


@dataclass
class Prepared:
    """Training data in memory as a run holds a file's: ``data`` (its test split is the training
    split: the estimator has none, and trains without one), the preprocessing predict repeats."""

    data: RunData
    preprocessing: Preprocessing


def _part(X: np.ndarray, y: np.ndarray, lengths: Optional[np.ndarray], index: np.ndarray) -> Split:
    lengths = None if lengths is None else lengths[index]
    if lengths is not None and (lengths == X.shape[1]).all():
        lengths = None
    return Split(torch.from_numpy(np.ascontiguousarray(X[index])), torch.from_numpy(y[index]),
                 None if lengths is None else torch.from_numpy(lengths))


def prepare(X: np.ndarray, lengths: Optional[np.ndarray], codes: np.ndarray, class_names: List[str],
            config: RunConfig, layout: str, standardizer: Optional[Standardizer] = None) -> Prepared:
    """``(N, L, F)`` float32 sequences and class indices as a run's data, as
    :func:`squareseq.data.files.load_data` splits and rescales a file's: a stratified validation
    split (``config.val_fraction``, seeded by ``config.split_seed``), then the training part's
    standardizer (``standardizer``: a warm start's, kept from the first fit)."""
    everything = np.arange(len(codes))
    train_index, val_index = everything, None
    if config.val_fraction > 0:
        train_index, val_index = validation_split(codes, config.val_fraction, config.split_seed, class_names, "fit")
    if config.standardize and standardizer is None:
        train_lengths = None if lengths is None else lengths[train_index]
        standardizer = Standardizer().fit(X[train_index], train_lengths)
    if standardizer is not None:
        X = standardizer.transform(X, lengths)
    train = _part(X, codes, lengths, train_index)
    val = None if val_index is None else _part(X, codes, lengths, val_index)
    stats = None if standardizer is None else standardizer.as_dict()
    preprocessing = Preprocessing(layout, int(X.shape[2]), list(class_names),
                                  None if stats is None else stats["mean"], None if stats is None else stats["std"])
    check_activation_memory(config.replace(n_train=len(train), n_test=1), seq_len=int(X.shape[1]),
                            n_features=int(X.shape[2]), from_file=True)
    data = RunData(train, train, len(class_names), list(class_names), generated=False,
                   summary={"source": ARRAYS, "n_train": len(train), "n_val": 0 if val is None else len(val)},
                   val=val, preprocessing=preprocessing.to_dict())
    return Prepared(data, preprocessing)


def cpu_copy(obj: Any) -> Any:
    """Nested dicts, lists and tuples with every tensor detached, cloned and on the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(cpu_copy(v) for v in obj)
    return obj


@contextlib.contextmanager
def kept_rng() -> Iterator[None]:
    """Puts torch's, numpy's and ``random``'s global generators back as they were: a fit seeds
    them (the tutorial's way), the caller's own draws stay undisturbed."""
    saved = get_state()
    try:
        yield
    finally:
        set_state(saved, where="the random state before fit")


@dataclass
class Fitted:
    """What a fit leaves: the model (CPU, eval mode, the best epoch's weights under early
    stopping), the training state a warm start continues from (a checkpoint's keys, CPU tensors,
    the best epoch's state under ``"best"``), and the best epoch (None without early stopping)."""

    model: torch.nn.Module
    state: Dict[str, Any]
    best_epoch: Optional[int]


def train(config: RunConfig, prepared: Prepared, threads: Any = "auto", device: str = "cpu",
          state: Optional[Dict[str, Any]] = None, verbose: bool = False) -> Fitted:
    """Trains ``config`` on ``prepared`` with the trainer :func:`build_trainer` builds, to
    ``config.epochs`` epochs in all: from scratch, or (``state``: what an earlier :class:`Fitted`
    kept) continuing it exactly as ``squareseq train --resume`` continues its checkpoint (model,
    optimizer, schedule, early stopping, random states), so 4 epochs and then 4 more are the 8
    epochs of one fit, bit for bit. A fit that stopped early stays stopped.

    Raises:
        ConfigError: an unavailable device, or ``state`` with more epochs than ``config.epochs``.
        NonFiniteLossError: the loss became NaN or infinite.
    """
    RunOptions(threads=threads, device=device, handle_signals=False).validate()  # the CLI's checks of both
    where = resolve_device(device)
    data = prepared.data
    trainer, data = build_trainer(config, data, threads=threads, device=where)
    check_setup(trainer, data)
    if data.val is None:
        trainer.set_loaders(trainer.train_loader, None)  # no validation split: nothing to validate on
    guard = RunGuard(trainer)  # keeps the last epoch's and the best epoch's states
    if state is not None:
        trainer.restore_state(state, where="the estimator's last fit")
        if trainer.total_epochs > config.epochs:
            raise ConfigError("the estimator has already trained %d epochs; with warm_start {epochs} is the total: "
                              "pass at least %d, or fit afresh (warm_start=False)"
                              % (trainer.total_epochs, trainer.total_epochs), ("epochs",))
        guard.best = state.get("best") if trainer.early_stopping is not None else None
    if verbose:
        trainer.add_callback(ProgressBar(disable=False, desc="fit"))
    trainer.add_callback(guard)
    stopping = trainer.early_stopping
    remaining = 0 if stopping is not None and stopping.stopped else config.epochs - trainer.total_epochs
    trainer.train(remaining, seed=None if state is not None else config.fit_seed)
    assert guard.last_good is not None  # set when training starts
    kept = cpu_copy(guard.last_good)
    if guard.best is not None:
        kept["best"] = cpu_copy({k: v for k, v in guard.best.items() if k != "best"})
    best_epoch = guard.restore_best()
    trainer.to("cpu")
    model = trainer.model
    model.eval()
    forget_hidden(model)
    return Fitted(model, kept, best_epoch)


def forget_hidden(model: torch.nn.Module) -> None:
    """Drops the hidden states the tutorial's model keeps from its last forward pass: a fitted
    estimator needs none, and its predictions then leave it as they found it."""
    if getattr(model, "hidden", None) is not None:
        model.hidden = None  # type: ignore[assignment]


def losses(state: Dict[str, Any]) -> Tuple[List[float], List[Optional[float]]]:
    """The training and validation losses per epoch a kept state records."""
    return list(state.get("loss", [])), list(state.get("val_loss", []))
