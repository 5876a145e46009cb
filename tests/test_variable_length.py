"""Tests for variable-length sequences: packing, loaders, and what padding alone gets wrong."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.data import DataLoader

from squareseq import StepByStep
from squareseq.data.loaders import PackedLoader, SequenceDataset, collate_packed, make_variable_length_loader
from squareseq.data.squares import as_model_input, generate_sequences, pack_padded, to_packed, to_tensors
from squareseq.models.networks import SquareModel, build_model
from squareseq.training.loop import make_train_step, run_epoch

pytestmark = pytest.mark.exact  # bit-for-bit comparisons: CI runs them again on portable kernels

torch.set_num_threads(1)


def _ragged(lengths, seed=0):
    rng = np.random.RandomState(seed)
    return [rng.randn(n, 2).astype(np.float32) for n in lengths]


def test_variable_len_gives_two_to_four_points():
    """generate_sequences(variable_len=True) gives sequences of 2, 3 or 4 points of 2 features."""
    points, _ = generate_sequences(n=200, variable_len=True, seed=19)
    assert {len(p) for p in points} == {2, 3, 4}
    assert all(p.shape[1] == 2 for p in points)


def test_padding_without_packing_reads_the_wrong_hidden_state():
    """In a zero-padded batch, output[:, -1] of a short sequence is its state after also reading
    the padding zeros, not after its last real point; packing reads the real last step."""
    torch.manual_seed(0)
    model = SquareModel(2, 2, 1)
    short, full = _ragged([2, 4])
    x, _, lengths = to_tensors([short, full], [0, 1])  # (2, 4, 2), lengths [2, 4]
    alone = model(torch.from_numpy(short)[None])  # the short sequence on its own: the truth

    padded_only = model(x)  # runs on through two padding steps
    assert not torch.allclose(padded_only[0], alone[0])
    out, _ = model.basic_rnn(x)
    assert not torch.allclose(out[0, -1], out[0, 1])  # the padding moved the hidden state

    assert torch.allclose(model(x, lengths)[0], alone[0], atol=1e-6)  # packed: right state
    assert torch.allclose(model(x, lengths)[1], padded_only[1], atol=1e-6)  # full ones agree


@pytest.mark.parametrize("cell, bidirectional", [("rnn", False), ("gru", True), ("lstm", True)])
@settings(max_examples=15, deadline=None)
@given(lengths=st.lists(st.integers(1, 4), min_size=2, max_size=8), data=st.data())
def test_unsorted_batch_gives_the_sorted_batchs_outputs(cell, bidirectional, lengths, data):
    """Packing with enforce_sorted=False: a batch in any order gives each sequence the output it
    gets in the length-sorted batch, and the output of running it alone."""
    torch.manual_seed(0)
    model = SquareModel(2, 3, 2, cell=cell, bidirectional=bidirectional)
    seqs = _ragged(lengths)
    perm = data.draw(st.permutations(range(len(seqs))))
    shuffled = [seqs[i] for i in perm]
    order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
    out_shuffled = model(to_packed(shuffled))
    out_sorted = model(to_packed([seqs[i] for i in order]))
    by_seq_shuffled = {perm[k]: out_shuffled[k] for k in range(len(seqs))}
    by_seq_sorted = {order[k]: out_sorted[k] for k in range(len(seqs))}
    for i, seq in enumerate(seqs):
        alone = model(torch.from_numpy(seq)[None])[0]
        assert torch.allclose(by_seq_shuffled[i], by_seq_sorted[i], atol=1e-6)
        assert torch.allclose(by_seq_shuffled[i], alone, atol=1e-6)


def test_hidden_state_of_a_packed_batch_is_in_input_order():
    """After a packed forward pass, .hidden[:, i] belongs to the i-th input sequence."""
    torch.manual_seed(0)
    model = SquareModel(2, 2, 1, cell="gru")
    seqs = _ragged([2, 4, 3])
    model(to_packed(seqs))
    packed_hidden = model.hidden.clone()
    for i, seq in enumerate(seqs):
        model(torch.from_numpy(seq)[None])
        assert torch.allclose(packed_hidden[:, i], model.hidden[:, 0], atol=1e-6)


@pytest.mark.parametrize("shuffle", [True, False])
def test_packed_loader_yields_dataloaders_batches(shuffle):
    """PackedLoader yields the batches DataLoader + collate_packed yields after the same seed,
    and leaves torch's global generator in the same state."""
    points, labels = generate_sequences(n=37, variable_len=True, seed=3)
    torch.manual_seed(5)
    ours = list(make_variable_length_loader(points, labels, batch_size=8, shuffle=shuffle))
    after_ours = torch.rand(1)
    torch.manual_seed(5)
    theirs = list(DataLoader(SequenceDataset(points, labels), batch_size=8, shuffle=shuffle,
                             collate_fn=collate_packed))
    after_theirs = torch.rand(1)
    assert len(ours) == len(theirs) == 5
    for (xa, ya), (xb, yb) in zip(ours, theirs):
        assert torch.equal(xa.data, xb.data) and torch.equal(xa.batch_sizes, xb.batch_sizes)
        assert torch.equal(xa.unsorted_indices, xb.unsorted_indices) and torch.equal(ya, yb)
    assert torch.equal(after_ours, after_theirs)


def test_collate_packed_makes_a_packed_batch_and_label_column():
    """collate_packed turns [(x_i, y_i)] into a PackedSequence and (B, 1) float labels."""
    dataset = SequenceDataset(_ragged([3, 2, 4]), [1, 0, 1])
    x, y = collate_packed([dataset[i] for i in range(3)])
    assert isinstance(x, nn.utils.rnn.PackedSequence)
    assert y.shape == (3, 1) and y.dtype == torch.float32
    x_long, y_long = collate_packed([SequenceDataset(_ragged([2]), [5], float_labels=False)[0]])
    assert y_long.dtype == torch.int64 and y_long.shape == (1,)


def test_packed_batches_train_through_the_unchanged_loop():
    """run_epoch moves a PackedSequence with .to(device) and the models train on it."""
    points, labels = generate_sequences(n=32, variable_len=True, seed=13)
    loader = make_variable_length_loader(points, labels, batch_size=16, shuffle=True)
    torch.manual_seed(21)
    model = build_model("gru")
    step = make_train_step(model, nn.BCEWithLogitsLoss(), torch.optim.Adam(model.parameters(), lr=0.01))
    before = [p.detach().clone() for p in model.parameters()]
    loss = run_epoch(step, loader)
    assert np.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_predict_and_correct_accept_variable_length_input():
    """StepByStep.predict packs a list of arrays of different lengths (one row per sequence, in
    order) and correct/loader_apply count packed batches."""
    torch.manual_seed(21)
    model = build_model("lstm", bidirectional=True)
    sbs = StepByStep(model, nn.BCEWithLogitsLoss(), torch.optim.Adam(model.parameters(), lr=0.01))
    points, labels = generate_sequences(n=20, variable_len=True, seed=19)
    predictions = sbs.predict(points)
    assert predictions.shape == (20, 1)
    for i in (0, 7, 19):
        assert np.allclose(predictions[i], sbs.predict(points[i][None]), atol=1e-6)
    loader = make_variable_length_loader(points, labels, batch_size=8)
    counts = StepByStep.loader_apply(loader, sbs.correct)
    assert counts.shape == (2, 2) and int(counts[:, 1].sum()) == 20


def test_as_model_input_passes_and_converts():
    """as_model_input packs ragged lists, stacks equal-length lists and passes tensors through."""
    assert isinstance(as_model_input(_ragged([2, 3])), nn.utils.rnn.PackedSequence)
    assert as_model_input(_ragged([3, 3])).shape == (2, 3, 2)
    packed = to_packed(_ragged([1, 2]))
    assert as_model_input(packed) is packed


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: to_packed([]), "empty"),
        (lambda: to_packed([np.zeros((0, 2))]), r"L >= 1"),
        (lambda: pack_padded(torch.zeros(2, 3, 2), torch.tensor([1, 4])), r"lengths must lie in \[1, 3\]"),
        (lambda: PackedLoader(torch.zeros(2, 3, 2), None, torch.zeros(3)), "same first dimension"),
        (lambda: SequenceDataset(_ragged([2]), [0, 1]), "1 sequences but 2 labels"),
    ],
)
def test_bad_variable_length_input_is_a_clear_error(call, message):
    """Bad ragged input raises ValueError with one line saying what is wrong."""
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.slow
def test_bidirectional_lstm_on_packed_variable_length_reaches_97_percent():
    """Acceptance: a bidirectional LSTM trained on packed variable-length sequences (tutorial
    settings) classifies at least 97% of a variable-length test set (seed 19)."""
    train_p, train_y = generate_sequences(n=128, variable_len=True, seed=13)
    test_p, test_y = generate_sequences(n=128, variable_len=True, seed=19)
    train_loader = make_variable_length_loader(train_p, train_y, batch_size=16, shuffle=True)
    test_loader = make_variable_length_loader(test_p, test_y, batch_size=16)
    torch.manual_seed(21)
    model = build_model("lstm", hidden_dim=2, bidirectional=True)
    sbs = StepByStep(model, nn.BCEWithLogitsLoss(), torch.optim.Adam(model.parameters(), lr=0.01))
    sbs.set_loaders(train_loader, test_loader)
    sbs.train(100, seed=42)
    counts = StepByStep.loader_apply(test_loader, sbs.correct)
    assert int(counts[:, 0].sum()) >= 0.97 * 128


def test_make_loader_picks_the_loader_by_lengths():
    """make_loader gives the tutorial's DataLoader for fixed-length tensors and a PackedLoader
    (packed batches) when lengths are given."""
    from squareseq.data.loaders import make_loader

    x, y, lengths = to_tensors(*generate_sequences(n=20, seed=1))
    fixed = make_loader(x, y, lengths, batch_size=8)
    assert isinstance(fixed, DataLoader) and next(iter(fixed))[0].shape == (8, 4, 2)
    x, y, lengths = to_tensors(*generate_sequences(n=20, variable_len=True, seed=1))
    packed = make_loader(x, y, lengths, batch_size=8, shuffle=True)
    assert isinstance(packed, PackedLoader) and len(packed) == 3
    assert isinstance(next(iter(packed))[0], nn.utils.rnn.PackedSequence)
