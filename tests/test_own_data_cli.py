"""Own data end to end through the command line: an archive .ts file trained with the defaults
for data, an early-stopped run that plot, evaluate and predict read from best.pt, and the
defaults a --data run starts from."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from squareseq.cli import main
from squareseq.config import DATA_DEFAULTS, GENERATED_DEFAULTS, RunConfig

FAST = ["--epochs", "4", "--hidden-dim", "4", "--no-figures", "--quiet"]


def _archive_file(name: str) -> Path:
    pytest.importorskip("aeon")
    import aeon.datasets

    path = Path(aeon.datasets.__file__).parent / "data" / name / f"{name}_TRAIN.ts"
    if not path.exists():
        pytest.skip(f"aeon ships no {name}")
    return path


def test_data_runs_start_from_the_data_defaults_and_squares_from_the_tutorials():
    data, squares = RunConfig(data="x.npz"), RunConfig()
    assert {k: getattr(data, k) for k in DATA_DEFAULTS} == DATA_DEFAULTS
    assert {k: getattr(squares, k) for k in GENERATED_DEFAULTS} == GENERATED_DEFAULTS
    # what is given is kept; a stored configuration is read back as written
    given = RunConfig(data="x.npz", model="lstm", hidden_dim=3, standardize=False, early_stopping=0)
    assert (given.model, given.hidden_dim, given.standardize, given.early_stopping) == ("lstm", 3, False, 0)
    assert RunConfig.from_dict(given.to_dict()) == given


def test_an_archive_ts_file_trains_with_its_own_split_and_names(tmp_path):
    """ItalyPowerDemand_TRAIN.ts beside its _TEST.ts: the archive's split, labels '1' and '2'
    kept as the class names, and predict names them too."""
    path = _archive_file("ItalyPowerDemand")
    out = tmp_path / "run"
    assert main(["train", "--data", str(path), *FAST, "--out", str(out)]) == 0
    record = json.loads((out / "metrics.json").read_text())
    assert record["data"]["split"] == "file"
    assert record["data"]["n_train"] + record["data"]["n_val"] == 67  # the archive's 67 training series
    assert record["data"]["n_test"] == 1029
    assert record["class_names"] == ["1", "2"]
    assert record["validation"] == "split"


def test_an_early_stopped_run_is_tested_plotted_and_predicted_with_its_best_epoch(tmp_path, capsys):
    """Patience 1 on noise stops early; best.pt holds the best epoch, evaluate and predict read
    it (their answers agree), and plot redraws the run from it."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 8, 3)).astype(np.float32)
    y = np.array(["a", "b", "c"])[np.arange(60) % 3]
    np.savez(tmp_path / "noise.npz", X=x, y=y)
    out = tmp_path / "run"
    argv = ["train", "--data", str(tmp_path / "noise.npz"), "--epochs", "40", "--early-stopping", "1",
            "--hidden-dim", "4", "--lr", "0.05", "--quiet", "--no-animation", "--out", str(out)]
    assert main(argv) == 0
    record = json.loads((out / "metrics.json").read_text())
    assert record["stopped_epoch"] is not None and record["stopped_epoch"] < 40
    best = torch.load(out / "best.pt", weights_only=True)
    assert best["epoch"] == record["best_epoch"] < torch.load(out / "checkpoint.pt", weights_only=True)["epoch"]
    capsys.readouterr()
    assert main(["plot", str(out), "--no-animation"]) == 0
    assert "best.pt" in (out / "report.html").read_text()
    assert main(["evaluate", str(out)]) == 0
    evaluated = capsys.readouterr().out
    assert f"accuracy: {record['test']['accuracy']:.4f}" in evaluated


def test_a_convolution_on_own_data_draws_its_pooled_features_by_class():
    """The default model for data has no hidden states, but its classifier reads one pooled vector
    per sequence: hidden_final.png draws those, over the predicted-class map, and is not listed
    as skipped; the step-by-step figures are, with the reason."""
    import matplotlib

    matplotlib.use("Agg")
    from squareseq.figures import class_hidden as ch
    from squareseq.figures.figure_set import figure_skip_reasons
    from squareseq.models.networks import build_model

    torch.manual_seed(0)
    model = build_model("conv1d", 3, 8, 3, num_layers=2, kernel_size=3).eval()
    x = torch.randn(12, 10, 3)
    lengths = torch.tensor([10, 7, 4] * 4)
    view = ch.class_view(model, x, torch.arange(12) % 3, lengths, ["a", "b", "c"])
    assert view.what == "Pooled features" and view.final.shape == (12, 2)
    with torch.no_grad():
        expected = torch.softmax(model(x, lengths), dim=1).numpy()
    np.testing.assert_allclose(view.probs, expected, rtol=1e-5, atol=1e-6)  # the map's verdict is the model's
    fig = ch.plot_class_final(view)
    title = fig.texts[0].get_text()
    assert title.startswith("Pooled features of 12 test sequences\nPCA projection of 8-D pooled features"), title
    reasons = figure_skip_reasons(model, None, data_file="mine.npz", class_names=["a", "b", "c"])
    assert "hidden_final.png" not in reasons
    assert reasons["hidden_steps.png"] == "the model is a convolution: no hidden states"
