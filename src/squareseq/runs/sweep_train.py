"""Training a sweep: every setting of the grid (:mod:`squareseq.runs.grid`) over every seed.

A setting the batched pass trains as separate runs would (the tutorial's one-layer recurrent
models on generated squares, see :func:`~squareseq.training.many.batchable`) runs
:func:`~squareseq.training.many.train_many` over its seeds: a one-setting sweep gives exactly what
``squareseq sweep`` always gave. Any other setting (a ``--data`` file, conv models, more layers or
classes, ...) trains seed by seed through the one training core ``train`` uses,
:func:`~squareseq.runs.experiment.build_trainer` and ``StepByStep.train``, on data built once and
shared by every setting. Each model is judged on the validation split, or on the test set where
the run has none (the tutorial's way; the result says which); its test accuracy is kept beside it.

:func:`plan_sweep` does every check (sizes, data, each setting's model) before anything trains,
so a sweep that cannot run fails before its folder is claimed.

On a device other than the CPU (``--device cuda``) every setting trains run by run there: the
batched pass is CPU code. Its checks still run on the CPU.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from squareseq.config import RunConfig, check_activation_memory
from squareseq.runs.data import RunData, build_data
from squareseq.runs.experiment import build_trainer, check_setup, evaluate, resolved_config
from squareseq.runs.grid import Setting, check_sweep_size, default_seeds
from squareseq.training.guard import NonFiniteLossError, RunGuard
from squareseq.training.many import ManyResults, batchable, check_many, train_many
from squareseq.training.threads import Threads

__all__ = ["VALIDATION_SPLIT", "VALIDATION_TEST", "SweepPlan", "SettingResult", "SweepResult", "plan_sweep",
           "run_sweep", "spread"]

#: What a sweep judged its settings by: a validation split of the run's own, or the test set.
VALIDATION_SPLIT, VALIDATION_TEST = "split", "test set"

#: ``progress(done, total, text)``: told after each model a run-by-run setting trains.
Progress = Callable[[int, int, str], None]


@dataclass
class SweepPlan:
    """A checked sweep: its settings, seeds, which settings train batched, and the shared data of
    the run-by-run settings (None when every setting is batched)."""

    settings: List[Setting]
    seeds: List[int]
    batched: List[bool]
    data: Optional[RunData] = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def measured_on(self) -> Tuple[str, List[str]]:
        """What the sweep's "validation accuracy" is measured on, and the notes its result carries."""
        validation = VALIDATION_SPLIT if getattr(self.data, "val", None) is not None else VALIDATION_TEST
        notes: List[str] = [] if self.device.type == "cpu" else [
            f"trained on {self.device}, each model on its own (the batched pass runs on the CPU only)"]
        return validation, notes


def spread(values: Sequence[float]) -> Dict[str, float]:
    """Mean, standard deviation (over the seeds, ddof=0), minimum and maximum of ``values``; NaN
    (a diverged model) makes every one NaN, so a broken setting cannot look good."""
    a = np.asarray(values, dtype=float)
    if not len(a) or not np.isfinite(a).all():
        return {"mean": math.nan, "std": math.nan, "min": math.nan, "max": math.nan}
    return {"mean": float(a.mean()), "std": float(a.std()), "min": float(a.min()), "max": float(a.max())}


@dataclass
class SettingResult:
    """One setting's models: per seed the validation and test accuracy, the test counts, the last
    training and validation losses (NaN for a model whose loss diverged, named in ``failures``)."""

    setting: Setting
    batched: bool
    seeds: List[int]
    val_accuracy: List[float]
    test_accuracy: List[float]
    test_counts: List[Any]
    losses: List[float]
    val_losses: List[float]
    seconds: float
    many: Optional[ManyResults] = None  # the batched pass's own results
    failures: Dict[int, str] = field(default_factory=dict)

    def as_dict(self) -> Dict[str, Any]:
        return {
            "setting": dict(self.setting.values),
            "label": self.setting.label(),
            "batched": self.batched,
            "n_seeds": len(self.seeds),
            "val_accuracy": spread(self.val_accuracy),
            "test_accuracy": spread(self.test_accuracy),
            "failed_seeds": len(self.failures),
            "seconds": self.seconds,
            "seeds": self.records(),
        }

    def records(self) -> List[Dict[str, Any]]:
        """One dict per seed: the JSON's per-seed list and, with the setting, the CSV's rows."""
        return [
            {"seed": seed, "val_accuracy": val, "test_accuracy": test, "test_correct_per_class": counts,
             "loss": loss, "val_loss": val_loss, "error": self.failures.get(seed, "")}
            for seed, val, test, counts, loss, val_loss in zip(self.seeds, self.val_accuracy, self.test_accuracy,
                                                               self.test_counts, self.losses, self.val_losses)
        ]


@dataclass
class SweepResult:
    """Every setting's results; ``validation`` says what "validation accuracy" was measured on."""

    settings: List[SettingResult]
    validation: str
    seconds: float
    notes: List[str] = field(default_factory=list)

    @property
    def best(self) -> int:
        """The index of the setting with the highest mean validation accuracy (the first of equals;
        a setting with a diverged model never wins while another has none)."""
        means = [spread(r.val_accuracy)["mean"] for r in self.settings]
        finite = [i for i, mean in enumerate(means) if not math.isnan(mean)]
        return max(finite, key=lambda i: (means[i], -i)) if finite else 0


def plan_sweep(settings: List[Setting], seeds: Optional[Sequence[int]] = None,
               data: Optional[RunData] = None, device: Optional[torch.device] = None) -> SweepPlan:
    """Checks a sweep before anything trains: the number of models, each batched setting's sizes
    (:func:`~squareseq.training.many.check_many`), and for the run-by-run settings the data (built
    here, once, unless ``data`` is given) and each setting's model on it, as ``train`` checks them.
    ``seeds=None`` takes :func:`~squareseq.runs.grid.default_seeds`. Raises one-line
    :class:`~squareseq.errors.SquareseqError` s."""
    from squareseq.config import parse_seeds

    device = torch.device("cpu") if device is None else torch.device(device)
    batched = [batchable(s.config) and device.type == "cpu" for s in settings]
    seed_list = parse_seeds(default_seeds(all(batched)) if seeds is None else list(seeds))
    check_sweep_size(len(settings), len(seed_list), separate=not all(batched))
    for setting, is_batched in zip(settings, batched):
        if is_batched:
            check_many(seed_list, setting.config)
    separate = [s for s, b in zip(settings, batched) if not b]
    if separate and data is None:
        data = build_data(separate[0].config)  # a setting differs only in grid fields, none of them data options
    for setting in separate:
        assert data is not None
        config = resolved_config(setting.config, data).replace(seed=seed_list[0])
        if not data.generated:  # a file's sizes are known only now (build_data checked the first setting's)
            check_activation_memory(config.replace(n_train=len(data.train), n_test=len(data.test)),
                                    seq_len=data.seq_len, n_features=data.n_features, from_file=True)
        trainer, prepared = build_trainer(config, data)
        check_setup(trainer, prepared)
    return SweepPlan(list(settings), seed_list, batched, data if separate else None, device)


def run_sweep(plan: SweepPlan, threads: Threads = "auto", progress: Optional[Progress] = None) -> SweepResult:
    """Trains every setting of ``plan`` over its seeds (see the module's text)."""
    started = time.perf_counter()
    total = sum(len(plan.seeds) for b in plan.batched if not b)
    done = [0]

    def tell(text: str) -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], total, text)

    results = []
    for setting, is_batched in zip(plan.settings, plan.batched):
        if is_batched:
            results.append(_batched(setting, plan.seeds, threads))
        else:
            assert plan.data is not None
            results.append(_separately(setting, plan.seeds, plan.data, threads, tell, plan.device))
    validation, notes = plan.measured_on()
    return SweepResult(results, validation, time.perf_counter() - started, notes)


def _batched(setting: Setting, seeds: List[int], threads: Threads) -> SettingResult:
    many = train_many(seeds, setting.config, threads=threads)  # validated on the test set, as separate runs are
    return SettingResult(setting, True, list(many.seeds), list(many.accuracy), list(many.accuracy), many.counts,
                         list(many.losses), list(many.val_losses), many.seconds, many)


def train_one(config: RunConfig, data: RunData, threads: Threads = "auto", device: Any = "cpu"):
    """One model of a run-by-run setting, trained as ``train`` trains it (without a run folder) on
    ``device``: returns the trainer and the data with its labels as the loss wants them."""
    trainer, prepared = build_trainer(config, data, threads=threads, device=device)
    # the run's guard keeps the best epoch under early stopping and restores it, as train does
    guard = RunGuard(trainer)
    trainer.add_callback(guard)
    try:
        trainer.train(config.epochs, seed=config.fit_seed)
    finally:
        trainer.callbacks.remove(guard)
    guard.restore_best()
    return trainer, prepared


def _separately(setting: Setting, seeds: List[int], data: RunData, threads: Threads,
                tell: Callable[[str], None], device: torch.device) -> SettingResult:
    started = time.perf_counter()
    result = SettingResult(setting, False, list(seeds), [], [], [], [], [], 0.0)
    name = f"{setting.label()}, " if setting.varying else ""
    config = resolved_config(setting.config, data)
    for seed in seeds:
        try:
            trainer, prepared = train_one(config.replace(seed=seed), data, threads, device)
        except NonFiniteLossError as exc:
            result.failures[seed] = str(exc)
            for values in (result.val_accuracy, result.test_accuracy, result.losses, result.val_losses):
                values.append(math.nan)
            result.test_counts.append(None)
            tell(f"{name}seed {seed}: diverged")
            continue
        test = evaluate(trainer.model, prepared.test, prepared.n_classes)
        val_split = getattr(prepared, "val", None)
        val = evaluate(trainer.model, val_split, prepared.n_classes) if val_split is not None else test
        result.val_accuracy.append(float(val["accuracy"]))
        result.test_accuracy.append(float(test["accuracy"]))
        result.test_counts.append(test["correct_per_class"])
        result.losses.append(float(trainer.losses[-1]) if len(trainer.losses) else math.nan)
        result.val_losses.append(float(trainer.val_losses[-1]) if len(trainer.val_losses) else math.nan)
        on = "validation" if val_split is not None else "test"
        tell(f"{name}seed {seed}: {on} accuracy {val['accuracy']:.3f}")
    result.seconds = time.perf_counter() - started
    return result
