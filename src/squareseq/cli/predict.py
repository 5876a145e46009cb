"""The ``predict`` command: sequences from ``--points`` or a ``.npy`` file, checked before any
model is loaded, then one line (or one JSON record) per sequence naming its likeliest class."""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any, Dict, List, Sequence

from squareseq.config import RunConfig
from squareseq.errors import DataError, SquareseqError

__all__ = ["cmd_predict", "parse_points", "load_npy", "predictions"]

FLOAT32_MAX = 3.4028234663852886e38
EXAMPLE = '--points "-1,-1 -1,1 1,1 1,-1"'


def parse_points(text: str) -> Any:
    """One ``(1, L, 2)`` float32 sequence from ``"x,y x,y ..."``."""
    import numpy as np

    points = []
    for token in text.replace(";", " ").split():
        parts = token.split(",")
        try:
            if len(parts) != 2:
                raise ValueError
            x, y = float(parts[0]), float(parts[1])
        except ValueError:
            raise DataError(f'--points: {token!r} is not a point "x,y"; write e.g. {EXAMPLE}') from None
        if not all(math.isfinite(v) and abs(v) <= FLOAT32_MAX for v in (x, y)):
            raise DataError(f"--points: {token!r} is not a finite float32 point")
        points.append((x, y))
    if not points:
        raise DataError(f"--points is empty; write e.g. {EXAMPLE}")
    return np.array([points], dtype=np.float32)


def load_npy(path: Path) -> Any:
    """A float32 array of real, finite numbers from a plain ``.npy`` file (never unpickled); its
    header is checked (kind, dtype, size) before anything is allocated, and a path that is not a
    regular file is refused before it is opened (a FIFO would block)."""
    import numpy as np

    from squareseq.data.file_checks import check_padded_size, file_problem, first_line, npy_header

    name = f"--input {path}"
    problem = file_problem(path)
    if problem is not None:
        problem = "does not exist" if problem == "no such file" else problem
        raise DataError(f"{name} {problem}; give a .npy file of shape (N, L, F) written with numpy.save")
    try:
        with open(path, "rb") as f:
            if f.read(2) == b"PK":
                raise DataError(f"{name} is an .npz archive; --input reads one .npy array of shape (N, L, F) "
                                "written with numpy.save")
            f.seek(0)
            shape, dtype = npy_header(name, f)
            if dtype.hasobject:
                raise DataError(f"{name} holds Python objects (pickled); save a plain numeric array")
            if not (np.issubdtype(dtype, np.number) or dtype == np.bool_) or np.issubdtype(dtype, np.complexfloating):
                raise DataError(f"{name} must hold real numbers, got dtype {dtype}")
            check_padded_size(f"{name} has shape", shape, "predict fewer or shorter sequences at a time")
            f.seek(0)
            array = np.load(f, allow_pickle=False)
    except SquareseqError:
        raise
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{name} cannot be read as a .npy array ({first_line(exc)})") from None
    with np.errstate(over="ignore"):
        array = array.astype(np.float32)  # what the model reads: values too big for float32 become inf
    from squareseq.data.checks import check_inputs

    check_inputs(array, name=name)
    return array


def run_class_names(run: str, config: RunConfig, n_classes: int) -> List[str]:
    """The names of a run's ``n_classes`` classes: ``class_names`` in the ``metrics.json`` beside its
    checkpoint, else the task's names for generated data, else ``class k``. Only a label: a
    missing or unusable ``metrics.json`` falls back quietly."""
    from squareseq.data.squares import class_names
    from squareseq.runs.folder import METRICS, resolve_checkpoint

    try:
        names = json.loads((resolve_checkpoint(run).parent / METRICS).read_text()).get("class_names")
    except (OSError, ValueError, AttributeError):
        names = None
    if (isinstance(names, list) and len(names) == n_classes and all(isinstance(n, str) for n in names)
            and len(set(names)) == n_classes):
        return names
    if config.data is None and len(class_names(config.task)) == n_classes:
        return class_names(config.task)
    return [f"class {k}" for k in range(n_classes)]


def predictions(probs: List[List[float]], names: List[str]) -> List[Dict[str, Any]]:
    """One record per sequence (numbered from 1): the likeliest class's index and name, and every
    class's probability by name; what ``predict --json`` prints."""
    records = []
    for i, row in enumerate(probs, start=1):
        best = max(range(len(row)), key=row.__getitem__)
        records.append({"sequence": i, "class": best, "name": names[best],
                        "probabilities": dict(zip(names, row))})
    return records


def cmd_predict(args: argparse.Namespace, argv: Sequence[str]) -> int:
    array = parse_points(args.points) if args.points is not None else load_npy(args.input)
    source = "--points" if args.points is not None else f"--input {args.input}"
    from squareseq.runs.inference import class_probabilities, load_trained

    model, config = load_trained(args.run)
    n_features = getattr(model, "n_features", array.shape[-1])
    if array.shape[-1] != n_features:
        raise DataError(f"{source}: the model reads {n_features} features per step, the input has "
                        f"{array.shape[-1]}")
    if getattr(model, "seq_len", None) is not None and array.shape[1] > model.seq_len:
        raise DataError(f"{source}: the model reads at most {model.seq_len} steps, the input has {array.shape[1]}")
    import torch

    probs = class_probabilities(model, torch.from_numpy(array)).tolist()
    records = predictions(probs, run_class_names(str(args.run), config, len(probs[0])))
    if args.json:
        print(json.dumps(records, indent=2))
    else:
        for r in records:
            print(f"sequence {r['sequence']}: {r['name']} (P({r['name']}) = {r['probabilities'][r['name']]:.4f})")
    return 0
