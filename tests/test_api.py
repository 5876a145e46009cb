"""The public API cannot drift silently."""
import squareseq
import squareseq.plots

EXPECTED = {
    "Callback", "History", "SquareModel", "StepByStep", "generate_sequences", "make_sequences",
    "make_tensors", "to_tensors", "__version__", "SquareConv1d", "build_model",
}


def test_top_level_exports():
    assert set(squareseq.__all__) == EXPECTED
    for name in EXPECTED:
        assert hasattr(squareseq, name)


def test_plots_star_import_gives_tutorial_figures():
    namespace = {}
    exec("from squareseq.plots import *", namespace)
    for name in ("counter_vs_clock", "plot_sequences", "plot_data", "plot_losses"):
        assert callable(namespace[name])


def test_every_public_function_has_a_docstring():
    for name in squareseq.__all__:
        obj = getattr(squareseq, name)
        if callable(obj):
            assert obj.__doc__, name
