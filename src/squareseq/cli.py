"""``squareseq``: the command line. Parsing and wiring only; the work lives in the library.

Exit codes: 0 success; 1 an unexpected failure (one line on stderr; set SQUARESEQ_DEBUG=1 for the
traceback) or a file system error; 2 bad usage or bad input (one line on stderr); 3 a numerical fault
(a NaN/inf loss or an overflow: the last good epoch is kept); 130 interrupted by SIGINT and 143 by
SIGTERM (after saving the last completed epoch; resume with ``squareseq train --resume RUN_DIR``).
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

from . import __version__
from .config import MODEL_CHOICES, TASK_CHOICES, RunConfig
from .errors import SquareseqError
from .losses import LOSSES
from .validation import check_inputs

__all__ = ["main", "run", "build_parser"]

FLOAT32_MAX = 3.4028234663852886e38
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_NUMERICAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_CODES_HELP = ("exit codes: 0 success, 1 unexpected or file system error, 2 bad usage or input, "
                   "3 NaN/inf loss (last good epoch kept), 130 SIGINT, 143 SIGTERM (progress saved)")
# Options that --resume takes from the run itself (a different value is refused): all but --epochs.
_RUN_OPTIONS = tuple(f.name for f in dataclasses.fields(RunConfig) if f.name != "epochs")


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line: what is wrong, and where to look."""

    def error(self, message: str):  # type: ignore[override]
        raise SquareseqError(f"{self.prog}: {message} (see {self.prog} --help)")


def _number_arg(kind: type, check: Callable[[float], bool], expected: str) -> Callable[[str], float]:
    """An argparse ``type`` that parses ``kind`` and accepts values passing ``check``; anything
    else is one line saying what was ``expected``."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not (math.isfinite(value) and check(value)):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_positive_int = _number_arg(int, lambda v: v >= 1, "a positive integer")
_non_negative_int = _number_arg(int, lambda v: v >= 0, "an integer >= 0")
_seed = _number_arg(int, lambda v: 0 <= v < 2**32, "an integer seed in [0, 2**32)")
_positive_float = _number_arg(float, lambda v: v > 0, "a positive finite number")
_non_negative_float = _number_arg(float, lambda v: v >= 0, "a finite number >= 0")
_fraction = _number_arg(float, lambda v: 0 < v < 1, "a number strictly between 0 and 1")


def _threads(text: str):
    if text == "auto":
        return text
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a positive integer, got {text!r}") from None


THREADS_HELP = ("intra-op threads: auto = one for tiny models (their kernels are too small to split; more "
                "threads only wait on each other, and run several times slower when another process is busy)")


def _add_train_options(p: argparse.ArgumentParser, suppress_defaults: bool = False) -> None:
    """The ``train`` options; with ``suppress_defaults``, only options given on the command line
    appear in the parsed namespace (how ``--resume`` tells them apart)."""
    d = RunConfig()

    def default(value):
        return argparse.SUPPRESS if suppress_defaults else value

    p.add_argument("--epochs", type=_positive_int, default=default(d.epochs),
                   help="training epochs (with --resume: the new total; default there: the run's)")
    p.add_argument("--batch-size", type=_positive_int, default=default(d.batch_size), help="sequences per mini-batch")
    p.add_argument("--lr", type=_positive_float, default=default(d.lr), help="Adam's learning rate")
    p.add_argument("--hidden-dim", type=_positive_int, default=default(d.hidden_dim), help="size of the hidden state")
    p.add_argument("--seed", type=_seed, default=default(d.seed), help="torch seed set before building the model")
    p.add_argument("--fit-seed", type=_seed, default=default(d.fit_seed),
                   help="seed set when training starts (shuffling), as StepByStep.train(seed=...)")
    p.add_argument("--train-seed", type=_seed, default=default(d.train_seed), help="data seed of the training set")
    p.add_argument("--test-seed", type=_seed, default=default(d.test_seed), help="data seed of the test set")
    p.add_argument("--n-train", type=_positive_int, default=default(d.n_train), help="training sequences")
    p.add_argument("--n-test", type=_positive_int, default=default(d.n_test), help="test sequences")
    p.add_argument("--loss", choices=["auto", *LOSSES], default=default(d.loss),
                   help="auto: bce-logits for two classes, ce-free for more; "
                        + "; ".join(f"{s.name}: {s.description}" for s in LOSSES.values()))
    p.add_argument("--model", choices=MODEL_CHOICES, default=default(d.model),
                   help="rnn (the tutorial's), gru, lstm, or conv1d (a 1-D convolution over time)")
    p.add_argument("--num-layers", type=_positive_int, default=default(d.num_layers), help="stacked recurrent layers")
    p.add_argument("--bidirectional", action="store_true", default=default(d.bidirectional),
                   help="add a recurrent layer that reads the sequences backwards")
    p.add_argument("--variable-len", action="store_true", default=default(d.variable_len),
                   help="generated sequences keep their first 2-4 points (trained as packed sequences)")
    p.add_argument("--task", choices=TASK_CHOICES, default=default(d.task),
                   help="direction: clockwise or not (2 classes); corner-direction: starting corner and "
                        "direction (8 classes)")
    p.add_argument("--noise", type=_non_negative_float, default=default(d.noise),
                   help="standard deviation of the generated points' noise")
    p.add_argument("--data", metavar="FILE", default=default(d.data),
                   help="train on your own sequences: a .npz (X, y[, lengths, X_test, y_test, lengths_test]) "
                        "or long-format .csv (sequence, step, features..., label[, split]) file")
    p.add_argument("--test-fraction", type=_fraction, default=default(d.test_fraction),
                   help="with --data and no test set in the file: the share held out for testing")
    p.add_argument("--split-seed", type=_seed, default=default(d.split_seed), help="seed of that stratified split")
    p.add_argument("--standardize", action="store_true", default=default(d.standardize),
                   help="with --data: rescale each feature by the training part's mean and deviation")
    p.add_argument("--out", type=Path, default=default(None),
                   help="run folder to write (default: a new folder under runs/)")
    p.add_argument("--overwrite", action="store_true", default=default(False),
                   help="replace the files of an existing run folder")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR", default=default(None),
                   help="continue the run in RUN_DIR from its checkpoint, exactly as if it had not stopped; "
                        "its options are kept, only --epochs (the new total) may change")
    p.add_argument("--checkpoint-every", type=_non_negative_int, metavar="N", default=default(10),
                   help="also write the checkpoint every N epochs (0: only at the end)")
    p.add_argument("--detect-anomaly", action="store_true", default=default(False),
                   help="train under torch.autograd's anomaly mode (slow; names the operation that made a NaN)")
    p.add_argument("--no-figures", action="store_true", default=default(False),
                   help="skip the figures, replays and report (fastest)")
    p.add_argument("--no-animation", action="store_true", default=default(False),
                   help="skip the training replays (GIFs), keep the figures and report")
    p.add_argument("--threads", type=_threads, default=default("auto"), help=THREADS_HELP)
    p.add_argument("--quiet", action="store_true", default=default(False), help="no progress bar and no summary")


def build_parser() -> argparse.ArgumentParser:
    """The ``squareseq`` parser with its subcommands."""
    fmt = argparse.ArgumentDefaultsHelpFormatter
    parser = _Parser(prog="squareseq", description="Sequence classification with PyTorch, step by step.",
                     formatter_class=fmt, epilog=EXIT_CODES_HELP)
    parser.add_argument("--version", action="version", version=f"squareseq {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    train = sub.add_parser("train", help="train the Square Model and write a run folder", formatter_class=fmt,
                           description="Train the tutorial's Square Model (defaults reproduce the tutorial) "
                                       "and write a run folder with metrics, history, checkpoint and figures.",
                           epilog=EXIT_CODES_HELP)
    _add_train_options(train)
    train.set_defaults(handler=_cmd_train)

    evaluate = sub.add_parser("evaluate", help="per-class counts and accuracy of a trained model",
                              formatter_class=fmt)
    evaluate.add_argument("run", metavar="RUN_DIR_OR_CHECKPOINT", help="a run folder or a checkpoint file")
    evaluate.add_argument("--test-seed", type=_seed, default=None, help="data seed (default: the run's)")
    evaluate.add_argument("--n-test", type=_positive_int, default=None, help="test sequences (default: the run's)")
    evaluate.set_defaults(handler=_cmd_evaluate)

    predict = sub.add_parser("predict", formatter_class=fmt,
                             help="probability that sequences run clockwise (or the likeliest class of a "
                                  "multi-class run)")
    predict.add_argument("run", metavar="RUN_DIR_OR_CHECKPOINT", help="a run folder or a checkpoint file")
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--points", help='one sequence of any length as "x,y x,y x,y x,y"')
    source.add_argument("--input", type=Path, help="a .npy file holding an (N, L, 2) float array")
    predict.set_defaults(handler=_cmd_predict)

    plot = sub.add_parser("plot", help="redraw a run folder's figures, replays and report without retraining",
                          formatter_class=fmt)
    plot.add_argument("run", metavar="RUN_DIR", help="a finished run folder")
    plot.add_argument("--no-animation", action="store_true", help="skip the replays (GIFs)")
    plot.set_defaults(handler=_cmd_plot)

    d = RunConfig()
    sweep = sub.add_parser("sweep", formatter_class=fmt,
                           help="train one model per seed, all at once, and show how test accuracy varies",
                           description="Train K models that differ only in their initialisation seed in one "
                                       "batched pass (same data and shuffles as K separate runs) and write "
                                       "sweep.json, sweep.csv and accuracy_hist.png.")
    sweep.add_argument("--seeds", default="0-255", help='model seeds: "0-255", "1,5,21" or "0-9,21"')
    sweep.add_argument("--model", choices=("rnn", "gru", "lstm"), default="rnn", help="recurrent cell")
    sweep.add_argument("--hidden-dim", type=_positive_int, default=d.hidden_dim, help="size of the hidden state")
    sweep.add_argument("--epochs", type=_positive_int, default=d.epochs, help="training epochs")
    sweep.add_argument("--lr", type=_positive_float, default=d.lr, help="Adam's learning rate")
    sweep.add_argument("--batch-size", type=_positive_int, default=d.batch_size, help="sequences per mini-batch")
    sweep.add_argument("--fit-seed", type=_seed, default=d.fit_seed, help="seed of the shared shuffles")
    sweep.add_argument("--train-seed", type=_seed, default=d.train_seed, help="data seed of the training set")
    sweep.add_argument("--test-seed", type=_seed, default=d.test_seed, help="data seed of the test set")
    sweep.add_argument("--n-train", type=_positive_int, default=d.n_train, help="training sequences")
    sweep.add_argument("--n-test", type=_positive_int, default=d.n_test, help="test sequences")
    sweep.add_argument("--threads", type=_threads, default="auto", help=THREADS_HELP)
    sweep.add_argument("--out", type=Path, default=None, help="folder to write (default: a new folder under runs/)")
    sweep.add_argument("--overwrite", action="store_true", help="replace the files of an existing folder")
    sweep.add_argument("--no-figures", action="store_true", help="skip the accuracy histogram")
    sweep.add_argument("--quiet", action="store_true", help="no summary")
    sweep.set_defaults(handler=_cmd_sweep)
    return parser


# -- commands ------------------------------------------------------------------------------------
def _format_counts(counts) -> str:
    from .metrics import accuracy

    n_correct, n_total = int(counts[:, 0].sum()), int(counts[:, 1].sum())
    return (f"correct per class [n_correct, n_total]: {counts.tolist()}\n"
            f"accuracy: {accuracy(counts):.4f} ({n_correct}/{n_total})")


def _explicit_train_options(argv: Sequence[str]) -> dict:
    """The ``train`` options given on the command line ``argv`` (after ``train``), by dest."""
    parser = _Parser(prog="squareseq train", add_help=False)
    _add_train_options(parser, suppress_defaults=True)
    known, _ = parser.parse_known_args(list(argv))
    return vars(known)


def _resume_config(args: argparse.Namespace) -> RunConfig:
    """The stored configuration of the run in ``--resume``, with the new ``--epochs``; refuses
    options that contradict the run."""
    from .checkpoint import load
    from .runs import CHECKPOINT, prepare_run_dir

    run_dir = prepare_run_dir(args.resume, resume=True)
    explicit = _explicit_train_options(args.train_argv)
    if explicit.get("overwrite"):
        raise SquareseqError("--overwrite and --resume contradict each other: resume continues the run's files")
    if explicit.get("out") is not None and Path(explicit["out"]).resolve() != run_dir.resolve():
        raise SquareseqError(f"--out {explicit['out']} differs from --resume {run_dir}: a resumed run stays in "
                             "its folder (drop --out)")
    stored = load(run_dir / CHECKPOINT).get("run_config")
    if not isinstance(stored, dict):
        raise SquareseqError(f"{run_dir / CHECKPOINT} holds no run_config: it was not written by squareseq train")
    config = RunConfig.from_dict(stored)
    try:
        config.validate()
    except SquareseqError as exc:
        raise SquareseqError(f"{run_dir / CHECKPOINT} holds an invalid run_config ({exc})") from None
    for name in _RUN_OPTIONS:
        if name in explicit and explicit[name] != getattr(config, name):
            flag = "--" + name.replace("_", "-")
            raise SquareseqError(f"{flag} {explicit[name]} contradicts the run being resumed ({flag} "
                                 f"{getattr(config, name)}); only --epochs may change on --resume")
    if "epochs" in explicit:
        config.epochs = explicit["epochs"]
    return config


def _cmd_train(args: argparse.Namespace) -> int:
    from .runs import default_run_dir, prepare_run_dir

    if args.resume is not None:
        config = _resume_config(args)
        run_dir = Path(args.resume)
    else:
        config = RunConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(RunConfig)}).validate()
        run_dir = prepare_run_dir(args.out or default_run_dir(), overwrite=args.overwrite)

    if not args.no_figures:
        import matplotlib

        matplotlib.use("Agg")  # the CLI only writes files; never open windows
    from .callbacks import ProgressBar
    from .experiment import run_experiment
    from .guard import NonFiniteLossError, TrainingInterrupted

    callbacks = [ProgressBar(disable=True if args.quiet else None)]
    try:
        result = run_experiment(config, run_dir, callbacks=callbacks, write_figures=not args.no_figures,
                                animation=not args.no_animation, resume=args.resume is not None, overwrite=args.overwrite,
                                checkpoint_every=args.checkpoint_every,
                                detect_anomaly=args.detect_anomaly, threads=args.threads)
    except TrainingInterrupted as exc:
        print(f"squareseq: {exc}; checkpoint and metrics so far are in {run_dir}; continue with: "
              f"squareseq train --resume {run_dir} --epochs {config.epochs}", file=sys.stderr)
        return exc.exit_code
    except NonFiniteLossError as exc:
        print(f"squareseq: error: {_one_line(exc)} (in {run_dir / 'checkpoint.pt'})", file=sys.stderr)
        return EXIT_NUMERICAL
    if not args.quiet:
        print(_format_counts(result.counts))
        print(f"run folder: {run_dir}")
    return EXIT_OK


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .experiment import evaluate
    from .inference import load_trained
    from .rundata import build_data

    model, config = load_trained(args.run)
    if args.test_seed is not None:
        config.test_seed = args.test_seed
    if args.n_test is not None:
        config.n_test = args.n_test
    data = build_data(config.validate())
    if model(data.test.x[:1]).shape[1] not in (1, data.n_classes):
        raise SquareseqError(f"{args.run}: the model's outputs do not fit the {data.n_classes} classes of its data")
    result = evaluate(model, data.test, data.n_classes)
    import torch

    print(_format_counts(torch.tensor(result["correct_per_class"])))
    return EXIT_OK


def _cmd_sweep(args: argparse.Namespace) -> int:
    from .many import train_many
    from .seeds import parse_seeds
    from .sweep import format_summary, save_sweep
    from .runs import default_run_dir, prepare_run_dir

    try:
        seeds = parse_seeds(args.seeds)
    except ValueError as exc:
        raise SquareseqError(f"--seeds: {_one_line(exc)}") from None
    RunConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, hidden_dim=args.hidden_dim,
              fit_seed=args.fit_seed, train_seed=args.train_seed, test_seed=args.test_seed,
              n_train=args.n_train, n_test=args.n_test, model=args.model).validate()
    out = prepare_run_dir(args.out or default_run_dir(prefix="sweep"), overwrite=args.overwrite)
    if not args.no_figures:
        import matplotlib

        matplotlib.use("Agg")
    results = train_many(seeds, n_epochs=args.epochs, hidden_dim=args.hidden_dim, lr=args.lr,
                         batch_size=args.batch_size, train_seed=args.train_seed, test_seed=args.test_seed,
                         n_train=args.n_train, n_test=args.n_test, model=args.model, fit_seed=args.fit_seed,
                         threads=args.threads)
    save_sweep(results, out, figures=not args.no_figures)
    if not args.quiet:
        print(format_summary(results))
        print(f"sweep folder: {out}")
    return EXIT_OK


def _cmd_plot(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from .report import redraw_run

    try:
        written = redraw_run(args.run, animation=not args.no_animation)
    except SquareseqError:
        raise
    except ValueError as exc:
        raise SquareseqError(str(exc)) from None
    print(f"wrote {len(written)} files to {args.run}, including {Path(args.run) / 'report.html'}")
    return EXIT_OK


def _parse_points(text: str):
    import numpy as np

    points = []
    for token in text.replace(";", " ").split():
        parts = token.split(",")
        try:
            if len(parts) != 2:
                raise ValueError
            x, y = float(parts[0]), float(parts[1])
        except ValueError:
            raise SquareseqError(f'--points: {token!r} is not a point "x,y"; write e.g. '
                                 '--points "-1,-1 -1,1 1,1 1,-1"') from None
        if not all(math.isfinite(v) and abs(v) <= FLOAT32_MAX for v in (x, y)):
            raise SquareseqError(f"--points: {token!r} is not a finite float32 point")
        points.append((x, y))
    if not points:
        raise SquareseqError('--points is empty; write e.g. --points "-1,-1 -1,1 1,1 1,-1"')
    return np.array([points], dtype=np.float32)  # (1, L, 2)


def _load_npy(path: Path):
    import numpy as np

    if not path.is_file():
        raise SquareseqError(f"--input {path} does not exist")
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise SquareseqError(f"--input {path} is not a plain .npy array ({exc})") from None
    except OSError as exc:
        raise SquareseqError(f"--input {path} cannot be read as .npy ({exc})") from None
    if not isinstance(array, np.ndarray) or not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_) \
            or np.issubdtype(array.dtype, np.complexfloating):
        raise SquareseqError(f"--input {path} must hold real numbers, got dtype {getattr(array, 'dtype', '?')}")
    with np.errstate(over="ignore"):
        array = array.astype(np.float32)  # what the model reads: values too big for float32 become inf
    check_inputs(array, name=f"--input {path}")
    return array


def _cmd_predict(args: argparse.Namespace) -> int:
    from .inference import class_probabilities, load_trained

    array = _parse_points(args.points) if args.points is not None else _load_npy(args.input)
    source = "--points" if args.points is not None else f"--input {args.input}"
    model, config = load_trained(args.run)
    n_features = getattr(model, "n_features", array.shape[-1])
    if array.shape[-1] != n_features:
        raise SquareseqError(f"{source}: the model reads {n_features} features per step, the input has "
                             f"{array.shape[-1]}")
    if getattr(model, "seq_len", None) is not None and array.shape[1] > model.seq_len:
        raise SquareseqError(f"{source}: the model reads at most {model.seq_len} steps, the input has "
                             f"{array.shape[1]}")
    import torch

    probs = class_probabilities(model, torch.from_numpy(array))
    if probs.shape[1] == 2:
        for p in probs[:, 1].tolist():
            print(f"{p:.4f}")
    else:
        from .data import class_names

        names = class_names(config.task) if config.data is None else [f"class {k}" for k in range(probs.shape[1])]
        best = probs.argmax(dim=1)
        for k, p in zip(best.tolist(), probs.max(dim=1).values.tolist()):
            print(f"{k} {names[k]!r} {p:.4f}")
    return EXIT_OK


def _one_line(message: object) -> str:
    """``message`` on one line: whatever a value's repr spread over several lines is joined."""
    return " ".join(str(message).split())


# -- entry points --------------------------------------------------------------------------------
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the CLI with ``argv`` (default: ``sys.argv[1:]``) and returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        args.train_argv = argv[argv.index("train") + 1:] if "train" in argv else []
        return args.handler(args)
    except SquareseqError as exc:
        print(f"squareseq: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("squareseq: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"squareseq: error: {_one_line(exc.strerror or exc)}{where}", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:  # a bug: still one line, unless asked for the traceback
        if os.environ.get("SQUARESEQ_DEBUG"):
            raise
        print(f"squareseq: internal error: {type(exc).__name__}: {_one_line(exc)} (set SQUARESEQ_DEBUG=1 for the "
              "traceback)",
              file=sys.stderr)
        return EXIT_FAILURE


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
