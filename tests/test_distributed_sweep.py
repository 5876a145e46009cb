"""``squareseq sweep`` under torchrun: 2 local processes (gloo, CPU) share the models, rank 0 writes
the folder once, and the result equals the one-process sweep's; a rank that disagrees or fails
makes every rank exit non-zero with one line from rank 0; SIGTERM stops all with nothing half written."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from squareseq.cli.main import main
from squareseq.runs.sweep_shard import share
from torchrun_launch import launched_with_one_retry

SRC = str(Path(__file__).resolve().parents[1] / "src")
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--rdzv-backend", "c10d",
            "--rdzv-endpoint", "localhost:0"]
SHORT = ["--epochs", "4", "--quiet"]

# a stand-in for `-m squareseq` that changes one rank's arguments or makes one rank fail
WRAPPER = """
import os, sys
from squareseq.errors import SquareseqError
mode, rank, argv = sys.argv[1], os.environ["RANK"], sys.argv[2:]
if rank == "1" and mode == "mismatch":
    argv += ["--lr", "0.02"]
if rank == "1" and mode == "plan":
    import squareseq.runs.sweep_train as st
    def refuse(*a, **k):
        raise SquareseqError("cannot read sensors.npz: no such file")
    st.plan_sweep = refuse
if rank == "1" and (mode == "train" or mode == "train-once" and os.environ["TORCHELASTIC_RESTART_COUNT"] == "0"):
    import squareseq.runs.sweep_shard as ss
    def crash(*a, **k):
        raise MemoryError("out of memory")
    ss.train_share = crash
from squareseq.cli.main import main
sys.exit(main(argv))
"""


def _env():
    return {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1", "SQUARESEQ_DIST_TIMEOUT": "30",
            "PYTHONFAULTHANDLER": "1"}


def _torchrun(args, cwd, timeout=90):
    """torchrun to the end, into the new folder ``--out`` names (once more if a rank died of a native
    abort: see ``torchrun_launch``)."""
    out = Path(cwd) / args[args.index("--out") + 1]
    assert not out.exists()
    return launched_with_one_retry(
        lambda: subprocess.run([*TORCHRUN, *args], cwd=cwd, env=_env(), capture_output=True, text=True,
                               timeout=timeout), out)


def _squareseq_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("squareseq")]


def _per_seed(folder):
    data = json.loads((folder / "sweep.json").read_text())
    return data, {(s["label"], r["seed"]): r for s in data["settings"] for r in s["seeds"]}


def test_share_covers_every_model_once_in_order():
    for n_settings, n_seeds, world in [(1, 7, 2), (3, 3, 2), (2, 5, 3), (1, 1, 2), (4, 256, 5)]:
        pairs = [(s, seed) for rank in range(world)
                 for s, part in share(n_settings, n_seeds, world, rank) for seed in range(n_seeds)[part]]
        assert pairs == [(s, seed) for s in range(n_settings) for seed in range(n_seeds)]
        sizes = [sum(p.stop - p.start for _, p in share(n_settings, n_seeds, world, r)) for r in range(world)]
        assert max(sizes) - min(sizes) <= 1


@pytest.mark.slow
@pytest.mark.parametrize("grid", [[], ["--lr", "0.01,0.02,0.05"]], ids=["seeds", "grid"])
def test_sharded_sweep_equals_the_one_process_sweep(tmp_path, grid):
    seeds = "0-6" if not grid else "0-2"  # 7 seeds: 4 + 3; the grid's 9 models: 4 + 5, a setting split
    proc = _torchrun(["-m", "squareseq", "sweep", "--seeds", seeds, *grid, *SHORT, "--no-figures", "--out", "two"],
                     tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert main(["sweep", "--seeds", seeds, *grid, *SHORT, "--no-figures", "--out", str(tmp_path / "one")]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]  # no other rank wrote anywhere
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["sweep.csv", "sweep.json"]
    one, one_seeds = _per_seed(tmp_path / "one")
    two, two_seeds = _per_seed(tmp_path / "two")
    assert list(one_seeds) == list(two_seeds)  # same settings, same seeds, same order
    for key, r in one_seeds.items():
        assert two_seeds[key]["test_correct_per_class"] == r["test_correct_per_class"], key
        assert two_seeds[key]["loss"] == pytest.approx(r["loss"], abs=1e-5)  # batched kernels round by batch size
    assert two["best"] == one["best"] and two["grid"] == one["grid"]
    if not grid:
        assert two["config"] == one["config"] and two["summary"] == one["summary"]
    csv_one = (tmp_path / "one" / "sweep.csv").read_text().splitlines()
    csv_two = (tmp_path / "two" / "sweep.csv").read_text().splitlines()
    assert [row.split(",")[:6] for row in csv_two] == [row.split(",")[:6] for row in csv_one]


@pytest.mark.slow
@pytest.mark.parametrize("mode, message", [
    ("mismatch", "squareseq: error: the ranks disagree on --lr: rank 0 has the default, rank 1 has 0.02; "
                 "start every rank with the same command and files"),
    ("plan", "squareseq: error: rank 1 of 2: cannot read sensors.npz: no such file"),
    ("train", "squareseq: error: rank 1 of 2: MemoryError: out of memory"),
])
def test_a_rank_that_disagrees_or_fails_stops_all_with_one_line(tmp_path, mode, message):
    (tmp_path / "wrapper.py").write_text(WRAPPER)
    proc = _torchrun(["wrapper.py", mode, "sweep", "--seeds", "0-3", *SHORT, "--out", "sweep"], tmp_path)
    assert proc.returncode != 0
    assert _squareseq_lines(proc.stderr) == [message], proc.stderr
    assert not (tmp_path / "sweep").exists()  # nothing written (rank 0's claimed folder is removed again)


@pytest.mark.slow
def test_an_elastic_restart_trains_the_sweep_again(tmp_path):
    (tmp_path / "wrapper.py").write_text(WRAPPER)  # rank 1 fails in the first attempt only
    # --standalone: with --rdzv-endpoint localhost:0 the restarted workers find the first attempt's
    # addresses and time out (torch 2.13); a real port or --standalone restarts cleanly
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "--max-restarts", "1", "wrapper.py", "train-once", "sweep", "--seeds", "0-3", *SHORT, "--no-figures",
               "--out", "sweep"]
    proc = subprocess.run(command, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr
    assert _squareseq_lines(proc.stderr) == ["squareseq: error: rank 1 of 2: MemoryError: out of memory"]
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir()) == ["sweep.csv", "sweep.json"]
    assert [r["seed"] for r in json.loads((tmp_path / "sweep" / "sweep.json").read_text())["seeds"]] == [0, 1, 2, 3]


def test_the_docs_name_what_torchrun_sets():
    page = (Path(__file__).resolve().parents[1] / "docs" / "distributed.md").read_text()
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RESTART_COUNT",
                 "SQUARESEQ_DIST_TIMEOUT", "--nnodes", "--node-rank", "--rdzv-backend c10d", "--rdzv-endpoint",
                 "--max-restarts"):
        assert f"`{name}" in page or f" {name} " in page, name


@pytest.mark.slow
def test_sigterm_stops_every_rank_with_nothing_half_written(tmp_path):
    out = tmp_path / "sweep"
    proc = subprocess.Popen([*TORCHRUN, "-m", "squareseq", "sweep", "--seeds", "0-63", "--epochs", "100000",
                             "--out", str(out)], cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not out.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)  # rank 0 claims the folder just before training
        assert out.exists(), proc.communicate(timeout=5)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode != 0
    assert "squareseq: terminated (SIGTERM)" in stderr
    assert not out.exists() or not (out / "sweep.json").exists()
