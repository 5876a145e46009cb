"""A sweep split over torchrun's ranks: which models each rank trains, and the one result the
ranks' parts make together.

The sweep's models, the pairs (setting, seed) in the one-process order (settings in grid order,
each over every seed), are cut into ``world_size`` contiguous runs of nearly equal length
(:func:`share`: lengths differ by at most one, so any number of seeds works on any number of
ranks; a rank may get nothing when there are fewer models than ranks). Each rank trains its
part of every setting it touches as the one-process sweep trains a setting
(:func:`~squareseq.runs.sweep_train.run_sweep`: the batched pass over those seeds, or run by run),
and :func:`merge` puts the parts back in the one-process order.

What is equal to the one-process sweep: every seed's data, initial weights and shuffles, so its
test counts. The batched pass's kernels round in the last bit differently with the number of
models stacked together (losses differ by about 1e-8), so a seed that sits on a knife's edge
could in principle end elsewhere after many epochs; compare sweeps by counts, and losses with a
tolerance, as :mod:`squareseq.training.many` says for batched against separate runs.
"""
from __future__ import annotations

import hashlib
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from squareseq.runs.sweep_train import Progress, SettingResult, SweepPlan, SweepResult, run_sweep
from squareseq.training.many import ManyResults
from squareseq.training.threads import Threads

__all__ = ["Part", "share", "train_share", "merge", "data_fingerprint"]

#: One rank's work on one setting: the setting's index and its result for the rank's seeds.
Part = Tuple[int, SettingResult]


def share(n_settings: int, n_seeds: int, world_size: int, rank: int) -> List[Tuple[int, slice]]:
    """Rank ``rank``'s part of a sweep of ``n_settings`` x ``n_seeds`` models: ``(setting index,
    slice of the seeds)`` pairs, a contiguous run of the setting-major model order."""
    total = n_settings * n_seeds
    lo, hi = rank * total // world_size, (rank + 1) * total // world_size
    parts = []
    for s in range(n_settings):
        a, b = max(lo, s * n_seeds), min(hi, (s + 1) * n_seeds)
        if a < b:
            parts.append((s, slice(a - s * n_seeds, b - s * n_seeds)))
    return parts


def train_share(plan: SweepPlan, world_size: int, rank: int, threads: Threads = "auto",
                progress: Optional[Progress] = None) -> List[Part]:
    """Trains rank ``rank``'s part of ``plan`` (see :func:`share`); returns one :data:`Part` per
    setting it touched."""
    parts: List[Part] = []
    for index, seeds in share(len(plan.settings), len(plan.seeds), world_size, rank):
        sub = SweepPlan([plan.settings[index]], plan.seeds[seeds], [plan.batched[index]], plan.data, plan.device)
        parts.append((index, run_sweep(sub, threads=threads, progress=progress).settings[0]))
    return parts


def _join_many(setting_config: Any, pieces: Sequence[ManyResults]) -> ManyResults:
    seeds = [seed for p in pieces for seed in p.seeds]
    return ManyResults(
        seeds=seeds, counts=[c for p in pieces for c in p.counts], accuracy=[a for p in pieces for a in p.accuracy],
        losses=[v for p in pieces for v in p.losses], val_losses=[v for p in pieces for v in p.val_losses],
        loss_history=np.concatenate([p.loss_history for p in pieces], axis=1),
        config={"seeds": f"{len(seeds)} seeds", **setting_config.to_dict()},
        seconds=max(p.seconds for p in pieces))  # the parts trained at the same time: wall time


def _join(pieces: Sequence[SettingResult]) -> SettingResult:
    first = pieces[0]
    many = None
    if all(p.many is not None for p in pieces):
        many = _join_many(first.setting.config, [p.many for p in pieces if p.many is not None])
    failures: Dict[int, str] = {}
    for p in pieces:
        failures.update(p.failures)
    return SettingResult(
        first.setting, first.batched, [s for p in pieces for s in p.seeds],
        [v for p in pieces for v in p.val_accuracy], [v for p in pieces for v in p.test_accuracy],
        [c for p in pieces for c in p.test_counts], [v for p in pieces for v in p.losses],
        [v for p in pieces for v in p.val_losses], max(p.seconds for p in pieces), many, failures)


def merge(plan: SweepPlan, parts_by_rank: Sequence[Sequence[Part]], seconds: float) -> SweepResult:
    """The sweep the ranks' parts (in rank order) make together, settings and seeds in the
    one-process order; ``seconds`` is the sweep's wall time."""
    pieces: Dict[int, List[SettingResult]] = {}
    for parts in parts_by_rank:
        for index, result in parts:
            pieces.setdefault(index, []).append(result)
    missing = [i for i in range(len(plan.settings)) if i not in pieces]
    if missing:
        raise RuntimeError(f"no rank trained settings {missing}")  # a bug in share, never bad input
    settings = [_join(pieces[i]) for i in range(len(plan.settings))]
    validation, notes = plan.measured_on()
    return SweepResult(settings, validation, seconds, notes)


def data_fingerprint(plan: SweepPlan) -> Optional[str]:
    """A digest of the run-by-run settings' data (None without such data): ranks that read a file
    must read the same one."""
    if plan.data is None:
        return None
    digest = hashlib.sha256()
    for split in (plan.data.train, plan.data.val, plan.data.test):
        if split is not None:
            for tensor in (split.x, split.y):
                digest.update(np.ascontiguousarray(tensor.detach().cpu().numpy()).tobytes())
    return digest.hexdigest()[:16]
