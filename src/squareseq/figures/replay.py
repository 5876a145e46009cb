"""Training replays: record cheap per-epoch snapshots while training, animate them afterwards.

Three stages, each testable alone:

1. **Record.** :class:`~squareseq.figures.snapshots.SnapshotRecorder`, a training callback, keeps
   per-epoch :class:`~squareseq.figures.snapshots.Snapshots` (module :mod:`squareseq.figures.snapshots`;
   both are importable from here too).
2. **Compute.** :func:`compute_frames` turns :class:`Snapshots` into arrays: projected hidden
   states, the classifier's probability map and decision line for every recorded epoch.
3. **Draw and animate.** :func:`draw_frame` draws one frame; :func:`animate` returns a
   ``FuncAnimation`` (notebooks show it); :func:`save_gif` writes it with Pillow.

"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from squareseq.errors import SquareseqError
from squareseq.figures.classes import class_colors, class_legend, map_rgb, probabilities_of, shown_steps
from squareseq.figures.durable import write_file
from squareseq.figures.hidden import (
    PROB_CMAP,
    HiddenView,
    draw_boundary,
    draw_probability,
    draw_states,
    style_hidden_axes,
)
from squareseq.figures.plots import plain_log_labels
from squareseq.figures.snapshots import SnapshotRecorder, Snapshots
from squareseq.models.hidden import (
    Grid,
    Projection,
    classifier_probability,
    decision_line,
    hidden_limits,
)

__all__ = [
    "Snapshots",
    "SnapshotRecorder",
    "Frames",
    "compute_frames",
    "draw_frame",
    "animate",
    "render_frames",
    "save_gif",
    "write_gif",
    "KINDS",
    "GIF_DPI",
]

#: The animations: the hidden-state panels beside the growing loss curve, or the moving boundary.
KINDS = ("hidden", "boundary")
#: Each animation's GIF resolution. The boundary's figure is small (one panel), so it renders at
#: 100 dpi: 14 px text, legible, where 72 dpi gave 10 px (7 px digits).
GIF_DPI = {"hidden": 72, "boundary": 100}


class Frames(NamedTuple):
    """Everything the replays draw, as arrays over ``E`` recorded epochs."""

    epochs: np.ndarray  # (E,)
    states: np.ndarray  # (E, N, L, 2) projected hidden states
    y: np.ndarray  # (N,) labels
    xs: np.ndarray  # (G,) grid
    ys: np.ndarray  # (G,)
    probs: np.ndarray  # (E, G, G) classifier's P(clockwise) on the grid
    lines: np.ndarray  # (E, 2, 2) the 0.5 decision line (NaN when none)
    losses: np.ndarray  # (n_epochs,) training loss per epoch of the run
    val_losses: np.ndarray  # (n_epochs,) NaN where none
    projection: Projection
    xlim: Tuple[float, float]
    ylim: Tuple[float, float]
    #: the classes' names for a replay coloured by class (``probs`` then holds RGB maps of the
    #: predicted class, ``(E, G, G, 3)``); None for the tutorial's clockwise replay
    class_names: Optional[Tuple[str, ...]] = None
    #: the step indices ``states`` holds (None: every step)
    steps: Optional[np.ndarray] = None


def _history_arrays(history) -> Tuple[np.ndarray, np.ndarray]:
    if history is None:
        return np.zeros(0), np.zeros(0)
    losses = history["losses"] if isinstance(history, dict) else history.losses
    val_losses = history["val_losses"] if isinstance(history, dict) else history.val_losses
    to_arr = lambda v: np.array([np.nan if a is None else float(a) for a in v], dtype=np.float64)  # noqa: E731
    return to_arr(losses), to_arr(val_losses)


def _classifier_for(params: Dict[str, torch.Tensor], classifier: Optional[nn.Module]) -> nn.Module:
    own = {k[len("classifier."):]: v for k, v in params.items() if k.startswith("classifier.")}
    if not own:
        raise SquareseqError("the snapshots hold no 'classifier.*' parameters: record a SquareModel-like model")
    if classifier is None:
        weight = own["weight"]
        classifier = nn.Linear(weight.shape[1], weight.shape[0])
    classifier.load_state_dict(own)
    return classifier


def compute_frames(
    snapshots: Snapshots,
    history=None,
    n_grid: int = 101,
    classifier: Optional[nn.Module] = None,
    projection: Optional[Projection] = None,
    class_names: Optional[Sequence[str]] = None,
) -> Frames:
    """The replay's arrays: for each recorded epoch, the sample's projected hidden states, the
    classifier's probability on a grid and its decision line.

    Args:
        snapshots: recorded by :class:`SnapshotRecorder` (or loaded with :meth:`Snapshots.load`).
        history: the run's ``History`` (or a dict with ``losses`` and ``val_losses``).
        n_grid: grid points per axis of the probability map.
        classifier: a module shaped like the model's ``classifier``, to load each epoch's
            ``classifier.*`` parameters into (default: an ``nn.Linear`` of the right shape).
        projection: for hidden sizes above 2 (default: PCA fitted on the last epoch's states,
            then fixed, so frames are comparable).
        class_names: colour by class and map the predicted class (any number of classes), named
            so; long sequences keep a few evenly spaced steps. None: the tutorial's replay.
    """
    if len(snapshots) == 0:
        raise SquareseqError("no snapshots recorded: train with the SnapshotRecorder callback first")
    hidden = torch.stack(snapshots.hidden).double().numpy()  # (E, N, L, H)
    if projection is None:
        projection = Projection.fit(hidden[-1])
    states = projection.transform(hidden)  # (E, N, L, 2)
    xlim, ylim = hidden_limits(states)
    xs, ys = np.linspace(*xlim, n_grid), np.linspace(*ylim, n_grid)
    plane = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    grid_h = torch.as_tensor(plane if projection.is_identity else projection.inverse(plane), dtype=torch.float32)
    probs, lines = [], []
    steps = None if snapshots.steps is None else np.asarray(snapshots.steps)
    if class_names is not None:
        if steps is None:
            steps = shown_steps(states.shape[2])
            states = states[:, :, steps]
        colors = class_colors(len(class_names))
    for params in snapshots.params:
        clf = _classifier_for(params, classifier)
        if class_names is not None:
            with torch.no_grad():
                chances = probabilities_of(clf(grid_h), len(class_names))
            probs.append(map_rgb(chances.reshape(n_grid, n_grid, -1), colors))
        else:
            probs.append(classifier_probability(clf, grid_h).numpy().reshape(n_grid, n_grid))
        if isinstance(clf, nn.Linear) and clf.out_features in (1, 2):
            lines.append(decision_line(clf.weight, clf.bias, xlim, ylim, projection))
        else:
            lines.append(np.full((2, 2), np.nan))
    losses, val_losses = _history_arrays(history)
    return Frames(np.array(snapshots.epochs), states, snapshots.y.numpy().astype(int), xs, ys,
                  np.stack(probs), np.stack(lines), losses, val_losses, projection, xlim, ylim,
                  tuple(class_names) if class_names is not None else None, steps)


# -- drawing ------------------------------------------------------------------------------------

def _setup(frames: Frames, kind: str, dpi: Optional[float] = None):
    """Builds the figure for ``kind`` and returns ``(fig, update)``; ``update(i)`` shows frame i."""
    if kind not in KINDS:
        raise SquareseqError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if kind == "hidden":
        return _setup_hidden(frames, dpi)
    return _setup_boundary(frames, dpi)


def _grid_view(frames: Frames, i: int) -> HiddenView:
    grid = Grid(frames.xs, frames.ys, frames.probs[i])
    return HiddenView(frames.states[i], frames.projection, frames.xlim, frames.ylim, grid, frames.lines[i])


def _frame_maps(frames: Frames) -> np.ndarray:
    """Every frame's map as its image shows it, computed once for all frames: the probability
    maps through the colormap as RGBA bytes (one vectorised lookup instead of a normalisation and
    a colormap per panel and frame; the maps are drawn nearest-pixel, so the pixels are the same),
    the class maps (already RGB) as they are."""
    if frames.probs.ndim != 3:
        return frames.probs
    from matplotlib import colormaps

    return colormaps[PROB_CMAP](frames.probs, bytes=True)


def _step(frames: Frames, t: int) -> int:
    """The step of the sequences panel ``t`` shows."""
    return t if frames.steps is None else int(frames.steps[t])


def _setup_hidden(frames: Frames, dpi: Optional[float]):
    import matplotlib.pyplot as plt

    n_steps = frames.states.shape[2]
    fig = plt.figure(figsize=(2.9 * n_steps + 4.2, 3.4), dpi=dpi, layout="constrained")
    gs = fig.add_gridspec(1, n_steps + 1, width_ratios=[1] * n_steps + [1.45])
    axs = [fig.add_subplot(gs[0, t]) for t in range(n_steps)]
    loss_ax = fig.add_subplot(gs[0, n_steps])
    view = _grid_view(frames, 0)
    palette = None if frames.class_names is None else class_colors(len(frames.class_names))
    images, lines, scatters = [], [], []
    maps = _frame_maps(frames)
    for t, ax in enumerate(axs):
        # nearest-pixel maps (on a fine grid) and edgeless dots: a third less drawing per frame
        images.append(draw_probability(ax, view.grid, interpolation="nearest"))
        lines.append(draw_boundary(ax, view.line))
        scatters.append(draw_states(ax, view.states[:, t], frames.y, size=12, linewidths=0, palette=palette))
        style_hidden_axes(ax, view, f"after step {_step(frames, t) + 1}")
        if frames.class_names is not None:
            ax.set_aspect("auto")
        if t:
            ax.set_ylabel("")
    epochs_all = np.arange(1, len(frames.losses) + 1)
    (train_line,) = loss_ax.plot([], [], c="b", label="Training Loss")
    (val_line,) = loss_ax.plot([], [], c="r", label="Validation Loss")
    loss_ax.set_yscale("log")
    plain_log_labels(loss_ax)
    finite = np.concatenate([frames.losses, frames.val_losses])
    finite = finite[np.isfinite(finite) & (finite > 0)]
    if len(finite):
        loss_ax.set_ylim(finite.min() / 1.3, finite.max() * 1.3)
    loss_ax.set_xlim(0, max(len(frames.losses), int(frames.epochs.max()), 1))
    loss_ax.set_xlabel("Epochs")
    loss_ax.set_ylabel("Loss")
    loss_ax.legend(loc="upper right", fontsize=8)
    note = frames.projection.describe()
    text = "Hidden states step by step (red: counter-clockwise, blue: clockwise)"
    if frames.class_names is not None:
        text = "Hidden states step by step (dots: true class; background: predicted class)"
        class_legend(fig, frames.class_names, class_colors(len(frames.class_names)), title="")
    fig.suptitle(f"{text}\n{note}" if note else text, fontsize=11)
    # only this short label changes per frame: redrawing a long title costs more than the panels
    label = loss_ax.set_title("", fontsize=11, fontweight="bold")

    def update(i: int):
        epoch = int(frames.epochs[i])
        for t in range(n_steps):
            images[t].set_data(maps[i])
            lines[t].set_data(frames.lines[i, :, 0], frames.lines[i, :, 1])
            scatters[t].set_offsets(frames.states[i, :, t])
        shown = epochs_all <= epoch
        train_line.set_data(epochs_all[shown], frames.losses[shown])
        val_line.set_data(epochs_all[shown], frames.val_losses[shown])
        label.set_text(f"epoch {epoch}")
        return [*images, *lines, *scatters, train_line, val_line, label]

    return fig, update


def _setup_boundary(frames: Frames, dpi: Optional[float], trail: int = 8):
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    fig, ax = plt.subplots(figsize=(4.3, 3.8), dpi=dpi, layout="constrained")
    view = _grid_view(frames, 0)
    image = draw_probability(ax, view.grid, alpha=0.45, interpolation="nearest")
    maps = _frame_maps(frames)
    past = LineCollection([], colors="k", linewidths=0.8, alpha=0.25, zorder=1)
    ax.add_collection(past)
    line = draw_boundary(ax, view.line)
    line.set_linewidth(2)
    if frames.class_names is None:
        scatter = draw_states(ax, view.states[:, -1], frames.y, size=16, linewidths=0)
        fig.colorbar(image, ax=ax, shrink=0.8, label="P(clockwise)")
    else:
        colors = class_colors(len(frames.class_names))
        scatter = draw_states(ax, view.states[:, -1], frames.y, size=16, linewidths=0, palette=colors)
        class_legend(fig, frames.class_names, colors, title="", n_cols=3)
    style_hidden_axes(ax, view)
    if frames.class_names is not None:
        ax.set_aspect("auto")
    note = frames.projection.describe()
    text = "Predicted class, final states" if frames.class_names else "Decision boundary and final hidden states"
    ax.set_title(f"{text}\n{note}" if note else text, fontsize=9 if frames.class_names else 10)
    label = ax.text(0.03, 0.97, "", transform=ax.transAxes, ha="left", va="top", fontsize=10, fontweight="bold",
                    zorder=5, bbox=dict(boxstyle="round,pad=0.2", fc="w", ec="none", alpha=0.8))

    def update(i: int):
        image.set_data(maps[i])
        line.set_data(frames.lines[i, :, 0], frames.lines[i, :, 1])
        past.set_segments([seg for seg in frames.lines[max(0, i - trail):i] if np.isfinite(seg).all()])
        scatter.set_offsets(frames.states[i, :, -1])
        label.set_text(f"epoch {int(frames.epochs[i])}")
        return [image, line, past, scatter, label]

    return fig, update


def draw_frame(frames: Frames, i: int, kind: str = "hidden"):
    """Frame ``i`` of the ``kind`` replay as a static ``Figure``."""
    if not -len(frames.epochs) <= i < len(frames.epochs):
        raise SquareseqError(f"frame {i} out of range: there are {len(frames.epochs)} frames")
    fig, update = _setup(frames, kind)
    update(i % len(frames.epochs))
    return fig


def animate(snapshots: Union[Snapshots, Frames], history=None, kind: str = "hidden", interval: int = 100,
            dpi: Optional[float] = None, **frame_kwargs):
    """A ``FuncAnimation`` with one frame per recorded epoch (notebooks can show it with
    ``HTML(anim.to_jshtml())``).

    Args:
        snapshots: :class:`Snapshots`, or :class:`Frames` already computed.
        history: the run's losses, for the loss curve of the ``"hidden"`` replay.
        kind: ``"hidden"`` (hidden-state panels beside the loss curve) or ``"boundary"``
            (the decision boundary moving in hidden space).
        interval: milliseconds between frames.
        **frame_kwargs: passed to :func:`compute_frames`.
    """
    from matplotlib.animation import FuncAnimation

    frames = snapshots if isinstance(snapshots, Frames) else compute_frames(snapshots, history, **frame_kwargs)
    fig, update = _setup(frames, kind, dpi)
    return FuncAnimation(fig, update, frames=len(frames.epochs), interval=interval, blit=False, repeat=True)


def render_frames(frames: Frames, kind: str = "hidden", dpi: Optional[float] = None) -> List[np.ndarray]:
    """Draws every frame of the ``kind`` replay to an ``(H, W, 3)`` uint8 array, at ``dpi``
    (default: the kind's :data:`GIF_DPI`).

    The figure is laid out and drawn once; then, per frame, only what changes (probability maps,
    boundary lines, hidden states, loss curves, title) is redrawn over the saved background.
    That keeps a 100-frame replay to seconds instead of minutes.
    """
    import matplotlib.pyplot as plt

    fig, update = _setup(frames, kind, GIF_DPI.get(kind, 72) if dpi is None else dpi)
    try:
        dynamic = update(0)
        for artist in dynamic:
            artist.set_animated(True)  # left out of the full draw: it becomes the background
        fig.canvas.draw()
        fig.set_layout_engine("none")  # freeze the layout computed by that draw
        background = fig.canvas.copy_from_bbox(fig.bbox)
        spines = [spine for ax in fig.axes for spine in ax.spines.values()]
        images = []
        for i in range(len(frames.epochs)):
            fig.canvas.restore_region(background)
            for artist in update(i):
                fig.draw_artist(artist)
            for spine in spines:  # the maps are drawn over the axes' frames: redraw them
                fig.draw_artist(spine)
            images.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
        return images
    finally:
        plt.close(fig)


def save_gif(anim_or_frames, path: Union[str, os.PathLike], fps: float = 10, dpi: Optional[float] = 72,
             colors: int = 64) -> Path:
    """Writes a looping GIF with Pillow, one image per frame.

    Args:
        anim_or_frames: a matplotlib animation (saved with ``PillowWriter``), or a sequence of
            PIL images or ``(H, W, 3|4)`` uint8 arrays (as :func:`render_frames` returns).
        path: the ``.gif`` to write.
        fps: frames per second.
        dpi: resolution when saving an animation.
        colors: palette size per frame for arrays and images (64 looks like 256 on these
            figures, in three quarters of the bytes).
    """
    from matplotlib.animation import Animation, PillowWriter

    path = Path(path)
    if isinstance(anim_or_frames, Animation):
        writer = PillowWriter(fps=fps)  # type: ignore[arg-type]  # stub says int; matplotlib passes floats too
        anim_or_frames.save(path, writer=writer, dpi=dpi)
        return path
    from PIL import Image

    images = [im if isinstance(im, Image.Image) else Image.fromarray(np.asarray(im)) for im in anim_or_frames]
    if not images:
        raise SquareseqError("no frames to save")
    # an octree palette per frame: fast, and small saturated markers keep their colours
    if not 2 <= colors <= 256:
        raise SquareseqError(f"colors must be between 2 and 256, got {colors}")
    frames = [im.convert("RGB").quantize(colors=colors, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
              for im in images]
    write_file(path, lambda f: frames[0].save(
        f, format="GIF", save_all=True, append_images=frames[1:], duration=int(round(1000 / fps)),
        loop=0, disposal=1), mode=0o644)  # a figure, not a secret: readable like the PNGs beside it
    return path


def write_gif(snapshots: Union[Snapshots, Frames], history, path: Union[str, os.PathLike], kind: str = "hidden",
              fps: float = 10, dpi: Optional[float] = None) -> Path:
    """Computes the frames, draws them and saves the ``kind`` replay as a GIF (at ``dpi``,
    default: the kind's :data:`GIF_DPI`)."""
    frames = snapshots if isinstance(snapshots, Frames) else compute_frames(snapshots, history)
    return save_gif(render_frames(frames, kind, dpi), path, fps=fps)
