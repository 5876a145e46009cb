"""Early stopping with restore-best: it stops at the right epoch, keeps the best epoch's complete state
(in memory, inside checkpoint.pt and as best.pt), restores its weights before the one test evaluation,
and a resumed run stops, restores and records exactly what the uninterrupted run does."""
import json
import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from squareseq import SquareModel, StepByStep, make_tensors
from squareseq.cli import main
from squareseq.config import RunConfig, RunOptions
from squareseq.runs.experiment import evaluate, run_experiment
from squareseq.runs.folder import BEST, CHECKPOINT, resolve_checkpoint
from squareseq.training import checkpoint as ckpt
from squareseq.training.callbacks import EarlyStopping
from squareseq.training.guard import RunGuard
from squareseq.training.loop import Callback
from squareseq.training.optim import FlatAdam

pytestmark = pytest.mark.exact  # resumed runs equal uninterrupted ones bit for bit

#: A small run that improves until epoch 6 and stops at epoch 9 (patience 3).
STOPS = RunConfig(epochs=40, n_train=48, n_test=16, val_fraction=0.25, early_stopping=3, lr=0.3)
SCRIPTED = [1.0, 0.5, 0.625, 0.5625, 0.375, 0.4375, 0.5, 0.40625, 0.875]  # exact in float32


def _scripted_trainer(patience):
    """A tutorial trainer whose validation losses are :data:`SCRIPTED`, one per epoch."""
    x, y, _ = make_tensors(32, seed=13)
    torch.manual_seed(21)
    model = SquareModel(2, 2, 1)
    sbs = StepByStep(model, nn.BCEWithLogitsLoss(), FlatAdam(model.parameters(), lr=0.01), device="cpu")
    sbs.set_loaders(DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True),
                    DataLoader(TensorDataset(x[:16], y[:16]), batch_size=16))
    values = iter(SCRIPTED)
    sbs.val_step = lambda xb, yb: torch.tensor(next(values))
    sbs.set_early_stopping(patience)
    return sbs


class _Weights(Callback):
    """Records the model's weights (``model``, or the fit's) at the end of every epoch."""

    def __init__(self, model):
        self.model, self.by_epoch = model, {}

    def on_epoch_end(self, loop, logs):
        model = self.model if self.model is not None else loop.model
        self.by_epoch[loop.epoch] = {k: v.clone() for k, v in model.state_dict().items()}


def _same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_scripted_losses_stop_after_patience_epochs_without_improvement():
    """Best 0.375 at epoch 5; 0.4375, 0.5, 0.40625 do not beat it: patience 3 stops at epoch 8;
    patience 5 runs through all nine."""
    sbs = _scripted_trainer(3)
    sbs.train(20)
    stopping = sbs.early_stopping
    assert sbs.total_epochs == 8 and sbs.val_losses == SCRIPTED[:8]
    assert (stopping.best, stopping.best_epoch, stopping.wait, stopping.stopped_epoch) == (0.375, 5, 3, 8)
    longer = _scripted_trainer(5)
    longer.train(9)
    assert longer.total_epochs == 9 and longer.early_stopping.stopped_epoch is None


def test_guard_keeps_the_best_epoch_inside_the_checkpoint_and_as_best_pt(tmp_path):
    """The guard's best state is epoch 5's, weights included; best.pt is written with the checkpoint
    (before it), holds exactly that state, and the last epoch's checkpoint carries it too."""
    sbs = _scripted_trainer(3)
    weights = _Weights(sbs.model)
    sbs.add_callback(weights)
    guard = RunGuard(sbs, tmp_path / CHECKPOINT, every=0, extra={"resumed_from": [2, 7]},
                     best_path=tmp_path / BEST)
    sbs.add_callback(guard)
    sbs.train(20)
    assert guard.best["epoch"] == 5 and _same_weights(guard.best["model_state_dict"], weights.by_epoch[5])
    assert not (tmp_path / BEST).exists()  # every=0: nothing written during training
    guard.save()
    best, last = ckpt.load(tmp_path / BEST), ckpt.load(tmp_path / CHECKPOINT)
    assert best["epoch"] == 5 and best["loss"] == sbs.losses[:5] and best["resumed_from"] == [2]
    assert _same_weights(best["model_state_dict"], weights.by_epoch[5])
    assert last["epoch"] == 8 and _same_weights(last["model_state_dict"], weights.by_epoch[8])
    assert last["early_stopping"]["best_epoch"] == 5 and last["best"]["epoch"] == 5
    assert guard.restore_best() == 5 and _same_weights(sbs.model.state_dict(), weights.by_epoch[5])


def test_early_stopping_state_round_trips_and_resets():
    stopping = EarlyStopping(3)
    stopping.load_state_dict({"best": 0.5, "wait": 2, "best_epoch": 4, "stopped_epoch": None})
    assert stopping.state_dict() == {"patience": 3, "best": 0.5, "wait": 2, "best_epoch": 4, "stopped_epoch": None}
    stopping.reset()
    assert stopping.best == math.inf and stopping.best_epoch is None and not stopping.stopped


def test_run_stops_restores_the_best_weights_and_tests_with_them(tmp_path):
    """The run stops `patience` epochs after its best; histories cover every epoch trained;
    checkpoint.pt is the last epoch's, best.pt the best's; the model tested (and returned) holds
    best.pt's weights; evaluate and predict read best.pt."""
    run_dir = tmp_path / "run"
    weights = _Weights(None)
    result = run_experiment(STOPS, RunOptions(run_dir=run_dir, figures=False), callbacks=[weights])
    m = json.loads((run_dir / "metrics.json").read_text())
    best, stopped = m["best_epoch"], m["stopped_epoch"]
    assert (best, stopped) == (6, 9) and m["epochs"] == 9 and len(m["losses"]) == len(m["val_losses"]) == 9
    assert m["val_losses"][best - 1] == min(m["val_losses"])
    assert all(v >= m["val_losses"][best - 1] for v in m["val_losses"][best:])
    last, kept = ckpt.load(run_dir / CHECKPOINT), ckpt.load(run_dir / BEST)
    assert last["epoch"] == 9 and kept["epoch"] == best and kept["val_loss"] == m["val_losses"][:best]
    assert not _same_weights(last["model_state_dict"], kept["model_state_dict"])
    assert _same_weights(kept["model_state_dict"], weights.by_epoch[best])
    assert _same_weights(last["model_state_dict"], weights.by_epoch[stopped])
    assert _same_weights(result.trainer.model.state_dict(), kept["model_state_dict"])
    data = result.trainer  # the model the record's test numbers came from
    assert m["test"] == result.metrics["test"]
    assert resolve_checkpoint(str(run_dir)) == run_dir / BEST
    from squareseq.runs.data import build_data
    from squareseq.runs.inference import load_trained

    model, config = load_trained(run_dir)
    split = build_data(config).test
    assert evaluate(model, split, 2) == evaluate(data.model, split, 2) == {k: m["test"][k] for k in m["test"]}
    assert m["validation"] == "split" and set(m["val"]) == {"correct_per_class", "accuracy", "confusion_matrix",
                                                            "loss"}


@pytest.mark.parametrize("first", [3, 7, 9])
def test_resumed_run_equals_the_uninterrupted_one(tmp_path, first):
    """Stopped at epoch `first` (while waiting, after the best, at the stop itself) and resumed:
    the same histories, best and stopped epochs, test counts, checkpoint.pt and best.pt, bit for bit;
    a run that already stopped trains nothing more."""
    whole = run_experiment(STOPS, RunOptions(run_dir=tmp_path / "whole", figures=False)).metrics
    split = tmp_path / "split"
    run_experiment(STOPS.replace(epochs=first), RunOptions(run_dir=split, figures=False))
    resumed = run_experiment(STOPS, RunOptions(run_dir=split, resume=True, figures=False)).metrics
    for key in ("losses", "val_losses", "test", "val", "best_epoch", "stopped_epoch", "epochs"):
        assert resumed[key] == whole[key], key
    assert resumed["resumed_from"] == [first]
    for name in (CHECKPOINT, BEST):
        a, b = ckpt.load(tmp_path / "whole" / name), ckpt.load(split / name)
        assert a["epoch"] == b["epoch"] and _same_weights(a["model_state_dict"], b["model_state_dict"]), name
        assert a["early_stopping"] == b["early_stopping"], name


def test_cli_early_stopping_and_evaluate_read_best_pt(tmp_path, capsys):
    """`train --val-fraction --early-stopping` writes best.pt; `evaluate` on the folder prints the
    record's test counts (the best epoch's), not the last epoch's; --overwrite without early
    stopping leaves no stale best.pt."""
    run_dir = tmp_path / "run"
    args = ["train", "--epochs", "40", "--n-train", "48", "--n-test", "16", "--val-fraction", "0.25",
            "--early-stopping", "3", "--lr", "0.3", "--no-figures", "--quiet", "--out", str(run_dir)]
    assert main(args) == 0
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["best_epoch"] == 6 and m["config"]["early_stopping"] == 3 and (run_dir / BEST).is_file()
    capsys.readouterr()
    assert main(["evaluate", str(run_dir)]) == 0
    counts = capsys.readouterr().out
    assert str(m["test"]["correct_per_class"]) in counts
    assert main(["train", "--epochs", "2", "--n-train", "32", "--n-test", "16", "--no-figures", "--quiet",
                 "--overwrite", "--out", str(run_dir)]) == 0
    assert not (run_dir / BEST).exists() and resolve_checkpoint(str(run_dir)) == run_dir / CHECKPOINT


def _tampered(tmp_path, change):
    run_dir = tmp_path / "run"
    if not (run_dir / CHECKPOINT).exists():
        run_experiment(STOPS, RunOptions(run_dir=run_dir, figures=False))
    data = ckpt.load(run_dir / CHECKPOINT)
    change(data)
    path = tmp_path / "bad.pt"
    torch.save(data, path)
    return path


@pytest.mark.parametrize("change,message", [
    (lambda d: d["early_stopping"].update(wait=-1), "early_stopping must hold"),
    (lambda d: d["early_stopping"].update(best_epoch=99), "early_stopping must hold"),
    (lambda d: d["early_stopping"].update(best=float("nan")), "early_stopping must hold"),
    (lambda d: d["early_stopping"].update(best_epoch=5), "best holds epoch 6"),
    (lambda d: d["best"]["model_state_dict"].pop("classifier.bias"), "missing parameter"),
    (lambda d: d["best"].update(best={}), "plain state of one epoch"),
    (lambda d: d["early_stopping"].update(best_epoch=None), "names no best epoch"),
])
def test_tampered_early_stopping_state_is_refused_on_load(tmp_path, change, message):
    with pytest.raises(ckpt.CheckpointError, match=message):
        ckpt.load(_tampered(tmp_path, change))


def test_stepbystep_checkpoint_carries_early_stopping_and_resumes_exactly(tmp_path):
    """Through the API: train(4), save_checkpoint, then a fresh trainer load_checkpoint + train(..., seed=None)
    stops at the same epoch with the same state as one uninterrupted train()."""
    from squareseq.runs.experiment import build_trainer

    whole, _ = build_trainer(STOPS)
    whole.train(40)
    first, _ = build_trainer(STOPS)
    first.train(4)
    first.save_checkpoint(tmp_path / "ck.pt")
    assert ckpt.load(tmp_path / "ck.pt")["early_stopping"] == first.early_stopping.state_dict()
    second, _ = build_trainer(STOPS.replace(seed=99))
    second.load_checkpoint(tmp_path / "ck.pt")
    second.train(36, seed=None)
    assert second.early_stopping.state_dict() == whole.early_stopping.state_dict()
    assert whole.early_stopping.stopped_epoch == 9 and second.losses == whole.losses
    assert _same_weights(second.model.state_dict(), whole.model.state_dict())


@pytest.mark.slow
def test_cli_resume_in_a_new_process_stops_and_restores_as_the_straight_run(tmp_path):
    """`train` stopped after 4 epochs, then `train --resume` in another process: the same stop, best
    epoch, histories, test counts and best.pt as one straight run."""
    from test_resume import _cli

    args = ["--n-train", "48", "--n-test", "16", "--val-fraction", "0.25", "--early-stopping", "3", "--lr", "0.3",
            "--no-figures", "--quiet"]
    assert main(["train", "--epochs", "40", *args, "--out", str(tmp_path / "whole")]) == 0
    assert _cli("train", "--epochs", "4", *args, "--out", "split", cwd=tmp_path).returncode == 0
    resumed = _cli("train", "--resume", "split", "--epochs", "40", "--quiet", "--no-figures", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    a, b = (json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("whole", "split"))
    for key in ("losses", "val_losses", "test", "val", "best_epoch", "stopped_epoch"):
        assert a[key] == b[key], key
    wa, wb = ckpt.load(tmp_path / "whole" / BEST), ckpt.load(tmp_path / "split" / BEST)
    assert wa["epoch"] == wb["epoch"] == 6 and _same_weights(wa["model_state_dict"], wb["model_state_dict"])
