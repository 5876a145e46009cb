"""The run folder: where a run's files go, written so that a failed run is never mistaken for a
finished one (``metrics.json`` is written last, atomically)."""
from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from squareseq.errors import ConfigError, SquareseqError, literal
from squareseq.training.checkpoint import atomic_write_bytes

__all__ = [
    "CHECKPOINT", "METRICS", "HISTORY",
    "default_run_dir", "prepare_run_dir", "resolve_checkpoint",
    "write_json", "read_json", "write_history_csv",
]

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.json"
HISTORY = "history.csv"


def default_run_dir(root: str = "runs", prefix: str = "square") -> Path:
    """A fresh folder name under ``root``, stamped with the local time."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"{prefix}-{stamp}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = Path(root) / f"{prefix}-{stamp}-{suffix}"
    return path


def prepare_run_dir(path: Path, overwrite: bool = False, resume: bool = False) -> Path:
    """Checks that ``path`` can hold a run and creates it.

    An existing folder with files in it is refused unless ``overwrite`` or ``resume`` (it must
    hold a run to continue). With ``overwrite``, the old ``metrics.json``, checkpoint and history
    are deleted first (metrics first), so the old run's results never sit beside a new run's
    partial files; other files are replaced as the new run writes them.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{{run_dir}} {literal(path)} is a file, not a folder; choose another {{run_dir}}",
                          ("run_dir",))
    if resume:
        if not (path / CHECKPOINT).is_file():
            raise SquareseqError(f"cannot resume: {path / CHECKPOINT} does not exist")
        _remove_stale_temporaries(path)
        return path
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise ConfigError(
            f"run folder {literal(path)} already exists and is not empty; pass {{overwrite}} to replace it, "
            "{resume} to continue it, or choose another {run_dir}", ("overwrite", "resume", "run_dir"))
    if overwrite and path.is_dir():
        _remove_stale_temporaries(path)
        for name in (METRICS, CHECKPOINT, HISTORY):
            try:
                (path / name).unlink(missing_ok=True)
            except OSError as exc:
                raise SquareseqError(f"cannot replace {path / name}: {exc.strerror}") from None
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SquareseqError(f"cannot create run folder {path}: {exc.strerror}") from None
    return path


def _remove_stale_temporaries(path: Path) -> None:
    """Deletes the temporaries an atomic write leaves when its process is killed mid-write."""
    for name in (CHECKPOINT, METRICS, HISTORY):
        for tmp in path.glob(f".{name}.*.tmp"):
            try:
                tmp.unlink()
            except OSError:
                pass


def resolve_checkpoint(path_or_dir: str) -> Path:
    """A checkpoint file from a run folder or a checkpoint path."""
    path = Path(path_or_dir)
    if path.is_dir():
        path = path / CHECKPOINT
        if not path.is_file():
            raise SquareseqError(f"{path_or_dir} is a folder without a {CHECKPOINT}: is it a run folder?")
    elif not path.exists():
        raise SquareseqError(f"no such run folder or checkpoint: {path_or_dir}")
    return path


def write_json(path: Path, data: Dict[str, Any]) -> None:
    """Writes ``data`` as indented JSON, atomically."""
    text = json.dumps(data, indent=2, allow_nan=True) + "\n"
    atomic_write_bytes(path, lambda f: f.write(text.encode()))


def read_json(path: Path) -> Dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise SquareseqError(f"{path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SquareseqError(f"{path} is not valid JSON ({exc})") from None


def write_history_csv(path: Path, losses: Sequence[float], val_losses: Sequence[Optional[float]]) -> None:
    """One row per epoch: ``epoch,loss,val_loss`` (full float precision)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["epoch", "loss", "val_loss"])
    for epoch, (loss, val_loss) in enumerate(zip(losses, val_losses), start=1):
        writer.writerow([epoch, repr(float(loss)), "" if val_loss is None else repr(float(val_loss))])
    atomic_write_bytes(path, lambda f: f.write(buffer.getvalue().encode()))
