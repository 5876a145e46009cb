"""TensorBoard logging: StepByStep.set_tensorboard/add_graph (the book's), ``train --tensorboard``,
read back with TensorBoard's own EventAccumulator; logging never changes a number."""
import json
import re
import sys

import numpy as np
import pytest
import torch

from squareseq.cli import main
from squareseq.config import RunConfig, RunOptions
from squareseq.errors import ConfigError, SquareseqError
from squareseq.stepbystep import StepByStep
from squareseq.training.loop import Callback
from squareseq.training.tensorboard import TensorBoardLogger
from test_stepbystep import _loaders, _setup

QUICK = ["--epochs", "3", "--n-train", "32", "--n-test", "16", "--no-figures", "--quiet"]
MISSING = "needs the optional package tensorboard: pip install 'squareseq[tensorboard]'"


def _accumulator(path):
    ea = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    acc = ea.EventAccumulator(str(path))
    acc.Reload()
    return acc


def _scalars(path, tag):
    """``[(step, value), ...]`` of ``tag`` in the event files directly in ``path``."""
    return [(e.step, e.value) for e in _accumulator(path).Scalars(tag)]


def _f32(values):
    return [float(np.float32(v)) for v in values]


def _trainer(tmp_path=None, name=None):
    train_loader, test_loader = _loaders()
    model, loss_fn, opt = _setup()
    sbs = StepByStep(model, loss_fn, opt)
    sbs.set_loaders(train_loader, test_loader)
    if name is not None:
        sbs.set_tensorboard(name, folder=str(tmp_path))
    return sbs


def test_set_tensorboard_logs_the_books_scalars_and_graph(tmp_path):
    """The book's folder ({folder}/{name}_{timestamp}), 'loss' as {'training', 'validation'} per
    epoch, the learning rate, and the graph; values are the trainer's losses in float32."""
    pytest.importorskip("tensorboard")
    sbs = _trainer(tmp_path, "square")
    sbs.add_graph()
    sbs.train(3)
    (log_dir,) = list(tmp_path.iterdir())
    assert re.fullmatch(r"square_\d{14}", log_dir.name)
    assert _scalars(log_dir / "loss_training", "loss") == list(zip([1, 2, 3], _f32(sbs.losses)))
    assert _scalars(log_dir / "loss_validation", "loss") == list(zip([1, 2, 3], _f32(sbs.val_losses)))
    assert _scalars(log_dir, "learning_rate") == [(1, pytest.approx(0.01)), (2, pytest.approx(0.01)),
                                                  (3, pytest.approx(0.01))]
    assert _accumulator(log_dir).Tags()["graph"] is True
    assert sbs.writer is sbs.tensorboard.writer
    assert all(w.all_writers is None for w in sbs.tensorboard._writers.values())  # closed


@pytest.mark.exact
def test_logging_changes_no_number_and_keeps_the_fused_step(tmp_path):
    """add_graph draws a batch without moving any random state; the fused exact step still runs;
    the losses are bit-identical to a run without logging, also when training continues unseeded."""
    pytest.importorskip("tensorboard")
    plain = _trainer()
    plain.train(2)
    plain.train(2, seed=None)
    logged = _trainer(tmp_path, "run")
    logged.set_seed(42)
    before = torch.get_rng_state()
    logged.add_graph()
    assert torch.equal(torch.get_rng_state(), before)
    parts = logged._train_parts()
    assert parts.train_step.__module__ == "squareseq.training.fused"
    parts.finish()
    logged.train(2)
    logged.add_graph()  # between the two parts: the unseeded continuation must not notice
    logged.train(2, seed=None)
    assert logged.losses == plain.losses and logged.val_losses == plain.val_losses
    (log_dir,) = list(tmp_path.iterdir())
    assert [s for s, _ in _scalars(log_dir / "loss_training", "loss")] == [1, 2, 3, 4]


def test_an_interrupted_fit_leaves_its_epochs_flushed_and_the_writer_closed(tmp_path):
    pytest.importorskip("tensorboard")
    sbs = _trainer(tmp_path, "stopped")

    class Stop(Callback):  # after the logger
        def on_epoch_end(self, loop, logs):
            if loop.epoch == 2:
                raise KeyboardInterrupt

    sbs.add_callback(Stop())
    with pytest.raises(KeyboardInterrupt):
        sbs.train(5)
    assert all(w.all_writers is None for w in sbs.tensorboard._writers.values())
    (log_dir,) = list(tmp_path.iterdir())
    assert _scalars(log_dir / "loss_training", "loss") == list(zip([1, 2], _f32(sbs.losses)))


def test_a_resumed_log_continues_the_epochs_and_never_repeats_one(tmp_path):
    """A process that logged epochs 1-4 but checkpointed epoch 2 is resumed from there: the log
    holds epochs 1-4 once each, 3 and 4 from the resumed run."""
    pytest.importorskip("tensorboard")
    log_dir = tmp_path / "log"
    first = _trainer()
    first.add_callback(TensorBoardLogger(log_dir))
    first.train(2)
    first.save_checkpoint(tmp_path / "epoch2.pt")
    first.train(2, seed=None)
    resumed = _trainer()
    resumed.load_checkpoint(tmp_path / "epoch2.pt")
    resumed.add_callback(TensorBoardLogger(log_dir, purge_step=resumed.total_epochs + 1))
    resumed.train(2, seed=None)
    assert _scalars(log_dir / "loss_training", "loss") == list(zip([1, 2, 3, 4], _f32(resumed.losses)))
    assert [s for s, _ in _scalars(log_dir, "learning_rate")] == [1, 2, 3, 4]


def test_train_tensorboard_writes_scalars_graph_and_keeps_the_csv(tmp_path):
    """`train --tensorboard`: RUN/tensorboard with the losses of metrics.json per epoch, the
    graph and the test accuracy; history.csv as before; a resume appends epochs 4-5."""
    pytest.importorskip("tensorboard")
    run = tmp_path / "run"
    assert main(["train", *QUICK, "--tensorboard", "--out", str(run)]) == 0
    log_dir = run / "tensorboard"
    metrics = json.loads((run / "metrics.json").read_text())
    assert _scalars(log_dir / "loss_training", "loss") == list(zip([1, 2, 3], _f32(metrics["losses"])))
    assert _scalars(log_dir / "loss_validation", "loss") == list(zip([1, 2, 3], _f32(metrics["val_losses"])))
    assert _accumulator(log_dir).Tags()["graph"] is True
    assert _scalars(log_dir / "accuracy_test", "accuracy") == [(3, pytest.approx(metrics["test"]["accuracy"]))]
    assert len((run / "history.csv").read_text().splitlines()) == 4

    assert main(["train", "--resume", str(run), "--epochs", "5", "--tensorboard", "--quiet", "--no-figures"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert _scalars(log_dir / "loss_training", "loss") == list(zip([1, 2, 3, 4, 5], _f32(metrics["losses"])))
    assert [s for s, _ in _scalars(log_dir / "accuracy_test", "accuracy")] == [3, 5]


@pytest.mark.exact
def test_train_tensorboard_changes_no_number(tmp_path):
    pytest.importorskip("tensorboard")
    assert main(["train", *QUICK, "--out", str(tmp_path / "plain")]) == 0
    assert main(["train", *QUICK, "--tensorboard", "--out", str(tmp_path / "logged")]) == 0
    plain, logged = (json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("plain", "logged"))
    assert logged["losses"] == plain["losses"] and logged["val_losses"] == plain["val_losses"]
    assert logged["test"] == plain["test"]


@pytest.mark.parametrize("changes", [dict(model="gru", variable_len=True), dict(model="lstm", bidirectional=True),
                                     dict(model="conv1d"), dict(model="square-conv1d")])
def test_every_model_gets_its_graph(tmp_path, changes):
    """Packed batches are traced padded; convolutions and bidirectional layers trace too."""
    pytest.importorskip("tensorboard")
    from squareseq.runs.experiment import run_experiment

    config = RunConfig(n_train=32, n_test=16, epochs=1, **changes)
    run_experiment(config, RunOptions(run_dir=tmp_path / "run", figures=False, tensorboard=True))
    log_dir = tmp_path / "run" / "tensorboard"
    assert _accumulator(log_dir).Tags()["graph"] is True
    assert [s for s, _ in _scalars(log_dir / "loss_training", "loss")] == [1]


def test_overwrite_replaces_the_old_log(tmp_path):
    pytest.importorskip("tensorboard")
    run = tmp_path / "run"
    assert main(["train", *QUICK, "--tensorboard", "--out", str(run)]) == 0
    assert main(["train", *QUICK, "--overwrite", "--out", str(run)]) == 0
    assert not (run / "tensorboard").exists()


def test_tensorboard_needs_a_run_folder():
    with pytest.raises(ConfigError, match="tensorboard writes its log into the run folder: give run_dir"):
        from squareseq.runs.experiment import run_experiment

        run_experiment(RunConfig(epochs=1), RunOptions(tensorboard=True))


def test_without_tensorboard_one_line_and_nothing_written(tmp_path, capsys, monkeypatch):
    """The optional package missing: `--tensorboard` exits 2 with one line before anything is
    written; set_tensorboard raises a SquareseqError with the same advice."""
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    run = tmp_path / "run"
    assert main(["train", *QUICK, "--tensorboard", "--out", str(run)]) == 2
    assert capsys.readouterr().err == f"squareseq: error: --tensorboard {MISSING}\n"
    assert not run.exists()
    with pytest.raises(SquareseqError, match=re.escape(f"TensorBoard logging {MISSING}")):
        _trainer(tmp_path, "nope")
    assert list(tmp_path.iterdir()) == []
