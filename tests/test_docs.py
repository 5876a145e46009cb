"""The documentation site: its CLI reference is generated from the parser and lists every
subcommand and flag; ``mkdocs build --strict`` (warnings as errors) builds every page, the API
reference and the figures (the build is marked slow; mkdocs is optional)."""
import argparse
import dataclasses
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from squareseq.cli.parser import build_parser
from squareseq.config import RunConfig, RunOptions

ROOT = Path(__file__).resolve().parents[1]


def _cli_reference():
    spec = importlib.util.spec_from_file_location("docs_cli_reference", ROOT / "tools" / "docs" / "cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _parser_surface(parser: argparse.ArgumentParser):
    """Every subcommand and its option strings, read from the parser itself (not the generator)."""
    commands = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                commands[name] = [flag for a in sub._actions for flag in a.option_strings if flag not in ("-h", "--help")]
    top = [flag for a in parser._actions for flag in a.option_strings if flag not in ("-h", "--help")]
    return top, commands


def _assert_lists_everything(text: str, parser: argparse.ArgumentParser) -> None:
    top, commands = _parser_surface(parser)
    assert commands, "the parser has no subcommands"
    for flag in top:
        assert f"`{flag}" in text, flag
    for name, flags in commands.items():
        heading = f"## `squareseq {name}`"
        assert heading in text, name
        section = text.split(heading, 1)[1].split("\n## ", 1)[0]
        for flag in flags:
            assert f"`{flag}" in section, f"{name} {flag}"


def test_cli_reference_lists_every_subcommand_and_flag():
    parser = build_parser()
    text = _cli_reference().cli_markdown()
    _assert_lists_everything(text, parser)
    assert "--hidden-dim HIDDEN_DIM" in text and "--no-standardize" in text  # metavars and negated switches
    assert "(default: 100, or 300 with --data" in text  # help as --help prints it


def test_cli_reference_follows_a_new_subcommand_and_flag():
    """A subcommand or flag added to the parser (as another branch adds ``export``) appears unedited."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    extra = sub.add_parser("frobnicate", help="a command the generator has never seen")
    extra.add_argument("run", metavar="RUN_DIR", help="the run")
    extra.add_argument("--format", choices=["a|b", "c"], default="c", help="a pipe in a choice: %(choices)s")
    text = _cli_reference().cli_markdown(parser)
    _assert_lists_everything(text, parser)
    assert "[`frobnicate`](#squareseq-frobnicate) | a command the generator has never seen |" in text
    assert "a pipe in a choice: a\\|b, c" in text  # escaped, so the table keeps its columns


KEY_PAGES = ["index.html", "getting-started.html", "tutorial.html", "chapter.html", "run-folder.html", "cli.html",
             "performance.html", "distributed.html", "own-data-benchmarks.html", "mutation-testing.html", "api/index.html",
             "api/stepbystep.html", "api/config.html", "api/experiment.html", "api/data.html", "api/models.html",
             "api/training.html", "api/figures.html"]
FIGURES = ["data.png", "losses.png", "hidden_steps.png", "hidden_journey.png"]


@pytest.mark.slow
def test_site_builds_strict_with_every_page(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(site)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    for page in KEY_PAGES:
        assert (site / page).is_file(), page
    for name in FIGURES:
        data = (site / "assets" / "figures" / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5000, name
    cli = (site / "cli.html").read_text()
    top, commands = _parser_surface(build_parser())
    for name, flags in commands.items():
        assert f'id="squareseq-{name}"' in cli, name
        for flag in flags:
            assert f"<code>{flag}" in cli, f"{name} {flag}"
    api = (site / "api" / "stepbystep.html").read_text()
    assert "set_loaders" in api and "loader_apply" in api  # the docstrings' members were rendered
    assert ":class:" not in (site / "api" / "experiment.html").read_text()  # Sphinx roles read as code
    config_page = (site / "api" / "config.html").read_text()
    for cls in (RunConfig, RunOptions):  # the field tables, generated from the fields themselves
        for f in dataclasses.fields(cls):
            assert f"<code>{f.name}</code>" in config_page, f.name
    html = (site / "tutorial.html").read_text()
    assert "build: counts" not in html and "[[50, 53], [75, 75]]</code>, accuracy 0.9766" in html  # the build's own run
    tutorial = re.sub(r"<[^>]+>", "", html)  # highlighted code: text only
    assert "sbs_rnn.train(100)" in tutorial  # the example included from the repository
