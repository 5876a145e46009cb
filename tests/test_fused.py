"""The fused SquareModel step: loss, logits and gradients bit-identical to autograd's."""
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from squareseq import SquareModel
from squareseq import fused


def _autograd(model, x, y):
    model.zero_grad(set_to_none=True)
    loss = F.binary_cross_entropy_with_logits(model(x), y)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("hidden_dim", [1, 2, 5, 32])
@pytest.mark.parametrize("n,seq_len", [(1, 1), (7, 4), (16, 4), (16, 2), (10, 6)])
def test_gradients_bit_identical_to_autograd(hidden_dim, n, seq_len):
    """For several sizes and random weights, the fused loss and gradients equal autograd's bits."""
    torch.manual_seed(hidden_dim * 100 + n + seq_len)
    model = SquareModel(2, hidden_dim, 1)
    x = torch.randn(n, seq_len, 2)
    y = (torch.rand(n, 1) > 0.5).float()
    loss_ref, grads_ref = _autograd(model, x, y)
    loss, grads = fused.loss_and_grads(model, x, y)
    assert torch.equal(loss, loss_ref)
    for a, b in zip(grads, grads_ref):
        assert a.shape == b.shape and torch.equal(a, b)
    with torch.no_grad():
        assert torch.equal(fused.forward(model, x)[0], model(x))
    assert fused.verify(model, x, y)


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
