"""The figure set of a run: which figures and replays a run gets, why some are skipped, and
drawing them into the run folder, file by file, with progress.

* :data:`FIGURES` and :data:`ANIMATIONS` list every file the set can hold (name, heading, caption).
* :func:`hidden_figures_skip_reason` and :func:`replay_skip_reason` say why a model or the
  options leave some out; :func:`skipped_figures` is what ``metrics.json`` records under
  :data:`SKIPPED_KEY`.
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

if TYPE_CHECKING:  # imported where used: importing this module loads neither torch nor matplotlib
    import numpy as np
    import torch
    from torch import nn

__all__ = ["FIGURES", "ANIMATIONS", "SKIPPED_KEY", "FigureProgress", "Step", "figure_inputs",
           "hidden_figures_skip_reason", "hidden_figures_apply", "replay_skip_reason", "skipped_figures",
           "figure_steps", "run_steps", "write_figures"]

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
#: The replays: file name, kind (see :mod:`squareseq.figures.replay`), heading, caption.
ANIMATIONS: Tuple[Tuple[str, str, str, str], ...] = (
    ("training.gif", "hidden", "Training replay",
     "The hidden-state panels over the epochs, with the loss curve growing beside them."),
    ("boundary.gif", "boundary", "The decision boundary moving",
     "The classifier's boundary in hidden space per epoch (grey: the previous epochs')."),
)

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


def hidden_figures_skip_reason(model: nn.Module) -> Optional[str]:
    """Why the hidden-state figures and replays do not describe ``model``, or None when they do.

    They draw a one-directional recurrent layer's hidden states (the last of which the
    classifier reads) over a two-class probability map; this is the one place that decides it.
    """
    from squareseq.models.hidden import recurrent_layer
    from squareseq.models.networks import SquareConv1d

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


def skipped_figures(model: nn.Module, replays: Optional[str]) -> Dict[str, Optional[str]]:
    """What ``metrics.json`` records under :data:`SKIPPED_KEY`: why ``model``'s run has no
    hidden-state figures (``"hidden"``) and no replays (``"replays"``, as the caller knows it)."""
    return {"hidden": hidden_figures_skip_reason(model), "replays": replays}


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
    """Saves ``fig`` as ``path`` and closes it, even when saving fails (no figure piles up)."""
    import matplotlib.pyplot as plt

    try:
        fig.savefig(path, dpi=dpi)
    finally:
        plt.close(fig)
    return path


def run_steps(steps: Sequence[Step], progress: Optional[FigureProgress]) -> List[Path]:
    """Writes ``steps`` in order, telling ``progress`` about each; returns the paths written."""
    written = []
    for done, (name, write) in enumerate(steps):
        if progress is not None:
            progress(done, len(steps), name)
        written.append(write())
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
    if isinstance(rnn, nn.RNN):
        drawers["hidden_journey.png"] = lambda: hp.plot_journey(model, x_test[0], int(y_test[0]))
    drawers["hidden_paths.png"] = lambda: hp.plot_hidden_paths(model, x_test, y_test, hidden=states())
    return drawers


def _replay_steps(run_dir: Path, snapshots, history) -> List[Step]:
    """Both replays (GIFs) of ``snapshots``; their frames are computed once, for the first."""
    from squareseq.figures.replay import compute_frames, write_gif

    frames = None

    def gif(name: str, kind: str) -> Path:
        nonlocal frames
        if frames is None:
            frames = compute_frames(snapshots, history)
        return write_gif(frames, history, run_dir / name, kind=kind)

    def step(name: str, kind: str) -> Step:
        return name, lambda: gif(name, kind)

    return [step(name, kind) for name, kind, _, _ in ANIMATIONS]


def figure_steps(run_dir: Path, model: nn.Module, train_data, test_data, history, snapshots, animation: bool,
                 dpi: int, task: str) -> List[Step]:
    """The figures and replays of :func:`write_figures`, in its order, as steps not yet run."""
    from squareseq.figures import plots
    from squareseq.models.hidden import recurrent_layer
    from squareseq.models.networks import SquareConv1d

    x_test, y_test = figure_inputs(test_data)
    drawers: Dict[str, Callable] = {"losses.png": lambda: plots.plot_losses(history)}
    if train_data is not None:
        drawers.update(_data_drawers(train_data, task))
    rnn = recurrent_layer(model) if hidden_figures_apply(model) else None
    if isinstance(model, SquareConv1d):
        from squareseq.figures.conv import plot_conv_filter

        drawers["conv_filter.png"] = lambda: plot_conv_filter(model)
    if rnn is not None and len(x_test):
        drawers.update(_hidden_drawers(model, rnn, x_test, y_test))

    def step(name: str) -> Step:
        return name, lambda: _save(drawers[name](), run_dir / name, dpi)

    steps: List[Step] = [step(name) for name, _, _ in FIGURES if name in drawers]
    if animation and rnn is not None and snapshots is not None and len(snapshots):
        steps += _replay_steps(run_dir, snapshots, history)
    return steps


def write_figures(run_dir: PathLike, model: nn.Module, train_data, test_data, history, snapshots=None,
                  animation: bool = True, dpi: int = 100, *, task: str = "direction",
                  progress: Optional[FigureProgress] = None) -> List[Path]:
    """Writes every figure of a run that applies to it as PNG, and the replays as GIF.

    Args:
        run_dir: the run folder (created if missing).
        model: the trained model (``basic_rnn`` + ``classifier``; hidden-state figures are
            skipped for models without a recurrent layer, the journey for non-``nn.RNN`` cells).
        train_data: ``(points, labels)`` as ``make_sequences`` returns them, or ``(x, y)``;
            None for data that are not squares (the tutorial's square figures are skipped).
        test_data: the same for the test set: the hidden-state figures use it.
        history: a ``History`` or a dict with ``losses`` and ``val_losses``.
        snapshots: :class:`squareseq.figures.replay.Snapshots` recorded during training; without them,
            no GIF is written.
        animation: write the GIFs (``training.gif``, ``boundary.gif``) when snapshots are given.
        dpi: resolution of the PNGs.
        task: the labelling task of ``train_data`` (see :data:`squareseq.data.squares.TASKS`): the data
            figures name the task's classes; ``"direction"`` draws the tutorial's figures.
        progress: told about each file as it is drawn (see :data:`FigureProgress`).

    Returns:
        The paths written, in :data:`FIGURES` order, then the GIFs.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_steps(figure_steps(run_dir, model, train_data, test_data, history, snapshots, animation, dpi, task),
                     progress)
