"""The book's plotting API (``from squareseq.plots import *``): every figure checked for content
(panels, titles, the data plotted, one colour scale, no overlapping labels), not pixels."""
import itertools

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from torch import nn  # noqa: E402

import squareseq.plots as book  # noqa: E402
from squareseq import generate_sequences  # noqa: E402
from squareseq.data.squares import CORNERS  # noqa: E402
from squareseq.figures.book_contours import canonical_orders  # noqa: E402
from squareseq.figures.cell_steps import unroll_gru, unroll_lstm  # noqa: E402

BOOK_NAMES = ["hidden_states_contour", "canonical_contour", "transformed_inputs", "paths_clock_and_counter",
              "paths_starts", "feature_spaces", "probability_contour", "build_rnn_cell", "build_gru_cell",
              "disassemble_rnn", "disassemble_gru", "generate_rnn_states", "generate_gru_states", "figure8",
              "figure13", "figure16", "figure17", "figure20", "figure22", "figure25"]
SQUARE = torch.as_tensor(CORNERS, dtype=torch.float32)[None]  # ABCD, (1, 4, 2)


class BookModel(nn.Module):
    """The chapter's SquareModel / SquareModelGRU / SquareModelLSTM, as the notebook defines them."""

    def __init__(self, layer):
        super().__init__()
        self.hidden, self.cell = None, None
        self.basic_rnn = layer(2, 2, batch_first=True)
        self.classifier = nn.Linear(2, 1)

    def forward(self, X):
        out, self.hidden = self.basic_rnn(X)
        if isinstance(self.basic_rnn, nn.LSTM):
            self.hidden, self.cell = self.hidden
        return self.classifier(out[:, -1]).view(-1, 1)


@pytest.fixture(scope="module")
def models():
    result = {}
    for seed, layer in ((21, nn.RNN), (22, nn.GRU), (23, nn.LSTM)):
        torch.manual_seed(seed)
        result[layer.__name__] = BookModel(layer).eval()
    return result


@pytest.fixture(scope="module")
def data():
    points, directions = generate_sequences(n=24, seed=13)
    return np.asarray(points, dtype=np.float32), np.asarray(directions)


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _points(ax):
    """Every scattered point of ``ax``, ``(M, 2)``."""
    scatters = [c for c in ax.collections if isinstance(c, PathCollection) and len(c.get_offsets())]
    return np.concatenate([c.get_offsets() for c in scatters])


def _assert_no_overlap(fig):
    """No two titles, axis labels or tick labels (of any axes) overlap on the rendered figure."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = []
    for ax in fig.axes:
        texts += [ax.title, ax.xaxis.label, ax.yaxis.label]
        for axis, (low, high) in ((ax.xaxis, sorted(ax.get_xlim())), (ax.yaxis, sorted(ax.get_ylim()))):
            texts += [tick.label1 for tick in axis.get_major_ticks() if low <= tick.get_loc() <= high]
    boxes = [t.get_window_extent(renderer) for t in texts if t.get_visible() and t.get_text().strip()]
    assert len(boxes) > 4
    for a, b in itertools.combinations(boxes, 2):
        width = min(a.x1, b.x1) - max(a.x0, b.x0)
        height = min(a.y1, b.y1) - max(a.y0, b.y0)
        assert width <= 1 or height <= 1, (a, b)


def test_star_import_brings_the_books_names_and_keeps_the_tutorials():
    namespace = {}
    exec("from squareseq.plots import *", namespace)
    for name in BOOK_NAMES + ["counter_vs_clock", "plot_sequences", "plot_data", "plot_losses", "plot_lr_range"]:
        assert callable(namespace[name]), name
    assert book.CLASS_COLORS and book.plain_log_labels  # the module's helpers stay reachable


def test_rebuilt_cells_give_the_layers_own_hidden_states():
    """An RNN, a GRU and an LSTM taken apart by hand reproduce PyTorch's hidden states."""
    torch.manual_seed(0)
    x = torch.randn(1, 4, 2)
    rnn, gru, lstm = nn.RNN(2, 2, batch_first=True), nn.GRU(2, 2, batch_first=True), nn.LSTM(2, 2, batch_first=True)
    cell, states, hiddens, gates = book.generate_rnn_states(*book.disassemble_rnn(rnn, "_l0"), x)
    assert len(states) == len(hiddens) == 4 and gates == {} and torch.equal(hiddens[0], torch.zeros(1, 1, 2))
    torch.testing.assert_close(torch.cat([h.reshape(1, 2) for h in hiddens[1:]] + [cell(hiddens[-1]).reshape(1, 2)]),
                               rnn(x)[0][0].detach())
    cell, states, hiddens, gates = book.generate_gru_states(*book.disassemble_gru(gru, "_l0"), x)
    torch.testing.assert_close(cell(hiddens[-1]).reshape(2), gru(x)[0][0, -1].detach())
    assert len(gates["rmult"]) == len(gates["zmult"]) == 4
    torch.testing.assert_close(torch.stack([s.hidden[0] for s in unroll_gru(gru, x)]), gru(x)[0][0].detach())
    out, (_, c) = lstm(x)
    steps = unroll_lstm(lstm, x)
    torch.testing.assert_close(torch.stack([s.hidden[0] for s in steps]), out[0].detach())
    torch.testing.assert_close(steps[-1].cell, c[0].detach())


def test_figure8_works_an_rnn_cell_by_hand_on_the_first_step(data):
    torch.manual_seed(19)
    rnn_cell = nn.RNNCell(2, 2)
    linear_hidden, linear_input = book.disassemble_rnn(rnn_cell)
    X = torch.as_tensor(data[0][0])
    fig = book.figure8(linear_hidden, linear_input, X)
    assert len(fig.axes) == 4
    assert [ax.get_title().split("\n")[0] for ax in fig.axes] == [
        "hidden state ($h$)", "transformed state ($t_h$)", "adding $t_x$ ($t_h + t_x$)", "activated state"]
    np.testing.assert_allclose(_points(fig.axes[0]), [[0, 0]])
    np.testing.assert_allclose(_points(fig.axes[1]), linear_hidden(torch.zeros(1, 2)).detach(), atol=1e-6)
    np.testing.assert_allclose(_points(fig.axes[3]), rnn_cell(X[:1]).detach(), atol=1e-6)
    assert fig.axes[0].get_ylabel() == "Input #0"
    _assert_no_overlap(fig)


def test_figure13_draws_the_square_and_its_transformed_corners(models):
    rnn = models["RNN"].basic_rnn
    fig = book.figure13(rnn)
    (ax,) = fig.axes
    expected = CORNERS @ rnn.weight_ih_l0.detach().numpy().T + rnn.bias_ih_l0.detach().numpy()
    np.testing.assert_allclose(_points(ax), np.concatenate([CORNERS, expected]), atol=1e-6)
    assert ax.get_title() == "RNN" and [t.get_text() for t in ax.texts] == list("ABCD") * 2
    _assert_no_overlap(fig)


def test_figure16_follows_abcd_through_the_rnn_stages(models):
    rnn = models["RNN"].basic_rnn
    fig = book.figure16(rnn)
    axs = np.array(fig.axes).reshape(4, 4)
    expected = rnn(SQUARE)[0][0].detach().numpy()
    for step in range(4):
        np.testing.assert_allclose(_points(axs[step, -1]), expected[step:step + 1], atol=1e-6)
        assert axs[step, 0].get_ylabel() == f"Input #{step}"
        assert axs[step, -1].get_xlim() == (-1.05, 1.05)
    np.testing.assert_allclose(_points(axs[1, 0]), expected[:1], atol=1e-6)  # each row starts where the last ended
    grid = axs[0, 1].collections[0].get_segments()  # the grid of tanh's square, bent by W_hh
    assert len(grid) == 18
    np.testing.assert_allclose(grid[0], np.stack([np.full(41, -1.0), np.linspace(-1, 1, 41)], 1)
                               @ rnn.weight_hh_l0.detach().numpy().T + rnn.bias_hh_l0.detach().numpy(), atol=1e-5)


def test_figure17_and_the_paths_draw_every_step(models):
    rnn = models["RNN"].basic_rnn
    fig = book.figure17(rnn)
    assert [ax.get_title() for ax in fig.axes] == ["Input #0 (A)", "Input #1 (B)", "Input #2 (C)", "Input #3 (D)"]
    last = fig.axes[-1]
    star = [c for c in last.collections if c.get_paths() and len(c.get_offsets()) == 1][-1]
    np.testing.assert_allclose(star.get_offsets()[0], rnn(SQUARE)[0][0, -1].detach(), atol=1e-6)
    arrows = [t for t in last.texts if t.arrow_patch is not None]
    assert len(arrows) == 12  # 4 steps x (transform, add the input, tanh)
    linear = book.disassemble_rnn(rnn, "_l0")
    fig = book.paths_clock_and_counter(*linear)
    assert len(fig.axes) == 8 and fig.axes[5].get_title() == "Input #1 (D)"  # counter-clockwise: A D C B
    assert "Counter-Clockwise" in fig.axes[4].get_ylabel()
    fig = book.paths_starts(*linear)
    assert len(fig.axes) == 16 and [ax.get_title() for ax in fig.axes[4:8]][0] == "Input #0 (B)"
    _assert_no_overlap(fig)


def test_figure22_goes_through_the_grus_gates(models):
    gru = models["GRU"].basic_rnn
    fig = book.figure22(gru)
    axs = np.array(fig.axes).reshape(4, 7)
    expected = gru(SQUARE)[0][0].detach().numpy()
    steps = unroll_gru(gru, SQUARE)
    for step in range(4):
        np.testing.assert_allclose(_points(axs[step, -1]), expected[step:step + 1], atol=1e-6)
        r = ", ".join(f"{v:.2f}" for v in steps[step].reset[0].tolist())
        assert f"[{r}]" in axs[step, 2].get_title()
        z = ", ".join(f"{1 - v:.2f}" for v in steps[step].update[0].tolist())
        assert f"[{z}]" in axs[step, 5].get_title()
        np.testing.assert_allclose(_points(axs[step, 4]), steps[step].candidate.numpy(), atol=1e-6)
    _assert_no_overlap(fig)
    with pytest.raises(ValueError, match="GRU"):
        book.figure22(models["RNN"].basic_rnn)


def _images(fig):
    return [ax for ax in fig.axes if ax.images]


def test_hidden_states_contour_draws_every_step_on_one_scale(models, data):
    points, directions = data
    for name in ("RNN", "GRU", "LSTM"):
        model = models[name]
        fig = book.hidden_states_contour(model, points, directions)
        panels = _images(fig)
        assert len(panels) == 4 and len(fig.axes) == 5  # four steps and one colour bar
        assert [ax.get_title() for ax in panels] == [f"Hidden State #{t}" for t in range(4)]
        out = model.basic_rnn(torch.as_tensor(points))[0].detach().numpy()
        for t, ax in enumerate(panels):
            np.testing.assert_allclose(ax.collections[0].get_offsets(), out[:, t], atol=1e-6)
    lstm = models["LSTM"].basic_rnn
    fig = book.hidden_states_contour(models["LSTM"], points, directions, cell=True)
    for t, ax in enumerate(_images(fig)):
        cell = lstm(torch.as_tensor(points[:, :t + 1]))[1][1][0].detach().numpy()
        np.testing.assert_allclose(ax.collections[0].get_offsets(), cell, atol=1e-6)
        assert ax.get_title() == f"Cell State #{t}" and ax.get_xlabel() == "$c_0$"
    _assert_no_overlap(fig)


def test_canonical_contour_colours_the_eight_final_states_by_start(models):
    model = models["GRU"]
    fig = book.canonical_contour(model)
    ax = _images(fig)[0]
    x = torch.as_tensor(CORNERS[canonical_orders()], dtype=torch.float32)
    np.testing.assert_allclose(ax.collections[0].get_offsets(), model.basic_rnn(x)[0][:, -1].detach(), atol=1e-6)
    colors = [matplotlib.colors.to_hex(c) for c in ax.collections[0].get_facecolors()]
    assert colors == [matplotlib.colors.to_hex(c) for c in ("gray", "g", "b", "r")] * 2
    assert ax.get_title() == "Hidden State #3"


def test_figure20_and_figure25_share_one_colour_scale_without_overlaps(models):
    fig = book.figure20(models["RNN"], models["GRU"])
    assert [ax.get_title() for ax in _images(fig)] == ["RNN\nHidden State #3", "GRU\nHidden State #3"]
    fig = book.figure25(models["RNN"], models["GRU"], models["LSTM"])
    panels = _images(fig)
    assert len(panels) == 3 and len(fig.axes) == 4  # one colour bar for the three
    norms = {id(ax.images[0].norm) for ax in panels}
    assert len(norms) == 1 and (panels[0].images[0].norm.vmin, panels[0].images[0].norm.vmax) == (0.0, 1.0)
    assert len({ax.images[0].get_cmap().name for ax in panels}) == 1
    _assert_no_overlap(fig)


def test_probability_contour_draws_a_model_and_its_points():
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    fig, ax = plt.subplots()
    X, y = np.array([[0.5, 0.5], [-0.5, -0.2]]), np.array([1, 0])
    assert book.probability_contour(ax, model, "cpu", X, y, 0.5) is ax
    np.testing.assert_allclose(ax.collections[-1].get_offsets(), X)
    assert ax.get_title() == r"$\sigma(z) = P(y=1)$" and len(fig.axes) == 2


@pytest.mark.parametrize("layer", [nn.GRU, nn.LSTM])
def test_journeys_of_a_gru_and_an_lstm_follow_their_hand_written_steps(models, data, layer):
    from squareseq.figures.hidden import plot_journey

    model, seq = models[layer.__name__], data[0][0]
    fig = plot_journey(model, seq, label=int(data[1][0]))
    panels = _images(fig)
    assert len(panels) == 4
    x = torch.as_tensor(seq)[None]
    h = np.zeros(2)
    if layer is nn.GRU:
        for ax, s in zip(panels, unroll_gru(model.basic_rnn, x)):
            chain = [h] + [p[0].numpy() for p in (s.transformed_hidden, s.reset_hidden, s.pre_activation,
                                                  s.candidate, s.gated_candidate, s.hidden)]
            arrows = [a for a in ax.texts if a.arrow_patch is not None]
            assert len(arrows) == 6
            for arrow, start, end in zip(arrows, chain[:-1], chain[1:]):
                np.testing.assert_allclose(arrow.xyann, start, atol=1e-6)
                np.testing.assert_allclose(arrow.xy, end, atol=1e-6)
            h = chain[-1]
    else:
        c = np.zeros(2)
        for ax, s in zip(panels, unroll_lstm(model.basic_rnn, x)):
            arrows = [a for a in ax.texts if a.arrow_patch is not None]
            ends = [s.forgotten_cell, s.cell, s.squashed_cell, s.hidden]
            starts = [c, s.forgotten_cell[0].numpy(), s.cell[0].numpy(), s.squashed_cell[0].numpy()]
            assert len(arrows) == 4
            for arrow, start, end in zip(arrows, starts, ends):
                np.testing.assert_allclose(arrow.xyann, start, atol=1e-6)
                np.testing.assert_allclose(arrow.xy, end[0].numpy(), atol=1e-6)
            c = s.cell[0].numpy()
        assert "cell state" in fig.get_suptitle()
    _assert_no_overlap(fig)


@pytest.mark.parametrize("cell,extra", [("rnn", set()), ("gru", {"hidden_gates.png"}), ("lstm", set())])
def test_a_runs_figure_set_gets_the_journey_and_gates_that_fit_its_cell(tmp_path, cell, extra):
    """Every recurrent run draws its journey; a GRU's (2 features, hidden size 2) also its gates,
    and nothing in its record says a figure was skipped."""
    from squareseq import build_model, make_sequences
    from squareseq.figures.run_figures import figure_steps, skipped_figures

    torch.manual_seed(0)
    model = build_model(cell, 2, 2, 1).eval()
    data = make_sequences(16, seed=13)
    steps = figure_steps(tmp_path, model, data, data, {"losses": [1.0], "val_losses": [1.0]}, None, False, 50,
                         "direction")
    hidden = {"hidden_steps.png", "hidden_canonical.png", "hidden_journey.png", "hidden_paths.png"}
    assert {name for name, _ in steps} == {"losses.png", "corners.png", "sequences.png", "data.png"} | hidden | extra
    assert skipped_figures(model, None) == {"hidden": None, "replays": None}
