"""Hypothesis throws random options, shapes, dtypes and file contents at the CLI and the data
checks: every case works, or ends with a documented exit code and one line, never a traceback."""
import contextlib
import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from squareseq.cli import main
from squareseq.data.checks import check_dataset
from squareseq.errors import SquareseqError

# A bounded, reproducible run by default; SQUARESEQ_FUZZ_EXAMPLES=500 explores more, randomly.
_EXAMPLES = int(os.environ.get("SQUARESEQ_FUZZ_EXAMPLES", "0"))
pytestmark = pytest.mark.slow  # property-based search over many inputs
FUZZ = settings(max_examples=_EXAMPLES or 30, deadline=None, derandomize=not _EXAMPLES, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


STATS = {}


def _run(argv, allowed=(0, 2)):
    """Runs ``main(argv)``; checks the exit code and that stderr is empty (0) or one line."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    text = err.getvalue()
    STATS.setdefault(argv[0], []).append(code)
    assert code in allowed, (argv, code, text)
    assert "Traceback" not in text, text
    if code == 0:
        assert text == "", text
    else:
        assert len(text.strip().splitlines()) == 1, (argv, text)
    return code, out.getvalue()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("fuzz") / "run"
    assert main(["train", "--epochs", "1", "--n-train", "16", "--n-test", "8", "--no-figures", "--quiet",
                 "--out", str(out)]) == 0
    return out


_ints = st.one_of(st.integers(-2, 3).map(str), st.sampled_from(["", "x", "1.5", "1e3", "0x10", "٣", " 2", "-0"]))
_sizes = st.one_of(st.integers(-1, 40).map(str), st.sampled_from(["", "ten", "2.0", "99999999999"]))
_seeds = st.one_of(st.integers(-5, 2**32 + 5).map(str), st.sampled_from(["", "seed", "1e9", "-0"]))
_lrs = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr),
                 st.sampled_from(["", "nan", "inf", "-inf", "1e-320", "1e38", "1e400", "0.01", "abc", "1e6"]))
_OPTIONS = {
    "--epochs": _ints, "--batch-size": _sizes, "--hidden-dim": _ints, "--n-train": _sizes, "--n-test": _sizes,
    "--lr": _lrs, "--seed": _seeds, "--fit-seed": _seeds, "--train-seed": _seeds, "--test-seed": _seeds,
    "--loss": st.sampled_from(["bce-logits", "bce", "ce", "ce-free", "mse", ""]),
    "--checkpoint-every": st.sampled_from(["0", "1", "-1", "x"]),
}


@st.composite
def _train_argv(draw):
    names = draw(st.lists(st.sampled_from(sorted(_OPTIONS)), unique=True, max_size=6))
    argv = []
    for name in names:
        argv += [name, draw(_OPTIONS[name])]
    extra = draw(st.lists(st.sampled_from(["--overwrite", "--bogus", "stray", "--epochs", "--resume", "-"]),
                          max_size=1))
    return argv + extra


@FUZZ
@given(argv=_train_argv())
def test_random_train_options(argv):
    """Random values for every train option (kept tiny where valid): exit 0, 2, or 3 (a numerical
    fault, as --lr 1e38 gives), one line on stderr."""
    if "--epochs" not in argv[:-1]:
        argv = ["--epochs", "1", *argv]
    with tempfile.TemporaryDirectory() as tmp:
        _run(["train", *argv, "--quiet", "--no-figures", "--out", str(Path(tmp) / "run")], allowed=(0, 2, 3))


_dtypes = st.sampled_from([np.float16, np.float32, np.float64, np.int8, np.int64, np.uint8, np.uint64, np.bool_,
                           np.complex64])


_shapes = st.one_of(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=3),
                    st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(1, 3)))  # near (N, L, 2)


@FUZZ
@given(array=_dtypes.flatmap(lambda dt: hnp.arrays(dt, _shapes)))
def test_random_npy_inputs_to_predict(run_dir, array):
    """Any array (any rank, size, dtype, NaN/inf/huge values) given to `predict --input`."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.npy"
        np.save(path, array)
        code, out = _run(["predict", str(run_dir), "--input", str(path)])
        if code == 0:
            lines = out.splitlines()
            assert len(lines) == array.shape[0]
            assert all(0.0 <= float(line.rsplit("= ", 1)[1].rstrip(")")) <= 1.0 for line in lines)


@FUZZ
@given(text=st.text(max_size=40))
def test_random_points_text(run_dir, text):
    _run(["predict", str(run_dir), "--points", text])


_leaves = st.one_of(st.none(), st.booleans(), st.integers(-3, 40), st.floats(allow_nan=True), st.text(max_size=5),
                    hnp.arrays(st.sampled_from([np.float32, np.int64, np.uint8]),
                               hnp.array_shapes(min_dims=0, max_dims=2, max_side=3)).map(torch.from_numpy))
_values = st.recursive(_leaves, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                        st.dictionaries(st.text(max_size=4), inner, max_size=3)),
                       max_leaves=8)
_KEYS = ["format", "version", "epoch", "model_state_dict", "optimizer_state_dict", "loss", "val_loss", "model_config",
         "run_config", "rng_state", "learning_rates", "resumed_from"]


_damage = st.one_of(
    st.binary(max_size=64),  # not a torch file at all
    st.lists(st.tuples(st.sampled_from(_KEYS), st.one_of(st.just("drop"), _values)), max_size=3),
)


def _damaged(good: Path, damage) -> bytes:
    """The real checkpoint with the listed keys dropped or replaced (or raw bytes)."""
    if isinstance(damage, bytes):
        return damage
    data = torch.load(good, weights_only=True)
    for key, value in damage:
        if isinstance(value, str) and value == "drop":
            data.pop(key, None)
        else:
            data[key] = value
    buffer = io.BytesIO()
    torch.save(data, buffer)
    return buffer.getvalue()


@FUZZ
@given(damage=_damage)
def test_random_checkpoint_contents(run_dir, damage):
    """A damaged or foreign checkpoint.pt for evaluate, predict and train --resume: it works (when
    the damage missed what matters) or ends with exit 2 and one line."""
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        run.mkdir()
        (run / "checkpoint.pt").write_bytes(_damaged(run_dir / "checkpoint.pt", damage))
        _run(["evaluate", str(run)])
        _run(["predict", str(run), "--points", "-1,-1 -1,1 1,1 1,-1"])
        _run(["train", "--resume", str(run), "--epochs", "2", "--quiet", "--no-figures"])


@settings(max_examples=(_EXAMPLES or 30) * 2, deadline=None, derandomize=not _EXAMPLES, database=None)
@given(x=_dtypes.flatmap(lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4))),
       y=_dtypes.flatmap(lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=4))),
       n_classes=st.integers(1, 3))
def test_random_arrays_to_check_dataset(x, y, n_classes):
    """The data checks accept or raise SquareseqError (a ValueError) in one line; nothing else."""
    try:
        check_dataset(x, y, n_features=2, n_classes=n_classes)
    except SquareseqError as exc:
        assert "\n" not in str(exc) and str(exc)
