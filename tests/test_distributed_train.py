"""Data-parallel training under torchrun: shards, meaning kept, one writer, exact resume, a SIGTERM
that stops every rank together, and bad input said once (2 local gloo ranks on the CPU)."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data.distributed import DistributedSampler

from squareseq.errors import SquareseqError
from squareseq.training.ddp import ShardedLoader, check_shards, shard_order
from squareseq.training.distributed import ReportedByRankZero
from torchrun_launch import launched_with_one_retry

SRC = str(Path(__file__).resolve().parents[1] / "src")
EPOCHS = 40
STRAIGHT = ["--epochs", str(EPOCHS), "--batch-size", "8", "--no-figures", "--quiet"]


def _env(**extra):
    env = {**os.environ, "PYTHONPATH": SRC, "SQUARESEQ_DIST_TIMEOUT": "30", "OMP_NUM_THREADS": "1",
           "PYTHONFAULTHANDLER": "1"}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RESTART_COUNT"):
        env.pop(name, None)
    return {**env, **extra}


def _torchrun(args, cwd, **kwargs):
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--rdzv-backend", "c10d",
               "--rdzv-endpoint", "localhost:0", "-m", "squareseq", "train", *args]
    return subprocess.Popen(command, cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kwargs)


def _run(args, cwd):
    """Runs torchrun to the end; a launch with ``--out`` into a new folder is retried once when a
    rank died of a native abort (see ``torchrun_launch``)."""
    def launch():
        process = _torchrun(args, cwd)
        out, err = process.communicate(timeout=120)
        return subprocess.CompletedProcess(process.args, process.returncode, out, err)

    out = Path(cwd) / args[args.index("--out") + 1] if "--out" in args else None
    fresh = out is not None and not out.exists()  # a --resume changes its folder: never launched twice
    process = launched_with_one_retry(launch, out) if fresh else launch()
    return process.returncode, process.stdout, process.stderr


# -- in-process: the shards --------------------------------------------------------------------
@pytest.mark.parametrize("n, world", [(128, 2), (131, 2), (10, 3), (7, 4)])
def test_each_rank_takes_distributed_samplers_shard(n, world):
    for epoch in (0, 3):
        for rank in range(world):
            sampler = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True, seed=42,
                                         drop_last=True)
            sampler.set_epoch(epoch)
            assert shard_order(n, world, rank, 42, epoch).tolist() == list(sampler)


def test_the_ranks_batches_together_are_the_one_process_batch_of_the_same_order():
    n, world, batch = 100, 2, 8
    x, y = torch.arange(n).float().reshape(n, 1, 1), torch.arange(n)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(42 + 5))[: n - n % world]
    loaders = [ShardedLoader(x, y, None, batch, world, rank, seed=42) for rank in range(world)]
    for loader in loaders:
        loader.set_epoch(5)
    per_rank = [list(loader) for loader in loaders]
    assert len(per_rank[0]) == len(per_rank[1]) == len(loaders[0])
    for i, batches in enumerate(zip(*per_rank)):
        assert [len(b[1]) for b in batches] == [len(batches[0][1])] * world  # equal sizes: DDP's mean is exact
        together = sorted(torch.cat([b[1] for b in batches]).tolist())
        assert together == sorted(order[i * world * batch:(i + 1) * world * batch].tolist())


def test_packed_shards_are_packed_sequences():
    x, lengths, y = torch.randn(6, 4, 2), torch.tensor([2, 4, 3, 4, 2, 3]), torch.arange(6)
    batch = next(iter(ShardedLoader(x, y, lengths, 2, 2, 1, seed=0)))
    assert isinstance(batch[0], torch.nn.utils.rnn.PackedSequence) and len(batch[1]) == 2


def test_too_few_sequences_for_the_ranks_is_said_by_rank_zero_only():
    check_shards({"training set": 2, "test set": 2}, 2)
    with pytest.raises(SquareseqError, match="the test set holds 1 sequence.*fewer than the 2 ranks") as caught:
        check_shards({"training set": 2, "test set": 1}, 2)
    assert not getattr(caught.value, "quiet", False)
    with pytest.raises(ReportedByRankZero):
        check_shards({"training set": 2, "test set": 1}, 2, rank=1)


# -- two ranks under torchrun ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The tutorial's data on 2 ranks with batch 8, straight through."""
    cwd = tmp_path_factory.mktemp("ddp")
    code, out, err = _run(["--out", "straight", *STRAIGHT], cwd)
    assert code == 0, err
    return cwd / "straight"


def _reference_losses(epochs, **settings):
    """One process, batch 16, fed the same permutations (torch's Adam, a plain autograd loop)."""
    from squareseq.config import RunConfig
    from squareseq.data.squares import pack_padded
    from squareseq.runs.experiment import build_trainer

    trainer, data = build_trainer(RunConfig(epochs=epochs, batch_size=16, **settings))
    trainer.optimizer.close()
    model, loss_fn = trainer.model, trainer.loss_fn
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)

    def batch(split, rows):
        if split.lengths is None:
            return split.x[rows]
        lengths = split.lengths[rows]
        return pack_padded(split.x[rows, : int(lengths.max())], lengths)

    train, test = data.train, data.test
    losses, val_losses = [], []
    for epoch in range(epochs):
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(42 + epoch))
        batch_losses = []
        for i in range(0, len(train), 16):
            loss = loss_fn(model(batch(train, order[i:i + 16])), train.y[order[i:i + 16]])
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            batch_losses.append(loss.item())
        losses.append(float(np.mean(batch_losses)))
        with torch.no_grad():
            val_losses.append(float(np.mean([loss_fn(model(batch(test, torch.arange(i, min(i + 16, len(test))))),
                                                     test.y[i:i + 16]).item()
                                             for i in range(0, len(test), 16)])))
    return losses, val_losses


def test_packed_batches_train_through_ddp_as_one_process_does(tmp_path, monkeypatch):
    """A gloo group of one, in this process: DDP over PackedSequence batches, the reduced losses."""
    from squareseq.config import RunConfig, RunOptions
    from squareseq.runs.distributed_run import run_distributed
    from squareseq.training.distributed import World

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(port))
    config = RunConfig(epochs=3, variable_len=True)
    result = run_distributed(config, RunOptions(run_dir=tmp_path / "run", figures=False, handle_signals=False),
                             World(0, 1, 0))
    losses, val_losses = _reference_losses(3, variable_len=True)
    np.testing.assert_allclose(result.metrics["losses"], losses, rtol=0, atol=1e-6)
    np.testing.assert_allclose(result.metrics["val_losses"], val_losses, rtol=0, atol=1e-6)
    assert result.metrics["world_size"] == 1 and result.metrics["test"]["correct_per_class"][0][1] > 0


@pytest.mark.slow
def test_two_ranks_write_one_run_folder_with_the_whole_sets_metrics(straight):
    record = json.loads((straight / "metrics.json").read_text())
    assert record["status"] == "complete" and record["world_size"] == 2 and record["epochs"] == EPOCHS
    counts = np.array(record["test"]["correct_per_class"])
    assert counts[:, 1].sum() == 128  # the whole test set, reduced over both shards
    assert np.array(record["test"]["confusion_matrix"]).sum() == 128
    assert sorted(p.name for p in straight.iterdir()) == ["checkpoint.pt", "history.csv", "metrics.json"]
    saved = torch.load(straight / "checkpoint.pt", weights_only=True)
    assert saved["world_size"] == 2 and len(saved["rank_rng_states"]) == 2


@pytest.mark.slow
@pytest.mark.exact
def test_two_ranks_with_batch_b_train_as_one_process_with_batch_2b(straight):
    record = json.loads((straight / "metrics.json").read_text())
    losses, val_losses = _reference_losses(EPOCHS)
    np.testing.assert_allclose(record["losses"], losses, rtol=0, atol=1e-5)
    np.testing.assert_allclose(record["val_losses"], val_losses, rtol=0, atol=1e-5)
    assert record["losses"][-1] < record["losses"][0] - 0.05  # it learnt something: the comparison has teeth


def _rank_pid(agent: int, rank: int, deadline: float) -> int:
    while time.monotonic() < deadline:
        try:
            children = Path(f"/proc/{agent}/task/{agent}/children").read_text().split()
        except OSError:
            children = []
        for pid in children:
            try:
                environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"RANK={rank}".encode() in environ:
                return int(pid)
        time.sleep(0.05)
    raise AssertionError(f"no rank {rank} under torchrun")


@pytest.mark.slow
def test_sigterm_on_one_rank_stops_both_at_an_epoch_and_resume_is_exact(straight, tmp_path):
    if not Path("/proc/self/task").is_dir():
        pytest.skip("needs /proc to find the ranks' processes")
    process = _torchrun(["--out", "stopped", "--epochs", "100000", "--batch-size", "8", "--no-figures", "--quiet",
                         "--checkpoint-every", "1"], tmp_path)
    deadline = time.monotonic() + 90
    rank1 = _rank_pid(process.pid, 1, deadline)
    while not (tmp_path / "stopped" / "checkpoint.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(rank1, signal.SIGTERM)
    out, err = process.communicate(timeout=90)
    assert process.returncode != 0
    record = json.loads((tmp_path / "stopped" / "metrics.json").read_text())
    assert record["status"] == "interrupted", err
    stopped_at = record["epochs_completed"]
    assert 1 <= stopped_at < EPOCHS
    saved = torch.load(tmp_path / "stopped" / "checkpoint.pt", weights_only=True)
    assert saved["epoch"] == stopped_at and saved["world_size"] == 2 and len(saved["rank_rng_states"]) == 2
    assert err.count("squareseq: interrupted by SIGTERM") == 1  # rank 0's line only

    code, out, err = _run(["--resume", "stopped", "--epochs", str(EPOCHS), "--quiet"], tmp_path)
    assert code == 0, err
    resumed = json.loads((tmp_path / "stopped" / "metrics.json").read_text())
    expected = json.loads((straight / "metrics.json").read_text())
    assert resumed["losses"] == expected["losses"] and resumed["val_losses"] == expected["val_losses"]
    assert resumed["resumed_from"] == [stopped_at] and resumed["test"] == expected["test"]


@pytest.mark.slow
def test_ranks_started_with_different_settings_refuse_together(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    processes = [
        subprocess.Popen([sys.executable, "-m", "squareseq", "train", "--out", "r", "--epochs", "2", "--no-figures",
                          "--lr", lr], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=_env(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                                  MASTER_PORT=str(port)))
        for rank, lr in ((0, "0.01"), (1, "0.02"))]
    results = [p.communicate(timeout=90) for p in processes]
    assert [p.returncode for p in processes] == [2, 2]
    assert results[0][1].count("\n") == 1 and "the ranks disagree on the run's settings" in results[0][1]
    assert results[1][1] == ""  # rank 0 says it
    assert not (tmp_path / "r").exists()  # nothing written


@pytest.mark.slow
def test_a_two_rank_checkpoint_is_not_resumed_in_one_process(straight, tmp_path, capsys, monkeypatch):
    from squareseq.cli.main import main

    for name in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    before = (straight / "checkpoint.pt").read_bytes()
    assert main(["train", "--resume", str(straight), "--epochs", str(EPOCHS + 1)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "trained by 2 ranks under torchrun: resume it with as many" in err
    assert (straight / "checkpoint.pt").read_bytes() == before


def test_a_rank_that_cannot_see_rank_zeros_folder_fails_with_one_line(tmp_path, monkeypatch):
    """Rank 1's side of the check, in a gloo group of one (rank 0's folder is not on its disk)."""
    import contextlib

    import torch.distributed as dist

    from squareseq.config import RunOptions
    from squareseq.runs import distributed_run
    from squareseq.training.distributed import World

    monkeypatch.setattr(distributed_run, "broadcast_object", lambda value: (str(tmp_path / "elsewhere"), "token"))
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        with contextlib.ExitStack() as stack, pytest.raises(SquareseqError, match="rank 1 cannot see the run folder "
                                                            ".*a run folder on a path the ranks cannot all see"):
            distributed_run._claim(RunOptions(run_dir=tmp_path / "run"), World(1, 2, 1), stack)
    finally:
        dist.destroy_process_group()
    assert not (tmp_path / "run").exists()  # rank 1 writes nothing


@pytest.mark.slow
def test_resuming_with_another_world_size_or_a_one_process_checkpoint_is_refused(straight, tmp_path):
    from squareseq.config import RunConfig, RunOptions
    from squareseq.runs import distributed_run
    from squareseq.runs.experiment import run_experiment
    from squareseq.training.distributed import World

    config = RunConfig(epochs=1)
    with pytest.raises(SquareseqError, match="trained by 2 process.*this torchrun has 3: resume it with as many"):
        distributed_run._resume_here(None, straight, config, World(0, 3, 0))
    run_experiment(config, RunOptions(run_dir=tmp_path / "plain", figures=False, handle_signals=False))
    with pytest.raises(SquareseqError, match="trained in one process: resume it without torchrun"):
        distributed_run._resume_here(None, tmp_path / "plain", config, World(0, 2, 0))


RESTART_WRAPPER = """
import os, sys
if os.environ["RANK"] == "1" and os.environ["TORCHELASTIC_RESTART_COUNT"] == "0":
    from squareseq.runs import distributed_run

    real = distributed_run.DistributedTrainer.checkpoint_state

    def dies_after_the_third_epochs_checkpoint(self, epoch=None):
        state = real(self, epoch)
        if state["epoch"] >= 3:
            os._exit(1)  # a rank lost mid-run, as a machine that goes away
        return state

    distributed_run.DistributedTrainer.checkpoint_state = dies_after_the_third_epochs_checkpoint
from squareseq.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_an_elastic_restart_resumes_from_the_checkpoint_and_ends_as_the_straight_run(straight, tmp_path):
    """torchrun --max-restarts: rank 1 dies after epoch 3's checkpoint in the first attempt; the
    restarted group finds the checkpoint in --out, continues from it, and ends bit for bit as the
    run that never stopped. (Restarts to spare: a restarted gloo rank has been seen to abort at
    start-up, once in about ten runs; the next restart then resumes from the checkpoint again.)"""
    (tmp_path / "wrapper.py").write_text(RESTART_WRAPPER)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "--max-restarts", "3", "wrapper.py", "train", "--out", "restarted", *STRAIGHT, "--checkpoint-every", "1"]
    process = subprocess.run(command, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=240)
    assert process.returncode == 0, process.stderr
    record = json.loads((tmp_path / "restarted" / "metrics.json").read_text())
    expected = json.loads((straight / "metrics.json").read_text())
    assert record["status"] == "complete" and record["resumed_from"] and record["resumed_from"][0] >= 3
    assert record["losses"] == expected["losses"] and record["val_losses"] == expected["val_losses"]
    assert record["test"] == expected["test"]
