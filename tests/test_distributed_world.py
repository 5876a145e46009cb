"""Reading torchrun's environment: who this process is, or None outside torchrun."""
import warnings

import pytest

from squareseq.errors import ConfigError
from squareseq.training.distributed import World, detect


def test_outside_torchrun_there_is_no_world():
    assert detect({}) is None
    assert detect({"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"}) is None  # one process trains as without


def test_torchrun_environment_gives_the_rank_and_restarts():
    env = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "TORCHELASTIC_RESTART_COUNT": "3"}
    assert detect(env) == World(rank=1, world_size=2, local_rank=1, restart_count=3)
    assert not detect(env).is_main
    assert detect({**env, "RANK": "0", "LOCAL_RANK": "0"}).is_main


@pytest.mark.parametrize("env, message", [
    ({"RANK": "x", "WORLD_SIZE": "2"}, "must be integers"),
    ({"RANK": "2", "WORLD_SIZE": "2"}, "RANK=2 with WORLD_SIZE=2"),
    ({"RANK": "0", "WORLD_SIZE": "0"}, "inconsistent"),
])
def test_a_malformed_environment_is_one_line(env, message):
    with pytest.raises(ConfigError, match=message):
        detect(env)


def test_a_launch_is_retried_once_only_when_a_rank_died_of_sigabrt(tmp_path):
    from subprocess import CompletedProcess

    from torchrun_launch import NATIVE_ABORT, launched_with_one_retry

    def launches(*results):
        calls = []

        def launch():
            calls.append((tmp_path / "out").exists())  # the retry starts from no folder
            (tmp_path / "out").mkdir(exist_ok=True)
            return CompletedProcess([], *results[len(calls) - 1])
        return launch, calls

    launch, calls = launches((1, "", f"traceback : {NATIVE_ABORT} received by PID 7"), (0, "ok", ""))
    with pytest.warns(UserWarning, match="aborted"):
        assert launched_with_one_retry(launch, tmp_path / "out").stdout == "ok"
    assert calls == [False, False]
    for results in [((1, "", "squareseq: error: bad flag"),), ((1, "", NATIVE_ABORT), (1, "", NATIVE_ABORT))]:
        launch, calls = launches(*results)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert launched_with_one_retry(launch, tmp_path / "out").returncode == 1
        assert len(calls) == len(results)
