"""One run trained by every rank of a ``torchrun`` group with ``DistributedDataParallel``.

The same run as :func:`~squareseq.runs.experiment.run_experiment`, in meaning: N ranks with batch
B train as one process with batch N*B on the same order (see :mod:`squareseq.training.ddp` for the
shards, and what an uneven tail does). What differs:

* training runs the generic autograd step through DDP with ``torch.optim.Adam`` (never the
  fast path's flat stand-in or fused step, which bypass DDP's gradient hooks);
* validation and test metrics are computed on every rank's shard and added up, so they are the
  whole set's, identical on every rank;
* rank 0 alone claims and writes the run folder (the other ranks check that they see it:
  every rank must see the same folder); ``metrics.json`` and the checkpoint record
  ``"world_size"``, and the checkpoint holds every rank's RNG states (``"rank_rng_states"``);
* ``--resume`` continues a run under the same world size only (another is refused, as is a
  one-process checkpoint);
* a signal on any rank stops every rank after the same epoch (see
  :class:`~squareseq.training.ddp.AgreedSignals`).
"""
from __future__ import annotations

import contextlib
import signal
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch.nn.parallel import DistributedDataParallel

from squareseq.config import RunConfig, RunOptions
from squareseq.errors import ConfigError, SquareseqError
from squareseq.runs.data import RunData, Split, build_data
from squareseq.runs.experiment import (
    _resume,
    _snapshot_recorder,
    build_trainer,
    check_setup,
    evaluate,
    resolved_config,
)
from squareseq.runs.folder import CHECKPOINT, claim_run_dir
from squareseq.runs.record import stop_failed, stop_interrupted
from squareseq.runs.run_parts import complete_record, make_guard, write_run
from squareseq.stepbystep import StepByStep
from squareseq.training import checkpoint as ckpt
from squareseq.training import metrics
from squareseq.training.choices import resolve_device
from squareseq.training.ddp import AgreedSignals, EpochSync, ShardedLoader, ValSums, all_reduce_sum, check_shards
from squareseq.training.distributed import World, agree, any_true, broadcast_object, init, raise_together, shutdown
from squareseq.training.fastpath import TrainParts
from squareseq.training.guard import NonFiniteLossError, RunGuard, SignalStop, TrainingInterrupted, signal_number
from squareseq.training.loop import Callback, make_train_step
from squareseq.training.optim import FlatAdam
from squareseq.training.rng import get_state as get_rng_state
from squareseq.training.rng import set_state as set_rng_state

__all__ = ["DistributedTrainer", "evaluate_sharded", "rank_device", "run_distributed", "VISIBLE_MARKER"]

#: The file rank 0 writes into the run folder (and removes) to check that every rank sees it.
VISIBLE_MARKER = ".squareseq.ranks"


class _Parts(TrainParts):
    """The parts of a distributed ``train()``: :class:`EpochSync` runs before every other callback."""

    sync: Optional[Callback] = None

    def callbacks(self, others: List[Callback]) -> List[Callback]:
        return [self.sync] if self.sync is not None else []


class DistributedTrainer(StepByStep):
    """A :class:`StepByStep` for one rank of a DDP run: the rank's shard of the training split,
    the validation split's shard, the DDP step, and checkpoints holding every rank's RNG states.
    ``fast`` is off on purpose: the fast path's stand-ins bypass DDP's gradient hooks."""

    def __init__(self, model: torch.nn.Module, loss_fn: Any, optimizer: torch.optim.Optimizer, *, world: World,
                 train: Split, validation: Split, batch_size: int, seed: int, threads: Any, device: torch.device):
        super().__init__(model, loss_fn, optimizer, threads=threads, fast=False, device=device)
        self.world = world
        self.ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        self.signals: Optional[AgreedSignals] = None
        self.set_loaders(ShardedLoader(train.x, train.y, train.lengths, batch_size, world.world_size, world.rank,
                                       seed=seed),
                         ShardedLoader(validation.x, validation.y, validation.lengths, batch_size, world.world_size,
                                       world.rank, shuffle=False))
        self._val = ValSums(model, loss_fn)
        self._val_blocks = -(-len(validation) // (batch_size * world.world_size))

    def _train_parts(self, n_epochs: Optional[int] = None) -> TrainParts:
        """The generic autograd step through DDP (``n_epochs``, which sizes the fused step's proof, has no use here)."""
        assert isinstance(self.train_loader, ShardedLoader) and isinstance(self.val_loader, ShardedLoader)
        parts = _Parts(self.train_loader, self.val_loader,
                       make_train_step(self.ddp, self.loss_fn, self.optimizer, self.clipping), self._val.step)
        parts.sync = EpochSync([self.train_loader, self.val_loader], self._val, self._val_blocks,
                               self.world.world_size, self.signals)
        return parts

    def checkpoint_state(self, epoch: Optional[int] = None) -> Dict[str, Any]:
        """The state :class:`StepByStep` keeps, plus every rank's RNG states (a collective: every
        rank calls it at the same epoch boundary, as the run guard does)."""
        from squareseq.training.distributed import gather_objects

        state = super().checkpoint_state(epoch)
        state["rank_rng_states"] = gather_objects(get_rng_state())
        return state

    def restore_state(self, data: Dict[str, Any], restore_rng: bool = True, where: str = "checkpoint") -> None:
        super().restore_state(data, restore_rng, where)
        states = data.get("rank_rng_states")
        if restore_rng and isinstance(states, list) and len(states) == self.world.world_size:
            set_rng_state(states[self.world.rank], None, where)


def rank_device(name: str, world: World) -> torch.device:
    """The device of this rank: the CPU, or the GPU of its local rank (``cuda:LOCAL_RANK``)."""
    device = resolve_device(name)
    if device.type == "cuda":
        if ":" in name:
            raise ConfigError("{device} %s: under torchrun every rank takes the GPU of its local rank; give {device} "
                              "cuda" % name, ("device",))
        if world.local_rank >= torch.cuda.device_count():
            raise ConfigError("{device} cuda: local rank %d has no GPU of its own (this machine has %d); start at most "
                              "that many processes per node" % (world.local_rank, torch.cuda.device_count()),
                              ("device",))
        return torch.device("cuda", world.local_rank)
    if device.type != "cpu":
        raise ConfigError("{device} %s: torchrun runs train on cpu (gloo) or cuda (NCCL)" % name, ("device",))
    return device


def build_distributed_trainer(config: RunConfig, data: RunData, world: World, threads: Any,
                              device: torch.device) -> Tuple[DistributedTrainer, RunData]:
    """The run's trainer as :func:`~squareseq.runs.experiment.build_trainer` builds it (same draws,
    same model), with ``torch.optim.Adam`` in place of a ``FlatAdam`` (fresh: the same numbers)."""
    base, data = build_trainer(config, data, threads=threads, device=device)
    optimizer = base.optimizer
    if isinstance(optimizer, FlatAdam):
        optimizer.close()  # the parameters go back to their own tensors, for DDP's hooks
        optimizer = torch.optim.Adam(base.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    assert isinstance(optimizer, torch.optim.Optimizer)
    trainer = DistributedTrainer(base.model, base.loss_fn, optimizer, world=world, train=data.train,
                                 validation=data.validation, batch_size=config.batch_size, seed=config.fit_seed,
                                 threads=threads, device=device)
    if base.scheduler is not None:
        trainer.set_lr_scheduler(base.scheduler, per_batch=base.is_batch_lr_scheduler)
    if config.clip_grad > 0:
        trainer.set_clip_grad_norm(config.clip_grad)
    trainer.set_early_stopping(config.early_stopping)
    return trainer, data


def evaluate_sharded(model: torch.nn.Module, split: Split, n_classes: int, world: World,
                     loss_fn: Any = None) -> Dict[str, Any]:
    """:func:`~squareseq.runs.experiment.evaluate` of the whole ``split``, each rank evaluating
    ``split[rank::W]``: counts, confusion matrix and loss sums are added up over the ranks."""
    part = split.take(torch.arange(world.rank, len(split), world.world_size))
    local = evaluate(model, part, n_classes, loss_fn) if len(part) else None
    k = 2 * n_classes
    packed = torch.zeros(k + n_classes * n_classes + 2, dtype=torch.float64)
    if local is not None:
        packed[:k] = torch.tensor(local["correct_per_class"], dtype=torch.float64).reshape(-1)
        packed[k:-2] = torch.tensor(local["confusion_matrix"], dtype=torch.float64).reshape(-1)
        packed[-2] = local.get("loss", 0.0) * len(part)
        packed[-1] = len(part)
    total = all_reduce_sum(packed)
    counts = total[:k].round().long().reshape(n_classes, 2)
    result: Dict[str, Any] = {
        "correct_per_class": counts.tolist(),
        "accuracy": metrics.accuracy(counts),
        "confusion_matrix": total[k:-2].round().long().reshape(n_classes, n_classes).tolist(),
    }
    if loss_fn is not None:
        result["loss"] = float(total[-2] / total[-1])
    return result


def run_distributed(config: RunConfig, options: Optional[RunOptions], world: World,
                    callbacks: Optional[List[Callback]] = None):
    """:func:`~squareseq.runs.experiment.run_experiment` for this rank of ``world`` (see the module's
    docstring); every rank calls it with the same arguments. Returns a
    :class:`~squareseq.runs.experiment.RunResult` on every rank (its ``run_dir`` only on rank 0)."""
    config.validate()
    options = (options or RunOptions(run_dir=None)).validate()
    signals = SignalStop(deferred=False) if options.handle_signals else None
    try:
        with signals if signals is not None else contextlib.nullcontext():
            try:
                return _run(config, options, world, callbacks or [], signals)
            except TrainingInterrupted:
                raise
            except KeyboardInterrupt as exc:
                raise TrainingInterrupted(signal_number(exc, signals), 0, phase="setup") from None
    finally:
        shutdown()


def _claim(options: RunOptions, world: World, stack: contextlib.ExitStack) -> Optional[Path]:
    """Rank 0 claims the run folder; every rank then checks that it sees it (a marker rank 0
    writes and removes). Returns the folder on every rank (None without one)."""
    error: Optional[BaseException] = None
    run_dir = None
    if world.is_main and options.run_dir is not None:
        try:
            run_dir = stack.enter_context(claim_run_dir(options.run_dir, overwrite=options.overwrite,
                                                        resume=options.resume))
        except SquareseqError as exc:
            error = exc
    raise_together(error)
    token = uuid.uuid4().hex if world.is_main else None
    if run_dir is not None:
        (run_dir / VISIBLE_MARKER).write_text(token or "")
    shared = broadcast_object((None if run_dir is None else str(run_dir.resolve()), token))
    if shared[0] is None:
        return None
    folder = Path(shared[0])
    if not world.is_main:
        try:
            seen = (folder / VISIBLE_MARKER).read_text()
        except OSError:
            seen = None
        error = None if seen == shared[1] else SquareseqError(
            f"rank {world.rank} cannot see the run folder {folder} that rank 0 writes (a run folder on a path the "
            "ranks cannot all see): give --out a folder on a file system every rank mounts")
    try:
        raise_together(error)
    finally:
        if run_dir is not None:
            (run_dir / VISIBLE_MARKER).unlink(missing_ok=True)
    return folder


def _resume_here(trainer: DistributedTrainer, run_dir: Path, config: RunConfig,
                 world: World) -> Tuple[List[int], Optional[Dict[str, Any]]]:
    """Every rank loads the checkpoint; one trained with another world size, or in one process,
    is refused (on every rank, before anything changes)."""
    saved_world = ckpt.load(run_dir / CHECKPOINT).get("world_size", 1)
    if saved_world != world.world_size:
        raise SquareseqError(
            f"{run_dir / CHECKPOINT} was trained by {saved_world} process(es) and this torchrun has "
            f"{world.world_size}: resume it with as many (torchrun --nproc-per-node {saved_world} ...)"
            if saved_world != 1 else f"{run_dir / CHECKPOINT} was trained in one process: resume it without torchrun")
    return _resume(trainer, run_dir, config)


def _run(config: RunConfig, options: RunOptions, world: World, callbacks: List[Callback],
         signals: Optional[SignalStop]):
    from squareseq.runs.experiment import RunResult

    device = rank_device(options.device, world)
    if options.tensorboard:
        raise ConfigError("{tensorboard} is not supported under torchrun yet: drop it", ("tensorboard",))
    init(world, device)
    data = build_data(config)
    config = resolved_config(config, data)
    sizes = {"training set": len(data.train), "test set": len(data.test),
             **({"validation split": len(data.val)} if data.val is not None else {})}
    agree((config.to_dict(), sizes, options.resume), "the run's settings, data sizes and --resume")
    check_shards(sizes, world.world_size, world.rank)
    threads = 1 if options.threads == "auto" and device.type == "cpu" else options.threads  # one per rank
    trainer, data = build_distributed_trainer(config, data, world, threads, device)
    check_setup(trainer, data)
    with contextlib.ExitStack() as stack:
        run_dir = _claim(options, world, stack)
        resumed_from: List[int] = []
        resumed_best = None
        if options.resume:
            assert run_dir is not None
            error = None
            try:
                resumed_from, resumed_best = _resume_here(trainer, run_dir, config, world)
            except SquareseqError as exc:
                error = exc
            raise_together(error)
        writer = run_dir if world.is_main else None  # the folder rank 0 writes; None on the others
        for callback in callbacks:
            trainer.add_callback(callback)
        recorder = None
        if writer is not None and options.figures and options.animation:
            recorder = _snapshot_recorder(trainer, data, writer if options.resume else None)
        extra = {"run_config": config.to_dict(), "resumed_from": resumed_from, "preprocessing": data.preprocessing,
                 "world_size": world.world_size}
        guard = make_guard(trainer, writer, options, extra, signals, resumed_best,
                           guard_signals=AgreedSignals(signals) if signals is not None else None)
        trainer.signals = guard.signals if isinstance(guard.signals, AgreedSignals) else None
        try:
            result, record = _train_and_evaluate(trainer, guard, config, options, data, writer, world, signals,
                                                 resumed_from)
        finally:
            trainer.callbacks.remove(guard)
            if recorder is not None:
                trainer.callbacks.remove(recorder)
        if writer is None:
            return RunResult(trainer, result[0], record, None)
        write_run(trainer, guard, writer, record, options, config, data, recorder, signals)
        return RunResult(trainer, result[0], record, writer)


def _train_and_evaluate(trainer: DistributedTrainer, guard: RunGuard, config: RunConfig, options: RunOptions,
                        data: RunData, writer: Optional[Path], world: World, signals: Optional[SignalStop],
                        resumed_from: List[int]) -> Tuple[Tuple[torch.Tensor], Dict[str, Any]]:
    """Trains, then evaluates on the shards; a stop (an agreed signal, a NaN loss, which every rank
    sees alike) rolls back to the last completed epoch and rank 0 records it."""
    started = time.perf_counter()
    stopping = trainer.early_stopping
    try:
        remaining = 0 if stopping is not None and stopping.stopped else config.epochs - trainer.total_epochs
        with torch.autograd.set_detect_anomaly(options.detect_anomaly):
            trainer.train(remaining, seed=None if options.resume else config.fit_seed)
        train_seconds = time.perf_counter() - started
        best_epoch = guard.restore_best()
        trainer.to("cpu")
        test_metrics = evaluate_sharded(trainer.model, data.test, data.n_classes, world)
        val_metrics = evaluate_sharded(trainer.model, data.val, data.n_classes, world, trainer.loss_fn) \
            if data.val is not None else None
        if signals is not None and any_true(signals.signum is not None):  # a signal as training ended
            raise KeyboardInterrupt
    except NonFiniteLossError as exc:
        raise stop_failed(trainer, guard, config, writer, exc, signals) from None
    except KeyboardInterrupt as exc:  # an agreed stop: torchrun's SIGTERM unless the ranks caught another
        raise stop_interrupted(trainer, guard, config, writer, exc, signals, default=signal.SIGTERM) from None
    record = {**complete_record(trainer, config, options, data, test_metrics, val_metrics, best_epoch, resumed_from,
                                train_seconds), "world_size": world.world_size}
    return (torch.tensor(test_metrics["correct_per_class"]),), record
