"""SIGINT/SIGTERM during training: finish the step, save the last completed epoch and the metrics
so far, say how to resume, exit 130/143; resuming equals the uninterrupted run."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from squareseq.cli import main
from squareseq.config import RunConfig, RunOptions
from squareseq.runs.experiment import run_experiment
from squareseq.training.guard import SignalStop, TrainingInterrupted
from squareseq.training.loop import Callback

QUICK = ["--n-train", "32", "--n-test", "16", "--no-figures", "--quiet"]
SRC = str(Path(__file__).resolve().parents[1] / "src")
pytestmark = pytest.mark.exact  # resumed runs equal uninterrupted ones bit for bit


class _SignalAt(Callback):
    """Sends ``signum`` to this process after batch ``batch`` of epoch ``epoch`` (mid-epoch)."""

    def __init__(self, signum, epoch, batch):
        self.signum, self.epoch, self.batch = signum, epoch, batch

    def on_batch_end(self, loop, batch, n_batches, loss):
        if loop.epoch == self.epoch and batch == self.batch:
            os.kill(os.getpid(), self.signum)


@pytest.fixture(autouse=True)
def _default_signal_handlers():
    """The handlers these tests send signals to, whatever the parent did: a suite started as a
    script's background job inherits SIGINT as ignored (and so would the training processes it
    starts), which the product rightly keeps ignoring. Restored afterwards."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def test_the_suite_tests_the_default_handlers():
    """Guards the fixture above: the tests below see Python's own handlers."""
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def _opts(run_dir, **kwargs):
    return RunOptions(run_dir=run_dir, figures=False, **{"checkpoint_every": 0, **kwargs})


def _config(epochs):
    return RunConfig(epochs=epochs, n_train=48, n_test=16)


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_mid_epoch_saves_last_epoch_and_resume_is_exact(tmp_path, signum, code):
    """A signal after step 2 of epoch 3: the step finishes, the run folder gets epoch 2's state
    (checkpoint, history, metrics marked interrupted), the old handlers come back, and resuming
    to 6 epochs equals 6 uninterrupted epochs."""
    previous = signal.getsignal(signum)
    whole = run_experiment(_config(6), _opts(tmp_path / "whole"))
    with pytest.raises(TrainingInterrupted) as info:
        run_experiment(_config(6), _opts(tmp_path / "split"), callbacks=[_SignalAt(signum, 3, 1)])
    assert info.value.exit_code == code and info.value.epochs_completed == 2
    assert signal.getsignal(signum) is previous
    metrics = json.loads((tmp_path / "split" / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["epochs_completed"] == 2
    assert metrics["losses"] == whole.metrics["losses"][:2]
    assert len((tmp_path / "split" / "history.csv").read_text().splitlines()) == 3
    resumed = run_experiment(_config(6), _opts(tmp_path / "split", resume=True))
    assert resumed.metrics["losses"] == whole.metrics["losses"]
    assert resumed.metrics["val_losses"] == whole.metrics["val_losses"]
    assert resumed.metrics["test"] == whole.metrics["test"]


def test_signal_before_the_first_epoch_ends_keeps_epoch_zero(tmp_path):
    """Interrupted in epoch 1: the checkpoint holds the initial state; resuming equals a fresh run."""
    whole = run_experiment(_config(2))
    with pytest.raises(TrainingInterrupted) as info:
        run_experiment(_config(2), _opts(tmp_path / "r"), callbacks=[_SignalAt(signal.SIGINT, 1, 0)])
    assert info.value.epochs_completed == 0
    resumed = run_experiment(_config(2), _opts(tmp_path / "r", resume=True))
    assert resumed.metrics["losses"] == whole.metrics["losses"]


def test_signal_stop_records_first_signal_and_second_raises():
    """The first signal only sets a flag; a second one raises KeyboardInterrupt at once."""
    with SignalStop() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.01)
        assert stop.signum == signal.SIGTERM
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def _start(tmp_path, *args):
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "squareseq", "train", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _signal_when_training(proc, run: Path, signum):
    """Sends ``signum`` once the run has written its first periodic checkpoint."""
    deadline = time.monotonic() + 120
    while not (run / "checkpoint.pt").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.005)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, err


@pytest.mark.slow
def test_sigint_to_a_training_process_then_resume_equals_uninterrupted(tmp_path):
    """A real `squareseq train` process gets SIGINT mid-run: exit 130, one line saying how to
    resume, metrics marked interrupted; `--resume` in a new process then ends exactly where the
    uninterrupted run does."""
    args = ["--epochs", "150", "--checkpoint-every", "5", *QUICK]
    assert main(["train", *args, "--out", str(tmp_path / "whole")]) == 0
    proc = _start(tmp_path, *args, "--out", "split")
    code, err = _signal_when_training(proc, tmp_path / "split", signal.SIGINT)
    assert code == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "squareseq train --resume split --epochs 150" in lines[0] and "Traceback" not in err
    metrics = json.loads((tmp_path / "split" / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and 5 <= metrics["epochs_completed"] < 150
    resumed = subprocess.run([sys.executable, "-m", "squareseq", "train", "--resume", "split", "--quiet",
                              "--no-figures"], cwd=tmp_path, capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"})
    assert resumed.returncode == 0, resumed.stderr
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    split = json.loads((tmp_path / "split" / "metrics.json").read_text())
    assert split["losses"] == whole["losses"] and split["val_losses"] == whole["val_losses"]
    assert split["test"] == whole["test"] and split["status"] == "complete"
    assert split["resumed_from"] == [metrics["epochs_completed"]]


@pytest.mark.slow
def test_sigterm_to_a_training_process_exits_143_with_progress_saved(tmp_path):
    proc = _start(tmp_path, "--epochs", "3000", "--checkpoint-every", "5", *QUICK, "--out", "run")
    code, err = _signal_when_training(proc, tmp_path / "run", signal.SIGTERM)
    assert code == 143 and "SIGTERM" in err and len(err.strip().splitlines()) == 1, err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and len(metrics["losses"]) == metrics["epochs_completed"] >= 5


def test_an_ignored_signal_stays_ignored():
    """Under nohup (SIGINT ignored) training must not start reacting to SIGINT."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with SignalStop() as stop:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) == stop._handle
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


class _TwoSignalsAt(_SignalAt):
    """Sends ``signum`` twice within a microsecond, from the same step."""

    def on_batch_end(self, loop, batch, n_batches, loss):
        if loop.epoch == self.epoch and batch == self.batch:
            os.kill(os.getpid(), self.signum)
            os.kill(os.getpid(), self.signum)


def _signal_while_saving(monkeypatch, signum, times, epoch=None):
    """Makes the run's checkpoint writer receive ``signum`` ``times`` times as it starts writing
    (the first write of epoch ``epoch``'s checkpoint, or of any): a double Ctrl-C landing in the
    writes."""
    from squareseq.training import checkpoint

    real = checkpoint.save
    sent = []

    def save(path, payload):
        if not sent and (epoch is None or payload["epoch"] == epoch):
            sent.append(path)
            for _ in range(times):
                os.kill(os.getpid(), signum)
        return real(path, payload)

    monkeypatch.setattr(checkpoint, "save", save)


@pytest.mark.parametrize("where", ["in the step", "in the writer", "in a periodic checkpoint"])
def test_two_signals_within_a_millisecond_keep_the_interrupted_record(tmp_path, monkeypatch, capfd, where):
    """Two SIGINTs at once, the second landing in the step, in the writes that save the stopped
    run, or both in a periodic checkpoint's write: the writes finish, and the folder keeps the
    "interrupted" record and the last completed epoch's checkpoint."""
    import torch

    callbacks, every, kept = [], 0, 2
    if where == "in the step":
        callbacks = [_TwoSignalsAt(signal.SIGINT, 3, 1)]
    elif where == "in the writer":
        callbacks = [_SignalAt(signal.SIGINT, 3, 1)]
        _signal_while_saving(monkeypatch, signal.SIGINT, 1)
    else:
        every, kept = 1, 3
        _signal_while_saving(monkeypatch, signal.SIGINT, 2, epoch=3)
    with pytest.raises(TrainingInterrupted) as info:
        run_experiment(_config(6), _opts(tmp_path / "r", checkpoint_every=every), callbacks=callbacks)
    assert info.value.epochs_completed == kept and info.value.exit_code == 130
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["epochs_completed"] == kept
    assert len(metrics["losses"]) == kept
    assert torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=True)["epoch"] == kept
    assert len((tmp_path / "r" / "history.csv").read_text().splitlines()) == kept + 1
    if where != "in the step":
        assert "still saving" in capfd.readouterr().err


def test_signals_wait_while_protected_and_raise_outside_training():
    """Outside training the first signal raises at once (with its number); inside protected
    writes nothing raises, and :meth:`SignalStop.check` acts on the signal afterwards."""
    with SignalStop(deferred=False) as stop:
        with pytest.raises(KeyboardInterrupt) as info:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)
        assert info.value.signum == signal.SIGTERM and stop.stopping
    with SignalStop(deferred=False) as stop:
        with stop.protected():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)
        assert stop.signum == signal.SIGINT and not stop.stopping
        with pytest.raises(KeyboardInterrupt):
            stop.check()


_FORCE_QUIT = """
import os, signal, sys
from squareseq.config import RunConfig, RunOptions
from squareseq.runs.experiment import run_experiment
from squareseq.training import checkpoint
from squareseq.training.loop import Callback

stopping = []

class SignalAt(Callback):
    def on_batch_end(self, loop, batch, n_batches, loss):
        if loop.epoch == 3 and batch == 1:
            os.kill(os.getpid(), signal.SIGINT)
            stopping.append(True)

real = checkpoint.save
def save(path, payload):
    if stopping:  # the stop's save
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
    return real(path, payload)
checkpoint.save = save
run_experiment(RunConfig(epochs=6, n_train=48, n_test=16),
               RunOptions(run_dir=sys.argv[1], figures=False, checkpoint_every=1), callbacks=[SignalAt()])
"""


@pytest.mark.slow
def test_a_third_signal_forces_a_quit_saying_what_is_kept(tmp_path):
    """Three SIGINTs: the third, during the writes, quits at once (exit 130) and says what the
    folder keeps: the checkpoint of the last epoch written, whole."""
    import torch

    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", _FORCE_QUIT, str(tmp_path / "r")], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 130, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert "still saving" in lines[0]
    assert lines[-1] == (f"squareseq: forced to quit by SIGINT while saving; {tmp_path / 'r'} keeps the checkpoint "
                         f"of epoch 2 (every file there is whole); continue with: squareseq train --resume "
                         f"{tmp_path / 'r'}")
    assert torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=True)["epoch"] == 2
    assert not (tmp_path / "r" / "metrics.json").exists()
