"""Layer 1, data: the sequences a model reads.

What lives here: ``squares`` (the tutorial's generator of noisy squares, bit for bit, and the
tensors, labels and packing every layer above uses), ``files`` with ``npz_files``, ``csv_files``
(``csv_fast``, ``csv_schema``), ``ts_files`` and ``file_checks`` (your own sequences from
``.npz``/``.csv``/``.ts``, checked field by field), ``layout`` (``(N, L, F)`` or ``(N, C, L)``, NaN
padding), ``labels`` (any labels to classes with names), ``preprocessing`` (what a run's inputs
went through, kept in its checkpoint), ``inputs`` (what ``predict`` reads),
``loaders`` (in-memory loaders that draw exactly as ``DataLoader`` does) and ``checks`` (the
one-line checks of inputs, labels and lengths). It may import only :mod:`squareseq.errors` and
:mod:`squareseq.config`, numpy and torch: nothing from models, training, figures or runs.

The 0.1 module's names are importable from here as before (``squareseq.data.generate_sequences``,
``squareseq.data.collate_packed``).
"""
from squareseq.data.loaders import (  # noqa: F401
    PackedLoader,
    SequenceDataset,
    collate_packed,
    make_loader,
    make_variable_length_loader,
)
from squareseq.data.squares import *  # noqa: F401,F403
from squareseq.data.squares import __all__ as _squares_all

__all__ = [*_squares_all, "PackedLoader", "SequenceDataset", "collate_packed", "make_loader",
           "make_variable_length_loader"]
