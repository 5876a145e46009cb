"""Labels beside points that stay inside the axes and apart: each label is measured after layout
and put at the first free spot around its point; coinciding points share a stacked column of
names, and a label moved away from its point gets a thin leader line. Used by the hidden-space
figures for the eight canonical sequences."""
from __future__ import annotations

from typing import Callable, List

import numpy as np

__all__ = ["place_labels"]


def place_labels(ax, points: np.ndarray, names, colors, marker_size: float = 70, fontsize: float = 9) -> list:
    """Names beside ``points`` (data coordinates), placed so that no label crosses the axes'
    frame or covers another label, and as few as possible cover a marker.

    The figure is laid out first (labels stay out of the layout, so it does not move after).
    Points drawn on top of each other share one column of names. Each column goes to the
    cheapest spot around its point (:func:`_label_spots`): beside it first, else shifted up or
    down, or further out, with a thin line to its point when it no longer touches it.
    Returns the annotations, in the order of ``names``.
    """
    fig = ax.get_figure()
    fig.draw_without_rendering()  # the final layout: the axes' size and position
    renderer = fig.canvas.get_renderer()
    px = fig.dpi / 72  # pixels per point
    xy = ax.transData.transform(np.asarray(points, dtype=float).reshape(-1, 2))
    radius = (np.sqrt(marker_size) / 2 + 1) * px  # a marker's radius, with its white edge
    pad = (0.15 * fontsize + 0.5) * px  # the label box's padding and a margin, each side
    sizes = []
    for name in names:
        probe = ax.text(0, 0, name, fontsize=fontsize, fontweight="bold")
        extent = probe.get_window_extent(renderer)
        probe.remove()
        sizes.append((extent.width + 2 * pad, extent.height + 2 * pad))
    frame = ax.get_window_extent(renderer).padded(-2)  # clear of the spines
    spots = _label_spots(xy, np.array(sizes), (frame.x0, frame.y0, frame.x1, frame.y1), radius, 2 * px)
    style = dict(textcoords="offset points", ha="center", va="center", fontsize=fontsize, fontweight="bold",
                 zorder=4, annotation_clip=False, bbox=dict(boxstyle="round,pad=0.15", fc="w", ec="none", alpha=0.75))
    labels = []
    for name, color, (anchor, dx, dy, line) in zip(names, colors, spots):
        extra = {}
        if line:
            extra["arrowprops"] = dict(arrowstyle="-", color="0.3", lw=0.7, shrinkA=0, shrinkB=radius / px)
        text = ax.annotate(name, tuple(ax.transData.inverted().transform(xy[anchor])), xytext=(dx / px, dy / px),
                           color=color, **style, **extra)
        text.set_in_layout(False)
        labels.append(text)
    return labels


def _label_spots(xy: np.ndarray, sizes: np.ndarray, frame, radius: float, margin: float) -> list:
    """Where :func:`_place_labels` puts each label, all in pixels: ``(anchor, dx, dy, line)`` per
    point, the label's centre offset from point ``anchor`` and whether a line joins them.

    Greedy, column by column, each to its cheapest candidate spot; costs, largest first: leaving
    ``frame`` ``(x0, y0, x1, y1)``, covering a placed label or line, a line crossing another
    point or label, sitting nearer another point than its own, covering a marker, distance.
    The greedy pass runs in a few orders and the cheapest layout wins.
    """
    groups: List[List[int]] = []  # points drawn on top of each other share a column
    for i, point in enumerate(xy):
        home = next((g for g in groups if np.hypot(*(xy[g[0]] - point)) < radius), None)
        if home is None:
            groups.append([i])
        else:
            home.append(i)
    frame = np.asarray(frame, dtype=float)
    gap = radius + margin
    shifts = np.arange(1, 25) * 2.0 * margin  # up or down, a few pixels at a time
    t = np.linspace(0.0, 1.0, 24)[1:-1, None]  # samples along a line, ends excluded

    def layout(order):
        boxes, lines, spots, total = np.zeros((0, 4)), np.zeros((0, len(t), 2)), {}, 0.0
        for group in order:
            x, y = xy[group[0]]
            half_w, half_h = sizes[group, 0].max() / 2, sizes[group, 1].sum() / 2
            beside, above = gap + half_w, gap + half_h
            offsets = [(beside, 0.0), (-beside, 0.0), (0.0, above), (0.0, -above)]
            offsets += [(sx * (0.7 * gap + half_w), sy * (0.7 * gap + half_h)) for sx in (1, -1) for sy in (1, -1)]
            offsets += [(dx, sy * d) for d in shifts for sy in (1, -1) for dx in (beside, -beside)]
            offsets += [(0.0, sy * (above + d)) for d in shifts for sy in (1, -1)]
            offsets += [(sx * (beside + half_w + gap), sy * d) for d in (0.0, *shifts) for sy in (1, -1)
                        for sx in (1, -1)]
            offsets = np.array(offsets)  # (C, 2)
            centres = offsets + [x, y]
            cand = np.concatenate([centres - [half_w, half_h], centres + [half_w, half_h]], axis=1)  # (C, 4)
            area = 4 * half_w * half_h
            cost = 1e6 * (area - _overlaps(cand, frame[None])[:, 0])
            cost += 1e5 * _overlaps(cand, boxes).sum(axis=1)
            crossing = _inside(lines.reshape(-1, 2), cand).reshape(len(lines), len(t), len(cand))
            cost += 1e5 * crossing.any(axis=1).sum(axis=0)  # the placed lines it would cover
            near = np.clip([x, y], cand[:, :2], cand[:, 2:])  # (C, 2) each column's nearest point to its point
            own = np.hypot(*(near - [x, y]).T)
            has_line = own > gap + margin
            samples = [x, y] + t[None] * (near - [x, y])[:, None]  # (C, S, 2) along each candidate's line
            others = np.array([p for j, p in enumerate(xy) if j not in group]).reshape(-1, 2)
            hits = _inside(samples.reshape(-1, 2), boxes).reshape(len(cand), len(t), len(boxes)).any(axis=1).sum(axis=1)
            crossed = (np.hypot(*(samples[:, :, None] - others[None, None]).transpose(3, 0, 1, 2)) < radius)
            cost += 1e4 * has_line * (hits + crossed.any(axis=1).sum(axis=1))
            if len(others):
                closest = np.clip(others[None], cand[:, None, :2], cand[:, None, 2:])  # (C, O, 2)
                cost += 1e3 * (np.hypot(*(closest - others[None]).transpose(2, 0, 1)) < own[:, None]).sum(axis=1)
                dots = np.concatenate([others - radius, others + radius], axis=1)
                cost += 1e2 * _overlaps(cand, dots).sum(axis=1)
            cost += np.hypot(*offsets.T)
            k = int(np.argmin(cost))
            total += float(cost[k])
            boxes = np.concatenate([boxes, cand[k:k + 1]])
            if has_line[k]:
                lines = np.concatenate([lines, samples[k:k + 1]])
            top = cand[k, 3]
            for i in group:  # the column's names, top to bottom, in the points' order
                spots[i] = (group[0], float(offsets[k, 0]), float(top - sizes[i, 1] / 2 - y),
                            bool(has_line[k]) and i == group[0])
                top -= sizes[i, 1]
        return total, spots

    crowded = sorted(groups, key=len, reverse=True)
    orders = [crowded, groups, groups[::-1]]

    def by(k: int, sign: int) -> Callable[[List[int]], float]:  # columns by x or y, either way
        return lambda g: sign * xy[g[0], k]

    orders += [sorted(groups, key=by(k, sign)) for k in (0, 1) for sign in (1, -1)]
    _, spots = min((layout(order) for order in orders), key=lambda result: result[0])
    return [spots[i] for i in range(len(xy))]


def _overlaps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(len(a), len(b))``: the area each box of ``a`` shares with each of ``b`` (rows ``x0, y0, x1, y1``)."""
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    return np.clip(w, 0, None) * np.clip(h, 0, None)


def _inside(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """``(len(points), len(boxes))``: whether each point lies inside each box."""
    p = points[:, None]
    return (p[..., 0] > boxes[None, :, 0]) & (p[..., 0] < boxes[None, :, 2]) & \
        (p[..., 1] > boxes[None, :, 1]) & (p[..., 1] < boxes[None, :, 3])
