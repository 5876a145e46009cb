"""What ``evaluate`` measures a trained model on: its run's test split, or another labelled file,
each through the preprocessing the run stored (the path ``predict`` takes too)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import torch

from squareseq.config import RunConfig
from squareseq.errors import DataError
from squareseq.runs.data import Split, build_data
from squareseq.runs.inference import TrainedRun, prepared_split

__all__ = ["run_test_split", "labelled_split"]


def run_test_split(run: TrainedRun, config: RunConfig) -> Split:
    """The test split of ``config``'s data as the run's model reads it. A data file's split is
    rebuilt raw (same split, no standardizing) and goes through the run's stored preprocessing, so
    evaluate and predict share one path; generated squares and older runs are rebuilt as they were."""
    if run.preprocessing is None or config.data is None:
        return build_data(config).test
    raw = build_data(config.replace(standardize=False, layout=run.preprocessing.layout))
    if list(raw.class_names) != list(run.class_names):
        raise DataError(f"{config.data} no longer holds the classes the run was trained on "
                        f"({_names(run.class_names)}; the file now has {_names(raw.class_names)}): give the file "
                        "the run was trained on")
    x, lengths = raw.test.x.numpy(), raw.test.lengths
    return prepared_split(run, x, None if lengths is None else lengths.numpy(), raw.test.y)


def labelled_split(run: TrainedRun, path: Path, layout: Optional[str] = None) -> Split:
    """The labelled sequences of another file (its test part if it has one, else all of them),
    labels mapped to the run's classes by name, through the run's stored preprocessing. Arrays are
    read in ``layout`` (default: the run's; .csv and .ts files are read as steps then features)."""
    from squareseq.data.layout import resolve_layout

    name = str(path)
    arrays = _read_labelled(Path(path))
    if arrays.X_test is not None:
        x, y, lengths = arrays.X_test, arrays.y_test, arrays.lengths_test
    else:
        x, y, lengths = arrays.X, arrays.y, arrays.lengths
    layout = "NLF" if Path(path).suffix.lower() in (".csv", ".ts") else (layout or run.layout)
    if layout == "auto":
        layout, _ = resolve_layout(name, x, lengths)
    return prepared_split(run, x, lengths, class_indices(name, y, run.class_names), name=name, layout=layout)


def class_indices(name: str, labels: np.ndarray, class_names: List[str]) -> torch.Tensor:
    """``labels`` (integers or text) as indices into ``class_names`` (matched as text: ``3`` is
    class ``"3"``); a label that is no class of the run is refused, naming it."""
    index = {label: k for k, label in enumerate(class_names)}
    for k, label in enumerate(class_names):  # an older run names its classes "class k": label k
        if label == f"class {k}":
            index.setdefault(str(k), k)
    text = [str(v) for v in np.asarray(labels).tolist()]
    unknown = sorted({t for t in text if t not in index})
    if unknown:
        raise DataError(f"{name}: label(s) {_names(unknown)} are not classes of the run (its classes: "
                        f"{_names(class_names)}); evaluate on a file labelled as the run's training data was")
    return torch.tensor([index[t] for t in text], dtype=torch.int64)


def _read_labelled(path: Path):
    """The checked arrays of a labelled ``.npz``, ``.csv`` or ``.ts`` file (its format's reader)."""
    from squareseq.data.file_checks import DataFileError

    suffix = path.suffix.lower()
    if suffix == ".npz":
        from squareseq.data.npz_files import read_npz

        return read_npz(path)
    if suffix == ".csv":
        from squareseq.data.csv_files import read_csv

        return read_csv(path)
    if suffix == ".ts":
        try:
            from squareseq.data.ts_files import read_ts
        except ImportError:
            raise DataFileError(f"{path}: this squareseq cannot read .ts files; convert the data to .npz or .csv") \
                from None
        return read_ts(path)
    raise DataFileError(f"{path}: unsupported file type {suffix or '(no suffix)'!r}; use .npz, .csv or .ts")


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(map(str, list(names)[:10]))
    return shown + (", ..." if len(names) > 10 else "")
