"""Training replays, stage 1: record cheap per-epoch snapshots while training.

:class:`SnapshotRecorder` is a training callback. At the start of the fit and at the end of every
epoch it copies the model's parameters and the hidden states of a fixed sample of sequences: a
few small tensors, no gradients, no figures. :class:`Snapshots` save to a plain file
(``snapshots.pt``: tensors, lists and numbers, read back with ``torch.load(weights_only=True)``),
so a run folder can be re-animated without retraining. :mod:`squareseq.figures.replay` computes and draws
the frames.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import torch
from torch import nn

from squareseq.errors import SquareseqError
from squareseq.figures.durable import write_file
from squareseq.models.hidden import hidden_states
from squareseq.training.loop import Callback, FitState

__all__ = ["Snapshots", "SnapshotRecorder", "SNAPSHOT_FORMAT", "SNAPSHOT_VERSION"]

SNAPSHOT_FORMAT = "squareseq-snapshots"
SNAPSHOT_VERSION = 1
#: The most sequences a recorder keeps (the first ones), and the most steps of each (evenly
#: spaced, the last included): a run on long sequences records a few megabytes, not gigabytes.
MAX_SNAPSHOT_SEQUENCES = 256
MAX_SNAPSHOT_STEPS = 6


@dataclass
class Snapshots:
    """Per-epoch copies of a model's parameters and of a fixed sample's hidden states."""

    x: torch.Tensor  # (N, L, F) the sample
    y: torch.Tensor  # (N,) its labels
    epochs: List[int] = field(default_factory=list)
    params: List[Dict[str, torch.Tensor]] = field(default_factory=list)
    hidden: List[torch.Tensor] = field(default_factory=list)  # each (N, L, H), or (N, len(steps), H)
    steps: Optional[List[int]] = None  # the steps ``hidden`` keeps (None: every step)

    def __len__(self) -> int:
        return len(self.epochs)

    def to_dict(self) -> Dict[str, Any]:
        """Plain tensors and lists, stacked over epochs (what :meth:`save` writes)."""
        if not self.epochs:
            raise SquareseqError("no snapshots recorded: train with the SnapshotRecorder callback first")
        names = list(self.params[0])
        return {
            "format": SNAPSHOT_FORMAT,
            "version": SNAPSHOT_VERSION,
            "epochs": list(self.epochs),
            "param_names": names,
            "params": {k: torch.stack([p[k] for p in self.params]) for k in names},  # (E, ...)
            "hidden": torch.stack(self.hidden),  # (E, N, L, H)
            "x": self.x,
            "y": self.y,
            **({"steps": list(self.steps)} if self.steps is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Snapshots":
        if not isinstance(data, dict) or data.get("format") != SNAPSHOT_FORMAT:
            raise SquareseqError("not a squareseq snapshots file (format tag missing or different)")
        if data.get("version", 0) > SNAPSHOT_VERSION:
            raise SquareseqError(f"snapshots version {data.get('version')} is newer than this squareseq reads: upgrade")
        epochs = [int(e) for e in data["epochs"]]
        params = [{k: data["params"][k][i] for k in data["param_names"]} for i in range(len(epochs))]
        hidden = list(data["hidden"].unbind(0))
        steps = data.get("steps")
        return cls(data["x"], data["y"], epochs, params, hidden, None if steps is None else [int(t) for t in steps])

    def save(self, path: Union[str, os.PathLike]) -> Path:
        """Writes the snapshots atomically to ``path`` (loadable with ``weights_only=True``)."""
        path = Path(path)
        payload = self.to_dict()
        write_file(path, lambda f: torch.save(payload, f))
        return path

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "Snapshots":
        """Reads a snapshots file without unpickling code."""
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise SquareseqError(f"snapshots file not found: {path}") from None
        except Exception as exc:
            raise SquareseqError(f"{path} is not a readable snapshots file ({type(exc).__name__})") from None
        return cls.from_dict(data)


class SnapshotRecorder(Callback):
    """Records :class:`Snapshots` during a fit: at its start (the untrained model, unless
    ``record_start`` is false) and after every ``every``-th epoch and the last one.

    Args:
        x: ``(N, L, F)`` the fixed sample whose hidden states are recorded (the test set, say; its
            first :data:`MAX_SNAPSHOT_SEQUENCES`, at :data:`MAX_SNAPSHOT_STEPS` steps at most).
        y: its labels ``(N,)`` or ``(N, 1)``, kept for colouring.
        every: record every ``every`` epochs.
        record_start: also record the model before the first epoch.
    """

    def __init__(self, x, y, every: int = 1, record_start: bool = True):
        if every < 1:
            raise SquareseqError(f"every must be >= 1, got {every}")
        x = torch.as_tensor(x, dtype=torch.float32)
        y = torch.as_tensor(y).reshape(-1)
        if x.dim() != 3 or x.shape[0] != y.shape[0]:
            raise SquareseqError(f"x must be (N, L, F) with one label per sequence; got x {tuple(x.shape)}, "
                                 f"y {tuple(y.shape)}")
        self.every = every
        self.record_start = record_start
        x, y = x[:MAX_SNAPSHOT_SEQUENCES], y[:MAX_SNAPSHOT_SEQUENCES]
        self.snapshots = Snapshots(x, y.long())
        if x.shape[1] > MAX_SNAPSHOT_STEPS:
            steps = torch.linspace(0, x.shape[1] - 1, MAX_SNAPSHOT_STEPS).round().long().unique()
            self.snapshots.steps = [int(t) for t in steps]

    def record(self, model: nn.Module, epoch: int) -> None:
        """Copies the parameters and the sample's hidden states now, as ``epoch``."""
        if self.snapshots.epochs and self.snapshots.epochs[-1] == epoch:
            return
        with torch.no_grad():
            params = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        self.snapshots.params.append(params)
        hidden = hidden_states(model, self.snapshots.x)
        steps = self.snapshots.steps
        self.snapshots.hidden.append(hidden if steps is None else hidden[:, steps].clone())
        self.snapshots.epochs.append(int(epoch))

    def on_fit_start(self, loop: FitState) -> None:
        if self.record_start:
            self.record(loop.model, loop.epoch)

    def on_epoch_end(self, loop: FitState, logs: Dict[str, Any]) -> None:
        if loop.epoch % self.every == 0:
            self.record(loop.model, loop.epoch)

    def on_fit_end(self, loop: FitState) -> None:
        self.record(loop.model, loop.epoch)  # the last epoch, when ``every`` skipped it
