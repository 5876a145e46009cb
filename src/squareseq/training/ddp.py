"""Data-parallel training's pieces under ``torchrun``: each rank's shard of an epoch, the loss
sums all ranks add up, and a stop that every rank takes at the same epoch boundary.

* :func:`shard_order`: the indices rank ``r`` of ``W`` trains on in an epoch, as torch's
  ``DistributedSampler(shuffle=True, seed=fit_seed, drop_last=True)`` gives them after
  ``set_epoch(epoch)``: one permutation per epoch (the same on every rank), cut to a multiple of
  ``W`` (the last ``n % W`` sequences of that epoch's permutation sit the epoch out; the next
  epoch's permutation differs), then ``order[r::W]``. Every rank then takes the same number of
  steps with batches of the same size, so DDP's gradient average over the ranks is the gradient
  of the union of their batches: batch ``i`` of all ranks together is the block
  ``order[i*W*B:(i+1)*W*B]``, the batch a one-process run with batch ``W*B`` takes on that order.
* :class:`ShardedLoader`: the batches of one rank's shard (padded tensors or packed sequences).
* :class:`EpochSync`: at every epoch end, one all-reduce makes the training loss, the validation
  loss and a stop request those of all ranks, before any other callback reads them.
* :class:`AgreedSignals`: a :class:`~squareseq.training.guard.SignalStop` that tells the run
  guard of a signal only once every rank has agreed to stop (at an epoch boundary).
"""
from __future__ import annotations

import signal
from typing import Any, Iterator, List, Optional

import torch
import torch.distributed as dist
from torch import nn

from squareseq.data.squares import pack_padded
from squareseq.errors import SquareseqError
from squareseq.training.distributed import ReportedByRankZero
from squareseq.training.guard import SignalStop, interrupt
from squareseq.training.loop import Callback, FitState

__all__ = ["shard_order", "ShardedLoader", "ValSums", "EpochSync", "AgreedSignals", "all_reduce_sum",
           "check_shards"]


def shard_order(n: int, world_size: int, rank: int, seed: int, epoch: int, shuffle: bool = True) -> torch.Tensor:
    """Rank ``rank``'s indices of an epoch (0-based ``epoch``), as ``DistributedSampler`` with
    ``drop_last=True`` gives them; unshuffled (``shuffle=False``, for evaluation): ``range(n)[rank::W]``,
    nothing dropped."""
    if not shuffle:
        return torch.arange(rank, n, world_size)
    generator = torch.Generator()
    generator.manual_seed(seed + epoch)
    order = torch.randperm(n, generator=generator)
    return order[: n - n % world_size][rank::world_size]


def check_shards(sizes: dict, world_size: int, rank: int = 0) -> None:
    """Every split needs at least one sequence per rank (a rank without any could not take a step).

    Raises:
        SquareseqError: naming the first split that is too small for ``world_size`` ranks (on
            ranks other than ``0`` as :class:`ReportedByRankZero`: every rank finds it, rank 0 says it).
    """
    kind = SquareseqError if rank == 0 else ReportedByRankZero
    for name, n in sizes.items():
        if n < world_size:
            raise kind(f"the {name} holds {n} sequence(s), fewer than the {world_size} ranks: every rank "
                                 f"needs at least one; start fewer processes (--nproc-per-node) or give more data")


class ShardedLoader:
    """One rank's batches of ``batch_size`` from its shard of every epoch (:func:`shard_order`).

    ``x`` ``(N, L, F)``, ``y``, optional ``lengths`` (then batches are packed); call
    :meth:`set_epoch` before each pass (0-based, as ``DistributedSampler.set_epoch``). Draws nothing
    from torch's global generator."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, lengths: Optional[torch.Tensor], batch_size: int,
                 world_size: int, rank: int, seed: int = 0, shuffle: bool = True):
        self.x, self.y, self.lengths = x, y, lengths
        self.batch_size, self.world_size, self.rank = int(batch_size), world_size, rank
        self.seed, self.shuffle, self.epoch = seed, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def indices(self) -> torch.Tensor:
        return shard_order(len(self.y), self.world_size, self.rank, self.seed, self.epoch, self.shuffle)

    def __len__(self) -> int:
        n = len(self.y)
        m = n // self.world_size if self.shuffle else len(range(self.rank, n, self.world_size))
        return -(-m // self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        index = self.indices()
        for start in range(0, len(index), self.batch_size):
            rows = index[start: start + self.batch_size]
            if self.lengths is None:
                yield [self.x[rows], self.y[rows]]
            else:
                lengths = self.lengths[rows]
                yield pack_padded(self.x[rows, : int(lengths.max())], lengths), self.y[rows]


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The sum of ``tensor`` over the ranks (a new CPU tensor; NCCL reduces on this rank's GPU)."""
    work = tensor.detach().clone()
    if dist.get_backend() == "nccl":
        work = work.cuda()
    dist.all_reduce(work, op=dist.ReduceOp.SUM)
    return work.cpu()


class ValSums:
    """A validation step that also keeps each batch's loss sum and size, so that the ranks can add
    them up batch by batch (:class:`EpochSync`)."""

    def __init__(self, model: nn.Module, loss_fn: Any):
        self.model, self.loss_fn = model, loss_fn
        self.sums: List[torch.Tensor] = []
        self.counts: List[int] = []

    def reset(self) -> None:
        self.sums, self.counts = [], []

    def step(self, x: Any, y: torch.Tensor) -> torch.Tensor:
        loss = self.loss_fn(self.model(x), y).detach()
        self.sums.append(loss.double() * len(y))
        self.counts.append(len(y))
        return loss


class EpochSync(Callback):
    """First callback of every distributed epoch: sets the loaders' epoch, and at the epoch end
    replaces this rank's losses with those of all ranks (one all-reduce) and agrees on a stop.

    The training loss becomes the mean over ranks of their epoch losses (every rank has as many
    batches of the same sizes, so this is the mean of the whole batches' losses); the validation
    loss the mean over the global batches ``j`` of ``sum_r loss_sum[r, j] / sum_r count[r, j]``,
    which is what a one-process run with batch ``W*B`` reports for the same split."""

    def __init__(self, loaders: List[ShardedLoader], val: Optional[ValSums], val_batches: int, world_size: int,
                 signals: Optional["AgreedSignals"] = None):
        self.loaders, self.val, self.val_batches = loaders, val, val_batches
        self.world_size, self.signals = world_size, signals

    def on_epoch_start(self, loop: FitState) -> None:
        for loader in self.loaders:
            loader.set_epoch(loop.epoch - 1)
        if self.val is not None:
            self.val.reset()

    def on_epoch_end(self, loop: FitState, logs: dict) -> None:
        k = self.val_batches
        packed = torch.zeros(2 + 2 * k, dtype=torch.float64)
        packed[0] = logs["loss"]
        packed[1] = 1.0 if self.signals is not None and self.signals.requested else 0.0
        if self.val is not None and self.val.sums:
            n = len(self.val.sums)
            packed[2: 2 + n] = torch.stack(self.val.sums).reshape(-1).cpu()
            packed[2 + k: 2 + k + n] = torch.tensor(self.val.counts, dtype=torch.float64)
        total = all_reduce_sum(packed)
        loss = float(total[0] / self.world_size)
        loop.history.losses[-1] = logs["loss"] = loss
        if self.val is not None and logs.get("val_loss") is not None:
            sums, counts = total[2: 2 + k], total[2 + k:]
            val_loss = float((sums / counts).mean())
            loop.history.val_losses[-1] = logs["val_loss"] = val_loss
        if total[1] > 0 and self.signals is not None:
            self.signals.agree()


class AgreedSignals(SignalStop):
    """What the run guard sees of a rank's :class:`SignalStop` (``real``, the installed one): its
    :attr:`signum` stays None until :meth:`agree` (called by :class:`EpochSync` on every rank when
    any rank received a signal), so that every rank stops after the same epoch and none waits in a
    collective for a rank that stopped. Never installed as a handler itself."""

    def __init__(self, real: SignalStop):
        super().__init__()
        self.real = real

    @property
    def requested(self) -> bool:
        """Whether this rank received a signal."""
        return self.real.signum is not None

    def agree(self) -> None:
        self.signum = self.real.signum or signal.SIGTERM  # another rank's signal: torchrun's is SIGTERM

    def begin_stop(self) -> None:
        self.stopping = True
        self.real.begin_stop()

    def protected(self):  # the real handler's protection
        return self.real.protected()

    def check(self) -> None:
        if self.signum is not None and not self.stopping:
            self.begin_stop()
            raise interrupt(self.signum)

