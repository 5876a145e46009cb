"""benchmarks/uea.py: the archive-to-npz conversion, the summary row and the published numbers."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
uea = pytest.importorskip("uea")


def test_padded_turns_aeon_layout_into_nlf_with_lengths():
    series = [np.arange(6, dtype=float).reshape(2, 3), np.arange(10, 20, dtype=float).reshape(2, 5)]
    X, lengths = uea._padded(series)
    assert X.shape == (2, 5, 2) and X.dtype == np.float32
    assert lengths.tolist() == [3, 5]
    assert X[0, :3, 1].tolist() == [3.0, 4.0, 5.0]
    assert X[0, 3:].tolist() == [[0.0, 0.0], [0.0, 0.0]]
    assert X[1, :, 0].tolist() == [10.0, 11.0, 12.0, 13.0, 14.0]


def test_padded_takes_an_equal_length_array():
    X, lengths = uea._padded(np.ones((4, 3, 7)))
    assert X.shape == (4, 7, 3) and lengths.tolist() == [7] * 4


def test_parse_seeds():
    assert uea.parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert uea.parse_seeds("3,7,10-11") == [3, 7, 10, 11]


def test_summary_row_compares_with_dtw():
    meta = {"n_train": 10, "n_test": 5, "length": 24, "channels": 1, "classes": 2, "variable_length": False}
    runs = [{"seed": s, "accuracy": a, "seconds": 1.0} for s, a in enumerate([0.9, 0.96, 0.97])]
    published = {"D": {"dtw": {"accuracy": 0.95, "source": "ucr2018"}, "best_dl": {"accuracy": 0.97, "model": "X"}}}
    row = uea.summarise("D", meta, runs, published)
    assert row["mean"] == pytest.approx(0.943333, abs=1e-6)
    assert row["min"] == 0.9 and row["max"] == 0.97
    assert row["beats_dtw"] is False and row["seeds_above_dtw"] == 2
    assert "D" in uea.render([row], "t")


def test_failed_runs_are_reported_not_averaged():
    meta = {"n_train": 10, "n_test": 5, "length": 24, "channels": 1, "classes": 2, "variable_length": True}
    runs = [{"seed": 0, "rc": 2, "seconds": 0.5, "error": "squareseq: error: bad file"}]
    row = uea.summarise("D", meta, runs, {})
    assert "mean" not in row and row["errors"] == ["squareseq: error: bad file"]
    assert "failed" in uea.render([row], "t")


def test_published_numbers_name_their_source():
    published = json.loads((BENCH / "published_uea.json").read_text())
    sources = published["sources"]
    for name, entry in published["datasets"].items():
        assert name in uea.DATASETS
        dtw = entry["dtw"]
        assert 0 < dtw["accuracy"] <= 1 and dtw["source"] in sources
        best = entry["best_dl"]
        assert (best["accuracy"] is None) == (best["source"] is None)
        if best["source"] is None:
            assert "not found" in best["published"]
        else:
            assert best["source"] in sources and 0 < best["accuracy"] <= 1
