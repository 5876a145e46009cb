"""A run's data: generated squares or a user's file, as tensors, loaders and raw sequences.

Everything here is deterministic in the run's configuration, so ``evaluate``, ``plot`` and
``--resume`` rebuild exactly the data a run trained on.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Optional

import numpy as np
import torch

from squareseq.config import RunConfig, check_activation_memory
from squareseq.data.loaders import make_loader
from squareseq.data.squares import class_names, label_tensor, make_sequences, n_classes, pack_padded, to_tensors

__all__ = ["Split", "RunData", "build_data"]


@dataclass
class Split:
    """One part of a run's data.

    Attributes:
        x: ``(N, L, F)`` float32, shorter sequences zero-padded at the end.
        y: labels as the loss wants them (``(N, 1)`` floats or ``(N,)`` class indices).
        lengths: ``(N,)`` real steps per sequence, or None when all have ``L`` steps.
    """

    x: torch.Tensor
    y: torch.Tensor
    lengths: Optional[torch.Tensor]

    def __len__(self) -> int:
        return len(self.x)

    def loader(self, batch_size: int, shuffle: bool):
        """The tutorial's DataLoader for full-length sequences, a packing loader otherwise."""
        return make_loader(self.x, self.y, self.lengths, batch_size=batch_size, shuffle=shuffle)

    def with_float_labels(self) -> "Split":
        """The same split with ``(N, 1)`` float labels, as BCE losses want them."""
        return Split(self.x, label_tensor(self.y, float_labels=True), self.lengths)

    def full_length(self) -> "Split":
        """Only the sequences that use every step (figures of hidden states need no padding)."""
        if self.lengths is None:
            return self
        keep = self.lengths == self.x.shape[1]
        return Split(self.x[keep], self.y[keep], None)

    def model_input(self):
        """The whole split as a model takes it: the padded tensor or a PackedSequence."""
        if self.lengths is None:
            return self.x
        return pack_padded(self.x, self.lengths)


@dataclass
class RunData:
    """Training and test splits plus what figures and reports need to know about them.

    ``val`` is the validation split a run holds out of its training data (None: it validates on
    the test set, the book's way); ``preprocessing`` what predict and evaluate must repeat for a
    file run (:meth:`squareseq.data.preprocessing.Preprocessing.to_dict`; None for generated squares).
    """

    train: Split
    test: Split
    n_classes: int
    class_names: List[str]
    generated: bool  # squares from the generator (the tutorial's figures apply), not a file
    summary: Dict[str, Any] = field(default_factory=dict)
    figure_train: Any = None  # (points, labels) for the tutorial's figures, generated data only
    figure_test: Any = None  # (points or x, labels) whose hidden states the figures show
    val: Optional[Split] = None
    preprocessing: Optional[Dict[str, Any]] = None

    def with_float_labels(self) -> "RunData":
        """The same data with ``(N, 1)`` float labels in both splits (for BCE losses)."""
        return replace(self, train=self.train.with_float_labels(), test=self.test.with_float_labels(),
                       val=None if self.val is None else self.val.with_float_labels())

    @property
    def n_features(self) -> int:
        return int(self.train.x.shape[-1])

    @property
    def seq_len(self) -> int:
        return int(max(self.train.x.shape[1], self.test.x.shape[1]))


def build_data(config: RunConfig) -> RunData:
    """The run's data, labels as class indices ``(N,)`` (see :meth:`RunData.with_float_labels`)."""
    if config.data is not None:
        return _from_file(config, config.data)
    splits, figures = [], []
    for n, seed in ((config.n_train, config.train_seed), (config.n_test, config.test_seed)):
        points, labels = make_sequences(n, variable_len=config.variable_len, seed=seed, noise=config.noise,
                                        task=config.task)
        splits.append(Split(*to_tensors(points, labels, float_labels=False)))
        figures.append((points, np.asarray(labels)))  # the figures name the task's classes
    return RunData(splits[0], splits[1], n_classes(config.task), class_names(config.task), generated=True,
                   summary={"source": "generated", "task": config.task, "noise": config.noise,
                            "variable_len": config.variable_len},
                   figure_train=figures[0], figure_test=figures[1])


def _from_file(config: RunConfig, path: str) -> RunData:
    """A file's data: layout, validation split and standardizer as the config says; the summary
    records the layout (and the notice when it was read from the shape alone), the class names
    and the validation size."""
    from squareseq.data.files import load_data

    data = load_data(path, test_fraction=config.test_fraction, seed=config.split_seed,
                     standardize=config.standardize, layout=config.layout, val_fraction=config.val_fraction)
    train = Split(*data.tensors("train", float_labels=False))
    test = Split(*data.tensors("test", float_labels=False))
    val = Split(*data.tensors("val", float_labels=False)) if data.X_val is not None else None
    # a file's sizes are known only now; its test set runs through the model at once (evaluation, figures)
    check_activation_memory(replace(config, n_train=train.x.shape[0], n_test=test.x.shape[0]),
                            seq_len=train.x.shape[1], n_features=train.x.shape[2], from_file=True)
    summary = data.summary()
    if "layout_note" in data.meta:
        summary["layout_note"] = data.meta["layout_note"]
    sample = test.full_length()
    return RunData(train, test, data.n_classes, list(data.class_names), generated=False, summary=summary,
                   figure_test=(sample.x, sample.y), val=val, preprocessing=data.preprocessing.to_dict())
