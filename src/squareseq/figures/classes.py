"""Classes in hidden space, for any number of them: a colour per class, the classifier's class
probabilities over the (projected) hidden plane, and a map of its predicted class shaded by its
confidence. The hidden-space figures of runs on a user's data (:mod:`squareseq.figures.class_hidden`)
and their replays use these; the tutorial's two-class figures keep their red/blue
``P(clockwise)`` map (:mod:`squareseq.figures.hidden`).
"""
from __future__ import annotations

from typing import List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from squareseq.models.hidden import Projection

__all__ = ["class_colors", "probabilities_of", "class_probabilities", "ClassMap", "class_map", "map_rgb",
           "draw_class_map", "class_legend", "confidence_bar", "shown_steps", "class_title"]

#: Steps a figure shows one panel each at most: longer sequences get evenly spaced steps.
MAX_STEP_PANELS = 6


def class_colors(n_classes: int) -> np.ndarray:
    """``(n_classes, 3)`` RGB colours, distinct for up to 20 classes (tab10, then tab20), then
    evenly spaced hues."""
    from matplotlib import colormaps

    if n_classes <= 10:
        colors = colormaps["tab10"](np.arange(n_classes))
    elif n_classes <= 20:
        colors = colormaps["tab20"](np.arange(n_classes))
    else:
        colors = colormaps["hsv"](np.arange(n_classes) / n_classes)
    return np.asarray(colors)[:, :3]


def probabilities_of(logits: torch.Tensor, n_classes: int) -> np.ndarray:
    """``(M, C)`` class probabilities from a classifier's ``(M, C)`` logits, or ``(M, C - 1)``
    when the first logit is pinned at 0 (a reference logit; one logit with sigmoid is that case
    for two classes: ``softmax([0, z]) = [1 - sigmoid(z), sigmoid(z)]``)."""
    logits = logits.detach().double().cpu()
    if logits.shape[-1] == n_classes - 1:
        logits = torch.cat([logits.new_zeros(len(logits), 1), logits], dim=1)
    return torch.softmax(logits, dim=-1).numpy()


def class_probabilities(model: nn.Module, h) -> np.ndarray:
    """``(M, C)`` class probabilities the model gives hidden features ``h`` ``(M, H)`` (``C >= 2``:
    a one-logit model has two classes)."""
    classifier = model.get_submodule("classifier")
    device = next((p.device for p in classifier.parameters()), torch.device("cpu"))
    with torch.no_grad():
        logits = classifier(torch.as_tensor(np.asarray(h), dtype=torch.float32, device=device))
    return probabilities_of(logits, max(2, int(getattr(model, "n_outputs", logits.shape[-1]))))


class ClassMap(NamedTuple):
    """Class probabilities on a regular grid: ``probs[i, j]`` ``(C,)`` at ``(xs[j], ys[i])``."""

    xs: np.ndarray
    ys: np.ndarray
    probs: np.ndarray  # (G, G, C)

    @property
    def extent(self) -> Tuple[float, float, float, float]:
        dx = (self.xs[-1] - self.xs[0]) / max(len(self.xs) - 1, 1)
        dy = (self.ys[-1] - self.ys[0]) / max(len(self.ys) - 1, 1)
        return (self.xs[0] - dx / 2, self.xs[-1] + dx / 2, self.ys[0] - dy / 2, self.ys[-1] + dy / 2)


def class_map(model: nn.Module, xlim, ylim, n: int = 81, projection: Optional[Projection] = None) -> ClassMap:
    """The model's class probabilities on an ``n x n`` grid of the hidden plane (grid points
    mapped back onto the PCA plane in hidden space when ``projection`` is not the identity)."""
    xs, ys = np.linspace(xlim[0], xlim[1], n), np.linspace(ylim[0], ylim[1], n)
    plane = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    h = plane if projection is None or projection.is_identity else projection.inverse(plane)
    probs = class_probabilities(model, h)
    return ClassMap(xs, ys, probs.reshape(n, n, -1))


def map_rgb(probs: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """``(..., 3)`` RGB: each point takes its predicted (most probable) class's colour, faded to
    white as the confidence falls to chance (``1 / C``)."""
    n = probs.shape[-1]
    top = probs.argmax(axis=-1)
    confidence = (probs.max(axis=-1) - 1.0 / n) / (1.0 - 1.0 / n)
    strength = 0.15 + 0.6 * np.clip(confidence, 0.0, 1.0)[..., None]  # never quite white, never solid
    return 1.0 - strength * (1.0 - colors[top])


def draw_class_map(ax, cmap: ClassMap, colors: np.ndarray, interpolation: str = "nearest"):
    """The predicted-class map as an image (drawn under everything)."""
    return ax.imshow(map_rgb(cmap.probs, colors), origin="lower", extent=cmap.extent, interpolation=interpolation,
                     aspect="auto", zorder=0)


def class_legend(fig, names: Sequence[str], colors: np.ndarray, extra: Optional[List[Tuple]] = None,
                 title: str = "class (dots: true class; background: predicted class)", n_cols: int = 6) -> None:
    """The classes' names and colours below the panels (constrained layout keeps it off the data)."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], ls="", marker="o", ms=7, mfc=c, mec="w", label=str(name))
               for name, c in zip(names, colors)]
    for handle, label in extra or []:
        handles.append(handle)
        handle.set_label(label)
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), n_cols), fontsize=9, frameon=False,
               title=title, title_fontsize=9)


def confidence_bar(fig, axs, n_classes: int) -> None:
    """A grey bar reading the background's shading: the predicted class's probability."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import LinearSegmentedColormap, Normalize

    grey = np.array([0.35, 0.35, 0.35])
    lo, hi = 1.0 - 0.15 * (1 - grey), 1.0 - 0.75 * (1 - grey)
    cmap = LinearSegmentedColormap.from_list("confidence", [lo, hi])
    bar = ScalarMappable(Normalize(1.0 / n_classes, 1.0), cmap)
    fig.colorbar(bar, ax=list(axs), shrink=0.7, label="P(predicted class)")


def shown_steps(length: int, most: int = MAX_STEP_PANELS) -> np.ndarray:
    """Step indices to draw a panel for: every step of a short sequence, else ``most`` evenly
    spaced ones from the first to the last."""
    if length <= most:
        return np.arange(length)
    return np.unique(np.round(np.linspace(0, length - 1, most)).astype(int))


def class_title(names: Sequence[str], k: int) -> str:
    """A class's name as titles spell it."""
    return str(names[k]) if 0 <= k < len(names) else f"class {k}"
