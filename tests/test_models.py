"""Tests for squareseq.models.networks: recurrent cells, Conv1d, build_model and config round trips."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from squareseq.models.networks import MODELS, SquareConv1d, SquareModel, build_model

pytestmark = pytest.mark.exact  # bit-for-bit comparisons: CI runs them again on portable kernels

torch.set_num_threads(1)


class HandWritten(nn.Module):
    """The tutorial's SquareModel with any recurrent layer, written out by hand."""

    def __init__(self, layer):
        super().__init__()
        self.basic_rnn = layer(2, 2, batch_first=True)
        self.classifier = nn.Linear(2, 1)

    def forward(self, x):
        out, _ = self.basic_rnn(x)
        return self.classifier(out[:, -1]).view(-1, 1)


@pytest.mark.parametrize("cell, layer", [("rnn", nn.RNN), ("gru", nn.GRU), ("lstm", nn.LSTM)])
def test_seeded_model_equals_hand_written(cell, layer):
    """After the same seed, SquareModel(cell=...) has the weights and outputs of the model a user
    writes by hand with nn.RNN / nn.GRU / nn.LSTM (creation order: recurrent layer, classifier)."""
    torch.manual_seed(21)
    ours = SquareModel(2, 2, 1, cell=cell)
    torch.manual_seed(21)
    theirs = HandWritten(layer)
    for (k1, v1), (k2, v2) in zip(ours.state_dict().items(), theirs.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)
    x = torch.randn(5, 4, 2)
    assert torch.equal(ours(x), theirs(x))


def test_conv1d_equals_sequential_on_transposed_input():
    """SquareConv1d transposes (N, L, F) inside and matches the equivalent nn.Sequential that
    reads (N, F, L), weight for weight after the same seed."""
    torch.manual_seed(21)
    ours = SquareConv1d(2, 4, 1)
    torch.manual_seed(21)
    theirs = nn.Sequential(nn.Conv1d(2, 1, kernel_size=2), nn.ReLU(), nn.Flatten(), nn.Linear(3, 1))
    x = torch.randn(6, 4, 2)
    assert torch.equal(ours(x), theirs(x.permute(0, 2, 1)))


def test_lstm_keeps_hidden_and_cell_states():
    """An LSTM model keeps h_n in .hidden and c_n in .cell; other cells keep .cell None."""
    model = SquareModel(2, 3, 1, cell="lstm", num_layers=2, bidirectional=True)
    model(torch.randn(5, 4, 2))
    assert model.hidden.shape == (4, 5, 3) and model.cell.shape == (4, 5, 3)
    gru = SquareModel(2, 3, 1, cell="gru")
    gru(torch.randn(5, 4, 2))
    assert gru.hidden.shape == (1, 5, 3) and gru.cell is None


def test_bidirectional_reads_both_directions_final_states():
    """A bidirectional model classifies [forward state after the last step, backward state after
    the first step], not output[:, -1] (whose backward half has seen one step only)."""
    torch.manual_seed(0)
    model = SquareModel(2, 3, 1, cell="gru", bidirectional=True)
    x = torch.randn(4, 4, 2)
    output, _ = model.basic_rnn(x)
    expected = torch.cat([output[:, -1, :3], output[:, 0, 3:]], dim=1)
    assert torch.allclose(model(x), model.classifier(expected))


def _model(name, n_outputs, bidirectional=False, num_layers=1):
    if name == "square-conv1d":
        return build_model("square-conv1d", n_outputs=n_outputs)
    if name == "conv1d":
        return build_model("conv1d", hidden_dim=3, n_outputs=n_outputs, num_layers=num_layers)
    return build_model(name, hidden_dim=3, n_outputs=n_outputs, bidirectional=bidirectional, num_layers=num_layers)


@settings(max_examples=25, deadline=None)
@given(
    name=st.sampled_from(MODELS),
    batch=st.integers(1, 9),
    seq_len=st.integers(2, 4),
    n_outputs=st.sampled_from([1, 8]),
    bidirectional=st.booleans(),
    num_layers=st.integers(1, 2),
)
def test_output_shape_fixed_length(name, batch, seq_len, n_outputs, bidirectional, num_layers):
    """Every model maps a fixed-length (N, L, F) batch to (N, n_outputs) (square-conv1d: L up to seq_len)."""
    torch.manual_seed(0)
    bidirectional = bidirectional and name not in ("conv1d", "square-conv1d")
    num_layers = num_layers if name != "square-conv1d" else 1
    model = _model(name, n_outputs, bidirectional, num_layers)
    assert model(torch.randn(batch, seq_len, 2)).shape == (batch, n_outputs)


@settings(max_examples=25, deadline=None)
@given(
    name=st.sampled_from(MODELS),
    lengths=st.lists(st.integers(1, 4), min_size=1, max_size=9),
    n_outputs=st.sampled_from([1, 8]),
    bidirectional=st.booleans(),
)
def test_output_shape_variable_length(name, lengths, n_outputs, bidirectional):
    """Every model maps a padded batch with lengths, and the same batch packed, to (N, n_outputs),
    with the same numbers both ways."""
    from squareseq.data.squares import pack_padded

    torch.manual_seed(0)
    bidirectional = bidirectional and name not in ("conv1d", "square-conv1d")
    model = _model(name, n_outputs, bidirectional)
    lengths_t = torch.tensor(lengths)
    x = torch.randn(len(lengths), max(lengths), 2)
    out = model(x, lengths_t)
    assert out.shape == (len(lengths), n_outputs)
    assert torch.allclose(out, model(pack_padded(x, lengths_t)), atol=1e-6)


def test_conv1d_ignores_padding_values():
    """Conv1d with lengths zeroes windows past each end: the padding's values do not matter."""
    torch.manual_seed(0)
    model = SquareConv1d()
    x = torch.randn(3, 4, 2)
    lengths = torch.tensor([2, 3, 4])
    noisy = x.clone()
    noisy[0, 2:] = 99.0
    noisy[1, 3:] = -99.0
    assert torch.equal(model(x, lengths), model(noisy, lengths))


@pytest.mark.parametrize(
    "model",
    [
        SquareModel(2, 2, 1),
        SquareModel(2, 4, 8, cell="lstm", num_layers=2, bidirectional=True),
        SquareModel(2, 2, 1, output_activation="sigmoid", cell="gru"),
        SquareConv1d(2, 5, 8, channels=3, kernel_size=3),
    ],
)
def test_config_rebuilds_the_model(model):
    """build_model(**model.config()) builds a model of the same class and architecture whose
    state_dict loads the original's and gives the same outputs."""
    rebuilt = build_model(**model.config())
    assert type(rebuilt) is type(model) and rebuilt.config() == model.config()
    rebuilt.load_state_dict(model.state_dict())
    x = torch.randn(3, model.config().get("seq_len", 4), 2)
    assert torch.equal(rebuilt(x), model(x))


def test_default_config_keeps_the_tutorial_keys():
    """The default model's config still says SquareModel and the tutorial's arguments."""
    config = SquareModel(2, 2, 1).config()
    assert config["name"] == "SquareModel" and config["cell"] == "rnn"
    assert (config["n_features"], config["hidden_dim"], config["n_outputs"]) == (2, 2, 1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(name="transformer"), "unknown model 'transformer'"),
        (dict(name="conv1d", bidirectional=True), "recurrent models only"),
        (dict(name="square-conv1d", bidirectional=True), "recurrent models only"),
        (dict(name="square-conv1d", num_layers=2), "recurrent models only"),
        (dict(name="gru", cell="lstm"), "conflicts"),
        (dict(name="SquareModel", cell="elman"), "cell must be one of"),
        (dict(name="rnn", hidden_dim=0), "hidden_dim must be a positive integer"),
        (dict(name="square-conv1d", seq_len=1), "kernel_size (2) must not exceed seq_len (1)"),
        (dict(name="rnn", output_activation="softmax"), "output_activation"),
    ],
)
def test_build_model_rejects_bad_arguments(kwargs, message):
    """Bad model arguments raise ValueError with one line saying what is wrong."""
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_model(**kwargs)


def test_wrong_batch_layout_is_a_clear_error():
    """A (N, F, L) or 2-D batch is refused with the expected layout in the message."""
    with pytest.raises(ValueError, match=r"expected a batch of shape \(N, L, 2\)"):
        SquareModel(2, 2, 1)(torch.randn(4, 2))
    with pytest.raises(ValueError, match="at most seq_len=4"):
        SquareConv1d()(torch.randn(4, 6, 2))
