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
* ``model_config`` (how to rebuild the model) and, from ``squareseq train``, ``run_config``;
* ``early_stopping`` (when on): ``patience``, ``best`` (the best validation loss, inf before
  one), ``wait``, ``best_epoch`` and ``stopped_epoch`` (None or an epoch), so a resumed run stops
  where an uninterrupted one would; and, from ``squareseq train``, ``best``: the complete state
  (these keys, untagged) of epoch ``best_epoch``, whose weights the run restores at its end.

Version 1 files (no RNG state) and the tutorial's untagged dicts still load.
"""
from __future__ import annotations

import io
import math
import os
import re
import stat
import tempfile
import warnings
from pathlib import Path
from typing import Any, BinaryIO, Dict, List, Optional, Tuple, Union

import torch

from squareseq.errors import SquareseqError
from squareseq.options import is_int, is_number

__all__ = ["CheckpointError", "FORMAT", "VERSION", "on_cpu", "save", "load", "validate", "atomic_write_bytes",
           "check_fits", "check_shapes"]

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


def on_cpu(obj: Any) -> Any:
    """``obj``'s tensors moved to the CPU (where they are, not copied): a GPU run's checkpoint loads anywhere."""
    if isinstance(obj, torch.Tensor):
        return obj.cpu()  # the tensor itself when it is on the CPU
    if isinstance(obj, dict):
        return {k: on_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(on_cpu(v) for v in obj)
    return obj


def save(path: PathLike, checkpoint: Dict[str, Any]) -> None:
    """Saves ``checkpoint`` (tagged with this format and version, its tensors on the CPU) atomically."""
    payload = on_cpu({"format": FORMAT, "version": VERSION, **checkpoint})
    buffer = io.BytesIO()  # serialized first: a full disk is then an OSError naming the file, not torch's error
    torch.save(payload, buffer)
    atomic_write_bytes(path, lambda f: f.write(buffer.getbuffer()))


def load(path: PathLike, map_location: Any = "cpu") -> Dict[str, Any]:
    """Loads a squareseq or tutorial-style checkpoint without running pickled code.

    Raises:
        CheckpointError: the file is missing, not a regular file (a folder, a named pipe that
            would block forever, a device), not a checkpoint, carries code, or lacks keys or has
            malformed ones (see :func:`validate`).
    """
    path = Path(path)
    with _open_regular(path) as file:
        try:
            with warnings.catch_warnings():  # e.g. "unexpected pickle protocol" on garbage: the error says it
                warnings.simplefilter("ignore")
                data = torch.load(file, map_location=map_location, weights_only=True)
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
    validate(data, path)
    return data


def _open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading if it is a regular file. Opened without blocking and checked
    on the open file, so a named pipe is refused instead of waiting forever for a writer."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except OSError as exc:
        raise CheckpointError(f"{path} is not a readable checkpoint ({exc.strerror or exc})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise CheckpointError(f"{path} is a folder, not a checkpoint file")
        kind = "a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a device or socket"
        raise CheckpointError(f"{path} is {kind}, not a regular file: give the path of a checkpoint file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


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


def validate(data: Dict[str, Any], path: Any) -> None:
    """Raises :class:`CheckpointError` naming the first thing in ``data`` that does not match the
    format (``path`` names the file in the message): keys, their types, the model's tensors (real
    numbers, dense), the histories, and the optimizer state's structure, so that a tampered file
    is refused when it is read, before anything is built or written from it."""
    if "format" in data:
        if data["format"] != FORMAT:
            raise CheckpointError(f"{path} has format {_brief(data['format'])}, expected {FORMAT!r}")
        version: Any = data.get("version")
        if not is_int(version) or version < 1:
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
    for key, tensor in state.items():
        _check_tensor(tensor, f"{path}: model_state_dict entry {key}")
    epoch = data.get("epoch", 0)
    if not is_int(epoch) or epoch < 0:
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
            isinstance(r, list) and all(is_number(v) and v >= 0 for v in r) for r in rates):
        raise CheckpointError(f"{path}: learning_rates must be a list of lists of finite numbers >= 0, one list "
                              "per scheduler step")
    resumed = data.get("resumed_from", [])
    if (not isinstance(resumed, list) or not all(is_int(v) and 0 <= v <= epoch for v in resumed)
            or resumed != sorted(resumed)):
        raise CheckpointError(f"{path}: resumed_from must list the epochs the run was resumed at, in order, each "
                              f"from 0 to the checkpoint's epoch {epoch}; got {_brief(resumed)}")
    optimizer = data.get("optimizer_state_dict")
    if "format" in data or optimizer not in (None, {}):
        _validate_optimizer(optimizer, state, path)
    for key in ("optimizer_state_dict", "scheduler_state_dict", "rng_state", "model_config", "run_config"):
        if key in data and data[key] is not None and not isinstance(data[key], dict):
            raise CheckpointError(f"{path}: {key} must be a dict, got {type(data[key]).__name__}")
    _validate_early_stopping(data, epoch, path)


def _validate_early_stopping(data: Dict[str, Any], epoch: int, path: Any) -> None:
    """``early_stopping`` must be counts and epochs consistent with ``epoch``; ``best`` a complete
    state (one level, no ``best`` of its own) of the epoch it names, of the same model."""
    stopping = data.get("early_stopping")
    if stopping is not None:
        def _epoch_or_none(value: Any) -> bool:
            return value is None or (is_int(value) and 1 <= value <= epoch)

        best = stopping.get("best") if isinstance(stopping, dict) else None
        if not (isinstance(stopping, dict) and is_int(stopping.get("patience")) and stopping["patience"] >= 1
                and is_int(stopping.get("wait")) and 0 <= stopping["wait"] <= epoch
                and isinstance(best, (int, float)) and not isinstance(best, bool) and not math.isnan(best)
                and best != -math.inf and _epoch_or_none(stopping.get("best_epoch"))
                and _epoch_or_none(stopping.get("stopped_epoch"))):
            raise CheckpointError(f"{path}: early_stopping must hold patience >= 1, best (a number), wait (0 to the "
                                  f"epoch {epoch}) and best_epoch, stopped_epoch (None or an epoch from 1 to {epoch}); "
                                  f"got {_brief(stopping)}")
    state = data.get("best")
    if state is None:
        return
    best_epoch = stopping.get("best_epoch") if isinstance(stopping, dict) else None
    if best_epoch is None:
        raise CheckpointError(f"{path}: best holds a best epoch's state but early_stopping names no best epoch")
    if not isinstance(state, dict) or "best" in state or "format" in state:
        raise CheckpointError(f"{path}: best must be the plain state of one epoch")
    validate({**state, "format": FORMAT, "version": VERSION}, f"{path} (best)")
    if state["epoch"] != best_epoch:
        raise CheckpointError(f"{path}: best holds epoch {state['epoch']} but early_stopping's best epoch is "
                              f"{best_epoch}")
    check_shapes({k: tuple(v.shape) for k, v in data["model_state_dict"].items()}, state["model_state_dict"],
                 f"{path} (best)")


def _check_tensor(tensor: torch.Tensor, what: str) -> None:
    """A model or optimizer tensor must be dense and hold real numbers (a complex one would lose its
    imaginary part, with only a warning, when copied into a model)."""
    if tensor.layout != torch.strided or tensor.is_quantized:
        raise CheckpointError(f"{what} is a {str(tensor.layout).replace('torch.', '')} tensor; a checkpoint holds "
                              "dense tensors only")
    if tensor.dtype.is_complex:
        raise CheckpointError(f"{what} holds complex numbers ({_dtype(tensor)}); model "
                              "weights and optimizer states are real numbers")


#: Parameter-group settings that are numbers >= 0 in every torch optimizer (``lr`` is required).
_GROUP_NUMBERS = ("lr", "initial_lr", "eps", "weight_decay", "momentum", "dampening")


def _validate_optimizer(optimizer: Any, model_state: Dict[str, torch.Tensor], path: Any) -> None:
    """The optimizer state must have ``torch.optim``'s structure: ``param_groups``, a list of dicts
    with parameter indices and numeric settings (``lr``, ``betas``, ``eps``, ...), and ``state``,
    per-parameter dicts of real tensors and numbers, their tensors shaped as their parameters (when
    the groups index exactly the model's tensors, in order, as every squareseq checkpoint does)."""
    where = f"{path}: optimizer_state_dict"
    if not (isinstance(optimizer, dict) and isinstance(optimizer.get("state"), dict)
            and isinstance(optimizer.get("param_groups"), list)):
        raise CheckpointError(f"{where} must be a dict with 'state' and 'param_groups'")
    indices: List[int] = []
    for g, group in enumerate(optimizer["param_groups"]):
        if not isinstance(group, dict):
            raise CheckpointError(f"{where} param_groups[{g}] must be a dict, got {type(group).__name__}")
        params = group.get("params")
        if not isinstance(params, list) or not all(is_int(i) and i >= 0 for i in params):
            raise CheckpointError(f"{where} param_groups[{g}] params must be a list of parameter indices, "
                                  f"got {_brief(params)}")
        indices += params
        if "lr" not in group:
            raise CheckpointError(f"{where} param_groups[{g}] has no lr")
        for key, value in group.items():
            _check_setting(key, value, f"{where} param_groups[{g}] {key}")
    if len(set(indices)) != len(indices):
        raise CheckpointError(f"{where} param_groups list a parameter index more than once")
    shapes: Optional[List[Tuple[int, ...]]] = None
    if sorted(indices) == list(range(len(model_state))):
        shapes = [tuple(t.shape) for t in model_state.values()]
    for index, entry in optimizer["state"].items():
        if not is_int(index) or index not in indices:
            raise CheckpointError(f"{where} state has an entry for {_brief(index)}, which is no parameter index "
                                  "of its param_groups")
        if not isinstance(entry, dict) or not all(isinstance(k, str) for k in entry):
            raise CheckpointError(f"{where} state {index} must map names to tensors or numbers")
        for key, value in entry.items():
            what = f"{where} state {index} {key}"
            if isinstance(value, torch.Tensor):
                _check_tensor(value, what)
                if shapes is not None and value.dim() > 0 and tuple(value.shape) != shapes[index]:
                    raise CheckpointError(f"{what} has shape {tuple(value.shape)} for a parameter of shape "
                                          f"{shapes[index]}")
                if key == "step" and (value.numel() != 1 or not math.isfinite(float(value)) or float(value) < 0):
                    raise CheckpointError(f"{what} must be one finite count >= 0")
            elif not (value is None or isinstance(value, bool) or is_number(value)):
                raise CheckpointError(f"{what} must be a tensor or a number, got {_brief(value)}")


def _check_setting(key: str, value: Any, what: str) -> None:
    """One parameter-group setting: the known numbers finite and >= 0, ``betas`` two numbers in
    [0, 1), switches True/False/None, anything else a number, string, switch or tuple of numbers."""
    if key == "params":
        return
    if isinstance(value, torch.Tensor) and value.dim() == 0 and value.dtype.is_floating_point:
        value = float(value)  # torch.optim accepts a tensor lr
    if key in _GROUP_NUMBERS:
        ok = is_number(value) and value >= 0
        expected = "a finite number >= 0"
    elif key == "betas":
        ok = isinstance(value, (list, tuple)) and len(value) == 2 and all(is_number(b) and 0 <= b < 1 for b in value)
        expected = "two numbers in [0, 1)"
    else:
        ok = (value is None or isinstance(value, (bool, str)) or is_number(value)
              or (isinstance(value, (list, tuple)) and all(is_number(v) for v in value)))
        expected = "a number, a switch or a list of numbers"
    if not ok:
        raise CheckpointError(f"{what} must be {expected}, got {_brief(value)}")


def check_shapes(shapes: Dict[str, Tuple[int, ...]], state_dict: Dict[str, Any], where: str = "checkpoint") -> None:
    """Raises :class:`CheckpointError` in one line if ``state_dict``'s tensors are not exactly the
    entries and ``shapes`` a model has (names the first missing, unexpected or differently shaped
    one): checkable from a model's description, before the model is built."""
    missing = [k for k in shapes if k not in state_dict]
    unexpected = [k for k in state_dict if k not in shapes]
    if missing:
        raise CheckpointError(f"{where} does not fit this model: missing parameter(s) {', '.join(missing)}")
    if unexpected:
        raise CheckpointError(f"{where} does not fit this model: unexpected parameter(s) {', '.join(unexpected)}")
    for key, shape in shapes.items():
        theirs = tuple(state_dict[key].shape)
        if theirs != tuple(shape):
            raise CheckpointError(f"{where} does not fit this model: {key} has shape {theirs} in the checkpoint "
                                  f"but {tuple(shape)} in the model")


def check_fits(model: torch.nn.Module, state_dict: Dict[str, Any], where: str = "checkpoint") -> None:
    """Raises :class:`CheckpointError` in one line if ``state_dict`` does not fit ``model``: names
    the first missing, unexpected, differently shaped or differently typed entry (a float64 or
    complex tensor is not silently cast into a float32 parameter)."""
    own = model.state_dict()
    check_shapes({k: tuple(v.shape) for k, v in own.items()}, state_dict, where)
    for key, value in own.items():
        theirs = state_dict[key]
        if isinstance(theirs, torch.Tensor) and theirs.dtype != value.dtype:
            raise CheckpointError(
                f"{where} does not fit this model: {key} holds {_dtype(theirs)} numbers in the checkpoint but "
                f"{_dtype(value)} in the model"
            )


def _dtype(tensor: torch.Tensor) -> str:
    return str(tensor.dtype).replace("torch.", "")
