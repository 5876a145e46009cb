"""Synthetic square sequences: generation, tensors and datasets.

Each sequence visits the four corners of the square ``[-1, 1]^2`` starting from a random corner,
clockwise (label 1) or counter-clockwise (label 0), with Gaussian noise on every point.

Two generators share one vectorised core:

* :func:`generate_sequences` reproduces the tutorial's function bit for bit. Like the tutorial's,
  it seeds numpy's *global* legacy generator, because code that runs after it in a user's
  notebook depends on that state.
* :func:`make_sequences` takes a seed or a ``numpy.random.RandomState`` and never touches global
  state.

Tasks (the ``task`` argument of both generators):

* ``"direction"`` (the tutorial's): label 1 for clockwise, 0 for counter-clockwise.
* ``"corner-direction"``: 8 classes, ``label = 2 * start + direction``, where ``start`` is the
  index in :data:`CORNERS` (A=0 ``(-1, -1)``, B=1 ``(-1, 1)``, C=2 ``(1, 1)``, D=3 ``(1, -1)``) of
  the sequence's first corner. Both labels can be read from the first two points.

Variable-length sequences travel as :class:`torch.nn.utils.rnn.PackedSequence` batches, packed
by :func:`pack_padded` (the package's one packing function). Loaders that yield them
(``collate_packed``, ``PackedLoader``) live in :mod:`squareseq.data.loaders`, which builds on this
module. A packed batch has ``.to(device)``, so the training loop needs no change, and squareseq's
models read each sequence's true last step from it.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_sequence

from squareseq.errors import DataError

__all__ = [
    "CORNERS",
    "TASKS",
    "SequenceList",
    "as_model_input",
    "class_names",
    "label_directions",
    "corner_direction_labels",
    "generate_sequences",
    "label_tensor",
    "make_sequences",
    "n_classes",
    "pack_padded",
    "sequence_tensors",
    "to_packed",
    "task_labels",
    "to_tensors",
    "make_tensors",
]

#: Labelling tasks and their number of classes.
TASKS = {"direction": 2, "corner-direction": 8}

#: The square's corners A, B, C, D, in clockwise order.
CORNERS = np.array([[-1, -1], [-1, 1], [1, 1], [1, -1]])
# The same corners as floats: adding noise to them gives the tutorial's int + float sums exactly.
_CORNERS_F = CORNERS.astype(np.float64)

SeedLike = Union[int, np.random.RandomState, None]


class SequenceList(list):
    """A list of ``(L, F)`` arrays that torch converts in one copy.

    ``torch.as_tensor(list_of_arrays)`` walks every element in Python and warns that it is
    extremely slow. This list exposes the DLPack protocol, so ``torch.as_tensor(points)`` (as the
    tutorial writes it) stacks the arrays once instead. It is otherwise an ordinary list.
    """

    def _stacked(self) -> np.ndarray:
        lengths = {len(a) for a in self}
        if len(lengths) > 1:
            raise DataError(
                f"sequences have different lengths {sorted(lengths)}: pad or pack them first "
                "(squareseq.data.squares.to_tensors returns padded tensors and lengths)"
            )
        return np.stack(self)

    def __dlpack__(self, *args, **kwargs):
        return self._stacked().__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return (1, 0)  # kDLCPU, device 0


def _draw(rng: np.random.RandomState, n: int, variable_len: bool, noise: float):
    """Draws ``(points, directions, starts)`` from ``rng`` in exactly the tutorial's order;
    ``starts`` are the indices in ``CORNERS`` of the sequences' first corners.

    The tutorial draws all bases, then all lengths, then all directions, then ``randn(l, 2)`` per
    sequence. The legacy Gaussian stream does not depend on how it is chunked, so a single
    ``randn`` call over all points yields the same numbers without a Python loop.
    """
    bases = rng.randint(4, size=n)
    if variable_len:
        lengths = rng.randint(3, size=n) + 2
    else:
        lengths = np.full(n, 4)
    directions = rng.randint(2, size=n)

    steps = np.arange(4, dtype=np.int8)
    order = (bases.astype(np.int8)[:, None] + steps) & 3  # (N, 4) clockwise corner indices
    # counter-clockwise is the clockwise order read backwards
    order = np.where(directions[:, None] == 1, order, order[:, ::-1])
    corners = np.take(_CORNERS_F, order, axis=0)  # (N, 4, 2)
    starts = order[:, 0].astype(np.int64)

    total = int(lengths.sum())
    jitter = rng.randn(total, 2)
    jitter *= noise
    if not variable_len:
        jitter = jitter.reshape(n, 4, 2)
        jitter += corners
        return SequenceList(jitter), directions, starts
    mask = steps[None, :] < lengths[:, None]  # (N, 4): the first l steps of each sequence
    flat = corners[mask]  # (sum(l), 2), sequence by sequence
    flat += jitter
    bounds = np.concatenate([[0], np.cumsum(lengths)]).tolist()
    return SequenceList([flat[a:b] for a, b in zip(bounds[:-1], bounds[1:])]), directions, starts


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise DataError(f"unknown task {task!r}; choose one of: {', '.join(TASKS)}")


def n_classes(task: str) -> int:
    """The number of classes of ``task`` (2 or 8)."""
    _check_task(task)
    return TASKS[task]


def class_names(task: str) -> List[str]:
    """Readable class names, by label: ``["counter-clockwise", "clockwise"]`` or ``["A ccw", "A cw",
    "B ccw", ...]`` (eight names stay short enough for figure titles and table headers)."""
    _check_task(task)
    if task == "direction":
        return ["counter-clockwise", "clockwise"]
    return [f"{corner} {d}" for corner in "ABCD" for d in ("ccw", "cw")]


def task_labels(task: str, directions: ArrayLike, starts: ArrayLike) -> np.ndarray:
    """The ``task``'s labels of sequences with these directions (1: clockwise) and first corners."""
    return _labels(task, np.asarray(directions, dtype=np.int64), np.asarray(starts, dtype=np.int64))


def label_directions(labels: ArrayLike, task: str) -> np.ndarray:
    """The direction (1: clockwise, 0: counter-clockwise) of each of the ``task``'s labels, as
    figures colour sequences whatever the task."""
    _check_task(task)
    y = np.asarray(labels, dtype=np.int64)
    return y if task == "direction" else y % 2


def corner_direction_labels(starts: ArrayLike, directions: ArrayLike) -> np.ndarray:
    """The 8-class labels ``2 * start + direction`` (see the module docstring)."""
    start = np.asarray(starts, dtype=np.int64)
    direction = np.asarray(directions, dtype=np.int64)
    if start.shape != direction.shape:
        raise DataError(f"starts and directions must have the same shape, got {start.shape} and {direction.shape}")
    return 2 * start + direction


def _labels(task: str, directions: np.ndarray, starts: np.ndarray) -> np.ndarray:
    _check_task(task)
    return directions if task == "direction" else corner_direction_labels(starts, directions)


def generate_sequences(
    n: int = 128,
    variable_len: bool = False,
    seed: int = 13,
    noise: float = 0.1,
    task: str = "direction",
):
    """The tutorial's generator, bit for bit, and vectorised.

    Args:
        n: number of sequences.
        variable_len: if true, each sequence keeps only its first 2, 3 or 4 points.
        seed: seeds numpy's global legacy generator, exactly as the tutorial does.
        noise: standard deviation of the Gaussian noise on every corner (the tutorial's 0.1
            gives its numbers bit for bit; larger values make harder squares).
        task: ``"direction"`` (the tutorial's labels) or ``"corner-direction"`` (8 classes).

    Returns:
        ``(points, labels)``: a list of ``n`` float arrays of shape ``(L, 2)`` and an int array
        of shape ``(n,)``; for the direction task, 1 for clockwise and 0 for counter-clockwise.
    """
    _check_task(task)
    _check_noise(noise)
    np.random.seed(seed)
    # np.random.mtrand._rand is the global RandomState that np.random.seed just seeded
    points, directions, starts = _draw(np.random.mtrand._rand, int(n), variable_len, noise)
    return points, _labels(task, directions, starts)


def _check_noise(noise: float) -> None:
    try:
        ok = bool(np.isfinite(float(noise)) and float(noise) >= 0)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise DataError(f"noise must be a finite number >= 0, got {noise!r}")


def make_sequences(n: int = 128, variable_len: bool = False, seed: SeedLike = 13, noise: float = 0.1,
                   task: str = "direction"):
    """Like :func:`generate_sequences` (same arguments and result) but side-effect free: ``seed``
    is an int (a fresh ``RandomState(seed)``, so the draws equal the tutorial's for the same seed),
    a ``RandomState`` to draw from, or None for fresh entropy."""
    _check_task(task)
    _check_noise(noise)
    rng = seed if isinstance(seed, np.random.RandomState) else np.random.RandomState(seed)
    points, directions, starts = _draw(rng, int(n), variable_len, noise)
    return points, _labels(task, directions, starts)


def to_tensors(
    points: Sequence[np.ndarray], directions: Sequence[int], float_labels: bool = True
) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """Turns sequences and labels into ready tensors.

    Returns:
        ``(x, y, lengths)``: ``x`` is ``(N, L, F)`` float32 (shorter sequences zero-padded at the
        end), ``y`` is ``(N, 1)`` float32 when ``float_labels`` (for BCE losses) or ``(N,)`` int64
        (for cross-entropy), and ``lengths`` is ``(N,)`` int64, or None when all sequences have
        the same length.
    """
    lengths = np.array([len(p) for p in points], dtype=np.int64)
    if len(points) and (lengths == lengths[0]).all():
        x = torch.from_numpy(np.stack(points)).float()
        lengths_t = None
    else:
        max_len = int(lengths.max()) if len(points) else 0
        n_features = np.shape(points[0])[-1] if len(points) else 0
        padded = np.zeros((len(points), max_len, n_features), dtype=np.float32)
        for i, p in enumerate(points):
            padded[i, : len(p)] = p
        x = torch.from_numpy(padded)
        lengths_t = torch.from_numpy(lengths)
    return x, label_tensor(directions, float_labels), lengths_t


def label_tensor(labels, float_labels: bool) -> torch.Tensor:
    """Class indices (a sequence, array or tensor) as a loss wants them: ``(N, 1)`` float32 for
    BCE losses (``float_labels``) or ``(N,)`` int64 for cross-entropy.

    The one place labels change form, so loaders, files and runs agree on shape and dtype.
    """
    y = labels if isinstance(labels, torch.Tensor) else torch.as_tensor(np.asarray(labels))
    return y.reshape(-1, 1).float() if float_labels else y.reshape(-1).long()


def make_tensors(
    n: int = 128,
    seed: int = 13,
    variable_len: bool = False,
    noise: float = 0.1,
    float_labels: bool = True,
    task: str = "direction",
):
    """Generates ``n`` sequences (side-effect free) and returns :func:`to_tensors` of them."""
    points, labels = make_sequences(n, variable_len=variable_len, seed=seed, noise=noise, task=task)
    return to_tensors(points, labels, float_labels=float_labels)


# -- variable-length batches ------------------------------------------------------------------


def sequence_tensors(points: Sequence) -> List[torch.Tensor]:
    """Each ``(L_i, F)`` sequence (array or tensor) as a float32 tensor; float32 arrays are
    shared, not copied."""
    return [p.float() if isinstance(p, torch.Tensor) else torch.from_numpy(np.asarray(p, dtype=np.float32))
            for p in points]


def to_packed(points: Sequence) -> PackedSequence:
    """Packs a list of ``(L_i, F)`` arrays or tensors (any order, any lengths >= 1).

    The batch is packed with ``enforce_sorted=False``: it remembers the original order, and
    models return their outputs in that order.
    """
    if len(points) == 0:
        raise DataError("cannot pack an empty list of sequences")
    seqs = sequence_tensors(points)
    for i, t in enumerate(seqs):
        if t.dim() != 2 or t.shape[0] == 0:
            raise DataError(f"sequence {i} must have shape (L, F) with L >= 1, got {tuple(t.shape)}")
    lengths = torch.tensor([len(t) for t in seqs], dtype=torch.int64)
    return pack_padded(pad_sequence(seqs, batch_first=True), lengths)


def pack_padded(x: torch.Tensor, lengths) -> PackedSequence:
    """Packs a zero-padded ``(N, L, F)`` batch whose sequence ``i`` has ``lengths[i]`` real steps.

    The package's one packing function (models, loaders and runs pack through it). Lengths may
    be unsorted: the pack remembers the batch's order, and models answer in that order.
    """
    lengths = torch.as_tensor(lengths, dtype=torch.int64).cpu()
    if x.dim() != 3 or lengths.shape != (x.shape[0],):
        raise DataError(
            f"x must be (N, L, F) and lengths (N,), got {tuple(x.shape)} and {tuple(lengths.shape)}"
        )
    if len(lengths):
        low, high = (int(v) for v in torch.aminmax(lengths))
        if low < 1 or high > x.shape[1]:
            raise DataError(f"lengths must lie in [1, {x.shape[1]}], got {low}..{high}")
    return pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)


def as_model_input(x) -> Union[torch.Tensor, PackedSequence]:
    """What a model takes, from what a user has: a ``PackedSequence`` or tensor passes through
    (as float); a list of ``(L_i, F)`` arrays of different lengths is packed; anything else
    array-like becomes a float ``(N, L, F)`` tensor."""
    if isinstance(x, PackedSequence):
        return x
    if isinstance(x, torch.Tensor):
        return x.float()
    if isinstance(x, (list, tuple)) and len(x) and len({len(p) for p in x}) > 1:
        return to_packed(x)
    if isinstance(x, (list, tuple)) and len(x) and not isinstance(x, SequenceList):
        x = np.stack([np.asarray(p) for p in x])
    return torch.as_tensor(x).float()
