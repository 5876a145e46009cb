"""What the playground streams to its page for each epoch: the viewer's data, in the format the
run report's viewer reads, so the page draws training in the same viewer as ``report.html``.

:class:`RecordMaker` is the one place that knows that format: ``meta()`` once per run, then
``epoch(...)`` per epoch (the hidden states of a fixed sample of test sequences, projected to
the plane, the decision boundary, losses, accuracy, learning rate), numbers rounded to what a
screen shows.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np
import torch

from squareseq.config import RunConfig
from squareseq.models.hidden import Projection, decision_line, hidden_limits, hidden_states

__all__ = ["RecordMaker", "SAMPLE"]

#: Test sequences whose hidden states the page shows (the first ones).
SAMPLE = 64
#: Decimals kept of every coordinate (a thousandth of the unit square is under a pixel).
DECIMALS = 3


def _rounded(array: np.ndarray) -> Any:
    """Nested lists of rounded numbers, None where not finite (JSON has no NaN)."""
    out = np.round(np.asarray(array, dtype=np.float64), DECIMALS)
    return out.tolist() if np.isfinite(out).all() else _nulls(out.tolist())


def _nulls(value: Any) -> Any:
    if isinstance(value, list):
        return [_nulls(v) for v in value]
    return value if np.isfinite(value) else None


def _finite(value: Optional[float]) -> Optional[float]:
    return None if value is None or not np.isfinite(value) else round(float(value), 6)


class RecordMaker:
    """The viewer's messages for one run of ``model`` on ``data`` (a :class:`~squareseq.runs.data.RunData`)."""

    def __init__(self, model: torch.nn.Module, data: Any, config: RunConfig) -> None:
        self.model, self.data, self.config = model, data, config
        n = min(SAMPLE, int(data.test.x.shape[0]))
        self.x = data.test.x[:n]
        self.y = data.test.y[:n].reshape(-1).long()
        lengths = data.test.lengths
        self.lengths: List[int] = ([int(v) for v in lengths[:n]] if lengths is not None
                                   else [int(self.x.shape[1])] * n)
        self.losses: List[Optional[float]] = []
        self.val_losses: List[Optional[float]] = []

    def meta(self) -> Dict[str, Any]:
        """Once per run: what stays the same over its epochs."""
        config = self.config
        return {
            "type": "meta", "source": "playground", "task": config.task, "cell": config.model,
            "hidden_dim": config.hidden_dim, "epochs": config.epochs, "class_names": list(self.data.class_names),
            "labels": self.y.tolist(), "lengths": self.lengths, "seq_len": int(self.x.shape[1]),
            "points": _rounded(self.x.numpy()), "settings": config.to_dict(),
        }

    def epoch(self, epoch: int, loss: Optional[float], val_loss: Optional[float], accuracy: float,
              lr: float) -> Dict[str, Any]:
        """One epoch's record: the sample's projected hidden states ``(N, L, 2)``, their box, the
        0.5 decision line (None where the classifier has more than one boundary), the losses so far."""
        hidden = hidden_states(self.model, self.x).double().numpy()  # (N, L, H)
        projection = Projection.fit(hidden)
        states = projection.transform(hidden)
        xlim, ylim = hidden_limits(states)
        line = None
        classifier = getattr(self.model, "classifier", None)
        if isinstance(classifier, torch.nn.Linear) and classifier.out_features == 1:
            with torch.no_grad():
                ends = decision_line(classifier.weight.double().numpy(), classifier.bias.double().numpy(),
                                     xlim, ylim, None if projection.is_identity else projection)
            line = None if np.isnan(ends).any() else _rounded(ends)
        if epoch > 0:
            self.losses.append(_finite(loss))
            self.val_losses.append(_finite(val_loss))
        return {
            "type": "epoch", "epoch": epoch, "loss": _finite(loss) if epoch else None,
            "val_loss": _finite(val_loss) if epoch else None, "accuracy": round(accuracy, 4), "lr": lr,
            "states": _rounded(states), "xlim": list(xlim), "ylim": list(ylim), "line": line,
            "projection": projection.describe(),
        }
