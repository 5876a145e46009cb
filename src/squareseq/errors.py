"""The one exception family squareseq raises for bad input: a ``ValueError`` whose message is a
single line saying what is wrong and how to fix it. The CLI prints it and exits with code 2.

Library messages speak of parameters by their Python names (``hidden_dim``); a
:class:`ConfigError` keeps those names apart from its text, so the CLI can say ``--hidden-dim``
instead, in one place (:meth:`ConfigError.render`).
"""
from __future__ import annotations

from typing import Callable, Sequence

__all__ = ["SquareseqError", "ConfigError", "DataError", "ModelError", "literal"]


class SquareseqError(ValueError):
    """Bad input (an option, a file, a tensor, a checkpoint) described in one line."""


class DataError(SquareseqError):
    """Sequences, labels or lengths that cannot be used as given."""


class ModelError(SquareseqError):
    """A model, or a model description, that cannot be built or does not fit its task."""


def literal(text: object) -> str:
    """``text`` made safe to embed in a :class:`ConfigError` template (braces doubled)."""
    return str(text).replace("{", "{{").replace("}", "}}")


class ConfigError(SquareseqError):
    """A bad option value. ``template`` names options as ``{field_name}`` placeholders; ``str()``
    shows the field names, :meth:`render` any other spelling of them (the CLI's flags)."""

    def __init__(self, template: str, names: Sequence[str] = ()) -> None:
        self.template, self.names = template, tuple(names)
        super().__init__(self.render(str))

    def render(self, name_of: Callable[[str], str]) -> str:
        """The message with each option named by ``name_of(field_name)``."""
        if not self.names:
            return self.template.replace("{{", "{").replace("}}", "}")
        return self.template.format_map({name: name_of(name) for name in self.names})
