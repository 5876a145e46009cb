"""What a trained :class:`~squareseq.models.networks.SquareConv1d` filter detects.

A kernel-2 filter over points in the plane reads one edge of the square at a time: two
consecutive corners. Feeding it each of the eight directed edges (four clockwise, four
counter-clockwise) without noise shows which edge, and so which direction, it responds to.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np
import torch

from squareseq.data.squares import CORNERS
from squareseq.errors import SquareseqError
from squareseq.figures.layout import fixed_subplots
from squareseq.models.networks import SquareConv1d

__all__ = ["EDGES", "edge_responses", "plot_conv_filter"]

_NAMES = "ABCD"
#: The eight directed edges as ``(name, from, to, clockwise)``; corners as in ``data.CORNERS``.
EDGES: List[Tuple[str, int, int, bool]] = [
    *((f"{_NAMES[i]}{_NAMES[(i + 1) % 4]}", i, (i + 1) % 4, True) for i in range(4)),
    *((f"{_NAMES[(i + 1) % 4]}{_NAMES[i]}", (i + 1) % 4, i, False) for i in range(4)),
]


def edge_responses(model: SquareConv1d, channel: int = 0) -> Dict[str, float]:
    """Filter ``channel``'s response (after ReLU) to each noiseless directed edge, by edge name."""
    if model.n_features != 2 or model.kernel_size != 2:
        raise SquareseqError(
            f"edge responses need a filter over 2 features and 2 steps, got n_features={model.n_features}, "
            f"kernel_size={model.kernel_size}"
        )
    if not 0 <= channel < model.channels:
        raise SquareseqError(f"channel must lie in 0..{model.channels - 1}, got {channel}")
    pairs = np.stack([CORNERS[[a, b]] for _, a, b, _ in EDGES]).astype(np.float32)  # (8, 2, F)
    with torch.no_grad():
        weight = model.conv1d.weight
        x = torch.from_numpy(pairs).to(weight.device).transpose(1, 2)  # (8, F, 2)
        out = model.relu(model.conv1d(x))[:, channel, 0]
    return {name: float(v) for (name, *_), v in zip(EDGES, out.cpu().tolist())}


def plot_conv_filter(model: SquareConv1d, channel: int = 0):
    """Two panels: the square's directed edges coloured by the filter's response, and the
    responses as bars (clockwise edges first). Returns the Figure."""
    from matplotlib import colormaps

    responses = edge_responses(model, channel)
    values = np.array([responses[name] for name, *_ in EDGES])
    best = int(values.argmax())
    top = float(values.max()) or 1.0
    cmap = colormaps["viridis"]

    fig, axs = fixed_subplots(1, 2, (10, 4.5), (0.3, 0.2, 0.45, 0.95, 0.9, 0.0))  # two-line suptitle; ylabel in the gap
    ax_sq, ax_bar = axs.ravel()
    for k, (_name, a, b, clockwise) in enumerate(EDGES):
        start, end = CORNERS[a].astype(float), CORNERS[b].astype(float)
        mid = (start + end) / 2
        # clockwise edges run just inside the square, counter-clockwise ones just outside
        shift = mid * (-0.12 if clockwise else 0.12)
        start, end = mid + (start - mid) * 0.8 + shift, mid + (end - mid) * 0.8 + shift
        ax_sq.annotate("", xy=end, xytext=start,
                       arrowprops=dict(arrowstyle="-|>", color=cmap(values[k] / top), lw=4 if k == best else 2))
    for i, (x, y) in enumerate(CORNERS):
        ax_sq.text(x * 1.12, y * 1.12, _NAMES[i], ha="center", va="center", fontsize=13, weight="bold")
    ax_sq.set(xlim=(-1.4, 1.4), ylim=(-1.4, 1.4), aspect="equal", xticks=[], yticks=[],
              title="edges coloured by response (inner: clockwise)")
    names = [name for name, *_ in EDGES]
    colors = ["tab:blue" if cw else "tab:orange" for *_, cw in EDGES]
    ax_bar.bar(names, values, color=colors)
    ax_bar.set(ylabel="response after ReLU", title="blue: clockwise, orange: counter-clockwise")
    w = model.conv1d.weight.detach().cpu().numpy()[channel]  # (F, K)
    name, _, _, clockwise = EDGES[best]
    w_text = "; ".join(f"step {t}: ({', '.join(f'{v:+.2f}' for v in w[:, t])})" for t in range(w.shape[1]))
    fig.suptitle(
        f"filter {channel} responds most to edge {name[0]}\u2192{name[1]} "
        f"({'clockwise' if clockwise else 'counter-clockwise'})\nweights {w_text}"
    )
    return fig
