"""A sweep's settings: the grid of option values (``--hidden-dim 8,32 --lr 0.01,0.003``), one
:class:`~squareseq.config.RunConfig` per setting, and the bounds a sweep keeps to, all checked
before any data is read or any model trained.

A grid is the cartesian product of the values given for the fields whose option metadata says
``grid=True`` (batch size, learning rate, hidden size, layers, weight decay); every other option
takes one value, shared by all settings. Plain configuration work: imports no torch.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Tuple

from squareseq.config import MAX_SEEDS, RunConfig, flag_of, options_of
from squareseq.errors import ConfigError, SquareseqError, literal

__all__ = ["GRID_FIELDS", "MAX_SETTINGS", "MAX_SEPARATE_RUNS", "Setting", "expand_grid", "check_sweep_size",
           "default_seeds"]

#: The fields a sweep takes comma lists for, in declaration order.
GRID_FIELDS: Tuple[str, ...] = tuple(f.name for f in options_of(RunConfig) if f.metadata["grid"])
#: The most settings one sweep's grid may hold, counted before the grid is built.
MAX_SETTINGS = 256
#: The most models a sweep trains one by one (settings x seeds): each is a whole training run.
MAX_SEPARATE_RUNS = 256
#: Default seeds: the batched pass trains hundreds at the cost of one run; run-by-run sweeps a few.
BATCHED_DEFAULT_SEEDS, SEPARATE_DEFAULT_SEEDS = "0-255", "0-4"


@dataclass(frozen=True)
class Setting:
    """One point of the grid: ``values`` of every grid field (resolved, defaults included) and the
    validated ``config`` it gives; ``varying`` names the grid fields given more than one value."""

    values: Dict[str, Any]
    config: RunConfig
    varying: Tuple[str, ...] = ()

    def label(self) -> str:
        """The setting as command-line options (``--hidden-dim 8 --lr 0.01``), its varying fields only;
        ``"the one setting"`` when nothing varies."""
        if not self.varying:
            return "the one setting"
        return " ".join(f"{flag_of(name, RunConfig)} {self.values[name]}" for name in self.varying)


def expand_grid(fields: Mapping[str, Any]) -> List[Setting]:
    """The settings ``fields`` stand for: ``RunConfig`` keyword arguments in which a grid field may
    hold a list or tuple of values: one setting per combination, the grid fields in their
    declaration order (:data:`GRID_FIELDS`, the first varying slowest), each field's values in the
    order given. Bounded by :data:`MAX_SETTINGS` before the product is built.

    Raises:
        ConfigError: a list for a field that takes one value, an empty list, a repeated value, too
            many settings, or a setting the config refuses (the setting named).
    """
    grid: Dict[str, Tuple[Any, ...]] = {}
    for name, value in fields.items():
        if not isinstance(value, (list, tuple)):
            continue
        if name not in GRID_FIELDS:
            lists = ", ".join("{%s}" % f for f in GRID_FIELDS)
            raise ConfigError("{%s} takes one value in a sweep; lists are taken by %s" % (name, lists),
                              (name, *GRID_FIELDS))
        if not value:
            raise ConfigError("{%s} got an empty list of values: give at least one" % name, (name,))
        if len(set(value)) != len(value):
            raise ConfigError("{%s} %s repeats a value: give each value once" % (name, literal(list(value))), (name,))
        grid[name] = tuple(value)
    count = math.prod(len(values) for values in grid.values())
    if count > MAX_SETTINGS:
        sizes = " x ".join(f"{len(values)}" for values in grid.values())
        raise ConfigError(f"the grid holds {sizes} = {count:,} settings; a sweep takes at most {MAX_SETTINGS} "
                          f"(MAX_SETTINGS): give fewer values to " + ", ".join("{%s}" % n for n in grid),
                          tuple(grid))
    varying = tuple(name for name in GRID_FIELDS if name in grid and len(grid[name]) > 1)
    shared = {name: value for name, value in fields.items() if name not in grid}
    names = [name for name in GRID_FIELDS if name in grid]
    settings = []
    for combination in itertools.product(*(grid[name] for name in names)):
        chosen = dict(zip(names, combination))
        config = _validated(RunConfig(**shared, **chosen), chosen, varying)
        values = {name: getattr(config, name) for name in GRID_FIELDS}
        settings.append(Setting(values, config, varying))
    return settings


def _validated(config: RunConfig, chosen: Dict[str, Any], varying: Tuple[str, ...]) -> RunConfig:
    """``config`` validated; its error names the setting when the grid has more than one."""
    try:
        return config.validate()
    except ConfigError as exc:
        if not varying:
            raise
        where = " ".join("{%s} %s" % (name, literal(chosen[name])) for name in varying)
        raise ConfigError(f"setting {where}: {exc.template}", tuple(dict.fromkeys((*varying, *exc.names)))) from None


def default_seeds(batched: bool) -> str:
    """The seeds a sweep trains when ``--seeds`` is not given."""
    return BATCHED_DEFAULT_SEEDS if batched else SEPARATE_DEFAULT_SEEDS


def check_sweep_size(n_settings: int, n_seeds: int, separate: bool) -> None:
    """Refuses a sweep of more models than it may train: :data:`MAX_SEPARATE_RUNS` when any
    setting trains run by run (``separate``), else :data:`~squareseq.config.MAX_SEEDS` batched models
    in all. Counted from the sizes alone, before anything is built."""
    total = n_settings * n_seeds
    bound, name, how = ((MAX_SEPARATE_RUNS, "MAX_SEPARATE_RUNS", "one by one") if separate
                        else (MAX_SEEDS, "MAX_SEEDS", "in batched passes"))
    if total > bound:
        settings = f"{n_settings} settings x " if n_settings > 1 else ""
        fewer = "give fewer seeds or fewer values" if n_settings > 1 else "give fewer seeds"
        raise SquareseqError(f"{settings}{n_seeds:,} seeds = {total:,} models; a sweep trains at most {bound:,} "
                             f"models {how} ({name}): {fewer}")
