"""A run's configuration: every knob of ``squareseq train``, with the tutorial's defaults.

Imports no torch: the CLI parses and validates options with it before loading torch, so bad
options exit at once.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Dict, Optional

from .errors import SquareseqError
from .loss_names import LOSS_NAMES

__all__ = ["RunConfig", "MAX_SEQUENCES", "MAX_HIDDEN", "MODEL_CHOICES", "TASK_CHOICES"]

# Bounds that keep a typo (--n-train 1e9) from exhausting memory before any error can be shown.
MAX_SEQUENCES = 10_000_000
MAX_HIDDEN = 4096
MODEL_CHOICES = ("rnn", "gru", "lstm", "conv1d")
TASK_CHOICES = ("direction", "corner-direction")


@dataclass
class RunConfig:
    """The tutorial's experiment, one field per CLI option.

    Attributes:
        epochs: training epochs.
        batch_size: sequences per mini-batch (training and test loaders).
        lr: Adam's learning rate.
        hidden_dim: size of the recurrent hidden state.
        seed: torch seed set right before the model is built (its initial weights).
        fit_seed: seed that ``StepByStep.train`` sets before the first epoch (the shuffles).
        train_seed: data seed of the training sequences.
        test_seed: data seed of the test sequences.
        n_train: number of training sequences.
        n_test: number of test sequences.
        loss: one of :data:`squareseq.losses.LOSSES`, or ``"auto"``: ``bce-logits`` for two
            classes, ``ce-free`` for more (resolved when the run starts).
        model: ``rnn`` (the tutorial's), ``gru``, ``lstm`` or ``conv1d``.
        num_layers: stacked recurrent layers.
        bidirectional: a second recurrent layer reads the sequences backwards.
        variable_len: generated sequences keep their first 2, 3 or 4 points (packed batches).
        task: ``direction`` (clockwise or not, the tutorial's) or ``corner-direction`` (8
            classes: starting corner and direction).
        noise: standard deviation of the generated points' noise (the tutorial's 0.1).
        data: a ``.npz`` or ``.csv`` file of your own sequences instead of generated squares
            (see :mod:`squareseq.datafiles`).
        test_fraction: with ``data`` and no test set in the file, the share held out for testing.
        split_seed: seed of that stratified split.
        standardize: rescale ``data``'s features with the training part's statistics.
    """

    epochs: int = 100
    batch_size: int = 16
    lr: float = 0.01
    hidden_dim: int = 2
    seed: int = 21
    fit_seed: int = 42
    train_seed: int = 13
    test_seed: int = 19
    n_train: int = 128
    n_test: int = 128
    loss: str = "auto"
    model: str = "rnn"
    num_layers: int = 1
    bidirectional: bool = False
    variable_len: bool = False
    task: str = "direction"
    noise: float = 0.1
    data: Optional[str] = None
    test_fraction: float = 0.2
    split_seed: int = 0
    standardize: bool = False

    def validate(self) -> "RunConfig":
        """Raises :class:`SquareseqError` naming the first bad field; returns self."""
        for name in ("epochs", "batch_size", "hidden_dim", "n_train", "n_test", "num_layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise SquareseqError(f"{_flag(name)} must be a positive integer, got {value!r}")
        for name, limit in (("n_train", MAX_SEQUENCES), ("n_test", MAX_SEQUENCES), ("hidden_dim", MAX_HIDDEN),
                            ("num_layers", 64)):
            if getattr(self, name) > limit:
                raise SquareseqError(f"{_flag(name)} must be at most {limit}, got {getattr(self, name)}")
        for name in ("seed", "fit_seed", "train_seed", "test_seed", "split_seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**32:
                raise SquareseqError(f"{_flag(name)} must be an integer in [0, 2**32), got {value!r}")
        if not _number(self.lr) or not math.isfinite(self.lr) or self.lr <= 0:
            raise SquareseqError(f"--lr must be a positive finite number, got {self.lr!r}")
        if self.loss != "auto" and self.loss not in LOSS_NAMES:
            raise SquareseqError(f"unknown loss {self.loss!r}; choose auto or one of: {', '.join(LOSS_NAMES)}")
        if self.model not in MODEL_CHOICES:
            raise SquareseqError(f"unknown model {self.model!r}; choose one of: {', '.join(MODEL_CHOICES)}")
        if self.model == "conv1d" and (self.num_layers != 1 or self.bidirectional):
            raise SquareseqError("--num-layers and --bidirectional apply to recurrent models, not --model conv1d")
        if self.task not in TASK_CHOICES:
            raise SquareseqError(f"unknown task {self.task!r}; choose one of: {', '.join(TASK_CHOICES)}")
        if not _number(self.noise) or not math.isfinite(self.noise) or self.noise < 0:
            raise SquareseqError(f"--noise must be a finite number >= 0, got {self.noise!r}")
        if not _number(self.test_fraction) or not 0 < self.test_fraction < 1:
            raise SquareseqError(f"--test-fraction must lie strictly between 0 and 1, got {self.test_fraction!r}")
        if self.data is not None:
            generated_only = [flag for flag, differs in (
                ("--task", self.task != "direction"), ("--noise", self.noise != 0.1),
                ("--variable-len", self.variable_len)) if differs]
            if generated_only:
                raise SquareseqError(f"{', '.join(generated_only)} shape generated squares and do not apply to "
                                     f"--data {self.data}")
        elif self.standardize:
            raise SquareseqError("--standardize applies to --data files only")
        return self

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "RunConfig":
        """Builds a config from a dict, ignoring keys this version does not know (older runs get
        the defaults for keys they lack)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")
