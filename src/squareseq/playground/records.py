"""What the playground streams to its page: the run report's viewer data
(:mod:`squareseq.figures.viewer_data`), so the page draws training in the same viewer as
``report.html`` (``static/viewer.js``).

:class:`RecordMaker` is the one place that speaks that format here: ``meta()`` once per run (the
viewer's empty payload: classes, plane, the sample's sequences), then ``epoch(...)`` per epoch
(the viewer's epoch record, plus the test accuracy and the learning rate the page shows).
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np
import torch

from squareseq.config import RunConfig
from squareseq.figures.viewer_data import empty_payload, epoch_record, fixed_plane, viewer_meta, viewer_sequences
from squareseq.models.hidden import hidden_states

__all__ = ["RecordMaker", "SAMPLE"]

#: Test sequences whose hidden states the page shows (the first ones).
SAMPLE = 64
#: The most steps after which the page shows the hidden states (as the report's replays).
MAX_STEPS = 6


class RecordMaker:
    """The viewer's messages for one run of ``model`` on ``data`` (a :class:`~squareseq.runs.data.RunData`).

    The plane is fixed when the run starts (the identity for two hidden units, else PCA of the
    untrained model's states), so that epochs are drawn on the same axes as they arrive."""

    def __init__(self, model: torch.nn.Module, data: Any, config: RunConfig) -> None:
        self.model, self.data, self.config = model, data, config
        n = min(SAMPLE, int(data.test.x.shape[0]))
        self.x = data.test.x[:n]
        self.y = data.test.y[:n].reshape(-1).long()
        self.lengths = None if data.test.lengths is None else data.test.lengths[:n]
        hidden = None if config.hidden_dim == 2 else hidden_states(model, self.x)
        self.plane = fixed_plane(config.hidden_dim, hidden=hidden)
        length = int(self.x.shape[1])  # long sequences: a few evenly spaced steps, the last included
        self.steps = list(range(length)) if length <= MAX_STEPS else \
            sorted({int(round(v)) for v in np.linspace(0, length - 1, MAX_STEPS)})

    def meta(self) -> Dict[str, Any]:
        """Once per run: the viewer's payload without epochs, and the run's settings."""
        task = "own sequences" if self.config.data is not None else self.config.task
        title = f"{self.config.model.upper()}, hidden size {self.config.hidden_dim}, {task}"
        meta = viewer_meta(self.data.class_names, self.plane, self.steps, self.config.epochs, title)
        return {"type": "meta", "payload": empty_payload(meta, viewer_sequences(self.x, self.y, self.lengths)),
                "epochs": self.config.epochs, "data": self.data.summary}

    def epoch(self, epoch: int, loss: Optional[float], val_loss: Optional[float], accuracy: float,
              lr: float) -> Dict[str, Any]:
        """One epoch's record (epoch 0: the untrained model, no losses)."""
        record = epoch_record(self.model, self.x, self.lengths, epoch, loss if epoch else None,
                              val_loss if epoch else None, self.plane, self.steps, self.data.n_classes)
        return {"type": "epoch", **record, "accuracy": round(accuracy, 4), "lr": lr}
