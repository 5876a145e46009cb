"""StepByStep's fast path (FastLoader, FlatAdam, one thread) gives the tutorial loop's numbers bit for bit."""

import numpy as np
import pytest
import torch
from torch import nn, optim
from torch.utils.data import DataLoader, TensorDataset

from reference import tutorial_train
from squareseq import SquareModel, StepByStep, generate_sequences
from squareseq.training.loop import Callback

pytestmark = pytest.mark.exact  # bit-for-bit comparisons: CI runs them again on portable kernels


def _plain_loop(model, loss_fn, optimizer, train_loader, val_loader, n_epochs, seed=42):
    """The tutorial's StepByStep loop written out (tests/reference.py), losses as Python floats."""
    losses, val_losses = tutorial_train(model, loss_fn, optimizer, train_loader, val_loader, n_epochs, seed)
    return [float(v) for v in losses], [float(v) for v in val_losses]


def _tensors(n, seed):
    points, directions = generate_sequences(n=n, seed=seed)
    return torch.as_tensor(np.stack(points)).float(), torch.as_tensor(directions).view(-1, 1).float()


def _setup(n_train=128, n_val=128, hidden_dim=2, lr=0.01):
    """The tutorial's objects: loaders over the train (seed 13) and test (seed 19) sets, model seed 21."""
    x, y = _tensors(n_train, 13)
    xt, yt = _tensors(n_val, 19)
    train_loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
    val_loader = DataLoader(TensorDataset(xt, yt), batch_size=16)
    torch.manual_seed(21)
    model = SquareModel(2, hidden_dim, 1)
    return model, nn.BCEWithLogitsLoss(), optim.Adam(model.parameters(), lr=lr), train_loader, val_loader


def _trained(n_epochs, **kwargs):
    model, loss_fn, optimizer, train_loader, val_loader = _setup()
    sbs = StepByStep(model, loss_fn, optimizer, **kwargs)
    sbs.set_loaders(train_loader, val_loader)
    sbs.train(n_epochs)
    return sbs


def _assert_same_optimizer_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    assert sa["state"].keys() == sb["state"].keys()
    for i in sa["state"]:
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(sa["state"][i][key], sb["state"][i][key])


def test_fast_train_matches_plain_loop_bit_for_bit():
    """Losses, weights, optimizer state and the global RNG after 5 epochs equal the plain loop's."""
    model, loss_fn, optimizer, train_loader, val_loader = _setup()
    losses, val_losses = _plain_loop(model, loss_fn, optimizer, train_loader, val_loader, 5)
    rng = torch.get_rng_state()
    sbs = _trained(5)
    assert sbs.losses == losses and sbs.val_losses == val_losses
    assert torch.equal(torch.get_rng_state(), rng)
    for p, q in zip(model.parameters(), sbs.model.parameters()):
        assert torch.equal(p, q) and q.grad is None
    _assert_same_optimizer_state(optimizer, sbs.optimizer)


def test_fast_and_plain_objects_agree_and_training_continues():
    """fast=True and fast=False agree, and a second train() call (torch's Adam continuing the
    synced state, or the fast path again) stays identical."""
    fast, plain = _trained(3), _trained(3, fast=False)
    assert fast.losses == plain.losses
    fast.fast = False
    plain.fast = True
    fast.train(2, seed=7)
    plain.train(2, seed=7)
    assert fast.losses == plain.losses and fast.val_losses == plain.val_losses
    for p, q in zip(fast.model.parameters(), plain.model.parameters()):
        assert torch.equal(p, q)
    _assert_same_optimizer_state(fast.optimizer, plain.optimizer)


def test_callbacks_see_a_current_optimizer_state():
    """A callback reading the optimizer at an epoch's end sees the steps taken so far."""
    seen = []

    class Recorder(Callback):
        def on_epoch_end(self, loop, logs):
            seen.append(int(loop.optimizer.state_dict()["state"][0]["step"]))

    model, loss_fn, optimizer, train_loader, val_loader = _setup()
    sbs = StepByStep(model, loss_fn, optimizer)
    sbs.set_loaders(train_loader, val_loader)
    sbs.add_callback(Recorder())
    sbs.train(2)
    assert seen == [8, 16]


def test_scheduler_and_clipping_keep_working():
    """A per-epoch scheduler and gradient clipping give the same numbers on both paths."""
    results = []
    for fast in (True, False):
        model, loss_fn, optimizer, train_loader, val_loader = _setup()
        sbs = StepByStep(model, loss_fn, optimizer, fast=fast)
        sbs.set_loaders(train_loader, val_loader)
        sbs.set_lr_scheduler(optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5))
        sbs.set_clip_grad_norm(0.5)
        sbs.train(3)
        results.append((sbs.losses, sbs.learning_rates))
    assert results[0] == results[1]


def test_other_loaders_and_custom_steps_are_kept():
    """A loader that is not a plain DataLoader, or a user's own train_step, runs as given."""
    model, loss_fn, optimizer, train_loader, val_loader = _setup()
    sbs = StepByStep(model, loss_fn, optimizer)
    batches = [(x, y) for x, y in train_loader]
    sbs.set_loaders(batches)
    calls = []
    original = sbs.train_step

    def my_step(x, y):
        calls.append(len(x))
        return original(x, y)

    sbs.train_step = my_step
    sbs.train(1)
    assert calls == [16] * 8


def test_threads_restored_after_train():
    """train() runs tiny models on one thread and restores the previous count afterwards."""
    previous = torch.get_num_threads()
    seen = []

    class Recorder(Callback):
        def on_epoch_end(self, loop, logs):
            seen.append(torch.get_num_threads())

    torch.set_num_threads(2)
    try:
        model, loss_fn, optimizer, train_loader, val_loader = _setup()
        sbs = StepByStep(model, loss_fn, optimizer)
        sbs.set_loaders(train_loader, val_loader)
        sbs.add_callback(Recorder())
        sbs.train(1)
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)


@pytest.mark.slow
def test_tutorial_run_100_epochs_bit_for_bit():
    """The tutorial's 100 epochs: fast path equals the plain loop and counts [[50, 53], [75, 75]]."""
    model, loss_fn, optimizer, train_loader, val_loader = _setup()
    losses, val_losses = _plain_loop(model, loss_fn, optimizer, train_loader, val_loader, 100)
    sbs = _trained(100)
    assert sbs.losses == losses and sbs.val_losses == val_losses
    counts = StepByStep.loader_apply(val_loader, sbs.correct)
    assert counts.tolist() == [[50, 53], [75, 75]]


def test_hooks_fall_back_to_autograd_and_still_fire():
    """With a forward hook attached the trainer keeps autograd: the hook sees every batch and
    the numbers stay those of the plain loop."""
    model, loss_fn, optimizer, train_loader, val_loader = _setup()
    losses, _ = _plain_loop(model, loss_fn, optimizer, train_loader, val_loader, 2)
    model, loss_fn, optimizer, train_loader, val_loader = _setup()
    sbs = StepByStep(model, loss_fn, optimizer)
    sbs.set_loaders(train_loader, val_loader)
    sbs.attach_hooks(["basic_rnn"])
    sbs.train(2)
    assert sbs.losses == losses
    assert sbs.visualization["basic_rnn"] is not None


def test_hidden_state_after_training_is_the_last_batch():
    """model.hidden after train() holds the last validation batch's final hidden state."""
    sbs = _trained(2)
    plain = _trained(2, fast=False)
    assert sbs.model.hidden.shape == plain.model.hidden.shape
    assert torch.equal(sbs.model.hidden, plain.model.hidden.detach())


def test_flat_adam_as_the_optimizer():
    """StepByStep takes a FlatAdam directly (no torch.optim optimizer built) with the same numbers."""
    from squareseq.training.optim import FlatAdam

    model, loss_fn, optimizer, train_loader, val_loader = _setup()
    losses, val_losses = _plain_loop(model, loss_fn, optimizer, train_loader, val_loader, 3)
    model, loss_fn, _, train_loader, val_loader = _setup()
    sbs = StepByStep(model, loss_fn, FlatAdam(model.parameters(), lr=0.01))
    sbs.set_loaders(train_loader, val_loader)
    sbs.train(3)
    assert sbs.losses == losses and sbs.val_losses == val_losses
    _assert_same_optimizer_state(optimizer, sbs.optimizer)
