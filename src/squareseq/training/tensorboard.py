"""TensorBoard logging as a fit-loop callback (the book's ``set_tensorboard``/``add_graph``).

:class:`TensorBoardLogger` writes, per epoch (global step = the run's 1-based epoch, which a
resumed run continues): the book's ``loss`` scalars ``{"training", "validation"}`` (as
``add_scalars``, so TensorBoard draws both on one chart), the learning rate each epoch trained
with, and any ``accuracy``/``val_accuracy`` the epoch's logs carry; :meth:`~TensorBoardLogger.log_metrics`
adds what a run computes once (its final accuracies). :meth:`~TensorBoardLogger.add_graph` traces
the model on one training batch without consuming any random draw, so logging never changes a
number. The writer is flushed and closed when a fit ends, however it ends (an interrupt included),
and reopened by the next event.

``tensorboard`` is an optional package: without it, :func:`require_tensorboard` raises a
one-line :class:`~squareseq.errors.SquareseqError` naming the extra to install.
"""
from __future__ import annotations

import datetime
import importlib.util
import warnings
from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Optional, Union

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from squareseq.errors import SquareseqError
from squareseq.training import rng
from squareseq.training.loop import Callback, FitState

__all__ = ["INSTALL_HINT", "TensorBoardLogger", "require_tensorboard", "tensorboard_available", "timestamped_dir"]

#: How to get the optional package (the end of every "missing tensorboard" message).
INSTALL_HINT = "pip install 'squareseq[tensorboard]'"


def tensorboard_available() -> bool:
    """Whether the ``tensorboard`` package can be imported (checked without importing it)."""
    try:
        return importlib.util.find_spec("tensorboard") is not None
    except (ImportError, ValueError):  # a module set to None in sys.modules (how tests hide it)
        return False


def require_tensorboard(who: str = "TensorBoard logging") -> None:
    """Raises a one-line :class:`SquareseqError` when ``tensorboard`` is not installed."""
    if not tensorboard_available():
        raise SquareseqError(f"{who} needs the optional package tensorboard: {INSTALL_HINT}")


def timestamped_dir(name: str, folder: Union[str, Path] = "runs") -> Path:
    """The book's log folder: ``{folder}/{name}_{YYYYmmddHHMMSS}``."""
    return Path(folder) / f"{name}_{datetime.datetime.now().strftime('%Y%m%d%H%M%S')}"


def graph_input(batch: Any) -> torch.Tensor:
    """A tensor the model can be traced with from a loader's ``x``: a ``PackedSequence`` (which
    tracing cannot take) is padded back to ``(N, L, F)``."""
    if isinstance(batch, PackedSequence):
        return pad_packed_sequence(batch, batch_first=True)[0]
    return batch


class TensorBoardLogger(Callback):
    """Writes a run's per-epoch scalars (and, on request, its graph) to ``log_dir``.

    Args:
        log_dir: the event files' folder; a resumed run passes the same one.
        purge_step: the first epoch this logger writes (a resumed run's ``total_epochs + 1``):
            TensorBoard then discards steps from there on that an earlier, unfinished process
            logged after its last checkpoint, so no epoch appears twice.
    """

    def __init__(self, log_dir: Union[str, Path], purge_step: Optional[int] = None):
        require_tensorboard()
        self.log_dir = Path(log_dir)
        self.purge_step = purge_step
        self._writers: Dict[str, Any] = {}  # "" for the log folder, "loss_training" for a scalars' subfolder
        self._lrs: Optional[list] = None

    def _writer(self, sub: str = "") -> Any:
        if sub not in self._writers:
            from torch.utils.tensorboard import SummaryWriter

            # each writer marks the purge in its own event file (TensorBoard purges per file)
            self._writers[sub] = SummaryWriter(str(self.log_dir / sub), purge_step=self.purge_step)
        return self._writers[sub]

    @property
    def writer(self) -> Any:
        """The log folder's ``torch.utils.tensorboard.SummaryWriter`` (opened on first use)."""
        return self._writer()

    def add_scalars(self, main_tag: str, values: Mapping[str, float], step: int) -> None:
        """``SummaryWriter.add_scalars``' layout (scalar ``main_tag`` in subfolder
        ``{main_tag}_{key}`` per key), written so that a resumed run's purge reaches every subfolder."""
        for key, value in values.items():
            self._writer(f"{main_tag.replace('/', '_')}_{key}").add_scalar(main_tag, value, global_step=step)

    def on_epoch_start(self, loop: FitState) -> None:
        # the rates this epoch trains with (a per-epoch scheduler steps at its end, before us)
        self._lrs = [float(group["lr"]) for group in loop.optimizer.param_groups]

    def on_epoch_end(self, loop: FitState, logs: Dict[str, Any]) -> None:
        step = int(logs.get("epoch", loop.epoch))
        scalars = {"training": float(logs["loss"])}
        if logs.get("val_loss") is not None:
            scalars["validation"] = float(logs["val_loss"])
        self.add_scalars("loss", scalars, step)
        for i, lr in enumerate(self._lrs or []):
            self.writer.add_scalar("learning_rate" if i == 0 else f"learning_rate/group_{i}", lr, global_step=step)
        accuracy = {name: float(logs[key]) for name, key in (("training", "accuracy"), ("validation", "val_accuracy"))
                    if logs.get(key) is not None}
        if accuracy:
            self.add_scalars("accuracy", accuracy, step)

    def on_fit_end(self, loop: FitState) -> None:
        self.close()

    def log_metrics(self, step: int, metrics: Mapping[str, Optional[float]], main_tag: str = "accuracy") -> None:
        """Scalars a run computes once (``{"test": 0.97}``) under ``main_tag`` at ``step``; None
        values are skipped. Flushed at once."""
        values = {k: float(v) for k, v in metrics.items() if v is not None}
        if values:
            self.add_scalars(main_tag, values, step)
            self.flush()

    def add_graph(self, model: nn.Module, loader: Iterable, device: Union[str, torch.device] = "cpu") -> None:
        """Traces ``model`` on the first batch of ``loader`` into the log (the book's ``add_graph``).

        Drawing the batch would consume random draws (a shuffling loader's seed), so every random
        state training reads is put back afterwards: the run's numbers stay the same."""
        saved = rng.get_state(loader)
        try:
            x, _ = next(iter(loader))
        finally:
            rng.set_state(saved, loader, "the random state before add_graph")
        was_training = model.training
        try:
            with warnings.catch_warnings():  # tracing warns of the models' shape checks: they are constants here
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                warnings.filterwarnings("ignore", "`torch.jit.trace", DeprecationWarning)
                self.writer.add_graph(model, graph_input(x).to(device))
        except Exception as exc:  # a model tracing cannot follow: one line, not the tracer's traceback
            raise SquareseqError(f"add_graph could not trace {type(model).__name__}: "
                                 f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
                                 ) from None
        finally:
            model.train(was_training)
        self.flush()

    def flush(self) -> None:
        for writer in self._writers.values():
            writer.flush()

    def close(self) -> None:
        """Flushes and closes the event files; a later event opens new ones in the same folders."""
        for writer in self._writers.values():
            writer.close()
