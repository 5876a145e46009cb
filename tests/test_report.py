"""Tests for squareseq.report: the run folder's figures, the self-contained report.html, and
redrawing a run folder without retraining."""
import json
import re
from html.parser import HTMLParser

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from figure_helpers import tiny_run  # noqa: E402
from squareseq import checkpoint as ckpt  # noqa: E402
from squareseq import metrics as M  # noqa: E402
from squareseq.report import (  # noqa: E402
    ANIMATIONS,
    FIGURES,
    finish_run,
    load_model,
    redraw_run,
    write_figures,
    write_report,
)

ALL_PNGS = {name for name, _, _ in FIGURES} - {"conv_filter.png"}  # an RNN run has no convolution
ALL_GIFS = {name for name, *_ in ANIMATIONS}
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


@pytest.fixture(scope="module")
def finished(run, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    metrics = _write_run_files(run_dir, run)
    written = finish_run(run_dir, run["model"], run["train"], run["test"], run["history"], run["snapshots"],
                         dpi=50)
    return run_dir, written, metrics


def test_finish_run_writes_every_figure_gif_and_the_report(finished, run):
    """All PNGs, both GIFs (one frame per recorded epoch), snapshots.pt and report.html."""
    run_dir, written, _ = finished
    names = {p.name for p in written}
    assert ALL_PNGS | ALL_GIFS | {"snapshots.pt", "report.html"} <= names
    assert all(p.exists() and p.stat().st_size > 0 for p in written)
    for gif in ALL_GIFS:
        with Image.open(run_dir / gif) as im:
            assert im.n_frames == len(run["snapshots"])


def test_report_references_only_files_in_the_run_folder(finished):
    """Every src/href is an embedded data URI, a #fragment, or a file that exists beside the
    page; nothing is fetched from the network."""
    run_dir, _, _ = finished
    page = (run_dir / "report.html").read_text()
    refs = _refs(page)
    assert refs
    for ref in refs:
        if ref.startswith(("data:", "#")):
            continue
        assert "/" not in ref and (run_dir / ref).exists(), ref
    without_data = re.sub(r'data:[^"]*', "", page)
    assert not re.search(r"https?:|//[a-z]", without_data)
    assert "<link" not in page and "<script" not in page


def test_report_shows_results_configuration_and_all_images(finished):
    """Per-class counts, accuracy, the confusion matrix, the configuration and one embedded
    image per PNG and GIF of the folder."""
    run_dir, _, metrics = finished
    page = (run_dir / "report.html").read_text()
    (c0, n0), (c1, n1) = metrics["test"]["correct_per_class"]
    assert "Counter-Clockwise (y=0)" in page and "Clockwise (y=1)" in page
    assert f"<td>{c0}</td><td>{n0}</td>" in page and f"<td>{c1}</td><td>{n1}</td>" in page
    assert f"{100 * metrics['test']['accuracy']:.1f}%" in page
    assert "Confusion matrix" in page and f">{n0 - c0}</span>" in page
    assert "train_seed" in page and "test_seed" in page
    assert page.count("data:image/png;base64,") == len(ALL_PNGS)
    assert page.count("data:image/gif;base64,") == len(ALL_GIFS)


def test_report_without_embedding_links_existing_files(finished, tmp_path):
    """embed=False references the images by file name; each one exists."""
    run_dir, _, _ = finished
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


def test_no_animation_writes_no_gif(run, tmp_path):
    """animation=False skips the GIFs, and the report says there is no replay."""
    _write_run_files(tmp_path, run)
    written = finish_run(tmp_path, run["model"], run["train"], run["test"], run["history"],
                         run["snapshots"], animation=False, dpi=50)
    assert not any(p.suffix == ".gif" for p in written)
    assert "No replay in this run" in (tmp_path / "report.html").read_text()


def test_write_figures_skips_the_journey_for_a_gru(run, tmp_path):
    """A GRU model gets every hidden-state figure but the journey (an Elman-RNN figure)."""
    from torch import nn

    from squareseq import SquareModel

    torch.manual_seed(0)
    model = SquareModel(2, 2, 1)
    model.basic_rnn = nn.GRU(2, 2, batch_first=True)
    written = {p.name for p in write_figures(tmp_path, model, run["train"], run["test"], run["history"], dpi=50)}
    assert written == ALL_PNGS - {"hidden_journey.png"}


def test_redraw_run_redraws_everything_without_training(finished, run, tmp_path):
    """redraw_run rebuilds the model from checkpoint.pt, the data from the configuration's seeds
    and the GIFs from snapshots.pt, then rewrites the report."""
    import shutil

    run_dir = tmp_path / "copy"
    shutil.copytree(finished[0], run_dir)
    for path in run_dir.glob("*.png"):
        path.unlink()
    for path in run_dir.glob("*.gif"):
        path.unlink()
    written = {p.name for p in redraw_run(run_dir, dpi=50)}
    assert ALL_PNGS | ALL_GIFS | {"report.html"} <= written
    with Image.open(run_dir / "training.gif") as im:
        assert im.n_frames == len(run["snapshots"])


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


def test_write_figures_for_a_conv1d_model_draws_its_filter_and_no_hidden_states(tmp_path, run):
    """A Conv1d model has no hidden states: its run gets the filter figure instead."""
    from squareseq.models import SquareConv1d

    torch.manual_seed(0)
    model = SquareConv1d()
    written = {p.name for p in write_figures(tmp_path, model, run["train"], run["test"], run["history"])}
    assert "conv_filter.png" in written
    assert not any(name.startswith("hidden_") for name in written)
