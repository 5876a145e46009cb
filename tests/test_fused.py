"""The fused SquareModel step: loss, logits and gradients bit-identical to autograd's."""
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from squareseq import SquareModel, fused

pytestmark = pytest.mark.exact  # bit-for-bit comparisons: CI runs them again on portable kernels


def _autograd(model, x, y):
    model.zero_grad(set_to_none=True)
    loss = F.binary_cross_entropy_with_logits(model(x), y)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters()]


def _bit_identical(model, x, y) -> bool:
    """Whether the fused loss, logits and gradients equal autograd's, computed independently of
    ``fused.verify``."""
    loss_ref, grads_ref = _autograd(model, x, y)
    loss, grads = fused.loss_and_grads(model, x, y)
    with torch.no_grad():
        same_logits = torch.equal(fused.forward(model, x)[0], model(x))
    return (same_logits and torch.equal(loss, loss_ref)
            and all(a.shape == b.shape and torch.equal(a, b) for a, b in zip(grads, grads_ref)))


@pytest.mark.parametrize("hidden_dim", [1, 2, 5, 7, 32])
@pytest.mark.parametrize("n,seq_len", [(1, 1), (7, 4), (16, 4), (16, 2), (10, 6), (17, 3)])
def test_verify_tells_the_truth(hidden_dim, n, seq_len):
    """Whether the hand-fused kernels equal autograd bit for bit is the CPU's kernels' business;
    what must hold on every machine is that ``verify`` says so exactly when it is so (the fast
    path is taken only where it is exact)."""
    torch.manual_seed(hidden_dim * 100 + n + seq_len)
    model = SquareModel(2, hidden_dim, 1)
    x = torch.randn(n, seq_len, 2)
    y = (torch.rand(n, 1) > 0.5).float()
    assert fused.verify(model, x, y) == _bit_identical(model, x, y)


def test_verify_says_no_for_a_frozen_parameter():
    """Autograd gives a frozen parameter no gradient while the fused step computes all six, so
    they differ: ``verify`` says so (it used to fail on the missing gradient) and leaves the
    gradients as they were."""
    torch.manual_seed(0)
    model = SquareModel(2, 2, 1)
    model.classifier.bias.requires_grad_(False)
    x, y = torch.randn(4, 4, 2), torch.ones(4, 1)
    assert fused.verify(model, x, y) is False
    assert all(p.grad is None for p in model.parameters())


def _plain_loop_losses(hidden_dim, n_train, use_squareseq):
    """Five epochs of the tutorial's setup at ``hidden_dim`` over ``n_train`` sequences (a last
    batch that is not full unless ``n_train`` divides by 16), by StepByStep or the plain loop."""
    from torch.utils.data import DataLoader, TensorDataset

    from reference import tutorial_train
    from squareseq import StepByStep, make_tensors

    x, y, _ = make_tensors(n=n_train, seed=13)
    xv, yv, _ = make_tensors(n=40, seed=19)
    train_loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
    val_loader = DataLoader(TensorDataset(xv, yv), batch_size=16)
    torch.manual_seed(21)
    model = SquareModel(2, hidden_dim, 1)
    loss_fn, optimizer = nn.BCEWithLogitsLoss(), torch.optim.Adam(model.parameters(), lr=0.01)
    if not use_squareseq:
        losses, val_losses = tutorial_train(model, loss_fn, optimizer, train_loader, val_loader, 5)
        return [float(v) for v in losses], [float(v) for v in val_losses], model
    sbs = StepByStep(model, loss_fn, optimizer)
    sbs.set_loaders(train_loader, val_loader)
    sbs.train(5)
    return sbs.losses, sbs.val_losses, model


@pytest.mark.parametrize("hidden_dim", [2, 5, 7, 32])
@pytest.mark.parametrize("n_train", [128, 130, 71])
def test_stepbystep_equals_plain_loop_whichever_path(hidden_dim, n_train):
    """What always holds, fused path taken or refused: training through StepByStep gives the
    plain loop's losses and weights bit for bit on this machine, last partial batches included."""
    losses, val_losses, model = _plain_loop_losses(hidden_dim, n_train, use_squareseq=True)
    ref_losses, ref_val_losses, ref_model = _plain_loop_losses(hidden_dim, n_train, use_squareseq=False)
    assert losses == ref_losses and val_losses == ref_val_losses
    for a, b in zip(model.parameters(), ref_model.parameters()):
        assert torch.equal(a, b)


def test_gradients_written_into_given_buffers():
    """With out=, the gradients land in the given tensors (as FlatAdam's views)."""
    torch.manual_seed(0)
    model = SquareModel(2, 3, 1)
    x, y = torch.randn(8, 4, 2), torch.ones(8, 1)
    _, grads_ref = _autograd(model, x, y)
    out = [torch.full_like(p, 7.0) for p in model.parameters()]
    fused.loss_and_grads(model, x, y, out=out)
    for a, b in zip(out, grads_ref):
        assert torch.equal(a, b)


def test_supports_only_the_plain_tutorial_kind():
    """Other losses, probability outputs, weighted losses or hooks keep autograd."""
    model = SquareModel(2, 2, 1)
    assert fused.supports(model, nn.BCEWithLogitsLoss())
    assert not fused.supports(model, nn.MSELoss())
    assert not fused.supports(model, nn.BCEWithLogitsLoss(pos_weight=torch.tensor([2.0])))
    assert not fused.supports(model, nn.BCEWithLogitsLoss(reduction="sum"))
    assert not fused.supports(SquareModel(2, 2, 1, output_activation="sigmoid"), nn.BCEWithLogitsLoss())
    handle = model.basic_rnn.register_forward_hook(lambda *args: None)
    assert not fused.supports(model, nn.BCEWithLogitsLoss())
    handle.remove()
    handle = model.classifier.weight.register_hook(lambda g: g)
    assert not fused.supports(model, nn.BCEWithLogitsLoss())
    handle.remove()
    assert fused.supports(model, nn.BCEWithLogitsLoss())


def test_batches_it_cannot_take_go_to_the_model():
    """Wrong feature counts, label shapes or dtypes are left to the model (and its errors)."""
    model = SquareModel(2, 2, 1)
    assert fused._batch_ok(torch.zeros(3, 4, 2), torch.zeros(3, 1), model)
    assert not fused._batch_ok(torch.zeros(3, 4, 5), torch.zeros(3, 1), model)
    assert not fused._batch_ok(torch.zeros(3, 4, 2), torch.zeros(3), model)
    assert not fused._batch_ok(torch.zeros(3, 4, 2, dtype=torch.float64), torch.zeros(3, 1), model)
    assert not fused._batch_ok(torch.zeros(3, 4, 2), torch.zeros(3, 1, dtype=torch.long), model)
