"""The figure set of a run: which figures and replays a run gets, why some are skipped, and
drawing them into the run folder, file by file, with progress.

* :data:`FIGURES`, :data:`CLASS_FIGURES` and :data:`ANIMATIONS` list every file the set can hold;
  :func:`hidden_figures_skip_reason`, :func:`replay_skip_reason` and :func:`figure_skip_reasons`
  say why a model, the data or the options leave some out; :func:`skipped_figures` is what
  ``metrics.json`` records under :data:`SKIPPED_KEY` (all from :mod:`squareseq.figures.figure_set`).
* runs on a user's data, or with more than two classes, get the class figures
  (:mod:`squareseq.figures.class_hidden`) instead of the tutorial's clockwise ones.
* :func:`write_figures` draws the set; :func:`figure_steps` and :func:`run_steps` are its parts,
  for callers that write more files in the same progress (:mod:`squareseq.runs.rebuild`).

The figures layer: this module may import ``plots``, ``hidden_plots``, ``conv_plots``,
``replay``, ``hidden``, ``models``, ``data`` and ``training``, never the run layer (``config``,
``rundata``, ``inference``, ``runs``, ``experiment``, ``report_page``, ``rebuild``). It imports
torch and matplotlib only when it draws, so the page (:mod:`squareseq.runs.page`) can read
its tables without them.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Tuple, Union

from squareseq.errors import SquareseqError
from squareseq.figures.figure_set import (
    ANIMATIONS,
    CLASS_FIGURES,
    FIGURES,
    SKIPPED_KEY,
    VIEWER_FILE,
    class_figures,
    figure_skip_reasons,
    figure_table,
    final_states_only,
    gates_apply,
    hidden_figures_apply,
    hidden_figures_skip_reason,
    replay_skip_reason,
    skipped_figures,
)

if TYPE_CHECKING:  # imported where used: importing this module loads neither torch nor matplotlib
    import numpy as np
    import torch
    from torch import nn

__all__ = ["FIGURES", "CLASS_FIGURES", "ANIMATIONS", "SKIPPED_KEY", "FigureProgress", "Step", "figure_inputs",
           "hidden_figures_skip_reason", "hidden_figures_apply", "class_figures", "figure_table", "replay_skip_reason",
           "figure_skip_reasons", "skipped_figures", "empty_sample_reason", "figure_steps", "run_steps",
           "write_figures"]

PathLike = Union[str, "os.PathLike[str]"]
#: ``progress(done, total, name)``: called before each file is written (``name``: that file,
#: ``done``: how many of the ``total`` are written already), and once after the last one
#: (``done == total``, ``name == ""``).
FigureProgress = Callable[[int, int, str], None]
#: The most test sequences the class figures draw (the first ones).
MAX_FIGURE_SEQUENCES = 500

#: One file of a run folder to write: its name and the function that writes it.
Step = Tuple[str, Callable[[], Path]]


# -- which figures a run gets ---------------------------------------------------------------------

def figure_inputs(data) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` tensors from ``(points, directions)`` or from tensors; variable-length data keeps
    only its full-length sequences (padding would draw as hidden states)."""
    import torch

    from squareseq.data.squares import to_tensors

    if not isinstance(data, (tuple, list)) or len(data) < 2:
        raise SquareseqError("data must be (points, directions) or (x, y)")
    first, labels = data[0], data[1]
    if isinstance(first, torch.Tensor):
        return first.float(), torch.as_tensor(labels).reshape(-1)
    x, y, lengths = to_tensors(first, labels, float_labels=False)
    if lengths is None:
        return x, y
    keep = lengths == x.shape[1]
    return x[keep], y[keep]


def class_inputs(data) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """``(x, y, lengths)`` of the class figures: from a split (``.x``, ``.y``, ``.lengths``), an
    ``(x, y, lengths)`` tuple, or what :func:`figure_inputs` takes (``lengths`` None); at most
    :data:`MAX_FIGURE_SEQUENCES`, the first ones, with labels as class indices."""
    import torch

    if hasattr(data, "x") and hasattr(data, "y"):
        x, y, lengths = data.x, data.y, getattr(data, "lengths", None)
    elif isinstance(data, (tuple, list)) and len(data) == 3:
        x, y, lengths = data
    else:
        (x, y), lengths = figure_inputs(data), None
    x = torch.as_tensor(x, dtype=torch.float32)[:MAX_FIGURE_SEQUENCES]
    y = torch.as_tensor(y).reshape(-1)[:MAX_FIGURE_SEQUENCES].round().long()
    if lengths is not None:
        lengths = torch.as_tensor(lengths).reshape(-1)[:MAX_FIGURE_SEQUENCES].long()
    return x, y, lengths


# -- drawing them -----------------------------------------------------------------------------------

def _points(data) -> Tuple[List[np.ndarray], np.ndarray]:
    """The sequences and labels of ``data`` as the tutorial's figures take them."""
    import numpy as np
    import torch

    first, labels = data[0], data[1]
    if isinstance(first, torch.Tensor):
        first = list(first.cpu().numpy())
    return list(first), np.asarray(torch.as_tensor(labels).reshape(-1).cpu())


def _save(fig, path: Path, dpi: int) -> Path:
    """Saves ``fig`` as the PNG ``path``, atomically (durable at once, or with the phase's batch:
    see :mod:`squareseq.figures.durable`), and closes it, even when saving fails (no figure piles up)."""
    import matplotlib.pyplot as plt

    from squareseq.figures.durable import write_file

    try:
        write_file(path, lambda f: fig.savefig(f, format="png", dpi=dpi))
    finally:
        plt.close(fig)
    return path


def run_steps(steps: Sequence[Step], progress: Optional[FigureProgress]) -> List[Path]:
    """Writes ``steps`` in order, telling ``progress`` about each, and makes the files durable in
    one pass at the end (also when a step fails: what was written stays); returns the paths written."""
    from squareseq.figures.durable import deferred_sync

    written = []
    with deferred_sync() as batch:
        try:
            for done, (name, write) in enumerate(steps):
                if progress is not None:
                    progress(done, len(steps), name)
                written.append(write())
        finally:
            batch.sync()
    if progress is not None:
        progress(len(steps), len(steps), "")
    return written


def _data_drawers(train_data, task: str) -> Dict[str, Callable]:
    """The tutorial's square figures of ``train_data`` (labelled in ``task``), by file name."""
    from squareseq.data.squares import class_names, label_directions
    from squareseq.figures import plots

    points, labels = _points(train_data)
    directions = label_directions(labels, task)
    drawers = {"corners.png": lambda: plots.counter_vs_clock(draw_arrows=True)}
    if task == "direction":  # the tutorial's figures, exactly
        drawers["sequences.png"] = plots.plot_sequences
        drawers["data.png"] = lambda: plots.plot_data(points, directions)
    else:
        drawers["sequences.png"] = lambda: plots.plot_sequences(task=task)
        drawers["data.png"] = lambda: plots.plot_data(points, directions, labels=labels,
                                                      class_names=class_names(task))
    return drawers


def _hidden_drawers(model: nn.Module, rnn: nn.Module, x_test: torch.Tensor,
                    y_test: torch.Tensor) -> Dict[str, Callable]:
    """The hidden-state figures of ``model`` (recurrent layer ``rnn``) on the test set, by file
    name; its hidden states are computed once, for the first figure that needs them."""
    from torch import nn

    from squareseq.figures import hidden as hp
    from squareseq.models.hidden import hidden_states

    hidden = None

    def states():
        nonlocal hidden
        if hidden is None:
            hidden = hidden_states(model, x_test)
        return hidden

    drawers = {"hidden_steps.png": lambda: hp.plot_hidden_steps(model, x_test, y_test, hidden=states()),
               "hidden_canonical.png": lambda: hp.plot_canonical_hidden(model)}
    if isinstance(rnn, (nn.RNN, nn.GRU, nn.LSTM)):
        drawers["hidden_journey.png"] = lambda: hp.plot_journey(model, x_test[0], int(y_test[0]))
    if gates_apply(model):
        from squareseq.figures.book import figure22

        drawers["hidden_gates.png"] = lambda: figure22(rnn)
    drawers["hidden_paths.png"] = lambda: hp.plot_hidden_paths(model, x_test, y_test, hidden=states())
    return drawers


def empty_sample_reason(snapshots) -> Optional[str]:
    """Why ``snapshots`` give no replay although recorded, or None: their sample holds no sequence
    (the recorder follows the test sequences that use every step, and variable-length data may
    have none)."""
    if snapshots is not None and len(snapshots) and len(snapshots.x) == 0:
        return "no test sequence uses every step, and the replays follow the sequences that do"
    return None


def _is_square_conv(model: nn.Module) -> bool:
    from squareseq.figures.figure_set import _is_square_conv as is_square_conv

    return is_square_conv(model)


def _n_classes(model: nn.Module, class_names: Optional[Sequence[str]]) -> int:
    return max(2, len(class_names)) if class_names else max(2, int(getattr(model, "n_outputs", 1)))


def _class_drawers(model: nn.Module, test_data, names: Sequence[str]) -> Dict[str, Callable]:
    """The class figures of ``model`` on the test sequences, by file name (their hidden states
    computed once, for the first figure that needs them); none for an empty test set."""
    from squareseq.figures import class_hidden as ch

    x, y, lengths = class_inputs(test_data)
    if not len(x):
        return {}
    view = None

    def get():
        nonlocal view
        if view is None:
            view = ch.class_view(model, x, y, lengths, names)
        return view

    return {"hidden_final.png": lambda: ch.plot_class_final(get()),
            "hidden_steps.png": lambda: ch.plot_class_steps(get()),
            "hidden_journey.png": lambda: ch.plot_class_journey(get(), model),
            "hidden_paths.png": lambda: ch.plot_class_paths(get())}


def _replay_steps(run_dir: Path, snapshots, history, class_names: Optional[Sequence[str]] = None,
                  gif: bool = False) -> List[Step]:
    """The interactive replay's data (:data:`VIEWER_FILE`) of ``snapshots``, then with ``gif`` both
    GIFs, whose frames are computed once, for the first (coloured by class, named
    ``class_names``, when given)."""
    from squareseq.figures.replay import compute_frames, write_gif
    from squareseq.figures.viewer_data import write_viewer_data

    viewer: Step = (VIEWER_FILE, lambda: write_viewer_data(run_dir / VIEWER_FILE, snapshots, history, class_names))
    if not gif:
        return [viewer]
    frames = None

    def draw_gif(name: str, kind: str) -> Path:
        nonlocal frames
        if frames is None:
            frames = compute_frames(snapshots, history, class_names=class_names)
        return write_gif(frames, history, run_dir / name, kind=kind)

    def step(name: str, kind: str) -> Step:
        return name, lambda: draw_gif(name, kind)

    return [viewer, *(step(name, kind) for name, kind, _, _ in ANIMATIONS)]


def _class_names(model: nn.Module, class_names: Optional[Sequence[str]], task: str) -> List[str]:
    """The classes' names: as given, else the square task's, else ``class k``."""
    from squareseq.data.squares import TASKS
    from squareseq.data.squares import class_names as task_names

    n = _n_classes(model, class_names)
    if class_names:
        return [str(name) for name in class_names]
    return task_names(task) if TASKS.get(task) == n else [f"class {k}" for k in range(n)]


def figure_steps(run_dir: Path, model: nn.Module, train_data, test_data, history, snapshots, animation: bool,
                 dpi: int, task: str, *, class_names: Optional[Sequence[str]] = None,
                 data_file: Optional[str] = None, gif: bool = False) -> List[Step]:
    """The figures and replays of :func:`write_figures`, in its order, as steps not yet run."""
    from squareseq.figures import plots

    class_run = class_figures(_n_classes(model, class_names), data_file)
    skipped = figure_skip_reasons(model, data_file=data_file, class_names=class_names)
    drawers: Dict[str, Callable] = {"losses.png": lambda: plots.plot_losses(history)}
    if train_data is not None and data_file is None:
        drawers.update(_data_drawers(train_data, task))
    if _is_square_conv(model) and data_file is None:
        from squareseq.figures.conv import plot_conv_filter

        drawers["conv_filter.png"] = lambda: plot_conv_filter(model)  # type: ignore[arg-type]  # checked above
    hidden = hidden_figures_apply(model)
    names = _class_names(model, class_names, task) if class_run else None
    if hidden and names is not None:
        drawers.update(_class_drawers(model, test_data, names))
    elif names is not None and final_states_only(model, class_run):
        drawers.update({k: v for k, v in _class_drawers(model, test_data, names).items() if k == "hidden_final.png"})
    elif hidden:
        from squareseq.models.hidden import recurrent_layer

        x_test, y_test = figure_inputs(test_data)
        if len(x_test):
            drawers.update(_hidden_drawers(model, recurrent_layer(model), x_test, y_test))

    def step(name: str) -> Step:
        return name, lambda: _save(drawers[name](), run_dir / name, dpi)

    table = figure_table(class_run)
    steps: List[Step] = [step(name) for name, _, _ in table if name in drawers and name not in skipped]
    if animation and hidden and snapshots is not None and len(snapshots) and empty_sample_reason(snapshots) is None:
        steps += _replay_steps(run_dir, snapshots, history, names, gif)
    return steps


def write_figures(run_dir: PathLike, model: nn.Module, train_data, test_data, history, snapshots=None,
                  animation: bool = True, dpi: int = 100, *, task: str = "direction",
                  progress: Optional[FigureProgress] = None, class_names: Optional[Sequence[str]] = None,
                  data_file: Optional[str] = None, gif: bool = False) -> List[Path]:
    """Writes every figure of a run that applies to it as PNG, and the replay's data for the page
    (``replay.json``), and with ``gif`` the replays as GIF too.

    Args:
        run_dir: the run folder (created if missing).
        model: the trained model (``basic_rnn`` + ``classifier``; hidden-state figures are
            skipped for models without a recurrent layer; a GRU's also get ``hidden_gates.png``).
        train_data: ``(points, labels)`` as ``make_sequences`` returns them, or ``(x, y)``;
            None for data that are not squares (the tutorial's square figures are skipped).
        test_data: the same for the test set: the hidden-state figures use it.
        history: a ``History`` or a dict with ``losses`` and ``val_losses``.
        snapshots: :class:`squareseq.figures.replay.Snapshots` recorded during training; without them,
            no replay is written.
        animation: write the replays when snapshots are given: ``replay.json`` (the page's
            interactive replay), and with ``gif`` the GIFs (``training.gif``, ``boundary.gif``).
        dpi: resolution of the PNGs.
        task: the labelling task of ``train_data`` (see :data:`squareseq.data.squares.TASKS`): the data
            figures name the task's classes; ``"direction"`` draws the tutorial's figures.
        progress: told about each file as it is drawn (see :data:`FigureProgress`).
        class_names: the classes' names, for the class figures' legends and titles.
        data_file: the data file the run trained on (None: generated squares); its runs get the
            class figures and no square-only ones (see :func:`figure_skip_reasons`).
        gif: also write the replays as GIFs (for slides and chat; they cost most of the drawing).

    Returns:
        The paths written, in :data:`FIGURES` order, then ``replay.json`` and the GIFs.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_steps(figure_steps(run_dir, model, train_data, test_data, history, snapshots, animation, dpi, task,
                                  class_names=class_names, data_file=data_file, gif=gif), progress)
