"""The fused GRU and LSTM steps (and the RNN's): loss, logits and gradients bit-identical to
autograd's, alone and over several epochs of training, ragged last batches included."""
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from reference import tutorial_train
from squareseq import StepByStep, make_tensors
from squareseq.training import fused

pytestmark = pytest.mark.exact  # bit-for-bit comparisons: CI runs them again on portable kernels

LAYERS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


class Classifier(nn.Module):
    """A recurrent layer, then a linear classifier on the last step (the tutorial's shape)."""

    def __init__(self, kind, n_features, hidden_dim, n_outputs=1):
        super().__init__()
        self.rnn = LAYERS[kind](n_features, hidden_dim, batch_first=True)
        self.head = nn.Linear(hidden_dim, n_outputs)

    def forward(self, x):
        output, _ = self.rnn(x)
        return self.head(output[:, -1])


def _autograd(model, x, y):
    model.zero_grad(set_to_none=True)
    logits = model(x)
    loss = F.binary_cross_entropy_with_logits(logits, y)
    loss.backward()
    return logits.detach(), loss.detach(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("kind", ["gru", "lstm", "rnn"])
@pytest.mark.parametrize("hidden_dim", [1, 2, 5, 32])
@pytest.mark.parametrize("n,seq_len", [(1, 1), (7, 4), (16, 4), (17, 3), (10, 6)])
def test_fused_equals_autograd(kind, hidden_dim, n, seq_len):
    torch.manual_seed(hidden_dim * 31 + n * 7 + seq_len)
    model = Classifier(kind, 2, hidden_dim)
    x = torch.randn(n, seq_len, 2)
    y = (torch.rand(n, 1) > 0.5).float()
    logits_ref, loss_ref, grads_ref = _autograd(model, x, y)
    loss, grads = fused.loss_and_grads(model, x, y)
    assert torch.equal(loss, loss_ref)
    assert all(torch.equal(a, b) for a, b in zip(grads, grads_ref))
    model.eval()  # the validation pass: no_grad, evaluation mode (oneDNN's inference kind for the LSTM)
    with torch.no_grad():
        assert torch.equal(fused.forward(model, x)[0], model(x))
    assert fused.verify(model, x, y)


def _train(kind, hidden_dim, n_train, use_squareseq, epochs=4):
    x, y, _ = make_tensors(n=n_train, seed=13)
    xv, yv, _ = make_tensors(n=40, seed=19)
    train_loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
    val_loader = DataLoader(TensorDataset(xv, yv), batch_size=16)
    torch.manual_seed(21)
    model = Classifier(kind, 2, hidden_dim)
    loss_fn, optimizer = nn.BCEWithLogitsLoss(), torch.optim.Adam(model.parameters(), lr=0.01)
    if not use_squareseq:
        losses, val_losses = tutorial_train(model, loss_fn, optimizer, train_loader, val_loader, epochs)
        return [float(v) for v in losses], [float(v) for v in val_losses], model
    sbs = StepByStep(model, loss_fn, optimizer)
    sbs.set_loaders(train_loader, val_loader)
    parts = sbs._train_parts()
    parts.finish()
    assert parts.train_step.__qualname__.startswith("make_fused_train_step")  # the fused path is taken
    sbs.train(epochs)
    return sbs.losses, sbs.val_losses, model


@pytest.mark.parametrize("kind", ["gru", "lstm"])
@pytest.mark.parametrize("hidden_dim", [2, 7])
@pytest.mark.parametrize("n_train", [128, 71])
def test_training_equals_the_plain_loop(kind, hidden_dim, n_train):
    """Several epochs through the fused step give the plain loop's losses and weights bit for bit
    (71 sequences: a ragged last batch of 7)."""
    losses, val_losses, model = _train(kind, hidden_dim, n_train, True)
    ref_losses, ref_val_losses, ref_model = _train(kind, hidden_dim, n_train, False)
    assert losses == ref_losses and val_losses == ref_val_losses
    for a, b in zip(model.parameters(), ref_model.parameters()):
        assert torch.equal(a, b)
