"""Contract 1: the tutorial's own code, imports swapped, runs on squareseq with its numbers."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "square_model_tutorial.py"
# The tutorial's published final losses. Float kernels differ across CPUs and torch builds in the
# last bits, and 1,600 Adam steps amplify that to ~1e-6; torch's portable ("default") CPU kernels
# reproduce the published numbers within the 1e-6.
TUTORIAL_LOSS, TUTORIAL_VAL_LOSS = 0.0808070469647646, 0.09622128633782268

PROBE = (
    "import runpy, matplotlib; matplotlib.use('Agg');"
    f"g = runpy.run_path({str(SCRIPT)!r});"
    "print(repr(float(g['sbs_rnn'].losses[-1])), repr(float(g['sbs_rnn'].val_losses[-1])))"
)


def _run(extra_env=None, code=None):
    env = {**os.environ, "MPLBACKEND": "Agg", **(extra_env or {})}
    args = [sys.executable, "-c", code] if code else [sys.executable, str(SCRIPT)]
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)


def _imports(path: Path):
    return [line for line in path.read_text().splitlines() if line.startswith(("import ", "from "))]


def test_script_differs_from_tutorial_only_in_imports():
    """The example's squareseq imports are exactly Contract 1's replacement lines."""
    imports = _imports(SCRIPT)
    assert "from squareseq import StepByStep, SquareModel, generate_sequences" in imports
    assert "from squareseq.plots import *" in imports
    assert "from util import StepByStep" not in imports and "from plots import *" not in imports


@pytest.mark.slow
def test_tutorial_prints_its_counts():
    """Run as a script, the tutorial prints tensor([[50, 53], [75, 75]]) and nothing on stderr."""
    proc = _run()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["tensor([[50,", "53],", "[75,", "75]])"]
    assert proc.stderr == ""


@pytest.mark.slow
def test_tutorial_final_losses_match_published_numbers():
    """With torch's portable CPU kernels, the final losses equal the tutorial's within 1e-6."""
    proc = _run({"ATEN_CPU_CAPABILITY": "default"}, code=PROBE)
    assert proc.returncode == 0, proc.stderr
    loss, val_loss = map(float, proc.stdout.split()[-2:])
    assert loss == pytest.approx(TUTORIAL_LOSS, abs=1e-6)
    assert val_loss == pytest.approx(TUTORIAL_VAL_LOSS, abs=1e-6)
