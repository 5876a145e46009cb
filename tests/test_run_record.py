"""The run record is true in every phase: while the figures are drawn ``metrics.json`` says
``"drawing"`` and what is missing, ``"complete"`` is written last (after ``report.html``); a signal
or a full disk while drawing leaves a record naming the missing files; signals before training
change nothing; every write error names its file; ``report.html`` is written atomically."""
import errno
import json
import os
import signal
from pathlib import Path

import pytest

import squareseq.figures.run_figures as run_figures
from squareseq.cli import main

pytestmark = pytest.mark.hardening

QUICK = ["--epochs", "2", "--n-train", "32", "--n-test", "16", "--quiet"]


class _Unhandled(Exception):
    """What a signal raises when the product does not handle it (instead of killing the tests)."""


@pytest.fixture(autouse=True)
def _signal_handlers():
    """SIGINT as Python's default; SIGTERM raising :class:`_Unhandled` rather than killing the
    test process, so a phase that does not handle it fails the test instead."""
    def unhandled(signum, frame):
        raise _Unhandled(signal.Signals(signum).name)

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, unhandled)
    yield
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def _metrics(run: Path):
    return json.loads((run / "metrics.json").read_text())


@pytest.fixture
def saves(monkeypatch):
    """Replaces the figures by blank ones and the PNG writer by a quick one that records, per
    file, what ``metrics.json`` said when it was written; ``saves.action`` (name -> callable) runs
    before writing that file."""
    import matplotlib.pyplot as plt

    class Saves(dict):
        action = {}

    seen = Saves()

    def save(fig, path, dpi):
        plt.close(fig)
        seen[path.name] = json.loads((path.parent / "metrics.json").read_text()) \
            if (path.parent / "metrics.json").exists() else None
        if path.name in seen.action:
            seen.action[path.name](path)
        path.write_bytes(b"png")
        return path

    def blank(*names):
        return {name: plt.figure for name in names}

    monkeypatch.setattr(run_figures, "_save", save)  # and blank figures instead of drawing (quick)
    monkeypatch.setattr(run_figures, "_data_drawers", lambda *a: blank("corners.png", "sequences.png", "data.png"))
    monkeypatch.setattr(run_figures, "_hidden_drawers", lambda *a: blank(
        "hidden_steps.png", "hidden_canonical.png", "hidden_journey.png", "hidden_paths.png"))
    return seen


def test_figures_and_report_come_before_the_complete_record(tmp_path, saves, capsys):
    run = tmp_path / "run"
    assert main(["train", *QUICK, "--no-animation", "--out", str(run)]) == 0
    during = saves["hidden_steps.png"]
    assert during["status"] == "drawing" and during["epochs_completed"] == 2 and "test" in during
    assert "hidden_steps.png" in during["missing_figures"] and during["missing_figures"][-1] == "report.html"
    assert during["missing_figures"][0] == "losses.png"  # the files of the phase, written once before it
    final = _metrics(run)
    assert final["status"] == "complete" and "missing_figures" not in final
    assert (run / "report.html").stat().st_mtime_ns <= (run / "metrics.json").stat().st_mtime_ns
    assert not list(run.glob(".*.tmp")) and not (run / ".squareseq.lock").exists()


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_drawing_leaves_a_true_record(tmp_path, saves, capsys, signum, code):
    """SIGINT or SIGTERM while a figure is drawn: exit 130/143 with one line saying how to finish,
    the record "interrupted" naming every file not written (the report among them), the results
    and the complete training's checkpoint kept; resuming draws the rest and completes, and so
    does `squareseq plot`."""
    run = tmp_path / "run"
    saves.action = {"data.png": lambda path: os.kill(os.getpid(), signum)}
    assert main(["train", *QUICK, "--no-animation", "--out", str(run)]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "while drawing the figures" in err and signal.Signals(signum).name in err
    assert f"draw them with: squareseq plot {run}" in err
    record = _metrics(run)
    assert record["status"] == "interrupted" and record["epochs_completed"] == 2 and "accuracy" in record["test"]
    assert record["missing_figures"][0] == "data.png" and record["missing_figures"][-1] == "report.html"
    assert not (run / "report.html").exists() and not (run / ".squareseq.lock").exists()
    saves.action = {}
    assert main(["train", "--resume", str(run), "--epochs", "2", "--quiet", "--no-animation"]) == 0
    assert _metrics(run)["status"] == "complete" and (run / "report.html").exists()
    assert _metrics(run)["test"] == record["test"]
    saves.action = {"data.png": lambda path: os.kill(os.getpid(), signum)}
    assert main(["train", *QUICK, "--no-animation", "--overwrite", "--out", str(run)]) == code
    saves.action = {}
    assert main(["plot", str(run), "--no-animation"]) == 0
    final = _metrics(run)
    assert final["status"] == "complete" and "missing_figures" not in final and "message" not in final
    assert final["test"] == record["test"] and (run / "report.html").exists()


def test_a_full_disk_while_drawing_names_the_file_and_the_record_says_so(tmp_path, saves, capsys):
    run = tmp_path / "run"

    def full(path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    saves.action = {"hidden_canonical.png": full}
    assert main(["train", *QUICK, "--no-animation", "--out", str(run)]) == 1
    err = capsys.readouterr().err
    assert err == f"squareseq: error: No space left on device ({run / 'hidden_canonical.png'})\n"
    record = _metrics(run)
    assert record["status"] == "failed" and "No space left on device" in record["message"]
    assert record["missing_figures"][0] == "hidden_canonical.png" and "report.html" in record["missing_figures"]


def test_a_full_disk_names_the_file_an_atomic_write_was_writing(tmp_path, capsys, monkeypatch):
    """ENOSPC surfaces at write or fsync time, when Python's error names no file: the one line
    names the file being written, and no temporary is left behind."""
    from squareseq.training.checkpoint import atomic_write_bytes

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OSError) as caught:
        atomic_write_bytes(tmp_path / "x.bin", lambda f: f.write(b"x") and full(0))
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(tmp_path / "x.bin")
    run = tmp_path / "run"
    monkeypatch.setattr(os, "fsync", full)
    assert main(["train", *QUICK, "--no-figures", "--out", str(run)]) == 1
    assert capsys.readouterr().err == f"squareseq: error: No space left on device ({run / 'checkpoint.pt'})\n"
    assert not list(run.glob(".*.tmp"))


def test_report_html_is_written_atomically(tmp_path, monkeypatch):
    """A report that cannot be written whole leaves the previous page, and no temporary."""
    from squareseq.runs.page import write_report

    (tmp_path / "metrics.json").write_text(json.dumps({"status": "complete", "test": {}, "losses": []}))
    (tmp_path / "report.html").write_text("the previous page")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as caught:
        write_report(tmp_path)
    assert caught.value.filename == str(tmp_path / "report.html")
    assert (tmp_path / "report.html").read_text() == "the previous page"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "report.html"]


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_the_data_is_prepared_changes_nothing(tmp_path, capsys, monkeypatch, signum, code):
    """Before training (here, while the data is built) a signal exits at once with its code and
    one line; a new run leaves no folder, a resumed one its files as they were."""
    import squareseq.runs.experiment as experiment

    real = experiment.build_data

    def interrupted(config):
        os.kill(os.getpid(), signum)
        return real(config)

    run = tmp_path / "run"
    assert main(["train", *QUICK, "--no-figures", "--out", str(run)]) == 0
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    monkeypatch.setattr(experiment, "build_data", interrupted)
    assert main(["train", "--resume", str(run), "--epochs", "3", "--quiet", "--no-figures"]) == code
    err = capsys.readouterr().err
    assert err == f"squareseq: interrupted by {signal.Signals(signum).name} before training started; " \
                  f"nothing in {run} was changed\n"
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    assert main(["train", *QUICK, "--no-figures", "--out", str(tmp_path / "new")]) == code
    assert not (tmp_path / "new").exists()


def test_a_signal_while_evaluating_keeps_the_trained_epochs(tmp_path, capsys, monkeypatch):
    import squareseq.runs.experiment as experiment

    real = experiment.evaluate

    def interrupted(*args):
        os.kill(os.getpid(), signal.SIGTERM)
        return real(*args)

    monkeypatch.setattr(experiment, "evaluate", interrupted)
    run = tmp_path / "run"
    assert main(["train", *QUICK, "--no-figures", "--out", str(run)]) == 143
    record = _metrics(run)
    assert record["status"] == "interrupted" and record["epochs_completed"] == 2


def test_a_resume_refused_by_its_checkpoint_changes_nothing(tmp_path, capsys):
    """An optimizer state that cannot train (a learning rate "x") stops the resumed run before
    anything in its folder changes: metrics.json and every other file stay as they were."""
    import torch

    run = tmp_path / "run"
    assert main(["train", *QUICK, "--no-figures", "--out", str(run)]) == 0
    saved = torch.load(run / "checkpoint.pt", weights_only=True)
    saved["optimizer_state_dict"]["param_groups"][0]["lr"] = "x"
    torch.save(saved, run / "checkpoint.pt")
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert main(["train", "--resume", str(run), "--epochs", "4", "--quiet", "--no-figures"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    # the library's own resume path (no CLI reading the checkpoint first) changes nothing either
    from squareseq import RunConfig, RunOptions, run_experiment
    from squareseq.training.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="lr"):
        run_experiment(RunConfig(epochs=4, n_train=16, n_test=8),
                       RunOptions(run_dir=str(run), resume=True, figures=False, handle_signals=False))
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
