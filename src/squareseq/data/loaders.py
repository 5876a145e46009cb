"""Loaders: in-memory stand-ins for ``DataLoader`` that yield, and draw, exactly what it does.

* :class:`FastLoader`: ``DataLoader(TensorDataset(x, y), batch_size=B, shuffle=...)`` indexes
  the dataset once per sample and stacks the samples again for every batch: for a model whose
  arithmetic costs a microsecond, that is most of the time of a step. FastLoader gathers the
  shuffled tensors once per epoch and yields contiguous slices of them, the same batches bit for
  bit.
* :class:`PackedLoader`: ``DataLoader(SequenceDataset(...), collate_fn=collate_packed)`` over
  sequences of different lengths, as packed batches, without per-item Python work.
* :class:`SequenceDataset` and :func:`collate_packed`: the ``DataLoader`` side of packed batches;
  :func:`make_loader` and :func:`make_variable_length_loader` pick a loader for a run's tensors.

Both stand-ins take their random draws from :func:`dataloader_pass`, which replays those of
``DataLoader``'s default samplers, so everything random that happens after or during an epoch
(the next shuffle, dropout, a user's own draws) is unchanged:

* every ``iter(loader)`` draws a base seed (``DataLoader`` uses it to seed worker processes),
  with or without shuffling;
* a shuffling loader then draws, when its first batch is requested, a seed for a fresh
  ``torch.Generator`` and takes ``randperm(n)`` from it. With an explicit ``generator`` the
  base seed and the permutation come from that generator instead, and (as ``RandomSampler``
  does) one more permutation is drawn from it when the sampler runs dry, at the last batch.
"""
from __future__ import annotations

from typing import Iterator, List, Optional, Sequence, Tuple

import torch
from torch.nn.utils.rnn import PackedSequence

from squareseq.data.squares import label_tensor, pack_padded, sequence_tensors, to_packed, to_tensors
from squareseq.errors import DataError

__all__ = [
    "FastLoader",
    "PackedLoader",
    "SequenceDataset",
    "collate_packed",
    "dataloader_pass",
    "make_loader",
    "make_variable_length_loader",
]

#: One batch of a pass: the pass's permutation (None when unshuffled) and the batch's rows of it.
PassBatch = Tuple[Optional[torch.Tensor], slice]


def _draw_seed(generator: Optional[torch.Generator] = None) -> int:
    """One int64 draw, as ``DataLoader`` and ``RandomSampler`` make it."""
    return int(torch.empty((), dtype=torch.int64).random_(generator=generator).item())


def dataloader_pass(n: int, batch_size: int, shuffle: bool = False, drop_last: bool = False,
                    generator: Optional[torch.Generator] = None) -> Iterator[PassBatch]:
    """One pass of ``DataLoader``'s default sampling over ``n`` samples, drawing what it draws
    when it draws it: the one replay of ``DataLoader``'s randomness that the loaders share.

    Call it where ``iter(DataLoader)`` would be called: it draws the base seed at once. The
    iterator it returns yields ``(order, rows)`` per batch: the pass's permutation (None when
    unshuffled) and the slice of it (or of ``range(n)``) that makes the batch. Shuffled, the
    first ``next()`` draws the permutation as ``RandomSampler`` does; with an explicit
    ``generator``, one more permutation is drawn from it in the ``next()`` where
    ``BatchSampler`` finds the sampler dry: the one that builds the last, partial batch, else
    the one after the last full batch.
    """
    _draw_seed(generator)  # _BaseDataLoaderIter.__init__: the workers' base seed
    return _pass_batches(n, batch_size, shuffle, drop_last, generator)


def _pass_batches(n: int, batch_size: int, shuffle: bool, drop_last: bool,
                  generator: Optional[torch.Generator]) -> Iterator[PassBatch]:
    order = None
    if shuffle:  # RandomSampler.__iter__, which runs at the first next()
        sampler_generator = generator
        if sampler_generator is None:
            sampler_generator = torch.Generator()
            sampler_generator.manual_seed(_draw_seed())
        order = torch.randperm(n, generator=sampler_generator)
    n_full, rest = divmod(n, batch_size)
    for i in range(n_full):
        yield order, slice(i * batch_size, (i + 1) * batch_size)
    if shuffle and generator is not None:
        # The sampler runs dry: RandomSampler draws its (empty) remainder permutation. From a
        # private generator that is invisible; from the loader's own, it moves the next shuffle.
        torch.randperm(n, generator=generator)
    if rest and not drop_last:
        yield order, slice(n_full * batch_size, n)


class FastLoader:
    """Mini-batches of in-memory tensors, identical to a ``DataLoader`` over a ``TensorDataset``.

    Args:
        x: features, ``(N, ...)``.
        y: targets, ``(N, ...)``.
        batch_size: samples per batch (the last one may be smaller unless ``drop_last``).
        shuffle: reshuffle the samples on every pass, as ``DataLoader(shuffle=True)`` does.
        drop_last: drop the last, incomplete batch.
        generator: the generator a ``DataLoader`` would be given; None means torch's global one.
        extra: more ``(N, ...)`` tensors sliced alongside ``x`` and ``y`` (for instance the
            sequences' lengths) and yielded after them, in order.

    Each batch is a list ``[x_batch, y_batch, *extra_batches]``, as ``DataLoader``'s default
    collate returns it.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        generator: Optional[torch.Generator] = None,
        extra: Sequence[torch.Tensor] = (),
    ):
        tensors = (x, y, *extra)
        for t in tensors:
            if not isinstance(t, torch.Tensor):
                raise DataError(f"FastLoader takes tensors, got {type(t).__name__}: convert it with torch.as_tensor")
        n = len(x)
        if any(len(t) != n for t in tensors):
            raise DataError(f"all tensors need the same first dimension, got {[len(t) for t in tensors]}")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise DataError(f"batch_size must be a positive int, got {batch_size!r}")
        if shuffle and n == 0:
            raise DataError("cannot shuffle an empty dataset: give it at least one sample")
        self.tensors = tensors
        self.batch_size = batch_size
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.generator = generator

    @property
    def n_samples(self) -> int:
        return len(self.tensors[0])

    def __len__(self) -> int:
        n, b = self.n_samples, self.batch_size
        return n // b if self.drop_last else (n + b - 1) // b

    def __iter__(self) -> Iterator[List[torch.Tensor]]:
        return self._batches(dataloader_pass(self.n_samples, self.batch_size, self.shuffle, self.drop_last,
                                             self.generator))

    def _batches(self, batches: Iterator[PassBatch]) -> Iterator[List[torch.Tensor]]:
        tensors = None
        for order, rows in batches:
            if tensors is None:  # one gather per pass, then contiguous slices
                tensors = self.tensors if order is None else tuple(t[order] for t in self.tensors)
            yield [t[rows] for t in tensors]

    @classmethod
    def from_dataloader(cls, loader) -> Optional["FastLoader"]:
        """An equivalent ``FastLoader`` for a plain ``DataLoader`` over a ``TensorDataset``,
        or None when ``loader`` is anything else.

        Plain means: the default sampler (sequential, or random without replacement and
        without ``num_samples``), the default batch sampler and collate function, no worker
        processes and no pinned memory. Anything else keeps its own loader.
        """
        from torch.utils.data import (
            BatchSampler,
            DataLoader,
            RandomSampler,
            SequentialSampler,
            TensorDataset,
        )
        from torch.utils.data._utils.collate import default_collate

        if type(loader) is not DataLoader or type(loader.dataset) is not TensorDataset:
            return None
        if loader.num_workers != 0 or loader.pin_memory or loader.collate_fn is not default_collate:
            return None
        batch_sampler = loader.batch_sampler
        if type(batch_sampler) is not BatchSampler or loader.batch_size is None:
            return None
        sampler = batch_sampler.sampler
        if sampler is not loader.sampler or batch_sampler.batch_size != loader.batch_size:
            return None
        if type(sampler) is SequentialSampler and sampler.data_source is loader.dataset:
            shuffle = False
        elif (
            type(sampler) is RandomSampler
            and sampler.data_source is loader.dataset
            and not sampler.replacement
            and sampler._num_samples is None
            and sampler.generator is loader.generator
        ):
            shuffle = True
        else:
            return None
        tensors = loader.dataset.tensors
        if len(tensors) < 2:
            return None
        return cls(
            tensors[0], tensors[1], batch_size=loader.batch_size, shuffle=shuffle,
            drop_last=batch_sampler.drop_last, generator=loader.generator, extra=tensors[2:],
        )


def collate_packed(batch: Sequence[Tuple[torch.Tensor, torch.Tensor]]) -> Tuple[PackedSequence, torch.Tensor]:
    """``DataLoader`` collate function: ``[(x_i (L_i, F), y_i), ...]`` to ``(packed_x, y)``.

    Example::

        loader = DataLoader(SequenceDataset(points, labels), batch_size=16, shuffle=True,
                            collate_fn=collate_packed)
    """
    xs, ys = zip(*batch)
    return to_packed(xs), torch.stack([torch.as_tensor(y) for y in ys])


class SequenceDataset(torch.utils.data.Dataset):
    """Sequences of different lengths and their labels, item by item, for ``DataLoader``.

    Args:
        points: ``N`` arrays of shape ``(L_i, F)``.
        labels: ``N`` class indices.
        float_labels: items' labels as ``(1,)`` float32 (BCE losses) or int64 scalars
            (cross-entropy), as in :func:`~squareseq.data.squares.to_tensors`.
    """

    def __init__(self, points: Sequence, labels: Sequence[int], float_labels: bool = True):
        if len(points) != len(labels):
            raise DataError(f"got {len(points)} sequences but {len(labels)} labels")
        self.points = sequence_tensors(points)
        self.labels = label_tensor(labels, float_labels)

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, i: int) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.points[i], self.labels[i]


class PackedLoader:
    """An in-memory loader of packed batches, without per-item Python work.

    It holds the padded ``(N, L, F)`` tensor and the lengths, and packs each batch with one
    indexing and one :func:`~squareseq.data.squares.pack_padded` call. It draws as ``DataLoader`` does
    (:func:`dataloader_pass`), so it yields the batches of ``DataLoader(SequenceDataset(...),
    shuffle=..., generator=..., collate_fn=collate_packed)`` after the same ``torch.manual_seed``
    and leaves the generators in the same states.

    Args:
        x: ``(N, L, F)`` zero-padded sequences.
        lengths: ``(N,)`` real steps per sequence, or None if all have ``L`` steps.
        y: ``N`` labels (first dimension ``N``).
        batch_size: sequences per batch (the last batch may be smaller).
        shuffle: a new permutation every epoch.
        generator: the generator a ``DataLoader`` would be given; None means torch's global one.
    """

    def __init__(self, x: torch.Tensor, lengths: Optional[torch.Tensor], y: torch.Tensor,
                 batch_size: int = 16, shuffle: bool = False,
                 generator: Optional[torch.Generator] = None):
        if x.dim() != 3:
            raise DataError(f"x must have shape (N, L, F), got {tuple(x.shape)}")
        if lengths is None:
            lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.int64)
        lengths = torch.as_tensor(lengths, dtype=torch.int64)
        if lengths.shape != (x.shape[0],) or len(y) != x.shape[0]:
            raise DataError(
                f"x, lengths and y must have the same first dimension, got {x.shape[0]}, "
                f"{tuple(lengths.shape)} and {len(y)}"
            )
        if batch_size < 1:
            raise DataError(f"batch_size must be >= 1, got {batch_size}")
        self.x, self.lengths, self.y = x, lengths, y
        self.batch_size, self.shuffle, self.generator = int(batch_size), shuffle, generator

    def __len__(self) -> int:
        return -(-len(self.y) // self.batch_size)

    def __iter__(self) -> Iterator[Tuple[PackedSequence, torch.Tensor]]:
        return self._batches(dataloader_pass(len(self.y), self.batch_size, self.shuffle, False, self.generator))

    def _batches(self, batches: Iterator[PassBatch]) -> Iterator[Tuple[PackedSequence, torch.Tensor]]:
        for order, rows in batches:
            index = torch.arange(rows.start, rows.stop) if order is None else order[rows]
            lengths = self.lengths[index]
            x = self.x[index, : int(lengths.max())]
            yield pack_padded(x, lengths), self.y[index]

    @classmethod
    def from_sequences(cls, points: Sequence, labels: Sequence[int], batch_size: int = 16,
                       shuffle: bool = False, float_labels: bool = True,
                       generator: Optional[torch.Generator] = None) -> "PackedLoader":
        """A loader over a list of ``(L_i, F)`` arrays and their labels."""
        x, y, lengths = to_tensors(points, labels, float_labels=float_labels)
        return cls(x, lengths, y, batch_size, shuffle, generator)


def make_variable_length_loader(points: Sequence, labels: Sequence[int], batch_size: int = 16,
                                shuffle: bool = False, float_labels: bool = True, fast: bool = True):
    """A loader of packed ``(x, y)`` batches over sequences of any lengths.

    ``fast=True`` gives a :class:`PackedLoader`; ``fast=False`` the equivalent ``DataLoader``
    with :func:`collate_packed` (same batches after the same ``torch.manual_seed``).
    """
    if fast:
        return PackedLoader.from_sequences(points, labels, batch_size, shuffle, float_labels)
    dataset = SequenceDataset(points, labels, float_labels=float_labels)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=shuffle,
                                       collate_fn=collate_packed)


def make_loader(x: torch.Tensor, y: torch.Tensor, lengths: Optional[torch.Tensor] = None,
                batch_size: int = 16, shuffle: bool = False):
    """The loader a run uses for ``(x, y, lengths)`` as :func:`~squareseq.data.squares.to_tensors` returns them.

    Without ``lengths``: the tutorial's ``DataLoader`` over a ``TensorDataset`` (so the default
    run stays bit for bit the tutorial's). With ``lengths``: a :class:`PackedLoader`, which
    yields the batches of ``DataLoader`` + :func:`collate_packed` from the same random draws.
    """
    if lengths is None:
        dataset = torch.utils.data.TensorDataset(x, y)
        return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=shuffle)
    return PackedLoader(x, lengths, y, batch_size=batch_size, shuffle=shuffle)
