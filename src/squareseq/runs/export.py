"""``squareseq export``: a trained run's model as a file other runtimes load (ONNX, TorchScript,
``torch.export``), checked and written atomically, without overwriting anything unasked.

What the file computes is :func:`squareseq.runs.export_model.export_module`: raw ``(N, L, F)``
float32 inputs (standardized inside, as ``squareseq predict`` does), ``lengths`` ``(N,)`` int64
where the run trained on sequences of different lengths, and two outputs, ``probabilities``
``(N, C)`` and ``logits``. Batch and length dimensions are dynamic (the book's ``square-conv1d``
reads exactly its ``seq_len`` steps). Each file carries a JSON description (class names, inputs,
outputs): ``squareseq.json`` among TorchScript's and ``torch.export``'s extra files, the
``squareseq`` entry of the ONNX model's metadata.
"""
from __future__ import annotations

import importlib.util
import io
import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import torch
from torch import nn

from squareseq import __version__
from squareseq.errors import ModelError, SquareseqError
from squareseq.models.networks import SquareConv1d, SquareModel
from squareseq.runs.export_model import export_module
from squareseq.runs.folder import resolve_checkpoint
from squareseq.runs.inference import TrainedRun, load_run
from squareseq.runs.lock import RunFolderLock
from squareseq.training.checkpoint import atomic_write_bytes

__all__ = ["FORMATS", "ONNX_OPSET", "METADATA", "ExportResult", "export_run", "export_bytes", "takes_lengths",
           "default_output"]

#: Export formats and the file each writes into the run folder by default.
FORMATS = {"onnx": "model.onnx", "torchscript": "model.ts.pt", "exported-program": "model.pt2"}
#: The ONNX opset the exported models use.
ONNX_OPSET = 18
#: Name of the JSON description inside an exported file.
METADATA = "squareseq.json"
ONNX_INSTALL = "pip install 'squareseq[onnx]'"


@dataclass
class ExportResult:
    """What :func:`export_run` wrote: the file, its format, its inputs and outputs (names and
    shapes, as the embedded description says) and how long exporting took."""

    path: Path
    format: str
    description: Dict[str, Any]
    seconds: float

    def signature(self) -> str:
        """``x (N, L, 2) float32, lengths (N,) int64 -> probabilities (N, 2), logits (N, 1)``."""
        def shape(item: Dict[str, Any]) -> str:
            dims = [str(d) for d in item["shape"]]
            return f"{item['name']} ({', '.join(dims)}{',' if len(dims) == 1 else ''})"

        inputs = ", ".join(f"{shape(i)} {i['dtype']}" for i in self.description["inputs"])
        return f"{inputs} -> {', '.join(shape(o) for o in self.description['outputs'])}"


def takes_lengths(run: TrainedRun) -> bool:
    """Whether the exported model takes ``lengths``: where the run's sequences may differ in length
    (generated with ``--variable-len``, or a ``--data`` file's)."""
    return bool(run.config.variable_len or run.config.data is not None)


def default_output(run_path: Path, fmt: str) -> Path:
    """``model.onnx``, ``model.ts.pt`` or ``model.pt2`` in the run folder of checkpoint ``run_path``."""
    return run_path.parent / FORMATS[fmt]


def _description(run: TrainedRun, fmt: str, lengths: bool) -> Dict[str, Any]:
    n_features = int(getattr(run.model, "n_features", 0))
    steps: Union[str, int] = int(run.model.seq_len) if isinstance(run.model, SquareConv1d) else "L"
    inputs: List[Dict[str, Any]] = [{"name": "x", "shape": ["N", steps, n_features], "dtype": "float32"}]
    if lengths:
        inputs.append({"name": "lengths", "shape": ["N"], "dtype": "int64"})
    n_outputs = int(getattr(run.model, "n_outputs", 1))
    prep = run.preprocessing
    return {"squareseq": __version__, "format": fmt, "model": run.config.model or "rnn", "inputs": inputs,
            "outputs": [{"name": "probabilities", "shape": ["N", run.n_classes]},
                        {"name": "logits", "shape": ["N", n_outputs]}],
            "class_names": list(run.class_names),
            "standardized": bool(prep is not None and prep.mean is not None),
            "onnx_opset": ONNX_OPSET if fmt == "onnx" else None}


def _module(run: TrainedRun, lengths: bool, recurrence: str) -> nn.Module:
    prep = run.preprocessing
    mean = None if prep is None else prep.mean
    std = None if prep is None else prep.std
    return export_module(run.model, mean, std, lengths=lengths, recurrence=recurrence)


def _example(run: TrainedRun, lengths: bool) -> Tuple[Tuple[torch.Tensor, ...], Tuple[Dict[int, Any], ...]]:
    """Example inputs to trace with (two sequences; lengths that differ) and their dynamic dimensions."""
    from torch.export import Dim

    model = run.model
    square = isinstance(model, SquareConv1d)
    steps = model.seq_len if isinstance(model, SquareConv1d) else 5
    x = torch.zeros(2, steps, int(getattr(run.model, "n_features", 0)))
    batch = Dim("batch")
    x_dims: Dict[int, Any] = {0: batch} if square else {0: batch, 1: Dim("length")}
    if not lengths:
        return (x,), (x_dims,)
    return (x, torch.tensor([steps, max(steps - 1, 1)])), (x_dims, {0: batch})


def _exported_program(run: TrainedRun, lengths: bool) -> Any:
    if isinstance(run.model, SquareModel) and importlib.util.find_spec("torch._higher_order_ops.scan") is None:
        raise ModelError(f"exporting a recurrent model with torch.export needs torch >= 2.6 (its scan); this is "
                         f"torch {torch.__version__}: upgrade torch, or use --format torchscript")
    args, dims = _example(run, lengths)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.export.export(_module(run, lengths, "scan"), args, dynamic_shapes=dims)


def _check_onnx_installed() -> None:
    for package in ("onnx", "onnxscript"):
        if importlib.util.find_spec(package) is None:
            raise SquareseqError(f"--format onnx needs the optional package {package}: {ONNX_INSTALL}")


def _onnx_bytes(run: TrainedRun, lengths: bool, description: Dict[str, Any]) -> bytes:
    import logging

    program = _exported_program(run, lengths)
    names = ["x", "lengths"] if lengths else ["x"]
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the exporter's notes about packages it does not need
    try:
        with warnings.catch_warnings(), io.StringIO() as sink:
            warnings.simplefilter("ignore")
            import contextlib

            with contextlib.redirect_stdout(sink):
                onnx_program = torch.onnx.export(program, (), dynamo=True, input_names=names,
                                                 output_names=["probabilities", "logits"],
                                                 opset_version=ONNX_OPSET, verbose=False)
    finally:
        quiet.setLevel(level)
    assert onnx_program is not None  # dynamo=True always returns the program
    proto = onnx_program.model_proto
    entry = proto.metadata_props.add()
    entry.key, entry.value = "squareseq", json.dumps(description)
    return proto.SerializeToString()


def export_bytes(run: TrainedRun, fmt: str) -> Tuple[bytes, Dict[str, Any]]:
    """The exported file's bytes for ``run`` in format ``fmt``, and its embedded description."""
    if fmt not in FORMATS:
        raise SquareseqError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    lengths = takes_lengths(run)
    description = _description(run, fmt, lengths)
    extra = {METADATA: json.dumps(description)}
    buffer = io.BytesIO()
    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 deprecates TorchScript; it still works
            torch.jit.save(torch.jit.script(_module(run, lengths, "module")), buffer, _extra_files=extra)
        return buffer.getvalue(), description
    if fmt == "exported-program":
        torch.export.save(_exported_program(run, lengths), buffer, extra_files=extra)
        return buffer.getvalue(), description
    return _onnx_bytes(run, lengths, description), description


def _check_output(path: Path, overwrite: bool) -> None:
    if path.is_dir():
        raise SquareseqError(f"--output {path} is a folder; give a file name (e.g. {path / 'model.onnx'})")
    if not path.parent.is_dir():
        raise SquareseqError(f"--output {path}: the folder {path.parent} does not exist; create it first")
    if path.exists() and not overwrite:
        raise SquareseqError(f"{path} already exists; pass --overwrite to replace it, or choose another --output")


def export_run(run: Union[str, Path], fmt: str, output: Optional[Union[str, Path]] = None,
               overwrite: bool = False) -> ExportResult:
    """Exports the trained model of run folder (or checkpoint) ``run`` as ``fmt`` (``onnx``,
    ``torchscript`` or ``exported-program``) to ``output`` (default: :data:`FORMATS`' file in the
    run folder). An existing file is replaced only with ``overwrite``; the file is written
    atomically, under the run folder's lock when it goes into the run folder.

    Raises:
        SquareseqError: an unknown format, a missing optional package, a missing or damaged run,
            an output that exists (without ``overwrite``) or cannot be written; nothing is written.
        ModelError: a model this format cannot express.
    """
    if fmt not in FORMATS:
        raise SquareseqError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if fmt == "onnx":
        _check_onnx_installed()
    checkpoint = resolve_checkpoint(str(run))
    path = Path(output) if output is not None else default_output(checkpoint, fmt)
    _check_output(path, overwrite)  # before the model is loaded and traced: a refusal costs nothing
    trained = load_run(checkpoint)
    start = time.perf_counter()
    data, description = export_bytes(trained, fmt)
    seconds = time.perf_counter() - start
    in_run_folder = path.parent.resolve() == checkpoint.parent.resolve()
    lock = RunFolderLock(checkpoint.parent) if in_run_folder else None
    if lock is not None:
        lock.acquire()
    try:
        _check_output(path, overwrite)  # again, under the lock: another writer may have been faster
        atomic_write_bytes(path, lambda f: f.write(data))
    finally:
        if lock is not None:
            lock.release()
    return ExportResult(path, fmt, description, seconds)
