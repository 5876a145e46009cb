"""Export times and inference times of the exported models against the PyTorch model.

Trains the tutorial's run (generated squares, defaults: the RNN of hidden size 2, 100 epochs) in a
temporary folder, or takes a finished run folder, exports it to every format and times, per
format: the export itself (one call of ``squareseq.runs.export.export_run``, loading the run
included), and the median over ``--repeats`` calls of the loaded model on N sequences, against
the PyTorch model behind ``squareseq predict`` (``class_probabilities`` on the same inputs). The
largest difference of the probabilities is printed too.

    python benchmarks/bench_export.py                    # the tutorial's run, N=1000, one thread
    python benchmarks/bench_export.py --run runs/mine --n 5000
"""
from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from _common import median, table  # noqa: I001  (puts the checkout's package on the path)
from squareseq.config import RunConfig, RunOptions
from squareseq.data.squares import make_sequences
from squareseq.runs.experiment import run_experiment
from squareseq.runs.export import FORMATS, export_run
from squareseq.runs.inference import class_probabilities, load_run, prepared_split


def _loaded(fmt: str, path: Path):
    """A callable ``(x, lengths) -> probabilities`` (numpy) for the exported file."""
    if fmt == "onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(str(path), options)
        names = [i.name for i in session.get_inputs()]
        return lambda x, lengths: session.run(["probabilities"], dict(zip(names, [x, lengths])))[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = torch.jit.load(str(path)) if fmt == "torchscript" else torch.export.load(str(path)).module()

    def call(x, lengths):
        args = [torch.from_numpy(x)] + ([] if lengths is None else [torch.from_numpy(lengths)])
        with torch.no_grad():
            return module(*args)[0].numpy()

    return call


def _time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a finished run folder (default: train the tutorial's run)")
    parser.add_argument("--n", type=int, default=1000, help="sequences per inference call")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.run
        if folder is None:
            folder = Path(tmp) / "tutorial"
            start = time.perf_counter()
            run_experiment(RunConfig(), RunOptions(run_dir=folder, figures=False))
            print(f"trained the tutorial's run in {time.perf_counter() - start:.1f} s")
        run = load_run(folder)
        points, _ = make_sequences(args.n, variable_len=run.config.variable_len, seed=7)
        x = np.asarray(points, dtype=np.float32) if not isinstance(points, list) else None
        if x is None:  # variable length: zero-padded with lengths
            steps = max(len(p) for p in points)
            x = np.zeros((len(points), steps, len(points[0][0])), dtype=np.float32)
            for i, p in enumerate(points):
                x[i, :len(p)] = p
        lengths = None
        if run.config.variable_len or run.config.data is not None:
            lengths = np.array([len(p) for p in points], dtype=np.int64)
        split = prepared_split(run, x, lengths)
        expected = class_probabilities(run.model, split.model_input()).numpy()
        with torch.no_grad():
            torch_s = _time(lambda: class_probabilities(run.model, split.model_input()), args.repeats)
        rows = [["pytorch (predict's model)", "-", "-", torch_s * 1e3, 1.0, 0.0]]
        for fmt in ("torchscript", "exported-program", "onnx"):  # the first torch.export pays its warm-up
            if fmt == "onnx" and importlib.util.find_spec("onnxruntime") is None:
                rows.append([fmt, "needs squareseq[onnx]", "-", "-", "-", "-"])
                continue
            out = Path(tmp) / f"bench-{FORMATS[fmt]}"
            result = export_run(folder, fmt, output=out, overwrite=True)
            call = _loaded(fmt, out)
            seconds = _time(lambda: call(x, lengths), args.repeats)
            diff = float(np.abs(call(x, lengths) - expected).max())
            rows.append([fmt, result.seconds, out.stat().st_size, seconds * 1e3, torch_s / seconds, diff])
    print(table(f"export of {'the tutorial run' if args.run is None else folder}, inference on N={args.n} "
                f"(median of {args.repeats}, {args.threads} thread(s))",
                ["format", "export s", "bytes", "inference ms", "speed vs torch", "max |dp|"], rows))


if __name__ == "__main__":
    main()
