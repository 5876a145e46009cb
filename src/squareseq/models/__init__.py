"""Layer 2, models: what learns.

What lives here: ``networks`` (``SquareModel``, the tutorial's RNN with GRU/LSTM, stacked and
bidirectional variants; ``SquareConv1d``, the book's one-filter convolution; ``build_model`` from
a stored description), ``conv`` (``ConvClassifier``, stacked dilated convolutions with masked
batch norm and global pooling over real steps), ``parts`` (checks both share) and
``hidden`` (a recurrent model's hidden states step by step, unrolled by hand and checked against
``nn.RNN``, and their 2-D projections). It may import :mod:`squareseq.data` and the base
(``errors``, ``config``); nothing from training, figures or runs.
"""
from squareseq.models.networks import *  # noqa: F401,F403  (the 0.1 module's names)
from squareseq.models.networks import __all__  # noqa: F401
