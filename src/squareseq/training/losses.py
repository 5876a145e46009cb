"""The loss set-ups a run can use for binary direction labels.

The tutorial's model outputs one logit and trains with ``BCEWithLogitsLoss``; its "Your Turn"
and "Tip" ask for two variants, which need a different model head and label format each.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional

from torch import nn

from squareseq.config import LOSS_DESCRIPTIONS
from squareseq.errors import ConfigError, SquareseqError

__all__ = ["LossSpec", "LOSSES", "get_loss_spec", "resolve_loss"]


@dataclass(frozen=True)
class LossSpec:
    """How a loss shapes the model's output and the labels.

    Attributes:
        name: the CLI name.
        n_outputs: outputs per sequence the model must produce for two classes (cross-entropy
            losses produce one per class: see :meth:`outputs_for`).
        output_activation: ``"sigmoid"`` if the model must output probabilities, else None.
        reference_logit: whether the model pins its first logit at 0 (see ``SquareModel``).
        float_labels: labels as ``(N, 1)`` floats (BCE losses) or ``(N,)`` class indices.
        make: builds the loss module.
        description: one line for ``--help``.
    """

    name: str
    n_outputs: int
    output_activation: Optional[str]
    reference_logit: bool
    float_labels: bool
    make: Callable[[], nn.Module]
    description: str

    @property
    def binary_only(self) -> bool:
        """BCE losses model one probability: they fit two classes only."""
        return not self.reference_logit and self.n_outputs == 1

    def outputs_for(self, n_classes: int) -> int:
        """Outputs the model needs for ``n_classes`` classes; a clear error where the loss cannot
        serve that many."""
        if n_classes < 2:
            raise SquareseqError(f"a classifier needs at least 2 classes, the data has {n_classes}")
        if self.binary_only:
            if n_classes != 2:
                raise ConfigError(f"{{loss}} {self.name} fits two classes, the task has {n_classes}; "
                                  "use {loss} ce or ce-free", ("loss",))
            return 1
        return n_classes


LOSSES: Dict[str, LossSpec] = {
    spec.name: spec
    for spec in (
        LossSpec("bce-logits", 1, None, False, True, nn.BCEWithLogitsLoss, LOSS_DESCRIPTIONS["bce-logits"]),
        LossSpec("bce", 1, "sigmoid", False, True, nn.BCELoss, LOSS_DESCRIPTIONS["bce"]),
        LossSpec("ce", 2, None, True, False, nn.CrossEntropyLoss, LOSS_DESCRIPTIONS["ce"]),
        LossSpec("ce-free", 2, None, False, False, nn.CrossEntropyLoss, LOSS_DESCRIPTIONS["ce-free"]),
    )
}


def get_loss_spec(name: str) -> LossSpec:
    """The :class:`LossSpec` called ``name``; a clear error for unknown names."""
    try:
        return LOSSES[name]
    except KeyError:
        raise SquareseqError(f"unknown loss {name!r}; choose one of: {', '.join(LOSSES)}") from None


def resolve_loss(name: str, n_classes: int) -> str:
    """``"auto"`` becomes the tutorial's ``bce-logits`` for two classes and ``ce-free`` (the
    usual softmax head, one logit per class) for more; other names are checked against
    ``n_classes`` and returned."""
    if name == "auto":
        name = "bce-logits" if n_classes == 2 else "ce-free"
    get_loss_spec(name).outputs_for(n_classes)
    return name
