"""Writing a run's files atomically, and making a whole phase of them durable at once.

Every file is written to a temporary file beside it and renamed over it: a crash or a signal at
any instant leaves the old file or the new one, never a torn one. Making it durable (``fsync``
of the file and of its folder) costs tens of milliseconds each on some disks; the figure phase
writes a dozen files, so inside :func:`deferred_sync` the fsyncs wait for the batch's
:meth:`SyncBatch.sync`: one pass over the files, each folder once. The run record
(:mod:`squareseq.runs.record`) calls it before ``metrics.json`` says that the files are there,
so that the record never names a file the disk might not hold.

Importing this module loads neither torch nor matplotlib (the report page uses it).
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Dict, Iterator, List, Optional, Union

__all__ = ["SyncBatch", "deferred_sync", "write_file", "fsync_path"]

PathLike = Union[str, "os.PathLike[str]"]


class SyncBatch:
    """The files written (renamed into place) but not yet made durable."""

    def __init__(self) -> None:
        self.pending: List[Path] = []

    def sync(self) -> None:
        """fsyncs every pending file, then each of their folders once; the batch is empty after.
        A file removed meanwhile is skipped."""
        folders: Dict[Path, None] = {}
        for path in self.pending:
            try:
                fsync_path(path)
            except FileNotFoundError:
                continue
            folders[path.parent] = None
        for folder in folders:
            try:
                fsync_path(folder)
            except OSError:  # some file systems cannot fsync a folder; the files themselves are synced
                pass
        self.pending.clear()


_BATCH: contextvars.ContextVar[Optional[SyncBatch]] = contextvars.ContextVar("squareseq_sync_batch", default=None)


@contextlib.contextmanager
def deferred_sync() -> Iterator[SyncBatch]:
    """Inside, :func:`write_file` renames files into place without fsyncing them; the caller
    makes them durable with the yielded batch's :meth:`~SyncBatch.sync` (nothing is synced on
    leaving: a phase that stops decides what to record first)."""
    batch = SyncBatch()
    token = _BATCH.set(batch)
    try:
        yield batch
    finally:
        _BATCH.reset(token)


def fsync_path(path: PathLike) -> None:
    """fsyncs a file or a folder by name."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_file(path: PathLike, write: Callable[[IO[bytes]], Any], mode: Optional[int] = None) -> Path:
    """Calls ``write(file)`` on a temporary file beside ``path`` and renames it over ``path``;
    durable at once, or with the batch of an enclosing :func:`deferred_sync`. The file gets
    ``mode`` (default: what a plain ``open`` would give). An ``OSError`` names ``path``."""
    path = Path(path)
    batch = _BATCH.get()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                if batch is None:
                    os.fsync(f.fileno())
            os.chmod(tmp, (0o666 & ~_umask()) if mode is None else mode)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        if exc.filename is None:
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
        raise
    if batch is not None:
        batch.pending.append(path)
    else:
        with contextlib.suppress(OSError):
            fsync_path(path.parent)
    return path
