"""``squareseq sweep`` under torchrun: every rank trains its share of the models
(:mod:`squareseq.runs.sweep_shard`), rank 0 gathers them and writes the sweep folder once.

Every step that can fail on one rank (reading the options, checking the plan, claiming the
folder, training, writing) ends in a collective that tells every rank how the others fared
(:func:`together`): when any rank failed, rank 0 prints one line naming it and every rank exits
non-zero, none waits for a rank that is gone (collectives time out, see
:mod:`squareseq.training.distributed`). Ranks other than 0 print no errors and write nothing.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import time
from typing import Any, Callable, Dict, Optional, Sequence, TypeVar

from squareseq.config import RunConfig, RunOptions, flag_of, options_of
from squareseq.errors import ConfigError, SquareseqError

from .commands import EXIT_OK, one_line

__all__ = ["RankFailed", "cmd_sweep_distributed", "together", "settings_key"]

EXIT_USAGE, EXIT_FAILURE = 2, 1
T = TypeVar("T")


class RankFailed(Exception):
    """A step failed on some rank: ``error`` is what rank 0 reports (its own exception, or one
    naming the failed rank) and ``code`` the exit code every rank returns."""

    def __init__(self, error: BaseException, code: int, lost: bool = False):
        super().__init__(str(error))
        self.error, self.code, self.lost = error, code, lost  # lost: the group is broken, no collective now


def _line(exc: BaseException) -> str:
    if isinstance(exc, ConfigError):
        return one_line(exc.render(flag_of))
    if isinstance(exc, (SquareseqError, OSError)):
        return one_line(exc)
    return f"{type(exc).__name__}: {one_line(exc)}"


def _code(exc: BaseException) -> int:
    return EXIT_USAGE if isinstance(exc, SquareseqError) else EXIT_FAILURE


def together(rank: int, world_size: int, step: Callable[[], T], share: bool = False) -> Any:
    """Runs ``step`` on this rank; returns its value, or with ``share`` every rank's value (rank
    order: keep those small, they travel to every rank). When it failed on any rank, raises
    :class:`RankFailed` on every rank instead: rank 0's own error where it failed there, else a
    :class:`SquareseqError` naming the first rank that failed."""
    from squareseq.training.distributed import gather_objects

    error: Optional[BaseException] = None
    value: Any = None
    try:
        value = step()
    except Exception as exc:  # noqa: BLE001 - reported by rank 0, with the rank that failed
        error = exc
    sent = value if share else None
    try:
        outcomes = gather_objects((None, sent) if error is None else (_line(error), None))
    except Exception as exc:  # noqa: BLE001 - a rank died or timed out: no collective is possible now
        raise RankFailed(SquareseqError(f"lost the other ranks ({_line(exc)}); see their output above"),
                         EXIT_FAILURE, lost=True) from None
    failed = [(r, message) for r, (message, _) in enumerate(outcomes) if message is not None]
    if not failed:
        return [v for _, v in outcomes] if share else value
    if error is not None and rank == 0:
        raise RankFailed(error, _code(error))
    first, message = failed[0]
    raise RankFailed(SquareseqError(f"rank {first} of {world_size}: {message}"),
                     _code(error) if error is not None else EXIT_USAGE)


def settings_key(args: argparse.Namespace) -> Dict[str, Any]:
    """What every rank must agree on: each option of the sweep, by its flag."""
    names = [f.name for cls in (RunConfig, RunOptions) for f in options_of(cls) if hasattr(args, f.name)]
    key = {flag_of(name, RunConfig if hasattr(RunConfig, name) else RunOptions): getattr(args, name)
           for name in names}
    key.update({"--seeds": args.seeds, "--out": None if args.out is None else str(args.out)})
    return key


def _shown(value: Any) -> str:
    if value is None:
        return "the default"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def _agree(key: Dict[str, Any], keys: Sequence[Dict[str, Any]]) -> None:
    for rank, other in enumerate(keys):
        for name in sorted(set(key) | set(other)):
            if other.get(name) != keys[0].get(name):
                raise SquareseqError(f"the ranks disagree on {name}: rank 0 has {_shown(keys[0].get(name))}, "
                                     f"rank {rank} has {_shown(other.get(name))}; start every rank with the same "
                                     "command and files")


def cmd_sweep_distributed(args: argparse.Namespace, world: Any, prepare: Callable[[], Any]) -> int:
    """Runs the sweep of ``args`` as rank ``world.rank`` of ``world.world_size``; ``prepare()``
    parses the options into ``(settings, seeds, options)`` as the one-process sweep does."""
    import torch

    from squareseq.training import distributed

    distributed.init(world, torch.device("cpu"))  # gloo: the ranks exchange Python objects only
    try:
        return _sweep(args, world, prepare)
    except RankFailed as failure:
        expected = isinstance(failure.error, (SquareseqError, OSError))
        if world.is_main and expected:
            print(f"squareseq: error: {_line(failure.error)}", file=sys.stderr, flush=True)
        if not failure.lost:  # the others exit once rank 0 has said why (torchrun then stops the rest)
            with contextlib.suppress(Exception):
                distributed.gather_objects(None)
        if world.is_main and not expected:
            raise failure.error from None  # a bug: the CLI's one line (or the traceback, when asked)
        return failure.code
    finally:
        distributed.shutdown()


def _sweep(args: argparse.Namespace, world: Any, prepare: Callable[[], Any]) -> int:
    import torch

    from squareseq.training.distributed import agree

    rank, size = world.rank, world.world_size
    # before any parsing, so that a mismatch is named as such
    keys = together(rank, size, lambda: settings_key(args), share=True)
    together(rank, size, lambda: _agree(keys[rank], keys))
    settings, seeds, options = together(rank, size, prepare)
    from squareseq.runs.folder import claim_run_dir, default_run_dir
    from squareseq.runs.sweep_shard import data_fingerprint, merge, train_share
    from squareseq.runs.sweep_train import plan_sweep
    from squareseq.training.choices import resolve_device

    def plan_here():
        device = resolve_device(options.device)
        if device.type == "cuda":  # one GPU per local rank, as training under torchrun uses them
            device = torch.device("cuda", world.local_rank % torch.cuda.device_count())
        plan = plan_sweep(settings, seeds, device=device)
        return plan, data_fingerprint(plan)

    plan, fingerprint = together(rank, size, plan_here)
    together(rank, size, lambda: agree(fingerprint, "the data file's content"))
    if options.figures and rank == 0:
        import matplotlib

        matplotlib.use("Agg")
    with contextlib.ExitStack() as stack:
        # rank 0 alone claims the folder (and holds its lock for the whole sweep), before anything trains
        out = together(rank, size, lambda: stack.enter_context(claim_run_dir(
            args.out or default_run_dir(prefix="sweep"), overwrite=options.overwrite)) if rank == 0 else None)
        started = time.perf_counter()

        def progress(done: int, total: int, text: str) -> None:
            print(f"[rank {rank}] [{done}/{total}] {text}", file=sys.stderr, flush=True)

        parts = together(rank, size, lambda: train_share(plan, size, rank, threads=options.threads,
                                                         progress=None if args.quiet else progress), share=True)
        result = merge(plan, parts, time.perf_counter() - started) if rank == 0 else None
        together(rank, size, lambda: _save(result, out, options.figures) if rank == 0 else None)
    if rank == 0 and not args.quiet:
        assert result is not None
        from squareseq.runs.sweep import format_summary
        from squareseq.runs.sweep_report import format_table

        many = result.settings[0].many
        print(format_summary(many) if len(result.settings) == 1 and many is not None else format_table(result))
        print(f"sweep folder: {out} (trained by {size} ranks)")
    return EXIT_OK


def _save(result: Any, out: Any, figures: bool) -> None:
    from squareseq.runs.sweep_report import save_settings_sweep

    save_settings_sweep(result, out, figures=figures)
