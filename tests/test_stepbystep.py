"""squareseq.StepByStep: the tutorial's trainer, its numbers, and the defects it must not have."""

import numpy as np
import pytest
import torch
from torch import nn, optim
from torch.utils.data import DataLoader, TensorDataset

from reference import tutorial_train
from squareseq import SquareModel, StepByStep, generate_sequences
from squareseq.training.checkpoint import CheckpointError

pytestmark = pytest.mark.exact  # bit-for-bit comparisons: CI runs them again on portable kernels


def _loaders(n_train=128, n_test=128, batch_size=16):
    points, directions = generate_sequences(n=n_train, seed=13)
    test_points, test_directions = generate_sequences(n=n_test, seed=19)
    train = TensorDataset(torch.as_tensor(points).float(), torch.as_tensor(directions).view(-1, 1).float())
    test = TensorDataset(torch.as_tensor(test_points).float(), torch.as_tensor(test_directions).view(-1, 1).float())
    return DataLoader(train, batch_size=batch_size, shuffle=True), DataLoader(test, batch_size=batch_size)


def _setup(seed=21, hidden_dim=2):
    torch.manual_seed(seed)
    model = SquareModel(n_features=2, hidden_dim=hidden_dim, n_outputs=1)
    return model, nn.BCEWithLogitsLoss(), optim.Adam(model.parameters(), lr=0.01)


def test_losses_bit_identical_to_tutorial_loop():
    """Every per-epoch loss equals the plain tutorial loop's, bit for bit."""
    train_loader, test_loader = _loaders()
    model, loss_fn, opt = _setup()
    ref = tutorial_train(model, loss_fn, opt, train_loader, test_loader, 8)

    model, loss_fn, opt = _setup()
    sbs = StepByStep(model, loss_fn, opt)
    sbs.set_loaders(train_loader, test_loader)
    sbs.train(8)
    assert sbs.losses == [float(v) for v in ref[0]]
    assert sbs.val_losses == [float(v) for v in ref[1]]
    assert sbs.total_epochs == 8


@pytest.mark.slow
def test_tutorial_run_gives_tutorial_counts():
    """The tutorial's full run: 100 epochs, bit-identical to the reference loop, and
    loader_apply(test_loader, correct) == [[50, 53], [75, 75]]."""
    train_loader, test_loader = _loaders()
    model, loss_fn, opt = _setup()
    ref_losses, ref_val = tutorial_train(model, loss_fn, opt, train_loader, test_loader, 100)
    model, loss_fn, opt = _setup()
    sbs = StepByStep(model, loss_fn, opt)
    sbs.set_loaders(train_loader, test_loader)
    sbs.train(100)
    assert sbs.losses == [float(v) for v in ref_losses] and sbs.val_losses == [float(v) for v in ref_val]
    assert StepByStep.loader_apply(test_loader, sbs.correct).tolist() == [[50, 53], [75, 75]]


def test_train_without_loaders_fails_clearly():
    sbs = StepByStep(*_setup())
    with pytest.raises(ValueError, match="set_loaders"):
        sbs.train(1)
    assert sbs.losses == [] and sbs.total_epochs == 0


def test_train_continues_counting_epochs():
    train_loader, test_loader = _loaders(32, 32)
    sbs = StepByStep(*_setup())
    sbs.set_loaders(train_loader)
    sbs.train(2)
    sbs.train(3)
    assert sbs.total_epochs == 5 and len(sbs.losses) == 5 and sbs.val_losses == [None] * 5


def test_correct_handles_sigmoid_models_and_several_logits():
    """correct: one logit (sigmoid), a model ending in Sigmoid (probabilities), several logits."""
    x = torch.randn(20, 4, 2)
    torch.manual_seed(1)
    logit_model = SquareModel(2, 3, 1)
    torch.manual_seed(1)
    prob_model = SquareModel(2, 3, 1, output_activation="sigmoid")
    y = torch.randint(0, 2, (20, 1)).float()
    a = StepByStep(logit_model, nn.BCEWithLogitsLoss(), optim.SGD(logit_model.parameters(), lr=0.1)).correct(x, y)
    b = StepByStep(prob_model, nn.BCELoss(), optim.SGD(prob_model.parameters(), lr=0.1)).correct(x, y)
    assert torch.equal(a, b) and a[:, 1].sum() == 20

    seq = nn.Sequential(nn.Flatten(), nn.Linear(8, 1), nn.Sigmoid())
    c = StepByStep(seq, nn.BCELoss(), optim.SGD(seq.parameters(), lr=0.1)).correct(x, y)
    expected = ((seq(x) > 0.5).long().view(-1) == y.view(-1).long())
    assert c[:, 0].sum() == expected.sum()

    multi = SquareModel(2, 3, 4)
    labels = torch.randint(0, 4, (20,))
    d = StepByStep(multi, nn.CrossEntropyLoss(), optim.SGD(multi.parameters(), lr=0.1)).correct(x, labels)
    assert d.shape == (4, 2) and d[:, 1].tolist() == torch.bincount(labels, minlength=4).tolist()


def test_predict_returns_numpy_and_restores_train_mode():
    sbs = StepByStep(*_setup())
    points, _ = generate_sequences(5, seed=3)
    out = sbs.predict(points)
    assert isinstance(out, np.ndarray) and out.shape == (5, 1) and sbs.model.training


def test_forward_hooks_work_on_rnn_layers():
    """Tutorial defect: hooks failed on RNN layers, whose outputs are tuples."""
    sbs = StepByStep(*_setup())
    sbs.attach_hooks(["basic_rnn", "classifier"])
    x = torch.randn(6, 4, 2)
    sbs.predict(x)
    sbs.predict(x)
    assert sbs.visualization["basic_rnn"].shape == (12, 4, 2)
    assert sbs.visualization["classifier"].shape == (12, 1)
    sbs.remove_hooks()
    sbs.predict(x)
    assert sbs.visualization["basic_rnn"].shape == (12, 4, 2) and sbs.handles == {}


def test_unknown_layer_name_is_a_clear_error():
    sbs = StepByStep(*_setup())
    with pytest.raises(ValueError, match="no layer named 'rnn'"):
        sbs.attach_hooks("rnn")


def test_backprop_clipping_after_value_clipping():
    """Tutorial defect: set_clip_backprop after set_clip_grad_value crashed."""
    train_loader, _ = _loaders(32, 32)
    sbs = StepByStep(*_setup())
    sbs.set_loaders(train_loader)
    sbs.set_clip_grad_value(0.01)
    sbs.set_clip_backprop(0.001)
    assert sbs.clipping is None and len(sbs._backprop_clip_handles) == 6  # one per parameter
    grads = []
    sbs.model.basic_rnn.weight_ih_l0.register_hook(lambda g: grads.append(g))
    sbs.train(1)
    sbs.set_clip_grad_norm(1.0)
    assert sbs._backprop_clip_handles == [] and callable(sbs.clipping)
    sbs.train(1)
    sbs.remove_clip()
    assert sbs.clipping is None


def test_grad_value_clipping_is_applied():
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    sbs = StepByStep(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=1.0))
    sbs.set_loaders([(torch.tensor([[10.0]]), torch.tensor([[0.0]]))])
    sbs.set_clip_grad_value(0.5)
    sbs.train(1)
    assert model.weight.item() == pytest.approx(0.5)  # the gradient 200 was clipped to 0.5


def test_lr_range_test_honours_step_mode_and_leaves_no_gradients():
    """Tutorial defects: step_mode was ignored and stale gradients were left behind."""
    train_loader, _ = _loaders(64, 16)
    sbs = StepByStep(*_setup())
    before = {k: v.clone() for k, v in sbs.model.state_dict().items()}
    tracking, fig = sbs.lr_range_test(train_loader, end_lr=1.0, num_iter=10, step_mode="linear")
    lrs = np.array(tracking["lr"])
    assert np.allclose(np.diff(lrs), np.diff(lrs)[0])  # linear steps
    assert all(p.grad is None for p in sbs.model.parameters())
    assert all(torch.equal(before[k], v) for k, v in sbs.model.state_dict().items())
    assert sbs.optimizer.param_groups[0]["lr"] == 0.01
    tracking, _ = sbs.lr_range_test(train_loader, end_lr=1.0, num_iter=10, step_mode="exp")
    ratios = np.array(tracking["lr"][1:]) / np.array(tracking["lr"][:-1])
    assert np.allclose(ratios, ratios[0])  # geometric steps
    assert fig.axes[0].get_xscale() == "linear"


def test_lr_range_test_names_what_a_flat_adam_cannot_do():
    """torch's schedulers refuse a FlatAdam (run_experiment's optimizer): the range test says so and
    what to use instead, leaving the model as it was."""
    from squareseq.errors import SquareseqError
    from squareseq.training.optim import FlatAdam

    train_loader, _ = _loaders(64, 16)
    model, loss_fn, _ = _setup()
    sbs = StepByStep(model, loss_fn, FlatAdam(model.parameters(), lr=0.01))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(SquareseqError, match="torch.optim.Adam"):
        sbs.lr_range_test(train_loader, end_lr=1.0, num_iter=10)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_schedulers_step_per_epoch_and_per_batch():
    train_loader, _ = _loaders(32, 32)
    sbs = StepByStep(*_setup())
    sbs.set_loaders(train_loader)
    sbs.set_lr_scheduler(optim.lr_scheduler.StepLR(sbs.optimizer, step_size=1, gamma=0.5))
    sbs.train(2)
    assert sbs.learning_rates == [[0.005], [0.0025]]

    sbs = StepByStep(*_setup())
    sbs.set_loaders(train_loader)
    sbs.set_lr_scheduler(optim.lr_scheduler.CyclicLR(sbs.optimizer, 0.001, 0.01, step_size_up=2))
    assert sbs.is_batch_lr_scheduler
    sbs.train(1)
    assert len(sbs.learning_rates) == len(train_loader)


def test_checkpoint_round_trip_and_tutorial_style_checkpoint(tmp_path):
    """save/load restores weights, optimizer and history; the tutorial's own checkpoint dicts
    load too, safely."""
    train_loader, test_loader = _loaders(32, 32)
    sbs = StepByStep(*_setup())
    sbs.set_loaders(train_loader, test_loader)
    sbs.train(2)
    sbs.save_checkpoint(tmp_path / "ck.pt")
    other = StepByStep(*_setup(seed=5))
    other.load_checkpoint(tmp_path / "ck.pt")
    assert other.total_epochs == 2 and other.losses == sbs.losses and other.val_losses == sbs.val_losses
    for a, b in zip(sbs.model.parameters(), other.model.parameters()):
        assert torch.equal(a, b)

    legacy = {"epoch": 2, "model_state_dict": sbs.model.state_dict(),
              "optimizer_state_dict": sbs.optimizer.state_dict(), "loss": sbs.losses, "val_loss": sbs.val_losses}
    torch.save(legacy, tmp_path / "legacy.pt")
    third = StepByStep(*_setup(seed=6))
    third.load_checkpoint(tmp_path / "legacy.pt")
    assert third.losses == sbs.losses


class _Payload:
    """Unpickling this creates a marker file: the code a malicious checkpoint would run."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_malicious_checkpoint_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"model_state_dict": {}, "evil": _Payload(str(marker))}, tmp_path / "evil.pt")
    sbs = StepByStep(*_setup())
    with pytest.raises(CheckpointError, match="refusing to load"):
        sbs.load_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()


def test_checkpoint_for_another_model_names_the_mismatch(tmp_path):
    big = StepByStep(*_setup(hidden_dim=3))
    big.save_checkpoint(tmp_path / "big.pt")
    small = StepByStep(*_setup(hidden_dim=2))
    with pytest.raises(CheckpointError, match="does not fit this model"):
        small.load_checkpoint(tmp_path / "big.pt")


def test_count_parameters():
    sbs = StepByStep(*_setup())
    assert sbs.count_parameters() == 2 * 2 + 2 * 2 + 2 + 2 + 2 + 1


def test_capture_gradients_and_parameters():
    train_loader, _ = _loaders(32, 32)
    sbs = StepByStep(*_setup())
    sbs.set_loaders(train_loader)
    sbs.capture_gradients("classifier")
    sbs.capture_parameters("classifier")
    sbs.train(1)
    assert len(sbs._gradients["classifier"]["weight"]) == len(train_loader)
    assert len(sbs._parameters["classifier"]["bias"]) == len(train_loader)
    sbs.remove_hooks()
