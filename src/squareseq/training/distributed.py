"""The process group a run belongs to under ``torchrun``: who this process is, and the few
collectives the rest of squareseq needs (agree, gather, broadcast, stop together).

torchrun starts one process per rank and describes the group in environment variables
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``,
``TORCHELASTIC_RESTART_COUNT``); :func:`detect` reads them, :func:`init` joins the group with
torch.distributed (gloo on the CPU, NCCL on CUDA) and a timeout on every collective, so a rank
that dies or disagrees makes the others fail with a message instead of hanging.
Outside torchrun, :func:`detect` returns None and nothing here is used.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any, List, Mapping, Optional

import torch
import torch.distributed as dist

from squareseq.config import flag_of
from squareseq.errors import ConfigError, SquareseqError

__all__ = ["World", "detect", "init", "shutdown", "agree", "gather_objects", "broadcast_object", "any_true",
           "DEFAULT_TIMEOUT_S", "ReportedByRankZero", "raise_together"]

#: Seconds a collective waits for the other ranks before it fails (``SQUARESEQ_DIST_TIMEOUT`` overrides).
DEFAULT_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class World:
    """This process's place in a torchrun group."""

    rank: int
    world_size: int
    local_rank: int
    restart_count: int = 0  # how many times torchrun's elastic agent has restarted the group

    @property
    def is_main(self) -> bool:
        """Rank 0: the one rank that writes the run folder, the figures and the report."""
        return self.rank == 0


def detect(environ: Optional[Mapping[str, str]] = None) -> Optional[World]:
    """The world torchrun describes in ``environ`` (default ``os.environ``), or None outside torchrun
    (or a world of one process, which trains exactly as without torchrun)."""
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env or "RANK" not in env:
        return None
    try:
        world = World(rank=int(env["RANK"]), world_size=int(env["WORLD_SIZE"]),
                      local_rank=int(env.get("LOCAL_RANK", env["RANK"])),
                      restart_count=int(env.get("TORCHELASTIC_RESTART_COUNT", "0")))
    except ValueError:
        raise ConfigError("torchrun's environment is malformed: RANK, WORLD_SIZE and LOCAL_RANK must be integers "
                          f"(RANK={env.get('RANK')!r}, WORLD_SIZE={env.get('WORLD_SIZE')!r})") from None
    if world.world_size < 1 or not 0 <= world.rank < world.world_size:
        raise ConfigError(f"torchrun's environment is inconsistent: RANK={world.rank} with WORLD_SIZE="
                          f"{world.world_size}")
    return world if world.world_size > 1 else None


def _timeout_s() -> float:
    text = os.environ.get("SQUARESEQ_DIST_TIMEOUT")
    if text is None:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ConfigError(f"SQUARESEQ_DIST_TIMEOUT={text!r}: give the seconds a collective may wait, e.g. 60")
    return value


def init(world: World, device: torch.device) -> None:
    """Joins torchrun's group (gloo on the CPU, NCCL on CUDA with one GPU per local rank); a
    collective that waits longer than the timeout fails instead of hanging."""
    if dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(world.local_rank)
    timeout = datetime.timedelta(seconds=_timeout_s())
    dist.init_process_group(backend, store=_attempt_store(world, timeout), rank=world.rank,
                            world_size=world.world_size, timeout=timeout)


def _attempt_store(world: World, timeout: datetime.timedelta) -> "dist.Store":
    """The rendezvous store torchrun names (``MASTER_ADDR``/``MASTER_PORT``), with keys of this
    restart attempt only: after an elastic restart the agent's store still holds the first
    attempt's addresses, and a rank that read one would dial a process that is gone."""
    agent_store = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == str(True)
    store = dist.TCPStore(os.environ.get("MASTER_ADDR", "127.0.0.1"), int(os.environ.get("MASTER_PORT", "29500")),
                          world.world_size, is_master=not agent_store and world.rank == 0, timeout=timeout,
                          multi_tenant=not agent_store)
    return dist.PrefixStore(f"squareseq/attempt_{world.restart_count}", store)


def shutdown() -> None:
    """Leaves the group (where one was joined)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def gather_objects(value: Any) -> List[Any]:
    """Every rank's ``value``, in rank order, on every rank (picklable objects)."""
    gathered: List[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def broadcast_object(value: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``value`` on every rank."""
    box = [value]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def agree(value: Any, what: str) -> None:
    """Raises :class:`SquareseqError` on every rank when the ranks' ``value`` differ (settings, data
    sizes): ranks that disagree must not train together. ``what`` names the value in the message;
    ranks other than 0 raise it as :class:`ReportedByRankZero` (the CLI prints rank 0's line only)."""
    values = gather_objects(value)
    for rank, other in enumerate(values):
        if other != values[0]:
            kind = SquareseqError if dist.get_rank() == 0 else ReportedByRankZero  # one line, from rank 0
            raise kind(f"the ranks disagree on {what}: rank 0 has {values[0]!r}, rank {rank} has "
                       f"{other!r}; start every rank with the same command and files")


def any_true(flag: bool) -> bool:
    """Whether any rank's ``flag`` is set (a stop request on one rank stops all at the same point)."""
    tensor = torch.tensor([1 if flag else 0], dtype=torch.int32)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


class ReportedByRankZero(SquareseqError):
    """Raised on the ranks other than 0 when a step all ranks must pass failed: rank 0 says why, in
    one line, and these ranks exit non-zero without repeating it (``quiet``)."""

    quiet = True


def raise_together(error: Optional[BaseException]) -> None:
    """After a step every rank must pass (claiming the run folder, reading a checkpoint), makes
    every rank fail when any rank failed (``error``: this rank's :class:`SquareseqError`, or None):
    rank 0 raises its own error, or one naming the first rank that failed; the others raise
    :class:`ReportedByRankZero`. Nothing is raised when no rank failed."""
    message = None
    if error is not None:
        message = error.render(flag_of) if isinstance(error, ConfigError) else str(error)
    messages = gather_objects(message)
    failed = [(rank, text) for rank, text in enumerate(messages) if text is not None]
    if not failed:
        return
    if dist.get_rank() != 0:
        raise ReportedByRankZero(failed[0][1])
    if error is not None:
        raise error
    rank, text = failed[0]
    raise SquareseqError(text if text.startswith(f"rank {rank} ") else f"rank {rank}: {text}")
