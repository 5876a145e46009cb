"""Option fields with the metadata the CLI is generated from: :class:`Check` (what a value must
be), :func:`option` (a dataclass field carrying its help, check and flag) and the checks shared by
:mod:`squareseq.config`'s classes. Torch-free, like the config itself."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Iterator, Optional, Tuple

from squareseq.errors import ConfigError, SquareseqError, literal

__all__ = ["Check", "option", "options_of", "check_fields", "is_int", "is_number"]


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
FRACTION_OR_ZERO = Check(float, "a number in [0, 1)", lambda v: 0 <= v < 1)
FLAG = Check(bool, "true or false")
ANY_TEXT = Check(str, "a file name")


def option(default: Any, help: str, check: Check, *, sweep: bool = False, flag: Optional[str] = None,
           metavar: Optional[str] = None, sweep_choices: Tuple[str, ...] = (), sweep_help: Optional[str] = None,
           negatable: bool = False, grid: bool = False) -> Any:
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
        negatable: a boolean with a ``--no-`` twin (``--standardize``/``--no-standardize``), for
            switches whose default depends on the run (``None`` until resolved).
        grid: ``squareseq sweep`` takes a comma-separated list of values for it (a settings grid).
    """
    meta = {"help": help, "check": check, "sweep": sweep, "flag": flag, "metavar": metavar,
            "sweep_choices": sweep_choices, "sweep_help": sweep_help or help, "negatable": negatable, "grid": grid}
    return field(default=default, metadata=meta)


def options_of(cls: type) -> Iterator[dataclasses.Field]:
    """The fields of ``cls`` that carry :func:`option` metadata, in declaration order."""
    return (f for f in fields(cls) if "check" in f.metadata)


def check_fields(obj: Any) -> None:
    for f in options_of(type(obj)):
        value = getattr(obj, f.name)
        if value is None and f.default is None:
            continue
        check: Check = f.metadata["check"]
        if not check.accepts(value):
            raise ConfigError("{%s} must be %s, got %s" % (f.name, check.expected, literal(repr(value))), (f.name,))
