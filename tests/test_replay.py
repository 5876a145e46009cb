"""Tests for squareseq.figures.replay: recording snapshots, the snapshot file, frames as arrays, and
GIFs with one frame per recorded epoch."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.animation import FuncAnimation  # noqa: E402
from PIL import Image  # noqa: E402
from torch import nn  # noqa: E402

from figure_helpers import tiny_run  # noqa: E402
from squareseq import SquareModel  # noqa: E402
from squareseq.figures.replay import (  # noqa: E402
    SnapshotRecorder,
    Snapshots,
    animate,
    compute_frames,
    draw_frame,
    render_frames,
    save_gif,
    write_gif,
)
from squareseq.models.hidden import hidden_states  # noqa: E402
from squareseq.training.loop import FitState, History  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def run():
    return tiny_run(n_epochs=4, n_test=24)


def test_recorder_records_the_start_and_every_epoch(run):
    """Epoch 0 (the untrained model) and each of the 4 epochs; hidden states of the fixed sample."""
    snaps = run["snapshots"]
    assert snaps.epochs == [0, 1, 2, 3, 4] and len(snaps) == 5
    assert snaps.hidden[0].shape == (24, 4, 2)
    assert set(snaps.params[0]) == set(run["model"].state_dict())
    torch.testing.assert_close(snaps.hidden[-1], hidden_states(run["model"], run["x"]))
    torch.testing.assert_close(snaps.params[-1]["classifier.weight"], run["model"].classifier.weight.detach())


def test_recorded_parameters_are_copies():
    """Training on after a snapshot does not change the recorded tensors."""
    torch.manual_seed(0)
    model = SquareModel(2, 2, 1)
    rec = SnapshotRecorder(torch.zeros(3, 4, 2), torch.tensor([0, 1, 0]))
    rec.record(model, 0)
    before = rec.snapshots.params[0]["classifier.bias"].clone()
    with torch.no_grad():
        model.classifier.bias.add_(1.0)
    torch.testing.assert_close(rec.snapshots.params[0]["classifier.bias"], before)


def test_recorder_every_n_epochs_keeps_the_last():
    """With every=3 over 7 epochs: 0, 3, 6 and the final 7."""
    torch.manual_seed(0)
    model = SquareModel(2, 2, 1)
    rec = SnapshotRecorder(torch.zeros(2, 4, 2), torch.tensor([0, 1]), every=3)
    state = FitState(model, torch.optim.SGD(model.parameters(), lr=0.1), History())
    rec.on_fit_start(state)
    for epoch in range(1, 8):
        state.epoch = epoch
        rec.on_epoch_end(state, {"loss": 1.0})
    rec.on_fit_end(state)
    assert rec.snapshots.epochs == [0, 3, 6, 7]


def test_recorder_does_not_change_training():
    """Training with the recorder gives the same losses as without (it draws no random numbers
    and leaves the model's mode alone)."""
    with_rec = tiny_run(n_epochs=3, n_train=32, n_test=16)
    without = tiny_run(n_epochs=3, n_train=32, n_test=16, recorder=False)
    assert with_rec["history"].losses == without["history"].losses
    assert with_rec["history"].val_losses == without["history"].val_losses


def test_recorder_refuses_bad_samples():
    """x must be (N, L, F) with one label per sequence; every must be positive."""
    with pytest.raises(ValueError, match="one label per sequence"):
        SnapshotRecorder(torch.zeros(3, 4, 2), torch.zeros(2))
    with pytest.raises(ValueError, match="every"):
        SnapshotRecorder(torch.zeros(3, 4, 2), torch.zeros(3), every=0)


def test_snapshots_file_round_trip(run, tmp_path):
    """save() writes plain tensors and lists that load with weights_only=True; load() restores them."""
    path = run["snapshots"].save(tmp_path / "snapshots.pt")
    raw = torch.load(path, weights_only=True)
    assert raw["epochs"] == [0, 1, 2, 3, 4] and raw["hidden"].shape == (5, 24, 4, 2)
    back = Snapshots.load(path)
    assert back.epochs == run["snapshots"].epochs
    torch.testing.assert_close(back.params[2]["basic_rnn.weight_hh_l0"], run["snapshots"].params[2]["basic_rnn.weight_hh_l0"])
    torch.testing.assert_close(torch.stack(back.hidden), torch.stack(run["snapshots"].hidden))
    torch.testing.assert_close(back.y, run["snapshots"].y)


def test_snapshots_load_refuses_other_files(tmp_path):
    """A missing file or a file of another kind is a ValueError."""
    with pytest.raises(ValueError, match="not found"):
        Snapshots.load(tmp_path / "nope.pt")
    torch.save({"model_state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="snapshots"):
        Snapshots.load(tmp_path / "other.pt")
    with pytest.raises(ValueError, match="no snapshots"):
        Snapshots(torch.zeros(1, 4, 2), torch.zeros(1)).to_dict()


def test_frames_come_from_the_recorded_parameters(run):
    """Each frame's probability map is sigmoid(classifier(h)) with that epoch's classifier, and
    its states are the recorded hidden states."""
    snaps = run["snapshots"]
    frames = compute_frames(snaps, run["history"], n_grid=21)
    assert frames.probs.shape == (5, 21, 21) and frames.states.shape == (5, 24, 4, 2)
    assert frames.lines.shape == (5, 2, 2)
    for e in (0, 4):
        clf = nn.Linear(2, 1)
        clf.load_state_dict({"weight": snaps.params[e]["classifier.weight"], "bias": snaps.params[e]["classifier.bias"]})
        for i, j in [(0, 0), (10, 3), (20, 20)]:
            h = torch.tensor([[frames.xs[j], frames.ys[i]]], dtype=torch.float32)
            assert frames.probs[e, i, j] == pytest.approx(torch.sigmoid(clf(h)).item(), abs=1e-6)
        np.testing.assert_allclose(frames.states[e], snaps.hidden[e].numpy(), atol=1e-6)
    np.testing.assert_allclose(frames.losses, run["history"].losses)


def test_frames_of_larger_hidden_states_use_one_fixed_projection():
    """For H = 4 every frame is projected with the same PCA (fitted on the last epoch)."""
    run4 = tiny_run(n_epochs=2, hidden_dim=4, n_train=16, n_test=12)
    frames = compute_frames(run4["snapshots"], n_grid=11)
    assert frames.states.shape == (3, 12, 4, 2) and "PCA" in frames.projection.describe()
    expected = frames.projection.transform(run4["snapshots"].hidden[0].numpy())
    np.testing.assert_allclose(frames.states[0], expected)


@pytest.mark.parametrize("kind", ["hidden", "boundary"])
def test_gif_has_one_frame_per_recorded_epoch(run, tmp_path, kind):
    """The GIF written from 5 snapshots has 5 frames, and loops."""
    path = write_gif(run["snapshots"], run["history"], tmp_path / f"{kind}.gif", kind=kind, dpi=30)
    with Image.open(path) as im:
        assert im.format == "GIF" and im.n_frames == len(run["snapshots"])
        assert im.info.get("loop") == 0


def test_rendered_frames_differ_over_epochs(run):
    """Frames are arrays of one size, and training changes what they show."""
    frames = render_frames(compute_frames(run["snapshots"], run["history"], n_grid=11), "boundary", dpi=30)
    assert len(frames) == 5 and len({f.shape for f in frames}) == 1 and frames[0].dtype == np.uint8
    assert not np.array_equal(frames[0], frames[-1])


def test_animate_returns_a_funcanimation_with_one_frame_per_epoch(run, tmp_path):
    """animate() gives a matplotlib animation for notebooks; save_gif saves it with Pillow."""
    anim = animate(run["snapshots"], run["history"], kind="boundary", n_grid=11)
    assert isinstance(anim, FuncAnimation)
    path = save_gif(anim, tmp_path / "anim.gif", fps=5, dpi=30)
    with Image.open(path) as im:
        assert im.n_frames == len(run["snapshots"])


def test_draw_frame_shows_the_epoch(run):
    """A single frame as a static figure: hidden panels plus the loss curve up to that epoch."""
    frames = compute_frames(run["snapshots"], run["history"], n_grid=11)
    fig = draw_frame(frames, 2, kind="hidden")
    assert fig.axes[-1].get_title() == "epoch 2"
    loss_ax = fig.axes[-1]
    np.testing.assert_allclose(loss_ax.lines[0].get_ydata(), run["history"].losses[:2])
    with pytest.raises(ValueError, match="kind"):
        draw_frame(frames, 0, kind="sideways")
    with pytest.raises(ValueError, match="out of range"):
        draw_frame(frames, 9)


def test_boundary_replay_text_is_legible(run):
    """The boundary replay's text is at least 13 px high (10 px digits), at a modest size."""
    from squareseq.figures.replay import GIF_DPI, _setup

    frames = compute_frames(run["snapshots"], run["history"], n_grid=11)
    dpi = GIF_DPI["boundary"]
    fig, update = _setup(frames, "boundary", dpi)
    update(0)
    ax = fig.axes[0]
    texts = [ax.title, *ax.texts, *ax.get_xticklabels(), *ax.get_yticklabels(), ax.xaxis.label]
    assert min(t.get_fontsize() for t in texts) * dpi / 72 >= 13
    (image, *_) = render_frames(frames, "boundary")
    assert image.shape[0] <= 400 and image.shape[1] <= 450


def test_save_gif_from_arrays(tmp_path):
    """save_gif also takes a list of RGB arrays; an empty list is a ValueError."""
    frames = [np.full((8, 8, 3), v, dtype=np.uint8) for v in (0, 120, 255)]
    with Image.open(save_gif(frames, tmp_path / "a.gif")) as im:
        assert im.n_frames == 3
    with pytest.raises(ValueError, match="no frames"):
        save_gif([], tmp_path / "b.gif")


def test_frames_of_a_two_logit_model_use_the_softmax():
    """With two outputs (cross-entropy), the map is softmax's class-1 probability and the line
    is where both logits are equal."""
    torch.manual_seed(0)
    model = SquareModel(2, 2, 2)
    rec = SnapshotRecorder(torch.randn(6, 4, 2), torch.tensor([0, 1, 0, 1, 0, 1]))
    rec.record(model, 0)
    frames = compute_frames(rec.snapshots, n_grid=9)
    h = torch.tensor([[frames.xs[2], frames.ys[5]]], dtype=torch.float32)
    with torch.no_grad():
        expected = torch.softmax(model.classifier(h), dim=-1)[0, 1].item()
    assert frames.probs[0, 5, 2] == pytest.approx(expected, abs=1e-6)
    line = frames.lines[0]
    assert np.isfinite(line).all()  # this seed's boundary crosses the view
    with torch.no_grad():
        logits = model.classifier(torch.as_tensor(line, dtype=torch.float32))
    torch.testing.assert_close(logits[:, 0], logits[:, 1], atol=1e-5, rtol=0)
