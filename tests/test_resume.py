"""Exact resume: N epochs in one go equal k epochs, a checkpoint, and N - k more, bit for bit,
through the Python API and through the CLI in separate processes."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn, optim
from torch.utils.data import DataLoader, TensorDataset

from squareseq import SquareModel, StepByStep, make_tensors
from squareseq.cli import main
from squareseq.training.checkpoint import load

pytestmark = pytest.mark.exact  # bit-for-bit comparisons: CI runs them again on portable kernels

QUICK = ["--n-train", "32", "--n-test", "16", "--no-figures", "--quiet"]
SRC = str(Path(__file__).resolve().parents[1] / "src")


def _trainer(generator=None, scheduler=False, model_seed=21):
    x, y, _ = make_tensors(48, seed=13)
    xv, yv, _ = make_tensors(16, seed=19)
    train_loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, generator=generator)
    val_loader = DataLoader(TensorDataset(xv, yv), batch_size=16)
    torch.manual_seed(model_seed)
    model = SquareModel(2, 2, 1)
    sbs = StepByStep(model, nn.BCEWithLogitsLoss(), optim.Adam(model.parameters(), lr=0.01))
    sbs.set_loaders(train_loader, val_loader)
    if scheduler:
        sbs.set_lr_scheduler(optim.lr_scheduler.StepLR(sbs.optimizer, step_size=2, gamma=0.5))
    return sbs


def _assert_same_run(a: StepByStep, b: StepByStep):
    assert a.losses == b.losses and a.val_losses == b.val_losses and a.total_epochs == b.total_epochs
    assert a.learning_rates == b.learning_rates
    for (name, p), q in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(p, q), name
    for sa, sb in zip(a.optimizer.state_dict()["state"].values(), b.optimizer.state_dict()["state"].values()):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("own_generator,scheduler", [(False, False), (True, True)])
def test_api_split_run_equals_uninterrupted(tmp_path, own_generator, scheduler):
    """train(6) == train(3), save, then in a fresh trainer (other weights, scrambled global RNG):
    load_checkpoint + train(3, seed=None); also with a loader that has its own generator and an
    LR scheduler, whose states the checkpoint carries too."""
    gen = (lambda: torch.Generator().manual_seed(3)) if own_generator else (lambda: None)
    whole = _trainer(gen(), scheduler)
    whole.train(6)

    first = _trainer(gen(), scheduler)
    first.train(3)
    first.save_checkpoint(tmp_path / "ck.pt")
    torch.manual_seed(1234), np.random.seed(1234)
    second = _trainer(gen(), scheduler, model_seed=99)
    second.load_checkpoint(tmp_path / "ck.pt")
    second.train(3, seed=None)
    _assert_same_run(whole, second)


def test_train_with_seed_none_continues_in_process():
    """train(3) then train(3, seed=None) in the same trainer equals train(6)."""
    whole, split = _trainer(), _trainer()
    whole.train(6)
    split.train(3)
    split.train(3, seed=None)
    _assert_same_run(whole, split)


def _cli(*args, cwd):
    """Runs ``squareseq`` in a new process."""
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "squareseq", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)


def _assert_same_outputs(a: Path, b: Path):
    ma, mb = json.loads((a / "metrics.json").read_text()), json.loads((b / "metrics.json").read_text())
    assert ma["losses"] == mb["losses"] and ma["val_losses"] == mb["val_losses"]
    assert ma["test"] == mb["test"] and ma["epochs"] == mb["epochs"] and mb["status"] == "complete"
    assert (a / "history.csv").read_text() == (b / "history.csv").read_text()
    ca, cb = load(a / "checkpoint.pt"), load(b / "checkpoint.pt")
    assert all(torch.equal(ca["model_state_dict"][k], cb["model_state_dict"][k]) for k in ca["model_state_dict"])
    return ma, mb


@pytest.mark.slow
def test_cli_resume_in_a_new_process_is_bit_exact(tmp_path):
    """`train --epochs 6` == `train --epochs 3` then, in another process, `train --resume --epochs 6`:
    same per-epoch losses, history, final weights and counts."""
    assert main(["train", "--epochs", "6", *QUICK, "--out", str(tmp_path / "whole")]) == 0
    first = _cli("train", "--epochs", "3", *QUICK, "--out", "split", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    second = _cli("train", "--resume", "split", "--epochs", "6", "--quiet", "--no-figures", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    _, resumed = _assert_same_outputs(tmp_path / "whole", tmp_path / "split")
    assert resumed["resumed_from"] == [3] and resumed["config"]["epochs"] == 6


@pytest.mark.slow
def test_cli_fifty_plus_fifty_equals_one_hundred(tmp_path):
    """The tutorial's run: 100 epochs == 50, then `--resume --epochs 100` in a new process, and
    both print the tutorial's counts."""
    assert main(["train", "--no-figures", "--quiet", "--out", str(tmp_path / "whole")]) == 0
    assert _cli("train", "--epochs", "50", "--no-figures", "--quiet", "--out", "split", cwd=tmp_path).returncode == 0
    resumed = _cli("train", "--resume", "split", "--epochs", "100", "--no-figures", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "[[50, 53], [75, 75]]" in resumed.stdout
    whole, _ = _assert_same_outputs(tmp_path / "whole", tmp_path / "split")
    assert whole["test"]["correct_per_class"] == [[50, 53], [75, 75]]


@pytest.fixture
def short_run(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--epochs", "2", *QUICK, "--lr", "0.02", "--out", str(out)]) == 0
    return out


def _error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("extra,expected", [
    (["--lr", "0.01"], "--lr 0.01 contradicts the run being resumed (--lr 0.02)"),
    (["--n-train", "64"], "--n-train 64 contradicts"),
    (["--loss", "ce"], "--loss ce contradicts"),
    (["--overwrite"], "--overwrite and --resume"),
    (["--out", "elsewhere"], "differs from --resume"),
    (["--epochs", "1"], "already trained 2 epochs"),
])
def test_resume_refuses_conflicting_options(short_run, capsys, extra, expected):
    """A resumed run keeps its configuration: any other value is refused, naming the option."""
    before = (short_run / "metrics.json").read_bytes()
    assert expected in _error(capsys, ["train", "--resume", str(short_run), *extra])
    assert (short_run / "metrics.json").read_bytes() == before


@pytest.mark.slow
def test_resume_accepts_repeated_options_and_defaults_to_the_run_total(short_run, capsys):
    """Options equal to the run's are fine; without --epochs the run's own total is kept (here
    already reached: nothing to train, metrics rewritten)."""
    assert main(["train", "--resume", str(short_run), "--lr", "0.02", "--n-train", "32", "--quiet"]) == 0
    metrics = json.loads((short_run / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["status"] == "complete" and metrics["resumed_from"] == [2]


def test_resume_errors_for_missing_or_foreign_checkpoints(tmp_path, capsys):
    """No folder, no checkpoint, a tutorial checkpoint without run config or RNG state: one line each."""
    assert "does not exist" in _error(capsys, ["train", "--resume", str(tmp_path / "nope")])
    run = tmp_path / "legacy"
    run.mkdir()
    model = SquareModel(2, 2, 1)
    legacy = {"epoch": 0, "model_state_dict": model.state_dict(), "optimizer_state_dict": {}, "loss": [],
              "val_loss": []}
    torch.save(legacy, run / "checkpoint.pt")
    assert "no run_config" in _error(capsys, ["train", "--resume", str(run)])
    torch.save({**legacy, "run_config": {"epochs": 3, "n_train": 32, "n_test": 16}}, run / "checkpoint.pt")
    assert "cannot be resumed exactly" in _error(capsys, ["train", "--resume", str(run)])


def test_load_checkpoint_can_leave_the_global_rng_alone(tmp_path):
    """restore_rng=False (for a notebook that only predicts) keeps the caller's random state."""
    sbs = _trainer()
    sbs.train(1)
    sbs.save_checkpoint(tmp_path / "ck.pt")
    other = _trainer()
    torch.manual_seed(7)
    before = torch.get_rng_state()
    other.load_checkpoint(tmp_path / "ck.pt", restore_rng=False)
    assert torch.equal(before, torch.get_rng_state())


def test_run_experiment_never_silently_overwrites_a_run(tmp_path):
    """The Python API refuses a folder holding a run, unless overwrite or resume."""
    from squareseq.config import RunConfig, RunOptions
    from squareseq.errors import SquareseqError
    from squareseq.runs.experiment import run_experiment

    config = RunConfig(epochs=1, n_train=16, n_test=8)
    run_experiment(config, RunOptions(run_dir=tmp_path / "r", figures=False))
    before = (tmp_path / "r" / "metrics.json").read_bytes()
    with pytest.raises(SquareseqError, match="pass overwrite to replace it"):
        run_experiment(config, RunOptions(run_dir=tmp_path / "r", figures=False))
    assert (tmp_path / "r" / "metrics.json").read_bytes() == before
    assert run_experiment(config, RunOptions(run_dir=tmp_path / "r", figures=False, overwrite=True)).metrics["epochs"] == 1
