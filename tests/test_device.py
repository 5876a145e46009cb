"""--device used consistently: checkpoints hold CPU tensors and load onto the CPU wherever a run
trained, a resume may change device (and with it the optimizer class), sweep honours --device,
and an unavailable device is refused in one line before anything is written. No GPU here: CUDA
is monkeypatched where a test needs to see what would happen on one."""
import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from torch import nn, optim

from squareseq.cli import main
from squareseq.config import RunConfig
from squareseq.errors import ConfigError
from squareseq.models.networks import SquareModel
from squareseq.runs import sweep_train
from squareseq.runs.grid import expand_grid
from squareseq.stepbystep import StepByStep
from squareseq.training import checkpoint as ckpt
from squareseq.training.choices import resolve_device
from squareseq.training.optim import FlatAdam
from test_stepbystep import _loaders

QUICK = ["--epochs", "3", "--n-train", "32", "--n-test", "16", "--no-figures", "--quiet"]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def loads(monkeypatch):
    """Every ``torch.load``'s ``map_location``, in call order."""
    seen = []
    real = torch.load

    def spy(*args, **kwargs):
        seen.append(kwargs.get("map_location"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    return seen


def test_evaluate_predict_and_resume_load_checkpoints_onto_the_cpu(tmp_path, loads, capsys):
    """A run trained on a GPU is read here: every load maps its tensors to the CPU."""
    run = tmp_path / "run"
    assert main(["train", *QUICK, "--out", str(run)]) == 0
    loads.clear()
    assert main(["evaluate", str(run)]) == 0
    assert main(["predict", str(run), "--points", "1,1 1,-1 -1,-1 -1,1"]) == 0
    assert main(["train", "--resume", str(run), "--epochs", "4", "--quiet", "--no-figures"]) == 0
    assert len(loads) >= 4 and {str(torch.device(m)) for m in loads} == {"cpu"}


def test_checkpoint_tensors_are_saved_from_the_cpu_without_copies():
    """``on_cpu`` keeps CPU tensors as they are (no copy) through nested dicts, lists and tuples."""
    weight = torch.ones(2)
    data = {"model": {"w": weight}, "list": [weight, (weight, 3)], "n": 1}
    moved = ckpt.on_cpu(data)
    assert moved["model"]["w"] is weight and moved["list"][0] is weight and moved["list"][1][0] is weight
    assert moved["list"][1] == (weight, 3) and isinstance(moved["list"][1], tuple) and moved["n"] == 1


def _trainer(optimizer_class, fast=True):
    torch.manual_seed(21)
    model = SquareModel(n_features=2, hidden_dim=2, n_outputs=1)
    sbs = StepByStep(model, nn.BCEWithLogitsLoss(), optimizer_class(model.parameters(), lr=0.01), fast=fast,
                     device="cpu")
    sbs.set_loaders(*_loaders())
    return sbs


@pytest.mark.exact
@pytest.mark.parametrize("first, then", [(optim.Adam, FlatAdam), (FlatAdam, optim.Adam)],
                         ids=["gpu-adam-to-cpu-flat", "cpu-flat-to-gpu-adam"])
def test_a_resume_may_change_the_optimizer_class_with_the_device(tmp_path, first, then):
    """A GPU run trains torch.optim.Adam, a CPU run squareseq's FlatAdam: a checkpoint of either
    continues in the other exactly (on the CPU, where both are the same arithmetic)."""
    straight = _trainer(first, fast=False)
    straight.train(2)
    straight.save_checkpoint(tmp_path / "two.pt")
    straight.train(2, seed=None)
    resumed = _trainer(then, fast=False)
    resumed.load_checkpoint(tmp_path / "two.pt")
    resumed.train(2, seed=None)
    assert resumed.losses == straight.losses and resumed.val_losses == straight.val_losses


def test_auto_and_the_refusals_on_a_machine_with_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(ConfigError, match=r"^device cuda:2: this machine has 2 CUDA device\(s\), cuda:0 to cuda:1; "
                                          r"choose one of them$"):
        resolve_device("cuda:2")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None:
        monkeypatch.setattr(mps, "is_available", lambda: False)
        with pytest.raises(ConfigError, match=r"^device mps: no MPS \(Apple GPU\) device is available; use device cpu$"):
            resolve_device("mps")


@pytest.mark.parametrize("command", [["train", *QUICK], ["sweep", "--seeds", "0-1", "--epochs", "2", "--quiet"]])
def test_train_and_sweep_refuse_a_missing_gpu_before_writing(tmp_path, capsys, monkeypatch, command):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "out"
    assert main([*command, "--device", "cuda", "--out", str(out)]) == 2
    assert capsys.readouterr().err == "squareseq: error: --device cuda: no CUDA device is available; use --device cpu\n"
    assert not out.exists()


def test_resume_on_a_missing_gpu_is_refused_and_changes_nothing(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    assert main(["train", *QUICK, "--out", str(run)]) == 0
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["train", "--resume", str(run), "--epochs", "4", "--device", "cuda"]) == 2
    assert "no CUDA device is available" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_sweep_trains_every_model_on_its_device(monkeypatch):
    """On a GPU every setting trains run by run there (the batched pass is CPU code), its checks
    run on the CPU, and the result says so; here build_trainer is watched, then trains on the CPU."""
    settings = expand_grid({**RunConfig(epochs=2, n_train=32, n_test=16).to_dict(), "hidden_dim": (2, 3)})
    cpu_plan = sweep_train.plan_sweep(settings, [0, 1])
    assert cpu_plan.batched == [True, True] and cpu_plan.device == torch.device("cpu")
    plan = sweep_train.plan_sweep(settings, [0, 1], device=torch.device("cuda"))
    assert plan.batched == [False, False] and plan.device == torch.device("cuda") and plan.data is not None
    asked = []
    real = sweep_train.build_trainer

    def watched(config, data=None, threads="auto", device="cpu"):
        asked.append(torch.device(device))
        return real(config, data, threads=threads, device="cpu")

    monkeypatch.setattr(sweep_train, "build_trainer", watched)
    result = sweep_train.run_sweep(plan)
    assert asked == [torch.device("cuda")] * 4
    assert result.notes == ["trained on cuda, each model on its own (the batched pass runs on the CPU only)"]
    assert [len(s.val_accuracy) for s in result.settings] == [2, 2]


def test_the_device_check_script_skips_cleanly_without_cuda(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("device_check", ROOT / "benchmarks" / "device_check.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "device_check", module)
    spec.loader.exec_module(module)
    assert module.main([]) == 0
    assert capsys.readouterr().out.startswith("device check skipped: device cuda: no CUDA device is available")

