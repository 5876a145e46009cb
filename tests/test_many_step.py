"""train_many's hand-written batched RNN step: the same losses and gradients as autograd over the
same stacked models (to rounding), and train_many runs wholly under its thread count."""
import pytest
import torch

from squareseq.config import RunConfig
from squareseq.data.squares import make_tensors
from squareseq.training import many, many_step
from squareseq.training.optim import FlatAdam


def _grads_after_one_step(step_kind, seeds, hidden_dim, n):
    """Losses and flat gradient of one step (captured just before Adam's update)."""
    stack = many._Stack(many.initial_parameters(seeds, hidden_dim, "rnn"), "rnn")
    optimizer = FlatAdam(stack.leaves(), lr=0.01)
    captured = []
    real_step = optimizer.step
    optimizer.step = lambda: captured.append(optimizer.flat_grad.clone()) or real_step()
    if step_kind == "manual":
        step = many_step.make_step(stack, optimizer)
        assert step.__qualname__.startswith("_manual_rnn_step")
    else:
        def step(x, y):
            losses = stack.losses(x, y)
            losses.sum().backward()
            optimizer.step()
            optimizer.zero_grad()
            return losses.detach()
    x, y, _ = make_tensors(n, seed=13)
    losses = step(x, y)
    return losses, captured[0]


@pytest.mark.parametrize("hidden_dim,n", [(2, 16), (2, 7), (3, 16), (8, 5)])
def test_manual_step_equals_autograd(hidden_dim, n):
    seeds = list(range(12))
    losses, grads = _grads_after_one_step("manual", seeds, hidden_dim, n)
    ref_losses, ref_grads = _grads_after_one_step("autograd", seeds, hidden_dim, n)
    torch.testing.assert_close(losses, ref_losses, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(grads, ref_grads, rtol=1e-5, atol=1e-7)
    assert grads.abs().sum() > 0


def test_other_layouts_and_cells_use_autograd():
    stack = many._Stack(many.initial_parameters([0, 1], 16, "rnn"), "rnn")  # 16 * 16 > 64: batched bmm
    assert not many_step.make_step(stack, FlatAdam(stack.leaves())).__qualname__.startswith("_manual")
    stack = many._Stack(many.initial_parameters([0, 1], 2, "gru"), "gru")
    assert not many_step.make_step(stack, FlatAdam(stack.leaves())).__qualname__.startswith("_manual")


def test_train_many_runs_under_one_thread(monkeypatch):
    """threads="auto": one intra-op thread for all of train_many's work (data, initial weights,
    training), and torch's count afterwards as before."""
    seen = []
    real = many.initial_parameters
    monkeypatch.setattr(many, "initial_parameters", lambda *a, **k: seen.append(torch.get_num_threads()) or real(*a, **k))
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        many.train_many([0, 1], RunConfig(epochs=1))
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
