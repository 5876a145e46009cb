"""The run's figures are laid out once, with fixed margins (no layout engine measuring every text
before each draw), and still nothing is cut or overlaps: every title, axis label, tick label,
legend and suptitle lies inside the figure, clear of the other texts and of the other panels.
Content, not pixels: the rendered texts' boxes against the figure's and the axes' extents."""
import itertools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from figure_helpers import tiny_run  # noqa: E402
from squareseq import SquareModel  # noqa: E402
from squareseq.figures import hidden as hp  # noqa: E402
from squareseq.figures import plots  # noqa: E402
from squareseq.figures.conv import plot_conv_filter  # noqa: E402
from squareseq.figures.layout import fixed_layout, title_lines  # noqa: E402
from squareseq.models.networks import SquareConv1d  # noqa: E402

TOLERANCE = 1.0  # pixels: antialiased edges may touch


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def run():
    return tiny_run(n_epochs=5, recorder=False)


def _furniture(fig, renderer):
    """``(owner, name, box)`` of every text that frames the data: titles, axis and tick labels (of
    ticks in view), legends (as one box each), the suptitle; ``owner`` is the axes it belongs to
    (None: the figure's)."""
    found = []
    if fig._suptitle is not None and fig._suptitle.get_text():
        found.append((None, "suptitle", fig._suptitle.get_window_extent(renderer)))
    for legend in fig.legends:
        found.append((None, "legend", legend.get_window_extent(renderer)))
    for ax in fig.axes:
        texts = [("title", ax.title), ("left title", ax._left_title), ("right title", ax._right_title),
                 ("xlabel", ax.xaxis.label), ("ylabel", ax.yaxis.label)]
        for axis, (low, high) in ((ax.xaxis, sorted(ax.get_xlim())), (ax.yaxis, sorted(ax.get_ylim()))):
            span = (high - low) * 1e-9
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if low - span <= tick.get_loc() <= high + span:
                    texts += [("tick", label) for label in (tick.label1, tick.label2) if label.get_visible()]
        for name, text in texts:
            if text.get_visible() and text.get_text().strip():
                found.append((ax, f"{name} {text.get_text()!r}", text.get_window_extent(renderer)))
        if ax.get_legend() is not None:
            found.append((ax, "axes legend", ax.get_legend().get_window_extent(renderer)))
    return found


def _overlap(a, b) -> bool:
    return min(a.x1, b.x1) - max(a.x0, b.x0) > TOLERANCE and min(a.y1, b.y1) - max(a.y0, b.y0) > TOLERANCE


def assert_laid_out(fig) -> None:
    """Nothing cut (every text inside the figure), no two texts overlapping, no text over
    another panel."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    frame = fig.bbox
    found = _furniture(fig, renderer)
    assert len(found) > 3
    for _, name, box in found:
        assert (box.x0 >= frame.x0 - TOLERANCE and box.x1 <= frame.x1 + TOLERANCE
                and box.y0 >= frame.y0 - TOLERANCE and box.y1 <= frame.y1 + TOLERANCE), f"{name} is cut: {box}"
    for (_, name_a, a), (_, name_b, b) in itertools.combinations(found, 2):
        assert not _overlap(a, b), f"{name_a} overlaps {name_b}"
    panels = [(ax, ax.get_window_extent(renderer)) for ax in fig.axes if ax.get_visible() and ax.axison]
    for owner, name, box in found:
        for ax, extent in panels:
            if ax is not owner and not (name == "axes legend" and ax is owner):
                assert not _overlap(box, extent), f"{name} lies over the panel {ax.get_title()!r}"


@pytest.fixture
def no_layout_engine(monkeypatch):
    """Fails any test whose figures run an automatic layout (``tight_layout``, constrained layout)."""
    from matplotlib import layout_engine

    def refuse(self, fig):
        raise AssertionError(f"{type(self).__name__} ran")

    for engine in (layout_engine.TightLayoutEngine, layout_engine.ConstrainedLayoutEngine):
        monkeypatch.setattr(engine, "execute", refuse)


def _rnn(cell, hidden_dim=2, seed=0):
    torch.manual_seed(seed)
    return SquareModel(2, hidden_dim, 1, cell=cell).eval()


# -- the check itself ------------------------------------------------------------------------------

def test_the_check_sees_a_cut_label_and_an_overlap():
    """A label pushed off the figure, or two panels squeezed together, fail the check."""
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.set_ylabel("a long label")
    fixed_layout(fig, (0.05, 0.2, 0.5, 0.3, 0.0, 0.0))
    with pytest.raises(AssertionError, match="cut"):
        assert_laid_out(fig)
    fig, axs = plt.subplots(1, 2, figsize=(6, 3))
    for ax in axs:
        ax.set_ylabel("values")
        ax.set_title("a title wider than its panel")
    fixed_layout(fig, (0.7, 0.2, 0.5, 0.4, 0.05, 0.0))
    with pytest.raises(AssertionError, match="overlaps|over the panel"):
        assert_laid_out(fig)


def test_fixed_layout_keeps_margins_in_inches():
    fig, axs = plt.subplots(2, 3, figsize=(9, 6))
    fixed_layout(fig, (1.0, 0.5, 0.75, 0.25, 0.6, 0.3))
    fig.canvas.draw()
    dpi = fig.dpi
    boxes = [ax.get_window_extent() for ax in axs.ravel()]
    assert boxes[0].x0 / dpi == pytest.approx(1.0) and boxes[2].x1 / dpi == pytest.approx(9 - 0.5)
    assert boxes[3].y0 / dpi == pytest.approx(0.75) and boxes[0].y1 / dpi == pytest.approx(6 - 0.25)
    assert (boxes[1].x0 - boxes[0].x1) / dpi == pytest.approx(0.6)
    assert (boxes[0].y0 - boxes[3].y1) / dpi == pytest.approx(0.3)
    assert title_lines(None) == 0 and title_lines("a\nb") == 2


# -- the run's figures -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["corners", "corners_plain", "sequences", "sequences_task", "data", "data_task",
                                  "data_wide", "losses", "lr_range"])
def test_tutorial_figures_have_fixed_layouts_and_nothing_cut(name, no_layout_engine):
    rng = np.random.default_rng(0)
    points = [rng.normal(size=(4, 2)) for _ in range(12)]
    directions = [i % 2 for i in range(12)]
    draw = {
        "corners": lambda: plots.counter_vs_clock(),
        "corners_plain": lambda: plots.counter_vs_clock(draw_arrows=False),
        "sequences": lambda: plots.plot_sequences(),
        "sequences_task": lambda: plots.plot_sequences(task="corner-direction"),
        "data": lambda: plots.plot_data(points, directions),
        "data_task": lambda: plots.plot_data(points, directions, labels=[i % 8 for i in range(12)],
                                             class_names=["A ccw", "A cw", "B ccw", "B cw", "C ccw", "C cw", "D ccw",
                                                          "D cw"]),
        "data_wide": lambda: plots.plot_data(points, directions, n_rows=3, n_cols=4),
        "losses": lambda: plots.plot_losses({"losses": list(np.geomspace(0.7, 0.002, 100)),
                                             "val_losses": list(np.geomspace(0.8, 0.004, 100))}),
        "lr_range": lambda: plots.plot_lr_range({"lr": list(np.geomspace(1e-5, 1, 50)),
                                                 "loss": list(np.linspace(0.9, 0.4, 50))}),
    }
    fig = draw[name]()
    assert_laid_out(fig)


@pytest.mark.parametrize("cell,hidden_dim", [("rnn", 2), ("gru", 2), ("lstm", 2), ("rnn", 3)])
def test_hidden_figures_have_fixed_layouts_and_nothing_cut(run, cell, hidden_dim, no_layout_engine):
    """The hidden-state figures of the default run (and a GRU's, an LSTM's, and a projected
    hidden size 3, whose titles take a second line)."""
    model = run["model"] if (cell, hidden_dim) == ("rnn", 2) else _rnn(cell, hidden_dim)
    x, y = run["x"], run["y"]
    draws = {"steps": lambda: hp.plot_hidden_steps(model, x, y), "canonical": lambda: hp.plot_canonical_hidden(model),
             "journey": lambda: hp.plot_journey(model, x[0], int(y[0])), "paths": lambda: hp.plot_hidden_paths(model, x, y)}
    for name, draw in draws.items():
        fig = draw()
        try:
            assert_laid_out(fig)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None
        plt.close(fig)


def test_conv_filter_figure_has_a_fixed_layout(no_layout_engine):
    torch.manual_seed(0)
    fig = plot_conv_filter(SquareConv1d())
    assert_laid_out(fig)
