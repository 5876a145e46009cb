"""The learning-rate range test: train briefly while raising the learning rate, record the loss."""
from __future__ import annotations

import copy
from typing import Callable, Dict, Iterable, List, cast

import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from squareseq.errors import SquareseqError

__all__ = ["make_lr_fn", "lr_range_test"]


def make_lr_fn(start_lr: float, end_lr: float, num_iter: int, step_mode: str = "exp") -> Callable[[int], float]:
    """The factor over ``start_lr`` at each iteration: linear or exponential up to ``end_lr``."""
    if step_mode not in ("exp", "linear"):
        raise SquareseqError(f"step_mode must be 'exp' or 'linear', not {step_mode!r}")
    if step_mode == "linear":
        factor = (end_lr / start_lr - 1) / num_iter
        return lambda iteration: 1 + iteration * factor
    factor = (np.log(end_lr) - np.log(start_lr)) / num_iter
    return lambda iteration: np.exp(factor) ** iteration


def lr_range_test(
    model: nn.Module,
    loss_fn: Callable,
    optimizer: torch.optim.Optimizer,
    data_loader: Iterable,
    end_lr: float,
    num_iter: int = 100,
    step_mode: str = "exp",
    alpha: float = 0.05,
    device: "str | torch.device" = "cpu",
) -> Dict[str, List[float]]:
    """Runs the range test and returns ``{"lr": [...], "loss": [...]}`` (losses smoothed with
    ``alpha``). The model's and optimizer's states are restored afterwards, and no gradients are
    left behind."""
    if num_iter < 1:
        raise SquareseqError(f"num_iter must be >= 1, got {num_iter}")
    saved = {"model": copy.deepcopy(model.state_dict()), "optimizer": copy.deepcopy(optimizer.state_dict())}
    start_lr = optimizer.param_groups[0]["lr"]
    scheduler = LambdaLR(optimizer, lr_lambda=make_lr_fn(start_lr, end_lr, num_iter, step_mode))
    tracking: Dict[str, List[float]] = {"loss": [], "lr": []}
    iteration = 0
    model.train()
    try:
        while iteration < num_iter:
            before = iteration
            for x, y in data_loader:
                optimizer.zero_grad()
                loss = loss_fn(model(x.to(device)), y.to(device))
                loss.backward()
                # a float for a float lr (the stubs' Tensor is for a tensor lr, which passes through as given)
                tracking["lr"].append(cast(float, scheduler.get_last_lr()[0]))
                value = loss.item()
                if tracking["loss"]:
                    value = alpha * value + (1 - alpha) * tracking["loss"][-1]
                tracking["loss"].append(value)
                iteration += 1
                if iteration == num_iter:
                    break
                optimizer.step()
                scheduler.step()
            if iteration == before:
                raise SquareseqError("the loader yielded no batches: the dataset is empty")
    finally:
        optimizer.zero_grad()
        optimizer.load_state_dict(saved["optimizer"])
        model.load_state_dict(saved["model"])
    return tracking
