"""Checks on data and set-ups that run before any training, each failing with one clear line.

Every check raises :class:`~squareseq.errors.SquareseqError` (a ``ValueError``) whose message says
what is wrong and how to fix it; the CLI prints that line and exits with code 2.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np
import torch
from torch import nn

from squareseq.errors import SquareseqError

__all__ = ["check_inputs", "check_labels", "check_dataset", "check_model_output", "check_training_data"]

_BCE = (nn.BCELoss, nn.BCEWithLogitsLoss)


def _as_tensor(value: Any, name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as exc:  # ragged lists and the like
        raise SquareseqError(f"{name} is not a rectangular array ({str(exc).splitlines()[0]}); pad sequences "
                             "to one length first") from None
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise SquareseqError(f"{name} must hold numbers, got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.complexfloating):
        raise SquareseqError(f"{name} must hold real numbers, got dtype {array.dtype}")
    try:
        return torch.from_numpy(np.ascontiguousarray(array))
    except TypeError:  # dtypes torch lacks (uint32 on old versions, float128, ...)
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float64))


def _first_bad(mask: torch.Tensor) -> int:
    return int(mask.reshape(len(mask), -1).any(dim=1).nonzero()[0, 0])


def check_inputs(x: Any, n_features: Optional[int] = None, name: str = "x") -> torch.Tensor:
    """Checks a batch of sequences: an ``(N, L, F)`` real array, ``N, L, F >= 1``, all finite.

    Args:
        x: array-like of shape ``(N, L, F)``.
        n_features: the ``F`` the model expects, if known.
        name: how the message refers to ``x`` (e.g. ``"--input data.npy"``).

    Returns:
        ``x`` as a tensor.
    """
    t = _as_tensor(x, name)
    if t.is_complex():
        raise SquareseqError(f"{name} must hold real numbers, got dtype {t.dtype}")
    if t.dim() != 3:
        raise SquareseqError(f"{name} must be a 3-d array (N sequences, L steps, F features), got shape "
                             f"{tuple(t.shape)}")
    if t.shape[0] == 0:
        raise SquareseqError(f"{name} is empty: it holds no sequences")
    if t.shape[1] == 0 or t.shape[2] == 0:
        raise SquareseqError(f"{name} has shape {tuple(t.shape)}: sequences need at least one step and feature")
    if n_features is not None and t.shape[2] != n_features:
        raise SquareseqError(f"{name} has {t.shape[2]} feature(s) per step but the model expects {n_features}")
    if t.is_floating_point():
        bad = ~torch.isfinite(t)
        if bool(bad.any()):
            raise SquareseqError(f"{name} holds {int(bad.sum())} NaN or infinite value(s) (first in sequence "
                                 f"{_first_bad(bad)}): clean or drop them before training")
    return t


def check_labels(y: Any, n: Optional[int] = None, n_classes: int = 2, float_labels: bool = False,
                 name: str = "y") -> torch.Tensor:
    """Checks labels: one per sequence, finite, and inside the classes.

    Args:
        y: ``(N,)`` or ``(N, 1)`` labels.
        n: the number of sequences they must match, if known.
        n_classes: class indices must lie in ``[0, n_classes)``.
        float_labels: labels are targets of a BCE loss: numbers in ``[0, 1]`` (soft labels allowed).
        name: how the message refers to ``y``.
    """
    t = _as_tensor(y, name)
    if t.is_complex():
        raise SquareseqError(f"{name} must hold real numbers, got dtype {t.dtype}")
    if t.dim() == 0 or t.dim() > 2 or (t.dim() == 2 and t.shape[1] != 1):
        raise SquareseqError(f"{name} must hold one label per sequence, shape (N,) or (N, 1), got {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise SquareseqError(f"{name} is empty: it holds no labels")
    if n is not None and t.shape[0] != n:
        raise SquareseqError(f"x holds {n} sequence(s) but {name} holds {t.shape[0]} label(s): they must match")
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        raise SquareseqError(f"{name} holds NaN or infinite labels")
    if float_labels:
        if bool(((t < 0) | (t > 1)).any()):
            raise SquareseqError(f"{name} holds labels outside [0, 1] (min {t.min().item():g}, max "
                                 f"{t.max().item():g}); a BCE loss needs 0/1 labels")
    else:
        if t.is_floating_point() and not bool((t == t.round()).all()):
            raise SquareseqError(f"{name} holds non-integer class labels; use class indices 0..{n_classes - 1}")
        if bool(((t < 0) | (t >= n_classes)).any()):
            raise SquareseqError(f"{name} holds labels outside the classes 0..{n_classes - 1} (min "
                                 f"{t.min().item():g}, max {t.max().item():g})")
    return t


def check_dataset(x: Any, y: Any, n_features: Optional[int] = None, n_classes: Optional[int] = None,
                  lengths: Any = None, float_labels: Optional[bool] = None) -> None:
    """Checks a whole data set before training: :func:`check_inputs`, :func:`check_labels`, and
    ``lengths`` (one per sequence, each in ``[1, L]``) when given.

    Args:
        x: ``(N, L, F)`` sequences.
        y: ``(N,)`` or ``(N, 1)`` labels.
        n_features: the ``F`` the model expects, if known.
        n_classes: number of classes (default 2).
        lengths: true lengths of zero-padded sequences, or None.
        float_labels: BCE-style labels in [0, 1]; by default, true when ``y`` is floating point.
    """
    xt = check_inputs(x, n_features)
    yt = _as_tensor(y, "y")
    if float_labels is None:
        float_labels = yt.is_floating_point()
    check_labels(yt, len(xt), n_classes or 2, float_labels)
    if lengths is not None:
        lt = _as_tensor(lengths, "lengths")
        if lt.dim() != 1 or lt.shape[0] != len(xt):
            raise SquareseqError(f"lengths must hold one length per sequence ({len(xt)}), got shape "
                                 f"{tuple(lt.shape)}")
        if lt.is_floating_point() or bool(((lt < 1) | (lt > xt.shape[1])).any()):
            raise SquareseqError(f"lengths must be integers in [1, {xt.shape[1]}]")


def check_model_output(model: nn.Module, x: torch.Tensor, loss_fn: Callable, y: torch.Tensor) -> None:
    """Runs ``model`` on two samples and checks that ``loss_fn`` accepts its output with ``y``.

    Runs under ``no_grad`` inside ``torch.random.fork_rng``, so it draws nothing from the global
    generators (a model with dropout would otherwise shift every later shuffle).
    """
    was_training = model.training
    model.eval()
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            sample_x, sample_y = x[:2], y[:2]
            try:
                outputs = model(sample_x)
            except (RuntimeError, ValueError, TypeError, IndexError) as exc:
                raise SquareseqError(f"the model cannot read inputs of shape {tuple(x.shape[1:])} per sequence "
                                     f"({str(exc).splitlines()[0]})") from None
            if not isinstance(outputs, torch.Tensor):
                raise SquareseqError(f"the model must return a tensor, got {type(outputs).__name__}")
            if isinstance(loss_fn, _BCE) and outputs.shape != sample_y.shape:
                raise SquareseqError(f"the model outputs shape {tuple(outputs.shape[1:])} per sequence but "
                                     f"{type(loss_fn).__name__} needs the labels' shape {tuple(sample_y.shape[1:])}")
            try:
                loss = loss_fn(outputs, sample_y)
            except (RuntimeError, ValueError, TypeError, IndexError) as exc:
                raise SquareseqError(f"the model's output (shape {tuple(outputs.shape[1:])} per sequence) does "
                                     f"not fit the loss: {str(exc).splitlines()[0]}") from None
            if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                raise SquareseqError("the loss must return one number per batch; use reduction='mean' or 'sum'")
    finally:
        model.train(was_training)


def check_training_data(loader: Any, model: Optional[nn.Module] = None, loss_fn: Any = None,
                        name: str = "training data") -> None:
    """Cheap checks of a loader over an in-memory ``TensorDataset`` of ``(x, y)``; other loaders
    pass unchecked. Never draws random numbers and never calls the model (hooks stay quiet)."""
    dataset = getattr(loader, "dataset", None)
    tensors = getattr(dataset, "tensors", None)
    if dataset is not None and not isinstance(tensors, tuple):
        try:
            if len(dataset) == 0:
                raise SquareseqError(f"the {name} is empty: its loader has no samples")
        except TypeError:  # iterable datasets have no length
            pass
        return
    if tensors is None:
        return
    if len(tensors[0]) == 0:
        raise SquareseqError(f"the {name} is empty: its loader has no samples")
    for i, t in enumerate(tensors):
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            what = "inputs" if i == 0 else "labels"
            raise SquareseqError(f"the {name}'s {what} hold NaN or infinite values: clean or drop them "
                                 "before training")
    x = tensors[0]
    n_features = getattr(model, "n_features", None)
    if isinstance(n_features, int) and x.dim() == 3 and x.shape[-1] != n_features:
        raise SquareseqError(f"the {name} has {x.shape[-1]} feature(s) per step but the model expects {n_features}")
    if len(tensors) != 2:
        return
    y = tensors[1]
    if isinstance(loss_fn, _BCE):
        check_labels(y, float_labels=True, name=f"the {name}'s labels")
    elif isinstance(loss_fn, nn.CrossEntropyLoss) and not y.is_floating_point():
        n_outputs = getattr(model, "n_outputs", None)
        kept = y[y != loss_fn.ignore_index]  # labels the loss is told to skip are fine
        if isinstance(n_outputs, int) and len(kept):
            check_labels(kept, n_classes=n_outputs, name=f"the {name}'s labels")
