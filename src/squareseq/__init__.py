"""squareseq: sequence classification with PyTorch, step by step.

The Square Model tutorial as a package: its data generator, model and ``StepByStep`` trainer
(bit-exact with the tutorial), on a small, fast and safe training core.

The names below load on first use (PEP 562): ``import squareseq`` alone does not import torch,
so the ``squareseq`` command answers ``--help`` and bad options at once.
"""
import importlib as _importlib
from typing import Any as _Any, Dict as _Dict, List as _List  # private: dir(squareseq) stays clean

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

# Each public name and the submodule that defines it.
_LAZY: _Dict[str, str] = {
    "generate_sequences": "data",
    "make_sequences": "data",
    "make_tensors": "data",
    "to_tensors": "data",
    "SquareConv1d": "models",
    "SquareModel": "models",
    "build_model": "models",
    "StepByStep": "stepbystep",
    "Callback": "training",
    "History": "training",
}


def __getattr__(name: str) -> _Any:
    """Imports a public name's submodule on first access and caches the name here; other
    names are looked up as submodules (``squareseq.losses``), as an eager import made them."""
    if name in _LAZY:
        value = getattr(_importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    if not name.startswith("__"):
        try:
            return _importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> _List[str]:
    """The module's names, including the public names not loaded yet."""
    return sorted(set(globals()) | set(__all__))
