"""Classification metrics: per-class counts, accuracy and the confusion matrix."""
from __future__ import annotations

from typing import Optional

import torch

__all__ = ["predicted_classes", "correct_per_class", "accuracy", "confusion_matrix"]


def predicted_classes(
    outputs: torch.Tensor, threshold: float = 0.5, probabilities: bool = False
) -> torch.Tensor:
    """Class indices ``(N,)`` from a model's ``(N, C)`` outputs.

    Several outputs: the largest wins (argmax). One output: a logit passed through a sigmoid,
    or, with ``probabilities=True``, already a probability; it is compared with ``threshold``.
    """
    if outputs.dim() != 2:
        raise ValueError(f"model outputs must have shape (N, n_outputs), got {tuple(outputs.shape)}")
    if outputs.shape[1] > 1:
        return outputs.argmax(dim=1)
    probs = outputs if probabilities else torch.sigmoid(outputs)
    return (probs[:, 0] > threshold).long()


def correct_per_class(
    outputs: torch.Tensor,
    y: torch.Tensor,
    threshold: float = 0.5,
    probabilities: bool = False,
    n_classes: Optional[int] = None,
) -> torch.Tensor:
    """Per-class ``[n_correct, n_total]`` as an int64 tensor of shape ``(n_classes, 2)``.

    ``y`` holds class indices, as ``(N,)`` or ``(N, 1)``, of any numeric dtype. With one output,
    there are two classes (0 and 1); with ``C > 1`` outputs, ``C`` classes, each counted even when
    the batch has none of it (so batches sum to a full table).
    """
    predicted = predicted_classes(outputs, threshold, probabilities)
    y = y.reshape(-1).long()
    if n_classes is None:
        n_classes = max(outputs.shape[1], 2)
    if len(y) != len(predicted):
        raise ValueError(f"got {len(predicted)} outputs but {len(y)} labels")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise ValueError(
            f"labels must lie in [0, {n_classes - 1}] for a model with {outputs.shape[1]} output(s), "
            f"got {int(y.min())}..{int(y.max())}"
        )
    totals = torch.bincount(y, minlength=n_classes)
    hits = torch.bincount(y[predicted == y], minlength=n_classes)
    return torch.stack([hits, totals], dim=1)


def accuracy(counts: torch.Tensor) -> float:
    """Overall accuracy from per-class ``[n_correct, n_total]`` counts."""
    total = int(counts[:, 1].sum())
    return float(counts[:, 0].sum()) / total if total else float("nan")


def confusion_matrix(predicted: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """``(n_classes, n_classes)`` counts: rows are true classes, columns predicted ones."""
    y = y.reshape(-1).long()
    flat = y * n_classes + predicted.reshape(-1).long()
    return torch.bincount(flat, minlength=n_classes * n_classes).view(n_classes, n_classes)
