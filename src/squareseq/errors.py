"""The one exception family squareseq raises for bad input: a ``ValueError`` whose message is a
single line saying what is wrong and how to fix it. The CLI prints it and exits with code 2."""
from __future__ import annotations

__all__ = ["SquareseqError"]


class SquareseqError(ValueError):
    """Bad input (an option, a file, a tensor, a checkpoint) described in one line."""
