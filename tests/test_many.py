"""train_many: K seeds in one batched pass, with the data, weights and shuffles of K separate runs."""
import inspect

import numpy as np
import pytest
import torch
from torch import nn, optim
from torch.utils.data import DataLoader, TensorDataset

from squareseq import SquareModel, StepByStep
from squareseq.config import RunConfig
from squareseq.data.squares import make_tensors
from squareseq.models.networks import build_model
from squareseq.training.many import (
    BATCHED_CELLS,
    CONVERGED_ACCURACY,
    _Stack,
    batched_logits,
    initial_parameters,
    shuffle_orders,
    train_many,
)

pytestmark = pytest.mark.exact  # bit-for-bit comparisons: CI runs them again on portable kernels


def _separate_run(seed, n_epochs, hidden_dim=2, cell="rnn"):
    """One tutorial run: the reference train_many must agree with."""
    x, y, _ = make_tensors(128, seed=13)
    xt, yt, _ = make_tensors(128, seed=19)
    train_loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
    val_loader = DataLoader(TensorDataset(xt, yt), batch_size=16)
    torch.manual_seed(seed)
    model = SquareModel(2, hidden_dim, 1) if cell == "rnn" else SquareModel(2, hidden_dim, 1, cell=cell)
    sbs = StepByStep(model, nn.BCEWithLogitsLoss(), optim.Adam(model.parameters(), lr=0.01))
    sbs.set_loaders(train_loader, val_loader)
    sbs.train(n_epochs)
    return StepByStep.loader_apply(val_loader, sbs.correct).tolist(), sbs.losses, sbs.val_losses


@pytest.mark.parametrize("model", BATCHED_CELLS)
def test_initial_parameters_are_the_separate_runs_weights(model):
    """Each seed's stacked weights equal SquareModel's after manual_seed; global RNG untouched."""
    torch.manual_seed(123)
    state = torch.get_rng_state()
    params = initial_parameters([21, 4], hidden_dim=3, model=model)
    assert torch.equal(torch.get_rng_state(), state)
    for i, seed in enumerate([21, 4]):
        torch.manual_seed(seed)
        net = SquareModel(2, 3, 1, cell=model)
        assert torch.equal(params["weight_ih"][i], net.basic_rnn.weight_ih_l0)
        assert torch.equal(params["weight_hh"][i], net.basic_rnn.weight_hh_l0)
        assert torch.equal(params["bias_ih"][i], net.basic_rnn.bias_ih_l0)
        assert torch.equal(params["bias_hh"][i], net.basic_rnn.bias_hh_l0)
        assert torch.equal(params["weight_c"][i], net.classifier.weight)
        assert torch.equal(params["bias_c"][i], net.classifier.bias)


def test_shuffle_orders_are_stepbystep_train_orders():
    """The precomputed orders are the batches a shuffled DataLoader yields under train(seed=42),
    validation loader included."""
    index = torch.arange(40)
    train_loader = DataLoader(TensorDataset(index, index), batch_size=16, shuffle=True)
    val_loader = DataLoader(TensorDataset(index, index), batch_size=16)
    torch.manual_seed(42)
    expected = []
    for _ in range(3):
        expected.append(torch.cat([b[0] for b in train_loader]))
        for _ in val_loader:
            pass
    assert torch.equal(shuffle_orders(40, 16, 3, fit_seed=42), torch.stack(expected))


@pytest.mark.parametrize("model", BATCHED_CELLS)
@pytest.mark.parametrize("hidden_dim", [2, 9])
@pytest.mark.parametrize("models_last", [True, False])
def test_batched_forward_matches_torch_layers(model, hidden_dim, models_last):
    """Both layouts compute what SquareModel (nn.RNN/GRU/LSTM + Linear) computes, for every seed."""
    x = torch.randn(5, 4, 2)
    seeds = [3, 8]
    logits = _Stack(initial_parameters(seeds, hidden_dim, model), model, models_last).logits_k_first(x)
    for i, seed in enumerate(seeds):
        torch.manual_seed(seed)
        expected = build_model(model, hidden_dim=hidden_dim)(x).squeeze(-1)
        torch.testing.assert_close(logits[i], expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(batched_logits(initial_parameters(seeds, hidden_dim, model), x, model), logits,
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("models_last", [True, False])
def test_batched_logits_refuse_sequences_without_steps(models_last):
    """A batch of zero-step sequences is named as such (it used to fail inside the classifier's
    matmul on the missing hidden state)."""
    with pytest.raises(ValueError, match="at least one step"):
        _Stack(initial_parameters([3], 2, "rnn"), "rnn", models_last).logits(torch.zeros(5, 0, 2))


def test_counts_match_separate_runs():
    """Test counts equal those of separate runs for every seed of a sample (the acceptance asks
    >= 97%); losses agree to float32 rounding."""
    seeds = list(range(10)) + [21]
    results = train_many(seeds, RunConfig(epochs=8))
    agree = 0
    for i, seed in enumerate(seeds):
        counts, losses, val_losses = _separate_run(seed, 8)
        agree += counts == results.counts[i]
        assert results.losses[i] == pytest.approx(losses[-1], rel=1e-5, abs=1e-6)
        assert results.val_losses[i] == pytest.approx(val_losses[-1], rel=1e-5, abs=1e-6)
        np.testing.assert_allclose(results.loss_history[:, i], losses, rtol=1e-5, atol=1e-6)
    assert agree / len(seeds) >= 0.97


@pytest.mark.skipif("cell" not in inspect.signature(SquareModel).parameters,
                    reason="SquareModel has no GRU/LSTM cells here")
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_gru_lstm_counts_match_separate_runs(cell):
    """GRU and LSTM seeds agree with separate SquareModel(cell=...) runs too."""
    seeds = [0, 1, 2, 21]
    results = train_many(seeds, RunConfig(epochs=4, model=cell, hidden_dim=3))
    for i, seed in enumerate(seeds):
        counts, losses, _ = _separate_run(seed, 4, hidden_dim=3, cell=cell)
        assert counts == results.counts[i]
        np.testing.assert_allclose(results.loss_history[:, i], losses, rtol=1e-5, atol=1e-6)


def test_global_rng_left_alone():
    """train_many does not move torch's global generator."""
    torch.manual_seed(5)
    state = torch.get_rng_state()
    train_many([1, 2], RunConfig(epochs=1))
    assert torch.equal(torch.get_rng_state(), state)


def test_results_summary():
    """The summary and the converged flags agree with the accuracies."""
    results = train_many("0-3", RunConfig(epochs=2, model="gru"))
    summary = results.summary()
    assert summary["n_models"] == 4
    assert summary["accuracy_min"] <= summary["accuracy_median"] <= summary["accuracy_max"]
    assert results.converged == [a >= CONVERGED_ACCURACY for a in results.accuracy]
    assert summary["converged_share"] == results.converged_share()
    assert [r["seed"] for r in results.records()] == [0, 1, 2, 3]


def test_many_writes_no_files():
    """Output formats live in squareseq.runs.sweep: many imports neither json, csv nor matplotlib."""
    import ast

    import squareseq.training.many as many

    imported = set()
    for node in ast.walk(ast.parse(inspect.getsource(many))):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert not imported & {"json", "csv", "matplotlib"}


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(model="transformer"), "model must be"),
        (dict(model="conv1d"), "model must be one of: rnn, gru, lstm"),
        (dict(epochs=-1), "epochs"),
        (dict(batch_size=0), "batch_size"),
        (dict(lr=0.0), "lr must be"),
        (dict(num_layers=2), "num_layers: many models at once"),
        (dict(task="corner-direction"), "task: many models"),
    ],
)
def test_bad_input(kwargs, match):
    """Bad settings raise a one-line ValueError naming the setting."""
    with pytest.raises(ValueError, match=match):
        train_many([0], RunConfig(**kwargs))
