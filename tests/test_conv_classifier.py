"""Tests for squareseq.models.conv.ConvClassifier (``--model conv1d``): shapes, padding that never
counts, packed batches, shapes known before building, config round trips, training, refusals."""
import pytest
import torch
from torch.nn import functional

from squareseq.config import RunConfig
from squareseq.data.squares import make_tensors, pack_padded
from squareseq.errors import ModelError
from squareseq.models.conv import ConvClassifier
from squareseq.models.networks import SquareConv1d, build_model, parameter_shapes
from squareseq.sizes import activation_bytes, effective_dilation, parameter_count

torch.set_num_threads(1)


def _model(seed=0, train_steps=2, **kwargs):
    """A conv1d model whose normalisations have seen ``train_steps`` training batches (so their
    running statistics are not the initial ones), in evaluation mode."""
    torch.manual_seed(seed)
    sizes = dict(n_features=3, hidden_dim=6, n_outputs=4, num_layers=3)
    model = build_model("conv1d", **{**sizes, **kwargs})
    for _ in range(train_steps):
        model(3 * torch.randn(8, 6, model.n_features) + 1, torch.tensor([6, 1, 2, 3, 4, 5, 6, 6]))
    return model.eval()


@pytest.mark.parametrize("kwargs", [dict(), dict(pooling="max"), dict(num_layers=1, kernel_size=1),
                                    dict(kernel_size=4, dilation=3), dict(n_outputs=1)])
@pytest.mark.parametrize("steps", [1, 3, 40])
def test_shapes_for_any_length(kwargs, steps):
    """(N, L, F) -> (N, n_outputs) for one step or forty: nothing is tied to the length."""
    model = _model(**kwargs)
    x = torch.randn(5, steps, 3)
    assert model(x).shape == (5, model.n_outputs)
    lengths = torch.tensor([steps, 1, steps, max(steps // 2, 1), steps])
    assert model(x, lengths).shape == (5, model.n_outputs)


@pytest.mark.parametrize("pooling", ["avg", "max"])
@pytest.mark.parametrize("kernel_size", [2, 3, 5])
def test_more_padding_changes_no_logit(pooling, kernel_size):
    """In evaluation, a sequence's logits are the same alone, padded with zeros, padded with garbage
    (even NaN), or in a longer batch beside other sequences."""
    model = _model(pooling=pooling, kernel_size=kernel_size)
    torch.manual_seed(1)
    x = torch.randn(4, 9, 3)
    lengths = torch.tensor([9, 4, 1, 6])
    alone = torch.cat([model(x[i:i + 1, :n]) for i, n in enumerate(lengths.tolist())])
    batched = model(x, lengths)
    longer = torch.cat([x, torch.full((4, 30, 3), float("nan"))], dim=1)
    garbage = x.clone()
    for i, n in enumerate(lengths.tolist()):
        garbage[i, n:] = 1e6 * (i + 1)
    for other in (batched, model(longer, lengths), model(garbage, lengths)):
        assert torch.allclose(other, alone, atol=1e-5), (other - alone).abs().max()


@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_in_training_more_padding_changes_neither_logits_nor_running_statistics(pooling):
    """The normalisation's batch statistics count the real steps only: the same batch padded
    further gives the same logits, gradients and running statistics."""
    x = torch.randn(4, 9, 3)
    lengths = torch.tensor([9, 4, 1, 6])
    longer = torch.cat([x, torch.full((4, 20, 3), 7.0)], dim=1)
    results = []
    for batch in (x, longer):
        model = _model(pooling=pooling, train_steps=0).train()
        out = model(batch, lengths)
        out.square().sum().backward()
        results.append((out, [p.grad for p in model.parameters()], list(model.buffers())))
    (out, grads, buffers), (out2, grads2, buffers2) = results
    assert torch.allclose(out, out2, atol=1e-5)
    assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(grads, grads2))
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(buffers, buffers2))
    assert buffers[2].item() == 1  # num_batches_tracked of the first normalisation


def test_masked_normalisation_is_batch_norm_over_the_real_steps():
    """Training statistics over the real steps equal nn.BatchNorm1d's over those steps alone."""
    from squareseq.models.conv import MaskedBatchNorm1d

    torch.manual_seed(0)
    ours, theirs = MaskedBatchNorm1d(4), torch.nn.BatchNorm1d(4)
    h = torch.randn(3, 4, 5)
    mask = (torch.arange(5) < torch.tensor([5, 2, 3])[:, None]).unsqueeze(1)
    out = ours(h, mask)
    real = torch.cat([h[i, :, :n] for i, n in enumerate([5, 2, 3])], dim=1).unsqueeze(0)  # (1, 4, 10)
    expected = theirs(real)
    assert torch.allclose(torch.cat([out[i, :, :n] for i, n in enumerate([5, 2, 3])], dim=1), expected[0], atol=1e-5)
    assert torch.allclose(ours.running_mean, theirs.running_mean) and torch.allclose(ours.running_var,
                                                                                     theirs.running_var)
    assert ours(torch.randn(1, 4, 1)).shape == (1, 4, 1)  # one value per channel: normalised, not refused


@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_packed_equals_padded_with_lengths(pooling):
    model = _model(pooling=pooling)
    x = torch.randn(6, 8, 3)
    lengths = torch.tensor([3, 8, 1, 5, 8, 2])
    assert torch.equal(model(pack_padded(x, lengths)), model(x, lengths))


def test_full_lengths_equal_no_lengths():
    model = _model()
    x = torch.randn(3, 7, 3)
    assert torch.allclose(model(x, torch.tensor([7, 7, 7])), model(x), atol=1e-6)


def test_pooling_reads_the_real_steps_only():
    """avg: the mean of the last layer's responses over the real steps; max: their maximum."""
    for pooling, reduce in (("avg", lambda h: h.mean(dim=1)), ("max", lambda h: h.amax(dim=1))):
        model = _model(pooling=pooling)
        x = torch.randn(2, 6, 3)
        lengths = torch.tensor([6, 2])
        h, _ = model.steps(x, lengths)
        assert torch.equal(h[1, :, 2:], torch.zeros(6, 4))
        expected = torch.stack([reduce(h[0]), reduce(h[1, :, :2])])
        assert torch.allclose(model.features(x, lengths), expected, atol=1e-6)


@pytest.mark.parametrize("kernel_size", [2, 3, 4, 5])
def test_capped_dilation_changes_no_output(kernel_size):
    """Layer i's dilation is capped at 2L+1 (past it only padding is read, so the cap bounds the
    padding); the output equals a plain 'same'-padded convolution at the full dilation."""
    model = _model(num_layers=4, dilation=7, kernel_size=kernel_size, hidden_dim=3)
    x = torch.randn(2, 5, 3)
    assert effective_dilation(7, 3, 5) == 11 < 7 ** 3
    h = x.transpose(1, 2)
    for layer, (conv, norm) in enumerate(zip(model.convs, model.norms)):
        total = 7 ** layer * (kernel_size - 1)
        h = torch.relu(norm(functional.conv1d(functional.pad(h, (total // 2, total - total // 2)), conv.weight,
                                              conv.bias, dilation=7 ** layer)))
    assert torch.allclose(model.steps(x)[0], h, atol=1e-6)


GRID = [dict(n_features=f, hidden_dim=h, n_outputs=o, num_layers=n, kernel_size=k, dilation=d, pooling=p,
             reference_logit=r, output_activation=a)
        for f, h, o, n, k, d, p, r, a in [
            (1, 1, 1, 1, 1, 1, "avg", False, None), (2, 8, 2, 3, 5, 2, "max", True, None),
            (12, 64, 9, 3, 5, 2, "avg", False, None), (3, 4, 1, 5, 2, 3, "max", False, "sigmoid"),
            (7, 16, 8, 2, 8, 1, "avg", True, None)]]


@pytest.mark.parametrize("kwargs", GRID)
def test_parameter_shapes_are_the_built_models(kwargs):
    """Shapes (names and order) known before building, so a checkpoint is checked before any allocation,
    and parameter_count counts them (one classifier row more with a reference logit: an upper bound)."""
    model = build_model("conv1d", **kwargs)
    built = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert list(parameter_shapes("conv1d", **kwargs).items()) == built
    assert list(parameter_shapes(**model.config()).items()) == built
    counted = parameter_count("conv1d", **{k: kwargs[k] for k in ("n_features", "hidden_dim", "n_outputs",
                                                                   "num_layers", "kernel_size")})
    extra = (kwargs["hidden_dim"] + 1) if kwargs["reference_logit"] else 0
    assert counted == sum(p.numel() for p in model.parameters()) + extra


@pytest.mark.parametrize("kwargs", GRID)
def test_config_rebuilds_the_model(kwargs):
    torch.manual_seed(0)
    model = build_model("conv1d", **kwargs)
    rebuilt = build_model(**model.config())
    assert type(rebuilt) is ConvClassifier and rebuilt.config() == model.config()
    assert model.config()["name"] == "ConvClassifier"
    model(torch.randn(4, 6, kwargs["n_features"]))  # running statistics of their own
    rebuilt.load_state_dict(model.state_dict())
    x = torch.randn(3, 6, kwargs["n_features"])
    assert torch.equal(rebuilt.eval()(x), model.eval()(x))


def test_a_checkpoint_is_rebuilt_and_a_tampered_one_refused_in_one_line():
    from squareseq.runs.inference import model_from_checkpoint, stored_config
    from squareseq.training.checkpoint import CheckpointError

    model = _model()
    data = {"model_config": model.config(), "model_state_dict": model.state_dict()}
    x = torch.randn(2, 5, 3)
    assert torch.equal(model_from_checkpoint(data, "ck.pt")(x), model.eval()(x))
    for change, words in ((dict(pooling="median"), "pooling must be one of: avg, max"),
                          (dict(dilation=10**9), "dilation must be an integer in [1, 4096]"),
                          (dict(kernel_size=3), "convs.0.weight has shape (6, 3, 5) in the checkpoint")):
        with pytest.raises(CheckpointError) as info:
            model_from_checkpoint({**data, "model_config": {**model.config(), **change}}, "ck.pt")
        assert words in str(info.value) and "\n" not in str(info.value)
    run = RunConfig(model="conv1d", hidden_dim=6, num_layers=3).to_dict()
    assert stored_config({**data, "run_config": run}, "ck.pt").model == "conv1d"
    with pytest.raises(CheckpointError, match=r"\(pooling 'avg'\) and its run_config \(pooling 'max'\)"):
        stored_config({**data, "run_config": {**run, "pooling": "max"}}, "ck.pt")


def test_square_conv1d_is_the_books_model_whatever_the_conv_options():
    """--model square-conv1d builds the chapter's one-filter, kernel-2 SquareConv1d, bit for bit (the
    same weights after the same seed); conv1d's channels and kernel options do not reach it."""
    torch.manual_seed(21)
    book = SquareConv1d(2, 4, 1)
    torch.manual_seed(21)
    ours = build_model("square-conv1d", n_features=2, hidden_dim=64, n_outputs=1, seq_len=4, kernel_size=5)
    assert type(ours) is SquareConv1d and ours.config() == book.config()
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), book.state_dict().values()))
    assert parameter_count("square-conv1d", kernel_size=5) == 9 == sum(p.numel() for p in ours.parameters())
    assert build_model(**ours.config()).config()["name"] == "SquareConv1d"


def test_activation_estimate_counts_every_layer_and_its_padding():
    config = RunConfig(model="conv1d", hidden_dim=8, num_layers=2, kernel_size=3, dilation=2)
    rows, steps, features = 128, 4, 2
    values = steps * features + features * (steps + 1 * 2) + 4 * 8 * steps + 8 * (steps + 2 * 2) + 4 * 8 * steps
    assert activation_bytes(config) == 2 * 4 * rows * values
    huge = config.replace(num_layers=64, dilation=64)  # the padding is capped with the dilation: no overflow
    assert activation_bytes(huge) < 2**30


@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_learns_the_squares_direction_of_variable_length_sequences(pooling):
    """Seeded: a small conv1d learns clockwise vs counter-clockwise from 2-4 points (packed batches)."""
    x, y, lengths = make_tensors(256, seed=13, variable_len=True, float_labels=False)
    x_test, y_test, lengths_test = make_tensors(256, seed=19, variable_len=True, float_labels=False)
    torch.manual_seed(21)
    model = build_model("conv1d", n_features=2, hidden_dim=16, n_outputs=2, num_layers=2, kernel_size=3,
                        pooling=pooling)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    generator = torch.Generator().manual_seed(42)
    for _ in range(40):
        for batch in torch.randperm(len(x), generator=generator).split(32):
            optimizer.zero_grad()
            loss = functional.cross_entropy(model(pack_padded(x[batch], lengths[batch])), y[batch])
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(x_test, lengths_test).argmax(1) == y_test).float().mean().item()
    assert accuracy > 0.95


def test_reference_logit_pins_the_first_and_sigmoid_gives_probabilities():
    model = _model(reference_logit=True)
    out = model(torch.randn(3, 4, 3))
    assert torch.equal(out[:, 0], torch.zeros(3))
    probabilities = _model(n_outputs=1, output_activation="sigmoid")(torch.randn(3, 4, 3))
    assert ((probabilities > 0) & (probabilities < 1)).all()


@pytest.mark.parametrize("call, message", [
    (lambda: build_model("conv1d", pooling="median"), "pooling must be one of: avg, max, not 'median'"),
    (lambda: build_model("conv1d", bidirectional=True), "bidirectional applies to recurrent models only, not conv1d"),
    (lambda: build_model("conv1d", hidden_dim=0), "hidden_dim must be a positive integer, got 0"),
    (lambda: build_model("conv1d", dilation=0), "dilation must be a positive integer, got 0"),
    (lambda: build_model("conv1d", reference_logit=True), "reference_logit needs n_outputs >= 2"),
    (lambda: build_model("square-conv1d", num_layers=3), "not square-conv1d (the book's one-layer convolution"),
    (lambda: _model()(torch.randn(2, 3, 5)), "expected a batch of shape (N, L, 3) (batch first), got (2, 3, 5)"),
    (lambda: _model()(torch.randn(2, 3, 3), torch.tensor([0, 3])), "lengths must lie in [1, 3]"),
    (lambda: _model()(torch.randn(2, 3, 3), torch.tensor([4, 3])), "lengths must lie in [1, 3]"),
    (lambda: _model()(torch.randn(2, 3, 3), torch.tensor([3])), "lengths must have shape (2,)"),
])
def test_refusals_are_one_line(call, message):
    with pytest.raises(ModelError) as info:
        call()
    assert message in str(info.value) and "\n" not in str(info.value)
