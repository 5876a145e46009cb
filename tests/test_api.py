"""The public API cannot drift silently: the top-level names, the documented import paths, and
the flat module names of squareseq 0.1, which still import (as the modules that now live in a
layer)."""
import importlib
import importlib.resources
import importlib.util
import subprocess
import sys

import pytest

import squareseq

EXPECTED = {
    "Callback", "History", "FitState", "fit", "SquareModel", "SquareConv1d", "ConvClassifier", "build_model", "StepByStep",
    "generate_sequences", "make_sequences", "make_tensors", "to_tensors", "train_many", "RunConfig",
    "RunOptions", "run_experiment", "RunResult", "SquareseqError", "ConfigError", "DataError", "ModelError",
    "SequenceClassifier",
    "__version__",
}


#: Public names that need an optional package, and that package's import name.
OPTIONAL = {"SequenceClassifier": "sklearn"}


def _public(name):
    """``squareseq.<name>``, or None where it needs an optional package that is not installed (then
    the error says how to install it: one line naming the extra)."""
    if name in OPTIONAL and importlib.util.find_spec(OPTIONAL[name]) is None:
        with pytest.raises(squareseq.SquareseqError, match=rf"pip install 'squareseq\[{OPTIONAL[name]}\]'"):
            getattr(squareseq, name)
        return None
    return getattr(squareseq, name)


def test_top_level_exports():
    assert set(squareseq.__all__) == EXPECTED
    for name in EXPECTED:
        assert name in OPTIONAL or hasattr(squareseq, name)
        _public(name)
    assert set(EXPECTED) <= set(dir(squareseq))


def test_plots_star_import_gives_tutorial_figures():
    namespace = {}
    exec("from squareseq.plots import *", namespace)
    for name in ("counter_vs_clock", "plot_sequences", "plot_data", "plot_losses"):
        assert callable(namespace[name])


def test_every_public_function_has_a_docstring():
    for name in squareseq.__all__:
        obj = _public(name)
        if callable(obj):
            assert obj.__doc__, name


@pytest.mark.parametrize("old,new", sorted(squareseq._MOVED.items()))
def test_flat_module_names_of_0_1_import_the_moved_module(old, new):
    """``import squareseq.<old>`` gives the very module that lives in its layer now (a patch
    through either name reaches both)."""
    assert importlib.import_module(f"squareseq.{old}") is importlib.import_module(f"squareseq.{new}")
    assert getattr(squareseq, old) is importlib.import_module(f"squareseq.{new}")


def test_documented_import_paths():
    """The README's and the tutorial's imports."""
    from squareseq import SquareModel, StepByStep, generate_sequences  # noqa: F401
    from squareseq.config import RunConfig, RunOptions  # noqa: F401
    from squareseq.data import collate_packed, make_tensors  # noqa: F401
    from squareseq.experiment import run_experiment  # noqa: F401
    from squareseq.hidden import hidden_states  # noqa: F401
    from squareseq.loader import FastLoader  # noqa: F401
    from squareseq.many import train_many  # noqa: F401
    from squareseq.optim import FlatAdam  # noqa: F401
    from squareseq.replay import SnapshotRecorder, animate, compute_frames, save_gif  # noqa: F401
    from squareseq.runs import prepare_run_dir, write_json  # noqa: F401
    from squareseq.training import make_train_step, run_epoch  # noqa: F401


def test_import_squareseq_stays_light():
    """``import squareseq`` (and the config) loads neither torch nor matplotlib."""
    code = "import sys, squareseq, squareseq.config; print(sorted({'torch', 'matplotlib'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_package_is_typed():
    assert (importlib.resources.files("squareseq") / "py.typed").is_file()
