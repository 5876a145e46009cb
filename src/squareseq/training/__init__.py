"""Layer 3, training: fitting a model and keeping what it learned.

What lives here: ``loop`` (step factories, the epoch runner, ``fit`` and its callback events,
``History``), ``callbacks`` (progress bar, schedulers, early stopping; the order callbacks run
in), ``losses`` and ``metrics``, ``guard`` (NaN/inf checks, signals, periodic checkpoints),
``checkpoint``, ``state`` and ``rng`` (safe, atomic, exactly resumable checkpoints), the fast
path (``fastpath``, ``optim``'s ``FlatAdam``, ``fused``, ``threads``: the same numbers in a
third of the time), ``many`` (K models in one batched pass), ``hooks``, ``probes`` and
``lr_finder``. It may import data, models and the base; nothing from figures, the
``StepByStep`` facade or runs.

The loop's names are importable from here as before (``squareseq.training.make_train_step``).
"""
from squareseq.training.loop import *  # noqa: F401,F403  (the 0.1 module's names)
from squareseq.training.loop import __all__  # noqa: F401
