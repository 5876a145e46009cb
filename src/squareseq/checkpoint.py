"""Checkpoint files: written atomically, loaded without unpickling code, validated on load.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, saved with
``torch.save`` and read back with ``torch.load(weights_only=True)``, so a file that carries
pickled code is refused instead of executed.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Dict, Union

import torch

from .errors import SquareseqError

__all__ = ["CheckpointError", "FORMAT", "VERSION", "save", "load", "atomic_write_bytes"]

FORMAT = "squareseq-checkpoint"
VERSION = 1
# The tutorial's own keys: every squareseq checkpoint has them too, so either kind loads.
LEGACY_KEYS = ("epoch", "model_state_dict", "optimizer_state_dict", "loss", "val_loss")

PathLike = Union[str, "os.PathLike[str]"]


class CheckpointError(SquareseqError):
    """A file that is not a loadable checkpoint; the message says what does not match."""


def atomic_write_bytes(path: PathLike, write) -> None:
    """Calls ``write(file)`` on a temporary file beside ``path``, fsyncs it, then renames it over
    ``path``: a crash at any instant leaves the old file or the new one, never a torn one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
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
    atomic_write_bytes(path, lambda f: torch.save(payload, f))


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
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        message = str(exc)
        if "Unsupported global" in message or "Unsupported class" in message:
            raise CheckpointError(
                f"{path} holds pickled objects other than tensors and plain data; refusing to "
                "load it (it could run code). Only load such a file if you trust its source."
            ) from None
        detail = message.split("WeightsUnpickler error:")[-1].strip().splitlines()
        detail = detail[0].strip() if detail else type(exc).__name__
        raise CheckpointError(f"{path} is not a readable checkpoint ({detail})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} is not a checkpoint: it holds a {type(data).__name__}, not a dict")
    if "format" in data:
        if data["format"] != FORMAT:
            raise CheckpointError(f"{path} has format {data['format']!r}, expected {FORMAT!r}")
        if not isinstance(data.get("version"), int) or data["version"] > VERSION:
            raise CheckpointError(
                f"{path} has checkpoint version {data.get('version')!r}; this squareseq reads "
                f"versions up to {VERSION}: upgrade squareseq"
            )
    missing = [k for k in ("model_state_dict",) if k not in data]
    if missing:
        raise CheckpointError(f"{path} is not a checkpoint: missing key(s) {', '.join(missing)}")
    return data
