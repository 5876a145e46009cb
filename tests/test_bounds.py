"""Sizes that come from input are bounded before anything is allocated: a typo on the command
line or a stranger's 23 KB checkpoint cannot ask for gigabytes. The memory cases run in a child
process under an address-space cap, so a regression fails there instead of taking the machine."""
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import squareseq
from squareseq.models.networks import MAX_PARAMETERS, build_model, parameter_count

pytestmark = pytest.mark.hardening

# the squareseq under test (the one pytest imported: a mutant's copy under tools/mutate.py)
SRC = str(Path(squareseq.__file__).resolve().parents[1])


@pytest.mark.parametrize("kwargs", [
    dict(name="rnn"), dict(name="gru", hidden_dim=4), dict(name="lstm", hidden_dim=3, num_layers=3),
    dict(name="lstm", hidden_dim=5, num_layers=2, bidirectional=True, n_features=7, n_outputs=8),
    dict(name="SquareModel", cell="gru", hidden_dim=6, n_outputs=3),
    dict(name="SquareConv1d", n_features=3, seq_len=6, channels=4, kernel_size=3, n_outputs=2),
    dict(name="square-conv1d", n_features=3, seq_len=6, n_outputs=2),
    dict(name="conv1d", n_features=3, hidden_dim=5, num_layers=3, kernel_size=4, n_outputs=2),
])
def test_parameter_count_is_what_build_model_creates(kwargs):
    model = build_model(**kwargs)
    assert parameter_count(**kwargs) == sum(p.numel() for p in model.parameters())


def _capped(code: str, cap_gb: float = 3.0) -> subprocess.CompletedProcess:
    """Runs ``code`` in a fresh interpreter whose address space is capped at ``cap_gb``."""
    prelude = f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({int(cap_gb * 2**30)}, -1))\n"
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"})


def test_huge_descriptions_are_refused_before_allocating():
    """34 GB (LSTM 4096 x 64 layers), 2.2 TB (4096 layers) and a 4096-channel convolution: each a
    one-line ConfigError at once, also from a tampered checkpoint's model_config."""
    proc = _capped("""
        import torch
        from squareseq.errors import ConfigError
        from squareseq.models.networks import build_model
        from squareseq.runs.inference import model_from_checkpoint
        from squareseq.training.checkpoint import CheckpointError
        for kwargs in (dict(name="lstm", hidden_dim=4096, num_layers=64),
                       dict(name="rnn", hidden_dim=4096, num_layers=4096),
                       dict(name="SquareConv1d", n_features=4096, seq_len=4096, channels=4096),
                       dict(name="conv1d", n_features=4096, hidden_dim=4096, num_layers=64)):
            try:
                build_model(**kwargs)
            except ConfigError as exc:
                assert "parameters" in str(exc) and "at most" in str(exc), exc
            else:
                raise SystemExit(f"built {kwargs}")
        data = {"model_config": {"name": "SquareModel", "cell": "lstm", "hidden_dim": 4096, "num_layers": 64},
                "model_state_dict": {}}
        try:
            model_from_checkpoint(data, "tampered.pt")
        except CheckpointError as exc:
            assert "parameters" in str(exc), exc
        print("ok")
    """)
    assert proc.stdout.strip() == "ok", proc.stderr


def test_the_cli_refuses_huge_models_and_sweeps_and_writes_nothing(tmp_path):
    """Exit 2, one line naming the flag and the bound, and no run folder left behind."""
    proc = _capped(f"""
        from squareseq.cli import main
        train = ["train", "--hidden-dim", "4096", "--num-layers", "64", "--model", "lstm",
                 "--out", {str(tmp_path / "big")!r}, "--no-figures", "--quiet"]
        sweep = ["sweep", "--hidden-dim", "4096", "--seeds", "0-255", "--out", {str(tmp_path / "sweep")!r}]
        print(main(train), main(sweep))
    """)
    assert proc.stdout.split() == ["2", "2"], proc.stderr
    train_err, sweep_err = proc.stderr.strip().splitlines()
    assert "--hidden-dim" in train_err and f"{MAX_PARAMETERS:,}" in train_err
    assert "256 models" in sweep_err and "fewer seeds" in sweep_err
    assert not (tmp_path / "big").exists() and not (tmp_path / "sweep").exists()


def test_a_huge_label_is_a_class_name_not_a_huge_allocation(tmp_path):
    """A label of 10**12 in a tiny file once sized a set of 10**12 classes (4.7 GB, then an empty
    MemoryError); labels are mapped to classes by their distinct values now, so it is one more class,
    named, under a 1 GB cap."""
    import numpy as np

    x = np.zeros((6, 3, 2), dtype=np.float32)
    np.savez(tmp_path / "big_label.npz", X=x, y=np.array([0, 1, 0, 1, 0, 10**12], dtype=np.int64))
    proc = _capped(f"""
        from squareseq.data.files import load_npz
        print(load_npz({str(tmp_path / "big_label.npz")!r}).class_names)
    """, cap_gb=1.0)
    assert proc.stdout == "['0', '1', '1000000000000']\n", proc.stderr


def test_the_cli_refuses_huge_seed_lists_forward_passes_and_thread_counts(tmp_path):
    """`sweep --seeds 0-99999999` (4.8 GB list), an LSTM of 256 x 64 layers evaluated on a million sequences at
    once (about a terabyte of activations, though under the parameter bound), `--threads 100000` (a segfault in
    the OpenMP runtime): exit 2, one line naming the bound, no folder, under a 1.5 GB cap."""
    proc = _capped(f"""
        from squareseq.cli import main
        out = {str(tmp_path)!r}
        print(main(["sweep", "--seeds", "0-99999999", "--out", out + "/sweep"]),
              main(["train", "--model", "lstm", "--hidden-dim", "256", "--num-layers", "64", "--n-test", "1000000",
                    "--out", out + "/big", "--no-figures", "--quiet"]),
              main(["train", "--threads", "100000", "--out", out + "/threads", "--no-figures", "--quiet"]))
    """, cap_gb=1.5)
    assert proc.stdout.split() == ["2", "2", "2"], proc.stderr
    seeds, activations, threads = proc.stderr.strip().splitlines()
    assert seeds == ("squareseq: error: --seeds: '0-99999999' holds 100,000,000 seeds; a sweep trains at most "
                     "65,536 (MAX_SEEDS): give fewer seeds")
    assert activations.startswith("squareseq: error: this run's largest forward pass (1,000,000 sequences of 4 "
                                  "steps at once) would hold about ")
    assert "(MAX_ACTIVATION_BYTES): choose a smaller --n-test, --batch-size, --hidden-dim or --num-layers" in activations
    assert threads.startswith("squareseq train: error: argument --threads: expected 'auto' or an integer in [1, ")
    assert list(tmp_path.iterdir()) == []


def test_a_stored_config_asking_for_ten_million_sequences_is_refused_by_evaluate(tmp_path):
    """`n_test: 10000000` in a checkpoint's run_config made `evaluate` take 45 s and 4.9 GB: stored configs pass
    the CLI's bounds when read, so it is one line and exit 2, under a 1 GB cap."""
    import torch

    from squareseq.cli import main

    run = tmp_path / "run"
    assert main(["train", "--epochs", "1", "--n-train", "16", "--n-test", "8", "--no-figures", "--quiet",
                 "--out", str(run)]) == 0
    data = torch.load(run / "checkpoint.pt", weights_only=True)
    data["run_config"]["n_test"] = 10_000_000
    torch.save(data, run / "checkpoint.pt")
    proc = _capped(f"""
        from squareseq.cli import main
        print(main(["evaluate", {str(run)!r}]))
    """, cap_gb=1.0)
    assert proc.stdout.split() == ["2"], proc.stderr
    assert proc.stderr.strip() == (f"squareseq: error: {run / 'checkpoint.pt'} holds an invalid run configuration "
                                   "(--n-test must be an integer in [1, 1000000], got 10000000)")


@pytest.mark.parametrize("kwargs", [
    dict(name="rnn"), dict(name="gru", hidden_dim=4, n_outputs=3), dict(name="lstm", hidden_dim=3, num_layers=3),
    dict(name="lstm", hidden_dim=5, num_layers=2, bidirectional=True, n_features=7, n_outputs=8),
    dict(name="SquareModel", cell="gru", hidden_dim=6, n_outputs=3, reference_logit=True),
    dict(name="rnn", n_outputs=1, output_activation="sigmoid"),
    dict(name="SquareConv1d", n_features=3, seq_len=6, channels=4, kernel_size=3, n_outputs=2),
    dict(name="square-conv1d", n_features=3, seq_len=6, n_outputs=2),
    dict(name="conv1d", n_features=3, hidden_dim=5, num_layers=3, kernel_size=4, n_outputs=2, pooling="max",
         reference_logit=True),
])
def test_parameter_shapes_are_what_build_model_creates(kwargs):
    """The shapes a checkpoint is checked against before building are the built model's, names and order."""
    from squareseq.models.networks import parameter_shapes

    model = build_model(**kwargs)
    assert list(parameter_shapes(**kwargs).items()) == [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


def _tiny_checkpoint(**model_config):
    model = build_model("rnn")
    return {"model_config": {**model.config(), **model_config}, "model_state_dict": model.state_dict()}


def test_checkpoint_tensors_are_checked_against_the_description_before_building(monkeypatch):
    """A 23 KB file whose model_config asks for a large model but whose tensors are tiny: refused from the
    description and the stored shapes, one line naming the key and both shapes, and no model is built."""
    from squareseq.runs import inference
    from squareseq.training.checkpoint import CheckpointError

    def never(**kwargs):
        raise AssertionError("the model was built before its tensors were checked")

    monkeypatch.setattr(inference, "build_model", never)
    with pytest.raises(CheckpointError) as info:
        inference.model_from_checkpoint(_tiny_checkpoint(hidden_dim=1024, num_layers=5, cell="lstm"), "ck.pt")
    assert str(info.value) == ("ck.pt does not fit this model: missing parameter(s) basic_rnn.weight_ih_l1, "
                               "basic_rnn.weight_hh_l1, basic_rnn.bias_ih_l1, basic_rnn.bias_hh_l1, "
                               "basic_rnn.weight_ih_l2, basic_rnn.weight_hh_l2, basic_rnn.bias_ih_l2, "
                               "basic_rnn.bias_hh_l2, basic_rnn.weight_ih_l3, basic_rnn.weight_hh_l3, "
                               "basic_rnn.bias_ih_l3, basic_rnn.bias_hh_l3, basic_rnn.weight_ih_l4, "
                               "basic_rnn.weight_hh_l4, basic_rnn.bias_ih_l4, basic_rnn.bias_hh_l4")
    with pytest.raises(CheckpointError) as info:
        inference.model_from_checkpoint(_tiny_checkpoint(hidden_dim=1024), "ck.pt")
    assert str(info.value) == ("ck.pt does not fit this model: basic_rnn.weight_ih_l0 has shape (2, 2) in the "
                               "checkpoint but (1024, 2) in the model")


def test_run_config_and_model_config_must_describe_the_same_model():
    """A checkpoint whose model_config is not the model its run_config trains (a file mixing two runs) is refused:
    evaluate and plot would otherwise rebuild one run's data for another run's model."""
    from squareseq.config import RunConfig
    from squareseq.runs.inference import stored_config
    from squareseq.training.checkpoint import CheckpointError

    data = {**_tiny_checkpoint(), "run_config": RunConfig(epochs=1).to_dict()}
    assert stored_config(data, "ck.pt").hidden_dim == 2
    for change, message in ((dict(hidden_dim=3), "hidden_dim 2) and its run_config (hidden_dim 3"),
                            (dict(model="gru"), "cell 'rnn') and its run_config (cell 'gru'"),
                            (dict(bidirectional=True), "bidirectional False) and its run_config (bidirectional True"),
                            (dict(model="square-conv1d"),
                             "name 'SquareModel') and its run_config (name 'SquareConv1d'"),
                            (dict(model="conv1d"), "name 'SquareModel') and its run_config (name 'ConvClassifier'")):
        with pytest.raises(CheckpointError) as info:
            stored_config({**data, "run_config": RunConfig(epochs=1, **change).to_dict()}, "ck.pt")
        assert str(info.value) == (f"ck.pt: its model_config ({message}) describe different models: the file was "
                                   "altered or mixes two runs; use the checkpoint the run wrote")


def test_model_config_switches_must_be_booleans():
    """`bidirectional: "yes"` in a model_config was read as true; switches are true or false, nothing else."""
    from squareseq.runs.inference import model_from_checkpoint
    from squareseq.training.checkpoint import CheckpointError

    for key, value in (("bidirectional", "yes"), ("reference_logit", 1)):
        with pytest.raises(CheckpointError) as info:
            model_from_checkpoint(_tiny_checkpoint(**{key: value}), "ck.pt")
        assert str(info.value) == f"ck.pt: model_config {key} must be true or false, got {value!r}"
