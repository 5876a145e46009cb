"""The run report: every figure of a run as PNG, the replays as GIF, and ``report.html``.

* :func:`write_figures` draws the tutorial's figures, the hidden-state figures and the replays
  into a run folder.
* :func:`write_report` builds ``report.html`` from what the run folder holds (``metrics.json``
  and the images): one self-contained page, images embedded as data URIs, no server, no network.
* :func:`finish_run` does both after training (what ``squareseq train`` calls);
  :func:`redraw_run` does both from a finished run folder, without retraining
  (what ``squareseq plot RUN_DIR`` calls).

All three take an optional ``progress`` callable (see :data:`FigureProgress`): drawing takes
seconds per replay, and a caller with a UI (the CLI's progress bar) shows which file is drawn.
"""
from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from .models import SquareConv1d

__all__ = ["FIGURES", "ANIMATIONS", "FigureProgress", "figure_inputs", "hidden_figures_apply",
           "hidden_figures_skip_reason", "replay_skip_reason", "write_figures", "write_report", "finish_run",
           "redraw_run", "load_model"]

PathLike = Union[str, "os.PathLike[str]"]
#: ``progress(done, total, name)``: called before each file is written (``name``: that file,
#: ``done``: how many of the ``total`` are written already), and once after the last one
#: (``done == total``, ``name == ""``).
FigureProgress = Callable[[int, int, str], None]
#: The key of ``metrics.json`` that records why a run has no hidden-state figures or replays.
SKIPPED_KEY = "skipped_figures"

#: The run folder's figures: file name, heading, caption.
FIGURES: Tuple[Tuple[str, str, str], ...] = (
    ("losses.png", "Loss curve", "Training and validation loss per epoch (log scale)."),
    ("corners.png", "The square", "The four corners A-D, travelled clockwise or counter-clockwise."),
    ("sequences.png", "The eight sequences", "Every starting corner in both directions, without noise."),
    ("data.png", "Training data", "The first noisy training sequences, points numbered in order."),
    ("hidden_steps.png", "Hidden states, step by step",
     "The test sequences' hidden states after each step, over the classifier's probability map "
     "(blue: clockwise, red: counter-clockwise; dashed: P = 0.5)."),
    ("hidden_canonical.png", "The eight noise-free sequences in hidden space",
     "Final hidden states of the eight canonical sequences."),
    ("hidden_journey.png", "One sequence's journey",
     "Per step: the previous hidden state, transformed (green), plus the transformed input (orange), "
     "squashed by tanh (purple) into the new hidden state."),
    ("hidden_paths.png", "Paths through hidden space",
     "Hidden states through time, from the zero initial state, per direction."),
    ("conv_filter.png", "The convolution's filter",
     "How strongly the learned filter responds to each directed edge of the square."),
)
#: The replays: file name, kind (see :mod:`squareseq.replay`), heading, caption.
ANIMATIONS: Tuple[Tuple[str, str, str, str], ...] = (
    ("training.gif", "hidden", "Training replay",
     "The hidden-state panels over the epochs, with the loss curve growing beside them."),
    ("boundary.gif", "boundary", "The decision boundary moving",
     "The classifier's boundary in hidden space per epoch (grey: the previous epochs')."),
)


# -- figures ------------------------------------------------------------------------------------

def figure_inputs(data) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` tensors from ``(points, directions)`` or from tensors; variable-length data keeps
    only its full-length sequences (padding would draw as hidden states)."""
    from .data import to_tensors
    from .rundata import Split

    if not isinstance(data, (tuple, list)) or len(data) < 2:
        raise ValueError("data must be (points, directions) or (x, y)")
    first, labels = data[0], data[1]
    if isinstance(first, torch.Tensor):
        return first.float(), torch.as_tensor(labels).reshape(-1)
    split = Split(*to_tensors(first, labels, float_labels=False)).full_length()
    return split.x, split.y


def hidden_figures_skip_reason(model: nn.Module) -> Optional[str]:
    """Why the hidden-state figures and replays do not describe ``model``, or None when they do.

    They draw a one-directional recurrent layer's hidden states (the last of which the
    classifier reads) over a two-class probability map; this is the one place that decides it.
    """
    from .hidden import recurrent_layer

    try:
        rnn = recurrent_layer(model)
    except ValueError:
        kind = "a Conv1d model" if isinstance(model, SquareConv1d) else f"a {type(model).__name__} model"
        return f"not drawn for {kind} (they show a recurrent layer's hidden states)"
    if rnn.bidirectional:
        return ("not drawn for a bidirectional model (they show one direction's hidden states; "
                "the classifier reads both)")
    if getattr(model, "classifier", None) is None:
        return "not drawn for a model without a 'classifier' (they draw its probability map)"
    n_outputs = int(getattr(model, "n_outputs", 1))
    if n_outputs > 2:  # one logit (BCE) or two (softmax, with or without a reference logit): two classes
        return f"not drawn for more than two classes ({n_outputs} here; they draw a two-class probability map)"
    return None


def hidden_figures_apply(model: nn.Module) -> bool:
    """Whether the hidden-state figures and replays describe ``model``: a one-directional
    recurrent layer whose last output the classifier reads, and at most two classes."""
    return hidden_figures_skip_reason(model) is None


def replay_skip_reason(model: nn.Module, animation: bool = True, figures: bool = True) -> Optional[str]:
    """Why a run of ``model`` trained this way has no replays (GIFs), or None when it has them:
    the model (:func:`hidden_figures_skip_reason`) or the options that skipped them."""
    reason = hidden_figures_skip_reason(model)
    if reason is not None:
        return reason
    if not figures:
        return "trained with --no-figures, so no snapshots were recorded"
    if not animation:
        return "skipped with --no-animation"
    return None


def _skipped(model: nn.Module, replays: Optional[str]) -> Dict[str, Optional[str]]:
    """What ``metrics.json`` records under :data:`SKIPPED_KEY`."""
    return {"hidden": hidden_figures_skip_reason(model), "replays": replays}


def _points(data) -> Tuple[List[np.ndarray], np.ndarray]:
    first, labels = data[0], data[1]
    if isinstance(first, torch.Tensor):
        first = list(first.cpu().numpy())
    return list(first), np.asarray(torch.as_tensor(labels).reshape(-1).cpu())


def _save(fig, path: Path, dpi: int) -> Path:
    import matplotlib.pyplot as plt

    try:
        fig.savefig(path, dpi=dpi)
    finally:
        plt.close(fig)
    return path


#: One file of a run folder to write: its name and the function that writes it.
_Step = Tuple[str, Callable[[], Path]]


def _run_steps(steps: Sequence[_Step], progress: Optional[FigureProgress]) -> List[Path]:
    """Writes ``steps`` in order, telling ``progress`` about each; returns the paths written."""
    written = []
    for done, (name, write) in enumerate(steps):
        if progress is not None:
            progress(done, len(steps), name)
        written.append(write())
    if progress is not None:
        progress(len(steps), len(steps), "")
    return written


def _figure_steps(
    run_dir: Path,
    model: nn.Module,
    train_data,
    test_data,
    history,
    snapshots,
    animation: bool,
    dpi: int,
    task: str,
) -> List[_Step]:
    """The figures and replays of :func:`write_figures`, in its order, as steps not yet run."""
    from . import hidden_plots as hp
    from . import plots
    from .data import class_names, label_directions
    from .hidden import recurrent_layer

    x_test, y_test = figure_inputs(test_data)
    drawers = {"losses.png": lambda: plots.plot_losses(history)}
    if train_data is not None:
        points, labels = _points(train_data)
        directions = label_directions(labels, task)
        drawers["corners.png"] = lambda: plots.counter_vs_clock(draw_arrows=True)
        if task == "direction":  # the tutorial's figures, exactly
            drawers["sequences.png"] = plots.plot_sequences
            drawers["data.png"] = lambda: plots.plot_data(points, directions)
        else:
            drawers["sequences.png"] = lambda: plots.plot_sequences(task=task)
            drawers["data.png"] = lambda: plots.plot_data(points, directions, labels=labels,
                                                          class_names=class_names(task))
    rnn = recurrent_layer(model) if hidden_figures_apply(model) else None
    if isinstance(model, SquareConv1d):
        from .conv_plots import plot_conv_filter

        drawers["conv_filter.png"] = lambda: plot_conv_filter(model)
    if rnn is not None and len(x_test):
        hidden = None

        def states():
            nonlocal hidden
            if hidden is None:
                from .hidden import hidden_states

                hidden = hidden_states(model, x_test)
            return hidden

        drawers["hidden_steps.png"] = lambda: hp.plot_hidden_steps(model, x_test, y_test, hidden=states())
        drawers["hidden_canonical.png"] = lambda: hp.plot_canonical_hidden(model)
        if isinstance(rnn, nn.RNN):
            drawers["hidden_journey.png"] = lambda: hp.plot_journey(model, x_test[0], int(y_test[0]))
        drawers["hidden_paths.png"] = lambda: hp.plot_hidden_paths(model, x_test, y_test, hidden=states())
    steps: List[_Step] = [(name, lambda name=name: _save(drawers[name](), run_dir / name, dpi))
                          for name, _, _ in FIGURES if name in drawers]
    if animation and rnn is not None and snapshots is not None and len(snapshots):
        from .replay import compute_frames, write_gif

        frames = None

        def gif(name: str, kind: str) -> Path:
            nonlocal frames
            if frames is None:  # shared by both replays, computed while the first is drawn
                frames = compute_frames(snapshots, history)
            return write_gif(frames, history, run_dir / name, kind=kind)

        steps += [(name, lambda name=name, kind=kind: gif(name, kind)) for name, kind, _, _ in ANIMATIONS]
    return steps


def write_figures(
    run_dir: PathLike,
    model: nn.Module,
    train_data,
    test_data,
    history,
    snapshots=None,
    animation: bool = True,
    dpi: int = 100,
    *,
    task: str = "direction",
    progress: Optional[FigureProgress] = None,
) -> List[Path]:
    """Writes every figure of a run that applies to it as PNG, and the replays as GIF.

    Args:
        run_dir: the run folder (created if missing).
        model: the trained model (``basic_rnn`` + ``classifier``; hidden-state figures are
            skipped for models without a recurrent layer, the journey for non-``nn.RNN`` cells).
        train_data: ``(points, labels)`` as ``make_sequences`` returns them, or ``(x, y)``;
            None for data that are not squares (the tutorial's square figures are skipped).
        test_data: the same for the test set: the hidden-state figures use it.
        history: a ``History`` or a dict with ``losses`` and ``val_losses``.
        snapshots: :class:`squareseq.replay.Snapshots` recorded during training; without them,
            no GIF is written.
        animation: write the GIFs (``training.gif``, ``boundary.gif``) when snapshots are given.
        dpi: resolution of the PNGs.
        task: the labelling task of ``train_data`` (see :data:`squareseq.data.TASKS`): the data
            figures name the task's classes; ``"direction"`` draws the tutorial's figures.
        progress: told about each file as it is drawn (see :data:`FigureProgress`).

    Returns:
        The paths written, in :data:`FIGURES` order, then the GIFs.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return _run_steps(_figure_steps(run_dir, model, train_data, test_data, history, snapshots, animation, dpi,
                                    task), progress)


# -- the HTML page ------------------------------------------------------------------------------

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


def _flatten(config: Any, prefix: str = "") -> List[Tuple[str, Any]]:
    if isinstance(config, dict):
        rows = []
        for key, value in config.items():
            rows += _flatten(value, f"{prefix}{key}.")
        return rows
    return [(prefix[:-1], config)]


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], first_key: bool = False) -> str:
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
    """The report's name of each class: the tutorial's for the direction task (and for two-class
    runs that recorded no names), else the run's class names with their label."""
    from .data import class_names
    from .plots import CLASS_TITLES

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


#: Confusion-matrix cell colours: correct (diagonal) blue, errors red.
_RIGHT, _WRONG = "31,119,180", "214,39,40"


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
    rows = []
    for k, (correct, total) in enumerate(counts):
        acc = f"{100 * correct / total:.1f}%" if total else "n/a"
        rows.append([html.escape(names[k]), int(correct), int(total), acc])
    correct = sum(int(c) for c, _ in counts)
    total = sum(int(t) for _, t in counts)
    rows.append(["<b>all</b>", correct, total, f"{100 * correct / total:.1f}%" if total else "n/a"])
    return _table(["class", "correct", "total", "accuracy"], rows)


def _data_uri(path: Path) -> str:
    mime = {"png": "image/png", "gif": "image/gif"}[path.suffix.lower().lstrip(".")]
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _figure_html(path: Path, heading: str, caption: str, embed: bool) -> str:
    src = _data_uri(path) if embed else html.escape(path.name)
    return (f'<figure id="{html.escape(path.stem)}"><h3>{html.escape(heading)}</h3>'
            f'<img src="{src}" alt="{html.escape(heading)}">'
            f"<figcaption>{html.escape(caption)} <span class=\"muted\">({html.escape(path.name)})</span>"
            f"</figcaption></figure>")


def _missing(what: str, reason: Optional[str]) -> str:
    """The note that stands in for a section's missing images, with the reason when known."""
    return f'<p class="muted">{html.escape(what)}' + (f": {html.escape(reason)}" if reason else "") + ".</p>"


def _read_metrics(run_dir: Path) -> Dict[str, Any]:
    path = run_dir / "metrics.json"
    if not path.exists():
        raise ValueError(f"{run_dir} holds no metrics.json: is it a squareseq run folder?")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None


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
    metrics = _read_metrics(run_dir)
    test = metrics.get("test", {})
    skipped = skipped if skipped is not None else (metrics.get(SKIPPED_KEY) or {})
    parts = [f"<h1>{html.escape(title)}</h1>",
             f'<p class="muted">Run folder: {html.escape(run_dir.resolve().name)}</p>']
    if "accuracy" in test:
        epochs = metrics.get("epochs", len(metrics.get("losses", [])))
        parts.append(f'<p class="summary">Test accuracy <b>{100 * float(test["accuracy"]):.1f}%</b> '
                     f"after {int(epochs)} epochs.</p>")
    sections = [("results", "Results"), ("figures", "Data and training"), ("hidden", "Hidden space"),
                ("replays", "Replays"), ("config", "Configuration")]
    parts.append("<nav>" + "".join(f'<a href="#{a}">{t}</a>' for a, t in sections) + "</nav>")

    parts.append('<h2 id="results">Results</h2>')
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

    known = {name for name, _, _ in FIGURES}
    groups = {"figures": [], "hidden": []}
    for name, heading, caption in FIGURES:
        path = run_dir / name
        if path.exists():
            groups["hidden" if name.startswith("hidden") else "figures"].append(_figure_html(path, heading, caption, embed))
    for path in sorted(run_dir.glob("*.png")):
        if path.name not in known:
            groups["figures"].append(_figure_html(path, path.stem.replace("_", " ").capitalize(), "", embed))
    parts.append('<h2 id="figures">Data and training</h2>' + "".join(groups["figures"]))
    parts.append('<h2 id="hidden">Hidden space</h2>'
                 + ("".join(groups["hidden"])
                    or _missing("No hidden-state figures in this run", skipped.get("hidden"))))
    gifs = [_figure_html(run_dir / name, heading, caption, embed)
            for name, _, heading, caption in ANIMATIONS if (run_dir / name).exists()]
    parts.append('<h2 id="replays">Replays</h2>'
                 + ("".join(gifs) or _missing("No replay in this run", skipped.get("replays"))))

    parts.append('<h2 id="config">Configuration</h2>')
    config = metrics.get("config") or {}
    if config:
        rows = [[html.escape(k), html.escape(json.dumps(v) if not isinstance(v, str) else v)]
                for k, v in _flatten(config)]
        parts.append(_table(["setting", "value"], rows, first_key=True))
    files = [name for name in ("metrics.json", "checkpoint.pt", "snapshots.pt") if (run_dir / name).exists()]
    if files:
        parts.append("<p>Files: " + ", ".join(f'<a href="{html.escape(n)}">{html.escape(n)}</a>' for n in files) + "</p>")

    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")
    out = run_dir / "report.html"
    out.write_text(page, encoding="utf-8")
    return out


# -- after training, and from a run folder ------------------------------------------------------

def finish_run(
    run_dir: PathLike,
    model: nn.Module,
    train_data,
    test_data,
    history,
    snapshots=None,
    animation: bool = True,
    dpi: int = 100,
    *,
    task: str = "direction",
    progress: Optional[FigureProgress] = None,
) -> List[Path]:
    """After training: saves ``snapshots.pt`` (when given), writes every figure and the GIFs, then
    ``report.html``. ``metrics.json`` must already be in ``run_dir``. Returns the paths written;
    ``task`` and ``progress`` as for :func:`write_figures`."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    recorded = snapshots is not None and len(snapshots) > 0
    replays = replay_skip_reason(model, animation)
    if replays is None and not recorded:
        replays = "no snapshots were recorded"
    steps: List[_Step] = [("snapshots.pt", lambda: snapshots.save(run_dir / "snapshots.pt"))] if recorded else []
    steps += _figure_steps(run_dir, model, train_data, test_data, history, snapshots, animation, dpi, task)
    steps.append(("report.html", lambda: write_report(run_dir, skipped=_skipped(model, replays))))
    return _run_steps(steps, progress)


def load_model(checkpoint: Dict[str, Any]) -> nn.Module:
    """Rebuilds the model of a squareseq checkpoint from its ``model_config`` and weights."""
    from .inference import model_from_checkpoint

    return model_from_checkpoint(checkpoint)


def redraw_run(run_dir: PathLike, animation: bool = True, dpi: int = 100, *,
               progress: Optional[FigureProgress] = None) -> List[Path]:
    """Redraws every figure, the GIFs (from ``snapshots.pt``, if the run kept it) and
    ``report.html`` of a finished run, without retraining.

    Reads ``checkpoint.pt`` (the model), ``metrics.json`` (losses and the configuration) and
    rebuilds the data from the run's configuration (generated squares from their seeds, or the
    run's data file). ``progress`` is told about each file as it is drawn (see
    :data:`FigureProgress`).
    """
    from . import checkpoint as ckpt
    from .config import RunConfig
    from .replay import Snapshots
    from .rundata import build_data

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"run folder not found: {run_dir}")
    metrics = _read_metrics(run_dir)
    model = load_model(ckpt.load(run_dir / "checkpoint.pt"))
    config = RunConfig.from_dict(metrics.get("config") or {})
    data = build_data(config)
    history = {"losses": metrics.get("losses", []), "val_losses": metrics.get("val_losses", [])}
    snapshots = None
    if animation and (run_dir / "snapshots.pt").exists():
        snapshots = Snapshots.load(run_dir / "snapshots.pt")
    replays = replay_skip_reason(model, animation)
    if replays is None and snapshots is None:  # why training kept none, as it recorded it
        replays = (metrics.get(SKIPPED_KEY) or {}).get("replays") or "the run folder holds no snapshots.pt"
    steps = _figure_steps(run_dir, model, data.figure_train, data.figure_test, history, snapshots, animation, dpi,
                          config.task)
    steps.append(("report.html", lambda: write_report(run_dir, skipped=_skipped(model, replays))))
    return _run_steps(steps, progress)
