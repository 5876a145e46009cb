"""The ``squareseq`` argument parser. ``train``'s and ``sweep``'s options are generated from the
config fields' metadata (:func:`squareseq.config.option`), so a flag, its default, its help and
its check are written once, in :mod:`squareseq.config`. Imports no torch."""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any, Callable, Dict, NoReturn

from squareseq import __version__
from squareseq.config import LAYOUT_CHOICES, Check, RunConfig, RunOptions, flag_of, options_of
from squareseq.errors import SquareseqError

__all__ = ["UsageError", "build_parser", "EXIT_CODES_HELP"]

EXIT_CODES_HELP = ("exit codes: 0 success, 1 unexpected or file system error, 2 bad usage or input, "
                   "3 NaN/inf loss (last good epoch kept), 130 SIGINT, 143 SIGTERM (progress saved)")


class UsageError(SquareseqError):
    """A command-line mistake found by a parser; ``prog`` is the (sub)command it concerns, so the
    line printed is ``squareseq train: error: ...`` rather than a doubled prefix."""

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line: what is wrong, and where to look."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: The subcommands' parsers by name (filled on the top-level parser by :func:`build_parser`).
        self.commands: Dict[str, argparse.ArgumentParser] = {}

    def error(self, message: str) -> NoReturn:
        raise UsageError(self.prog, f"{message} (see {self.prog} --help)")


class _HelpFormatter(argparse.HelpFormatter):
    """Shows each option's default once, and only where it says something: not after texts that
    state their own, nor for unset options and switches (``None``, ``False``)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (not action.option_strings or "%(default)" in text or "(default:" in text
                or action.default in (None, False, True) or action.default is argparse.SUPPRESS):
            return text
        return text + " (default: %(default)s)"


def _arg_type(check: Check) -> Callable[[str], Any]:
    """An argparse ``type`` from a field's :class:`~squareseq.config.Check`."""

    def parse(text: str) -> Any:
        try:
            return check.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _grid_type(check: Check) -> Callable[[str], Any]:
    """A ``sweep`` option's ``type`` for a grid field: a comma list of values, each checked by
    ``check``, as a tuple (``"8,32"`` -> ``(8, 32)``); an empty item or a repeated value is refused."""

    def parse(text: str) -> Any:
        items = text.split(",")
        if "" in (item.strip() for item in items):
            raise argparse.ArgumentTypeError(f"an empty item in {text!r}: separate values with single commas, "
                                             "as in '8,32'")
        values = []
        for item in items:
            try:
                value = check.parse(item.strip())
            except ValueError as exc:
                where = f" (in {text!r})" if len(items) > 1 else ""
                raise argparse.ArgumentTypeError(f"{exc}{where}") from None
            if value in values:
                raise argparse.ArgumentTypeError(f"{item.strip()!r} repeats a value in {text!r}: give each value "
                                                 "once")
            values.append(value)
        return tuple(values)

    return parse


def _single_type(check: Check) -> Callable[[str], Any]:
    """A ``sweep`` option's ``type`` for a field that takes one value: a comma list is named as such."""
    parse = _arg_type(check)

    def parse_one(text: str) -> Any:
        try:
            return parse(text)
        except argparse.ArgumentTypeError as exc:
            if "," not in text:
                raise
            lists = ", ".join(flag_of(f.name, RunConfig) for f in options_of(RunConfig) if f.metadata["grid"])
            raise argparse.ArgumentTypeError(f"takes one value, got the list {text!r}; a sweep takes comma lists "
                                             f"for {lists} only") from exc

    return parse_one


def add_field_options(parser: argparse.ArgumentParser, cls: type, *, sweep: bool = False,
                      explicit_only: bool = False) -> None:
    """One option per :func:`~squareseq.config.option` field of ``cls`` (with ``sweep``, those
    ``sweep`` takes: a grid field takes a comma list of values there, parsed to a tuple). With
    ``explicit_only``, only options given on the command line appear in the parsed namespace (how
    ``--resume`` tells them from defaults)."""
    for f in options_of(cls):
        meta = f.metadata
        if sweep and not meta["sweep"]:
            continue
        check: Check = meta["check"]
        default = argparse.SUPPRESS if explicit_only else f.default
        kwargs: Dict[str, Any] = {"dest": f.name, "default": default,
                                  "help": meta["sweep_help"] if sweep else meta["help"]}
        flag = flag_of(f.name, cls)
        if check.kind is bool and meta["negatable"]:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif check.kind is bool:
            kwargs["action"] = "store_false" if flag.startswith("--no-") else "store_true"
        else:
            choices = (meta["sweep_choices"] if sweep and meta["sweep_choices"] else check.choices) or None
            if choices is not None:
                check = dataclasses.replace(check, choices=choices, expected="one of: " + ", ".join(choices))
            kwargs["type"] = _arg_type(check)
            kwargs["choices"] = choices
            kwargs["metavar"] = meta["metavar"] or ("{" + ",".join(choices) + "}" if choices else None)
            if sweep and meta["grid"]:  # a list of values: each is checked by its type, not by choices
                kwargs.update(type=_grid_type(check), choices=None,
                              metavar=(meta["metavar"] or f.name.upper()) + "[,...]",
                              help=kwargs["help"] + "; a comma list sweeps over its values (a settings grid)")
            elif sweep:
                kwargs["type"] = _single_type(check)
        parser.add_argument(flag, **kwargs)


def _add_train(sub: Any, explicit_only: bool = False) -> None:
    train = sub.add_parser("train", help="train the Square Model and write a run folder",
                           formatter_class=_HelpFormatter,
                           description="Train the tutorial's Square Model (defaults reproduce the tutorial) "
                                       "and write a run folder with metrics, history, checkpoint and figures.",
                           epilog=EXIT_CODES_HELP)
    add_field_options(train, RunConfig, explicit_only=explicit_only)
    suppress = {"default": argparse.SUPPRESS} if explicit_only else {}
    train.add_argument("--out", type=Path, help="run folder to write (default: a new folder under runs/)", **suppress)
    train.add_argument("--resume", type=Path, metavar="RUN_DIR", **suppress,
                       help="continue the run in RUN_DIR from its checkpoint, exactly as if it had not stopped; "
                            "its options are kept, only --epochs (the new total) may change")
    add_field_options(train, RunOptions, explicit_only=explicit_only)
    train.add_argument("--quiet", action="store_true", help="no progress bar and no summary", **suppress)


def _add_sweep(sub: Any) -> None:
    sweep = sub.add_parser("sweep", formatter_class=_HelpFormatter,
                           help="train one model per seed and setting, and show how accuracy varies",
                           description="Train one model per seed for each setting of a small grid (comma lists "
                                       "such as --hidden-dim 8,32 --lr 0.01,0.003) and report the mean and spread "
                                       "of each setting's validation accuracy (the test set's where the run has no "
                                       "validation split, as the tutorial's). The tutorial's one-layer recurrent "
                                       "models on generated squares train in one batched pass (same data and "
                                       "shuffles as separate runs); anything else (--data files, conv models, ...) "
                                       "trains run by run as train does. Writes sweep.json, sweep.csv and "
                                       "accuracy_hist.png.")
    sweep.add_argument("--seeds", help='model seeds: "0-255", "1,5,21" or "0-9,21" (default: 0-255 where the '
                                       'models train in one batched pass, 0-4 where each trains on its own: '
                                       '--data, conv models, more layers or classes, ...)')
    add_field_options(sweep, RunConfig, sweep=True)
    sweep.add_argument("--out", type=Path, help="folder to write (default: a new folder under runs/)")
    add_field_options(sweep, RunOptions, sweep=True)
    sweep.add_argument("--quiet", action="store_true", help="no summary")


def build_parser(explicit_only: bool = False) -> _Parser:
    """The ``squareseq`` parser with its subcommands (each sets ``command``). With
    ``explicit_only``, ``train``'s namespace holds only the options given on the command line."""
    fmt = _HelpFormatter
    parser = _Parser(prog="squareseq", description="Sequence classification with PyTorch, step by step.",
                     formatter_class=fmt, epilog=EXIT_CODES_HELP)
    parser.add_argument("--version", action="version", version=f"squareseq {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    _add_train(sub, explicit_only)

    _add_evaluate(sub)
    _add_predict(sub)

    plot = sub.add_parser("plot", help="redraw a run folder's figures, replays and report without retraining",
                          formatter_class=fmt)
    plot.add_argument("run", metavar="RUN_DIR", help="a finished run folder")
    plot.add_argument("--no-animation", action="store_true", help="skip the replays (interactive and GIF)")
    plot.add_argument("--gif", action="store_true", default=None,
                      help="also write the replays as GIFs (default: when the folder holds GIFs already)")

    _add_sweep(sub)
    _add_export(sub)
    _add_playground(sub)
    parser.commands = dict(sub.choices)
    return parser


_LAYOUT_HELP = ("how the arrays are laid out: NLF = (N, L, F), steps then features; NCL = (N, C, L), channels "
                "(features) then steps (aeon's, sktime's); auto: read from the shape where it tells (default: the "
                "layout the run was trained with; a .csv is long format and needs none)")


def _add_evaluate(sub: Any) -> None:
    evaluate = sub.add_parser("evaluate", help="per-class counts and accuracy of a trained model",
                              formatter_class=_HelpFormatter,
                              description="Per-class counts and accuracy of a trained model on its run's test set "
                                          "(rebuilt from the run's configuration) or, with --data, on another "
                                          "labelled file, through the preprocessing the run stored (layout, "
                                          "standardizer, class names).")
    evaluate.add_argument("run", metavar="RUN_DIR_OR_CHECKPOINT", help="a run folder or a checkpoint file")
    evaluate.add_argument("--test-seed", type=_arg_type(_field_check("test_seed")),
                          help="generated squares: data seed (default: the run's)")
    evaluate.add_argument("--n-test", type=_arg_type(_field_check("n_test")),
                          help="generated squares: test sequences (default: the run's)")
    evaluate.add_argument("--data", type=Path, metavar="FILE",
                          help="evaluate on another labelled .npz, .csv or .ts file instead (its test part if it has "
                               "one, else all its sequences); labels are matched to the run's class names")
    evaluate.add_argument("--layout", choices=LAYOUT_CHOICES, help="with --data: " + _LAYOUT_HELP)


def _add_predict(sub: Any) -> None:
    text = ("Print one line per sequence: its likeliest class and that class's probability, e.g. "
            "\"sequence 1: clockwise (P(clockwise) = 0.9997)\"; with --json, every class's probability as one JSON "
            "document. The inputs go through what the run stored (layout, standardizer, class names), so the "
            "answers are those evaluate computes for the same sequences.")
    predict = sub.add_parser("predict", formatter_class=_HelpFormatter, description=text,
                             help="the likeliest class of each sequence and its probability")
    predict.add_argument("run", metavar="RUN_DIR_OR_CHECKPOINT", help="a run folder or a checkpoint file")
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--points", help='one sequence of any length as "x,y x,y x,y x,y" (runs of 2 features)')
    source.add_argument("--input", type=Path, metavar="FILE",
                        help="the sequences: a .npy array (N, L, F), F = the run's features (or (N, C, L), C = F, "
                             "with --layout NCL), shorter ones padded at the end with NaN or with --lengths; an .npz "
                             "with X[, lengths] (labels ignored); or a long-format .csv (sequence, step, "
                             "features...; a label column is ignored)")
    predict.add_argument("--lengths", type=Path, metavar="FILE",
                         help="with a .npy --input: a .npy of N integers, each sequence's real steps (1..L)")
    predict.add_argument("--layout", choices=LAYOUT_CHOICES, help=_LAYOUT_HELP)
    predict.add_argument("--json", action="store_true",
                         help="print one JSON list, an object per sequence (its id from a .csv, else numbered "
                              "from 1): the predicted class index and name and the probability of every class "
                              "by name")


def _field_check(name: str) -> Check:
    return next(f.metadata["check"] for f in options_of(RunConfig) if f.name == name)


EXPORT_FORMATS = ("onnx", "torchscript", "exported-program")  # squareseq.runs.export.FORMATS, without torch


def _add_export(sub: Any) -> None:
    text = ("Write a trained run's model as a file other runtimes load: ONNX (onnxruntime; needs the onnx extra), "
            "TorchScript (torch.jit.load) or a torch.export program (.pt2, torch.export.load). The model takes raw "
            "inputs x (N, L, F) float32, as predict does (the run's standardization is inside), plus lengths (N,) "
            "int64 where the run trained on sequences of different lengths, and returns probabilities (N, C) and "
            "logits; batch and length are dynamic.")
    export = sub.add_parser("export", formatter_class=_HelpFormatter, description=text,
                            help="write a trained model as ONNX, TorchScript or a torch.export program")
    export.add_argument("run", metavar="RUN_DIR_OR_CHECKPOINT", help="a run folder or a checkpoint file")
    export.add_argument("--format", required=True, choices=EXPORT_FORMATS, dest="format",
                        help="onnx (model.onnx), torchscript (model.ts.pt) or exported-program (model.pt2)")
    export.add_argument("--output", type=Path, metavar="FILE",
                        help="file to write (default: model.onnx, model.ts.pt or model.pt2 in the run folder)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing file")


def _add_playground(sub: Any) -> None:
    playground = sub.add_parser(
        "playground", formatter_class=_HelpFormatter,
        help="a local web page: set a task and a cell, press Train, watch the hidden states move epoch by epoch",
        description="Serves a page where you set the task, noise, sequence length, cell, hidden size, learning rate, "
                    "batch size and seed, train with squareseq's own trainer and watch every epoch in the run "
                    "report's viewer; pause, step, change the learning rate, download the run. The page's address "
                    "holds the settings. Needs the 'playground' extra: pip install 'squareseq[playground]'.")
    playground.add_argument("--port", type=_port, default=0, help="port to listen on (default: a free one)")
    playground.add_argument("--host", default="127.0.0.1",
                            help="address to listen on (default: 127.0.0.1, this machine only; any other prints a "
                                 "warning: whoever reaches it can train here)")
    playground.add_argument("--no-browser", action="store_true", help="print the address instead of opening it")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {value} is outside 0-65535 (0: a free one)")
    return value
