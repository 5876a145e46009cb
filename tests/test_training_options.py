"""The training options of a run (validation split, LR schedule, gradient clipping, weight decay, device)
each change what they should and nothing else; the defaults stay the tutorial's run bit for bit; a
resumed run keeps its options and continues its schedule exactly."""
import json
import math

import numpy as np
import pytest
import torch
from torch import nn, optim
from torch.utils.data import DataLoader, TensorDataset

from reference import tutorial_train
from squareseq import SquareModel, make_tensors
from squareseq.cli import main
from squareseq.config import RunConfig, RunOptions
from squareseq.errors import ConfigError
from squareseq.runs.data import build_data
from squareseq.runs.experiment import BOOK_VALIDATION, build_trainer, run_experiment
from squareseq.runs.folder import CHECKPOINT
from squareseq.training import checkpoint as ckpt
from squareseq.training.choices import PLATEAU_FACTOR, resolve_device
from squareseq.training.guard import TrainingInterrupted
from squareseq.training.loop import Callback
from squareseq.training.optim import FlatAdam

pytestmark = pytest.mark.exact  # bit-for-bit comparisons: CI runs them again on portable kernels

SMALL = RunConfig(epochs=3, n_train=32, n_test=16)
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")


def _run(config, **options):
    return run_experiment(config, RunOptions(run_dir=None, **options))


def _weights(result):
    return result.trainer.model.state_dict()


def _same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _reference(epochs, **adam):
    """The tutorial's own pipeline (its loaders, torch's Adam, its loop) on the run's data."""
    x, y, _ = make_tensors(128, seed=13)
    xt, yt, _ = make_tensors(128, seed=19)
    torch.manual_seed(21)
    model = SquareModel(2, 2, 1)
    return tutorial_train(model, nn.BCEWithLogitsLoss(), optim.Adam(model.parameters(), lr=0.01, **adam),
                          DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True),
                          DataLoader(TensorDataset(xt, yt), batch_size=16), epochs)


def test_defaults_are_the_tutorials_run_and_say_so():
    """Generated squares with every option at its default: the tutorial's losses bit for bit (its
    own loop, torch's Adam), validated on the test set and recorded as the book's way."""
    result = _run(RunConfig(epochs=4))
    assert (result.trainer.losses, result.trainer.val_losses) == _reference(4)
    trainer = result.trainer
    assert isinstance(trainer.optimizer, FlatAdam) and trainer.scheduler is None
    assert trainer.clipping is None and trainer.early_stopping is None
    m = result.metrics
    assert m["validation"] == BOOK_VALIDATION and "val" not in m
    assert m["best_epoch"] is None and m["stopped_epoch"] is None


def test_weight_decay_is_adams_own():
    """--weight-decay trains as torch's Adam(weight_decay=...) in the tutorial's loop does."""
    result = _run(RunConfig(epochs=3, weight_decay=0.1))
    assert type(result.trainer.optimizer) is optim.Adam
    assert (result.trainer.losses, result.trainer.val_losses) == _reference(3, weight_decay=0.1)
    assert result.trainer.losses != _run(RunConfig(epochs=3)).trainer.losses


def test_clip_grad_zero_or_huge_changes_nothing_and_small_clips():
    """A norm no gradient reaches gives the same bits as no clipping (clip_grad 0); a small one
    changes the run."""
    base = _run(SMALL)
    huge = _run(SMALL.replace(clip_grad=1e9))
    assert base.trainer.clipping is None and huge.trainer.clipping is not None
    assert huge.trainer.losses == base.trainer.losses and _same_weights(_weights(huge), _weights(base))
    small = _run(SMALL.replace(clip_grad=0.01))
    # Adam's first step barely depends on the gradient's scale, so the first epoch's loss moves only
    # in its last bits (on some kernel sets not at all); by the last epoch clipping shows
    assert abs(small.trainer.losses[-1] - base.trainer.losses[-1]) > 1e-5


def test_val_fraction_carves_a_stratified_seeded_split_from_the_training_set():
    """val_fraction 0.25 of 48 generated sequences: 12 held out, a quarter of each class, the rest trains; together
    they are the training set of val_fraction 0; the test set is untouched; the seed moves the split."""
    config = RunConfig(n_train=48, n_test=16, val_fraction=0.25)
    whole, data = build_data(config.replace(val_fraction=0.0)), build_data(config)
    assert whole.val is None and len(data.train) == 36 and len(data.val) == 12
    per_class = torch.bincount(whole.train.y).tolist()
    assert torch.bincount(data.val.y).tolist() == [round(n * 0.25) for n in per_class] != [6, 6]
    rows = lambda split: sorted(map(tuple, split.x.reshape(len(split), -1).tolist()))  # noqa: E731
    assert rows(whole.train) == sorted(rows(data.train) + rows(data.val))
    assert torch.equal(whole.test.x, data.test.x) and torch.equal(whole.test.y, data.test.y)
    assert len(data.figure_train[0]) == 36
    assert not torch.equal(build_data(config.replace(split_seed=1)).val.x, data.val.x)
    trainer, _ = build_trainer(config, data)
    assert sum(len(y) for _, y in trainer.val_loader) == 12


def test_variable_length_validation_split_keeps_lengths():
    data = build_data(RunConfig(n_train=48, n_test=16, val_fraction=0.25, variable_len=True))
    assert data.val.lengths is not None and len(data.val.lengths) == 12
    assert all(int((row.abs().sum(-1) > 0).sum()) <= n for row, n in zip(data.val.x, data.val.lengths))


def test_a_validation_split_is_what_the_run_validates_on_and_records():
    """val_loss is the validation split's loss (the test set is only evaluated at the end); the record
    says "split" and holds its numbers."""
    config = SMALL.replace(n_train=48, val_fraction=0.25)
    result, book = _run(config), _run(config.replace(val_fraction=0.0))
    assert result.trainer.val_losses != book.trainer.val_losses
    m = result.metrics
    assert m["validation"] == "split" and sum(n for _, n in m["val"]["correct_per_class"]) == 12
    assert sum(n for _, n in m["test"]["correct_per_class"]) == 16 and m["val"]["loss"] > 0


def test_cosine_anneals_to_zero_over_the_epochs():
    result = _run(SMALL.replace(epochs=4, scheduler="cosine"))
    rates = [r[0] for r in result.trainer.learning_rates]
    expected = [0.01 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(1, 5)]
    assert rates == pytest.approx(expected, abs=1e-12) and rates[-1] == pytest.approx(0.0, abs=1e-12)
    assert result.trainer.losses[0] == _run(SMALL.replace(epochs=1)).trainer.losses[0]  # epoch 1 at lr
    assert result.trainer.losses[1] != _run(SMALL.replace(epochs=4)).trainer.losses[1]


PLATEAU = RunConfig(epochs=26, n_train=48, n_test=16, val_fraction=0.25, scheduler="plateau", lr=0.3)


def test_plateau_halves_the_rate_when_the_validation_loss_stalls():
    result = _run(PLATEAU)
    rates = [r[0] for r in result.trainer.learning_rates]
    first = next(i for i, r in enumerate(rates) if r != 0.3)
    assert rates[first] == 0.3 * PLATEAU_FACTOR and rates[:first] == [0.3] * first
    val = result.trainer.val_losses
    best = min(val[: first + 1])
    assert val.index(best) == first - 11  # eleven epochs (patience 10, then one more) without improvement


@pytest.mark.parametrize("config,first", [(SMALL.replace(epochs=6, scheduler="cosine"), 3), (PLATEAU, 15)],
                         ids=["cosine", "plateau"])
def test_resume_continues_the_schedule_exactly(tmp_path, config, first):
    """Interrupted after epoch k, then resumed: the same rates, losses, weights and scheduler state as
    the uninterrupted run (the plateau's count of bad epochs is mid-way at the split)."""
    whole = run_experiment(config, RunOptions(run_dir=tmp_path / "whole", figures=False))
    split = tmp_path / "split"
    options = RunOptions(run_dir=split, figures=False, handle_signals=False)
    with pytest.raises(TrainingInterrupted):
        run_experiment(config, options, callbacks=[_InterruptAfter(first)])
    assert ckpt.load(split / CHECKPOINT)["epoch"] == first
    resumed = run_experiment(config, RunOptions(run_dir=split, resume=True, figures=False))
    assert resumed.trainer.learning_rates == whole.trainer.learning_rates
    assert resumed.metrics["losses"] == whole.metrics["losses"] and resumed.metrics["test"] == whole.metrics["test"]
    a, b = ckpt.load(tmp_path / "whole" / CHECKPOINT), ckpt.load(split / CHECKPOINT)
    assert _same_weights(a["model_state_dict"], b["model_state_dict"])
    assert a["scheduler_state_dict"] == b["scheduler_state_dict"] and a["learning_rates"] == b["learning_rates"]


class _InterruptAfter(Callback):
    """Stops the run as Ctrl-C would once epoch ``epoch`` is complete (and kept)."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_start(self, loop):
        if loop.epoch > self.epoch:
            raise KeyboardInterrupt


def test_cli_options_are_stored_and_kept_on_resume(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["train", "--epochs", "2", "--n-train", "32", "--n-test", "16", "--scheduler", "cosine",
                 "--clip-grad", "0.5", "--weight-decay", "0.01", "--no-figures", "--quiet",
                 "--out", str(run_dir)]) == 0
    assert main(["train", "--resume", str(run_dir), "--epochs", "3", "--no-figures", "--quiet"]) == 0
    m = json.loads((run_dir / "metrics.json").read_text())
    assert (m["config"]["scheduler"], m["config"]["clip_grad"], m["config"]["weight_decay"]) == ("cosine", 0.5, 0.01)
    assert len(ckpt.load(run_dir / CHECKPOINT)["learning_rates"]) == 3 and m["resumed_from"] == [2]
    capsys.readouterr()
    assert main(["train", "--resume", str(run_dir), "--epochs", "4", "--scheduler", "plateau"]) == 2
    assert "contradicts the run being resumed" in capsys.readouterr().err


def test_auto_and_cpu_devices_here():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")


@NO_CUDA
@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_an_unavailable_device_is_refused_in_one_line(name):
    with pytest.raises(ConfigError, match=f"device {name}: no CUDA device is available; use device cpu"):
        resolve_device(name)


@NO_CUDA
def test_cli_refuses_an_unavailable_device_before_writing_anything(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["train", "--device", "cuda", "--epochs", "1", "--out", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert err == "squareseq: error: --device cuda: no CUDA device is available; use --device cpu\n"
    assert not run_dir.exists()


def test_a_device_run_equals_the_cpu_run_and_its_checkpoint_loads_on_the_cpu(tmp_path):
    """--device auto (the CPU here; CUDA where there is one) trains the run; its checkpoint loads onto
    the CPU; on the CPU it is the cpu run bit for bit."""
    auto = run_experiment(SMALL, RunOptions(run_dir=tmp_path / "auto", figures=False, device="auto"))
    saved = ckpt.load(tmp_path / "auto" / CHECKPOINT)
    assert all(t.device.type == "cpu" for t in saved["model_state_dict"].values())
    assert next(auto.trainer.model.parameters()).device.type == "cpu"
    if not torch.cuda.is_available():
        assert auto.trainer.losses == _run(SMALL).trainer.losses
    else:
        assert np.allclose(auto.trainer.losses, _run(SMALL).trainer.losses, atol=1e-4)
