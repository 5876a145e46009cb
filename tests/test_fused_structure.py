"""The fused step is chosen by structure, not class: the tutorial's own SquareModel class gets it,
look-alikes do not, and the runtime check's verdict is cached for exactly what it proved."""
import numpy as np
import pytest
import torch
from torch import nn, optim
from torch.utils.data import DataLoader, TensorDataset

from reference import SquareModel, tutorial_train
from squareseq import StepByStep, generate_sequences
from squareseq.training import fused, structure

pytestmark = pytest.mark.exact  # bit-for-bit comparisons: CI runs them again on portable kernels


class AddsOne(SquareModel):
    def forward(self, X):
        return super().forward(X) + 1


class FirstStep(SquareModel):
    def forward(self, X):
        output, self.hidden = self.basic_rnn(X)
        return self.classifier(output[:, 0]).view(-1, 1)


class CountsCalls(SquareModel):
    calls = 0

    def forward(self, X):
        self.calls += 1
        return super().forward(X)


class KeepsOutput(SquareModel):
    def forward(self, X):
        self.output, self.hidden = self.basic_rnn(X)
        return self.classifier(self.output[:, -1]).view(-1, 1)


class TutorialLSTM(nn.Module):
    """The book's LSTM variant: ``self.hidden`` holds the pair ``(h_n, c_n)``."""

    def __init__(self, n_features, hidden_dim, n_outputs):
        super().__init__()
        self.hidden = None
        self.basic_rnn = nn.LSTM(n_features, hidden_dim, batch_first=True)
        self.classifier = nn.Linear(hidden_dim, n_outputs)

    def forward(self, X):
        output, self.hidden = self.basic_rnn(X)
        return self.classifier(output[:, -1]).view(-1, 1)


def _tensors(n, seed):
    points, directions = generate_sequences(n=n, seed=seed)
    return torch.as_tensor(np.stack(points)).float(), torch.as_tensor(directions).view(-1, 1).float()


def _objects(cls=SquareModel, n_train=128, val=True):
    x, y = _tensors(n_train, 13)
    xt, yt = _tensors(128, 19)
    train_loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
    val_loader = DataLoader(TensorDataset(xt, yt), batch_size=16) if val else None
    torch.manual_seed(21)
    model = cls(n_features=2, hidden_dim=2, n_outputs=1)
    return model, nn.BCEWithLogitsLoss(), optim.Adam(model.parameters(), lr=0.01), train_loader, val_loader


def _batch(n=16, seq_len=4):
    torch.manual_seed(3)
    return torch.randn(n, seq_len, 2), (torch.rand(n, 1) > 0.5).float()


def _fused_taken(sbs, n_epochs=None):
    parts = sbs._train_parts(n_epochs)
    parts.finish()
    return parts.train_step.__qualname__.startswith("make_fused_train_step")


@pytest.mark.slow
def test_tutorial_class_100_epochs_bit_for_bit():
    """The tutorial's own class (not squareseq's) takes the fused step, and its 100 epochs give
    the plain loop's losses, and the counts [[50, 53], [75, 75]]."""
    model, loss_fn, optimizer, train_loader, val_loader = _objects()
    losses, val_losses = tutorial_train(model, loss_fn, optimizer, train_loader, val_loader, 100)
    model, loss_fn, optimizer, train_loader, val_loader = _objects()
    sbs = StepByStep(model, loss_fn, optimizer)
    sbs.set_loaders(train_loader, val_loader)
    assert _fused_taken(sbs)
    sbs.train(100)
    assert sbs.losses == [float(v) for v in losses] and sbs.val_losses == [float(v) for v in val_losses]
    assert StepByStep.loader_apply(val_loader, sbs.correct).tolist() == [[50, 53], [75, 75]]


@pytest.mark.filterwarnings("ignore:Mean of empty slice", "ignore:invalid value encountered")
@pytest.mark.parametrize("cls", [SquareModel, TutorialLSTM])
@pytest.mark.parametrize("val", [True, False])
def test_hidden_after_training_is_the_plain_loops(cls, val):
    """What the forward leaves on the model is left the same: after train() ``model.hidden``
    holds the plain loop's final state of the last batch (validation's when there is one), equal
    bit for bit; only without validation does the plain loop's carry an autograd graph."""
    model, loss_fn, optimizer, train_loader, val_loader = _objects(cls, n_train=71, val=val)
    losses, _ = tutorial_train(model, loss_fn, optimizer, train_loader, val_loader or [], 3)
    ref = model.hidden
    model, loss_fn, optimizer, train_loader, val_loader = _objects(cls, n_train=71, val=val)
    sbs = StepByStep(model, loss_fn, optimizer)
    sbs.set_loaders(train_loader, val_loader)
    assert _fused_taken(sbs)
    sbs.train(3)
    assert sbs.losses == [float(v) for v in losses]
    pairs = zip(model.hidden, ref) if isinstance(ref, tuple) else [(model.hidden, ref)]
    for a, b in pairs:
        assert a.shape == b.shape and torch.equal(a, b.detach())
        assert not a.requires_grad and b.requires_grad == (not val)


def test_outputs_found():
    x, y = _batch()
    torch.manual_seed(0)
    assert fused.proven_outputs(SquareModel(2, 2, 1), x, y) == {"hidden": "h"}
    assert fused.proven_outputs(TutorialLSTM(2, 3, 1), x, y) == {"hidden": "hc"}


@pytest.mark.parametrize("cls", [AddsOne, FirstStep, CountsCalls, KeepsOutput])
def test_look_alike_forwards_are_refused(cls):
    """Right structure, other forward: the check says no (and changes nothing on the model)."""
    torch.manual_seed(0)
    model = cls(2, 2, 1)
    x, y = _batch()
    assert fused.supports(model, nn.BCEWithLogitsLoss())
    before = dict(vars(model))
    assert fused.check(model, nn.BCEWithLogitsLoss(), [(x, y)]) is None
    assert vars(model).keys() == before.keys() and all(vars(model)[k] is v for k, v in before.items())


def test_look_alike_structures_are_refused():
    torch.manual_seed(0)
    loss = nn.BCEWithLogitsLoss()
    model = SquareModel(2, 2, 1)
    assert fused.supports(model, loss)
    model.basic_rnn = nn.RNN(2, 2, batch_first=True, bidirectional=True)
    assert not fused.supports(model, loss)
    model = SquareModel(2, 2, 1)
    model.basic_rnn = nn.RNN(2, 2, num_layers=2, batch_first=True)
    assert not fused.supports(model, loss)
    model = SquareModel(2, 2, 1)
    model.basic_rnn = nn.RNN(2, 2, batch_first=True, nonlinearity="relu")
    assert not fused.supports(model, loss)
    model = SquareModel(2, 2, 1)
    model.dropout = nn.Dropout(0.5)  # a third child the forward might use
    assert not fused.supports(model, loss)
    model = SquareModel(2, 2, 1)
    model.classifier.bias.requires_grad_(False)  # a frozen parameter
    assert not fused.supports(model, loss)
    model = SquareModel(2, 2, 1)
    handle = model.basic_rnn.register_forward_hook(lambda *args: None)
    assert not fused.supports(model, loss)
    handle.remove()
    handle = model.classifier.weight.register_hook(lambda g: g)
    assert not fused.supports(model, loss)
    handle.remove()
    model.forward = lambda X: model.classifier(model.basic_rnn(X)[0][:, -1])
    assert not fused.supports(model, loss)
    assert not fused.supports(SquareModel(2, 2, 1), nn.BCEWithLogitsLoss(reduction="sum"))
    assert structure.find_recurrent(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))) is None


def test_frozen_parameter_fails_the_proof():
    torch.manual_seed(0)
    model = SquareModel(2, 2, 1)
    model.classifier.bias.requires_grad_(False)
    x, y = _batch()
    assert fused.proven_outputs(model, x, y) is None
    assert all(p.grad is None for p in model.parameters())


def test_look_alike_trains_as_the_plain_loop():
    """A look-alike trains through autograd, with the plain loop's numbers."""
    model, loss_fn, optimizer, train_loader, val_loader = _objects(AddsOne)
    losses, _ = tutorial_train(model, loss_fn, optimizer, train_loader, val_loader, 2)
    model, loss_fn, optimizer, train_loader, val_loader = _objects(AddsOne)
    sbs = StepByStep(model, loss_fn, optimizer)
    sbs.set_loaders(train_loader, val_loader)
    assert not _fused_taken(sbs)
    sbs.train(2)
    assert sbs.losses == [float(v) for v in losses]


def test_verdicts_are_cached_for_what_they_proved(monkeypatch):
    """A second check of the same model class, sizes, batch shape and threads reuses the verdict;
    another batch shape, another thread count or another class runs the comparison again."""
    calls = []
    real = fused.proven_outputs
    monkeypatch.setattr(fused, "proven_outputs", lambda m, x, y: calls.append(tuple(x.shape)) or real(m, x, y))
    fused.clear_cache()
    loss = nn.BCEWithLogitsLoss()
    torch.manual_seed(0)
    x, y = _batch()
    assert fused.check(SquareModel(2, 2, 1), loss, [(x, y)]) == {"hidden": "h"}
    assert fused.check(SquareModel(2, 2, 1), loss, [(x, y)]) == {"hidden": "h"}
    assert len(calls) == 1
    x7, y7 = _batch(7)
    assert fused.check(SquareModel(2, 2, 1), loss, [(x, y), (x7, y7)]) == {"hidden": "h"}
    assert calls == [(16, 4, 2), (7, 4, 2)]
    previous = torch.get_num_threads()
    torch.set_num_threads(2 if previous == 1 else 1)
    try:
        fused.check(SquareModel(2, 2, 1), loss, [(x, y)])
    finally:
        torch.set_num_threads(previous)
    assert len(calls) == 3
    assert fused.check(AddsOne(2, 2, 1), loss, [(x, y)]) is None
    assert fused.check(AddsOne(2, 2, 1), loss, [(x, y)]) is None
    assert len(calls) == 4
    fused.check(SquareModel(2, 2, 1), loss, [], [(x, y)])  # evaluation mode: another verdict
    assert len(calls) == 5
    fused.clear_cache()
    fused.check(SquareModel(2, 2, 1), loss, [(x, y)])
    assert len(calls) == 6


def test_repeated_train_verifies_once(monkeypatch):
    """train() twice over the same loaders: the comparison runs for the first call only."""
    calls = []
    real = fused.proven_outputs
    monkeypatch.setattr(fused, "proven_outputs", lambda m, x, y: calls.append(1) or real(m, x, y))
    fused.clear_cache()
    model, loss_fn, optimizer, train_loader, val_loader = _objects(n_train=71)
    sbs = StepByStep(model, loss_fn, optimizer)
    sbs.set_loaders(train_loader, val_loader)
    sbs.train(5)
    assert len(calls) == 3  # a full and a ragged training batch, a validation batch
    sbs.train(5)
    assert len(calls) == 3


def test_a_short_run_does_not_pay_for_a_proof(monkeypatch):
    """Too few steps to pay for the comparison: autograd trains (the same numbers), unless this
    process has proven the shapes already."""
    from squareseq.training.fastpath import STEPS_PER_PROOF

    calls = []
    real = fused.proven_outputs
    monkeypatch.setattr(fused, "proven_outputs", lambda m, x, y: calls.append(1) or real(m, x, y))
    fused.clear_cache()
    model, loss_fn, optimizer, train_loader, val_loader = _objects(n_train=71)
    losses, _ = tutorial_train(model, loss_fn, optimizer, train_loader, val_loader, 1)
    model, loss_fn, optimizer, train_loader, val_loader = _objects(n_train=71)
    sbs = StepByStep(model, loss_fn, optimizer)
    sbs.set_loaders(train_loader, val_loader)
    assert 1 * len(train_loader) < STEPS_PER_PROOF * 3
    assert not _fused_taken(sbs, 1)
    sbs.train(1)
    assert calls == [] and sbs.losses == [float(v) for v in losses]
    assert _fused_taken(sbs)  # many epochs: proven (and cached)
    assert _fused_taken(sbs, 1)


def test_the_check_leaves_the_random_state():
    rng = torch.get_rng_state()
    torch.manual_seed(0)
    model = SquareModel(2, 2, 1)
    x, y = _batch()
    state = torch.get_rng_state()
    fused.clear_cache()
    fused.check(model, nn.BCEWithLogitsLoss(), [(x, y)])
    assert torch.equal(torch.get_rng_state(), state)
    torch.set_rng_state(rng)
