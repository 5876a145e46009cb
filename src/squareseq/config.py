"""What to run and how: :class:`RunConfig` (the experiment) and :class:`RunOptions` (how one run
of it is carried out), each defined once.

Every field carries its own metadata (:func:`option`): help text, the check its values must
pass, its CLI flag. The CLI generates ``train``'s and ``sweep``'s options from it, and
:meth:`RunConfig.validate` uses the same checks, so a bound is written in one place. Both classes
are frozen: a changed run is a new config (``dataclasses.replace``), never a mutated one.

Imports no torch: the CLI parses and validates options with it before loading torch, so bad
options exit at once.
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple, Union

from squareseq.errors import ConfigError, SquareseqError, literal
from squareseq.sizes import (
    GENERATED_FEATURES,
    GENERATED_STEPS,
    MAX_ACTIVATION_BYTES,
    MAX_PARAMETERS,
    activation_bytes,
    check_activation_memory,
    check_parameter_count,
    parameter_count,
)

__all__ = [
    "Check", "RunConfig", "RunOptions", "option", "flag_of", "options_of",
    "MAX_SEQUENCES", "MAX_EPOCHS", "MAX_HIDDEN", "MAX_LAYERS", "MODEL_CHOICES", "TASK_CHOICES", "SWEEP_MODEL_CHOICES",
    "LOSS_DESCRIPTIONS", "LOSS_NAMES", "parse_seeds", "MAX_SEEDS", "MAX_THREADS", "MAX_ACTIVATION_BYTES",
    "activation_bytes", "check_activation_memory", "MAX_PARAMETERS", "parameter_count", "check_parameter_count",
]

# Bounds that keep a typo (--n-train 1e9) or a tampered stored configuration from exhausting memory
# before any error can be shown. A million generated sequences take about half a gigabyte.
MAX_SEQUENCES = 1_000_000
MAX_HIDDEN = 4096
#: The most epochs one run trains: a day of the tutorial's model; 10**20 ran until killed.
MAX_EPOCHS = 1_000_000
MAX_LAYERS = 64
#: The most seeds one sweep trains (``--seeds``), counted before the list is built.
MAX_SEEDS = 65_536
#: The most intra-op threads: four per CPU (more only wait on each other; 100000 crashed the
#: OpenMP runtime), at most 1024.
MAX_THREADS = min(1024, 4 * (os.cpu_count() or 1))
MODEL_CHOICES = ("rnn", "gru", "lstm", "conv1d")
SWEEP_MODEL_CHOICES = ("rnn", "gru", "lstm")
TASK_CHOICES = ("direction", "corner-direction")
Threads = Union[str, int]

#: Each loss's CLI name and the line ``--help`` shows for it, in the order the CLI lists them.
LOSS_DESCRIPTIONS: Dict[str, str] = {
    "bce-logits": "one logit, BCEWithLogitsLoss (the tutorial's choice)",
    "bce": "a sigmoid output (a probability), BCELoss",
    "ce": "two logits, the first pinned at 0, CrossEntropyLoss on integer labels (the same model as bce-logits)",
    "ce-free": "two free logits, CrossEntropyLoss on integer labels",
}

#: The loss names, as ``--loss`` accepts them (besides ``auto``).
LOSS_NAMES: Tuple[str, ...] = tuple(LOSS_DESCRIPTIONS)


@dataclass(frozen=True)
class Check:
    """What a field's values must be: a ``kind`` (int, float, str, bool, or object for any), a
    test, the phrase naming what is expected ("a positive integer"), for strings the allowed
    ``choices``, and for values of no single kind how to read one from the command line."""

    kind: type
    expected: str
    test: Callable[[Any], bool] = lambda value: True
    choices: Tuple[str, ...] = ()
    from_text: Optional[Callable[[str], Any]] = None

    def accepts(self, value: Any) -> bool:
        if self.kind is bool:
            return isinstance(value, bool)
        if self.kind is int and (not isinstance(value, int) or isinstance(value, bool)):
            return False
        if self.kind is float and (not isinstance(value, (int, float)) or isinstance(value, bool)
                                   or not math.isfinite(value)):
            return False
        if self.kind is str and not isinstance(value, str):
            return False
        if self.choices and value not in self.choices:
            return False
        return bool(self.test(value))

    def parse(self, text: str) -> Any:
        """The value ``text`` stands for; ``ValueError("expected ..., got ...")`` if none."""
        try:
            value = (self.from_text or (self.kind if self.kind in (int, float) else str))(text)
        except ValueError:
            value = None
        if value is None or not self.accepts(value):
            raise SquareseqError(f"expected {self.expected}, got {text!r}")
        return value


def is_int(value: Any) -> bool:
    """An int that is not a bool (in JSON and pickled plain data, ``True`` is an int too)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool): what a stored setting or record value must be."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _int_in(low: int, high: int, expected: str) -> Check:
    return Check(int, expected, lambda v: low <= v <= high)


POSITIVE_INT = Check(int, "a positive integer", lambda v: v >= 1)
NON_NEGATIVE_INT = Check(int, "an integer >= 0", lambda v: v >= 0)
SEED = Check(int, "an integer seed in [0, 2**32)", lambda v: 0 <= v < 2**32)
POSITIVE_FLOAT = Check(float, "a positive finite number", lambda v: v > 0)
NON_NEGATIVE_FLOAT = Check(float, "a finite number >= 0", lambda v: v >= 0)
FRACTION = Check(float, "a number strictly between 0 and 1", lambda v: 0 < v < 1)
FLAG = Check(bool, "true or false")
ANY_TEXT = Check(str, "a file name")


def option(default: Any, help: str, check: Check, *, sweep: bool = False, flag: Optional[str] = None,
           metavar: Optional[str] = None, sweep_choices: Tuple[str, ...] = (), sweep_help: Optional[str] = None) -> Any:
    """A dataclass field with the metadata the CLI is generated from.

    Args:
        default: the field's default (the tutorial's value).
        help: the ``--help`` line.
        check: what values must be.
        sweep: ``squareseq sweep`` takes this option too.
        flag: the CLI flag when it is not ``--field-name`` (``--no-figures`` for ``figures``: a
            flag named ``--no-...`` switches a boolean that defaults to True off).
        metavar: the placeholder ``--help`` shows for the value.
        sweep_choices: narrower choices for ``sweep`` (it batches recurrent cells only).
        sweep_help: the ``--help`` line for ``sweep``, where it differs.
    """
    meta = {"help": help, "check": check, "sweep": sweep, "flag": flag, "metavar": metavar,
            "sweep_choices": sweep_choices, "sweep_help": sweep_help or help}
    return field(default=default, metadata=meta)


#: Fields the CLI spells differently from ``--field-name``, besides those with a ``flag`` in their metadata.
_CLI_NAMES = {"run_dir": "--out"}


def flag_of(name: str, cls: Optional[type] = None) -> str:
    """The CLI flag of field ``name`` (``hidden_dim`` -> ``--hidden-dim``, ``run_dir`` -> ``--out``)."""
    if name in _CLI_NAMES:
        return _CLI_NAMES[name]
    for source in ((cls,) if cls is not None else (RunConfig, RunOptions)):
        for f in fields(source):
            if f.name == name and f.metadata.get("flag"):
                return f.metadata["flag"]
    return "--" + name.replace("_", "-")


def options_of(cls: type) -> Iterator[dataclasses.Field]:
    """The fields of ``cls`` that carry :func:`option` metadata, in declaration order."""
    return (f for f in fields(cls) if "check" in f.metadata)


def _check_fields(obj: Any) -> None:
    for f in options_of(type(obj)):
        value = getattr(obj, f.name)
        if value is None and f.default is None:
            continue
        check: Check = f.metadata["check"]
        if not check.accepts(value):
            raise ConfigError("{%s} must be %s, got %s" % (f.name, check.expected, literal(repr(value))), (f.name,))


@dataclass(frozen=True)
class RunConfig:
    """The tutorial's experiment (defaults reproduce it), one field per ``squareseq train`` option.

    ``loss="auto"`` means ``bce-logits`` for two classes and ``ce-free`` for more; the run
    records the loss it resolved to. ``data`` names a ``.npz``/``.csv`` file of your own sequences
    (see :mod:`squareseq.data.files`) instead of generated squares.
    """

    epochs: int = option(100, "training epochs (with --resume: the new total; default there: the run's)",
                         _int_in(1, MAX_EPOCHS, f"an integer in [1, {MAX_EPOCHS}]"), sweep=True,
                         sweep_help="training epochs")
    batch_size: int = option(16, "sequences per mini-batch", POSITIVE_INT, sweep=True)
    lr: float = option(0.01, "Adam's learning rate", POSITIVE_FLOAT, sweep=True)
    hidden_dim: int = option(2, "size of the recurrent hidden state",
                             _int_in(1, MAX_HIDDEN, f"an integer in [1, {MAX_HIDDEN}]"), sweep=True)
    seed: int = option(21, "torch seed set before building the model", SEED)
    fit_seed: int = option(42, "seed set when training starts (shuffling), as StepByStep.train(seed=...)", SEED,
                           sweep=True)
    train_seed: int = option(13, "data seed of the training set", SEED, sweep=True)
    test_seed: int = option(19, "data seed of the test set", SEED, sweep=True)
    n_train: int = option(128, "training sequences", _int_in(1, MAX_SEQUENCES, f"an integer in [1, {MAX_SEQUENCES}]"),
                          sweep=True)
    n_test: int = option(128, "test sequences", _int_in(1, MAX_SEQUENCES, f"an integer in [1, {MAX_SEQUENCES}]"),
                         sweep=True)
    loss: str = option("auto", "auto: bce-logits for two classes, ce-free for more; "
                       + "; ".join(f"{name}: {text}" for name, text in LOSS_DESCRIPTIONS.items()),
                       Check(str, "auto or one of: " + ", ".join(LOSS_NAMES), choices=("auto", *LOSS_NAMES)))
    model: str = option("rnn", "rnn (the tutorial's), gru, lstm, or conv1d (a 1-D convolution over time)",
                        Check(str, "one of: " + ", ".join(MODEL_CHOICES), choices=MODEL_CHOICES), sweep=True,
                        sweep_choices=SWEEP_MODEL_CHOICES, sweep_help="the recurrent cell every model uses")
    num_layers: int = option(1, "stacked recurrent layers",
                             _int_in(1, MAX_LAYERS, f"an integer in [1, {MAX_LAYERS}]"))
    bidirectional: bool = option(False, "add a recurrent layer that reads the sequences backwards", FLAG)
    variable_len: bool = option(False, "generated sequences keep their first 2-4 points (trained as packed "
                                "sequences)", FLAG)
    task: str = option("direction", "direction: clockwise or not (2 classes); corner-direction: starting corner "
                       "and direction (8 classes)",
                       Check(str, "one of: " + ", ".join(TASK_CHOICES), choices=TASK_CHOICES))
    noise: float = option(0.1, "standard deviation of the generated points' noise", NON_NEGATIVE_FLOAT)
    data: Optional[str] = option(None, "train on your own sequences: a .npz (X, y[, lengths, X_test, y_test, "
                                 "lengths_test]) or long-format .csv (sequence, step, features..., label[, split]) "
                                 "file", ANY_TEXT, metavar="FILE")
    test_fraction: float = option(0.2, "with --data and no test set in the file: the share held out for testing",
                                  FRACTION)
    split_seed: int = option(0, "seed of that stratified split", SEED)
    standardize: bool = option(False, "with --data: rescale each feature by the training part's mean and "
                               "deviation", FLAG)

    def validate(self) -> "RunConfig":
        """Raises :class:`~squareseq.errors.ConfigError` naming the first bad field; returns self."""
        _check_fields(self)
        if self.model == "conv1d" and (self.num_layers != 1 or self.bidirectional):
            raise ConfigError("{num_layers} and {bidirectional} apply to recurrent models, not {model} conv1d",
                              ("num_layers", "bidirectional", "model"))
        if self.model == "conv1d" and self.loss == "ce":
            raise ConfigError("{loss} ce pins the first logit of a recurrent model at 0; {model} conv1d has no "
                              "such logit: use {loss} ce-free (one free logit per class) or bce-logits",
                              ("loss", "model"))
        if self.data is not None:
            generated_only = [name for name, differs in (
                ("task", self.task != "direction"), ("noise", self.noise != 0.1),
                ("variable_len", self.variable_len)) if differs]
            if generated_only:
                names = ", ".join("{%s}" % name for name in generated_only)
                raise ConfigError(f"{names} shape generated squares and do not apply to {{data}} {literal(self.data)}",
                                  (*generated_only, "data"))
        elif self.standardize:
            raise ConfigError("{standardize} applies to {data} files only", ("standardize", "data"))
        else:  # generated squares: every size is known from the config
            n_outputs = 8 if self.task == "corner-direction" else 2
            check_parameter_count(self.model, dict(n_features=GENERATED_FEATURES, hidden_dim=self.hidden_dim,
                                                   n_outputs=n_outputs, num_layers=self.num_layers,
                                                   bidirectional=self.bidirectional, seq_len=GENERATED_STEPS))
            check_activation_memory(self)
        return self

    def replace(self, **changes: Any) -> "RunConfig":
        """A copy with ``changes`` (the config itself never changes)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "") -> "RunConfig":
        """A validated config from a stored dict; keys this version does not know are ignored
        (older runs get the defaults for keys they lack). ``where`` names the source in errors."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{literal(where or 'the stored configuration')} is not a mapping of options")
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in known}).validate()
        except ConfigError as exc:
            if not where:
                raise
            raise ConfigError(f"{literal(where)} holds an invalid run configuration ({exc.template})",
                              exc.names) from None


def _threads_ok(value: Any) -> bool:
    return value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_THREADS)


def _threads_from_text(text: str) -> Threads:
    return text if text == "auto" else int(text)


THREADS = Check(object, f"'auto' or an integer in [1, {MAX_THREADS}] (MAX_THREADS: 4 per CPU)", _threads_ok,
                from_text=_threads_from_text)


@dataclass(frozen=True)
class RunOptions:
    """How one run is carried out (none of it changes the numbers): where it is written, whether
    it resumes, how often it saves, what it draws, how many threads it uses.

    ``run_dir=None`` writes nothing. ``resume`` continues the run in ``run_dir`` exactly as if
    it had not stopped; without it (or ``overwrite``) a folder that holds files is refused.
    """

    run_dir: Optional[Path] = None
    overwrite: bool = option(False, "replace the files of an existing run folder", FLAG, sweep=True,
                             sweep_help="replace the files of an existing folder")
    resume: bool = False
    checkpoint_every: int = option(10, "also write the checkpoint every N epochs (0: only at the end)",
                                   NON_NEGATIVE_INT, metavar="N")
    detect_anomaly: bool = option(False, "train under torch.autograd's anomaly mode (slow; names the operation "
                                  "that made a NaN)", FLAG)
    figures: bool = option(True, "skip the figures, replays and report (fastest)", FLAG, flag="--no-figures",
                           sweep=True, sweep_help="skip the accuracy histogram")
    animation: bool = option(True, "skip the training replays (GIFs), keep the figures and report", FLAG,
                             flag="--no-animation")
    threads: Threads = option("auto", "intra-op threads: auto = one for tiny models (their kernels are too small "
                              "to split; more threads only wait on each other, and run several times slower "
                              "when another process is busy)", THREADS, sweep=True)
    handle_signals: bool = True

    def __post_init__(self) -> None:
        if self.run_dir is not None and not isinstance(self.run_dir, Path):
            object.__setattr__(self, "run_dir", Path(self.run_dir))

    def validate(self) -> "RunOptions":
        """Raises :class:`~squareseq.errors.ConfigError` naming the first bad field; returns self."""
        _check_fields(self)
        if self.resume and self.run_dir is None:
            raise ConfigError("{resume} needs the run folder that holds the checkpoint", ("resume",))
        if self.resume and self.overwrite:
            raise ConfigError("{overwrite} and {resume} contradict each other: resume continues the run's files",
                              ("overwrite", "resume"))
        return self



def _seed_part(text: str, spec: str) -> range:
    """The seeds one part of a seed list stands for (``"7"`` or ``"0-255"``), not yet expanded."""
    try:
        first, last = (text.split("-", 1) if "-" in text else (text, text))
        seeds = range(int(first), int(last) + 1)
    except ValueError:
        raise SquareseqError(f"bad seed list {spec!r}: use forms like '0-255' or '1,5,9'") from None
    return seeds


def parse_seeds(spec: Union[str, int, Iterable[int]]) -> List[int]:
    """Seeds from ``"0-255"``, ``"1,5,9"``, ``"0-3,10"``, an int or an iterable of ints.

    Raises ``ValueError`` for an empty list, a malformed part, a seed given twice, a seed outside
    ``[0, 2**32)`` (what ``train --seed`` takes) or more than :data:`MAX_SEEDS` seeds (counted
    from the text, before any list is built).
    """
    if isinstance(spec, bool):
        raise SquareseqError(f"bad seed list {spec!r}: use forms like '0-255' or '1,5,9'")
    if isinstance(spec, int):
        seeds = [spec]
    elif not isinstance(spec, str):
        seeds = []
        for s in spec:
            seeds.append(int(s))
            if len(seeds) > MAX_SEEDS:
                raise SquareseqError(f"more than {MAX_SEEDS:,} seeds (MAX_SEEDS): give fewer seeds")
    else:
        texts = spec.replace(" ", "").split(",")
        if "" in texts and texts != [""]:
            raise SquareseqError(f"an empty part in the seed list {spec!r}: separate seeds and ranges with single "
                                 "commas, as in '0-3,10'")
        parts = [_seed_part(part, spec) for part in texts if part]
        count = sum(len(part) for part in parts)
        if count > MAX_SEEDS:
            raise SquareseqError(f"{spec!r} holds {count:,} seeds; a sweep trains at most {MAX_SEEDS:,} (MAX_SEEDS): "
                                 "give fewer seeds")
        seeds = [seed for part in parts for seed in part]
    if not seeds:
        raise SquareseqError(f"no seeds in {spec!r}: use forms like '0-255' or '1,5,9'")
    outside = [seed for seed in seeds if not 0 <= seed < 2**32]
    if outside:
        raise SquareseqError(f"seed {outside[0]} is outside [0, 2**32): give seeds from 0 to {2**32 - 1}, as "
                             "train --seed takes them")
    if len(set(seeds)) != len(seeds):
        raise SquareseqError(f"seeds repeat in {spec!r}: give each seed once")
    return seeds
