"""The loss names and their one-line descriptions, as plain data without torch.

The CLI's parser and :meth:`RunConfig.validate <squareseq.config.RunConfig.validate>` need only
these, so ``squareseq --help`` and bad options answer without importing torch;
:data:`squareseq.losses.LOSSES` builds its specs from the same table.
"""
from __future__ import annotations

from typing import Dict, Tuple

__all__ = ["LOSS_DESCRIPTIONS", "LOSS_NAMES"]

#: Each loss's CLI name and the line ``--help`` shows for it, in the order the CLI lists them.
LOSS_DESCRIPTIONS: Dict[str, str] = {
    "bce-logits": "one logit, BCEWithLogitsLoss (the tutorial's choice)",
    "bce": "a sigmoid output (a probability), BCELoss",
    "ce": "two logits, the first pinned at 0, CrossEntropyLoss on integer labels (the same model as bce-logits)",
    "ce-free": "two free logits, CrossEntropyLoss on integer labels",
}

#: The loss names, as ``--loss`` accepts them (besides ``auto``).
LOSS_NAMES: Tuple[str, ...] = tuple(LOSS_DESCRIPTIONS)
