"""Launching torchrun from the tests, with one retry for a rank that gloo aborted.

A gloo rank has been seen to die of SIGABRT inside torch's native code ("terminate called without
an active exception"), at start-up or at exit, about once in a few hundred local launches on a
busy 2-core machine, and never where our Python code could catch it. A launch whose rank died that
way is started once more, from a clean output folder, with a warning that carries the aborted
rank's output (Python's faulthandler prints every thread's stack on SIGABRT). Every other failure,
and a second abort, fails the test as before.
"""
from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path
from typing import Callable, Optional

#: How torchrun's agent reports a rank killed by SIGABRT.
NATIVE_ABORT = "Signal 6 (SIGABRT)"


def launched_with_one_retry(launch: Callable[[], subprocess.CompletedProcess],
                            out: Optional[Path]) -> subprocess.CompletedProcess:
    """``launch()``, and once more when a rank died of SIGABRT; ``out`` (the run's output folder,
    removed before the retry) must not have existed before the first launch."""
    process = launch()
    if process.returncode == 0 or NATIVE_ABORT not in (process.stderr or ""):
        return process
    warnings.warn(f"a torchrun rank aborted (SIGABRT); launching once more. Its output:\n{process.stderr[-4000:]}",
                  stacklevel=2)
    if out is not None:
        shutil.rmtree(out, ignore_errors=True)
    return launch()
