"""`squareseq export`: every model family, fixed and variable length, binary and multi-class,
standardized or not, exported to every format, loaded back by its own runtime (torch.jit.load,
torch.export.load, onnxruntime) and run on a batch size and length other than the traced ones:
its probabilities equal `squareseq predict`'s (the PyTorch model behind the run's preprocessing)
within 1e-5, from raw inputs."""
import json

import numpy as np
import pytest
import torch

from squareseq.cli import main
from squareseq.runs.inference import class_probabilities, load_run, prepared_split

TINY = ["--epochs", "2", "--batch-size", "8", "--seed", "5", "--no-figures", "--quiet"]
GENERATED = ["--n-train", "24", "--n-test", "8"]
STEPS, FEATURES = 6, 3

#: name -> (train options, whether the data comes from a file, whether the exported model takes lengths)
RUNS = {
    "rnn-fixed-binary": (["--model", "rnn", *GENERATED], False),
    "gru-variable-bidirectional": (["--model", "gru", "--variable-len", "--bidirectional", "--hidden-dim", "3",
                                    *GENERATED], False),
    "lstm-data-bidirectional": (["--model", "lstm", "--hidden-dim", "3", "--bidirectional", "--standardize"], True),
    "conv1d-data-multiclass": (["--model", "conv1d", "--hidden-dim", "4", "--num-layers", "2", "--pooling", "max",
                                "--standardize"], True),
    "conv1d-variable-binary": (["--model", "conv1d", "--hidden-dim", "4", "--num-layers", "2", "--variable-len",
                                *GENERATED], False),
    "lstm-data-two-layers": (["--model", "lstm", "--hidden-dim", "3", "--num-layers", "2", "--bidirectional",
                              "--no-standardize"], True),
    "square-conv1d": (["--model", "square-conv1d", *GENERATED], False),
}
#: Runs every format is tried on; the others (what these already cover, in another combination)
#: are exported as TorchScript only, which is fast (torch.export traces each recurrence's scan).
ALL_FORMATS = ("rnn-fixed-binary", "gru-variable-bidirectional", "lstm-data-bidirectional", "conv1d-data-multiclass",
               "square-conv1d")
FORMATS = {"torchscript": "model.ts.pt", "exported-program": "model.pt2", "onnx": "model.onnx"}


def _data_file(folder):
    """Three classes of variable-length sequences far from zero mean (standardizing matters)."""
    rng = np.random.RandomState(3)
    n = 36
    k = np.arange(n) % 3
    x = (40 + 10 * rng.randn(n, STEPS, FEATURES) + 8 * k[:, None, None]).astype(np.float32)
    lengths = rng.randint(2, STEPS + 1, size=n)
    lengths[0] = STEPS
    x[np.arange(STEPS)[None, :] >= lengths[:, None]] = 0.0
    path = folder / "d.npz"
    np.savez(path, X=x, y=np.array(["a", "b", "c"])[k], lengths=lengths)
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny trained run folder per entry of RUNS."""
    root = tmp_path_factory.mktemp("export-runs")
    data = _data_file(root)
    folders = {}
    for name, (options, from_file) in RUNS.items():
        torch.manual_seed(0)
        folders[name] = root / name
        extra = ["--data", str(data)] if from_file else []
        assert main(["train", *TINY, *options, *extra, "--out", str(folders[name])]) == 0
    return folders


def _inputs(run, batch=7):
    """Raw inputs of another batch size and length than the traced ones (2 sequences of 5 steps):
    NaN past each end for file runs (the padding is ignored whatever it holds)."""
    rng = np.random.RandomState(11)
    n_features = run.n_features
    steps = getattr(run.model, "seq_len", 3)
    scale = 40.0 if run.config.data is not None else 1.0
    x = (scale + scale * 0.3 * rng.randn(batch, steps, n_features)).astype(np.float32)
    lengths = None
    if run.config.variable_len or run.config.data is not None:
        lengths = rng.randint(1, steps + 1, size=batch).astype(np.int64)
        lengths[0] = steps
    return x, lengths


def _expected(run, x, lengths):
    """What `squareseq predict` computes: the run's preprocessing, then the PyTorch model."""
    return class_probabilities(run.model, prepared_split(run, x, lengths).model_input()).numpy()


def _run_exported(fmt, path, x, lengths):
    feeds = [x] if lengths is None else [x, lengths]
    if fmt == "onnx":
        ort = pytest.importorskip("onnxruntime")
        session = ort.InferenceSession(str(path))
        names = [i.name for i in session.get_inputs()]
        assert names == ["x", "lengths"][:len(feeds)]
        probabilities, logits = session.run(["probabilities", "logits"], dict(zip(names, feeds)))
        return probabilities, logits
    module = torch.jit.load(str(path)) if fmt == "torchscript" else torch.export.load(str(path)).module()
    with torch.no_grad():
        probabilities, logits = module(*(torch.from_numpy(np.nan_to_num(f) if f is x else f) for f in feeds))
    return probabilities.numpy(), logits.numpy()


def _export(capsys, folder, fmt, *extra):
    assert main(["export", str(folder), "--format", fmt, *extra]) == 0, capsys.readouterr().err
    return capsys.readouterr().out


CASES = [pytest.param(name, "torchscript") for name in RUNS] + [
    pytest.param(name, fmt, marks=pytest.mark.slow) for fmt in ("exported-program", "onnx") for name in ALL_FORMATS]


@pytest.mark.parametrize("name,fmt", CASES)
def test_exported_model_answers_like_predict(runs, capsys, name, fmt):
    """The exported file, loaded by its runtime, gives predict's probabilities (1e-5) on a new
    batch size and length, from raw inputs; its logits turn into those probabilities."""
    if fmt == "onnx":
        pytest.importorskip("onnx")
        pytest.importorskip("onnxscript")
        pytest.importorskip("onnxruntime")
    folder = runs[name]
    out = _export(capsys, folder, fmt)
    path = folder / FORMATS[fmt]
    assert out.startswith(f"wrote {path} ({fmt}): x (N, ") and path.is_file()
    run = load_run(folder)
    x, lengths = _inputs(run)
    fed = x.copy()
    if lengths is not None and fmt == "onnx":  # NaN padding for onnxruntime too
        fed[np.arange(x.shape[1])[None, :] >= lengths[:, None]] = np.nan
    probabilities, logits = _run_exported(fmt, path, fed, lengths)
    if fmt == "onnx":  # the stated opset, and the description in the model's metadata
        proto = pytest.importorskip("onnx").load(str(path))
        assert {o.domain: o.version for o in proto.opset_import}[""] == 18
        meta = json.loads({p.key: p.value for p in proto.metadata_props}["squareseq"])
        assert meta["class_names"] == run.class_names and meta["onnx_opset"] == 18
    np.testing.assert_allclose(probabilities, _expected(run, x, lengths), atol=1e-5, rtol=0)
    assert probabilities.shape == (len(x), run.n_classes)
    from_logits = (torch.softmax(torch.from_numpy(logits), 1) if logits.shape[1] > 1
                   else torch.sigmoid(torch.from_numpy(logits))[:, 0]).numpy()
    np.testing.assert_allclose(from_logits, probabilities if logits.shape[1] > 1 else probabilities[:, 1], atol=1e-6)
    steps = x.shape[1] if isinstance(getattr(run.model, "seq_len", None), int) else 1  # the book's reads seq_len
    one, one_lengths = x[:1, :steps], None if lengths is None else np.array([steps])
    probabilities, _ = _run_exported(fmt, path, one, one_lengths)  # one sequence (of one step): dynamic down to 1
    np.testing.assert_allclose(probabilities, _expected(run, one, None), atol=1e-5, rtol=0)


@pytest.mark.parametrize("fmt", ["torchscript"])
def test_exported_model_needs_no_gradients(runs, capsys, fmt):
    """The exported weights are frozen: outputs carry no autograd graph."""
    folder = runs["gru-variable-bidirectional"]
    output = folder / f"one.{FORMATS[fmt]}"
    _export(capsys, folder, fmt, "--output", str(output))
    run = load_run(folder)
    x = np.array([[[0.5, -1.0]]], dtype=np.float32)
    module = torch.jit.load(str(output)) if fmt == "torchscript" else torch.export.load(str(output)).module()
    probabilities, logits = module(torch.from_numpy(x), torch.tensor([1]))
    assert not probabilities.requires_grad and not logits.requires_grad
    np.testing.assert_allclose(probabilities.numpy(), _expected(run, x, None), atol=1e-5, rtol=0)


def test_metadata_names_classes_inputs_and_outputs(runs, capsys, tmp_path):
    """The TorchScript file carries a JSON description: class names, inputs, outputs, standardization."""
    output = tmp_path / "lstm.ts.pt"
    _export(capsys, runs["lstm-data-bidirectional"], "torchscript", "--output", str(output))
    files = {"squareseq.json": ""}
    torch.jit.load(str(output), _extra_files=files)
    meta = json.loads(files["squareseq.json"])
    assert meta["class_names"] == ["a", "b", "c"] and meta["standardized"] is True
    assert [i["name"] for i in meta["inputs"]] == ["x", "lengths"]
    assert meta["inputs"][0]["shape"] == ["N", "L", FEATURES]
    assert meta["outputs"] == [{"name": "probabilities", "shape": ["N", 3]}, {"name": "logits", "shape": ["N", 3]}]


def _error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def test_existing_output_is_kept_without_overwrite(runs, capsys):
    folder = runs["rnn-fixed-binary"]
    target = folder / "kept.ts.pt"
    target.write_bytes(b"mine")
    line = _error(capsys, ["export", str(folder), "--format", "torchscript", "--output", str(target)])
    assert line == f"squareseq: error: {target} already exists; pass --overwrite to replace it, or choose another --output"
    assert target.read_bytes() == b"mine"
    _export(capsys, folder, "torchscript", "--output", str(target), "--overwrite")
    assert torch.jit.load(str(target)) is not None
    assert not list(folder.glob(".*.tmp")) and not (folder / ".squareseq.lock").exists()


@pytest.mark.parametrize("argv,expected", [
    (["--format", "keras"], "squareseq export: error: argument --format: invalid choice: 'keras'"),
    ([], "squareseq export: error: the following arguments are required: --format"),
])
def test_bad_usage_is_one_line(runs, capsys, argv, expected):
    line = _error(capsys, ["export", str(runs["rnn-fixed-binary"]), *argv])
    assert line.startswith(expected)


def test_missing_or_damaged_run_is_one_line(tmp_path, capsys):
    line = _error(capsys, ["export", str(tmp_path / "nope"), "--format", "torchscript"])
    assert line == f"squareseq: error: no such run folder or checkpoint: {tmp_path / 'nope'}"
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    line = _error(capsys, ["export", str(tmp_path), "--format", "torchscript"])
    assert str(tmp_path / "checkpoint.pt") in line
    line = _error(capsys, ["export", str(tmp_path), "--format", "torchscript", "--output", str(tmp_path / "no" / "m.pt")])
    assert "does not exist" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


def test_busy_run_folder_is_refused(runs, capsys):
    """A run folder another process is writing (its lock held) is not written into."""
    from squareseq.runs.lock import RunFolderLock

    folder = runs["square-conv1d"]
    with RunFolderLock(folder):
        line = _error(capsys, ["export", str(folder), "--format", "torchscript", "--output", str(folder / "b.ts.pt")])
    assert "is in use by" in line and not (folder / "b.ts.pt").exists()


def test_missing_onnx_says_how_to_install(runs, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxscript" else real(name, *a))
    line = _error(capsys, ["export", str(runs["rnn-fixed-binary"]), "--format", "onnx", "--output", "x.onnx"])
    assert line == "squareseq: error: --format onnx needs the optional package onnxscript: pip install 'squareseq[onnx]'"


def test_conv_batch_norm_scripts_and_keeps_its_numbers():
    """MaskedBatchNorm1d compiles with torch.jit.script and computes what nn.BatchNorm1d does in evaluation."""
    from squareseq.models.conv import MaskedBatchNorm1d

    norm = MaskedBatchNorm1d(3)
    norm(torch.randn(4, 3, 5) * 3 + 1)  # training: running statistics move
    norm.eval()
    plain = torch.nn.BatchNorm1d(3).eval()
    plain.load_state_dict(norm.state_dict())
    h = torch.randn(2, 3, 7)
    assert torch.equal(norm(h), plain(h))
    assert torch.equal(torch.jit.script(norm)(h), plain(h))


def test_a_conv_model_too_deep_to_export_is_refused():
    """Exported convolutions pad by the uncapped dilation: a model whose padding would be huge is refused in one line."""
    from squareseq.errors import ModelError
    from squareseq.models.networks import build_model
    from squareseq.runs.export_model import export_module

    with pytest.raises(ModelError, match="too deep to export"):
        export_module(build_model("conv1d", hidden_dim=2, num_layers=18, dilation=2).eval())
