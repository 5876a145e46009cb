"""Seed lists as users write them (``"0-255"``, ``"1,5,9"``).

Torch-free, so the command line can check ``--seeds`` before it imports torch.
"""
from __future__ import annotations

from typing import Iterable, List, Union
from .errors import SquareseqError

__all__ = ["parse_seeds"]


def parse_seeds(spec: Union[str, int, Iterable[int]]) -> List[int]:
    """Seeds from ``"0-255"``, ``"1,5,9"``, ``"0-3,10"``, an int or an iterable of ints.

    Raises ``ValueError`` for an empty list, a malformed part or a seed given twice.
    """
    if isinstance(spec, int):
        return [spec]
    if not isinstance(spec, str):
        seeds = [int(s) for s in spec]
    else:
        seeds = []
        for part in spec.replace(" ", "").split(","):
            if not part:
                continue
            try:
                if "-" in part:
                    first, last = part.split("-", 1)
                    seeds.extend(range(int(first), int(last) + 1))
                else:
                    seeds.append(int(part))
            except ValueError:
                raise SquareseqError(f"bad seed list {spec!r}: use forms like '0-255' or '1,5,9'") from None
    if not seeds:
        raise SquareseqError(f"no seeds in {spec!r}: use forms like '0-255' or '1,5,9'")
    if len(set(seeds)) != len(seeds):
        raise SquareseqError(f"seeds repeat in {spec!r}: give each seed once")
    return seeds
