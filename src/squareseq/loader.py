"""An in-memory loader over tensors that yields exactly what a ``DataLoader`` would.

``DataLoader(TensorDataset(x, y), batch_size=B, shuffle=True)`` indexes the dataset once per
sample and stacks the samples again for every batch: for a model whose arithmetic costs a
microsecond, that is most of the time of a step. :class:`FastLoader` gathers the shuffled
tensors once per epoch and yields contiguous slices of them, the same batches bit for bit.

It also draws from torch's global generator exactly as the ``DataLoader`` does, so everything
random that happens after an epoch (the next shuffle, dropout, a user's own draws) is unchanged:

* every ``iter(loader)`` draws a base seed (``DataLoader`` uses it to seed worker processes),
  with or without shuffling;
* a shuffling loader then draws, when its first batch is requested, a seed for a fresh
  ``torch.Generator`` and takes ``randperm(n)`` from it. With an explicit ``generator`` the
  base seed and the permutation come from that generator instead, and (as ``RandomSampler``
  does) one more permutation is drawn from it when the pass runs to its end.
"""
from __future__ import annotations

from typing import Iterator, List, Optional, Sequence

import torch

__all__ = ["FastLoader"]


def _draw_seed(generator: Optional[torch.Generator] = None) -> int:
    """One int64 draw, as ``DataLoader`` and ``RandomSampler`` make it."""
    return int(torch.empty((), dtype=torch.int64).random_(generator=generator).item())


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
                raise ValueError(f"FastLoader takes tensors, got {type(t).__name__}: convert it with torch.as_tensor")
        n = len(x)
        if any(len(t) != n for t in tensors):
            raise ValueError(f"all tensors need the same first dimension, got {[len(t) for t in tensors]}")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if shuffle and n == 0:
            raise ValueError("cannot shuffle an empty dataset: give it at least one sample")
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
        # Drawn at iter() time, as DataLoader's iterator does in its constructor.
        _draw_seed(self.generator)
        return self._batches()

    def _batches(self) -> Iterator[List[torch.Tensor]]:
        tensors = self.tensors
        if self.shuffle:
            # Drawn on the first next(), as RandomSampler's generator body runs only then.
            generator = self.generator
            if generator is None:
                generator = torch.Generator()
                generator.manual_seed(_draw_seed())
            order = torch.randperm(self.n_samples, generator=generator)
            tensors = tuple(t[order] for t in tensors)
        b = self.batch_size
        for i in range(len(self)):
            yield [t[i * b:(i + 1) * b] for t in tensors]
        if self.shuffle and self.generator is not None:
            # RandomSampler draws one more (empty) permutation as the pass ends; with a private
            # generator that is invisible, with the loader's own it moves the next shuffle.
            torch.randperm(self.n_samples, generator=self.generator)

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
