"""Tests for the run report: the figure set (squareseq.figures.run_figures), the self-contained
report.html (squareseq.runs.page), finishing and redrawing a run folder without retraining
(squareseq.runs.rebuild), and the old import path squareseq.runs.report."""
import json
import re
import subprocess
import sys
from html.parser import HTMLParser

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from figure_helpers import tiny_run  # noqa: E402
from squareseq import checkpoint as ckpt  # noqa: E402
from squareseq import metrics as M  # noqa: E402
from squareseq.figures.run_figures import (  # noqa: E402
    ANIMATIONS,
    FIGURES,
    hidden_figures_apply,
    hidden_figures_skip_reason,
    write_figures,
)
from squareseq.runs.page import write_report  # noqa: E402
from squareseq.runs.rebuild import finish_run, load_model, redraw_run  # noqa: E402

ALL_PNGS = {name for name, _, _ in FIGURES} - {"conv_filter.png", "hidden_gates.png"}  # an RNN run: no conv, no GRU
ALL_GIFS = {name for name, *_ in ANIMATIONS}
VIEWER = "replay.json"
CONFIG = {"n_train": 48, "train_seed": 13, "n_test": 24, "test_seed": 19, "lr": 0.05, "hidden_dim": 2}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def run():
    return tiny_run(n_epochs=3, n_train=48, n_test=24)


def _write_run_files(run_dir, run):
    """What squareseq train writes before the figures: metrics.json and checkpoint.pt."""
    model, x, y = run["model"], run["x"], run["y"]
    with torch.no_grad():
        counts = M.correct_per_class(model(x), y)
    metrics = {"test": {"correct_per_class": counts.tolist(), "accuracy": M.accuracy(counts)},
               "epochs": run["history"].epochs, **run["history"].as_dict(), "config": CONFIG}
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    ckpt.save(run_dir / "checkpoint.pt", {
        "epoch": run["history"].epochs, "model_state_dict": model.state_dict(),
        "optimizer_state_dict": torch.optim.Adam(model.parameters()).state_dict(),
        "model_config": model.config(), "loss": run["history"].losses, "val_loss": run["history"].val_losses})
    return metrics


class _Refs(HTMLParser):
    """Collects every src/href of a page."""

    def __init__(self):
        super().__init__()
        self.refs = []

    def handle_starttag(self, tag, attrs):
        self.refs += [v for k, v in attrs if k in ("src", "href") and v is not None]


def _refs(page):
    parser = _Refs()
    parser.feed(page)
    return parser.refs


class _Progress:
    """A FigureProgress that keeps its calls."""

    def __init__(self):
        self.calls = []

    def __call__(self, done, total, name):
        self.calls.append((done, total, name))


def _check_progress(calls, written):
    """One call before each file written, naming it, counting up, then one after the last."""
    total = len(written)
    assert calls == [(done, total, path.name) for done, path in enumerate(written)] + [(total, total, "")]


@pytest.fixture(scope="module")
def finished(run, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    metrics = _write_run_files(run_dir, run)
    progress = _Progress()
    written = finish_run(run_dir, run["model"], run["train"], run["test"], run["history"], run["snapshots"],
                         dpi=50, progress=progress)
    return run_dir, written, metrics, progress.calls


def test_finish_run_writes_every_figure_the_replay_and_the_report(finished, run):
    """All PNGs, the interactive replay's data (one record per recorded epoch), snapshots.pt and
    report.html; no GIF unless asked for."""
    run_dir, written, _, _ = finished
    names = {p.name for p in written}
    assert ALL_PNGS | {VIEWER, "snapshots.pt", "report.html"} <= names
    assert not names & ALL_GIFS and not list(run_dir.glob("*.gif"))
    assert all(p.exists() and p.stat().st_size > 0 for p in written)
    payload = json.loads((run_dir / VIEWER).read_text())
    assert [r["epoch"] for r in payload["epochs"]] == run["snapshots"].epochs


@pytest.mark.slow
def test_finish_run_with_gif_writes_both_gifs(run, tmp_path):
    """gif=True (squareseq train --gif) adds both GIFs, one frame per recorded epoch, to the replay."""
    _write_run_files(tmp_path, run)
    written = finish_run(tmp_path, run["model"], run["train"], run["test"], run["history"], run["snapshots"],
                         dpi=50, gif=True)
    assert ALL_GIFS | {VIEWER} <= {p.name for p in written}
    for gif in ALL_GIFS:
        with Image.open(tmp_path / gif) as im:
            assert im.n_frames == len(run["snapshots"])
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/gif;base64,") == len(ALL_GIFS) and page.count('id="sqv-replay-data"') == 1


def test_report_references_only_files_in_the_run_folder(finished):
    """Every src/href is an embedded data URI, a #fragment, or a file that exists beside the
    page; nothing is fetched from the network."""
    run_dir, _, _, _ = finished
    page = (run_dir / "report.html").read_text()
    refs = _refs(page)
    assert refs
    for ref in refs:
        if ref.startswith(("data:", "#")):
            continue
        assert "/" not in ref and (run_dir / ref).exists(), ref
    without_data = re.sub(r'data:[^"]*', "", page)
    without_data = re.sub(r'<script type="application/json"[^>]*>[^<]*</script>', "", without_data)
    assert not re.search(r"https?:|//[a-z]", without_data)
    assert "<link" not in page and not re.search(r"<script[^>]*\ssrc=", page)


def test_report_shows_results_configuration_and_all_images(finished):
    """Per-class counts, accuracy, the confusion matrix, the configuration and one embedded
    image per PNG and GIF of the folder."""
    run_dir, _, metrics, _ = finished
    page = (run_dir / "report.html").read_text()
    (c0, n0), (c1, n1) = metrics["test"]["correct_per_class"]
    assert "Counter-Clockwise (y=0)" in page and "Clockwise (y=1)" in page
    assert f"<td>{c0}</td><td>{n0}</td>" in page and f"<td>{c1}</td><td>{n1}</td>" in page
    assert f"{100 * metrics['test']['accuracy']:.1f}%" in page
    assert "Confusion matrix" in page and f">{n0 - c0}</span>" in page
    assert "train_seed" in page and "test_seed" in page
    assert page.count("data:image/png;base64,") == len(ALL_PNGS)
    assert page.count("data:image/gif;base64,") == 0
    assert page.count('id="sqv-replay-data"') == 1 and "SquareseqViewer.create" in page


def test_report_without_embedding_links_existing_files(finished, tmp_path):
    """embed=False references the images by file name; each one exists."""
    run_dir, _, _, _ = finished
    page = write_report(run_dir, embed=False).read_text()
    files = [r for r in _refs(page) if not r.startswith("#")]
    assert {f for f in files if f.endswith(".png")} == ALL_PNGS
    assert all((run_dir / f).exists() for f in files)
    write_report(run_dir)  # leave the embedded page for the other tests


def test_report_uses_a_recorded_confusion_matrix(tmp_path):
    """A confusion matrix in metrics.json is shown as given; metrics.json is required."""
    with pytest.raises(ValueError, match="metrics.json"):
        write_report(tmp_path)
    metrics = {"test": {"correct_per_class": [[5, 7], [6, 6]], "accuracy": 11 / 13,
                        "confusion_matrix": [[5, 2], [0, 6]]}, "epochs": 1, "losses": [0.5],
               "val_losses": [None], "config": {}}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    page = write_report(tmp_path).read_text()
    assert ">2</span>" in page and "No replay in this run" in page


@pytest.mark.slow
def test_no_animation_writes_no_replay(run, tmp_path):
    """animation=False skips the replays (even with gif=True), and the report says so: the option,
    not the model."""
    _write_run_files(tmp_path, run)
    written = finish_run(tmp_path, run["model"], run["train"], run["test"], run["history"],
                         run["snapshots"], animation=False, dpi=50, gif=True)
    assert not any(p.suffix == ".gif" or p.name == VIEWER for p in written)
    page = (tmp_path / "report.html").read_text()
    assert "No replay in this run: skipped with --no-animation." in page
    assert "No hidden-state figures" not in page


@pytest.mark.slow
def test_write_figures_gives_a_gru_its_journey_and_gates(run, tmp_path):
    """A GRU model gets every hidden-state figure, its journey through its gates, and the figure
    of its gates step by step."""
    from torch import nn

    from squareseq import SquareModel

    torch.manual_seed(0)
    model = SquareModel(2, 2, 1)
    model.basic_rnn = nn.GRU(2, 2, batch_first=True)
    written = {p.name for p in write_figures(tmp_path, model, run["train"], run["test"], run["history"], dpi=50)}
    assert written == ALL_PNGS | {"hidden_gates.png"}


@pytest.mark.slow
def test_redraw_run_redraws_everything_without_training(finished, run, tmp_path):
    """redraw_run rebuilds the model from checkpoint.pt, the data from the configuration's seeds
    and the replay from snapshots.pt, then rewrites the report; no GIF for a folder without one."""
    import shutil

    run_dir = tmp_path / "copy"
    shutil.copytree(finished[0], run_dir)
    for path in [*run_dir.glob("*.png"), run_dir / VIEWER]:
        path.unlink()
    progress = _Progress()
    written = redraw_run(run_dir, dpi=50, progress=progress)
    assert ALL_PNGS | {VIEWER, "report.html"} <= {p.name for p in written}
    assert not list(run_dir.glob("*.gif"))
    _check_progress(progress.calls, written)


@pytest.mark.slow
def test_redraw_run_of_an_old_folder_keeps_its_gifs_and_gains_the_viewer(finished, run, tmp_path):
    """A run folder from before the interactive replay (GIFs, no replay.json): redrawing it
    redraws its GIFs and adds replay.json; the page shows the viewer and the GIFs."""
    import shutil

    run_dir = tmp_path / "old"
    shutil.copytree(finished[0], run_dir)
    (run_dir / VIEWER).unlink()
    Image.new("RGB", (4, 4)).save(run_dir / "training.gif")
    written = {p.name for p in redraw_run(run_dir, dpi=50)}
    assert ALL_GIFS | {VIEWER} <= written
    with Image.open(run_dir / "training.gif") as im:
        assert im.n_frames == len(run["snapshots"])
    page = (run_dir / "report.html").read_text()
    assert page.count("data:image/gif;base64,") == len(ALL_GIFS) and 'id="sqv-replay-data"' in page


def test_redraw_run_refuses_a_folder_that_is_not_a_run(tmp_path):
    """A missing folder or one without metrics.json is a ValueError with a clear message."""
    with pytest.raises(ValueError, match="not found"):
        redraw_run(tmp_path / "missing")
    with pytest.raises(ValueError, match="metrics.json"):
        redraw_run(tmp_path)


def test_load_model_restores_the_trained_weights(finished, run):
    """load_model rebuilds SquareModel from model_config and loads its state dict."""
    model = load_model(ckpt.load(finished[0] / "checkpoint.pt"))
    with torch.no_grad():
        torch.testing.assert_close(model(run["x"]), run["model"](run["x"]))
    with pytest.raises(ValueError, match="model_config"):
        load_model({"model_state_dict": {}})


@pytest.mark.slow
def test_write_figures_for_a_conv1d_model_draws_its_filter_and_no_hidden_states(tmp_path, run):
    """A Conv1d model has no hidden states: its run gets the filter figure instead."""
    from squareseq.models.networks import SquareConv1d

    torch.manual_seed(0)
    model = SquareConv1d()
    written = {p.name for p in write_figures(tmp_path, model, run["train"], run["test"], run["history"])}
    assert "conv_filter.png" in written
    assert not any(name.startswith("hidden_") for name in written)


def test_figures_phase_reports_each_file_in_order(finished):
    """finish_run tells its progress callable about each file before writing it, in the order
    written (snapshots, figures, replays), ending with report.html, then once when done."""
    _, written, _, calls = finished
    _check_progress(calls, written)
    assert [p.name for p in written][0] == "snapshots.pt" and written[-1].name == "report.html"
    assert [name for *_, name in calls].index(VIEWER) > [name for *_, name in calls].index("data.png")


def test_progress_bar_draws_the_figures_phase(capsys):
    """ProgressBar.on_figure shows a "drawing figures" bar naming the file being drawn; with
    disable=True (--quiet) it writes nothing."""
    from squareseq.training.callbacks import ProgressBar

    bar = ProgressBar(disable=False)
    for call in [(0, 2, "losses.png"), (1, 2, "report.html"), (2, 2, "")]:
        bar.on_figure(*call)
    err = capsys.readouterr().err
    assert "drawing figures" in err and "losses.png" in err and "report.html" in err and "2/2" in err
    quiet = ProgressBar(disable=True)
    for call in [(0, 1, "report.html"), (1, 1, "")]:
        quiet.on_figure(*call)
    assert capsys.readouterr().err == ""


@pytest.mark.slow
def test_run_experiment_shows_the_figures_phase_and_records_why_no_replay(tmp_path):
    """run_experiment passes the figures phase to callbacks with on_figure (the progress bar),
    and metrics.json records why the run has no replay; squareseq plot's redraw says the same."""
    from squareseq.config import RunConfig, RunOptions
    from squareseq.runs.experiment import run_experiment
    from squareseq.training.loop import Callback

    class Listener(Callback):
        def __init__(self):
            self.calls = []

        def on_figure(self, done, total, name):
            self.calls.append((done, total, name))

    listener = Listener()
    config = RunConfig(epochs=2, n_train=32, n_test=16)
    run_experiment(config, RunOptions(run_dir=tmp_path / "r", animation=False), callbacks=[listener])
    names = [name for *_, name in listener.calls]
    assert names[-2:] == ["report.html", ""] and "data.png" in names and not any(n.endswith(".gif") for n in names)
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["skipped_figures"] == {"hidden": None, "replays": "skipped with --no-animation",
                                          VIEWER: "skipped with --no-animation",
                                          "training.gif": "skipped with --no-animation",
                                          "boundary.gif": "skipped with --no-animation"}
    redraw_run(tmp_path / "r", dpi=50)  # no snapshots.pt: the recorded reason stands
    assert "No replay in this run: skipped with --no-animation." in (tmp_path / "r" / "report.html").read_text()


def _models_without_replays():
    from squareseq.models.networks import SquareConv1d, build_model

    torch.manual_seed(0)
    return [
        (SquareConv1d(), "the model is a convolution: no hidden states"),
        (build_model("lstm", 2, 2, 1, bidirectional=True), "not drawn for a bidirectional model"),
    ]


@pytest.mark.parametrize("case", range(2), ids=["conv1d", "bidirectional"])
def test_report_says_why_a_model_has_no_replay(case, run, tmp_path):
    """A Conv1d and a bidirectional model get no hidden-state figures and no replays, and the
    report says which reason holds, not --no-animation."""
    model, reason = _models_without_replays()[case]
    assert not hidden_figures_apply(model) and hidden_figures_skip_reason(model).startswith(reason)
    (tmp_path / "metrics.json").write_text(json.dumps({"test": {}, "losses": [0.5], "val_losses": [0.6]}))
    finish_run(tmp_path, model, None, run["test"], run["history"], run["snapshots"], dpi=50)
    page = (tmp_path / "report.html").read_text()
    assert f"No replay in this run: {reason}" in page
    assert f"No hidden-state figures in this run: {reason}" in page
    assert "--no-animation" not in page
    assert hidden_figures_skip_reason(run["model"]) is None


def test_report_names_the_classes_of_an_8_class_run(tmp_path):
    """The counts table and the confusion matrix use metrics.json's class_names."""
    from squareseq.data.squares import class_names

    names = class_names("corner-direction")
    matrix = np.diag([3] * 8)
    matrix[2, 5] = 1
    metrics = {"test": {"correct_per_class": [[3, 3 + (k == 2)] for k in range(8)],
                        "confusion_matrix": matrix.tolist(), "accuracy": 24 / 25},
               "class_names": names, "losses": [0.5], "val_losses": [0.6]}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    page = write_report(tmp_path).read_text()
    assert "class 0" not in page and "Clockwise" not in page
    assert page.count("<td>B ccw (y=2)</td>") == 2  # a row of each table
    assert "<th>C cw (y=5)</th>" in page  # a column of the confusion matrix


def _confusion_styles(page):
    """The inline style of each confusion-matrix cell, row by row."""
    table = page[page.index("Confusion matrix"):]
    table = table[:table.index("</table>")]
    rows = re.findall(r"<tr>(.*?)</tr>", table)[1:]
    return [re.findall(r'<span style="([^"]*)">', row) for row in rows]


def test_confusion_matrix_errors_stand_out_from_zeros(tmp_path):
    """An off-diagonal zero is plain; any error, even 1 in a row of 100, has a clear red
    background, unlike the zero; diagonal cells are blue."""
    metrics = {"test": {"confusion_matrix": [[97, 1, 0], [0, 50, 3], [0, 0, 40]]}, "losses": [0.5]}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    styles = _confusion_styles(write_report(tmp_path).read_text())
    zero, one, three = styles[0][2], styles[0][1], styles[1][2]
    assert "background" not in zero
    for error in (one, three):
        assert error != zero and "background:rgba(214,39,40," in error
        alpha = float(re.search(r"rgba\(214,39,40,([0-9.]+)\)", error).group(1))
        assert alpha >= 0.4  # a clearly coloured cell, light enough for dark text
    assert all("background:rgba(31,119,180," in styles[i][i] for i in range(3))


def test_old_import_path_keeps_the_public_names():
    """squareseq.runs.report re-exports every name it offered before the split, as the same objects."""
    from squareseq import rebuild, report, report_page, run_figures

    old = ["FIGURES", "ANIMATIONS", "SKIPPED_KEY", "FigureProgress", "figure_inputs", "hidden_figures_apply",
           "hidden_figures_skip_reason", "replay_skip_reason", "write_figures", "write_report", "finish_run",
           "redraw_run", "load_model"]
    assert sorted(report.__all__) == sorted(old)
    for name in old:
        home = next(m for m in (run_figures, report_page, rebuild) if name in m.__all__)
        assert getattr(report, name) is getattr(home, name), name


@pytest.mark.slow
def test_page_and_figure_tables_import_without_torch_or_matplotlib():
    """report_page (and the run_figures tables it reads) import neither torch nor matplotlib."""
    code = ("import sys, squareseq.runs.page; "
            "print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "[]", proc.stderr
