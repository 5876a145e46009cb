"""The CLI, in-process (main(argv) -> exit code) and once through a subprocess."""
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from squareseq.cli import build_parser, main
from squareseq.config import MAX_THREADS

QUICK = ["--epochs", "3", "--n-train", "32", "--n-test", "16", "--no-figures", "--quiet"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A small finished run, shared by the read-only tests."""
    out = tmp_path_factory.mktemp("runs") / "run"
    assert main(["train", *QUICK, "--out", str(out)]) == 0
    return out


def test_train_writes_run_folder(run_dir):
    """metrics.json, history.csv and checkpoint.pt exist and agree with each other."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs"] == 3 and len(metrics["losses"]) == 3 and len(metrics["val_losses"]) == 3
    counts = np.array(metrics["test"]["correct_per_class"])
    assert counts[:, 1].sum() == 16 and metrics["test"]["accuracy"] == counts[:, 0].sum() / 16
    assert metrics["config"]["n_train"] == 32 and metrics["config"]["loss"] == "bce-logits"
    rows = (run_dir / "history.csv").read_text().splitlines()
    assert rows[0] == "epoch,loss,val_loss" and len(rows) == 4
    assert float(rows[-1].split(",")[1]) == metrics["losses"][-1]
    ckpt = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert ckpt["epoch"] == 3 and ckpt["run_config"]["n_train"] == 32


@pytest.mark.slow
@pytest.mark.exact
def test_default_train_prints_tutorial_counts(tmp_path, capsys):
    """`squareseq train` with defaults: the tutorial's counts, printed and in metrics.json, and
    the figures."""
    assert main(["train", "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "[[50, 53], [75, 75]]" in out and "accuracy: 0.9766" in out
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test"]["correct_per_class"] == [[50, 53], [75, 75]]
    assert (tmp_path / "run" / "data.png").stat().st_size > 0
    assert (tmp_path / "run" / "losses.png").stat().st_size > 0


def test_evaluate_prints_counts(run_dir, capsys):
    assert main(["evaluate", str(run_dir)]) == 0
    assert "accuracy:" in capsys.readouterr().out
    assert main(["evaluate", str(run_dir / "checkpoint.pt"), "--test-seed", "5", "--n-test", "10"]) == 0
    assert "/10)" in capsys.readouterr().out


PREDICTION = re.compile(r"sequence (\d+): (.+) \(P\((.+)\) = (\d\.\d{4})\)")


def _predict(capsys, argv):
    """Runs ``predict`` as text and as --json; checks that they agree and are well formed.
    Returns the parsed JSON records."""
    assert main(["predict", *argv]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert main(["predict", *argv, "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert len(lines) == len(records)
    for i, (line, record) in enumerate(zip(lines, records), start=1):
        match = PREDICTION.fullmatch(line)
        assert match, line
        number, name, p_name, p = match.groups()
        probs = record["probabilities"]
        assert int(number) == record["sequence"] == i and name == p_name == record["name"]
        assert list(probs)[record["class"]] == name and probs[name] == max(probs.values())
        assert float(p) == pytest.approx(probs[name], abs=5e-5) and sum(probs.values()) == pytest.approx(1)
    return records


def test_predict_points_and_npy(run_dir, tmp_path, capsys):
    """A two-class run names the likeliest direction per sequence ("sequence 1: clockwise (P(clockwise) = ...)");
    --json gives both classes' probabilities by name."""
    [record] = _predict(capsys, [str(run_dir), "--points", "-1,-1 -1,1 1,1 1,-1"])
    assert list(record["probabilities"]) == ["counter-clockwise", "clockwise"]
    x = np.stack([np.array([[-1, -1], [-1, 1], [1, 1], [1, -1]], dtype=np.float32)] * 3)
    np.save(tmp_path / "x.npy", x)
    records = _predict(capsys, [str(run_dir), "--input", str(tmp_path / "x.npy")])
    assert [r["sequence"] for r in records] == [1, 2, 3]
    assert all(r["probabilities"] == pytest.approx(record["probabilities"], abs=1e-6) for r in records)


def test_predict_class_names_come_from_the_run(run_dir, tmp_path, capsys):
    """Names come from the metrics.json beside the checkpoint; a checkpoint alone gets its task's."""
    lone = tmp_path / "lone.pt"
    lone.write_bytes((run_dir / "checkpoint.pt").read_bytes())
    [record] = _predict(capsys, [str(lone), "--points", "-1,-1 -1,1 1,1 1,-1"])
    assert list(record["probabilities"]) == ["counter-clockwise", "clockwise"]
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    (renamed / "checkpoint.pt").write_bytes((run_dir / "checkpoint.pt").read_bytes())
    (renamed / "metrics.json").write_text(json.dumps({"class_names": ["left", "right"]}))
    for target in (renamed, renamed / "checkpoint.pt"):
        [record] = _predict(capsys, [str(target), "--points", "-1,-1 -1,1 1,1 1,-1"])
        assert list(record["probabilities"]) == ["left", "right"]


def _error(capsys, argv):
    """Runs argv, expects exit 2 and exactly one line on stderr; returns that line."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].count("error:") == 1 and lines[0].startswith("squareseq"), lines[0]
    return lines[0]


@pytest.mark.parametrize("argv,line", [
    (["train", "--epochs", "zero"], "squareseq train: error: argument --epochs: expected an integer in [1, 1000000], "
                                    "got 'zero' (see squareseq train --help)"),
    (["train", "--bogus"], "squareseq train: error: unrecognized arguments: --bogus (see squareseq train --help)"),
    (["predict", "run"], "squareseq predict: error: one of the arguments --points --input is required "
                         "(see squareseq predict --help)"),
    ([], "squareseq: error: the following arguments are required: COMMAND (see squareseq --help)"),
    (["train", "--standardize"], "squareseq: error: --standardize applies to --data files only"),
])
def test_usage_error_lines(capsys, argv, line):
    """Parser errors name the (sub)command once: "squareseq train: error: ..."; errors found
    after parsing read "squareseq: error: ..."."""
    assert _error(capsys, argv) == line


def _help_entries(parser):
    """Each option's entry (its lines) in ``parser``'s help."""
    return re.split(r"\n(?=  \S)", parser.format_help())


def _all_parsers():
    parser = build_parser()
    return [parser, *parser.commands.values()]


def test_help_shows_each_default_once():
    """No "(default: None)" or "(default: False)", and never two defaults for one option."""
    assert len(_all_parsers()) == 8  # squareseq and train, evaluate, predict, plot, sweep, export, playground
    for parser in _all_parsers():
        text = parser.format_help()
        assert "(default: None)" not in text and "(default: False)" not in text, parser.prog
        for entry in _help_entries(parser):
            assert entry.count("(default:") <= 1, entry
    train = " ".join(build_parser().commands["train"].format_help().split())
    assert "run folder to write (default: a new folder under runs/)" in train
    assert "(default: 100, or 300 with --data;" in train and "(default: auto)" in train


@pytest.mark.parametrize("argv,expected", [
    (["train", "--epochs", "0"], "--epochs"),
    (["train", "--epochs", "-3"], "--epochs"),
    (["train", "--batch-size", "x"], "--batch-size"),
    (["train", "--n-train", "0"], "--n-train"),
    (["train", "--n-test", "-1"], "--n-test"),
    (["train", "--hidden-dim", "0"], "--hidden-dim"),
    (["train", "--lr", "0"], "--lr"),
    (["train", "--lr", "nan"], "--lr"),
    (["train", "--lr", "-1e-3"], "--lr"),
    (["train", "--seed", "-1"], "--seed"),
    (["train", "--loss", "mse"], "--loss"),
    (["train", "--bogus"], "unrecognized"),
    (["fly"], "invalid choice"),
    ([], "required"),
])
def test_bad_options_one_line_exit_2(capsys, argv, expected):
    assert expected in _error(capsys, argv)


def test_out_is_a_file(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("keep me")
    assert "is a file" in _error(capsys, ["train", *QUICK, "--out", str(target)])
    assert target.read_text() == "keep me"


def test_existing_run_folder_is_not_overwritten(run_dir, capsys):
    before = (run_dir / "metrics.json").read_bytes()
    assert "--overwrite" in _error(capsys, ["train", *QUICK, "--out", str(run_dir)])
    assert (run_dir / "metrics.json").read_bytes() == before


@pytest.mark.parametrize("points", ["", "1,2,3", "a,b", "1 2", "1,nan 2,2", "1,inf"])
def test_malformed_points(run_dir, capsys, points):
    assert "--points" in _error(capsys, ["predict", str(run_dir), "--points", points])


def test_bad_npy_inputs(run_dir, tmp_path, capsys):
    np.save(tmp_path / "rank2.npy", np.zeros((4, 2)))
    np.save(tmp_path / "feat3.npy", np.zeros((1, 4, 3)))
    np.save(tmp_path / "nan.npy", np.full((1, 4, 2), np.nan))
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    for name in ("rank2", "feat3", "nan", "obj", "junk", "missing"):
        assert "--input" in _error(capsys, ["predict", str(run_dir), "--input", str(tmp_path / f"{name}.npy")])


def test_missing_and_non_checkpoint_files(tmp_path, capsys):
    assert "no such" in _error(capsys, ["evaluate", str(tmp_path / "nope")])
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00garbage")
    assert "not a readable checkpoint" in _error(capsys, ["evaluate", str(junk)])
    (tmp_path / "empty_run").mkdir()
    assert "checkpoint.pt" in _error(capsys, ["evaluate", str(tmp_path / "empty_run")])
    torch.save({"model_state_dict": {}}, tmp_path / "bare.pt")
    assert "model_config" in _error(capsys, ["evaluate", str(tmp_path / "bare.pt")])


def test_subprocess_help_and_bad_flag():
    """Through a real process: --help lists options with defaults; a bad flag exits 2 with one
    line and no traceback."""
    ok = subprocess.run([sys.executable, "-m", "squareseq", "train", "--help"], capture_output=True, text=True)
    assert ok.returncode == 0
    for option in ("--epochs", "--batch-size", "--lr", "--hidden-dim", "--seed", "--train-seed", "--test-seed",
                   "--n-train", "--n-test", "--loss", "--out", "--quiet"):
        assert option in ok.stdout
    assert "(default: 100, or 300 with" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "squareseq", "train", "--epochs", "zero"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.splitlines() == ["squareseq train: error: argument --epochs: expected an integer in [1, 1000000], got "
                                       "'zero' (see squareseq train --help)"]


def test_help_lists_trust_options_and_exit_codes(capsys):
    """--help shows --resume, --checkpoint-every (default 10), --detect-anomaly and the exit codes."""
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for text in ("--resume RUN_DIR", "--checkpoint-every N", "(default: 10)", "--detect-anomaly", "3 NaN/inf loss",
                 "130 SIGINT, 143 SIGTERM"):
        assert text in out, text


def test_overwrite_removes_old_results_before_the_new_run(run_dir, tmp_path, capsys):
    """--overwrite first deletes the old metrics.json and checkpoint: a new run that fails early
    never leaves the old run's results beside its own partial files."""
    target = tmp_path / "old"
    target.mkdir()
    (target / "metrics.json").write_text('{"status": "complete", "old": true}')
    (target / ".checkpoint.pt.abc.tmp").write_bytes(b"torn")  # what a killed writer leaves
    assert main(["train", *QUICK, "--lr", "1e38", "--out", str(target), "--overwrite"]) == 3
    metrics = json.loads((target / "metrics.json").read_text())
    assert metrics["status"] == "failed" and "old" not in metrics
    assert not (target / ".checkpoint.pt.abc.tmp").exists()


def test_crash_mid_training_leaves_no_metrics(tmp_path, capsys, monkeypatch):
    """An unexpected error during training: exit 1 with one line (no traceback), and the run
    folder holds no metrics.json that could pass for results."""
    from squareseq import stepbystep

    def boom(*args, **kwargs):
        raise TypeError("simulated bug\nsecond line")

    monkeypatch.setattr(stepbystep, "_fit", boom)
    assert main(["train", *QUICK, "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "simulated bug" in err and "Traceback" not in err
    assert not (tmp_path / "r" / "metrics.json").exists()


def test_sweep_writes_per_seed_results(tmp_path, capsys):
    """`squareseq sweep`: one row per seed in sweep.csv/json and a one-line summary."""
    out = tmp_path / "sweep"
    assert main(["sweep", "--seeds", "0-3", "--epochs", "2", "--n-train", "32", "--n-test", "16",
                 "--no-figures", "--out", str(out)]) == 0
    assert "4 seeds: test accuracy" in capsys.readouterr().out
    summary = json.loads((out / "sweep.json").read_text())
    assert len((out / "sweep.csv").read_text().splitlines()) == 5
    assert summary  # per-seed results are there
    assert "--seeds" in _error(capsys, ["sweep", "--seeds", "5-1", "--out", str(tmp_path / "bad")])


@pytest.mark.parametrize("argv,expected", [
    (["train", "--threads", "0"], "--threads"),
    (["train", "--model", "transformer"], "--model"),
    (["train", "--noise", "-0.1"], "--noise"),
    (["train", "--model", "conv1d", "--bidirectional"], "conv1d"),
    (["train", "--task", "corner-direction", "--loss", "bce"], "--loss bce"),
    (["train", "--standardize"], "--data"),
    (["train", "--test-fraction", "1.5"], "--test-fraction"),
])
def test_bad_model_and_data_options(tmp_path, capsys, argv, expected):
    assert expected in _error(capsys, [*argv, *QUICK, "--out", str(tmp_path / "r")])


@pytest.mark.parametrize("argv,expected", [
    (["train", "--model", "square-conv1d", "--loss", "ce"],
     "squareseq: error: --loss ce pins the first logit of a recurrent model at 0; --model square-conv1d has no such "
     "logit: use --loss ce-free (one free logit per class) or bce-logits"),
    (["train", "--threads", "100000"],
     f"squareseq train: error: argument --threads: expected 'auto' or an integer in [1, {MAX_THREADS}] (MAX_THREADS: "
     "4 per CPU), got '100000' (see squareseq train --help)"),
    (["sweep", "--seeds", "4294967296"],
     "squareseq: error: --seeds: seed 4294967296 is outside [0, 2**32): give seeds from 0 to 4294967295, as train "
     "--seed takes them"),
])
def test_options_that_once_failed_inside_are_refused_before_any_folder(tmp_path, capsys, argv, expected):
    """`--model conv1d --loss ce` was an error from inside build_model, `--threads 100000` a segfault, `sweep
    --seeds 4294967296` accepted although train refuses it: one exact line each, exit 2, no folder."""
    out = tmp_path / "r"
    assert _error(capsys, [*argv, *QUICK[:6], "--quiet", "--out", str(out)]) == expected
    assert not out.exists()


def test_train_gru_on_packed_eight_class_sequences_then_predict(tmp_path, capsys):
    """The beyond-the-tutorial options run end to end and are recorded in metrics.json; predict
    names the likeliest class of a multi-class run, and --json gives all eight by name."""
    from squareseq.data.squares import class_names

    out = tmp_path / "r"
    assert main(["train", *QUICK, "--model", "gru", "--bidirectional", "--variable-len",
                 "--task", "corner-direction", "--noise", "0.2", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["loss"] == "ce-free" and metrics["config"]["task"] == "corner-direction"
    assert len(metrics["test"]["correct_per_class"]) == 8 and len(metrics["test"]["confusion_matrix"]) == 8
    assert metrics["model"]["cell"] == "gru" and metrics["model"]["bidirectional"] is True
    capsys.readouterr()
    [record] = _predict(capsys, [str(out), "--points", "-1,-1 -1,1 1,1"])
    assert list(record["probabilities"]) == metrics["class_names"] == class_names("corner-direction")
    assert 0 <= record["class"] < 8
    assert main(["evaluate", str(out)]) == 0


def test_train_on_a_data_file(tmp_path, capsys):
    """--data trains on the user's own .npz and refuses options that only shape generated data."""
    from squareseq.data.squares import make_sequences

    points, labels = make_sequences(60, seed=3)
    np.savez(tmp_path / "mine.npz", X=np.stack(points).astype(np.float32), y=labels.astype(np.int64))
    out = tmp_path / "r"
    assert main(["train", *QUICK, "--data", str(tmp_path / "mine.npz"), "--standardize", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["correct_per_class"][0][1] + metrics["test"]["correct_per_class"][1][1] == 12
    [record] = _predict(capsys, [str(out), "--points", "-1,-1 -1,1 1,1 1,-1"])
    assert list(record["probabilities"]) == ["0", "1"]  # the file's labels, as text
    assert "--noise" in _error(capsys, ["train", *QUICK, "--data", str(tmp_path / "mine.npz"), "--noise", "0.3",
                                        "--out", str(tmp_path / "r2")])
    assert "mine.csv" in _error(capsys, ["train", *QUICK, "--data", str(tmp_path / "mine.csv"),
                                         "--out", str(tmp_path / "r3")])


@pytest.mark.slow
def test_plot_redraws_a_run_folder(tmp_path, capsys):
    """`squareseq plot RUN_DIR` redraws figures and report.html from the folder alone."""
    out = tmp_path / "r"
    assert main(["train", "--epochs", "2", "--n-train", "32", "--n-test", "16", "--quiet", "--no-animation",
                 "--out", str(out)]) == 0
    (out / "report.html").unlink()
    (out / "hidden_steps.png").unlink()
    assert main(["plot", str(out), "--no-animation"]) == 0
    assert (out / "report.html").exists() and (out / "hidden_steps.png").exists()
    assert "metrics.json" in _error(capsys, ["plot", str(tmp_path)])


def _tampered_record(run_dir, tmp_path, write):
    """A copy of the shared run whose metrics.json ``write(path, metrics)`` rewrites."""
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    write(copy / "metrics.json", json.loads((copy / "metrics.json").read_text()))
    return copy


def _json(change):
    def write(path, metrics):
        change(metrics)
        path.write_text(json.dumps(metrics))
    return write


@pytest.mark.parametrize("write,expected", [
    (lambda p, m: p.write_text("[1, 2]"), "{m} holds an array, not the JSON object squareseq writes: it is not a "
                                          "record squareseq wrote"),
    (lambda p, m: p.write_text("[" * 100_000 + "]" * 100_000),
     "{m} nests lists or objects more than 8 deep (MAX_RECORD_DEPTH): it is not a record squareseq wrote"),
    (lambda p, m: p.write_text('{"a": ' * 20 + "1" + "}" * 20),
     "{m} nests lists or objects more than 8 deep (MAX_RECORD_DEPTH): it is not a record squareseq wrote"),
    (_json(lambda m: m.update(losses=["a", {}])), '{m}: losses must be a list of numbers, got ["a", {{}}]'),
    (_json(lambda m: m.update(test=[])), "{m}: test must be an object, got []"),
    (_json(lambda m: m["test"].update(correct_per_class=[[5, 2]])),
     "{m}: test.correct_per_class must be a list of [correct, total] counts, got [[5, 2]]"),
    (_json(lambda m: m["test"].update(confusion_matrix=[[1, 2]])),
     "{m}: test.confusion_matrix must be a square table of counts, got [[1, 2]]"),
    (_json(lambda m: m.update(class_names=[1])), "{m}: class_names must be a list of names, got [1]"),
    (_json(lambda m: m.update(skipped_figures={"replays": 3})),
     '{m}: skipped_figures must be an object of reasons, got {{"replays": 3}}'),
    (_json(lambda m: m.update(epochs="3")), '{m}: epochs must be a count, got "3"'),
    (_json(lambda m: m["config"].update(n_train=10**12)),
     "{m} and checkpoint.pt come from different runs: metrics.json's config has n_train 1000000000000, the "
     "checkpoint's run_config 32; plot redraws the checkpoint's run, so restore the run's own metrics.json (or "
     "retrain)"),
    (_json(lambda m: m["model"].update(hidden_dim=7)),
     "{m} and checkpoint.pt come from different runs: metrics.json's model has hidden_dim 7, the checkpoint's "
     "model_config 2; plot redraws the checkpoint's run, so restore the run's own metrics.json (or retrain)"),
])
def test_plot_validates_the_run_record_it_reads(run_dir, tmp_path, capsys, write, expected):
    """A tampered metrics.json (a list, 100000 levels deep, wrong types, another run's config or model) was an
    internal error or was drawn as if it were the checkpoint's run: now one exact line, exit 2, before drawing."""
    run = _tampered_record(run_dir, tmp_path, write)
    before = sorted(p.name for p in run.iterdir())
    assert _error(capsys, ["plot", str(run), "--no-animation"]) == (
        "squareseq: error: " + expected.format(m=run / "metrics.json"))
    assert sorted(p.name for p in run.iterdir()) == before


def test_plot_refuses_an_oversized_record(run_dir, tmp_path, capsys, monkeypatch):
    from squareseq.runs import rebuild

    monkeypatch.setattr(rebuild, "MAX_RECORD_BYTES", 100)
    run = _tampered_record(run_dir, tmp_path, lambda p, m: None)
    size = (run / "metrics.json").stat().st_size
    assert _error(capsys, ["plot", str(run)]) == (
        f"squareseq: error: {run / 'metrics.json'} holds {size:,} bytes; squareseq reads a metrics.json of at most "
        "100 (MAX_RECORD_BYTES): it is not a record squareseq wrote")


def _tampered_checkpoint(run_dir, tmp_path, change):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    data = torch.load(copy / "checkpoint.pt", weights_only=True)
    change(data)
    torch.save(data, copy / "checkpoint.pt")
    return copy


@pytest.mark.parametrize("change,expected", [
    (lambda d: d["run_config"].update(data=123), " holds an invalid run configuration (--data must be a file name, "
                                                 "got 123)"),
    (lambda d: d["run_config"].update(variable_len="yes"),
     " holds an invalid run configuration (--variable-len must be true or false, got 'yes')"),
    (lambda d: d["model_state_dict"].update({"classifier.bias": torch.zeros(1, dtype=torch.complex64)}),
     ": model_state_dict entry classifier.bias holds complex numbers (complex64); model weights and optimizer "
     "states are real numbers"),
])
def test_evaluate_refuses_tampered_checkpoints_in_one_line(run_dir, tmp_path, capsys, change, expected):
    """`data: 123` was an internal error, `variable_len: "yes"` and complex weights were accepted."""
    run = _tampered_checkpoint(run_dir, tmp_path, change)
    assert _error(capsys, ["evaluate", str(run)]) == f"squareseq: error: {run / 'checkpoint.pt'}{expected}"


def test_resume_refuses_a_malformed_optimizer_state_before_touching_the_folder(run_dir, tmp_path, capsys):
    """`lr: "x"` in the optimizer state failed as an internal error after metrics.json was already deleted: the
    checkpoint is refused when it is read (training.checkpoint.validate), and every file stays as it was."""
    run = _tampered_checkpoint(run_dir, tmp_path,
                               lambda d: d["optimizer_state_dict"]["param_groups"][0].update(lr="x"))
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert _error(capsys, ["train", "--resume", str(run), "--epochs", "5", "--quiet"]) == (
        f"squareseq: error: {run / 'checkpoint.pt'}: optimizer_state_dict param_groups[0] lr must be a finite "
        "number >= 0, got 'x'")
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_evaluate_refuses_a_named_pipe_at_once(tmp_path, capsys):
    """`evaluate` on a FIFO blocked forever waiting for a writer."""
    import os
    import signal

    fifo = tmp_path / "ck.pt"
    os.mkfifo(fifo)

    def blocked(signum, frame):
        raise AssertionError("evaluate blocked on a named pipe")

    previous = signal.signal(signal.SIGALRM, blocked)
    signal.alarm(10)  # a regression fails here instead of hanging the suite
    try:
        message = _error(capsys, ["evaluate", str(fifo)])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert message == (
        f"squareseq: error: {fifo} is a named pipe (FIFO), not a regular file: give the path of a checkpoint file")


def test_evaluate_bounds_the_activations_of_a_data_file_run(tmp_path, capsys, monkeypatch):
    """A data file's sizes are known only once it is read: evaluate checks its test set's forward pass then."""
    from squareseq import sizes

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", X=rng.normal(size=(40, 5, 3)).astype("float32"), y=np.arange(40) % 2)
    run = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "d.npz"), "--epochs", "1", "--no-figures", "--quiet",
                 "--out", str(run)]) == 0
    capsys.readouterr()
    monkeypatch.setattr(sizes, "MAX_ACTIVATION_BYTES", 1000)
    assert _error(capsys, ["evaluate", str(run)]).startswith(
        "squareseq: error: this run's largest forward pass (16 sequences of 5 steps at once) would hold about ")


def test_train_bounds_the_activations_of_a_data_file_before_any_folder(tmp_path, capsys, monkeypatch):
    """Training on a file checks the forward pass of its parts as soon as they are read: no model, no folder."""
    from squareseq import sizes

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", X=rng.normal(size=(40, 5, 3)).astype("float32"), y=np.arange(40) % 2)
    monkeypatch.setattr(sizes, "MAX_ACTIVATION_BYTES", 1000)
    message = _error(capsys, ["train", "--data", str(tmp_path / "d.npz"), "--epochs", "1", "--no-figures",
                              "--quiet", "--out", str(tmp_path / "run")])
    assert message.startswith("squareseq: error: this run's largest forward pass (16 sequences of 5 steps at once) "
                              "would hold about "), message
    assert message.endswith("choose a smaller --test-fraction, --batch-size, --hidden-dim or --num-layers, or use "
                            "fewer or shorter sequences"), message
    assert not (tmp_path / "run").exists()
