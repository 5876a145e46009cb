"""Figure tests on content, not pixels: the tutorial's figures (squareseq.figures.plots) and the
hidden-state figures (squareseq.figures.hidden)."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import nn  # noqa: E402

from figure_helpers import tiny_run  # noqa: E402
from squareseq import (  # noqa: E402
    SquareModel,
    StepByStep,
    make_sequences,
    plots,  # noqa: E402
)
from squareseq import hidden_plots as hp  # noqa: E402
from squareseq.data.squares import CORNERS  # noqa: E402
from squareseq.figures.plots import CLASS_COLORS  # noqa: E402
from squareseq.models.hidden import canonical_sequences, hidden_states, unroll_rnn  # noqa: E402

RED, BLUE = to_rgba(CLASS_COLORS[0]), to_rgba(CLASS_COLORS[1])


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def run():
    return tiny_run(n_epochs=5, recorder=False)


def _titles(fig):
    return [ax.get_title() for ax in fig.axes]


def _image_axes(fig):
    return [ax for ax in fig.axes if ax.images and ax.get_label() != "<colorbar>"]


# -- the tutorial's figures ----------------------------------------------------------------------

@pytest.mark.slow
def test_figures_do_not_show_or_change_global_style(monkeypatch, run):
    """No figure calls plt.show() or leaves rcParams changed."""
    monkeypatch.setattr(plt, "show", lambda *a, **k: pytest.fail("plt.show() was called"))
    before = dict(matplotlib.rcParams)
    figs = [plots.counter_vs_clock(), plots.counter_vs_clock(False), plots.plot_sequences(),
            plots.plot_data(*run["train"]), plots.plot_losses(run["history"]),
            hp.plot_hidden_steps(run["model"], run["x"], run["y"]), hp.plot_canonical_hidden(run["model"]),
            hp.plot_journey(run["model"], run["x"][0], int(run["y"][0])),
            hp.plot_hidden_paths(run["model"], run["x"], run["y"])]
    assert all(isinstance(f, Figure) for f in figs)
    assert dict(matplotlib.rcParams) == before


def test_counter_vs_clock_panels_and_corners():
    """With arrows: two panels titled by direction; without: one panel; corners at A-D."""
    fig = plots.counter_vs_clock(draw_arrows=True)
    assert _titles(fig) == ["Counter-Clockwise", "Clockwise"]
    assert all([t.get_text() for t in ax.texts if t.get_text()] == list("ABCD") for ax in fig.axes)
    offsets = np.concatenate([c.get_offsets() for c in fig.axes[0].collections])
    np.testing.assert_array_equal(offsets, CORNERS)
    arrows = [t for t in fig.axes[1].texts if getattr(t, "arrow_patch", None) is not None]
    assert len(arrows) == 4  # one arrow per side of the square
    fig0 = plots.counter_vs_clock(draw_arrows=False)
    assert len(fig0.axes) == 1
    assert not [t for t in fig0.axes[0].texts if getattr(t, "arrow_patch", None) is not None]


def test_plot_sequences_eight_labelled_orders():
    """Eight panels, four per direction, each titled with its corner order and label."""
    fig = plots.plot_sequences()
    titles = _titles(fig)
    assert len(fig.axes) == 8
    assert sum(t.endswith("Counter-Clockwise (y=0)") for t in titles) == 4
    assert sum(t.endswith(": Clockwise (y=1)") for t in titles) == 4
    assert len({t.split(":")[0] for t in titles}) == 8


def test_plot_data_draws_the_given_points():
    """Each panel's path equals its sequence, its title names its class, its colour matches."""
    points, directions = make_sequences(12, seed=5)
    fig = plots.plot_data(points, directions, n_rows=2, n_cols=3)
    assert len(fig.axes) == 6
    for i, ax in enumerate(fig.axes):
        np.testing.assert_allclose(ax.lines[0].get_xydata(), points[i])
        expected = "Clockwise (y=1)" if directions[i] == 1 else "Counter-Clockwise (y=0)"
        assert ax.get_title() == expected
        assert to_rgba(ax.lines[0].get_color()) == (BLUE if directions[i] == 1 else RED)
        assert [t.get_text() for t in ax.texts if t.get_text()] == ["1", "2", "3", "4"]


def test_plot_data_with_fewer_sequences_than_panels():
    """Spare panels are switched off; mismatched inputs are a ValueError."""
    points, directions = make_sequences(3, seed=5)
    fig = plots.plot_data(points, directions)
    assert sum(ax.axison for ax in fig.axes) == 3
    with pytest.raises(ValueError, match="directions"):
        plots.plot_data(points, directions[:2])


def test_plot_data_names_the_classes_of_other_tasks():
    """With labels and class names (the 8-class task), each panel is titled by its class name
    and label, and still coloured by direction; mismatched inputs are a ValueError."""
    from squareseq.data.squares import class_names, label_directions

    points, labels = make_sequences(6, seed=5, task="corner-direction")
    directions = label_directions(labels, "corner-direction")
    names = class_names("corner-direction")
    fig = plots.plot_data(points, directions, n_rows=2, n_cols=3, labels=labels, class_names=names)
    for ax, label, direction in zip(fig.axes, labels, directions):
        assert ax.get_title() == f"{names[label]} (y={label})"
        assert to_rgba(ax.lines[0].get_color()) == (BLUE if direction == 1 else RED)
    assert len({ax.get_title() for ax in fig.axes}) > 2  # more than the two directions
    with pytest.raises(ValueError, match="together"):
        plots.plot_data(points, directions, labels=labels)
    with pytest.raises(ValueError, match="labels"):
        plots.plot_data(points, directions, labels=labels[:2], class_names=names)


def test_plot_sequences_names_the_8_classes():
    """For the corner-direction task each of the eight panels is its own class, named after its
    first corner and direction, labelled 2 * start + direction."""
    titles = _titles(plots.plot_sequences(task="corner-direction"))
    assert "ABCD: A cw (y=1)" in titles and "BCDA: B cw (y=3)" in titles
    assert "DCBA: D ccw (y=6)" in titles and "ADCB: A ccw (y=0)" in titles
    assert sorted(int(t.split("y=")[1].rstrip(")")) for t in titles) == list(range(8))


def test_plot_losses_log_scale_with_both_curves():
    """Training and validation curves, values as given, on a log scale; None values are gaps."""
    fig = plots.plot_losses({"losses": [0.7, 0.5, 0.3], "val_losses": [0.8, None, 0.4]})
    (ax,) = fig.axes
    assert ax.get_yscale() == "log"
    train, val = ax.lines
    np.testing.assert_allclose(train.get_ydata(), [0.7, 0.5, 0.3])
    np.testing.assert_allclose(val.get_ydata(), [0.8, np.nan, 0.4])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["Training Loss", "Validation Loss"]


def test_stepbystep_plot_losses_uses_plot_losses(run):
    """StepByStep.plot_losses draws its history with plots.plot_losses."""
    sbs = StepByStep(run["model"], nn.BCEWithLogitsLoss(), torch.optim.SGD(run["model"].parameters(), lr=0.1))
    sbs.losses, sbs.val_losses = [0.6, 0.4], [0.65, 0.45]
    fig = sbs.plot_losses()
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), [0.6, 0.4])
    assert fig.axes[0].get_yscale() == "log"


# -- hidden-state figures ------------------------------------------------------------------------

def _check_probability_image(ax, model):
    """The panel's probability image holds torch.sigmoid(classifier(h)) at its grid points."""
    image = ax.images[0]
    probs = np.asarray(image.get_array())
    n_rows, n_cols = probs.shape
    x0, x1, y0, y1 = image.get_extent()
    dx, dy = (x1 - x0) / n_cols, (y1 - y0) / n_rows
    for i, j in [(0, 0), (n_rows // 2, n_cols // 3), (n_rows - 1, n_cols - 1), (7, 60)]:
        h = torch.tensor([[x0 + (j + 0.5) * dx, y0 + (i + 0.5) * dy]], dtype=torch.float32)
        with torch.no_grad():
            expected = torch.sigmoid(model.classifier(h)).item()
        assert probs[i, j] == pytest.approx(expected, abs=1e-5)


def test_hidden_steps_one_panel_per_step_with_the_hidden_states(run):
    """Four step panels (plus a colour bar); panel t scatters hidden_states(model, x)[:, t],
    coloured red for counter-clockwise and blue for clockwise, over the model's probabilities."""
    model, x, y = run["model"], run["x"], run["y"]
    fig = hp.plot_hidden_steps(model, x, y)
    panels = _image_axes(fig)
    assert len(panels) == 4 and len(fig.axes) == 5
    assert [ax.get_title() for ax in panels] == [f"Hidden state after step {t}" for t in (1, 2, 3)] + [
        "Hidden state after step 4 (final)"]
    h = hidden_states(model, x)
    for t, ax in enumerate(panels):
        scatter = ax.collections[0]
        np.testing.assert_allclose(scatter.get_offsets(), h[:, t].numpy(), atol=1e-6)
        colors = [tuple(c) for c in scatter.get_facecolors()]
        assert colors == [BLUE if label == 1 else RED for label in y.tolist()]
    _check_probability_image(panels[0], model)


def test_hidden_steps_project_larger_hidden_states_and_say_so():
    """A hidden size of 5 is drawn with PCA and the title says so; no failure."""
    run5 = tiny_run(n_epochs=1, hidden_dim=5, recorder=False, n_train=16, n_test=16)
    fig = hp.plot_hidden_steps(run5["model"], run5["x"], run5["y"])
    assert "PCA" in fig.get_suptitle() and "5-D" in fig.get_suptitle()
    assert _image_axes(fig)[0].get_xlabel() == "PC 1"
    fig = hp.plot_hidden_paths(run5["model"], run5["x"], run5["y"])
    assert "PCA" in fig.get_suptitle()


def test_hidden_steps_work_for_a_gru(run):
    """A GRU recurrent layer gives the same figure; its journey goes through its gates, and a
    layer that is none of RNN, GRU, LSTM is refused."""
    torch.manual_seed(0)
    model = SquareModel(2, 2, 1)
    model.basic_rnn = nn.GRU(2, 2, batch_first=True)
    fig = hp.plot_hidden_steps(model, run["x"], run["y"])
    assert len(_image_axes(fig)) == 4
    assert "GRU's gates" in hp.plot_journey(model, run["x"][0]).get_suptitle()

    class Other(nn.RNNBase):
        pass

    model.basic_rnn = Other("RNN_TANH", 2, 2, batch_first=True)
    with pytest.raises(ValueError, match="nn.RNN, nn.GRU or nn.LSTM"):
        hp.plot_journey(model, run["x"][0])


def test_canonical_hidden_shows_the_eight_final_states(run):
    """Eight points, the final hidden states of the noise-free sequences, labelled by name."""
    model = run["model"]
    fig = hp.plot_canonical_hidden(model)
    ax = _image_axes(fig)[0]
    x, y, names = canonical_sequences()
    expected = hidden_states(model, torch.as_tensor(x))[:, -1].numpy()
    np.testing.assert_allclose(ax.collections[0].get_offsets(), expected, atol=1e-6)
    assert [t.get_text() for t in ax.texts] == names
    _check_probability_image(ax, model)


def test_journey_arrows_follow_the_hand_written_step(run):
    """Per step: arrows h_{t-1} -> W_hh h + b_hh -> + W_ih x + b_ih -> tanh, at the hand-computed
    points; one panel per step."""
    model, seq = run["model"], run["x"][0]
    fig = hp.plot_journey(model, seq, label=int(run["y"][0]))
    panels = _image_axes(fig)
    assert len(panels) == 4
    steps = unroll_rnn(model.basic_rnn, seq[None])
    prev = torch.zeros(2)
    for t, ax in enumerate(panels):
        arrows = [a for a in ax.texts if a.arrow_patch is not None]
        chain = [prev, steps[t].transformed_hidden[0], steps[t].pre_activation[0], steps[t].hidden[0]]
        assert len(arrows) == 3
        for arrow, start, end in zip(arrows, chain[:-1], chain[1:]):
            np.testing.assert_allclose(arrow.xyann, start.numpy(), atol=1e-6)
            np.testing.assert_allclose(arrow.xy, end.numpy(), atol=1e-6)
        prev = steps[t].hidden[0]
        assert ax.get_title().startswith(f"Step {t + 1}: x = ")


def test_hidden_paths_start_at_zero_and_follow_the_states(run):
    """Two panels (clockwise, counter-clockwise); each path starts at h = 0 and then visits the
    sequence's hidden states."""
    model, x, y = run["model"], run["x"], run["y"]
    fig = hp.plot_hidden_paths(model, x, y, n_paths=3)
    panels = _image_axes(fig)
    assert [ax.get_title().split(":")[0] for ax in panels] == ["Clockwise (y=1)", "Counter-Clockwise (y=0)"]
    h = hidden_states(model, x).numpy()
    for ax, label in zip(panels, (1, 0)):
        idx = np.flatnonzero(y.numpy() == label)[:3]
        paths = [line for line in ax.lines if line.get_label() != "P = 0.5"]
        assert len(paths) == len(idx)
        for line, i in zip(paths, idx):
            xy = line.get_xydata()
            np.testing.assert_allclose(xy[0], [0.0, 0.0])
            np.testing.assert_allclose(xy[1:], h[i], atol=1e-6)


def _saturated_model():
    """A model whose tanh saturates: several canonical sequences end on the same corner."""
    model = tiny_run(n_epochs=1, recorder=False, n_train=16, n_test=16)["model"]
    with torch.no_grad():
        for p in model.basic_rnn.parameters():
            p.mul_(20)
    return model


@pytest.mark.parametrize("which", ["trained", "saturated"])
def test_canonical_labels_stay_inside_the_axes_and_apart(run, which):
    """Every label's box lies inside the axes' frame, clear of the spines, and no two labels
    overlap, also where the final states of several sequences coincide."""
    model = run["model"] if which == "trained" else _saturated_model()
    fig = hp.plot_canonical_hidden(model)
    fig.canvas.draw()
    ax = _image_axes(fig)[0]
    frame = ax.get_window_extent()
    boxes = [t.get_bbox_patch().get_window_extent() for t in ax.texts]
    assert len(boxes) == 8
    for text, box in zip(ax.texts, boxes):
        assert frame.x0 < box.x0 and box.x1 < frame.x1 and frame.y0 < box.y0 and box.y1 < frame.y1, text.get_text()
    for i in range(8):
        for j in range(i + 1, 8):
            assert not boxes[i].overlaps(boxes[j]), (ax.texts[i].get_text(), ax.texts[j].get_text())


def test_hidden_paths_legend_shows_each_panels_final_state_colour(run):
    """The legend's "final state" entry shows both colours used (blue and red panels)."""
    from matplotlib.collections import PathCollection

    fig = hp.plot_hidden_paths(run["model"], run["x"], run["y"], n_paths=3)
    fig.canvas.draw()
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["P = 0.5", "start (h = 0)", "final state"]
    colors = {tuple(c) for artist in legend.findobj(PathCollection) for c in artist.get_facecolors()}
    assert RED in colors and BLUE in colors


def test_class_titles_are_the_direction_class_names():
    """The tutorial's titles name the direction task's classes, label by label."""
    from squareseq.data.squares import class_names
    from squareseq.figures.plots import CLASS_TITLES

    assert [title.lower() for title in CLASS_TITLES] == class_names("direction")
