"""The ``train``, ``evaluate``, ``sweep``, ``plot`` and ``export`` commands: parsed options in, library calls
out. Each imports the library (and so torch) only once its options have been checked."""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from squareseq.config import RunConfig, RunOptions, options_of
from squareseq.errors import ConfigError, SquareseqError, literal

from .signals import finished

__all__ = ["cmd_train", "cmd_evaluate", "cmd_sweep", "cmd_plot", "cmd_export", "cmd_playground", "format_counts",
           "one_line"]

EXIT_OK, EXIT_NUMERICAL = 0, 3


def one_line(message: object) -> str:
    """``message`` on one line: whatever a value's repr spread over several lines is joined."""
    return " ".join(str(message).split())


def format_counts(counts: Any, names: Optional[Sequence[str]] = None) -> str:
    """The tutorial's counts ``[[n_correct, n_total], ...]`` and the accuracy, as ``train`` prints
    them; with ``names``, a line per class too (``  clockwise: 75/75``)."""
    from squareseq.training.metrics import accuracy

    n_correct, n_total = int(counts[:, 0].sum()), int(counts[:, 1].sum())
    per_class = "".join(f"  {name}: {int(c)}/{int(t)}\n" for name, (c, t) in zip(names or (), counts.tolist()))
    return (f"correct per class [n_correct, n_total]: {counts.tolist()}\n{per_class}"
            f"accuracy: {accuracy(counts):.4f} ({n_correct}/{n_total})")


def _fields(args: argparse.Namespace, cls: type) -> Dict[str, Any]:
    return {f.name: getattr(args, f.name) for f in options_of(cls) if hasattr(args, f.name)}


def _explicit_train_options(argv: Sequence[str]) -> Dict[str, Any]:
    """The ``train`` options given on the command line ``argv``, by field name."""
    from .parser import build_parser

    known, _ = build_parser(explicit_only=True).parse_known_args(list(argv))
    return {k: v for k, v in vars(known).items() if k != "command"}


def _resume_config(run_dir: Path, argv: Sequence[str]) -> RunConfig:
    """The stored configuration of the run in ``run_dir``, with the new ``--epochs``; refuses
    options that contradict the run."""
    explicit = _explicit_train_options(argv)
    if explicit.get("out") is not None and Path(explicit["out"]).resolve() != run_dir.resolve():
        raise ConfigError(f"--out {literal(explicit['out'])} differs from --resume {literal(run_dir)}: a resumed run "
                          "stays in its folder (drop --out)")
    from squareseq.runs.folder import CHECKPOINT
    from squareseq.runs.inference import stored_config
    from squareseq.training.checkpoint import load  # torch loads from here on

    path = run_dir / CHECKPOINT  # the folder itself is prepared once, by run_experiment
    if not path.exists():
        raise SquareseqError(f"cannot resume: {path} does not exist")
    saved = load(path)
    from squareseq.training.distributed import detect

    ranks = saved.get("world_size", 1)
    if ranks != 1 and detect() is None:
        raise SquareseqError(f"{path} was trained by {ranks} ranks under torchrun: resume it with as many, "
                             f"torchrun --nproc-per-node {ranks} -m squareseq train --resume {run_dir}")
    config = stored_config(saved, str(path), required=True)
    for f in options_of(RunConfig):
        if f.name != "epochs" and f.name in explicit and explicit[f.name] != getattr(config, f.name):
            given, stored = literal(explicit[f.name]), literal(getattr(config, f.name))
            raise ConfigError(f"{{{f.name}}} {given} contradicts the run being resumed ({{{f.name}}} {stored}); "
                              "only {epochs} may change on {resume}", (f.name, "epochs", "resume"))
    return config.replace(epochs=explicit["epochs"]) if "epochs" in explicit else config


def _elastic_restart(args: argparse.Namespace) -> bool:
    """Whether this is torchrun's elastic restart (``TORCHELASTIC_RESTART_COUNT`` > 0) of a run whose
    ``--out`` folder already holds a checkpoint: then it continues from it, as ``--resume`` would."""
    if args.resume is not None or args.out is None:
        return False
    restarts = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")  # read here: torch loads only later
    return restarts.isdigit() and int(restarts) > 0 and (Path(args.out) / "checkpoint.pt").is_file()


def cmd_train(args: argparse.Namespace, argv: Sequence[str]) -> int:
    if _elastic_restart(args):
        args.resume, args.overwrite = args.out, False
    resume = args.resume is not None
    if resume:  # the options first: they refuse --overwrite with --resume before any file is read
        run_dir = Path(args.resume)
        options = RunOptions(run_dir=run_dir, resume=True, **_fields(args, RunOptions)).validate()
        config = _resume_config(run_dir, argv)
    else:
        config = RunConfig(**_fields(args, RunConfig)).validate()
        from squareseq.runs.folder import default_run_dir  # torch loads from here on

        run_dir = Path(args.out or default_run_dir())
        options = RunOptions(run_dir=run_dir, **_fields(args, RunOptions)).validate()
    if options.figures:
        import matplotlib

        matplotlib.use("Agg")  # the CLI only writes files; never open windows
    from squareseq.runs.experiment import run_experiment
    from squareseq.training.callbacks import ProgressBar
    from squareseq.training.distributed import detect
    from squareseq.training.guard import NonFiniteLossError, TrainingInterrupted

    world = detect()  # under torchrun: one data-parallel run over every rank; rank 0 alone speaks
    quiet = args.quiet or (world is not None and not world.is_main)
    try:
        if world is None:
            result = run_experiment(config, options, callbacks=[ProgressBar(disable=True if args.quiet else None)])
        else:
            from squareseq.runs.distributed_run import run_distributed

            result = run_distributed(config, options, world, callbacks=[ProgressBar(disable=True if quiet else None)])
            run_dir = result.run_dir or run_dir  # the folder rank 0 chose
    except TrainingInterrupted as exc:
        if world is not None and not world.is_main:
            return exc.exit_code
        again = f"squareseq train --resume {run_dir} --epochs {config.epochs}"
        if world is not None:
            again = f"torchrun --nproc-per-node {world.world_size} -m {again}"
        if exc.phase == "setup":
            print(f"squareseq: {exc}; nothing in {run_dir} was changed", file=sys.stderr)
        elif exc.phase == "figures":
            print(f"squareseq: {exc}; the results are in {Path(run_dir) / 'metrics.json'} (\"interrupted\", listing "
                  f"the missing figures); draw them with: squareseq plot {run_dir}", file=sys.stderr)
        else:
            print(f"squareseq: {exc}; checkpoint and metrics so far are in {run_dir}; continue with: {again}",
                  file=sys.stderr)
        return exc.exit_code
    except NonFiniteLossError as exc:
        if world is None or world.is_main:
            print(f"squareseq: error: {one_line(exc)} (in {Path(run_dir) / 'checkpoint.pt'})", file=sys.stderr)
        return EXIT_NUMERICAL
    finished()  # the run folder is whole and says "complete": a late signal must not say otherwise
    note = result.metrics.get("data", {}).get("layout_note")
    if note and (world is None or world.is_main):  # said even with --quiet: it decides what was learnt
        print(f"squareseq: note: {note}", file=sys.stderr)
    if not quiet:
        print(format_counts(result.counts))
        print(f"run folder: {run_dir}")
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace, argv: Sequence[str]) -> int:
    generated_only = [flag for flag, name in (("--test-seed", "test_seed"), ("--n-test", "n_test"))
                      if getattr(args, name) is not None]
    if args.data is not None and generated_only:
        raise SquareseqError(f"{generated_only[0]} redraws a run's generated squares; it does not apply with --data")
    if args.data is not None and args.data.suffix.lower() in (".csv", ".ts") and args.layout == "NCL":
        raise SquareseqError(f"--data {args.data} is read as steps then features, not as an (N, C, L) array: drop "
                             "--layout NCL")
    if args.data is None and args.layout is not None:
        raise SquareseqError("--layout goes with --data FILE (the run's own data is read in the layout it was "
                             "trained with)")
    from squareseq.runs.evaluation import labelled_split, run_test_split
    from squareseq.runs.experiment import evaluate
    from squareseq.runs.inference import load_run

    run = load_run(args.run)
    if args.data is not None:
        split, source = labelled_split(run, args.data, args.layout), str(args.data)
    else:
        changes = {name: getattr(args, name) for name in ("test_seed", "n_test") if getattr(args, name) is not None}
        config = run.config.replace(**changes).validate()
        split, source = run_test_split(run, config), "the run's test split"
    if run.model(split.x[:1]).shape[1] not in (1, run.n_classes):
        raise SquareseqError(f"{args.run}: the model's outputs do not fit its {run.n_classes} classes")
    result = evaluate(run.model, split, run.n_classes)
    import torch

    print(f"evaluated on {source} ({len(split)} sequences)")
    print(format_counts(torch.tensor(result["correct_per_class"]), run.class_names))
    return EXIT_OK


def _sweep_options(args: argparse.Namespace) -> Any:
    """The sweep's settings, seeds (None: the default) and options, checked."""
    from squareseq.config import parse_seeds
    from squareseq.runs.grid import expand_grid

    seeds = None
    if args.seeds is not None:  # else the default of how the settings train (batched or run by run)
        try:
            seeds = parse_seeds(args.seeds)
        except ValueError as exc:
            raise SquareseqError(f"--seeds: {one_line(exc)}") from None
    settings = expand_grid(_fields(args, RunConfig))  # each grid field's values are a tuple here
    return settings, seeds, RunOptions(**_fields(args, RunOptions)).validate()


def cmd_sweep(args: argparse.Namespace, argv: Sequence[str]) -> int:
    world = None
    if "WORLD_SIZE" in os.environ:  # torchrun's environment; torch is imported only then
        from squareseq.training.distributed import detect

        world = detect()
    if world is not None:  # under torchrun: each rank trains a share, rank 0 writes
        from .sweep_dist import cmd_sweep_distributed

        return cmd_sweep_distributed(args, world, lambda: _sweep_options(args))
    settings, seeds, options = _sweep_options(args)
    from squareseq.runs.folder import claim_run_dir, default_run_dir
    from squareseq.runs.sweep import format_summary
    from squareseq.runs.sweep_report import format_table, save_settings_sweep
    from squareseq.runs.sweep_train import plan_sweep, run_sweep  # torch loads from here on
    from squareseq.training.choices import resolve_device

    # before the folder: a sweep that cannot run (or an unavailable device) leaves nothing behind
    plan = plan_sweep(settings, seeds, device=resolve_device(options.device))

    if options.figures:
        import matplotlib

        matplotlib.use("Agg")

    def progress(done: int, total: int, text: str) -> None:
        print(f"[{done}/{total}] {text}", file=sys.stderr, flush=True)

    # the folder's lock is held for the whole sweep: one writer at a time
    with claim_run_dir(args.out or default_run_dir(prefix="sweep"), overwrite=options.overwrite) as out:
        result = run_sweep(plan, threads=options.threads, progress=None if args.quiet else progress)
        save_settings_sweep(result, out, figures=options.figures)
    if not args.quiet:
        many = result.settings[0].many
        print(format_summary(many) if len(result.settings) == 1 and many is not None else format_table(result))
        print(f"sweep folder: {out}")
    return EXIT_OK


def cmd_plot(args: argparse.Namespace, argv: Sequence[str]) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from squareseq.runs.lock import RunFolderLock
    from squareseq.runs.rebuild import redraw_run
    from squareseq.training.callbacks import ProgressBar

    # a folder another process is writing is refused; redraw_run names what is not a run folder
    with RunFolderLock(Path(args.run)) if Path(args.run).is_dir() else contextlib.nullcontext():
        written = redraw_run(args.run, animation=not args.no_animation, progress=ProgressBar().on_figure,
                             gif=args.gif)
        from squareseq.runs.record import record_drawn

        record_drawn(Path(args.run))  # a run whose drawing stopped is complete now
    print(f"wrote {len(written)} files to {args.run}, including {Path(args.run) / 'report.html'}")
    return EXIT_OK


def cmd_export(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from squareseq.runs.export import export_run  # torch loads from here on

    result = export_run(args.run, args.format, output=args.output, overwrite=args.overwrite)
    print(f"wrote {result.path} ({args.format}): {result.signature()}")
    return EXIT_OK


def cmd_playground(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from squareseq.playground import INSTALL_HINT, available  # no torch, no server yet

    if not available():
        raise SquareseqError(f"squareseq playground needs its web server: {INSTALL_HINT}")
    from squareseq.playground.serve import serve  # torch loads from here on

    serve(args.host, args.port, open_browser=not args.no_browser)
    return EXIT_OK
