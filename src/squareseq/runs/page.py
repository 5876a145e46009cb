"""The run report's HTML page: :func:`write_report` builds ``report.html`` from what a run folder
holds (``metrics.json``, the figures and ``replay.json``), as one self-contained page: images
embedded as data URIs, the interactive replay's data and viewer inlined
(:mod:`squareseq.runs.page_viewer`), no server, no network.

The page only reads files; it draws nothing and never re-derives a run's results: classes are
named as ``metrics.json``'s ``class_names`` say. It may import the standard library, numpy and
:mod:`squareseq.figures.run_figures` (for the figure tables and :data:`SKIPPED_KEY`), never torch or
matplotlib at import time, nor the run layer (``config``, ``rundata``, ``rebuild``). Only a page
with class tables imports :mod:`squareseq.figures.plots` (the tutorial's class titles) and
:mod:`squareseq.data.squares` (the direction task's names), to tell the tutorial's run from others.
"""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from squareseq.errors import SquareseqError
from squareseq.figures.durable import write_file
from squareseq.figures.figure_set import (
    ANIMATIONS,
    CLASS_ANIMATION_TEXT,
    CLASS_FIGURES,
    FIGURES,
    SKIPPED_KEY,
    VIEWER_FILE,
    VIEWER_TEXT,
    class_figures,
    figure_table,
)
from squareseq.figures.run_figures import PathLike
from squareseq.runs.page_viewer import viewer_html

__all__ = ["write_report", "read_metrics"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0 auto;
max-width:1200px;padding:1.5rem;color:#222;line-height:1.45}
h1{margin-bottom:.2rem}h2{margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:right}
th{background:#f4f4f4}td.key{text-align:left;font-family:monospace}
figure{margin:1rem 0}img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#555;font-size:.9rem}.muted{color:#777;font-size:.9rem}
.summary{font-size:1.15rem}nav a{margin-right:.8rem}
"""
#: The page's sections: anchor, heading.
_SECTIONS = (("results", "Results"), ("figures", "Data and training"), ("hidden", "Hidden space"),
             ("replays", "Replays"), ("config", "Configuration"))
#: Confusion-matrix cell colours: correct (diagonal) blue, errors red.
_RIGHT, _WRONG = "31,119,180", "214,39,40"


def read_metrics(run_dir: Path) -> Dict[str, Any]:
    """A run folder's ``metrics.json``; a ValueError that says so for a folder that is not a run."""
    path = run_dir / "metrics.json"
    if not path.exists():
        raise SquareseqError(f"{run_dir} holds no metrics.json: is it a squareseq run folder?")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SquareseqError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None


# -- tables ---------------------------------------------------------------------------------------

def _flatten(config: Any, prefix: str = "") -> List[Tuple[str, Any]]:
    """``(dotted.key, value)`` rows of a nested configuration dict."""
    if isinstance(config, dict):
        rows = []
        for key, value in config.items():
            rows += _flatten(value, f"{prefix}{key}.")
        return rows
    return [(prefix[:-1], config)]


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], first_key: bool = False) -> str:
    """An HTML table; cells are inserted as given (escape them first), headers are escaped."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            cls = ' class="key"' if first_key and i == 0 else ""
            cells.append(f"<td{cls}>{cell}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _class_labels(names: Optional[Sequence[str]], n_classes: int) -> List[str]:
    """The page's name of each class, from the run's ``class_names``: the tutorial's titles for
    the direction task (and for two-class runs that recorded no names), else each name with its
    label; ``class k`` when the run names no classes or the wrong number."""
    from squareseq.data.squares import class_names
    from squareseq.figures.plots import CLASS_TITLES

    if n_classes == 2 and (names is None or list(names) == class_names("direction")):
        names = CLASS_TITLES
    elif names is None or len(names) != n_classes:
        return [f"class {k}" for k in range(n_classes)]
    return [name if name == f"class {k}" else f"{name} (y={k})" for k, name in enumerate(names)]


def _confusion(test: Dict[str, Any]) -> Optional[np.ndarray]:
    """The test confusion matrix, from ``metrics.json`` or, for two classes, from the counts."""
    if test.get("confusion_matrix") is not None:
        return np.asarray(test["confusion_matrix"], dtype=np.int64)
    counts = test.get("correct_per_class")
    if counts is None or len(counts) != 2:
        return None
    (c0, n0), (c1, n1) = counts
    return np.array([[c0, n0 - c0], [n1 - c1, c1]], dtype=np.int64)


def _confusion_style(count: int, row_total: int, diagonal: bool) -> str:
    """A cell's CSS. Diagonal cells: blue, darker the larger their share of the row. Errors: red,
    never paler than a clearly visible pink, and bold, so one error stands out from none.
    Off-diagonal zeros: plain, grey text. Backgrounds stay light enough for dark text."""
    share = count / row_total if row_total else 0.0
    if diagonal:
        return f"background:rgba({_RIGHT},{0.12 + 0.5 * share:.2f})"
    if count == 0:
        return "color:#999"
    return f"background:rgba({_WRONG},{0.4 + 0.4 * share:.2f});font-weight:bold"


def _confusion_html(matrix: np.ndarray, names: Sequence[str]) -> str:
    """The confusion matrix as a table: true classes as rows, predicted ones as columns."""
    n = len(matrix)
    rows = []
    for i in range(n):
        total = int(matrix[i].sum())
        cells = [f'<span style="display:block;{_confusion_style(int(matrix[i, j]), total, i == j)}">'
                 f"{int(matrix[i, j])}</span>" for j in range(n)]
        rows.append([html.escape(names[i]), *cells])
    headers = ["true \\ predicted", *names]
    return _table(headers, rows)


def _counts_html(counts: Sequence[Sequence[int]], names: Sequence[str]) -> str:
    """Correct, total and accuracy per class, then for all classes together."""
    rows = []
    for k, (correct, total) in enumerate(counts):
        acc = f"{100 * correct / total:.1f}%" if total else "n/a"
        rows.append([html.escape(names[k]), int(correct), int(total), acc])
    correct = sum(int(c) for c, _ in counts)
    total = sum(int(t) for _, t in counts)
    rows.append(["<b>all</b>", correct, total, f"{100 * correct / total:.1f}%" if total else "n/a"])
    return _table(["class", "correct", "total", "accuracy"], rows)


# -- images ---------------------------------------------------------------------------------------

def _data_uri(path: Path) -> str:
    """The image at ``path`` as a ``data:`` URI, so the page needs no file beside it."""
    mime = {"png": "image/png", "gif": "image/gif"}[path.suffix.lower().lstrip(".")]
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _figure_html(path: Path, heading: str, caption: str, embed: bool) -> str:
    """One image with its heading and caption, embedded or referenced by file name."""
    src = _data_uri(path) if embed else html.escape(path.name)
    return (f'<figure id="{html.escape(path.stem)}"><h3>{html.escape(heading)}</h3>'
            f'<img src="{src}" alt="{html.escape(heading)}">'
            f"<figcaption>{html.escape(caption)} <span class=\"muted\">({html.escape(path.name)})</span>"
            f"</figcaption></figure>")


def _missing(what: str, reason: Optional[str]) -> str:
    """The note that stands in for a section's missing images, with the reason when known."""
    return f'<p class="muted">{html.escape(what)}' + (f": {html.escape(reason)}" if reason else "") + ".</p>"


# -- sections -------------------------------------------------------------------------------------

def _results(metrics: Dict[str, Any]) -> List[str]:
    """The results section: counts per class, the confusion matrix and the final losses."""
    test = metrics.get("test", {})
    parts = ['<h2 id="results">Results</h2>']
    if test.get("correct_per_class") is not None:
        counts = test["correct_per_class"]
        parts.append("<h3>Correct per class (test set)</h3>"
                     + _counts_html(counts, _class_labels(metrics.get("class_names"), len(counts))))
    matrix = _confusion(test)
    if matrix is not None:
        parts.append("<h3>Confusion matrix (test set)</h3>"
                     + _confusion_html(matrix, _class_labels(metrics.get("class_names"), len(matrix))))
    losses, val_losses = metrics.get("losses") or [], metrics.get("val_losses") or []
    if losses:
        last_val = val_losses[-1] if val_losses and val_losses[-1] is not None else None
        parts.append(f"<p>Final training loss {float(losses[-1]):.4f}"
                     + (f", validation loss {float(last_val):.4f}" if last_val is not None else "") + ".</p>")
    return parts


def _class_run(metrics: Dict[str, Any]) -> bool:
    """Whether the run drew the class figures: it trained on a data file or has more than two
    classes (see :func:`~squareseq.figures.figure_set.class_figures`)."""
    config = metrics.get("config")
    config = config if isinstance(config, dict) else {}
    data_file = config.get("data") if isinstance(config.get("data"), str) else None
    names = metrics.get("class_names") or []
    counts = (metrics.get("test") or {}).get("correct_per_class") or []
    return class_figures(max(len(names), len(counts), 2), data_file)


def _skipped_lines(names: Sequence[str], skipped: Dict[str, Optional[str]], shown: Optional[str]) -> str:
    """One line per file of ``names`` that ``skipped`` gives a reason for, saying why it is not
    drawn (files whose reason the section's note ``shown`` already gives are named there)."""
    headings = {name: heading for name, heading, _ in (*FIGURES, *CLASS_FIGURES)}
    headings.update({name: heading for name, _, heading, _ in ANIMATIONS})
    headings[VIEWER_FILE] = VIEWER_TEXT[0]
    lines = [f"<li>{html.escape(headings.get(name, name))} <span class=\"muted\">({html.escape(name)})</span>: "
             f"{html.escape(str(skipped[name]))}</li>" for name in names
             if isinstance(skipped.get(name), str) and skipped[name] != shown]
    return f'<p class="muted">Not drawn:</p><ul class="skipped">{"".join(lines)}</ul>' if lines else ""


def _section(anchor: str, heading: str, images: List[str], names: Sequence[str], skipped: Dict[str, Optional[str]],
             what: Optional[str] = None, reason: Optional[str] = None) -> str:
    """A section of images, or the note ``what`` (with ``reason``) when it has none, then a line
    for every file of ``names`` skipped for another reason."""
    note = _missing(what, reason) if what is not None and not images else ""
    shown = reason if note else None
    return f'<h2 id="{anchor}">{heading}</h2>' + "".join(images) + note + _skipped_lines(names, skipped, shown)


def _images(run_dir: Path, embed: bool, skipped: Dict[str, Optional[str]], class_run: bool = False) -> List[str]:
    """The figures, hidden-space and replay sections: every image the folder holds, in the run's
    figure table (:func:`~squareseq.figures.figure_set.figure_table`) then file-name order, a
    note saying why a section has none, and a line for each figure skipped and why."""
    table = figure_table(class_run)
    known = {name for name, _, _ in (*FIGURES, *CLASS_FIGURES)}
    groups: Dict[str, List[str]] = {"figures": [], "hidden": []}
    names: Dict[str, List[str]] = {"figures": [], "hidden": []}
    for name, heading, caption in table:
        group = "hidden" if name.startswith("hidden") else "figures"
        names[group].append(name)
        path = run_dir / name
        if path.exists():
            groups[group].append(_figure_html(path, heading, caption, embed))
    for path in sorted(run_dir.glob("*.png")):
        if path.name not in known:
            groups["figures"].append(_figure_html(path, path.stem.replace("_", " ").capitalize(), "", embed))
    texts = {name: (heading, caption) for name, _, heading, caption in ANIMATIONS}
    if class_run:
        texts.update(CLASS_ANIMATION_TEXT)
    viewer = viewer_html(run_dir)
    gifs = [viewer] if viewer is not None else []
    gifs += [_figure_html(run_dir / name, *texts[name], embed)
             for name, _, _, _ in ANIMATIONS if (run_dir / name).exists()]
    hidden_names = names["hidden"] + [n for n in ("hidden_canonical.png",) if n not in names["hidden"]]
    return [_section("figures", "Data and training", groups["figures"], names["figures"], skipped),
            _section("hidden", "Hidden space", groups["hidden"], hidden_names, skipped,
                     "No hidden-state figures in this run", skipped.get("hidden")),
            _section("replays", "Replays", gifs, [VIEWER_FILE, *(name for name, _, _, _ in ANIMATIONS)], skipped,
                     "No replay in this run", skipped.get("replays"))]


def _configuration(run_dir: Path, metrics: Dict[str, Any]) -> List[str]:
    """The configuration section: every setting, then links to the run's data files."""
    parts = ['<h2 id="config">Configuration</h2>']
    config = metrics.get("config") or {}
    if config:
        rows = [[html.escape(k), html.escape(json.dumps(v) if not isinstance(v, str) else v)]
                for k, v in _flatten(config)]
        parts.append(_table(["setting", "value"], rows, first_key=True))
    files = [name for name in ("metrics.json", "checkpoint.pt", "best.pt", "snapshots.pt") if (run_dir / name).exists()]
    if files:
        links = (f'<a href="{html.escape(n)}">{html.escape(n)}</a>' for n in files)
        parts.append("<p>Files: " + ", ".join(links) + "</p>")
    return parts


def write_report(run_dir: PathLike, embed: bool = True, title: str = "squareseq run report",
                 skipped: Optional[Dict[str, Optional[str]]] = None) -> Path:
    """Builds ``report.html`` from the run folder's ``metrics.json`` and images.

    The page holds the configuration, the per-class counts and accuracy, the confusion matrix
    (classes named as ``metrics.json``'s ``class_names``) and every figure and replay found in
    the folder. With ``embed`` (the default) the images are data URIs, so the page is one file
    that opens anywhere; otherwise they are referenced by file name, relative to the page.
    Links go only to files that exist in the folder.

    ``skipped`` says why the run has no hidden-state figures (``"hidden"``) or replays
    (``"replays"``); by default, what ``metrics.json`` recorded under :data:`SKIPPED_KEY`.
    """
    run_dir = Path(run_dir)
    metrics = read_metrics(run_dir)
    test = metrics.get("test", {})
    skipped = skipped if skipped is not None else (metrics.get(SKIPPED_KEY) or {})
    parts = [f"<h1>{html.escape(title)}</h1>",
             f'<p class="muted">Run folder: {html.escape(run_dir.resolve().name)}</p>']
    if "accuracy" in test:
        epochs = metrics.get("epochs", len(metrics.get("losses", [])))
        parts.append(f'<p class="summary">Test accuracy <b>{100 * float(test["accuracy"]):.1f}%</b> '
                     f"after {int(epochs)} epochs.</p>")
    parts.append("<nav>" + "".join(f'<a href="#{a}">{t}</a>' for a, t in _SECTIONS) + "</nav>")
    parts += _results(metrics) + _images(run_dir, embed, skipped, _class_run(metrics))
    parts += _configuration(run_dir, metrics)
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(parts) + "\n</body></html>\n")
    out = run_dir / "report.html"
    _write_atomically(out, page.encode("utf-8"))
    return out


def _write_atomically(path: Path, data: bytes) -> None:
    """Writes ``data`` to a temporary file beside ``path``, then renames it over ``path`` (a crash
    or a signal leaves the old page or the new one); durable at once, or with the drawing phase's
    batch (see :mod:`squareseq.figures.durable`); an ``OSError`` names ``path``."""
    write_file(path, lambda f: f.write(data))
