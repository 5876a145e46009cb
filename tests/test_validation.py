"""Bad data and misuse are caught before any work starts, each with one clear line."""
import numpy as np
import pytest
import torch
from torch import nn, optim
from torch.utils.data import DataLoader, TensorDataset

from squareseq import SquareModel, StepByStep, make_tensors
from squareseq.data.checks import check_dataset, check_inputs, check_labels, check_model_output
from squareseq.errors import SquareseqError

X, Y, _ = make_tensors(8, seed=1)


def _nan_x():
    x = X.clone()
    x[3, 1, 0] = float("nan")
    return x


def _raises(fn, *args, match, **kwargs):
    with pytest.raises(SquareseqError, match=match) as info:
        fn(*args, **kwargs)
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)


@pytest.mark.parametrize("x,match", [
    (_nan_x(), r"1 NaN or infinite value\(s\) \(first in sequence 3\)"),
    (torch.full((2, 4, 2), float("inf")), "NaN or infinite"),
    (X[0], "3-d array"),
    (X[None], "3-d array"),
    (X[:0], "empty"),
    (X[:, :0], "at least one step"),
    (torch.zeros(2, 4, 3), "3 feature.*expects 2"),
    (np.array([["a", "b"]]), "must hold numbers"),
    (np.zeros((2, 4, 2), dtype=np.complex64), "real numbers"),
    ([np.zeros((4, 2)), np.zeros((3, 2))], "not a rectangular array|3-d array"),
])
def test_bad_inputs(x, match):
    _raises(check_inputs, x, n_features=2, match=match)


@pytest.mark.parametrize("y,kwargs,match", [
    (torch.tensor([0, 1, 2]), {"n_classes": 2}, r"outside the classes 0..1 \(min 0, max 2\)"),
    (torch.tensor([-1, 1]), {"n_classes": 2}, "outside the classes"),
    (torch.tensor([0.5, 1.0]), {}, "non-integer"),
    (torch.tensor([[0.0], [1.5]]), {"float_labels": True}, r"outside \[0, 1\]"),
    (torch.tensor([0.0, float("nan")]), {"float_labels": True}, "NaN"),
    (torch.zeros(3, 2), {}, "one label per sequence"),
    (torch.zeros(0), {}, "empty"),
    (torch.zeros(3), {"n": 4}, "4 sequence.*3 label"),
])
def test_bad_labels(y, kwargs, match):
    _raises(check_labels, y, match=match, **kwargs)


def test_dataset_checks_lengths_and_mismatches():
    check_dataset(X, Y, n_features=2)
    check_dataset(X, Y.long().view(-1), n_classes=2, lengths=torch.full((8,), 4))
    _raises(check_dataset, X, Y[:5], match="8 sequence.*5 label")
    _raises(check_dataset, X, Y, lengths=torch.full((8,), 5), match=r"lengths must be integers in \[1, 4\]")
    _raises(check_dataset, X, Y, lengths=torch.ones(3, dtype=torch.long), match="one length per sequence")


@pytest.mark.parametrize("model,loss_fn,y,match", [
    (SquareModel(2, 2, 2), nn.BCEWithLogitsLoss(), Y, r"outputs shape \(2,\).*needs the labels' shape \(1,\)"),
    (SquareModel(3, 2, 1), nn.BCEWithLogitsLoss(), Y, "cannot read inputs of shape"),
    (SquareModel(2, 2, 1), nn.CrossEntropyLoss(), Y.long().view(-1) + 1, "does not fit the loss"),
    (SquareModel(2, 2, 1), nn.BCEWithLogitsLoss(reduction="none"), Y, "one number per batch"),
])
def test_model_output_must_fit_the_loss(model, loss_fn, y, match):
    _raises(check_model_output, model, X, loss_fn, y, match=match)


def test_model_output_check_draws_no_random_numbers():
    """The check runs a forward pass of a dropout model without touching the global RNG."""
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(8, 1))
    model.train()
    before = torch.get_rng_state()
    check_model_output(model, X, nn.BCEWithLogitsLoss(), Y)
    assert torch.equal(before, torch.get_rng_state()) and model.training


def _sbs(x, y, loss_fn=None, n_outputs=1):
    torch.manual_seed(21)
    model = SquareModel(2, 2, n_outputs)
    sbs = StepByStep(model, loss_fn or nn.BCEWithLogitsLoss(), optim.Adam(model.parameters(), lr=0.01))
    sbs.set_loaders(DataLoader(TensorDataset(x, y), batch_size=4, shuffle=len(x) > 0))  # torch refuses to shuffle nothing
    return sbs


@pytest.mark.parametrize("x,y,kwargs,match", [
    (_nan_x(), Y, {}, "inputs hold NaN"),
    (X, Y * 2, {}, r"outside \[0, 1\]"),
    (X, Y.long().view(-1) * 2, {"loss_fn": nn.CrossEntropyLoss(), "n_outputs": 2}, "outside the classes 0..1"),
    (torch.zeros(8, 4, 3), Y, {}, "3 feature.*expects 2"),
    (X[:0], Y[:0], {}, "is empty"),
])
def test_stepbystep_train_refuses_bad_data_before_any_work(x, y, kwargs, match):
    """StepByStep.train checks in-memory data first: nothing trains, no seed is set."""
    sbs = _sbs(x, y, **kwargs)
    before = {k: v.clone() for k, v in sbs.model.state_dict().items()}
    rng_before = torch.get_rng_state()
    _raises(sbs.train, 2, match=match)
    assert sbs.losses == [] and sbs.total_epochs == 0 and torch.equal(rng_before, torch.get_rng_state())
    assert all(torch.equal(before[k], v) for k, v in sbs.model.state_dict().items())


def test_mismatched_lengths_caught_before_a_dataset_exists():
    """TensorDataset itself asserts on mismatched sizes; check_dataset says it in words first."""
    _raises(check_dataset, X, Y[:-1], match="8 sequence.*7 label")


def test_cross_entropy_ignore_index_labels_are_allowed():
    """Labels equal to CrossEntropyLoss's ignore_index are not 'outside the classes'."""
    y = Y.long().view(-1).clone()
    y[0] = -100
    sbs = _sbs(X, y, loss_fn=nn.CrossEntropyLoss(), n_outputs=2)
    sbs.train(1)
    assert len(sbs.losses) == 1
