"""The CLI reference page, generated from the ``squareseq`` parser itself (never written by hand).

It walks :func:`squareseq.cli.parser.build_parser`: the top-level options, then every subcommand
(``parser.commands``) with its usage line, description, positional arguments and options (flags,
metavar, choices, default, help), and the epilog. The docs build calls :func:`cli_markdown`
through ``tools/docs/hooks.py``; ``python tools/docs/cli_reference.py`` prints the page.
"""
from __future__ import annotations

import argparse
import textwrap
from typing import Dict, Iterator, List, Optional, Tuple

from squareseq.cli.parser import build_parser

__all__ = ["cli_markdown", "parser_commands", "flags_of", "escape", "ESCAPES"]

# Characters Markdown tables and text would misread in help texts.
ESCAPES = {"|": "\\|", "<": "&lt;", ">": "&gt;", "*": "\\*", "_": "\\_"}

_SKIP = (argparse._HelpAction, argparse._SubParsersAction)


def escape(text: str) -> str:
    """``text`` with the characters Markdown would misread escaped."""
    return "".join(ESCAPES.get(ch, ch) for ch in text)


def parser_commands(parser: argparse.ArgumentParser) -> Dict[str, argparse.ArgumentParser]:
    """The subcommands' parsers by name, in the order the parser lists them."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _documented(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    return (a for a in parser._actions if not isinstance(a, _SKIP))


def flags_of(parser: argparse.ArgumentParser) -> List[str]:
    """Every option string of ``parser`` (``--help`` excepted), in order."""
    return [flag for action in _documented(parser) for flag in action.option_strings]


def _help_text(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The help as ``--help`` prints it (``%(default)s`` filled in, the formatter's default note added)."""
    formatter = parser._get_formatter()
    text = formatter._get_help_string(action) if action.help else ""
    if not text:
        return ""
    params = {k: v for k, v in vars(action).items() if v is not argparse.SUPPRESS}
    if params.get("choices") is not None:
        params["choices"] = ", ".join(str(c) for c in params["choices"])
    return text % params


def _row(parser: argparse.ArgumentParser, action: argparse.Action) -> Tuple[str, str]:
    if action.option_strings:
        metavar = ""
        if action.nargs != 0:
            metavar = " " + parser._get_formatter()._format_args(action, action.dest.upper())
        names = ", ".join(f"`{flag}{metavar}`" for flag in action.option_strings)
    else:
        names = f"`{action.metavar or action.dest}`"
    help_text = _help_text(parser, action)
    if getattr(action, "required", False) and action.option_strings:
        help_text = "(required) " + help_text
    return names, escape(" ".join(help_text.split()))


def _table(parser: argparse.ArgumentParser, actions: List[argparse.Action]) -> List[str]:
    lines = ["| argument | meaning |", "|---|---|"]
    lines += [f"| {names} | {text} |" for names, text in (_row(parser, a) for a in actions)]
    return lines + [""]


def _groups(parser: argparse.ArgumentParser) -> List[str]:
    """Mutually exclusive groups, in one sentence each (``predict``'s ``--points`` or ``--input``)."""
    lines = []
    for group in parser._mutually_exclusive_groups:
        flags = " or ".join(f"`{a.option_strings[0]}`" for a in group._group_actions)
        lines.append(f"Give {'exactly' if group.required else 'at most'} one of {flags}.")
    return lines + [""] if lines else []


def _usage(parser: argparse.ArgumentParser) -> str:
    """The usage line, wrapped at 100 columns whatever the terminal's width."""
    text = " ".join(parser.format_usage().split())[len("usage: "):]
    return textwrap.fill(text, 100, subsequent_indent="    ", break_on_hyphens=False, break_long_words=False)


def _command(name: str, parser: argparse.ArgumentParser) -> List[str]:
    actions = list(_documented(parser))
    positional = [a for a in actions if not a.option_strings]
    options = [a for a in actions if a.option_strings]
    lines = [f"## `squareseq {name}`", "", "```text", _usage(parser), "```", ""]
    if parser.description:
        lines += [escape(" ".join(parser.description.split())), ""]
    if positional:
        lines += ["**Arguments**", ""] + _table(parser, positional)
    if options:
        lines += ["**Options**", ""] + _table(parser, options) + _groups(parser)
    if parser.epilog:
        lines += [escape(parser.epilog), ""]
    return lines


def cli_markdown(parser: Optional[argparse.ArgumentParser] = None) -> str:
    """The whole CLI reference page, as Markdown, of ``parser`` (default: squareseq's own)."""
    parser = build_parser() if parser is None else parser
    commands = parser_commands(parser)
    lines = [
        "# Command line reference",
        "",
        "This page is generated from the `squareseq` argument parser each time the site is built "
        "(`tools/docs/cli_reference.py`), so it lists exactly the commands and options "
        "`squareseq --help` and `squareseq COMMAND --help` show.",
        "",
        "```text",
        _usage(parser),
        "```",
        "",
    ]
    if parser.description:
        lines += [escape(parser.description), ""]
    lines += ["| command | what it does |", "|---|---|"]
    helps = {a.dest: a.help for action in parser._actions if isinstance(action, argparse._SubParsersAction)
             for a in action._choices_actions}
    lines += [f"| [`{name}`](#squareseq-{name}) | {escape(helps.get(name) or '')} |" for name in commands]
    lines += ["", "**Options**", ""] + _table(parser, list(_documented(parser)))
    if parser.epilog:
        lines += [escape(parser.epilog), ""]
    for name, sub in commands.items():
        lines += _command(name, sub)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(cli_markdown(), end="")
