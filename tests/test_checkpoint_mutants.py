"""Checkpoints: the behaviour mutation testing found unasserted (tools/mutate.py on
squareseq.training.checkpoint): which versions and tutorial files load, each key's check at its
boundary, full messages, and what a successful save leaves behind.

(The learning_rates, resumed_from and optimizer-state checks have their own tests.)"""
import os
import stat

import pytest
import torch

from squareseq import SquareModel
from squareseq.training.checkpoint import FORMAT, VERSION, CheckpointError, atomic_write_bytes, check_fits, load, save


def _tagged(**changes):
    payload = {"format": FORMAT, "version": VERSION, "epoch": 2, "model_state_dict": {"w": torch.zeros(2)},
               "optimizer_state_dict": {"state": {}, "param_groups": []}, "loss": [0.5, 0.25],
               "val_loss": [None, 0.3]}
    payload.update(changes)
    return payload


def _message(tmp_path, payload) -> str:
    path = tmp_path / "ck.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError) as info:
        load(path)
    return str(info.value).replace(str(path), "PATH")


def _loads(tmp_path, payload):
    path = tmp_path / "ok.pt"
    torch.save(payload, path)
    return load(path)


def test_missing_path_and_folder_are_named(tmp_path):
    with pytest.raises(CheckpointError) as info:
        load(tmp_path / "absent.pt")
    assert str(info.value) == f"checkpoint not found: {tmp_path / 'absent.pt'}"
    with pytest.raises(CheckpointError) as info:
        load(tmp_path)
    assert str(info.value) == f"{tmp_path} is a folder, not a checkpoint file"


def test_every_version_up_to_this_one_loads(tmp_path):
    for version in range(1, VERSION + 1):
        assert _loads(tmp_path, _tagged(version=version))["version"] == version


@pytest.mark.parametrize("version,message", [
    (0, "PATH has an invalid checkpoint version 0"),
    (-1, "PATH has an invalid checkpoint version -1"),
    (True, "PATH has an invalid checkpoint version True"),
    (1.0, "PATH has an invalid checkpoint version 1.0"),
    (None, "PATH has an invalid checkpoint version None"),
    (VERSION + 1, f"PATH has checkpoint version {VERSION + 1}; this squareseq reads versions up to {VERSION}: "
                  "upgrade squareseq"),
])
def test_versions_that_do_not_load(tmp_path, version, message):
    assert _message(tmp_path, _tagged(version=version)) == message


def test_a_missing_version_is_invalid(tmp_path):
    payload = _tagged()
    del payload["version"]
    assert _message(tmp_path, payload) == "PATH has an invalid checkpoint version None"


def test_a_foreign_format_is_named(tmp_path):
    assert _message(tmp_path, _tagged(format="x" * 80)) == (
        "PATH has format '" + "x" * 56 + "..., expected 'squareseq-checkpoint'")


def test_tutorial_checkpoints_need_only_the_model(tmp_path):
    """An untagged dict (the tutorial's own files) needs model_state_dict; its epoch and loss
    history are not cross-checked (the tutorial saves them its own way)."""
    data = _loads(tmp_path, {"model_state_dict": {"w": torch.ones(1)}, "epoch": 5, "loss": [1.0]})
    assert data["epoch"] == 5
    assert _loads(tmp_path, {"model_state_dict": {}})["model_state_dict"] == {}
    # an optimizer state, when there is one, is checked in either kind of file: resuming would load it
    assert _message(tmp_path, {"model_state_dict": {}, "optimizer_state_dict": {"state": 1}}) == (
        "PATH: optimizer_state_dict must be a dict with 'state' and 'param_groups'")
    assert _message(tmp_path, {"epoch": 1}) == "PATH is not a complete checkpoint: missing key(s) model_state_dict"


def test_missing_keys_are_all_named_in_order(tmp_path):
    payload = _tagged()
    for key in ("epoch", "loss", "val_loss"):
        del payload[key]
    assert _message(tmp_path, payload) == "PATH is not a complete checkpoint: missing key(s) epoch, loss, val_loss"


@pytest.mark.parametrize("state", [[("w", torch.zeros(1))], {1: torch.zeros(1)}, {"w": [1.0]}])
def test_model_state_must_map_names_to_tensors(tmp_path, state):
    assert _message(tmp_path, _tagged(model_state_dict=state)) == (
        "PATH: model_state_dict must map parameter names to tensors")


@pytest.mark.parametrize("epoch", [-1, True, 1.0, "2"])
def test_epoch_must_be_a_non_negative_int(tmp_path, epoch):
    assert _message(tmp_path, _tagged(epoch=epoch)) == (
        f"PATH: epoch must be a non-negative integer, got {epoch!r}")


def test_epoch_zero_with_no_history_loads(tmp_path):
    assert _loads(tmp_path, _tagged(epoch=0, loss=[], val_loss=[]))["epoch"] == 0
    assert _loads(tmp_path, _tagged(loss=(1, 2.0), val_loss=[None, 3]))["loss"] == (1, 2.0)


@pytest.mark.parametrize("key", ["loss", "val_loss"])
@pytest.mark.parametrize("values", [[True, 1.0], "ab", [[1.0], 2.0], {"a": 1.0}])
def test_histories_must_be_lists_of_numbers(tmp_path, key, values):
    assert _message(tmp_path, _tagged(**{key: values})) == f"PATH: {key} must be a list of numbers"


def test_history_lengths_must_agree(tmp_path):
    assert _message(tmp_path, _tagged(epoch=3)) == "PATH: epoch is 3 but loss holds 2 value(s)"
    assert _message(tmp_path, _tagged(val_loss=[0.1])) == "PATH: loss holds 2 value(s) but val_loss 1"
    assert _message(tmp_path, _tagged(val_loss=[0.1, 0.2, 0.3])) == "PATH: loss holds 2 value(s) but val_loss 3"


@pytest.mark.parametrize("key", ["scheduler_state_dict", "rng_state", "model_config", "run_config"])
def test_optional_dicts_may_be_absent_or_none_but_not_anything_else(tmp_path, key):
    assert key not in _loads(tmp_path, _tagged())
    assert _loads(tmp_path, _tagged(**{key: None}))[key] is None
    assert _loads(tmp_path, _tagged(**{key: {"a": 1}}))[key] == {"a": 1}
    assert _message(tmp_path, _tagged(**{key: [1]})) == f"PATH: {key} must be a dict, got list"


def test_a_non_dict_file_says_what_it_holds(tmp_path):
    assert _message(tmp_path, [1, 2]) == "PATH is not a checkpoint: it holds a list, not a dict"


def test_garbage_gets_torchs_reason_without_its_advice(tmp_path):
    path = tmp_path / "x.pt"
    path.write_bytes(b"\x80\x02garbage")
    with pytest.raises(CheckpointError) as info:
        load(path)
    message = str(info.value)
    assert message.startswith(f"{path} is not a readable checkpoint (") and message.endswith(")")
    reason = message[len(f"{path} is not a readable checkpoint ("):-1]
    assert reason and "weights_only" not in reason and "Weights only load failed" not in reason


def test_save_tags_and_replaces_atomically(tmp_path):
    path = tmp_path / "ck.pt"
    save(path, _tagged(epoch=2))
    untagged = _tagged(epoch=0, loss=[], val_loss=[])
    del untagged["format"], untagged["version"]
    save(path, untagged)
    data = load(path)
    assert (data["format"], data["version"], data["epoch"]) == (FORMAT, VERSION, 0)
    assert sorted(os.listdir(tmp_path)) == ["ck.pt"]
    atomic_write_bytes(str(path), lambda f: f.write(b"abc"))  # a str path works too
    assert path.read_bytes() == b"abc" and os.listdir(tmp_path) == ["ck.pt"]


def test_check_fits_messages_in_full():
    model = SquareModel(2, 2, 1)
    state = dict(model.state_dict())
    with pytest.raises(CheckpointError) as info:
        check_fits(model, {k: v for k, v in state.items() if k.startswith("classifier")})
    assert str(info.value) == ("checkpoint does not fit this model: missing parameter(s) basic_rnn.weight_ih_l0, "
                               "basic_rnn.weight_hh_l0, basic_rnn.bias_ih_l0, basic_rnn.bias_hh_l0")
    with pytest.raises(CheckpointError) as info:
        check_fits(model, {**state, "a": torch.zeros(1), "b": torch.zeros(1)}, where="snapshot 3")
    assert str(info.value) == "snapshot 3 does not fit this model: unexpected parameter(s) a, b"
    with pytest.raises(CheckpointError) as info:
        check_fits(model, {**state, "classifier.bias": torch.zeros(2)})
    assert str(info.value) == ("checkpoint does not fit this model: classifier.bias has shape (2,) in the "
                               "checkpoint but (1,) in the model")


def test_atomic_write_makes_data_durable_before_the_rename(tmp_path, monkeypatch):
    """The new bytes are flushed and fsynced before the rename, and the folder after it: a power
    cut leaves the old file or the whole new one. No descriptor is left open."""
    import squareseq.training.checkpoint as checkpoint

    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        st = os.fstat(fd)
        events.append(("fsync-dir" if stat.S_ISDIR(st.st_mode) else "fsync-file", st.st_size))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", None))
        real_replace(src, dst)

    monkeypatch.setattr(checkpoint.os, "fsync", fsync)
    monkeypatch.setattr(checkpoint.os, "replace", replace)
    fds_before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    for _ in range(3):
        events.clear()
        atomic_write_bytes(tmp_path / "f.bin", lambda f: f.write(b"x" * 10))
        assert events == [("fsync-file", 10), ("replace", None), ("fsync-dir", events[2][1])]
    if fds_before is not None:
        assert len(os.listdir("/proc/self/fd")) == fds_before
    assert (tmp_path / "f.bin").read_bytes() == b"x" * 10


def test_a_folder_that_cannot_be_fsynced_is_no_error(tmp_path, monkeypatch):
    import squareseq.training.checkpoint as checkpoint

    real_fsync = os.fsync

    def fsync(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError("fsync not supported on this folder")
        real_fsync(fd)

    monkeypatch.setattr(checkpoint.os, "fsync", fsync)
    atomic_write_bytes(tmp_path / "f.bin", lambda f: f.write(b"ok"))
    assert (tmp_path / "f.bin").read_bytes() == b"ok"


def test_loading_garbage_warns_nothing_and_str_paths_work(tmp_path):
    """torch's warnings about a foreign pickle protocol stay out of the output: the one-line
    error says what is wrong. Paths may be given as str."""
    import warnings

    path = tmp_path / "x.pt"
    path.write_bytes(b"\x80\x09garbage")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(CheckpointError, match="is not a readable checkpoint"):
            load(str(path))
    assert [str(w.message) for w in caught] == []
    save(str(tmp_path / "ck.pt"), _tagged())
    assert load(str(tmp_path / "ck.pt"))["epoch"] == 2


@pytest.mark.parametrize("content,reason", [
    (b"\x80\x02garbage", "Unsupported operand 103"),  # torch's reason, without its advice around it
    (b"", "EOFError"),  # no message: the exception's name
])
def test_unreadable_files_give_torchs_reason(tmp_path, content, reason):
    path = tmp_path / "x.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        load(path)
    assert str(info.value) == f"{path} is not a readable checkpoint ({reason})"


@pytest.mark.parametrize("size,shown", [(58, "'" + "f" * 58 + "'"), (59, "'" + "f" * 56 + "...")])
def test_long_values_are_cut_at_sixty_characters(tmp_path, size, shown):
    """A value's repr up to 60 characters is shown whole; a longer one is cut to 57 and '...'."""
    assert _message(tmp_path, _tagged(format="f" * size)) == f"PATH has format {shown}, expected 'squareseq-checkpoint'"


def test_atomic_write_leaves_the_process_umask_alone(tmp_path):
    """Reading the umask must put it back: files the process creates afterwards keep their mode."""
    old = os.umask(0o027)
    try:
        atomic_write_bytes(tmp_path / "a.bin", lambda f: f.write(b"a"))
        (tmp_path / "later.txt").write_text("x")
        assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o640
        assert stat.S_IMODE((tmp_path / "later.txt").stat().st_mode) == 0o640
    finally:
        os.umask(old)


def test_a_path_given_as_text_is_named_as_a_path(tmp_path):
    """Messages name the file the way pathlib writes it, whatever spelling the caller used."""
    with pytest.raises(CheckpointError) as info:
        load(f"{tmp_path}//absent.pt")
    assert str(info.value) == f"checkpoint not found: {tmp_path / 'absent.pt'}"


def test_a_run_resumed_at_epoch_zero_and_a_tensor_learning_rate_load(tmp_path):
    """A run stopped before its first epoch ended and resumed records epoch 0; torch.optim takes a
    0-d tensor as its learning rate, and saves it so."""
    weight = torch.zeros(2)
    group = {"lr": torch.tensor(0.01), "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0, "params": [0]}
    data = _loads(tmp_path, _tagged(resumed_from=[0, 1], optimizer_state_dict={
        "state": {0: {"step": torch.tensor(2.0), "exp_avg": weight, "exp_avg_sq": weight}}, "param_groups": [group]}))
    assert data["resumed_from"] == [0, 1]
    # resumed at the checkpoint's own epoch (stopped again before the next one ended)
    assert _loads(tmp_path, _tagged(resumed_from=[2]))["resumed_from"] == [2]
    assert float(data["optimizer_state_dict"]["param_groups"][0]["lr"]) == pytest.approx(0.01)
