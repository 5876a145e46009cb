"""Which figures a run gets and why some are skipped: the tables of every file a run folder can
hold (:data:`FIGURES`, :data:`CLASS_FIGURES`, :data:`ANIMATIONS`), whether a run gets the class
figures (:func:`class_figures`), and the reason for each file a run does not draw
(:func:`figure_skip_reasons`; :func:`skipped_figures` is what ``metrics.json`` records under
:data:`SKIPPED_KEY`).

Importing this module loads neither torch nor matplotlib: the page (:mod:`squareseq.runs.page`)
reads its tables. Models are told apart by what they have (``basic_rnn``, a convolution).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Dict, Optional, Sequence, Tuple

if TYPE_CHECKING:
    from torch import nn

__all__ = ["FIGURES", "CLASS_FIGURES", "ANIMATIONS", "CLASS_ANIMATION_TEXT", "SKIPPED_KEY", "VIEWER_FILE",
           "VIEWER_TEXT", "hidden_figures_skip_reason", "hidden_figures_apply", "class_figures", "figure_table",
           "replay_skip_reason", "figure_skip_reasons", "skipped_figures", "final_states_only", "gates_skip_reason",
           "gates_apply"]

#: The key of ``metrics.json`` that records why a run has no hidden-state figures or replays, and why
#: each file it does not draw is not drawn (by file name).
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
     "squashed by tanh (purple) into the new hidden state; a GRU's arrows go through its reset and update gates, "
     "an LSTM's through its cell state (forget gate, gated input) and output gate."),
    ("hidden_gates.png", "Through the GRU's gates",
     "The sequence ABCD through the GRU's update, one row per step: how each stage (transform, reset gate, "
     "adding the input, tanh, update gate, adding z h) bends the square of tanh's range, and where the hidden "
     "state goes; the gates' values in the titles."),
    ("hidden_paths.png", "Paths through hidden space",
     "Hidden states through time, from the zero initial state, per direction."),
    ("conv_filter.png", "The convolution's filter",
     "How strongly the learned filter responds to each directed edge of the square."),
)
_LOSSES, _SQUARES, _CONV = FIGURES[0], FIGURES[1:4], FIGURES[-1]
#: The figures of a run on a user's data or with more than two classes (see :func:`class_figures`):
#: the square's figures (for squares only), then hidden states coloured by class.
CLASS_FIGURES: Tuple[Tuple[str, str, str], ...] = (
    _LOSSES, *_SQUARES,
    ("hidden_final.png", "Final hidden states, by class",
     "Each test sequence's final hidden state (what the classifier reads), coloured by its true class, over the "
     "class the classifier predicts there (shaded by its confidence); black rings: misclassified. Above 2-D the map "
     "is the classifier on the PCA plane: a state off that plane can be classified otherwise."),
    ("hidden_steps.png", "Hidden states, step by step",
     "The test sequences' hidden states after a few steps, coloured by true class, over the predicted-class map."),
    ("hidden_journey.png", "One sequence's journey",
     "A real test sequence: its path through hidden space, its inputs, and the class probabilities after each step."),
    ("hidden_paths.png", "Paths through hidden space",
     "Hidden states through time, from the zero initial state, one panel per class."),
    _CONV,
)
#: The replays: file name, kind (see :mod:`squareseq.figures.replay`), heading, caption.
ANIMATIONS: Tuple[Tuple[str, str, str, str], ...] = (
    ("training.gif", "hidden", "Training replay",
     "The hidden-state panels over the epochs, with the loss curve growing beside them."),
    ("boundary.gif", "boundary", "The decision boundary moving",
     "The classifier's boundary in hidden space per epoch (grey: the previous epochs')."),
)

#: The interactive replay's data (see :mod:`squareseq.figures.viewer_data`): the page draws it with
#: ``static/viewer.js``. Every run with replays has it; the GIFs of :data:`ANIMATIONS` are opt-in (``--gif``).
VIEWER_FILE = "replay.json"
VIEWER_TEXT = ("Training replay",
               "The hidden states after each step over the classifier's probability map (dashed: P = 0.5), epoch by "
               "epoch, beside the loss curves. Drag the slider or press Play; pick the step; hover over or click a "
               "point to follow its sequence.")

#: The replays' headings and captions in a class run (see :func:`class_figures`), where they differ.
CLASS_ANIMATION_TEXT: Dict[str, Tuple[str, str]] = {
    "training.gif": ("Training replay", "The hidden states after a few steps over the epochs, coloured by true class "
                                        "over the predicted-class map, with the loss curve growing beside them."),
    "boundary.gif": ("The predicted classes moving", "The class the classifier predicts across hidden space per "
                                                     "epoch, with the final hidden states coloured by true class."),
}


def hidden_figures_skip_reason(model: nn.Module) -> Optional[str]:
    """Why the hidden-state figures and replays do not describe ``model``, or None when they do.

    They draw a one-directional recurrent layer's hidden states (the last of which the
    classifier reads) over the classifier's map; this is the one place that decides it. Models
    are told apart by what they have (a ``basic_rnn``, a convolution), not by their class.
    """
    from torch import nn as tnn

    if not isinstance(getattr(model, "basic_rnn", None), tnn.RNNBase):
        if any(isinstance(m, tnn.Conv1d) for m in model.modules()):
            return "the model is a convolution: no hidden states"
        return f"not drawn for a {type(model).__name__} model (they show a recurrent layer's hidden states)"
    if model.get_submodule("basic_rnn").bidirectional:
        return ("not drawn for a bidirectional model (they show one direction's hidden states; "
                "the classifier reads both)")
    if getattr(model, "classifier", None) is None:
        return "not drawn for a model without a 'classifier' (they draw its probability map)"
    return None


def gates_skip_reason(model: nn.Module) -> Optional[str]:
    """Why a GRU run has no ``hidden_gates.png``, or None when it has it (or is no GRU: the
    figure never applies then). It draws the book's 2-D picture: 2 features, hidden size 2."""
    from torch import nn as tnn

    rnn = getattr(model, "basic_rnn", None)
    if not isinstance(rnn, tnn.GRU):
        return None
    if rnn.input_size != 2 or rnn.hidden_size != 2:
        return (f"drawn for 2 features and hidden size 2 only (the plane of the book's figure), this GRU has "
                f"{rnn.input_size} and {rnn.hidden_size}")
    return None


def gates_apply(model: nn.Module) -> bool:
    """Whether a (tutorial) run of ``model`` gets ``hidden_gates.png``: a GRU of 2 features and
    hidden size 2 whose hidden-state figures apply."""
    from torch import nn as tnn

    return (hidden_figures_apply(model) and isinstance(model.get_submodule("basic_rnn"), tnn.GRU)
            and gates_skip_reason(model) is None)


def final_states_only(model: nn.Module, class_run: bool) -> bool:
    """Whether a class run of ``model`` draws only the final hidden states: a bidirectional
    recurrent model, whose classifier reads both directions' final states (drawn as one point per
    sequence), while its states step by step are one direction's."""
    rnn = getattr(model, "basic_rnn", None)
    reads_one_vector = bool(getattr(rnn, "bidirectional", False)) or pooled_features(model)
    return class_run and reads_one_vector and getattr(model, "classifier", None) is not None


def pooled_features(model: nn.Module) -> bool:
    """Whether ``model`` is a convolution that pools its responses into one vector per sequence
    (a ``features(x, lengths)`` method) for its classifier: a class run draws those vectors."""
    return getattr(model, "basic_rnn", None) is None and callable(getattr(model, "features", None))


def hidden_figures_apply(model: nn.Module) -> bool:
    """Whether the hidden-state figures and replays describe ``model``: a one-directional
    recurrent layer whose last output the classifier reads."""
    return hidden_figures_skip_reason(model) is None


def class_figures(n_classes: int, data_file: Optional[str]) -> bool:
    """Whether a run gets the class figures (hidden states coloured by class, a predicted-class
    map): runs on a user's data and runs with more than two classes; the tutorial's two-class
    squares keep its clockwise/counter-clockwise figures."""
    return data_file is not None or n_classes > 2


def figure_table(class_run: bool) -> Tuple[Tuple[str, str, str], ...]:
    """The figures a run can hold, in the page's order: :data:`FIGURES`, or for a class run
    (see :func:`class_figures`) :data:`CLASS_FIGURES`."""
    return CLASS_FIGURES if class_run else FIGURES


def replay_skip_reason(model: nn.Module, animation: bool = True, figures: bool = True) -> Optional[str]:
    """Why a run of ``model`` trained this way has no replays (interactive or GIF), or None when it has them:
    the model (:func:`hidden_figures_skip_reason`) or the options that skipped them."""
    reason = hidden_figures_skip_reason(model)
    if reason is not None:
        return reason
    if not figures:
        return "trained with --no-figures, so no snapshots were recorded"
    if not animation:
        return "skipped with --no-animation"
    return None


def _is_square_conv(model: nn.Module) -> bool:
    """Whether ``model`` is the book's one-filter convolution (its filter figure reads squares)."""
    from squareseq.models.networks import SquareConv1d

    return isinstance(model, SquareConv1d)


def _n_classes(model: nn.Module, class_names: Optional[Sequence[str]]) -> int:
    return max(2, len(class_names)) if class_names else max(2, int(getattr(model, "n_outputs", 1)))


def figure_skip_reasons(model: nn.Module, replays: Optional[str] = None, *, data_file: Optional[str] = None,
                        class_names: Optional[Sequence[str]] = None) -> Dict[str, str]:
    """Why each figure and replay a run of ``model`` could hold is not drawn, by file name (files
    that are drawn, or that never apply to such a model, are left out)."""

    hidden = hidden_figures_skip_reason(model)
    class_run = class_figures(_n_classes(model, class_names), data_file)
    names = [name for name, _, _ in figure_table(class_run)]
    reasons: Dict[str, str] = {}
    if data_file is not None:
        square = f"square-only: this run trained on {Path(data_file).name}"
        for name in ("corners.png", "sequences.png", "data.png", "hidden_canonical.png"):
            reasons[name] = square
        if _is_square_conv(model):
            reasons["conv_filter.png"] = square
    elif class_run and hidden is None:
        reasons["hidden_canonical.png"] = "drawn for the two-class direction task only"
    for name in names:
        if name.startswith("hidden_") and hidden is not None and not (name == "hidden_final.png"
                                                                      and final_states_only(model, class_run)):
            reasons.setdefault(name, hidden)
    reason = gates_skip_reason(model) if not class_run and hidden is None else None
    if reason is not None:
        reasons["hidden_gates.png"] = reason
    if replays is not None:  # GIFs not asked for (--gif) are not "skipped": they are opt-in
        for name in (VIEWER_FILE, *(name for name, _, _, _ in ANIMATIONS)):
            reasons[name] = replays
    return reasons


def skipped_figures(model: nn.Module, replays: Optional[str], *, data_file: Optional[str] = None,
                    class_names: Optional[Sequence[str]] = None) -> Dict[str, Optional[str]]:
    """What ``metrics.json`` records under :data:`SKIPPED_KEY`: why ``model``'s run has no
    hidden-state figures (``"hidden"``) and no replays (``"replays"``, as the caller knows it),
    then the reason for each file not drawn (see :func:`figure_skip_reasons`)."""
    return {"hidden": hidden_figures_skip_reason(model), "replays": replays,
            **figure_skip_reasons(model, replays, data_file=data_file, class_names=class_names)}
