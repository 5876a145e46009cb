"""Classification metrics: per-class counts, accuracy and the confusion matrix.

:func:`correct_per_class_stacked` counts K models' outputs at once (``squareseq.training.many`` trains
K models as one stack), with the same rule as :func:`correct_per_class`.
"""
from __future__ import annotations

from typing import Optional

import torch

from squareseq.errors import SquareseqError

__all__ = ["predicted_classes", "correct_per_class", "correct_per_class_stacked", "accuracy", "confusion_matrix"]


def predicted_classes(
    outputs: torch.Tensor, threshold: float = 0.5, probabilities: bool = False
) -> torch.Tensor:
    """Class indices ``(N,)`` from a model's ``(N, C)`` outputs.

    Several outputs: the largest wins (argmax). One output: a logit passed through a sigmoid,
    or, with ``probabilities=True``, already a probability; it is compared with ``threshold``.
    """
    if outputs.dim() != 2:
        raise SquareseqError(f"model outputs must have shape (N, n_outputs), got {tuple(outputs.shape)}")
    return _predict(outputs, threshold, probabilities)


def _predict(outputs: torch.Tensor, threshold: float, probabilities: bool) -> torch.Tensor:
    """:func:`predicted_classes` over the last axis of ``(..., C)`` outputs: ``(...)``."""
    if outputs.shape[-1] > 1:
        return outputs.argmax(dim=-1)
    probs = outputs if probabilities else torch.sigmoid(outputs)
    return (probs[..., 0] > threshold).long()


def _class_labels(y: torch.Tensor, n: int, n_classes: int, n_outputs: int) -> torch.Tensor:
    """``y`` as ``(N,)`` int64 class indices, checked against ``n`` outputs and ``n_classes``."""
    y = y.reshape(-1).long()
    if len(y) != n:
        raise SquareseqError(f"got {n} outputs but {len(y)} labels")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise SquareseqError(
            f"labels must lie in [0, {n_classes - 1}] for a model with {n_outputs} output(s), "
            f"got {int(y.min())}..{int(y.max())}"
        )
    return y


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
    if outputs.dim() != 2:
        raise SquareseqError(f"model outputs must have shape (N, n_outputs), got {tuple(outputs.shape)}")
    return correct_per_class_stacked(outputs.unsqueeze(0), y, threshold, probabilities, n_classes)[0]


def correct_per_class_stacked(outputs: torch.Tensor, y: torch.Tensor, threshold: float = 0.5,
                              probabilities: bool = False, n_classes: Optional[int] = None) -> torch.Tensor:
    """:func:`correct_per_class` of K models on the same batch: ``(K, n_classes, 2)`` int64.

    ``outputs`` are the models' ``(N, C)`` outputs stacked as ``(K, N, C)``; ``y`` the batch's
    shared labels. Entry ``k`` equals ``correct_per_class(outputs[k], y, ...)``, counted in one
    pass instead of K.
    """
    if outputs.dim() != 3:
        raise SquareseqError(f"stacked outputs must have shape (K, N, n_outputs), got {tuple(outputs.shape)}")
    k, n, n_outputs = outputs.shape
    if n_classes is None:
        n_classes = max(n_outputs, 2)
    y = _class_labels(y, n, n_classes, n_outputs)
    hits = _predict(outputs, threshold, probabilities) == y  # (K, N)
    model = torch.arange(k).unsqueeze(1).expand_as(hits)
    correct = torch.bincount((model * n_classes + y)[hits], minlength=k * n_classes).view(k, n_classes)
    totals = torch.bincount(y, minlength=n_classes).expand(k, n_classes)
    return torch.stack([correct, totals], dim=2)


def accuracy(counts: torch.Tensor) -> float:
    """Overall accuracy from per-class ``[n_correct, n_total]`` counts."""
    total = int(counts[:, 1].sum())
    return float(counts[:, 0].sum()) / total if total else float("nan")


def confusion_matrix(predicted: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """``(n_classes, n_classes)`` counts: rows are true classes, columns predicted ones. Labels
    and predictions must be class indices below ``n_classes`` (checked first: a huge label would
    otherwise size the count vector)."""
    y, predicted = y.reshape(-1).long(), predicted.reshape(-1).long()
    if y.shape != predicted.shape:
        raise SquareseqError(f"confusion_matrix: {predicted.numel()} predictions for {y.numel()} labels")
    for name, values in (("labels", y), ("predictions", predicted)):
        if values.numel() and not (0 <= int(values.min()) and int(values.max()) < n_classes):
            raise SquareseqError(f"confusion_matrix: {name} must be class indices in [0, {n_classes}), got "
                                 f"{int(values.min())}..{int(values.max())}")
    flat = y * n_classes + predicted
    return torch.bincount(flat, minlength=n_classes * n_classes).view(n_classes, n_classes)
