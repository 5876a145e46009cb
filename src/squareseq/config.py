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
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from squareseq.errors import ConfigError, SquareseqError, literal
from squareseq.options import (
    ANY_TEXT,
    FLAG,
    FRACTION,
    FRACTION_OR_ZERO,
    NON_NEGATIVE_FLOAT,
    NON_NEGATIVE_INT,
    POSITIVE_FLOAT,
    POSITIVE_INT,
    SEED,
    Check,
    _int_in,
    check_fields,
    option,
    options_of,
)
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
MODEL_CHOICES = ("rnn", "gru", "lstm", "conv1d", "square-conv1d")
LAYOUT_CHOICES = ("auto", "NLF", "NCL")
SCHEDULER_CHOICES = ("none", "cosine", "plateau")
POOLING_CHOICES = ("avg", "max")
MAX_KERNEL = 1024
MAX_DILATION = 64
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


#: Defaults of the options whose default depends on the data: the tutorial's for generated squares
#: (bit for bit the book's run), and for a ``--data`` file of one's own sequences a model that fits
#: real series, standardised inputs, a validation split carved from the training part and early
#: stopping on it (restoring the best epoch).
GENERATED_DEFAULTS: Dict[str, Any] = {"model": "rnn", "hidden_dim": 2, "epochs": 100, "lr": 0.01, "standardize": False,
                                      "val_fraction": 0.0, "early_stopping": 0}
#: Chosen on archive datasets (docs/own-data-benchmarks.md): the GRU failed the long ones (ArrowHead:
#: 0.43), the convolution at lr 0.001, patience 50 beat 1-NN DTW on the mean of all six.
DATA_DEFAULTS: Dict[str, Any] = {"model": "conv1d", "hidden_dim": 64, "epochs": 300, "lr": 0.001, "standardize": True,
                                 "val_fraction": 0.2, "early_stopping": 50}
#: Layers of each model when ``num_layers`` is not given.
DEFAULT_LAYERS: Dict[str, int] = {"conv1d": 3}
#: What a stored configuration written before an option existed meant by its absence.
LEGACY_VALUES: Dict[str, Any] = {**GENERATED_DEFAULTS, "num_layers": 1, "layout": "NLF"}
_CONV = ("conv1d", "square-conv1d")


@dataclass(frozen=True)
class RunConfig:
    """The tutorial's experiment (defaults reproduce it), one field per ``squareseq train`` option.

    ``loss="auto"`` means ``bce-logits`` for two classes and ``ce-free`` for more; the run
    records the loss it resolved to. ``data`` names a ``.npz``/``.csv``/``.ts`` file of your own
    sequences (see :mod:`squareseq.data.files`) instead of generated squares. Options left at
    ``None`` take their default from the data when the config is made: :data:`GENERATED_DEFAULTS`
    for squares, :data:`DATA_DEFAULTS` with ``data`` (so ``RunConfig()`` is the tutorial's run).
    They are resolved once: ``RunConfig().replace(data=...)`` keeps the tutorial's values, while
    ``RunConfig(data=...)`` takes the data's.
    """

    epochs: int = option(None, "training epochs (default: 100, or 300 with --data; with --resume: the new total, "
                         "default there: the run's)",
                         _int_in(1, MAX_EPOCHS, f"an integer in [1, {MAX_EPOCHS}]"), sweep=True,
                         sweep_help="training epochs (default: 100, or 300 with --data)")
    batch_size: int = option(16, "sequences per mini-batch", POSITIVE_INT, sweep=True, grid=True)
    lr: float = option(None, "Adam's learning rate (default: 0.01, or 0.001 with --data)", POSITIVE_FLOAT, sweep=True,
                       grid=True)
    hidden_dim: int = option(None, "size of the recurrent hidden state, or channels of conv1d (default: 2, the "
                             "tutorial's, or 64 with --data)",
                             _int_in(1, MAX_HIDDEN, f"an integer in [1, {MAX_HIDDEN}]"), sweep=True, grid=True)
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
    model: str = option(None, "rnn (the tutorial's), gru, lstm, conv1d (stacked 1-D convolutions with global "
                        "pooling: any length), or square-conv1d (the book's one-filter convolution); default: rnn, "
                        "or conv1d with --data",
                        Check(str, "one of: " + ", ".join(MODEL_CHOICES), choices=MODEL_CHOICES), sweep=True,
                        sweep_choices=MODEL_CHOICES, sweep_help="the model every run of the sweep uses")
    num_layers: int = option(None, "stacked recurrent or convolutional layers (default: 1, or 3 for conv1d)",
                             _int_in(1, MAX_LAYERS, f"an integer in [1, {MAX_LAYERS}]"), sweep=True, grid=True)
    bidirectional: bool = option(False, "add a recurrent layer that reads the sequences backwards", FLAG)
    kernel_size: int = option(5, "conv1d: steps each filter spans",
                              _int_in(1, MAX_KERNEL, f"an integer in [1, {MAX_KERNEL}]"))
    dilation: int = option(2, "conv1d: layer i spaces its filter's taps DILATION**i steps apart (1: no dilation)",
                           _int_in(1, MAX_DILATION, f"an integer in [1, {MAX_DILATION}]"))
    pooling: str = option("avg", "conv1d: global pooling over each sequence's real steps, avg or max",
                          Check(str, "avg or max", choices=POOLING_CHOICES))
    variable_len: bool = option(False, "generated sequences keep their first 2-4 points (trained as packed "
                                "sequences)", FLAG)
    task: str = option("direction", "direction: clockwise or not (2 classes); corner-direction: starting corner "
                       "and direction (8 classes)",
                       Check(str, "one of: " + ", ".join(TASK_CHOICES), choices=TASK_CHOICES))
    noise: float = option(0.1, "standard deviation of the generated points' noise", NON_NEGATIVE_FLOAT)
    data: Optional[str] = option(None, "train on your own sequences: a .npz (X, y[, lengths, X_test, y_test, "
                                 "lengths_test]), long-format .csv (sequence, step, features..., label[, split]) or "
                                 ".ts file (needs the 'aeon' extra)", ANY_TEXT, metavar="FILE", sweep=True)
    layout: str = option("auto", "with --data: NLF = arrays (N, L, F), steps then features (the README's); NCL = "
                         "(N, C, L), channels then steps (aeon's, sktime's); auto: read from the shape where it "
                         "tells, else asked for", Check(str, "one of: " + ", ".join(LAYOUT_CHOICES),
                                                        choices=LAYOUT_CHOICES), sweep=True)
    test_fraction: float = option(0.2, "with --data and no test set in the file: the share held out for testing",
                                  FRACTION, sweep=True)
    val_fraction: float = option(None, "share of the training part held out for validation (stratified, seeded): "
                                 "what val_loss, early stopping and sweeps judge by; 0: validate on the test set, "
                                 "as the book does (default: 0 for generated squares, 0.2 with --data)",
                                 FRACTION_OR_ZERO, sweep=True)
    split_seed: int = option(0, "seed of the stratified test and validation splits", SEED, sweep=True)
    standardize: bool = option(None, "rescale each feature by the training part's mean and deviation (kept in "
                               "the checkpoint, applied by evaluate and predict; default: on with --data)", FLAG,
                               negatable=True, sweep=True)
    early_stopping: int = option(None, "stop when the validation loss has not improved for PATIENCE epochs and "
                                 "restore the best epoch (kept as best.pt); 0: off (default: 0, or 50 with --data)",
                                 NON_NEGATIVE_INT, metavar="PATIENCE", sweep=True)
    scheduler: str = option("none", "learning-rate schedule: none, cosine (annealed to 0 over the epochs) or plateau "
                            "(halved when the validation loss stalls for 10 epochs)",
                            Check(str, "one of: " + ", ".join(SCHEDULER_CHOICES), choices=SCHEDULER_CHOICES),
                            sweep=True)
    clip_grad: float = option(0.0, "clip the gradients' norm to this value after each backward pass (0: off)",
                              NON_NEGATIVE_FLOAT, metavar="NORM", sweep=True)
    weight_decay: float = option(0.0, "Adam's weight decay (L2 penalty)", NON_NEGATIVE_FLOAT, sweep=True, grid=True)

    def __post_init__(self) -> None:
        defaults = DATA_DEFAULTS if self.data is not None else GENERATED_DEFAULTS
        for name, value in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        if self.num_layers is None:
            object.__setattr__(self, "num_layers", DEFAULT_LAYERS.get(self.model, 1)
                               if isinstance(self.model, str) else 1)

    @property
    def has_validation_split(self) -> bool:
        """Whether the run holds out a validation split of its own (else it validates on the test set)."""
        return self.val_fraction > 0

    def validate(self) -> "RunConfig":
        """Raises :class:`~squareseq.errors.ConfigError` naming the first bad field; returns self."""
        check_fields(self)
        if self.model in _CONV and self.bidirectional:
            raise ConfigError("{bidirectional} applies to recurrent models, not {model} %s" % self.model,
                              ("bidirectional", "model"))
        if self.model == "square-conv1d" and self.num_layers != 1:
            raise ConfigError("{model} square-conv1d is the book's one-layer convolution: drop {num_layers}, or use "
                              "{model} conv1d", ("num_layers", "model"))
        if self.model == "square-conv1d" and self.loss == "ce":
            raise ConfigError("{loss} ce pins the first logit of a recurrent model at 0; {model} square-conv1d has no "
                              "such logit: use {loss} ce-free (one free logit per class) or bce-logits",
                              ("loss", "model"))
        if self.model == "square-conv1d" and (self.kernel_size, self.dilation, self.pooling) != (5, 2, "avg"):
            raise ConfigError("{kernel_size}, {dilation} and {pooling} shape {model} conv1d; square-conv1d is the "
                              "book's one-filter, kernel-2 convolution: drop them, or use {model} conv1d",
                              ("kernel_size", "dilation", "pooling", "model"))
        if self.early_stopping and not self.has_validation_split:
            raise ConfigError("{early_stopping} watches a validation split of the run's own: give {val_fraction} "
                              "(with 0 the validation set is the test set, which early stopping must not see)",
                              ("early_stopping", "val_fraction"))
        if self.data is not None:
            generated_only = [name for name, differs in (
                ("task", self.task != "direction"), ("noise", self.noise != 0.1),
                ("variable_len", self.variable_len)) if differs]
            if generated_only:
                names = ", ".join("{%s}" % name for name in generated_only)
                raise ConfigError(f"{names} shape generated squares and do not apply to {{data}} {literal(self.data)}",
                                  (*generated_only, "data"))
        elif self.standardize or self.layout != "auto":
            name = "standardize" if self.standardize else "layout"
            raise ConfigError("{%s} applies to {data} files only" % name, (name, "data"))
        else:  # generated squares: every size is known from the config
            n_outputs = 8 if self.task == "corner-direction" else 2
            check_parameter_count(self.model, dict(n_features=GENERATED_FEATURES, hidden_dim=self.hidden_dim,
                                                   n_outputs=n_outputs, num_layers=self.num_layers,
                                                   bidirectional=self.bidirectional, seq_len=GENERATED_STEPS,
                                                   kernel_size=self.kernel_size))
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
        stored = {k: v for k, v in data.items() if k in known}
        if "data" in stored and "val_fraction" not in stored:  # written before these options existed
            if stored.get("model") == "conv1d":
                stored["model"] = "square-conv1d"  # conv1d meant the book's one-filter model then
            legacy = LEGACY_VALUES if stored["data"] is not None else {**LEGACY_VALUES, "layout": "auto"}
            stored = {**legacy, **stored}
        try:
            return cls(**stored).validate()
        except ConfigError as exc:
            if not where:
                raise
            raise ConfigError(f"{literal(where)} holds an invalid run configuration ({exc.template})",
                              exc.names) from None


def _threads_ok(value: Any) -> bool:
    return value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_THREADS)


THREADS = Check(object, f"'auto' or an integer in [1, {MAX_THREADS}] (MAX_THREADS: 4 per CPU)", _threads_ok,
                from_text=lambda text: text if text == "auto" else int(text))


def _device_ok(value: Any) -> bool:
    if value in ("cpu", "cuda", "mps", "auto"):
        return True
    kind, _, index = value.partition(":")
    return kind == "cuda" and index.isascii() and index.isdigit() and len(index) <= 3


DEVICE = Check(str, "cpu, cuda, cuda:N, mps or auto", _device_ok)


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
    animation: bool = option(True, "skip the training replays (interactive and GIF), keep the figures and report",
                             FLAG, flag="--no-animation")
    gif: bool = option(False, "also write the replays as GIFs (training.gif, boundary.gif: for slides, chat)", FLAG)
    threads: Threads = option("auto", "intra-op threads: auto = one for tiny models (their kernels are too small "
                              "to split; more threads only wait on each other, and run several times slower "
                              "when another process is busy)", THREADS, sweep=True)
    device: str = option("cpu", "where to train: cpu, cuda, cuda:N, mps, or auto (cuda when available, else cpu)",
                         DEVICE, sweep=True)
    tensorboard: bool = option(False, "also log each epoch's losses and learning rate, and the model's graph, to "
                               "RUN/tensorboard (open with: tensorboard --logdir RUN; needs the tensorboard extra)",
                               FLAG)
    handle_signals: bool = True

    def __post_init__(self) -> None:
        if self.run_dir is not None and not isinstance(self.run_dir, Path):
            object.__setattr__(self, "run_dir", Path(self.run_dir))

    def validate(self) -> "RunOptions":
        """Raises :class:`~squareseq.errors.ConfigError` naming the first bad field; returns self."""
        check_fields(self)
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
