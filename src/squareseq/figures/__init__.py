"""Layer 4, figures: what a person looks at.

What lives here: ``plots`` (the tutorial's figures, ``from squareseq.plots import *``), ``hidden``
(hidden-space figures: step panels, canonical sequences, journeys, paths), ``classes`` and
``class_hidden`` (the same for any classes: hidden states coloured by class over a
predicted-class map, for runs on a user's data), ``conv`` (what a Conv1d filter detects),
``snapshots`` and ``replay`` (per-epoch snapshots recorded while training, animated afterwards),
``figure_set`` (which figures a run gets and why some are skipped) and ``run_figures`` (drawing
them to files with progress). Figure functions take arrays and models and return
a ``Figure``; none changes matplotlib's global style. It may import training, models, data and
the base; nothing from the ``StepByStep`` facade or runs.
"""
