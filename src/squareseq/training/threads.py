"""How many intra-op threads torch uses while squareseq trains.

Tiny models run with **one** intra-op thread by default. Their kernels are far too small to be
split across threads, so extra threads bring no speed; but each kernel still synchronises its
thread pool, and when another process keeps a core busy those threads wait for a time slice.
Measured on a two-core machine with torch's default of two threads: a busy neighbour made
training 1x-6x slower (up to 150x for a hidden-2 RNN over a million sequences); with one thread
the same run keeps its quiet speed. Larger models (over :data:`TINY_MODEL_PARAMETERS`
parameters) keep torch's default. Tensors this small are never split across threads, so the
thread count does not change any number.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Optional, Union

import torch

from squareseq.config import MAX_THREADS
from squareseq.errors import SquareseqError

__all__ = ["TINY_MODEL_PARAMETERS", "Threads", "resolve_threads", "intra_op_threads", "set_threads"]

#: Models with at most this many parameters count as tiny and train on one thread by default.
TINY_MODEL_PARAMETERS = 1_000_000

#: ``"auto"`` (one thread for tiny models), None (leave torch's setting) or a thread count.
Threads = Union[str, int, None]


def resolve_threads(threads: Threads = "auto", model: Optional[torch.nn.Module] = None) -> Optional[int]:
    """The thread count to use, or None to leave torch's setting alone.

    Args:
        threads: ``"auto"``, None or an int from 1 to :data:`~squareseq.config.MAX_THREADS`.
        model: the model to train; ``"auto"`` picks one thread when it is tiny (or unknown).
    """
    if threads is None:
        return None
    if threads == "auto":
        if model is None:
            return 1
        n_parameters = sum(p.numel() for p in model.parameters())
        return 1 if n_parameters <= TINY_MODEL_PARAMETERS else None
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= MAX_THREADS:
        raise SquareseqError(f"threads must be 'auto', None or an integer in [1, {MAX_THREADS}] (MAX_THREADS: 4 per "
                             f"CPU), got {threads!r}")
    return threads


@contextmanager
def intra_op_threads(n: Optional[int]) -> Iterator[None]:
    """Runs the block with ``n`` intra-op threads (None: unchanged), then restores the count."""
    previous = torch.get_num_threads()
    if n is None or n == previous:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def set_threads(threads: Threads = "auto", model: Optional[torch.nn.Module] = None) -> int:
    """Sets the intra-op thread count for the rest of the process (for command-line entry
    points) and returns the count in effect."""
    n = resolve_threads(threads, model)
    if n is not None and n != torch.get_num_threads():
        torch.set_num_threads(n)
    return torch.get_num_threads()
