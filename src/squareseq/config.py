"""A run's configuration: every knob of ``squareseq train``, with the tutorial's defaults."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Dict

from .errors import SquareseqError
from .losses import LOSSES

__all__ = ["RunConfig", "MAX_SEQUENCES", "MAX_HIDDEN"]

#: Upper bounds that keep a typo (``--n-train 1000000000``) from exhausting memory.
MAX_SEQUENCES = 10_000_000
MAX_HIDDEN = 4096


@dataclass
class RunConfig:
    """The tutorial's experiment, one field per CLI option.

    Attributes:
        epochs: training epochs.
        batch_size: sequences per mini-batch (training and test loaders).
        lr: Adam's learning rate.
        hidden_dim: size of the RNN's hidden state.
        seed: torch seed set right before the model is built (its initial weights).
        fit_seed: seed that ``StepByStep.train`` sets before the first epoch (the shuffles).
        train_seed: data seed of the training sequences.
        test_seed: data seed of the test sequences.
        n_train: number of training sequences.
        n_test: number of test sequences.
        loss: one of :data:`squareseq.losses.LOSSES`.
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
    loss: str = "bce-logits"

    def validate(self) -> "RunConfig":
        """Raises :class:`SquareseqError` naming the first bad field; returns self."""
        for name in ("epochs", "batch_size", "hidden_dim", "n_train", "n_test"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise SquareseqError(f"{_flag(name)} must be a positive integer, got {value!r}")
        for name, limit in (("n_train", MAX_SEQUENCES), ("n_test", MAX_SEQUENCES), ("hidden_dim", MAX_HIDDEN)):
            if getattr(self, name) > limit:
                raise SquareseqError(f"{_flag(name)} must be at most {limit}, got {getattr(self, name)}")
        for name in ("seed", "fit_seed", "train_seed", "test_seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**32:
                raise SquareseqError(f"{_flag(name)} must be an integer in [0, 2**32), got {value!r}")
        if not isinstance(self.lr, (int, float)) or not math.isfinite(self.lr) or self.lr <= 0:
            raise SquareseqError(f"--lr must be a positive finite number, got {self.lr!r}")
        if self.loss not in LOSSES:
            raise SquareseqError(f"unknown loss {self.loss!r}; choose one of: {', '.join(LOSSES)}")
        return self

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "RunConfig":
        """Builds a config from a dict, ignoring keys this version does not know."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")
