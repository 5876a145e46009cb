"""squareseq: sequence classification with PyTorch, step by step.

The Square Model tutorial as a package: its data generator, model and ``StepByStep`` trainer
(bit-exact with the tutorial), on a small, fast and safe training core. The layers, each a
subpackage that imports only the ones before it::

    errors, config     what can go wrong, what to run (no torch)
    data               squares, your own files, loaders
    models             SquareModel, SquareConv1d, their hidden states
    training           the loop, callbacks, losses, metrics, checkpoints, the fast path, many models
    figures            plots, hidden-space figures, replays, a run's figure set
    stepbystep         the tutorial's StepByStep facade over training (and figures, for its plots)
    runs               the experiment, run folders, reports, predictions from a trained run
    cli                the ``squareseq`` command

The public names below load on first use (PEP 562): ``import squareseq`` alone imports no torch,
so the ``squareseq`` command answers ``--help`` and bad options at once. The flat module names of
earlier versions (``squareseq.plots``, ``squareseq.replay``, ``squareseq.experiment``, ...) still
import: each is the module that now lives in its layer (:data:`_MOVED`).
"""
import importlib as _importlib
import importlib.abc as _abc
import importlib.util as _util
import sys as _sys
from typing import Any as _Any  # private: dir(squareseq) stays clean
from typing import Dict as _Dict
from typing import List as _List

__version__ = "0.2.0"

# Each public name and the module that defines it.
_LAZY: _Dict[str, str] = {
    "generate_sequences": "data.squares",
    "make_sequences": "data.squares",
    "make_tensors": "data.squares",
    "to_tensors": "data.squares",
    "SquareConv1d": "models.networks",
    "ConvClassifier": "models.networks",
    "SquareModel": "models.networks",
    "build_model": "models.networks",
    "StepByStep": "stepbystep",
    "Callback": "training.loop",
    "History": "training.loop",
    "FitState": "training.loop",
    "fit": "training.loop",
    "train_many": "training.many",
    "RunConfig": "config",
    "RunOptions": "config",
    "run_experiment": "runs.experiment",
    "RunResult": "runs.experiment",
    "SquareseqError": "errors",
    "ConfigError": "errors",
    "DataError": "errors",
    "ModelError": "errors",
    "SequenceClassifier": "estimators.classifier",
}

__all__ = [*_LAZY, "__version__"]

# The flat modules of squareseq 0.1 and where each lives now.
_MOVED: _Dict[str, str] = {
    "datafiles": "data.files",
    "npz_reader": "data.npz_files",
    "csv_reader": "data.csv_files",
    "datafile_checks": "data.file_checks",
    "loader": "data.loaders",
    "validation": "data.checks",
    "hidden": "models.hidden",
    "callbacks": "training.callbacks",
    "losses": "training.losses",
    "metrics": "training.metrics",
    "optim": "training.optim",
    "fused": "training.fused",
    "fastpath": "training.fastpath",
    "guard": "training.guard",
    "threads": "training.threads",
    "lr_finder": "training.lr_finder",
    "probes": "training.probes",
    "checkpoint": "training.checkpoint",
    "trainer_state": "training.state",
    "rng": "training.rng",
    "many": "training.many",
    "plots": "figures.book",
    "hidden_plots": "figures.hidden",
    "conv_plots": "figures.conv",
    "replay": "figures.replay",
    "run_figures": "figures.run_figures",
    "rundata": "runs.data",
    "experiment": "runs.experiment",
    "inference": "runs.inference",
    "report": "runs.report",
    "rebuild": "runs.rebuild",
    "sweep": "runs.sweep",
    "trainer_hooks": "training.hooks",
    "snapshots": "figures.snapshots",
    "report_page": "runs.page",
}


class _MovedModuleFinder(_abc.MetaPathFinder, _abc.Loader):
    """Imports ``squareseq.<old name>`` as the module that now lives in a layer, the same module
    object (so a patch through either name reaches both)."""

    def find_spec(self, fullname: str, path: _Any = None, target: _Any = None) -> _Any:
        prefix, _, name = fullname.partition(".")
        if prefix == __name__ and name in _MOVED:
            return _util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec: _Any) -> None:
        return None

    def exec_module(self, module: _Any) -> None:
        name = module.__name__
        real = _importlib.import_module(f"{__name__}.{_MOVED[name.partition('.')[2]]}")
        _sys.modules[name] = real  # the import system hands out what sys.modules holds


if not any(isinstance(finder, _MovedModuleFinder) for finder in _sys.meta_path):
    _sys.meta_path.append(_MovedModuleFinder())


def __getattr__(name: str) -> _Any:
    """Imports a public name's module on first access and caches the name here; other names are
    looked up as submodules (``squareseq.losses``), as an eager import made them."""
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
