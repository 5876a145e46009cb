"""How the CLI meets SIGINT and SIGTERM outside a run's own handling: a command never dies
silently, and once its results are written, a late signal cannot make its exit code untrue."""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

__all__ = ["Terminated", "command_signals", "finished"]


class Terminated(BaseException):
    """SIGTERM outside a run's own handling (while starting up, or before a command's work)."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


@contextlib.contextmanager
def command_signals() -> Iterator[None]:
    """For the command's whole life, SIGTERM ends it with a line and exit code 143 instead of
    killing it silently (a run installs its own handlers inside, and restores these); the
    previous handlers come back when the command returns."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            if handler is not None:  # None: a handler installed outside Python, which we cannot put back
                signal.signal(signum, handler)


def finished() -> None:
    """Called once a command's results are all written: a signal from now on cannot make them
    untrue, so it is ignored rather than turned into an exit code that says the work stopped."""
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)
