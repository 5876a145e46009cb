"""One writer per run folder: a second `train`/`--resume`/`sweep` on a folder another process is
writing is refused in one line (exit 2) and changes nothing; a lock left by a dead process is
taken over; the lock goes when the run ends, however it ends; `--overwrite` replaces only runs."""
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from squareseq.cli import main
from squareseq.config import RunConfig, RunOptions
from squareseq.runs.experiment import run_experiment
from squareseq.training.loop import Callback

pytestmark = pytest.mark.hardening

QUICK = ["--epochs", "2", "--n-train", "32", "--n-test", "16", "--no-figures", "--quiet"]
SRC = str(Path(__file__).resolve().parents[1] / "src")
LOCK = ".squareseq.lock"

# A process holding the lock as squareseq takes it (flock on the lock file, its pid inside),
# until its stdin closes: what a second writer meets while a run is in progress.
_HOLDER = textwrap.dedent("""
    import fcntl, os, sys
    fd = os.open(os.path.join(sys.argv[1], ".squareseq.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode() + b"\\n")
    print("locked", flush=True)
    sys.stdin.read()
""")


def _files(folder: Path):
    """Every file in ``folder`` with its bytes (what a refused writer must leave as it was)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def held(tmp_path):
    """A finished run folder whose lock another (live) process holds; yields (folder, holder)."""
    run = tmp_path / "run"
    assert main(["train", *QUICK, "--out", str(run)]) == 0
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(run)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield run, holder
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


@pytest.mark.parametrize("argv", [
    ["train", *QUICK, "--overwrite", "--out", "{run}"],
    ["train", "--resume", "{run}", "--epochs", "3", "--quiet", "--no-figures"],
    ["sweep", "--seeds", "0-1", "--epochs", "1", "--n-train", "16", "--n-test", "8", "--no-figures", "--quiet",
     "--overwrite", "--out", "{run}"],
    ["plot", "{run}", "--no-animation"],
], ids=["overwrite", "resume", "sweep", "plot"])
def test_a_second_writer_is_refused_and_changes_nothing(held, capsys, argv):
    run, holder = held
    before = _files(run)
    assert main([a.replace("{run}", str(run)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"run folder {run} is in use by process {holder.pid}" in err
    assert "wait for it to finish, or choose another --out" in err
    assert _files(run) == before


class _SecondWriter(Callback):
    """During epoch 1 of a run, starts a real `squareseq train` on the same folder."""

    def __init__(self, run: Path):
        self.run, self.result = run, None

    def on_epoch_end(self, loop, logs):
        if self.result is None:
            self.result = subprocess.run(
                [sys.executable, "-m", "squareseq", "train", *QUICK, "--overwrite", "--out", str(self.run)],
                capture_output=True, text=True, env={**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"})


@pytest.mark.slow
def test_two_train_processes_on_one_folder(tmp_path):
    """While a run trains, a second `squareseq train --overwrite --out` the same folder exits 2
    naming this process; the first run ends complete, its files its own."""
    run = tmp_path / "run"
    second = _SecondWriter(run)
    result = run_experiment(RunConfig(epochs=3, n_train=32, n_test=16),
                            RunOptions(run_dir=run, figures=False, checkpoint_every=1), callbacks=[second])
    assert second.result.returncode == 2, second.result.stderr
    assert f"is in use by process {os.getpid()}" in second.result.stderr
    assert result.metrics["status"] == "complete" and result.metrics["epochs"] == 3
    assert not (run / LOCK).exists()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path, capsys):
    """A killed run leaves its lock file (with its pid); the kernel released the lock itself, so
    the next writer takes it over: an otherwise empty folder counts as empty, a run resumes."""
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / LOCK).write_text(f"{_dead_pid()}\n")
    assert main(["train", *QUICK, "--out", str(fresh)]) == 0
    assert not (fresh / LOCK).exists() and (fresh / "metrics.json").exists()
    (fresh / LOCK).write_text(f"{_dead_pid()}\n")
    assert main(["train", "--resume", str(fresh), "--epochs", "3", "--quiet", "--no-figures"]) == 0
    assert not (fresh / LOCK).exists()


def test_the_lock_is_released_however_the_run_ends(tmp_path, capsys):
    """Normal end, a failed run (NaN loss, exit 3), a refused input after the lock was taken, and
    an interrupted run all leave the folder free for the next writer."""
    from squareseq.runs.lock import RunFolderLock

    ok, failed, refused, stopped = (tmp_path / name for name in ("ok", "failed", "refused", "stopped"))
    assert main(["train", *QUICK, "--out", str(ok)]) == 0
    assert main(["train", *QUICK, "--lr", "1e38", "--out", str(failed)]) == 3
    assert main(["train", *QUICK, "--out", str(refused)]) == 0
    assert main(["train", "--resume", str(refused), "--epochs", "1", "--quiet", "--no-figures"]) == 2

    class _Stop(Callback):
        def on_batch_end(self, loop, batch, n_batches, loss):
            os.kill(os.getpid(), signal.SIGINT)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_experiment(RunConfig(epochs=2, n_train=32, n_test=16), RunOptions(run_dir=stopped, figures=False),
                           callbacks=[_Stop()])
    finally:
        signal.signal(signal.SIGINT, previous)
    for folder in (ok, failed, refused, stopped):
        assert not (folder / LOCK).exists(), folder
        with RunFolderLock(folder) as lock:
            assert lock.held


def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    """`--overwrite` replaces runs only: a folder of other files is refused (exit 2), untouched;
    an empty folder is fine."""
    other = tmp_path / "thesis"
    other.mkdir()
    (other / "chapter1.tex").write_text("precious")
    (other / "history.txt").write_text("also precious")
    before = _files(other)
    assert main(["train", *QUICK, "--overwrite", "--out", str(other)]) == 2
    err = capsys.readouterr().err
    assert f"{other} is not a squareseq run folder" in err and "choose another --out" in err
    assert err.count("\n") == 1
    assert _files(other) == before and sorted(p.name for p in other.iterdir()) == sorted(before)
    assert main(["sweep", "--seeds", "0", "--epochs", "1", "--n-train", "16", "--n-test", "8", "--no-figures",
                 "--quiet", "--overwrite", "--out", str(other)]) == 2
    assert _files(other) == before
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", *QUICK, "--overwrite", "--out", str(empty)]) == 0


def test_overwrite_replaces_a_run_and_a_sweep(tmp_path, capsys):
    run, sweep = tmp_path / "run", tmp_path / "sweep"
    sweep_args = ["sweep", "--seeds", "0", "--epochs", "1", "--n-train", "16", "--n-test", "8", "--no-figures",
                  "--quiet", "--out", str(sweep)]
    assert main(["train", *QUICK, "--out", str(run)]) == 0
    assert main(sweep_args) == 0
    assert main(["train", *QUICK, "--overwrite", "--out", str(run)]) == 0
    assert main([*sweep_args, "--overwrite"]) == 0
    assert not (run / LOCK).exists() and not (sweep / LOCK).exists()


def test_a_refused_run_leaves_no_folder_it_created(tmp_path, capsys):
    """The lock is taken in a folder the run creates; a run refused under it removes that folder."""
    from squareseq.runs.folder import claim_run_dir

    target = tmp_path / "new"
    with pytest.raises(RuntimeError):
        with claim_run_dir(target):
            assert (target / LOCK).exists()
            raise RuntimeError("refused")
    assert not target.exists()


def test_the_lock_file_holds_the_pid_and_goes_on_release(tmp_path):
    from squareseq.runs.lock import RunFolderLock

    (tmp_path / LOCK).write_text("123456789 and more from an older writer\n")
    lock = RunFolderLock(tmp_path)
    assert not lock.held
    lock.release()  # not held: nothing to do
    with lock:
        assert lock.held and not lock.created
        assert (tmp_path / LOCK).read_text() == f"{os.getpid()}\n"
    assert not lock.held and not (tmp_path / LOCK).exists()
    with RunFolderLock(tmp_path) as again:
        assert again.created


def test_a_holder_without_a_readable_pid_is_another_process(held):
    """A lock file whose pid cannot be read still refuses the second writer."""
    from squareseq.runs.lock import RunFolderBusy, RunFolderLock

    run, holder = held
    (run / LOCK).write_text("not a pid")
    with pytest.raises(RunFolderBusy, match=r"is in use by another process \(another squareseq run"):
        RunFolderLock(run).acquire()


def test_a_lock_file_deleted_as_it_is_locked_is_locked_again(tmp_path, monkeypatch):
    """Its holder deletes the lock file as it releases it, between our open and our flock: the
    lock we got is on a file nobody else will open, so the new file is locked instead."""
    import fcntl

    import squareseq.runs.lock as lock_module

    real, calls = fcntl.flock, []

    def flock(fd, op):
        calls.append(fd)
        if len(calls) == 1:  # the holder released: file deleted, and a new one created by a third writer
            (tmp_path / LOCK).unlink()
            (tmp_path / LOCK).write_text("")
        return real(fd, op)

    monkeypatch.setattr(lock_module.fcntl, "flock", flock)
    with lock_module.RunFolderLock(tmp_path) as lock:
        assert len(calls) == 2
        assert os.fstat(lock._fd).st_ino == os.stat(tmp_path / LOCK).st_ino


def test_an_unexpected_lock_error_is_not_called_busy(tmp_path, monkeypatch):
    import errno

    import squareseq.runs.lock as lock_module

    def flock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(lock_module.fcntl, "flock", flock)
    with pytest.raises(OSError) as caught:
        lock_module.RunFolderLock(tmp_path).acquire()
    assert caught.value.errno == errno.ENOLCK and not isinstance(caught.value, lock_module.RunFolderBusy)


def _open_fds():
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors through /proc")
def test_no_descriptor_is_leaked_whichever_way_the_lock_goes(held, monkeypatch):
    """A refused writer, a re-lock after a deleted file, and a release each close what they opened
    (a sweep of thousands of runs, or a server, would otherwise run out of descriptors)."""
    from squareseq.runs.lock import RunFolderBusy, RunFolderLock

    run, holder = held
    before = _open_fds()
    for _ in range(3):
        with pytest.raises(RunFolderBusy):
            RunFolderLock(run).acquire()
    assert _open_fds() == before
    free = run.parent / "free"
    free.mkdir()
    for _ in range(3):
        with RunFolderLock(free):
            assert _open_fds() == before + 1
    assert _open_fds() == before

    import squareseq.runs.lock as lock_module

    real_stat, real_flock, locked, deleted = os.stat, lock_module.fcntl.flock, [], []

    def flock(fd, op):
        real_flock(fd, op)
        locked.append(fd)

    def stat(path, *args, **kwargs):  # the holder deletes the file between our flock and our check
        if Path(path).name == LOCK and locked and not deleted:
            deleted.append(path)
            Path(path).unlink()
            raise FileNotFoundError(path)
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(lock_module.fcntl, "flock", flock)
    monkeypatch.setattr(lock_module.os, "stat", stat)
    with RunFolderLock(free) as lock:
        assert deleted and len(locked) == 2 and (free / LOCK).exists()  # the vanished file let go, a new one locked
        assert os.fstat(lock._fd).st_ino == real_stat(free / LOCK).st_ino
        assert _open_fds() == before + 1
    assert _open_fds() == before


def test_the_lock_file_has_the_mode_a_plain_file_gets(tmp_path):
    from squareseq.runs.lock import RunFolderLock

    mask = os.umask(0o022)
    try:
        lock = RunFolderLock(tmp_path)
        assert lock.created is False  # nothing acquired yet
        with lock:
            assert lock.created
            assert (tmp_path / LOCK).stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(mask)
