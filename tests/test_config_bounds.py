"""Bounds squareseq.config sets from the configuration alone, before torch or any allocation: threads, the
activation memory of a run's largest forward pass, and option pairs that cannot work together."""
import pytest

from squareseq.config import (
    MAX_ACTIVATION_BYTES,
    MAX_SEQUENCES,
    MAX_THREADS,
    RunConfig,
    RunOptions,
    activation_bytes,
    check_activation_memory,
)
from squareseq.errors import ConfigError

pytestmark = pytest.mark.hardening


def test_threads_are_bounded():
    """`--threads 100000` crashed the OpenMP runtime (segfault): at most four per CPU, 1024 in all."""
    assert 4 <= MAX_THREADS <= 1024
    RunOptions(threads=MAX_THREADS).validate()
    with pytest.raises(ConfigError) as info:
        RunOptions(threads=100_000).validate()
    assert str(info.value) == (f"threads must be 'auto' or an integer in [1, {MAX_THREADS}] (MAX_THREADS: 4 per "
                               "CPU), got 100000")


def test_threads_are_bounded_for_library_calls_too():
    from squareseq.errors import SquareseqError
    from squareseq.training.threads import resolve_threads

    assert resolve_threads(MAX_THREADS) == MAX_THREADS
    with pytest.raises(SquareseqError, match=rf"^threads must be 'auto', None or an integer in \[1, {MAX_THREADS}\]"):
        resolve_threads(MAX_THREADS + 1)


def test_square_conv1d_with_the_pinned_logit_loss_is_refused_at_validation():
    """`--model square-conv1d --loss ce` failed inside build_model; now the config says which losses fit."""
    with pytest.raises(ConfigError) as info:
        RunConfig(model="square-conv1d", loss="ce").validate()
    assert info.value.render(lambda name: "--" + name) == (
        "--loss ce pins the first logit of a recurrent model at 0; --model square-conv1d has no such logit: use "
        "--loss ce-free (one free logit per class) or bce-logits")
    RunConfig(model="square-conv1d", loss="ce-free").validate()


def test_activation_estimate_grows_with_every_size_and_is_small_for_the_tutorial():
    base = RunConfig()
    assert activation_bytes(base) == 2 * 4 * 128 * 4 * (2 + 1 * 1 * 2 * 2)  # 128 test rows, rnn H=2
    for change in (dict(n_test=256), dict(hidden_dim=3), dict(num_layers=2), dict(bidirectional=True),
                   dict(model="gru"), dict(model="lstm"), dict(batch_size=1000, n_train=1000)):
        assert activation_bytes(base.replace(**change)) > activation_bytes(base), change
    assert activation_bytes(base, models=3) == 3 * activation_bytes(base)
    assert activation_bytes(base.replace(model="lstm")) > activation_bytes(base.replace(model="gru"))


def test_a_run_whose_forward_pass_needs_too_much_memory_is_refused_from_its_config():
    """An LSTM of 256 x 64 layers (34M parameters, under the parameter bound) evaluated on a million sequences at
    once would need a terabyte: refused by validate(), naming the bound and the options to change."""
    config = RunConfig(model="lstm", hidden_dim=256, num_layers=64, n_test=MAX_SEQUENCES)
    with pytest.raises(ConfigError) as info:
        config.validate()
    needed = activation_bytes(config)
    assert needed > MAX_ACTIVATION_BYTES
    assert info.value.render(lambda name: "--" + name.replace("_", "-")) == (
        f"this run's largest forward pass (1,000,000 sequences of 4 steps at once) would hold about "
        f"{needed / 1e9:.1f} GB of activations; squareseq allows at most 4.3 GB (MAX_ACTIVATION_BYTES): choose a "
        "smaller --n-test, --batch-size, --hidden-dim or --num-layers")
    with pytest.raises(ConfigError, match=r"^this run's largest forward pass \(256 models on 128 sequences"):
        check_activation_memory(RunConfig(hidden_dim=4096), models=256)
    RunConfig(n_test=MAX_SEQUENCES, n_train=MAX_SEQUENCES).validate()  # the tutorial's model takes the largest sets


def test_stored_configs_are_read_through_the_same_bounds():
    """`n_test: 10000000` in a stored config made `evaluate` take 45 s and 4.9 GB; booleans given as strings were
    taken as true; `data: 123` was an internal error. Each is refused by the one check every config passes."""
    for change, message in (
            ({"n_test": 10_000_000}, "n_test must be an integer in [1, 1000000], got 10000000"),
            ({"variable_len": "yes"}, "variable_len must be true or false, got 'yes'"),
            ({"bidirectional": 1}, "bidirectional must be true or false, got 1"),
            ({"data": 123}, "data must be a file name, got 123"),
            ({"model": "lstm", "hidden_dim": 256, "num_layers": 64, "n_test": 10_000}, "largest forward pass")):
        with pytest.raises(ConfigError) as info:
            RunConfig.from_dict({**RunConfig().to_dict(), **change}, where="ck.pt")
        assert str(info.value).startswith("ck.pt holds an invalid run configuration ("), info.value
        assert message in str(info.value)


def test_parameter_count_defaults_are_the_tutorials_model():
    """parameter_count's defaults describe SquareModel(2, 2, 1): 15 parameters."""
    from squareseq.models.networks import SquareModel
    from squareseq.sizes import parameter_count

    assert parameter_count("rnn") == 15 == sum(p.numel() for p in SquareModel(2, 2, 1).parameters())
    # a convolution longer than its sequences still counts one window (an upper bound, never zero)
    assert parameter_count("square-conv1d", seq_len=1, kernel_size=2) == 2 * 2 + 1 + 1 + 1


def test_the_parameter_check_counts_only_numbers_and_names_the_bound():
    from squareseq.sizes import MAX_PARAMETERS, check_parameter_count

    # not numbers (a string, a bool): the constructors name them; the count is not attempted
    assert check_parameter_count("rnn", {"hidden_dim": "x"}) is None
    assert check_parameter_count("rnn", {"hidden_dim": True}) is None
    check_parameter_count("gru", {"cell": "gru", "bidirectional": True, "hidden_dim": 64})
    with pytest.raises(ConfigError) as info:  # cell and bidirectional are switches, not sizes
        check_parameter_count("lstm", {"cell": "lstm", "bidirectional": True, "hidden_dim": 4096, "num_layers": 64})
    assert str(info.value) == (f"this model would have 25,505,636,353 parameters (408.1 GB to train); squareseq "
                               f"builds at most {MAX_PARAMETERS:,}: choose a smaller hidden_dim, num_layers or "
                               "number of channels")


def test_the_activation_estimate_is_the_documented_formula_and_its_bound_inclusive(monkeypatch):
    """2 (backward) x 4 bytes x models x rows x steps x (inputs + layers x directions x hidden x
    (gates + 1)); a run needing exactly the bound is allowed."""
    from squareseq import sizes

    config = RunConfig()  # the tutorial: 128 test sequences of 4 steps, one RNN layer of 2
    assert sizes.activation_bytes(config) == 2 * 4 * 128 * 4 * (2 + 1 * 1 * 2 * (1 + 1))
    assert sizes.activation_bytes(config.replace(model="lstm", bidirectional=True), models=3) == \
        2 * 4 * 3 * 128 * 4 * (2 + 1 * 2 * 2 * (4 + 1))
    monkeypatch.setattr(sizes, "MAX_ACTIVATION_BYTES", sizes.activation_bytes(config))
    sizes.check_activation_memory(config)
    monkeypatch.setattr(sizes, "MAX_ACTIVATION_BYTES", sizes.activation_bytes(config) - 1)
    with pytest.raises(ConfigError):
        sizes.check_activation_memory(config)


def test_the_convolutions_count_and_estimate_and_the_documented_bounds():
    """The book's convolution (kernel 2 over 4 steps: 3 windows) has 9 parameters, and its
    forward pass keeps 2 values a step beside the inputs; README names the bounds below."""
    from squareseq.config import MAX_EPOCHS, MAX_SEEDS
    from squareseq.models.networks import build_model
    from squareseq.sizes import MAX_PARAMETERS, parameter_count

    assert parameter_count("square-conv1d") == 9 == sum(p.numel() for p in build_model(
        "square-conv1d", n_features=2, seq_len=4).parameters())
    assert activation_bytes(RunConfig(model="square-conv1d")) == 2 * 4 * 128 * 4 * (2 + 2)
    assert (MAX_PARAMETERS, MAX_ACTIVATION_BYTES, MAX_SEQUENCES, MAX_EPOCHS, MAX_SEEDS) == \
        (50_000_000, 4 * 2**30, 1_000_000, 1_000_000, 65_536)
