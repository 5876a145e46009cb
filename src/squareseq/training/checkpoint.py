"""Checkpoint files: written atomically, loaded without unpickling code, validated on load.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, saved with
``torch.save`` and read back with ``torch.load(weights_only=True)``, so a file that carries
pickled code is refused instead of executed.

Format version 2 (what :meth:`StepByStep.save_checkpoint` writes):

* ``format``, ``version``: ``"squareseq-checkpoint"``, 2;
* the tutorial's keys ``epoch``, ``model_state_dict``, ``optimizer_state_dict``, ``loss``,
  ``val_loss`` (so the tutorial's own code can read our files);
* ``scheduler_state_dict`` (when a scheduler is set), ``learning_rates``;
* ``rng_state``: torch (and CUDA), numpy, ``random`` and the training loader's generators (see
  :mod:`squareseq.training.rng`), captured at the end of epoch ``epoch``: restoring them makes a resumed
  run draw the same shuffles as an uninterrupted one;
* ``model_config`` (how to rebuild the model) and, from ``squareseq train``, ``run_config``.

Version 1 files (no RNG state) and the tutorial's untagged dicts still load.
"""
from __future__ import annotations

import io
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any, Dict, Tuple, Union

import torch

from squareseq.errors import SquareseqError

__all__ = ["CheckpointError", "FORMAT", "VERSION", "save", "load", "atomic_write_bytes", "check_fits"]

FORMAT = "squareseq-checkpoint"
VERSION = 2
# The tutorial's own keys: every squareseq checkpoint has them too, so either kind loads.
LEGACY_KEYS = ("epoch", "model_state_dict", "optimizer_state_dict", "loss", "val_loss")

PathLike = Union[str, "os.PathLike[str]"]


class CheckpointError(SquareseqError):
    """A file that is not a loadable checkpoint; the message says what does not match."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: PathLike, write) -> None:
    """Calls ``write(file)`` on a temporary file beside ``path``, fsyncs it, then renames it over
    ``path``: a crash at any instant leaves the old file or the new one, never a torn one. An
    ``OSError`` (a full disk) names ``path``."""
    path = Path(path)
    try:
        _atomic_write(path, write)
    except OSError as exc:
        if exc.filename is None:
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
        raise


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates owner-only files; give the result the mode a plain open() would
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def save(path: PathLike, checkpoint: Dict[str, Any]) -> None:
    """Saves ``checkpoint`` (tagged with this format and version) atomically."""
    payload = {"format": FORMAT, "version": VERSION, **checkpoint}
    buffer = io.BytesIO()  # serialized first: a full disk is then an OSError naming the file, not torch's error
    torch.save(payload, buffer)
    atomic_write_bytes(path, lambda f: f.write(buffer.getbuffer()))


def load(path: PathLike, map_location: Any = "cpu") -> Dict[str, Any]:
    """Loads a squareseq or tutorial-style checkpoint without running pickled code.

    Raises:
        CheckpointError: the file is missing, not a checkpoint, carries code, or lacks keys.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file")
    try:
        with warnings.catch_warnings():  # e.g. "unexpected pickle protocol" on garbage: the error says it
            warnings.simplefilter("ignore")
            data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        message = str(exc)
        if _REFUSED_GLOBAL.search(message):
            raise CheckpointError(
                f"{path} holds pickled objects other than tensors and plain data; refusing to "
                "load it (it could run code). Only load such a file if you trust its source."
            ) from None
        raise CheckpointError(f"{path} is not a readable checkpoint ({_reason(exc)})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} is not a checkpoint: it holds a {type(data).__name__}, not a dict")
    _validate(data, path)
    return data


#: How torch's weights-only unpickler says a file names a global it will not load (a callable such as
#: ``os.system``, or a class): "Unsupported global" in older releases, "unsupported GLOBAL ... is
#: blocked" in newer ones.
_REFUSED_GLOBAL = re.compile(r"unsupported (global|class)|whose module \S+ is blocked", re.IGNORECASE)


def _reason(exc: BaseException) -> str:
    """The line of torch's error that says what is wrong with the file, never its advice to load
    it again with ``weights_only=False`` (which would run whatever code the file carries)."""
    text = str(exc).split("WeightsUnpickler error:")[-1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    useful = [line for line in lines if not any(advice in line for advice in _ADVICE)]
    return useful[0] if useful else type(exc).__name__


#: Parts of torch's load errors that advise, rather than say what is wrong.
_ADVICE = ("weights_only", "Weights only load failed", "Check the documentation of torch.load")


def _brief(value: Any) -> str:
    """A one-line, short repr of an unexpected value for an error message."""
    text = " ".join(repr(value).split())
    return text if len(text) <= 60 else text[:57] + "..."


def _validate(data: Dict[str, Any], path: Path) -> None:
    """Raises :class:`CheckpointError` naming the first thing in ``data`` that does not match."""
    if "format" in data:
        if data["format"] != FORMAT:
            raise CheckpointError(f"{path} has format {_brief(data['format'])}, expected {FORMAT!r}")
        version = data.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise CheckpointError(f"{path} has an invalid checkpoint version {_brief(version)}")
        if version > VERSION:
            raise CheckpointError(
                f"{path} has checkpoint version {version}; this squareseq reads versions up to {VERSION}: "
                "upgrade squareseq"
            )
        required: Tuple[str, ...] = LEGACY_KEYS
    else:
        required = ("model_state_dict",)
    missing = [k for k in required if k not in data]
    if missing:
        raise CheckpointError(f"{path} is not a complete checkpoint: missing key(s) {', '.join(missing)}")
    state = data["model_state_dict"]
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise CheckpointError(f"{path}: model_state_dict must map parameter names to tensors")
    epoch = data.get("epoch", 0)
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise CheckpointError(f"{path}: epoch must be a non-negative integer, got {_brief(epoch)}")
    for key in ("loss", "val_loss"):
        values = data.get(key, [])
        if not isinstance(values, (list, tuple)) or not all(
                v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values):
            raise CheckpointError(f"{path}: {key} must be a list of numbers")
    if "format" in data and len(data["loss"]) != epoch:
        raise CheckpointError(f"{path}: epoch is {epoch} but loss holds {len(data['loss'])} value(s)")
    if "format" in data and len(data["val_loss"]) != len(data["loss"]):
        raise CheckpointError(f"{path}: loss holds {len(data['loss'])} value(s) but val_loss {len(data['val_loss'])}")
    rates = data.get("learning_rates", [])
    if not isinstance(rates, list) or not all(
            isinstance(r, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in r)
            for r in rates):
        raise CheckpointError(f"{path}: learning_rates must be a list of lists of numbers")
    resumed = data.get("resumed_from", [])
    if not isinstance(resumed, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in resumed):
        raise CheckpointError(f"{path}: resumed_from must be a list of epochs")
    optimizer = data.get("optimizer_state_dict")
    if "format" in data and not (isinstance(optimizer, dict) and isinstance(optimizer.get("state"), dict)
                                 and isinstance(optimizer.get("param_groups"), list)):
        raise CheckpointError(f"{path}: optimizer_state_dict must be a dict with 'state' and 'param_groups'")
    for key in ("optimizer_state_dict", "scheduler_state_dict", "rng_state", "model_config", "run_config"):
        if key in data and data[key] is not None and not isinstance(data[key], dict):
            raise CheckpointError(f"{path}: {key} must be a dict, got {type(data[key]).__name__}")


def check_fits(model: torch.nn.Module, state_dict: Dict[str, Any], where: str = "checkpoint") -> None:
    """Raises :class:`CheckpointError` in one line if ``state_dict`` does not fit ``model``: names
    the first missing, unexpected or differently shaped entry."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    if missing:
        raise CheckpointError(f"{where} does not fit this model: missing parameter(s) {', '.join(missing)}")
    if unexpected:
        raise CheckpointError(f"{where} does not fit this model: unexpected parameter(s) {', '.join(unexpected)}")
    for key, value in own.items():
        theirs = state_dict[key]
        if tuple(theirs.shape) != tuple(value.shape):
            raise CheckpointError(
                f"{where} does not fit this model: {key} has shape {tuple(theirs.shape)} in the checkpoint "
                f"but {tuple(value.shape)} in the model"
            )
