"""Synthetic square sequences: generation, tensors and datasets.

Each sequence visits the four corners of the square ``[-1, 1]^2`` starting from a random corner,
clockwise (label 1) or counter-clockwise (label 0), with Gaussian noise on every point.

Two generators share one vectorised core:

* :func:`generate_sequences` reproduces the tutorial's function bit for bit. Like the tutorial's,
  it seeds numpy's *global* legacy generator, because code that runs after it in a user's
  notebook depends on that state.
* :func:`make_sequences` takes a seed or a ``numpy.random.RandomState`` and never touches global
  state.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch

__all__ = [
    "CORNERS",
    "SequenceList",
    "generate_sequences",
    "make_sequences",
    "to_tensors",
    "make_tensors",
]

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
            raise ValueError(
                f"sequences have different lengths {sorted(lengths)}: pad or pack them first "
                "(squareseq.data.to_tensors returns padded tensors and lengths)"
            )
        return np.stack(self)

    def __dlpack__(self, *args, **kwargs):
        return self._stacked().__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return (1, 0)  # kDLCPU, device 0


def _draw(rng: np.random.RandomState, n: int, variable_len: bool, noise: float):
    """Draws the sequences from ``rng`` in exactly the tutorial's order.

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

    total = int(lengths.sum())
    jitter = rng.randn(total, 2)
    jitter *= noise
    if not variable_len:
        jitter = jitter.reshape(n, 4, 2)
        jitter += corners
        return SequenceList(jitter), directions
    mask = steps[None, :] < lengths[:, None]  # (N, 4): the first l steps of each sequence
    flat = corners[mask]  # (sum(l), 2), sequence by sequence
    flat += jitter
    bounds = np.concatenate([[0], np.cumsum(lengths)]).tolist()
    return SequenceList([flat[a:b] for a, b in zip(bounds[:-1], bounds[1:])]), directions


def generate_sequences(n: int = 128, variable_len: bool = False, seed: int = 13):
    """The tutorial's generator, bit for bit, and vectorised.

    Args:
        n: number of sequences.
        variable_len: if true, each sequence keeps only its first 2, 3 or 4 points.
        seed: seeds numpy's global legacy generator, exactly as the tutorial does.

    Returns:
        ``(points, directions)``: a list of ``n`` float arrays of shape ``(L, 2)`` and an int array
        of shape ``(n,)`` with 1 for clockwise and 0 for counter-clockwise.
    """
    np.random.seed(seed)
    # np.random.mtrand._rand is the global RandomState that np.random.seed just seeded
    return _draw(np.random.mtrand._rand, int(n), variable_len, 0.1)


def make_sequences(
    n: int = 128,
    variable_len: bool = False,
    seed: SeedLike = 13,
    noise: float = 0.1,
):
    """Like :func:`generate_sequences` but side-effect free.

    Args:
        n: number of sequences.
        variable_len: if true, each sequence keeps only its first 2, 3 or 4 points.
        seed: an int (a fresh ``RandomState(seed)``, so the draws equal the tutorial's for the
            same seed), a ``RandomState`` to draw from, or None for fresh entropy.
        noise: standard deviation of the Gaussian noise added to every corner.
    """
    rng = seed if isinstance(seed, np.random.RandomState) else np.random.RandomState(seed)
    return _draw(rng, int(n), variable_len, noise)


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
    y = torch.as_tensor(np.asarray(directions))
    y = y.view(-1, 1).float() if float_labels else y.long()
    return x, y, lengths_t


def make_tensors(
    n: int = 128,
    seed: int = 13,
    variable_len: bool = False,
    noise: float = 0.1,
    float_labels: bool = True,
):
    """Generates ``n`` sequences (side-effect free) and returns :func:`to_tensors` of them."""
    points, directions = make_sequences(n, variable_len=variable_len, seed=seed, noise=noise)
    return to_tensors(points, directions, float_labels=float_labels)
