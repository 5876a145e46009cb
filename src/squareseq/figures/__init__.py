"""Layer 4, figures: what a person looks at.

What lives here: ``plots`` (the tutorial's figures, ``from squareseq.plots import *``), ``hidden``
(hidden-space figures: step panels, canonical sequences, journeys, paths), ``classes`` and
``class_hidden`` (the same for any classes: hidden states coloured by class over a
predicted-class map, for runs on a user's data), ``conv`` (what a Conv1d filter detects),
``journeys`` and ``cell_steps`` (one sequence through an RNN's, a GRU's or an LSTM's update,
arrow by arrow), ``book`` with ``book_contours``, ``book_spaces`` and ``book_cells`` (the book's
plotting API by name, what ``squareseq.plots`` is now: its contours, its cells worked by hand,
figures 8.8 to 8.25), ``snapshots`` and ``replay`` (per-epoch snapshots recorded while training, animated afterwards),
``figure_set`` (which figures a run gets and why some are skipped) and ``run_figures`` (drawing
them to files with progress). Figure functions take arrays and models and return
a ``Figure``; none changes matplotlib's global style. It may import training, models, data and
the base; nothing from the ``StepByStep`` facade or runs.
"""
