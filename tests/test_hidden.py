"""Tests for squareseq.models.hidden: hidden states of every step, the hand-written RNN step, the PCA
projection, and the classifier's probabilities over hidden space."""
import numpy as np
import pytest
import torch
from torch import nn

from squareseq import SquareModel, make_tensors
from squareseq.data.squares import CORNERS
from squareseq.models.hidden import (
    Projection,
    canonical_sequences,
    classifier_probability,
    decision_line,
    hidden_limits,
    hidden_states,
    probability_grid,
    project_2d,
    rnn_cell_step,
    unroll_rnn,
)

pytestmark = pytest.mark.exact  # bit-for-bit comparisons: CI runs them again on portable kernels


@pytest.fixture
def x():
    torch.manual_seed(0)
    return make_tensors(16, seed=3)[0]


def _model(hidden_dim=2, n_outputs=1, cell=None):
    torch.manual_seed(21)
    model = SquareModel(2, hidden_dim, n_outputs)
    if cell is not None:
        model.basic_rnn = cell(2, hidden_dim, batch_first=True)
    return model


def test_hidden_states_are_the_layer_outputs_of_every_step(x):
    """hidden_states returns (N, L, H): the RNN's output at each step; the last is model.hidden."""
    model = _model()
    h = hidden_states(model, x)
    assert h.shape == (16, 4, 2)
    model(x)
    torch.testing.assert_close(h[:, -1], model.hidden[0].detach())
    torch.testing.assert_close(h, model.basic_rnn(x)[0].detach())


@pytest.mark.parametrize("cell", [nn.GRU, nn.LSTM])
def test_hidden_states_work_for_gru_and_lstm(x, cell):
    """GRU and LSTM layers (LSTM returns (out, (h, c))) give their per-step outputs too."""
    model = _model(hidden_dim=3, cell=cell)
    h = hidden_states(model, x)
    assert h.shape == (16, 4, 3)
    torch.testing.assert_close(h, model.basic_rnn(x)[0].detach())


def test_hidden_states_keep_the_mode_and_need_no_grad(x):
    """The layer's training mode is restored and the result carries no graph."""
    model = _model()
    model.train()
    h = hidden_states(model, x)
    assert model.basic_rnn.training and not h.requires_grad


def test_hidden_states_refuse_bad_input(x):
    """A model without basic_rnn, or x that is not (N, L, F), is a ValueError."""
    with pytest.raises(ValueError, match="basic_rnn"):
        hidden_states(nn.Linear(2, 2), x)
    with pytest.raises(ValueError, match=r"\(N, L, F\)"):
        hidden_states(_model(), x[0])


@pytest.mark.parametrize("hidden_dim,nonlinearity", [(2, "tanh"), (5, "tanh"), (3, "relu")])
def test_hand_written_step_matches_nn_rnn(x, hidden_dim, nonlinearity):
    """Unrolling rnn_cell_step reproduces nn.RNN's outputs with the same weights, and its parts
    add up: pre-activation = transformed hidden + transformed input, hidden = activation."""
    torch.manual_seed(4)
    rnn = nn.RNN(2, hidden_dim, batch_first=True, nonlinearity=nonlinearity)
    steps = unroll_rnn(rnn, x)
    expected, _ = rnn(x)
    torch.testing.assert_close(torch.stack([s.hidden for s in steps], dim=1), expected.detach())
    for s in steps:
        torch.testing.assert_close(s.pre_activation, s.transformed_hidden + s.transformed_input)
    torch.testing.assert_close(steps[0].transformed_hidden, rnn.bias_hh_l0.detach().expand(16, -1))


def test_hand_written_step_one_sequence():
    """rnn_cell_step accepts a single (F,) input and (H,) state."""
    torch.manual_seed(4)
    rnn = nn.RNN(2, 2, batch_first=True)
    step = rnn_cell_step(rnn, torch.tensor([1.0, -1.0]), torch.zeros(2))
    expected, _ = rnn(torch.tensor([[[1.0, -1.0]]]))
    torch.testing.assert_close(step.hidden, expected[0, 0].detach())


def test_hand_written_step_refuses_gru():
    """The journey's cell step is an Elman RNN's: a GRU is refused with a clear ValueError."""
    with pytest.raises(ValueError, match="nn.RNN"):
        rnn_cell_step(nn.GRU(2, 2), torch.zeros(1, 2), torch.zeros(1, 2))


def test_projection_is_identity_for_two_dims():
    """2-D hidden states are drawn as they are."""
    h = np.random.RandomState(0).randn(10, 4, 2)
    z, proj = project_2d(h)
    assert proj.is_identity and proj.describe() == ""
    np.testing.assert_allclose(z, h)


def test_projection_is_pca_above_two_dims():
    """For H > 2: orthonormal components, the leading variance direction first, points on the
    plane map back to themselves, and the description says PCA."""
    rng = np.random.RandomState(0)
    h = rng.randn(200, 5) * np.array([5.0, 2.0, 0.1, 0.1, 0.1])
    z, proj = project_2d(torch.as_tensor(h))
    np.testing.assert_allclose(proj.components @ proj.components.T, np.eye(2), atol=1e-10)
    assert abs(proj.components[0, 0]) > 0.99 and abs(proj.components[1, 1]) > 0.99
    np.testing.assert_allclose(proj.transform(proj.inverse(z)), z, atol=1e-10)
    assert 0.99 < proj.explained.sum() <= 1.0
    assert "PCA" in proj.describe() and "5-D" in proj.describe()


def test_projection_built_by_hand_describes_itself_without_variance_shares():
    """A projection made without ``explained`` (no PCA shares to quote) still has a title note."""
    proj = Projection(np.zeros(3), np.eye(3)[:2])
    assert proj.describe() == "projection of 3-D hidden states"


def test_projection_of_one_dim_lies_on_the_x_axis():
    """A 1-D hidden state is drawn on the horizontal axis instead of failing."""
    z, proj = project_2d(np.array([[0.5], [-0.2]]))
    np.testing.assert_allclose(z, [[0.5, 0.0], [-0.2, 0.0]])


def test_classifier_probability_one_and_two_logits():
    """One logit: sigmoid; two logits: softmax's class-1 share; three: ValueError."""
    torch.manual_seed(0)
    h = torch.randn(7, 2)
    one, two = nn.Linear(2, 1), nn.Linear(2, 2)
    torch.testing.assert_close(classifier_probability(one, h), torch.sigmoid(one(h))[:, 0].detach())
    torch.testing.assert_close(classifier_probability(two, h), torch.softmax(two(h), -1)[:, 1].detach())
    with pytest.raises(ValueError, match="1 or 2"):
        classifier_probability(nn.Linear(2, 3), h)


def test_probability_grid_comes_from_the_classifier():
    """Grid values equal torch.sigmoid(classifier(h)) at the grid's points."""
    torch.manual_seed(1)
    clf = nn.Linear(2, 1)
    grid = probability_grid(clf, (-1, 1), (-2, 2), n=11)
    for i, j in [(0, 0), (3, 7), (10, 10), (5, 2)]:
        h = torch.tensor([[grid.xs[j], grid.ys[i]]], dtype=torch.float32)
        assert grid.probs[i, j] == pytest.approx(torch.sigmoid(clf(h)).item(), abs=1e-6)
    assert grid.extent[0] < -1 and grid.extent[3] > 2


def test_probability_grid_on_a_pca_plane():
    """With a projection, each grid point is mapped back into hidden space first."""
    torch.manual_seed(1)
    clf = nn.Linear(4, 1)
    proj = Projection.fit(np.random.RandomState(0).randn(50, 4))
    grid = probability_grid(clf, (-1, 1), (-1, 1), n=5, projection=proj)
    h = torch.as_tensor(proj.inverse([grid.xs[1], grid.ys[3]]), dtype=torch.float32)[None]
    assert grid.probs[3, 1] == pytest.approx(torch.sigmoid(clf(h)).item(), abs=1e-6)


def test_decision_line_is_where_the_probability_is_one_half():
    """The line's end points lie in the box and the classifier gives them P = 0.5."""
    clf = nn.Linear(2, 1)
    with torch.no_grad():
        clf.weight.copy_(torch.tensor([[2.0, -1.0]]))
        clf.bias.copy_(torch.tensor([0.3]))
    line = decision_line(clf.weight, clf.bias, (-1, 1), (-1, 1))
    assert np.isfinite(line).all() and (np.abs(line) <= 1 + 1e-9).all()
    probs = classifier_probability(clf, torch.as_tensor(line, dtype=torch.float32))
    torch.testing.assert_close(probs, torch.full((2,), 0.5))
    missed = decision_line(torch.tensor([[1.0, 0.0]]), torch.tensor([5.0]), (-1, 1), (-1, 1))
    assert np.isnan(missed).all()


def test_hidden_limits_cover_tanh_range_and_points():
    """Limits hold every point and at least [-1.05, 1.05]."""
    (x0, x1), (y0, y1) = hidden_limits(np.array([[3.0, 0.0], [0.0, -0.2]]))
    assert x0 <= -1.05 and x1 >= 3.0 and y0 <= -1.05 and y1 >= 1.05


def test_canonical_sequences_are_the_eight_corner_orders():
    """Eight distinct noise-free sequences, four per direction, each visiting every corner."""
    x, y, names = canonical_sequences()
    assert x.shape == (8, 4, 2) and sorted(y.tolist()) == [0] * 4 + [1] * 4
    assert len(set(names)) == 8 and all(sorted(n) == list("ABCD") for n in names)
    for seq, name in zip(x, names):
        np.testing.assert_array_equal(seq, CORNERS[["ABCD".index(c) for c in name]])
    assert names[0] == "ABCD" and y[0] == 1 and "DCBA" in names


def test_pca_components_face_a_fixed_way():
    """PCA's sign is arbitrary; the projection fixes it (largest entry positive), so two samples of
    similar states give projections that face the same way."""
    from squareseq.models.hidden import Projection

    rng = np.random.RandomState(0)
    basis = rng.randn(2, 5)
    a = rng.randn(200, 2) * [3.0, 1.0] @ basis
    b = rng.randn(150, 2) * [3.0, 1.0] @ basis
    pa, pb = Projection.fit(a), Projection.fit(b)
    for row in pa.components:
        assert row[np.abs(row).argmax()] > 0
    assert (np.sum(pa.components * pb.components, axis=1) > 0).all()
