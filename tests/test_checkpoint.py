"""squareseq.training.checkpoint and squareseq.training.rng: atomic writes, safe and validated loads, RNG states."""
import os
import random
import shlex
import signal
import time

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from squareseq import SquareModel, rng
from squareseq.errors import SquareseqError
from squareseq.training.checkpoint import FORMAT, VERSION, CheckpointError, atomic_write_bytes, check_fits, load, save


def _payload(n: int, size=(64, 512)):
    """A complete checkpoint whose every tensor and number encodes ``n`` (a torn mix would show)."""
    return {"epoch": n, "model_state_dict": {"w": torch.full(size, float(n))},
            "optimizer_state_dict": {"state": {}, "param_groups": []}, "loss": [float(n)] * n, "val_loss": [None] * n}


def _one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    return message


def test_save_tags_format_and_loads_back(tmp_path):
    """save() tags format and version and leaves no temporary file; load() returns the dict."""
    save(tmp_path / "ck.pt", _payload(3))
    data = load(tmp_path / "ck.pt")
    assert data["format"] == FORMAT and data["version"] == VERSION == 2 and data["epoch"] == 3
    assert os.listdir(tmp_path) == ["ck.pt"]


def test_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    """A writer that fails half-way leaves the previous file intact and removes its temporary."""
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")

    def fail(f):
        f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write_bytes(path, fail)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["f.bin"]


@pytest.mark.parametrize("change,expected", [
    ({"version": 99}, "version 99"),
    ({"version": "2"}, "invalid checkpoint version"),
    ({"format": "other"}, "format 'other'"),
    ({"epoch": -1}, "epoch must be"),
    ({"loss": ["x"]}, "loss must be a list"),
    ({"model_state_dict": {"w": 3}}, "model_state_dict"),
    ({"rng_state": [1, 2]}, "rng_state must be a dict"),
    ({"epoch": 5}, "epoch is 5 but loss holds 3"),
])
def test_malformed_checkpoints_name_what_does_not_match(tmp_path, change, expected):
    """A wrong version, format, key type or count gives one line naming it."""
    torch.save({"format": FORMAT, "version": VERSION, **_payload(3), **change}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError) as info:
        load(tmp_path / "bad.pt")
    assert expected in _one_line(info)


def test_missing_keys_are_named(tmp_path):
    payload = {"format": FORMAT, "version": VERSION, **_payload(1)}
    del payload["optimizer_state_dict"], payload["val_loss"]
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="missing key.*optimizer_state_dict, val_loss"):
        load(tmp_path / "bad.pt")


@pytest.mark.parametrize("content,expected", [
    (b"", "not a readable checkpoint"),
    (b"\x80\x02garbage", "not a readable checkpoint"),
    (None, "not a dict"),
])
def test_non_checkpoint_files(tmp_path, content, expected):
    path = tmp_path / "x.pt"
    if content is None:
        torch.save(torch.zeros(3), path)
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        load(path)
    assert expected in _one_line(info)


def test_truncated_checkpoint_is_refused_in_one_line(tmp_path):
    """A torn file (what a non-atomic writer leaves) is refused clearly, whatever the cut."""
    save(tmp_path / "ck.pt", _payload(2, size=(8, 8)))
    data = (tmp_path / "ck.pt").read_bytes()
    for cut in (1, len(data) // 3, len(data) // 2, len(data) - 5):
        (tmp_path / "torn.pt").write_bytes(data[:cut])
        with pytest.raises(CheckpointError) as info:
            load(tmp_path / "torn.pt")
        _one_line(info)


class _Payload:
    """Unpickling this creates a marker file: the code a malicious checkpoint would run."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


class _ShellPayload(_Payload):
    """The real thing: unpickling this runs a shell command through ``os.system``."""

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(self.marker)}",))


@pytest.mark.parametrize("kind", [_Payload, _ShellPayload])
@pytest.mark.parametrize("where", ["top", "nested", "state"])
def test_pickled_code_is_refused_and_never_runs(tmp_path, where, kind):
    """weights_only loading refuses any pickled global (``builtins.open``, ``os.system``), wherever it
    hides; its code never runs, and the message never passes on torch's advice to load it again
    with ``weights_only=False``."""
    marker = tmp_path / "pwned"
    payload = _payload(1, size=(2, 2))
    if where == "top":
        payload["evil"] = kind(str(marker))
    elif where == "nested":
        payload["run_config"] = {"a": [1, {"b": kind(str(marker))}]}
    else:
        payload["model_state_dict"]["w"] = kind(str(marker))
    torch.save(payload, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError) as info:
        load(tmp_path / "evil.pt")
    message = _one_line(info)
    assert "refusing to load" in message
    assert "weights_only" not in message and "will likely succeed" not in message
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"\x80\x02garbage", bytes(range(256)) * 4, b"PK\x03\x04junk"])
def test_unreadable_files_get_no_advice_to_load_unsafely(tmp_path, content):
    """Whatever torch's error says about ``weights_only=False``, the message keeps only the reason."""
    path = tmp_path / "x.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        load(path)
    message = _one_line(info)
    assert "not a readable checkpoint" in message
    assert "weights_only" not in message and "will likely succeed" not in message


def test_check_fits_names_the_mismatch():
    """Missing, unexpected and differently shaped parameters are named with both shapes."""
    model = SquareModel(2, 2, 1)
    state = SquareModel(2, 3, 1).state_dict()
    with pytest.raises(CheckpointError, match=r"basic_rnn.weight_ih_l0 has shape \(3, 2\) in the checkpoint but "
                                              r"\(2, 2\) in the model"):
        check_fits(model, state)
    state = dict(model.state_dict())
    state.pop("classifier.bias")
    with pytest.raises(CheckpointError, match="missing parameter.*classifier.bias"):
        check_fits(model, state)
    with pytest.raises(CheckpointError, match="unexpected parameter.*extra"):
        check_fits(model, {**model.state_dict(), "extra": torch.zeros(1)})
    check_fits(model, model.state_dict())


def _draws(loader):
    return (torch.rand(3).tolist(), np.random.rand(3).tolist(), np.random.randn(1).tolist(), random.random(),
            [b[0].tolist() for b in loader])


def test_rng_state_round_trips_through_a_safe_checkpoint(tmp_path):
    """Every RNG state training consumes (torch, numpy incl. its cached Gaussian, random, and a
    loader's own generator) survives save + weights_only load, and restoring it repeats the draws."""
    g = torch.Generator().manual_seed(5)
    loader = DataLoader(TensorDataset(torch.arange(10.0)), batch_size=4, shuffle=True, generator=g)
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    np.random.randn()  # leaves a cached Gaussian behind
    save(tmp_path / "ck.pt", {**_payload(0, (1, 1)), "rng_state": rng.get_state(loader)})
    expected = _draws(loader)
    torch.manual_seed(9), np.random.seed(9), random.seed(9), g.manual_seed(9)
    rng.set_state(load(tmp_path / "ck.pt")["rng_state"], loader)
    assert _draws(loader) == expected


def test_rng_state_refuses_a_different_loader():
    state = rng.get_state(DataLoader(TensorDataset(torch.zeros(4)), shuffle=True, generator=torch.Generator()))
    with pytest.raises(SquareseqError, match="1 loader generator.*has 0"):
        rng.set_state(state, DataLoader(TensorDataset(torch.zeros(4)), shuffle=True))
    with pytest.raises(SquareseqError, match="malformed rng_state"):
        rng.set_state({"torch": torch.get_rng_state()})


@pytest.mark.slow
def test_sigkill_while_saving_always_leaves_a_loadable_checkpoint(tmp_path):
    """A writer killed with SIGKILL at 24 random instants (mostly mid-write) always leaves a
    complete checkpoint: one of the versions it wrote, never a torn mix."""
    path = tmp_path / "ck.pt"
    chooser = random.Random(0)
    seen = set()
    for trial in range(24):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: write checkpoints back to back until killed
            try:
                os.close(read_end)
                n = 0
                save(path, {**_payload(0), "writer": trial, "counter": 0})
                os.write(write_end, b"x")
                while True:
                    n += 1
                    save(path, {**_payload(n % 20), "writer": trial, "counter": n})
            finally:
                os._exit(0)
        os.close(write_end)
        os.read(read_end, 1)
        os.close(read_end)
        time.sleep(chooser.uniform(0.0, 0.05))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        data = load(path)
        n = data["counter"]
        assert data["writer"] == trial and data["epoch"] == n % 20
        assert torch.equal(data["model_state_dict"]["w"], torch.full((64, 512), float(n % 20)))
        seen.add(n)
    assert len(seen) > 1  # the kills did land at different points of the loop


@pytest.mark.slow
def test_a_checkpoint_that_does_not_fit_leaves_the_trainer_untouched(tmp_path):
    """Loading is all or nothing: weights that fit with an optimizer state that does not (Adam
    buffers of the wrong shape) raise one line, and the trainer keeps its own state."""
    from torch import nn, optim

    from squareseq import StepByStep

    model = SquareModel(2, 2, 1)
    sbs = StepByStep(model, nn.BCEWithLogitsLoss(), optim.Adam(model.parameters(), lr=0.01))
    sbs.save_checkpoint(tmp_path / "ck.pt")
    data = torch.load(tmp_path / "ck.pt", weights_only=True)
    data["model_state_dict"] = {k: v + 1 for k, v in data["model_state_dict"].items()}
    data["optimizer_state_dict"]["state"] = {0: {"step": torch.tensor(1.0), "exp_avg": torch.zeros(5),
                                                 "exp_avg_sq": torch.zeros(5)}}
    torch.save(data, tmp_path / "bad.pt")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError) as info:
        sbs.load_checkpoint(tmp_path / "bad.pt")
    assert "exp_avg has shape (5,) for a parameter of shape (2, 2)" in _one_line(info)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert sbs.optimizer.state_dict()["state"] == {}


def test_atomic_writes_get_the_usual_file_mode(tmp_path):
    """Files written atomically are readable as a plain open() would leave them, not owner-only."""
    import os
    import stat

    from squareseq.training.checkpoint import atomic_write_bytes

    target = tmp_path / "file.bin"
    atomic_write_bytes(target, lambda f: f.write(b"x"))
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
