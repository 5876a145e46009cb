"""The interactive replay's data: what ``static/viewer.js`` draws, as plain JSON-ready dicts.

The report (``report.html``) embeds one :func:`viewer_payload` built from a run's recorded
:class:`~squareseq.figures.snapshots.Snapshots`; a live page starts from :func:`viewer_meta` and
:func:`viewer_sequences` and appends one :func:`epoch_record` per epoch
(``SquareseqViewer.create(root, payload)``, then ``viewer.addEpoch(record)``).

The payload, ``{"meta", "sequences", "epochs", "losses"}``:

* ``meta``: ``format`` (``"squareseq-viewer"``), ``version`` (1), ``classes`` (names, one per
  class), ``colors`` (``"#rrggbb"`` per class), ``binary`` (two classes: the map is P(class 1)),
  ``steps`` (the 1-based steps the hidden states are kept after), ``xlim``/``ylim`` (the plane's
  box), ``grid`` (G, grid points per axis of the map), ``projection`` (a note, empty for 2-D
  states), ``origin`` (the zero initial state on the plane), ``n_epochs`` (the epochs planned:
  the loss axis), ``title``.
* ``sequences``: ``n``, ``length`` (L), ``features`` (F), ``points`` (``N * L * F`` numbers,
  rounded to 3 decimals, sequence-major), ``labels`` (N class indices), ``lengths`` (N, or null
  when every sequence has L steps).
* ``epochs``: a list of epoch records, each ``{"epoch", "train_loss", "val_loss", "scale",
  "hidden", "probs", "grid", "line"}``: ``hidden`` is base64 of little-endian int16
  ``N * S * 2`` (plane coordinates divided by ``scale``; -32768: no state, the sequence is
  shorter), ``probs`` base64 of uint8 ``N * S * K`` (the probability after each kept step, times
  255; K = 1 for two classes, P(class 1), else K = C), ``grid`` base64 of uint8 ``G * G * K``
  (row-major from the bottom row ``ylim[0]``, over the plane), ``line`` the 0.5 boundary
  ``[x0, y0, x1, y1]`` or null. Epoch 0 is the untrained model (no losses).
* ``losses``: ``{"train": [...], "val": [...]}`` one value (or null) per epoch from epoch 1.

Quantisation is below what a screen shows: int16 coordinates are 1/10000 of the box, probabilities
1/255. A default run's payload is about 0.4 MB.
"""
from __future__ import annotations

import base64
import json
import math
from pathlib import Path
from typing import Any, Dict, NamedTuple, Optional, Sequence

import numpy as np

from squareseq.errors import SquareseqError

__all__ = ["VIEWER_FORMAT", "VIEWER_VERSION", "VIEWER_GRID", "Plane", "viewer_meta", "viewer_sequences",
           "epoch_record", "viewer_payload", "empty_payload", "fixed_plane", "payload_json", "write_viewer_data"]

VIEWER_FORMAT = "squareseq-viewer"
VIEWER_VERSION = 1
#: Grid points per axis of the per-epoch map (the page smooths it; a classifier's map is smooth).
VIEWER_GRID = 24
_MISSING = -32768
#: The tutorial's class colours (red: counter-clockwise, blue: clockwise), as in the PNG figures.
_BINARY_COLORS = ("#d62728", "#1f77b4")


class Plane(NamedTuple):
    """Where the viewer draws: the projection of hidden states to the plane and its box."""

    projection: Any  # squareseq.models.hidden.Projection
    xlim: Sequence[float]
    ylim: Sequence[float]
    n_grid: int = VIEWER_GRID


def fixed_plane(hidden_dim: int, n_grid: int = VIEWER_GRID, hidden=None) -> Plane:
    """A plane known before training (for a live page): the identity for 2-D states, else PCA of
    ``hidden`` (``(..., H)`` states, e.g. the untrained model's); the box of tanh's range, grown to
    hold ``hidden``'s projection."""
    from squareseq.models.hidden import Projection, hidden_limits

    if hidden is None and hidden_dim != 2:
        raise SquareseqError("a plane for hidden sizes other than 2 needs hidden states to fit its projection")
    projection = Projection.fit(np.zeros((1, 2)) if hidden is None else _np(hidden))
    states = np.zeros((0, 2)) if hidden is None else projection.transform(_np(hidden))
    xlim, ylim = hidden_limits(states, minimum=1.05 * math.sqrt(max(1, hidden_dim) / 2))
    return Plane(projection, xlim, ylim, n_grid)


def _np(values) -> np.ndarray:
    return values.detach().cpu().numpy() if hasattr(values, "detach") else np.asarray(values)


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def _hex(rgb) -> str:
    return "#" + "".join(f"{int(round(255 * float(c))):02x}" for c in list(rgb)[:3])


def _loss(value) -> Optional[float]:
    if value is None:
        return None
    value = float(value)
    return float(f"{value:.5g}") if math.isfinite(value) else None


def viewer_meta(class_names: Optional[Sequence[str]], plane: Plane, steps: Sequence[int], n_epochs: int,
                title: str = "") -> Dict[str, Any]:
    """The payload's ``meta``: classes (None: the tutorial's two directions), the plane, the
    0-based ``steps`` kept, and the epochs planned (the loss axis's length)."""
    if class_names is None:
        names, colors = ["counter-clockwise", "clockwise"], list(_BINARY_COLORS)
    else:
        from squareseq.figures.classes import class_colors

        names = [str(n) for n in class_names]
        colors = list(_BINARY_COLORS) if len(names) == 2 else [_hex(c) for c in class_colors(len(names))]
    return {"format": VIEWER_FORMAT, "version": VIEWER_VERSION, "title": title, "classes": names,
            "colors": colors, "binary": len(names) == 2, "steps": [int(t) + 1 for t in steps],
            "xlim": [round(float(v), 4) for v in plane.xlim], "ylim": [round(float(v), 4) for v in plane.ylim],
            "grid": int(plane.n_grid), "projection": plane.projection.describe(), "n_epochs": int(n_epochs),
            "origin": [round(float(v), 4) for v in plane.projection.transform(np.zeros(plane.projection.hidden_dim))]}


def viewer_sequences(x, y, lengths=None) -> Dict[str, Any]:
    """The payload's ``sequences``: the sample's points ``(N, L, F)``, labels and lengths."""
    x, y = _np(x).astype(np.float64), _np(y).reshape(-1).astype(np.int64)
    if x.ndim != 3 or len(x) != len(y):
        raise SquareseqError(f"x must be (N, L, F) with one label per sequence; got {x.shape} and {y.shape}")
    return {"n": int(x.shape[0]), "length": int(x.shape[1]), "features": int(x.shape[2]),
            "points": [round(float(v), 3) for v in x.reshape(-1)], "labels": [int(v) for v in y],
            "lengths": None if lengths is None else [int(v) for v in _np(lengths).reshape(-1)]}


def empty_payload(meta: Dict[str, Any], sequences: Dict[str, Any]) -> Dict[str, Any]:
    """A payload with no epoch yet (a live page's start)."""
    return {"meta": meta, "sequences": sequences, "epochs": [], "losses": {"train": [], "val": []}}


def _probabilities(classifier, h, n_classes: int) -> np.ndarray:
    """``(M, K)`` probabilities of hidden states ``h`` ``(M, H)``: P(class 1) for two classes."""
    import torch

    device = next((p.device for p in classifier.parameters()), torch.device("cpu"))
    with torch.no_grad():
        logits = classifier(torch.as_tensor(h, dtype=torch.float32, device=device)).double().cpu().numpy()
    # as figures.classes.probabilities_of (a missing first logit is a reference pinned at 0), in numpy:
    # torch's softmax on these small arrays costs more in threads than in arithmetic
    if logits.shape[-1] == n_classes - 1:
        logits = np.concatenate([np.zeros((len(logits), 1)), logits], axis=1)
    logits = logits - logits.max(axis=-1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=-1, keepdims=True)
    return probs[:, 1:2] if n_classes == 2 else probs


def _record(epoch: int, hidden: np.ndarray, classifier, plane: Plane, n_classes: int, train_loss=None,
            val_loss=None, ended: Optional[np.ndarray] = None) -> Dict[str, Any]:
    """One epoch record from the kept steps' hidden states ``(N, S, H)`` and the classifier."""
    from torch import nn

    from squareseq.models.hidden import decision_line

    n, s, dim = hidden.shape
    projection, (x0, x1), (y0, y1) = plane.projection, plane.xlim, plane.ylim
    states = projection.transform(hidden)  # (N, S, 2)
    scale = max(abs(x0), abs(x1), abs(y0), abs(y1)) * 1.5 / 32767
    q = np.clip(np.round(states / scale), -32767, 32767).astype("<i2")
    if ended is not None:  # (N, S): the steps past each sequence's end hold padding, not states
        q[ended] = _MISSING
    probs = _probabilities(classifier, hidden.reshape(-1, dim), n_classes).reshape(n, s, -1)
    g = plane.n_grid
    xs, ys = np.linspace(x0, x1, g), np.linspace(y0, y1, g)
    points = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    grid = _probabilities(classifier, points if projection.is_identity else projection.inverse(points), n_classes)
    line = None
    if isinstance(classifier, nn.Linear) and classifier.out_features in (1, 2) and n_classes == 2:
        ends = decision_line(classifier.weight, classifier.bias, plane.xlim, plane.ylim,
                             None if projection.is_identity else projection)
        line = None if not np.isfinite(ends).all() else [round(float(v), 4) for v in ends.reshape(-1)]
    to_u8 = lambda p: np.clip(np.round(np.asarray(p) * 255), 0, 255).astype(np.uint8)  # noqa: E731
    return {"epoch": int(epoch), "train_loss": _loss(train_loss), "val_loss": _loss(val_loss), "scale": scale,
            "hidden": _b64(q), "probs": _b64(to_u8(probs)), "grid": _b64(to_u8(grid)), "line": line}


def epoch_record(model, x, lengths, epoch: int, train_loss, val_loss, plane: Plane,
                 steps: Optional[Sequence[int]] = None, n_classes: Optional[int] = None) -> Dict[str, Any]:
    """One epoch of a live page, from the model now: the hidden states of ``x`` ``(N, L, F)``
    after each of ``steps`` (0-based; default every step), their probabilities, the map on
    ``plane`` and the boundary. ``lengths`` (or None) marks the steps past a sequence's end."""
    from squareseq.models.hidden import hidden_states

    hidden = hidden_states(model, x).double().numpy()
    kept = list(range(hidden.shape[1])) if steps is None else [int(t) for t in steps]
    hidden = hidden[:, kept]
    classes = n_classes or max(2, int(getattr(model, "n_outputs", 1)))
    ended = None if lengths is None else _np(lengths).reshape(-1, 1) < np.asarray(kept).reshape(1, -1) + 1
    return _record(epoch, hidden, model.get_submodule("classifier"), plane, classes, train_loss, val_loss, ended)


def viewer_payload(snapshots, history=None, class_names: Optional[Sequence[str]] = None,
                   n_grid: int = VIEWER_GRID, title: str = "") -> Dict[str, Any]:
    """The whole replay of a run from its recorded snapshots (every recorded epoch) and losses
    (``history``: a ``History`` or a dict with ``losses`` and ``val_losses``). ``class_names``:
    None for the tutorial's two directions."""
    import torch

    from squareseq.figures.replay import _classifier_for, _history_arrays
    from squareseq.models.hidden import Projection, hidden_limits

    if len(snapshots) == 0:
        raise SquareseqError("no snapshots recorded: train with the SnapshotRecorder callback first")
    hidden = torch.stack(snapshots.hidden).double().numpy()  # (E, N, S, H)
    projection = Projection.fit(hidden[-1])
    xlim, ylim = hidden_limits(projection.transform(hidden))
    plane = Plane(projection, xlim, ylim, n_grid)
    steps = snapshots.steps if snapshots.steps is not None else list(range(hidden.shape[2]))
    losses, val_losses = _history_arrays(history)
    n_classes = len(class_names) if class_names else 2
    records = []
    for i, (epoch, params) in enumerate(zip(snapshots.epochs, snapshots.params)):
        clf = _classifier_for(params, None)
        tl = losses[epoch - 1] if 0 < epoch <= len(losses) else None
        vl = val_losses[epoch - 1] if 0 < epoch <= len(val_losses) else None
        records.append(_record(epoch, hidden[i], clf, plane, n_classes, tl, vl))
    n_epochs = max(len(losses), int(max(snapshots.epochs)))
    return {"meta": viewer_meta(class_names, plane, steps, n_epochs, title),
            "sequences": viewer_sequences(snapshots.x, snapshots.y),
            "epochs": records,
            "losses": {"train": [_loss(v) for v in losses], "val": [_loss(v) for v in val_losses]}}


def payload_json(payload: Dict[str, Any]) -> str:
    """The payload as compact JSON (no spaces, no NaN: JavaScript's ``JSON.parse`` reads it)."""
    return json.dumps(payload, separators=(",", ":"), allow_nan=False)


def write_viewer_data(path, snapshots, history=None, class_names: Optional[Sequence[str]] = None) -> Path:
    """Writes :func:`viewer_payload` as compact JSON to ``path`` (atomically; the run folder's
    ``replay.json``, which ``report.html`` embeds)."""
    from squareseq.figures.durable import write_file

    data = payload_json(viewer_payload(snapshots, history, class_names)).encode("utf-8")
    # durable with the figure phase's batch; a figure's data, not a secret: readable like the PNGs beside it
    return write_file(path, lambda f: f.write(data), mode=0o644)
