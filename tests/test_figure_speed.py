"""A whole run stays quick: ``--no-figures`` loads no drawing code, and the figure phase makes its
files durable in one pass at its end (each file still renamed into place whole, and every one
of them synced before ``metrics.json`` says it is there)."""
import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from squareseq.cli import main
from squareseq.figures import durable

QUICK = ["--epochs", "2", "--n-train", "32", "--n-test", "16", "--quiet"]

# Runs ``squareseq train`` in a fresh interpreter and lists the modules it loaded.
PROBE = """
import json, sys
from squareseq.cli import main
code = main(json.loads(sys.argv[1]))
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _loaded(argv):
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argv)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["code"] == 0
    return set(result["modules"])


DRAWING = ("matplotlib", "PIL", "squareseq.figures.replay", "squareseq.figures.hidden", "squareseq.figures.plots",
           "squareseq.figures.class_hidden", "squareseq.figures.journeys", "squareseq.figures.snapshots")


def test_no_figures_loads_no_drawing_code(tmp_path):
    """``train --no-figures`` imports neither matplotlib nor the figure, replay or hidden-plot modules."""
    loaded = _loaded(["train", *QUICK, "--no-figures", "--out", str(tmp_path / "plain")])
    assert "torch" in loaded and "squareseq.runs.experiment" in loaded  # the probe did train
    assert not loaded & set(DRAWING), sorted(loaded & set(DRAWING))


@pytest.mark.slow
def test_no_animation_loads_no_replay_code(tmp_path):
    """``--no-animation`` draws the PNGs but loads no replay or snapshot code."""
    loaded = _loaded(["train", *QUICK, "--no-animation", "--out", str(tmp_path / "pngs")])
    assert {"matplotlib", "squareseq.figures.hidden"} <= loaded and (tmp_path / "pngs" / "hidden_steps.png").exists()
    assert "squareseq.figures.replay" not in loaded and "squareseq.figures.snapshots" not in loaded


@pytest.fixture
def disk(monkeypatch):
    """Records, in order, every fsync (of a file, by name, or of a folder) and every rename into
    place of the run's files, as ``(event, name)``."""
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        what = os.readlink(f"/proc/self/fd/{fd}")
        kind = "fsync-dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync"
        events.append((kind, Path(what).name))
        real_fsync(fd)

    def replace(src, dst):
        real_replace(src, dst)
        events.append(("rename", Path(dst).name))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names open files through /proc")


def _phase(events):
    """The figure phase's events: after the ``"drawing"`` record, up to the end (the last record)."""
    records = [i for i, event in enumerate(events) if event == ("rename", "metrics.json")]
    return events[records[-2] + 1:]


@pytest.mark.slow
def test_the_figure_phase_syncs_its_files_once_before_the_complete_record(tmp_path, disk):
    run = tmp_path / "run"
    assert main(["train", *QUICK, "--out", str(run)]) == 0
    phase = _phase(disk)
    renamed = [name for kind, name in phase if kind == "rename"]
    assert renamed[-1] == "metrics.json" and json.loads((run / "metrics.json").read_text())["status"] == "complete"
    files = renamed[:-1]
    assert {"losses.png", "hidden_steps.png", "replay.json", "snapshots.pt", "report.html"} <= set(files)
    last_rename = max(i for i, (kind, name) in enumerate(phase) if kind == "rename" and name in files)
    synced = [name for kind, name in phase[:phase.index(("rename", "metrics.json"))]
              if kind == "fsync" and not name.startswith(".")]
    # no file is synced while the phase draws: every one once, after the last is in place
    assert sorted(synced) == sorted(files)
    first_sync = min(i for i, (kind, name) in enumerate(phase) if kind == "fsync" and name in files)
    assert first_sync > last_rename
    dirs = [event for event in phase[1:phase.index(("rename", "metrics.json"))] if event[0] == "fsync-dir"]
    assert phase[0] == ("fsync-dir", run.name) and dirs == [("fsync-dir", run.name)]  # the drawing record's, then one
    assert not list(run.glob(".*.tmp"))


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_drawing_syncs_what_was_written_before_the_record_says_so(tmp_path, disk, monkeypatch,
                                                                                  signum, code):
    from squareseq.figures import run_figures

    real = run_figures._save

    def save(fig, path, dpi):
        if path.name == "hidden_steps.png":
            os.kill(os.getpid(), signum)
        return real(fig, path, dpi)

    monkeypatch.setattr(run_figures, "_save", save)
    run = tmp_path / "run"
    assert main(["train", *QUICK, "--no-animation", "--out", str(run)]) == code
    record = json.loads((run / "metrics.json").read_text())
    assert record["status"] == "interrupted" and record["missing_figures"][0] == "hidden_steps.png"
    phase = _phase(disk)
    before = phase[:phase.index(("rename", "metrics.json"))]  # up to the "interrupted" record
    written = [name for kind, name in before if kind == "rename"]
    assert written == ["losses.png", "corners.png", "sequences.png", "data.png"]
    synced = [name for kind, name in before if kind == "fsync" and not name.startswith(".")]
    assert sorted(synced) == sorted(written)
    assert not (run / "hidden_steps.png").exists() and not list(run.glob(".*.tmp"))


def test_write_file_outside_a_phase_syncs_at_once(tmp_path, disk):
    """Alone (a user's ``save_gif``, ``write_report``), each file is durable when the call returns."""
    durable.write_file(tmp_path / "a.bin", lambda f: f.write(b"a"))
    assert [kind for kind, _ in disk] == ["fsync", "rename", "fsync-dir"] and disk[0][1].startswith(".a.bin.")
    assert disk[1:] == [("rename", "a.bin"), ("fsync-dir", tmp_path.name)]
    assert (tmp_path / "a.bin").read_bytes() == b"a"


def test_write_file_names_the_file_and_leaves_no_temporary(tmp_path):
    import errno

    def full(f):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    (tmp_path / "x.png").write_bytes(b"old")
    with durable.deferred_sync() as batch, pytest.raises(OSError) as caught:
        durable.write_file(tmp_path / "x.png", full)
    assert caught.value.filename == str(tmp_path / "x.png") and batch.pending == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"] and (tmp_path / "x.png").read_bytes() == b"old"


@pytest.mark.parametrize("kind", ["hidden", "boundary"])
def test_replay_frames_map_the_probabilities_once_with_the_same_pixels(kind, monkeypatch):
    """The replay's probability maps go through the colormap once for all frames, not once per
    panel and frame, and the frames' pixels are exactly those of mapping each frame as it is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.colors import Colormap

    from figure_helpers import tiny_run
    from squareseq.figures import replay

    run = tiny_run(n_epochs=6)
    frames = replay.compute_frames(run["snapshots"], run["history"])
    calls = []
    real_call = Colormap.__call__

    def counted(self, *args, **kwargs):
        calls.append(self.name)
        return real_call(self, *args, **kwargs)

    monkeypatch.setattr(Colormap, "__call__", counted)
    fast = replay.render_frames(frames, kind)
    assert len(fast) == len(frames.epochs) == 7
    assert len(calls) <= 3, calls  # the maps once (and a colorbar's own drawing), whatever the frames
    monkeypatch.setattr(replay, "_frame_maps", lambda frames: frames.probs)  # each panel maps its frame
    calls.clear()
    slow = replay.render_frames(frames, kind)
    assert len(calls) >= len(frames.epochs)
    assert all(np.array_equal(a, b) for a, b in zip(fast, slow))


def test_write_figures_syncs_its_files_in_one_pass(tmp_path, disk):
    """``write_figures`` (and ``squareseq plot``, which redraws through the same steps) renames
    every file into place, then syncs each once and the folder once."""
    import matplotlib

    matplotlib.use("Agg")
    from figure_helpers import tiny_run
    from squareseq.figures.run_figures import write_figures

    run = tiny_run(n_epochs=2, recorder=False)
    written = write_figures(tmp_path, run["model"], run["train"], run["test"], run["history"])
    names = [path.name for path in written]
    assert [kind for kind, _ in disk] == ["rename"] * len(names) + ["fsync"] * len(names) + ["fsync-dir"]
    assert [name for _, name in disk[:len(names)]] == names and sorted(n for _, n in disk[len(names):-1]) == sorted(names)
