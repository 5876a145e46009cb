"""One writer per run folder: an exclusive ``fcntl.flock`` on ``.squareseq.lock`` inside it.

The lock file holds the writer's process id (for the message a second writer gets). The kernel
releases a flock when its process dies, however it dies, so a lock file left by a killed run is
not a lock: the next writer takes it over. The file is deleted (while still locked) when the
writer releases it; a writer that locked a file another one deleted meanwhile locks again.
"""
from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path
from typing import Any, Optional

from squareseq.errors import ConfigError, literal

__all__ = ["LOCK_FILE", "RunFolderBusy", "RunFolderLock"]

LOCK_FILE = ".squareseq.lock"


class RunFolderBusy(ConfigError):
    """Another process holds the run folder's lock."""


class RunFolderLock:
    """Context manager: holds the exclusive lock of run folder ``path`` (which must exist).

    Raises :class:`RunFolderBusy` at once (never waits) when another process holds it.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.file = self.path / LOCK_FILE
        self._fd: Optional[int] = None
        self.created = False  # whether acquiring created the lock file (nothing was there)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "RunFolderLock":
        while self._fd is None:
            self.created = not self.file.exists()
            fd = os.open(self.file, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                owner = _read_pid(self.file)
                who = f"process {owner}" if owner is not None else "another process"
                raise RunFolderBusy(
                    f"run folder {literal(self.path)} is in use by {who} (another squareseq run writing it); wait "
                    "for it to finish, or choose another {run_dir}", ("run_dir",)) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.file).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # its holder deleted the file as we opened it: lock the new one
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            self._fd = fd
        return self

    def release(self) -> None:
        """Deletes the lock file, then releases the lock (a no-op when not held)."""
        if self._fd is None:
            return
        try:
            self.file.unlink()
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "RunFolderLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _read_pid(path: Path) -> Optional[int]:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
