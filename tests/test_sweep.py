"""squareseq.runs.sweep: a seed sweep's JSON, CSV, histogram and summary line."""
import csv
import json

import pytest

from squareseq.config import RunConfig
from squareseq.runs.sweep import (
    SWEEP_CSV,
    SWEEP_HISTOGRAM,
    SWEEP_JSON,
    format_summary,
    plot_accuracy_histogram,
    save_sweep,
    write_sweep_csv,
)
from squareseq.training.many import train_many


@pytest.fixture(scope="module")
def results():
    return train_many("0-3", RunConfig(epochs=2, model="gru"))


def test_json_and_csv_hold_every_seed(results, tmp_path):
    """sweep.json and sweep.csv hold every seed's counts and accuracy, and the summary."""
    paths = save_sweep(results, tmp_path / "sweep", figures=False)
    assert sorted(paths) == ["csv", "json"]
    assert paths["json"].name == SWEEP_JSON and paths["csv"].name == SWEEP_CSV
    data = json.loads(paths["json"].read_text())
    assert data == json.loads(json.dumps(results.as_dict()))
    assert [s["seed"] for s in data["seeds"]] == [0, 1, 2, 3]
    assert data["seeds"][0]["correct_per_class"] == results.counts[0]
    assert data["summary"]["converged_share"] == results.converged_share()
    with open(write_sweep_csv(results, tmp_path / "again.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["seed"]) for r in rows] == [0, 1, 2, 3]
    assert [float(r["accuracy"]) for r in rows] == results.accuracy
    for r, c in zip(rows, results.counts):
        assert [[int(r["correct_0"]), int(r["total_0"])], [int(r["correct_1"]), int(r["total_1"])]] == c
    assert (tmp_path / "again.csv").read_bytes() == paths["csv"].read_bytes()
    assert not list((tmp_path / "sweep").glob(".*.tmp"))  # atomic writes leave no temporaries


def test_histogram_and_summary_line(results, tmp_path):
    """The histogram counts every seed and marks the highlighted one; save_sweep draws it."""
    fig = plot_accuracy_histogram(results, highlight_seed=2)
    heights = [patch.get_height() for patch in fig.axes[0].patches]
    assert sum(heights) == 4
    assert any("seed 2" in text.get_text() for text in fig.axes[0].get_legend().get_texts())
    paths = save_sweep(results, tmp_path / "sweep")
    assert sorted(paths) == ["csv", "histogram", "json"] and all(p.exists() for p in paths.values())
    assert paths["histogram"].name == SWEEP_HISTOGRAM
    line = format_summary(results, seed=2)
    assert line.startswith("4 seeds: test accuracy min") and "seed 2:" in line
