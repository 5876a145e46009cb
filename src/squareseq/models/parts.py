"""Checks and descriptions every model of :mod:`squareseq.models` shares: the output activation,
the batch layout, positive sizes, and the ``config()`` dict :func:`~squareseq.models.networks.build_model`
rebuilds a model from. A module of its own so that the recurrent and the convolutional models
(``networks``, ``conv``) use one copy."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from squareseq.errors import ModelError

__all__ = ["make_activation", "check_padded", "check_sizes", "description"]


def make_activation(output_activation: Optional[str]) -> Optional[nn.Module]:
    """``None`` (logits) or an ``nn.Sigmoid`` (probabilities, for ``BCELoss``)."""
    if output_activation not in (None, "sigmoid"):
        raise ModelError(f"output_activation must be None or 'sigmoid', not {output_activation!r}")
    return nn.Sigmoid() if output_activation == "sigmoid" else None


def check_padded(x: torch.Tensor, n_features: int) -> None:
    """Refuses anything but a batch-first ``(N, L, n_features)`` tensor, in one line."""
    if x.dim() != 3 or x.shape[-1] != n_features:
        raise ModelError(
            f"expected a batch of shape (N, L, {n_features}) (batch first), got {tuple(x.shape)}"
        )


def check_sizes(**sizes: object) -> None:
    """Raises :class:`~squareseq.errors.ModelError` for the first size that is not a positive int."""
    for name, value in sizes.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ModelError(f"{name} must be a positive integer, got {value!r}")


def description(model: nn.Module, name: str, **sizes: object) -> dict:
    """What ``build_model`` needs to rebuild ``model``: the model's ``name`` (its
    class's, also for subclasses), ``sizes`` and its output activation."""
    activation = "sigmoid" if getattr(model, "output_activation", None) is not None else None
    return {"name": name, **sizes, "output_activation": activation}
