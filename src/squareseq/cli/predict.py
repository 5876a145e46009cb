"""The ``predict`` command: sequences from ``--points`` or a ``.npy``/``.npz``/``.csv`` file (the
path checked before any model is loaded), put through the run's stored preprocessing (layout,
standardizer), then one line (or one JSON record) per sequence naming its likeliest class."""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from squareseq.errors import DataError, SquareseqError

__all__ = ["cmd_predict", "parse_points", "predictions", "check_inputs_fit"]

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


def predictions(probs: List[List[float]], names: List[str], ids: Optional[List[str]] = None) -> List[Dict[str, Any]]:
    """One record per sequence (its id, else numbered from 1): the likeliest class's index and name,
    and every class's probability by name; what ``predict --json`` prints."""
    records = []
    for i, row in enumerate(probs, start=1):
        best = max(range(len(row)), key=row.__getitem__)
        records.append({"sequence": i if ids is None else ids[i - 1], "class": best, "name": names[best],
                        "probabilities": dict(zip(names, row))})
    return records


def check_inputs_fit(source: str, x: Any, n_features: Optional[int], layout: str,
                     seq_len: Optional[int] = None) -> None:
    """Sequences ``x`` (N, L, F), read in ``layout`` (``NLF``, ``NCL``, ``auto`` or ``long`` for a
    CSV), fit a run that reads ``n_features`` features per step (and at most ``seq_len`` steps);
    else one line saying how to fix it. (Their lengths were checked by the reader.)"""
    n, steps, features = x.shape
    if n == 0:
        raise DataError(f"{source} holds no sequences")
    if n_features is not None and features != n_features:
        turned = ""
        if layout in _LAYOUTS and steps == n_features:
            other = "NCL" if layout == "NLF" else "NLF"
            turned = f"; if your arrays are laid out {other} {_LAYOUTS[other]}, give --layout {other}"
        raise DataError(f"{source}: the run reads {n_features} features per step, the input has {features} "
                        f"({_READ_AS[layout] if layout in _READ_AS else f'read as {layout}: {_LAYOUTS[layout]}'})"
                        f"{turned}")
    if seq_len is not None and steps > seq_len:
        raise DataError(f"{source}: the model reads at most {seq_len} steps, the input has {steps}")


_LAYOUTS = {"NLF": "(N, L, F), steps then features", "NCL": "(N, C, L), channels (features) then steps"}
_READ_AS = {"auto": "its layout read from its shape", "long": "a long-format table: one column per feature"}


def _read(args: argparse.Namespace, layout: str) -> Tuple[Any, Any, Optional[List[str]]]:
    """``(x (N, L, F), lengths or None, sequence ids or None)`` from ``--points`` or ``--input``."""
    if args.points is not None:
        return parse_points(args.points), None, None
    from squareseq.data.inputs import read_inputs_and_ids

    try:
        return read_inputs_and_ids(args.input, layout=layout, lengths_path=args.lengths)
    except SquareseqError as exc:  # the reader names the file; the line names the option too
        text = str(exc)
        for flag, path in (("--lengths", args.lengths), ("--input", args.input)):
            if path is not None and text.startswith(str(path)):
                raise DataError(f"{flag} {text}") from None
        raise


INPUT_SUFFIXES = (".npy", ".npz", ".csv")
INPUT_FIX = "give a .npy array (N, L, F), an .npz with X[, lengths] or a long-format .csv"


def check_input_path(path: Path, flag: str = "--input") -> None:
    """Refuses an ``--input`` that is missing, not a regular file (a FIFO would block) or of an
    unknown kind, before any model is loaded."""
    from squareseq.data.file_checks import file_problem

    problem = file_problem(path)
    if problem is not None:
        problem = "does not exist" if problem == "no such file" else problem
        raise DataError(f"{flag} {path} {problem}; {INPUT_FIX if flag == '--input' else 'give a .npy file'}")
    if flag == "--input" and path.suffix.lower() not in INPUT_SUFFIXES:
        raise DataError(f"{flag} {path}: unsupported file type {path.suffix or '(no suffix)'!r}; {INPUT_FIX}")


def cmd_predict(args: argparse.Namespace, argv: Sequence[str]) -> int:
    if args.lengths is not None and (args.input is None or args.input.suffix.lower() != ".npy"):
        raise DataError("--lengths goes with a .npy --input (an .npz carries its own lengths array, a .csv its "
                        "steps)")
    if args.points is not None and args.layout is not None:
        raise DataError("--layout applies to --input arrays; --points is one sequence of x,y steps")
    csv = args.input is not None and args.input.suffix.lower() == ".csv"
    if csv and args.layout == "NCL":
        raise DataError(f"--input {args.input} is a long-format .csv (a column per feature), not an (N, C, L) "
                        "array: drop --layout NCL")
    source = "--points" if args.points is not None else f"--input {args.input}"
    if args.points is not None:
        parse_points(args.points)  # checked before any model is loaded
    else:
        check_input_path(args.input)
        if args.lengths is not None:
            check_input_path(args.lengths, "--lengths")
    from squareseq.runs.inference import class_probabilities, load_run, prepared_split

    run = load_run(args.run)
    layout = "NLF" if args.points is not None else (args.layout or run.layout)
    x, lengths, ids = _read(args, layout)
    check_inputs_fit(source, x, run.n_features, "long" if csv else layout,
                     getattr(run.model, "seq_len", None))
    probs = class_probabilities(run.model, prepared_split(run, x, lengths).model_input()).tolist()
    records = predictions(probs, run.class_names, ids if ids is not None and len(ids) == len(probs) else None)
    if args.json:
        print(json.dumps(records, indent=2))
    else:
        for r in records:
            print(f"sequence {r['sequence']}: {r['name']} (P({r['name']}) = {r['probabilities'][r['name']]:.4f})")
    return 0
