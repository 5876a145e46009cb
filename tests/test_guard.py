"""Numerical faults: a NaN/inf loss or an overflow stops training naming the epoch and step, keeps
the last good state, and the CLI exits with code 3."""
import dataclasses
import json
import math

import pytest
import torch
from torch import nn, optim
from torch.utils.data import DataLoader, TensorDataset

from squareseq import SquareModel, StepByStep, losses, make_tensors
from squareseq.cli import main
from squareseq.config import RunConfig, RunOptions
from squareseq.runs.experiment import run_experiment
from squareseq.training.checkpoint import load
from squareseq.training.guard import FiniteLossCheck, NonFiniteLossError
from squareseq.training.loop import FitState, History

QUICK = ["--n-train", "48", "--n-test", "16", "--batch-size", "16", "--no-figures", "--quiet"]


class _NanAt(nn.Module):
    """BCEWithLogitsLoss that returns NaN on its ``k``-th training call (1-based)."""

    def __init__(self, k, value=math.nan, validation=False):
        super().__init__()
        self.k, self.value, self.validation, self.calls = k, value, validation, 0
        self.bce = nn.BCEWithLogitsLoss()

    def forward(self, outputs, y):
        loss = self.bce(outputs, y)
        if torch.is_grad_enabled() != self.validation:
            self.calls += 1
            if self.calls == self.k:
                return loss * self.value
        return loss


def _trainer(loss_fn):
    x, y, _ = make_tensors(48, seed=13)
    torch.manual_seed(21)
    model = SquareModel(2, 2, 1)
    sbs = StepByStep(model, loss_fn, optim.Adam(model.parameters(), lr=0.01))
    sbs.set_loaders(DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True),
                    DataLoader(TensorDataset(x, y), batch_size=16))
    return sbs


def test_nan_loss_names_epoch_and_step():
    """The 5th training step (epoch 2, step 2 of 3) returns NaN: training stops at the end of
    epoch 2 with one line naming both."""
    sbs = _trainer(_NanAt(5))
    with pytest.raises(NonFiniteLossError) as info:
        sbs.train(10)
    message = str(info.value)
    assert "epoch 2, step 2 of 3" in message and "nan" in message and "\n" not in message
    assert (info.value.epoch, info.value.step) == (2, 2) and sbs.total_epochs == 2


@pytest.mark.parametrize("value,word", [(math.inf, "inf"), (-math.inf, "-inf")])
def test_infinite_validation_loss_is_a_fault(value, word):
    sbs = _trainer(_NanAt(2, value=value, validation=True))
    with pytest.raises(NonFiniteLossError, match=f"validation loss became {word} at epoch 1"):
        sbs.train(3)


def test_finite_loss_check_alone_with_scripted_losses():
    """The callback, fed scripted batch losses, names the first bad step and passes finite epochs."""
    check = FiniteLossCheck()
    state = FitState(nn.Linear(1, 1), None, History(), epoch=4)
    check.on_epoch_start(state)
    for i, v in enumerate([0.5, 0.4, math.inf, math.nan]):
        check.on_batch_end(state, i, 4, torch.tensor(v))
    with pytest.raises(NonFiniteLossError, match="epoch 4, step 3 of 4"):
        check.on_epoch_end(state, {"loss": math.nan, "val_loss": 0.1})
    check.on_epoch_start(state)
    check.on_batch_end(state, 0, 1, torch.tensor(0.5))
    check.on_epoch_end(state, {"loss": 0.5, "val_loss": None})


@pytest.fixture
def nan_at_step_5(monkeypatch):
    """`--loss bce-logits` whose 5th training step returns NaN (48 samples, 3 steps per epoch)."""
    spec = losses.LOSSES["bce-logits"]
    monkeypatch.setitem(losses.LOSSES, "bce-logits", dataclasses.replace(spec, make=lambda: _NanAt(5)))


def test_cli_nan_keeps_last_good_checkpoint_and_exits_3(tmp_path, capsys, nan_at_step_5):
    """Exit 3, one line naming epoch 2 step 2; the checkpoint holds epoch 1 (finite weights equal to
    a clean one-epoch run), never the NaN state, though periodic checkpoints were on; metrics.json
    says failed."""
    assert main(["train", "--epochs", "5", "--checkpoint-every", "1", *QUICK, "--out", str(tmp_path / "r")]) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "epoch 2, step 2 of 3" in err and "Traceback" not in err
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["status"] == "failed" and metrics["epochs_completed"] == 1 and "epoch 2" in metrics["message"]
    saved = load(tmp_path / "r" / "checkpoint.pt")
    assert saved["epoch"] == 1 and all(torch.isfinite(v).all() for v in saved["model_state_dict"].values())
    clean = run_experiment(RunConfig(epochs=1, n_train=48, n_test=16))
    for key, value in clean.trainer.model.state_dict().items():
        assert torch.equal(saved["model_state_dict"][key], value)


def test_cli_detect_anomaly_names_the_backward_function(tmp_path, capsys, nan_at_step_5):
    """With --detect-anomaly, torch's anomaly mode stops at the bad step itself (exit 3)."""
    with pytest.warns(UserWarning):  # anomaly mode warns with the forward traceback
        code = main(["train", "--epochs", "5", "--detect-anomaly", *QUICK, "--out", str(tmp_path / "r")])
    assert code == 3
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "epoch 2, step 2" in last and "nan values" in last
    assert load(tmp_path / "r" / "checkpoint.pt")["epoch"] == 1


def test_cli_overflowing_learning_rate_exits_3(tmp_path, capsys):
    """--lr 1e38 overflows Adam's step: a numerical fault at epoch 1 step 1, not a traceback."""
    assert main(["train", "--epochs", "2", "--lr", "1e38", *QUICK, "--out", str(tmp_path / "r")]) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "epoch 1, step 1" in err and "overflow" in err
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["epochs_completed"] == 0


def test_huge_but_finite_learning_rate_trains_on(tmp_path):
    """--lr 1e6 diverges but Adam's bounded steps keep the loss finite: not a fault, so the run
    completes (and its metrics show the divergence)."""
    assert main(["train", "--epochs", "3", "--lr", "1e6", *QUICK, "--out", str(tmp_path / "r")]) == 0
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert all(math.isfinite(v) for v in metrics["losses"]) and metrics["losses"][-1] > 1000


def test_periodic_checkpoints_hold_completed_epochs(tmp_path):
    """checkpoint_every=2: while epoch 5 trains, the folder's checkpoint holds epoch 4, complete
    with RNG state and run config."""
    from squareseq.training.loop import Callback

    seen = {}

    class Peek(Callback):
        def on_epoch_start(self, loop):
            if (tmp_path / "r" / "checkpoint.pt").exists():
                data = load(tmp_path / "r" / "checkpoint.pt")
                seen[loop.epoch] = (data["epoch"], "rng_state" in data, data["run_config"]["epochs"])

    run_experiment(RunConfig(epochs=5, n_train=32, n_test=16),
                   RunOptions(run_dir=tmp_path / "r", figures=False, checkpoint_every=2), callbacks=[Peek()])
    assert seen == {3: (2, True, 5), 4: (2, True, 5), 5: (4, True, 5)}


def test_an_interrupt_raised_inside_a_finalizer_is_kept_not_printed(monkeypatch):
    """A signal whose handler raises inside a finalizer (a weakref callback, __del__) cannot
    propagate; Python would print it as a traceback. The run's handler keeps the signal and the
    interrupt is dropped; any other unraisable error still reaches the previous hook."""
    import signal
    import sys

    from squareseq.training.guard import SignalStop

    seen = []
    monkeypatch.setattr(sys, "unraisablehook", lambda unraisable: seen.append(type(unraisable.exc_value)))
    stop = SignalStop(deferred=False)

    class Interrupted:
        def __del__(self):
            stop._handle(signal.SIGINT, None)

    class Broken:
        def __del__(self):
            raise OSError("disk")

    with stop:
        Interrupted()
        Broken()
    assert stop.signum == signal.SIGINT
    assert seen == [OSError]
    assert sys.unraisablehook is not stop._unraisable_hook  # put back on leaving
