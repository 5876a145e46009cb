"""The playground's settings: the few knobs its page shows, their URL names, their caps, and how a
query string (or the page's JSON) becomes a checked :class:`~squareseq.config.RunConfig`.

The caps are tighter than the CLI's (:mod:`squareseq.config`): a page trains while a person
watches, on a machine others may share, so a hidden size of 4096 or a million sequences is
refused with a message that names the cap. Imports no torch and no web server.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from squareseq.config import LAYOUT_CHOICES, SWEEP_MODEL_CHOICES, TASK_CHOICES, RunConfig
from squareseq.errors import ConfigError

__all__ = ["FIELDS", "describe_fields", "LIMITS", "SettingsError", "parse_settings", "settings_of", "parse_lr"]

#: Caps of the sizes a page may ask for (the CLI's are far larger: it runs in one's own terminal).
LIMITS: Dict[str, Tuple[float, float]] = {
    "hidden": (1, 64), "epochs": (1, 1000), "n_train": (2, 4096), "n_test": (2, 1024),
    "batch": (1, 1024), "lr": (1e-6, 10.0), "noise": (0.0, 1.0), "seed": (0, 2**32 - 1),
}


class SettingsError(ConfigError):
    """A bad setting of the page, naming the ``field`` (its URL name) it concerns."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message.replace("{", "{{").replace("}", "}}"))
        self.field = field


@dataclass(frozen=True)
class Field:
    """One setting: its URL name, the :class:`RunConfig` field it sets, its default (a string, as in
    a URL) and how to read it."""

    name: str
    config_name: str
    default: str
    read: Callable[[str, str], Any]
    label: str
    choices: Tuple[str, ...] = ()

    def describe(self) -> Dict[str, Any]:
        """The field as the page builds its form from it."""
        if self.name == "data":
            return {"name": self.name, "label": self.label, "default": self.default, "kind": "upload"}
        if self.choices:
            return {"name": self.name, "label": self.label, "default": self.default, "choices": list(self.choices)}
        low, high = LIMITS[self.name]
        kind = "float" if "." in self.default else "int"
        return {"name": self.name, "label": self.label, "default": self.default, "kind": kind, "min": low, "max": high}


def _choice(*choices: str) -> Callable[[str, str], str]:
    def read(name: str, text: str) -> str:
        if text not in choices:
            raise SettingsError(name, f"{name} must be one of: {', '.join(choices)} (got {text[:40]!r})")
        return text
    return read


def _number(kind: type, bounded: bool = True) -> Callable[[str, str], Any]:
    def read(name: str, text: str) -> Any:
        label = _BY_NAME[name].label if name in _BY_NAME else name
        low, high = LIMITS[name]
        what = "an integer" if kind is int else "a number"
        try:
            value = kind(text)
        except (TypeError, ValueError):
            raise SettingsError(name, f"{name} must be {what} in [{_show(low)}, {_show(high)}] "
                                      f"(got {text[:40]!r})") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise SettingsError(name, f"{name} must be a finite number in [{_show(low)}, {_show(high)}]")
        if bounded and not low <= value <= high:
            raise SettingsError(name, f"{label} {text[:40]} is outside the playground's range "
                                      f"[{_show(low)}, {_show(high)}]: pick a value inside it")
        return value
    return read


def _show(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


LAYOUTS = LAYOUT_CHOICES
TASKS, LENGTHS, CELLS = TASK_CHOICES, ("fixed", "variable"), SWEEP_MODEL_CHOICES  # cells: the recurrent ones
#: The page's settings in the order it shows them. Defaults are the tutorial's run.
FIELDS: Tuple[Field, ...] = (
    Field("task", "task", "direction", _choice(*TASKS), "task", TASKS),
    Field("noise", "noise", "0.1", _number(float), "noise"),
    Field("length", "variable_len", "fixed", _choice(*LENGTHS), "sequence length", LENGTHS),
    Field("cell", "model", "rnn", _choice(*CELLS), "cell", CELLS),
    Field("hidden", "hidden_dim", "2", _number(int), "hidden size"),
    Field("lr", "lr", "0.01", _number(float), "learning rate"),
    Field("batch", "batch_size", "16", _number(int), "batch size"),
    Field("seed", "seed", "21", _number(int), "seed"),
    Field("epochs", "epochs", "100", _number(int), "epochs"),
    Field("n_train", "n_train", "128", _number(int), "training sequences"),
    Field("n_test", "n_test", "128", _number(int), "test sequences"),
    Field("data", "data", "", lambda name, text: text, "own sequences (.npz)"),
    Field("layout", "layout", "auto", _choice(*LAYOUTS), "file layout", LAYOUTS),
)
#: Settings that shape generated squares: a run on an uploaded file leaves them out.
GENERATED_ONLY = ("task", "noise", "length", "n_train", "n_test")
_BY_NAME = {f.name: f for f in FIELDS}
#: The longest text a setting may hold: a URL is no place for megabytes.
MAX_TEXT = 64


def settings_of(values: Mapping[str, Any]) -> Dict[str, str]:
    """Every setting as its URL text: ``values`` (a query string's or JSON's) over the defaults.
    Refuses names the page does not know and texts past :data:`MAX_TEXT`."""
    unknown = sorted(k for k in values if k not in _BY_NAME)
    if unknown:
        raise SettingsError(unknown[0], f"unknown setting {unknown[0][:40]!r}: the playground takes "
                                        + ", ".join(_BY_NAME))
    out = {f.name: f.default for f in FIELDS}
    for name, value in values.items():
        text = value if isinstance(value, str) else _json_text(name, value)
        if len(text) > MAX_TEXT:
            raise SettingsError(name, f"{name} is {len(text)} characters long: at most {MAX_TEXT}")
        out[name] = text.strip()
    return out


def _json_text(name: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SettingsError(name, f"{name} must be a string or a number, not {type(value).__name__}")
    return repr(value)


def parse_settings(values: Mapping[str, Any],
                   uploads: Optional[Callable[[str], Optional[Path]]] = None) -> Tuple[RunConfig, Dict[str, str]]:
    """The run ``values`` describe (missing ones take the tutorial's), checked, and its settings
    as URL texts; raises :class:`SettingsError` naming the first bad setting.

    ``data`` is the token of an uploaded file (``uploads(token)`` finds it): the run trains on
    it, standardised, validating on its test part as the book does, and the settings that shape
    generated squares are left out."""
    texts = settings_of(values)
    own = texts["data"] != ""
    fields: Dict[str, Any] = {}
    for f in FIELDS:
        if f.name == "data" or (own and f.name in GENERATED_ONLY) or (not own and f.name == "layout"):
            continue
        value = f.read(f.name, texts[f.name])
        fields[f.config_name] = value == "variable" if f.name == "length" else value
    if own:
        path = uploads(texts["data"]) if uploads is not None else None
        if path is None:
            raise SettingsError("data", "the uploaded file is not on the server (it keeps the last few while it "
                                        "runs): upload it again, or clear it to train on generated squares")
        fields.update(data=str(path), val_fraction=0.0, early_stopping=0, standardize=True)
    try:
        config = RunConfig(**fields).validate()
    except ConfigError as exc:  # a combination the run itself refuses (the parameter count, say)
        names = {f.config_name: f.name for f in FIELDS}
        field = next((names[n] for n in exc.names if n in names), "settings")
        raise SettingsError(field, exc.render(lambda n: names.get(n, n))) from None
    return config, texts


def parse_lr(value: Any) -> float:
    """A new learning rate sent while paused, checked as the ``lr`` setting is."""
    text = value if isinstance(value, str) else _json_text("lr", value)
    return float(_BY_NAME["lr"].read("lr", text[:MAX_TEXT]))


def describe_fields() -> Dict[str, Any]:
    """Every setting with its default and range or choices (what ``/api/fields`` answers)."""
    return {"fields": [f.describe() for f in FIELDS]}
