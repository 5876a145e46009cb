"""MkDocs hooks (``hooks:`` in mkdocs.yml): what the site generates from the code at build time.

- ``cli.md``: the command line reference, walked from the ``squareseq`` parser
  (:mod:`cli_reference`), never written by hand;
- ``assets/figures/*.png``: figures drawn by squareseq itself (matplotlib's Agg backend): the
  tutorial's training data, and the hidden states and losses of the tutorial's model, trained
  once per build (100 epochs, about half a second);
- ``notebooks/*.ipynb``: the repository's notebooks, copied so the site offers them, and the
  table of them on the chapter page (``<!-- notebooks -->``);
- ``<!-- build: counts -->`` on a page: the test counts the build's own training run printed;
- ``<!-- fields: RunConfig -->`` (or ``RunOptions``): the class's fields with their defaults, flags
  and help, from the fields' metadata.

Everything is generated into the site's file list (nothing is written into docs/). The squareseq
imported is this checkout's ``src/``.
"""
from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path
from typing import Any, Dict, List

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

import matplotlib  # noqa: E402

matplotlib.use("Agg")

from mkdocs.structure.files import File, Files  # noqa: E402

FIGURE_DIR = "assets/figures"

#: The notebooks the chapter page lists: file name and what it covers.
NOTEBOOKS = (
    ("tutorial.ipynb", "the Square Model tutorial, cell by cell, on squareseq"),
    ("chapter.ipynb", "the chapter: cell, layer, stacked, bidirectional, square model, hidden states, GRU, LSTM, "
                      "variable length, Conv1d, the all-in-one model"),
    ("own_data.ipynb", "your own sequences: a file in, a trained model, its figures and predictions out"),
)

_built: Dict[str, Any] = {}


def _cli_reference() -> Any:
    spec = importlib.util.spec_from_file_location("squareseq_docs_cli", Path(__file__).with_name("cli_reference.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def draw_figures() -> Dict[str, bytes]:
    """The site's figures by file name, drawn by squareseq's own figure functions."""
    from squareseq import RunConfig, RunOptions, make_sequences, make_tensors, run_experiment
    from squareseq.figures.hidden import plot_hidden_steps, plot_journey
    from squareseq.figures.plots import plot_data

    points, directions = make_sequences(n=128, seed=13)  # the tutorial's training set
    figures = {"data.png": _png(plot_data(points, directions))}
    result = run_experiment(RunConfig(), RunOptions(run_dir=None, handle_signals=False))
    _built["counts"] = result.counts.tolist()
    _built["accuracy"] = result.metrics["test"]["accuracy"]
    model = result.trainer.model
    x_test, y_test, _ = make_tensors(n=128, seed=19)
    figures["losses.png"] = _png(result.trainer.plot_losses())
    figures["hidden_steps.png"] = _png(plot_hidden_steps(model, x_test, y_test))
    figures["hidden_journey.png"] = _png(plot_journey(model, x_test[0], int(y_test[0])))
    return figures


def on_files(files: Files, config: Any) -> Files:
    files.append(File.generated(config, "cli.md", content=_cli_reference().cli_markdown()))
    for name, data in draw_figures().items():
        files.append(File.generated(config, f"{FIGURE_DIR}/{name}", content=data))
    for name, _ in NOTEBOOKS:
        path = ROOT / "notebooks" / name
        if path.is_file():
            files.append(File.generated(config, f"notebooks/{name}", abs_src_path=str(path)))
    return files


def _notebook_table(page_uri: str) -> str:
    depth = page_uri.count("/")
    lines = ["| notebook | what it walks through |", "|---|---|"]
    for name, text in NOTEBOOKS:
        if (ROOT / "notebooks" / name).is_file():
            cell = f"[`notebooks/{name}`]({'../' * depth}notebooks/{name})"
        else:
            cell = f"`notebooks/{name}` (not in this checkout)"
        lines.append(f"| {cell} | {text} |")
    return "\n".join(lines)


def field_table(cls: type) -> str:
    """A config class's fields as a Markdown table: name, default, CLI flag and help, read from the
    fields' metadata (:func:`squareseq.config.option`), the same text ``--help`` prints."""
    import dataclasses

    from squareseq.config import flag_of

    escape = _cli_reference().escape

    lines = ["| field | default | flag | meaning |", "|---|---|---|---|"]
    for f in dataclasses.fields(cls):
        meta = f.metadata
        flag = f"`{flag_of(f.name, cls)}`" if "check" in meta or f.name == "run_dir" else "(Python only)"
        text = escape(" ".join(str(meta.get("help", "")).split()))
        lines.append(f"| `{f.name}` | `{f.default!r}` | {flag} | {text} |")
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    if "<!-- fields: " in markdown:
        from squareseq import config as run_config

        for name in ("RunConfig", "RunOptions"):
            markdown = markdown.replace(f"<!-- fields: {name} -->", field_table(getattr(run_config, name)))
    if "<!-- notebooks -->" in markdown:
        markdown = markdown.replace("<!-- notebooks -->", _notebook_table(page.file.src_uri))
    if "<!-- build: counts -->" in markdown:
        counts, accuracy = _built["counts"], _built["accuracy"]
        markdown = markdown.replace("<!-- build: counts -->",
                                    f"`{counts}`, accuracy {accuracy:.4f} ({sum(c for c, _ in counts)}/"
                                    f"{sum(n for _, n in counts)})")
    return markdown


_ROLE = None


def on_page_content(html: str, page: Any, config: Any, files: Files) -> str:
    """Docstrings name things with Sphinx roles (``:class:`~squareseq.config.RunOptions```); in the
    rendered page those read as code, without the role and, for ``~``, with the last name only."""
    import re

    global _ROLE
    if _ROLE is None:
        _ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|exc|obj):<code>(~?)([^<]*)</code>")

    def plain(match: "re.Match[str]") -> str:
        name = match.group(2)
        return f"<code>{name.rsplit('.', 1)[-1] if match.group(1) else name}</code>"

    return _ROLE.sub(plain, html)


__all__: List[str] = ["draw_figures", "field_table", "on_files", "on_page_markdown", "on_page_content"]
