"""The CLI answers --help and usage errors without importing torch (a second or two saved on
every typo), and the lazy package still offers its public names."""
import json
import subprocess
import sys

import pytest

# Runs main(argv) in a fresh interpreter and reports its exit code and whether torch got imported.
PROBE = """
import json, sys
from squareseq.cli import main
try:
    code = main(json.loads(sys.argv[1]))
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "torch": "torch" in sys.modules}))
"""


def _probe(argv):
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argv)], capture_output=True, text=True,
                          timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1]), proc.stderr


@pytest.mark.parametrize("argv,code", [
    (["--help"], 0),
    (["--version"], 0),
    (["train", "--help"], 0),
    (["predict", "--help"], 0),
    (["sweep", "--help"], 0),
    (["train", "--epochs", "zero"], 2),
    (["train", "--loss", "mse"], 2),
    (["train", "--bogus"], 2),
    (["fly"], 2),
    (["train", "--standardize"], 2),
    (["train", "--model", "conv1d", "--bidirectional"], 2),
    (["sweep", "--seeds", "5-1"], 2),
    (["predict", "run", "--points", "1,2,3"], 2),
])
def test_help_and_usage_errors_do_not_import_torch(argv, code):
    result, stderr = _probe(argv)
    assert result == {"code": code, "torch": False}, (argv, stderr)
    if code == 2:
        assert len(stderr.strip().splitlines()) == 1 and stderr.count("error:") == 1, stderr


def test_python_m_help_does_not_import_torch():
    """``python -m squareseq --help`` itself: -X importtime lists every module imported."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "squareseq", "--help"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and "usage: squareseq" in proc.stdout
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "squareseq.cli" in imported and "torch" not in imported


@pytest.mark.slow
def test_lazy_package_keeps_its_names():
    """``import squareseq`` loads no torch; the public names, ``dir`` and submodules still work."""
    code = """
import sys
import squareseq
assert "torch" not in sys.modules
assert set(squareseq.__all__) <= set(dir(squareseq))
from squareseq import StepByStep, SquareModel, generate_sequences
from squareseq.plots import *
assert callable(plot_losses) and StepByStep.__name__ == "StepByStep"
assert squareseq.SquareModel is SquareModel and squareseq.losses.LOSSES
assert not hasattr(squareseq, "no_such_name")
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "ok", proc.stderr


def test_torch_free_loss_table_matches_losses():
    """The parser's loss names and descriptions are the ones ``squareseq.training.losses`` trains with."""
    from squareseq.config import LOSS_DESCRIPTIONS, LOSS_NAMES
    from squareseq.training.losses import LOSSES

    assert LOSS_NAMES == tuple(LOSSES)
    assert LOSS_DESCRIPTIONS == {name: spec.description for name, spec in LOSSES.items()}
