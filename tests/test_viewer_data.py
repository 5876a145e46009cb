"""Tests for the interactive replay's data (squareseq.figures.viewer_data) and its place in the
page (squareseq.runs.page_viewer): shape, quantisation, live records, size and safety."""
import base64
import json

import numpy as np
import pytest
import torch

from figure_helpers import tiny_run
from squareseq import SquareModel
from squareseq.figures.snapshots import SnapshotRecorder
from squareseq.figures.viewer_data import (
    VIEWER_FORMAT,
    empty_payload,
    epoch_record,
    fixed_plane,
    payload_json,
    viewer_meta,
    viewer_payload,
    viewer_sequences,
)
from squareseq.models.hidden import classifier_probability, hidden_states
from squareseq.runs.page import write_report
from squareseq.runs.page_viewer import viewer_html


@pytest.fixture(scope="module")
def run():
    return tiny_run(n_epochs=3, n_train=48, n_test=24)


def _hidden(record, n, s):
    q = np.frombuffer(base64.b64decode(record["hidden"]), dtype="<i2").reshape(n, s, 2)
    return q, q.astype(np.float64) * record["scale"]


def _u8(text):
    return np.frombuffer(base64.b64decode(text), dtype=np.uint8)


def test_payload_holds_every_recorded_epoch_quantised_below_what_a_screen_shows(run):
    """One record per snapshot; hidden states within 1/10000 of the box of the real ones (2-D: no
    projection); probabilities within 1/255 of the classifier's; the losses by epoch."""
    snaps = run["snapshots"]
    payload = viewer_payload(snaps, run["history"])
    meta, seqs = payload["meta"], payload["sequences"]
    assert meta["format"] == VIEWER_FORMAT and meta["binary"] and meta["steps"] == [1, 2, 3, 4]
    assert meta["classes"] == ["counter-clockwise", "clockwise"] and meta["origin"] == [0.0, 0.0]
    assert [r["epoch"] for r in payload["epochs"]] == snaps.epochs == [0, 1, 2, 3]
    assert seqs["n"] == len(snaps.x) and seqs["labels"] == snaps.y.tolist() and seqs["lengths"] is None
    np.testing.assert_allclose(np.reshape(seqs["points"], snaps.x.shape), snaps.x.numpy(), atol=6e-4)
    n, s = snaps.hidden[0].shape[:2]
    last = payload["epochs"][-1]
    _, states = _hidden(last, n, s)
    box = max(np.ptp(meta["xlim"]), np.ptp(meta["ylim"]))
    np.testing.assert_allclose(states, snaps.hidden[-1].numpy(), atol=box / 10000)
    probs = _u8(last["probs"]).reshape(n, s) / 255
    expected = classifier_probability(run["model"].classifier, snaps.hidden[-1].reshape(-1, 2)).reshape(n, s)
    np.testing.assert_allclose(probs, expected.numpy(), atol=1 / 255 + 1e-6)
    assert len(_u8(last["grid"])) == meta["grid"] ** 2 and last["line"] is not None
    assert payload["epochs"][0]["train_loss"] is None
    assert last["train_loss"] == pytest.approx(run["history"].losses[-1], rel=1e-4)
    assert payload["losses"]["train"] == pytest.approx(run["history"].losses, rel=1e-4)


def test_a_default_sized_payload_stays_small():
    """128 sequences of 4 steps over 101 epochs (a default run) give well under 0.5 MB of JSON."""
    torch.manual_seed(0)
    model = SquareModel(2, 2, 1)
    x = torch.randn(128, 4, 2)
    recorder = SnapshotRecorder(x, torch.randint(0, 2, (128,)))
    for epoch in range(101):
        recorder.record(model, epoch)
    text = payload_json(viewer_payload(recorder.snapshots, {"losses": [0.5] * 100, "val_losses": [None] * 100}))
    assert len(text) < 450_000 and "NaN" not in text and ": " not in text
    assert json.loads(text)["losses"]["val"][0] is None


def test_live_records_mark_the_steps_past_a_sequence_end():
    """epoch_record from a model: states equal hidden_states; steps past a sequence's length hold
    -32768 (no state); three classes give three probabilities per step and grid point."""
    torch.manual_seed(1)
    model = SquareModel(2, 2, 3)
    x = torch.randn(5, 4, 2)
    lengths = torch.tensor([4, 2, 3, 4, 1])
    plane = fixed_plane(2)
    record = epoch_record(model, x, lengths, 7, 0.25, None, plane)
    q, states = _hidden(record, 5, 4)
    full = hidden_states(model, x).numpy()
    for i, n in enumerate(lengths.tolist()):
        np.testing.assert_allclose(states[i, :n], full[i, :n], atol=1e-3)
        assert (q[i, n:] == -32768).all()
    assert len(_u8(record["probs"])) == 5 * 4 * 3 and len(_u8(record["grid"])) == plane.n_grid ** 2 * 3
    assert record["epoch"] == 7 and record["train_loss"] == 0.25 and record["line"] is None
    meta = viewer_meta(["a", "b", "c"], plane, range(4), 50)
    assert not meta["binary"] and len(meta["colors"]) == 3 and meta["n_epochs"] == 50
    payload = empty_payload(meta, viewer_sequences(x, torch.tensor([0, 1, 2, 0, 1]), lengths))
    assert payload["sequences"]["lengths"] == lengths.tolist() and payload["epochs"] == []


def test_page_embeds_the_replay_without_letting_its_text_end_the_script(tmp_path, run):
    """A class name that spells </script> stays inside the JSON; an unreadable replay.json gives a
    note, not a failed page."""
    payload = viewer_payload(run["snapshots"], run["history"], class_names=["</script><b>x", "y"])
    (tmp_path / "metrics.json").write_text(json.dumps({"test": {}, "losses": [0.5]}))
    (tmp_path / "replay.json").write_text(payload_json(payload))
    page = write_report(tmp_path).read_text()
    assert "</script><b>x" not in page and page.count('id="sqv-replay-data"') == 1
    (tmp_path / "replay.json").write_text("{not json")
    assert "not readable JSON" in viewer_html(tmp_path)
    assert "sqv-replay-data" not in write_report(tmp_path).read_text()
