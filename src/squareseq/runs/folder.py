"""The run folder: where a run's files go, written so that a failed run is never mistaken for a
finished one (``metrics.json`` is written last, atomically), by one process at a time (a lock)."""
from __future__ import annotations

import csv
import io
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Sequence, Union

from squareseq.errors import ConfigError, SquareseqError, literal
from squareseq.runs.lock import LOCK_FILE, RunFolderLock
from squareseq.training.checkpoint import atomic_write_bytes

__all__ = [
    "CHECKPOINT", "BEST", "METRICS", "HISTORY", "model_checkpoint",
    "default_run_dir", "claim_run_dir", "prepare_run_dir", "remove_stale_temporaries", "resolve_checkpoint",
    "write_json", "read_json", "write_history_csv",
]

#: The last completed epoch's checkpoint: what ``--resume`` continues from.
CHECKPOINT = "checkpoint.pt"
#: The best epoch's checkpoint (same format), written under early stopping: the weights the run
#: restored at its end, tested, drew its figures with, and that ``evaluate`` and ``predict`` use.
BEST = "best.pt"
METRICS = "metrics.json"
HISTORY = "history.csv"

PathLike = Union[str, "os.PathLike[str]"]


def default_run_dir(root: str = "runs", prefix: str = "square") -> Path:
    """A fresh folder name under ``root``, stamped with the local time."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"{prefix}-{stamp}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = Path(root) / f"{prefix}-{stamp}-{suffix}"
    return path


#: Files that mark a folder as squareseq's: a run's record, checkpoint and history, a sweep's record,
#: and the lock file a killed run leaves behind.
RUN_MARKERS = (METRICS, CHECKPOINT, HISTORY, "sweep.json", LOCK_FILE)


@contextmanager
def claim_run_dir(path: PathLike, overwrite: bool = False, resume: bool = False) -> Iterator[Path]:
    """Creates run folder ``path`` if needed, takes its lock (one writer at a time, see
    :class:`~squareseq.runs.lock.RunFolderLock`), checks that it can hold the run, and holds the
    lock until the ``with`` block ends.

    An existing folder with files in it is refused unless ``overwrite`` (it must hold a squareseq
    run or sweep: other folders are never replaced) or ``resume`` (it must hold a checkpoint).
    With ``overwrite``, the old ``metrics.json``, checkpoint and history are deleted first (metrics
    first), so the old run's results never sit beside a new run's partial files; other files are
    replaced as the new run writes them. Every check and deletion happens under the lock. A folder
    this call created is removed again when the block fails while it is still empty.

    Raises:
        RunFolderBusy: another process holds the folder (a :class:`ConfigError`).
        ConfigError, SquareseqError: the folder cannot hold the run; nothing in it changed.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{{run_dir}} {literal(path)} is a file, not a folder; choose another {{run_dir}}",
                          ("run_dir",))
    if resume and not (path / CHECKPOINT).is_file():
        raise SquareseqError(f"cannot resume: {path / CHECKPOINT} does not exist")
    created = not path.exists()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SquareseqError(f"cannot create run folder {path}: {exc.strerror}") from None
    lock = RunFolderLock(path)
    finished = False
    try:
        lock.acquire()
        if not resume:
            _check_replaceable(path, overwrite)
        yield path
        finished = True
    finally:
        lock.release()
        if created and not finished:
            try:
                path.rmdir()  # only while empty: a failed run's files stay
            except OSError:
                pass


def prepare_run_dir(path: PathLike, overwrite: bool = False, resume: bool = False) -> Path:
    """Checks that ``path`` can hold a run and creates it, as :func:`claim_run_dir` does (under the
    folder's lock, released on return)."""
    with claim_run_dir(path, overwrite=overwrite, resume=resume) as folder:
        return folder


def _check_replaceable(path: Path, overwrite: bool) -> None:
    """Refuses a folder with files in it, unless ``overwrite`` and it holds a squareseq run (whose
    record, checkpoint and history are then deleted, metrics first)."""
    entries = [entry.name for entry in path.iterdir() if entry.name != LOCK_FILE]
    if not entries:
        return
    if not overwrite:
        raise ConfigError(
            f"run folder {literal(path)} already exists and is not empty; pass {{overwrite}} to replace it, "
            "{resume} to continue it, or choose another {run_dir}", ("overwrite", "resume", "run_dir"))
    if not any((path / name).exists() for name in RUN_MARKERS if name != LOCK_FILE):
        raise ConfigError(
            f"{literal(path)} is not a squareseq run folder (it holds no {METRICS}, {CHECKPOINT} or {HISTORY}) and "
            "is not empty: {overwrite} only replaces a run; choose another {run_dir}", ("overwrite", "run_dir"))
    remove_stale_temporaries(path)
    for name in (METRICS, CHECKPOINT, BEST, HISTORY):
        try:
            (path / name).unlink(missing_ok=True)
        except OSError as exc:
            raise SquareseqError(f"cannot replace {path / name}: {exc.strerror}") from None


def remove_stale_temporaries(path: Path) -> None:
    """Deletes the temporaries an atomic write leaves when its process is killed mid-write."""
    for name in (CHECKPOINT, BEST, METRICS, HISTORY, "report.html"):
        for tmp in Path(path).glob(f".{name}.*.tmp"):
            try:
                tmp.unlink()
            except OSError:
                pass


def model_checkpoint(run_dir: PathLike) -> Path:
    """The checkpoint holding a run's trained model: ``best.pt`` where the run kept its best epoch
    (early stopping restored it at the end), else ``checkpoint.pt`` (the last epoch)."""
    best = Path(run_dir) / BEST
    return best if best.is_file() else Path(run_dir) / CHECKPOINT


def resolve_checkpoint(path_or_dir: str) -> Path:
    """A checkpoint file from a checkpoint path or a run folder (its :func:`model_checkpoint`)."""
    path = Path(path_or_dir)
    if path.is_dir():
        path = model_checkpoint(path)
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
