"""squareseq: sequence classification with PyTorch, step by step.

The Square Model tutorial as a package: its data generator, model and ``StepByStep`` trainer
(bit-exact with the tutorial), on a small, fast and safe training core.
"""
from .data import generate_sequences, make_sequences, make_tensors, to_tensors
from .models import SquareConv1d, SquareModel, build_model
from .stepbystep import StepByStep
from .training import Callback, History

__version__ = "0.1.0"

__all__ = [
    "Callback",
    "History",
    "SquareConv1d",
    "SquareModel",
    "StepByStep",
    "generate_sequences",
    "make_sequences",
    "make_tensors",
    "to_tensors",
    "build_model",
    "__version__",
]
