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


# -- validation on load: every rule has a case that fails if the rule is removed, and the whole message is checked --

def _adam_payload(n: int = 2):
    """A complete checkpoint of one (2, 3) parameter with an Adam state, as torch.optim.Adam saves it."""
    return {"format": FORMAT, "version": VERSION, "epoch": n, "model_state_dict": {"w": torch.zeros(2, 3)},
            "optimizer_state_dict": {
                "state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.zeros(2, 3), "exp_avg_sq": torch.zeros(2, 3)}},
                "param_groups": [{"lr": 0.01, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0, "amsgrad": False,
                                  "foreach": None, "params": [0]}]},
            "loss": [1.0] * n, "val_loss": [None] * n, "learning_rates": [[0.01], [0.005]], "resumed_from": [1]}


def _refused(tmp_path, payload) -> str:
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError) as info:
        load(tmp_path / "bad.pt")
    return _one_line(info).replace(str(tmp_path / "bad.pt"), "bad.pt")


def _set(path, value):
    """A change to ``_adam_payload()``: the value at ``path`` (a tuple of keys) set to ``value``."""
    def change(payload):
        target = payload
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return payload
    return change


def test_a_valid_adam_checkpoint_loads(tmp_path):
    torch.save(_adam_payload(), tmp_path / "ok.pt")
    assert load(tmp_path / "ok.pt")["resumed_from"] == [1]


_LR = "bad.pt: learning_rates must be a list of lists of finite numbers >= 0, one list per scheduler step"
_RESUMED = ("bad.pt: resumed_from must list the epochs the run was resumed at, in order, each from 0 to the "
            "checkpoint's epoch 2; got {}")
_OPT = "bad.pt: optimizer_state_dict"
_GROUP = ("optimizer_state_dict", "param_groups", 0)
_STATE = ("optimizer_state_dict", "state", 0)


@pytest.mark.parametrize("change,expected", [
    (_set(("learning_rates",), (0.1,)), _LR),
    (_set(("learning_rates",), [0.1]), _LR),
    (_set(("learning_rates",), [["0.1"]]), _LR),
    (_set(("learning_rates",), [[True]]), _LR),
    (_set(("learning_rates",), [[float("nan")]]), _LR),
    (_set(("learning_rates",), [[-0.1]]), _LR),
    (_set(("resumed_from",), 1), _RESUMED.format("1")),
    (_set(("resumed_from",), [True]), _RESUMED.format("[True]")),
    (_set(("resumed_from",), [1.0]), _RESUMED.format("[1.0]")),
    (_set(("resumed_from",), [-1]), _RESUMED.format("[-1]")),
    (_set(("resumed_from",), [3]), _RESUMED.format("[3]")),
    (_set(("resumed_from",), [2, 1]), _RESUMED.format("[2, 1]")),
    (_set(("optimizer_state_dict",), [1]), f"{_OPT} must be a dict with 'state' and 'param_groups'"),
    (_set(("optimizer_state_dict", "state"), []), f"{_OPT} must be a dict with 'state' and 'param_groups'"),
    (_set(("optimizer_state_dict", "param_groups"), {}), f"{_OPT} must be a dict with 'state' and 'param_groups'"),
    (_set(("optimizer_state_dict", "param_groups"), [3]), f"{_OPT} param_groups[0] must be a dict, got int"),
    (_set(_GROUP + ("params",), (0,)), f"{_OPT} param_groups[0] params must be a list of parameter indices, got (0,)"),
    (_set(_GROUP + ("params",), [-1]), f"{_OPT} param_groups[0] params must be a list of parameter indices, got [-1]"),
    (_set(_GROUP + ("params",), ["w"]),
     f"{_OPT} param_groups[0] params must be a list of parameter indices, got ['w']"),
    (_set(_GROUP + ("params",), [0, 0]), f"{_OPT} param_groups list a parameter index more than once"),
    (lambda p: (p["optimizer_state_dict"]["param_groups"][0].pop("lr"), p)[1], f"{_OPT} param_groups[0] has no lr"),
    (_set(_GROUP + ("lr",), "x"), f"{_OPT} param_groups[0] lr must be a finite number >= 0, got 'x'"),
    (_set(_GROUP + ("lr",), -0.1), f"{_OPT} param_groups[0] lr must be a finite number >= 0, got -0.1"),
    (_set(_GROUP + ("lr",), True), f"{_OPT} param_groups[0] lr must be a finite number >= 0, got True"),
    (_set(_GROUP + ("eps",), float("inf")), f"{_OPT} param_groups[0] eps must be a finite number >= 0, got inf"),
    (_set(_GROUP + ("weight_decay",), None),
     f"{_OPT} param_groups[0] weight_decay must be a finite number >= 0, got None"),
    (_set(_GROUP + ("betas",), "ab"), f"{_OPT} param_groups[0] betas must be two numbers in [0, 1), got 'ab'"),
    (_set(_GROUP + ("betas",), (0.9, 1.0)),
     f"{_OPT} param_groups[0] betas must be two numbers in [0, 1), got (0.9, 1.0)"),
    (_set(_GROUP + ("amsgrad",), {"x": 1}),
     f"{_OPT} param_groups[0] amsgrad must be a number, a switch or a list of numbers, got {{'x': 1}}"),
    (lambda p: (p["optimizer_state_dict"]["state"].update({"0": {}}), p)[1],
     f"{_OPT} state has an entry for '0', which is no parameter index of its param_groups"),
    (lambda p: (p["optimizer_state_dict"]["state"].update({1: {}}), p)[1],
     f"{_OPT} state has an entry for 1, which is no parameter index of its param_groups"),
    (_set(_STATE, [1]), f"{_OPT} state 0 must map names to tensors or numbers"),
    (_set(_STATE, {1: torch.zeros(2, 3)}), f"{_OPT} state 0 must map names to tensors or numbers"),
    (_set(_STATE + ("exp_avg",), "x"), f"{_OPT} state 0 exp_avg must be a tensor or a number, got 'x'"),
    (_set(_STATE + ("exp_avg",), torch.zeros(3, 2)),
     f"{_OPT} state 0 exp_avg has shape (3, 2) for a parameter of shape (2, 3)"),
    (_set(_STATE + ("exp_avg_sq",), torch.zeros(2, 3, dtype=torch.complex64)),
     f"{_OPT} state 0 exp_avg_sq holds complex numbers (complex64); model weights and optimizer states are real "
     "numbers"),
    (_set(_STATE + ("step",), torch.tensor(-1.0)), f"{_OPT} state 0 step must be one finite count >= 0"),
    (_set(_STATE + ("step",), torch.tensor(float("nan"))), f"{_OPT} state 0 step must be one finite count >= 0"),
    (_set(("model_state_dict", "w"), torch.zeros(2, 3, dtype=torch.complex64)),
     "bad.pt: model_state_dict entry w holds complex numbers (complex64); model weights and optimizer states are "
     "real numbers"),
    (_set(("model_state_dict", "w"), torch.zeros(2, 3).to_sparse()),
     "bad.pt: model_state_dict entry w is a sparse_coo tensor; a checkpoint holds dense tensors only"),
])
def test_malformed_histories_and_optimizer_states_are_refused_on_load(tmp_path, change, expected):
    """learning_rates, resumed_from, the optimizer state's structure and the tensors' kinds are checked when the
    file is read (an lr of "x" once reached the optimizer and failed as an internal error): one exact line."""
    assert _refused(tmp_path, change(_adam_payload())) == expected


def test_a_tutorial_checkpoint_without_optimizer_state_still_loads(tmp_path):
    """Untagged files may carry no optimizer state, or an empty one; a non-empty one is checked like ours."""
    for optimizer in ({}, None):
        torch.save({"model_state_dict": {"w": torch.zeros(1)}, "optimizer_state_dict": optimizer}, tmp_path / "t.pt")
        load(tmp_path / "t.pt")
    bad = {"model_state_dict": {"w": torch.zeros(1)}, "optimizer_state_dict": {"state": {}, "param_groups": [{}]}}
    assert _refused(tmp_path, bad) == f"{_OPT} param_groups[0] params must be a list of parameter indices, got None"


def test_check_fits_refuses_another_dtype():
    """A float64 tensor would be cast into the float32 parameter without a word: refused, naming both."""
    model = SquareModel(2, 2, 1)
    state = {**model.state_dict(), "classifier.bias": torch.zeros(1, dtype=torch.float64)}
    with pytest.raises(CheckpointError) as info:
        check_fits(model, state, "ck.pt")
    assert _one_line(info) == ("ck.pt does not fit this model: classifier.bias holds float64 numbers in the "
                               "checkpoint but float32 in the model")


@pytest.mark.parametrize("kind", ["fifo", "folder", "missing", "device"])
def test_only_regular_files_are_opened(tmp_path, kind):
    """A named pipe once blocked `evaluate` forever (open waits for a writer): it is refused at once, like a
    folder or a device, and a missing file is named."""
    path = tmp_path / "ck.pt"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "device":
        path = tmp_path / "null"
        os.symlink(os.devnull, path)
    def blocked(signum, frame):
        raise AssertionError("load() blocked on a named pipe")

    previous = signal.signal(signal.SIGALRM, blocked)
    signal.alarm(10)  # a regression fails here instead of hanging the suite
    try:
        with pytest.raises(CheckpointError) as info:
            load(path)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    expected = {"fifo": f"{path} is a named pipe (FIFO), not a regular file: give the path of a checkpoint file",
                "folder": f"{path} is a folder, not a checkpoint file",
                "missing": f"checkpoint not found: {path}",
                "device": f"{path} is a device or socket, not a regular file: give the path of a checkpoint file"}
    assert _one_line(info) == expected[kind]
