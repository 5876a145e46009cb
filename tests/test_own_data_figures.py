"""Figures that fit the data: runs on a user's data (and runs with more than two classes) get
hidden-space figures coloured by class with the class names, a predicted-class map, a journey of
a real test sequence, replays without "clockwise", and a report line for every figure skipped."""
from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from squareseq.figures import class_hidden as ch  # noqa: E402
from squareseq.figures.classes import class_colors, class_probabilities, map_rgb, shown_steps  # noqa: E402
from squareseq.figures.replay import SnapshotRecorder, Snapshots, compute_frames, draw_frame  # noqa: E402
from squareseq.figures.run_figures import skipped_figures, write_figures  # noqa: E402
from squareseq.models.networks import SquareConv1d, SquareModel, build_model  # noqa: E402
from squareseq.runs.page import write_report  # noqa: E402

NAMES = ["walking", "running", "sitting"]
HIDDEN_CLASS_PNGS = {"hidden_final.png", "hidden_steps.png", "hidden_journey.png", "hidden_paths.png"}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _own_data(n=18, seq_len=9, n_features=5, seed=0):
    """Variable-length sequences of 3 classes, zero-padded, with their lengths."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, seq_len, n_features)).astype(np.float32)
    y = np.arange(n) % 3
    lengths = np.full(n, seq_len)
    lengths[1::3] = rng.integers(3, seq_len, len(lengths[1::3]))
    for i in range(n):
        x[i, lengths[i]:] = 0
    return torch.as_tensor(x), torch.as_tensor(y), torch.as_tensor(lengths)


def _model(n_outputs=3, cell="gru", hidden_dim=4, n_features=5, **kwargs):
    torch.manual_seed(0)
    return build_model(cell, n_features, hidden_dim, n_outputs, **kwargs).eval()


def _texts(fig):
    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


HISTORY = {"losses": [1.0, 0.8], "val_losses": [1.1, 0.9]}


def test_own_data_run_draws_class_figures_and_no_square_ones(tmp_path):
    """A file run's figures: the loss curve and the four class figures; no corners, sequences,
    data or canonical figures, even when given square training data."""
    x, y, lengths = _own_data()
    written = write_figures(tmp_path, _model(), ([np.zeros((4, 2))], [0]), (x, y, lengths), HISTORY, dpi=30,
                            class_names=NAMES, data_file="some/dir/gestures.npz")
    assert {p.name for p in written} == {"losses.png"} | HIDDEN_CLASS_PNGS


def test_class_figures_name_the_classes_and_never_say_clockwise():
    """Every class figure names the classes (legend, panel titles), none says clockwise, and the
    journey is titled with its true and predicted class."""
    x, y, lengths = _own_data()
    model = _model()
    view = ch.class_view(model, x, y, lengths, NAMES)
    figures = {"final": ch.plot_class_final(view), "steps": ch.plot_class_steps(view),
               "paths": ch.plot_class_paths(view), "journey": ch.plot_class_journey(view, model, index=1)}
    for name, fig in figures.items():
        texts = _texts(fig)
        assert not any("clockwise" in t.lower() for t in texts), name
        assert any("walking" in t for t in texts) and any("sitting" in t for t in texts) or name == "journey", name
    title = figures["journey"]._suptitle.get_text()
    predicted = NAMES[int(view.predicted[1])]
    assert "true class 'running'" in title and f"predicted '{predicted}'" in title


def test_class_view_reads_each_sequence_at_its_own_last_step():
    """The classes the figures call predicted are the model's predictions, for variable-length
    sequences too (the final state is taken at each sequence's last real step, not its padding)."""
    x, y, lengths = _own_data()
    model = _model()
    view = ch.class_view(model, x, y, lengths, NAMES)
    with torch.no_grad():
        expected = torch.softmax(model(x, lengths), dim=1).numpy()
    np.testing.assert_allclose(view.probs, expected, atol=1e-5)
    assert np.isnan(view.states[1, lengths[1]:]).all() and np.isfinite(view.states[1, :lengths[1]]).all()


@pytest.mark.parametrize("kwargs", [dict(n_outputs=1), dict(n_outputs=2, reference_logit=True)],
                         ids=["one-logit", "reference-logit"])
def test_two_class_probabilities_match_the_model(kwargs):
    """One sigmoid logit and a pinned reference logit both give [1 - p, p], as the model does."""
    model = _model(**kwargs)
    h = torch.randn(7, 4)
    probs = class_probabilities(model, h)
    with torch.no_grad():
        logits = model.classifier(h)
    p = torch.sigmoid(logits[:, -1]).double().numpy()
    np.testing.assert_allclose(probs, np.stack([1 - p, p], axis=1), atol=1e-6)


def test_map_shows_the_predicted_class_shaded_by_confidence():
    """A confident point takes its class's colour; a point at chance is nearly white."""
    colors = class_colors(3)
    probs = np.array([[0.0, 1.0, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    rgb = map_rgb(probs, colors)
    nearest = np.argmin(((colors - rgb[0]) ** 2).sum(axis=1))
    assert nearest == 1
    assert rgb[1].min() > 0.8 and np.linalg.norm(rgb[0] - colors[1]) < np.linalg.norm(rgb[1] - colors[1])
    assert len({tuple(c) for c in class_colors(9)}) == 9


def test_skip_reasons_name_the_file_and_why():
    """Own data: square-only figures say so, naming the file (not its folder); a convolution has
    no hidden states; the tutorial's RNN has nothing to skip."""
    skipped = skipped_figures(_model(), None, data_file="some/dir/gestures.npz", class_names=NAMES)
    for name in ("corners.png", "sequences.png", "data.png", "hidden_canonical.png"):
        assert skipped[name] == "square-only: this run trained on gestures.npz"
    assert not HIDDEN_CLASS_PNGS & set(skipped)
    conv = skipped_figures(SquareConv1d(), "replays reason")
    assert conv["hidden"] == "the model is a convolution: no hidden states"
    assert conv["hidden_steps.png"] == conv["hidden_paths.png"] == "the model is a convolution: no hidden states"
    assert conv["training.gif"] == "replays reason"
    torch.manual_seed(0)
    assert skipped_figures(SquareModel(2, 2, 1), None) == {"hidden": None, "replays": None}
    gru = skipped_figures(_model(n_outputs=1, n_features=2), None)
    assert "hidden_journey.png" not in gru  # a GRU's journey goes through its gates
    assert "hidden size 2 only" in gru["hidden_gates.png"]


def test_report_has_a_line_for_every_skipped_figure(tmp_path):
    """The page lists each figure not drawn, with its heading, file name and reason."""
    skipped = skipped_figures(_model(), None, data_file="gestures.npz", class_names=NAMES)
    metrics = {"test": {"correct_per_class": [[1, 2], [2, 2], [1, 1]]}, "losses": [0.5], "class_names": NAMES,
               "config": {"data": "gestures.npz"}, "skipped_figures": skipped}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    page = write_report(tmp_path).read_text()
    for name in ("corners.png", "sequences.png", "data.png", "hidden_canonical.png"):
        assert f"({name})</span>: square-only: this run trained on gestures.npz</li>" in page
    assert "<td>walking (y=0)</td>" in page


@pytest.mark.slow
def test_eight_class_squares_keep_square_figures_and_get_class_ones(tmp_path):
    """The multi-class square task keeps its square figures and gets the class figures (its
    own class names), not the two-class canonical figure."""
    from squareseq.data.squares import make_sequences

    train = make_sequences(16, seed=1, task="corner-direction")
    test = make_sequences(16, seed=2, task="corner-direction")
    model = _model(n_outputs=8, n_features=2)
    written = {p.name for p in write_figures(tmp_path, model, train, test, HISTORY, dpi=30, task="corner-direction")}
    assert written == {"losses.png", "corners.png", "sequences.png", "data.png"} | HIDDEN_CLASS_PNGS


def test_replays_of_own_data_are_coloured_by_class_and_keep_a_few_steps():
    """A recorder on long sequences keeps a few evenly spaced steps (saved and loaded with the
    snapshots); the replay's frames map the predicted class and name the classes."""
    x, y, _ = _own_data(seq_len=15)
    model = _model()
    recorder = SnapshotRecorder(x, y)
    for epoch in range(3):
        recorder.record(model, epoch)
    snaps = Snapshots.from_dict(recorder.snapshots.to_dict())
    assert snaps.steps == list(shown_steps(15)) and snaps.hidden[0].shape == (18, len(snaps.steps), 4)
    frames = compute_frames(snaps, HISTORY, n_grid=11, class_names=NAMES)
    assert frames.probs.shape == (3, 11, 11, 3)
    for kind in ("hidden", "boundary"):
        texts = _texts(draw_frame(frames, -1, kind))
        assert not any("clockwise" in t.lower() for t in texts) and "walking" in texts, kind
    assert "after step 15" in _texts(draw_frame(frames, 0, "hidden"))


@pytest.mark.slow
def test_train_and_plot_an_own_data_run_draw_the_class_figures(tmp_path, monkeypatch):
    """squareseq train on a data file writes the class figures, records why the square ones are
    skipped, and squareseq plot redraws the same files naming the classes metrics.json names."""
    from squareseq.config import RunConfig, RunOptions
    from squareseq.figures import run_figures
    from squareseq.runs.experiment import run_experiment
    from squareseq.runs.rebuild import redraw_run

    x, y, lengths = _own_data(n=30)
    np.savez(tmp_path / "gestures.npz", X=x.numpy(), y=y.numpy(), lengths=lengths.numpy())
    config = RunConfig(data=str(tmp_path / "gestures.npz"), model="gru", hidden_dim=4, epochs=2)
    run_experiment(config, RunOptions(run_dir=tmp_path / "r", animation=False))
    drawn = {p.name for p in (tmp_path / "r").glob("*.png")}
    assert drawn == {"losses.png"} | HIDDEN_CLASS_PNGS
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["skipped_figures"]["corners.png"] == "square-only: this run trained on gestures.npz"
    assert "square-only: this run trained on gestures.npz" in (tmp_path / "r" / "report.html").read_text()
    metrics["class_names"] = NAMES
    (tmp_path / "r" / "metrics.json").write_text(json.dumps(metrics))
    seen = []
    original = run_figures._class_drawers
    monkeypatch.setattr(run_figures, "_class_drawers",
                        lambda model, data, names: seen.append(list(names)) or original(model, data, names))
    written = {p.name for p in redraw_run(tmp_path / "r", dpi=30)}
    assert written == drawn | {"report.html"} and seen == [NAMES]


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_a_bidirectional_model_gets_its_final_states_only(cell, tmp_path):
    """A bidirectional model's classifier reads both directions' final states: the final-state
    figure draws exactly those (its predictions are the model's); the step figures, which would
    show one direction, are skipped with the reason."""
    x, y, lengths = _own_data()
    model = _model(cell=cell, bidirectional=True, num_layers=2)
    view = ch.class_view(model, x, y, lengths, NAMES)
    with torch.no_grad():
        expected = torch.softmax(model(x, lengths), dim=1).numpy()
    np.testing.assert_allclose(view.probs, expected, atol=1e-5)
    written = write_figures(tmp_path, model, None, (x, y, lengths), HISTORY, dpi=30, class_names=NAMES,
                            data_file="gestures.npz")
    assert {p.name for p in written} == {"losses.png", "hidden_final.png"}
    skipped = skipped_figures(model, None, data_file="gestures.npz", class_names=NAMES)
    assert "hidden_final.png" not in skipped and skipped["hidden_steps.png"].startswith("not drawn for a bidirectional")
