"""The ``.npz`` reader: an archive of named arrays to checked arrays (schema in
:mod:`squareseq.data.files`).

Each array's dtype and size is checked here; what depends on the layout (``(N, L, F)`` or
``(N, C, L)``: the lengths' range, the test set's features, NaN padding) is checked once the
layout is known, by :mod:`squareseq.data.layout`.

The archive is opened with ``allow_pickle=False`` after its first bytes are checked, so a file
that would need unpickling is refused, never executed. Splitting and standardising happen later,
in :mod:`squareseq.data.files`.
"""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Dict, List, Tuple, Union

import numpy as np

from squareseq.data.file_checks import (
    CheckedArrays,
    DataFileError,
    check_ints,
    check_is_file,
    check_padded_size,
    check_X,
    first_line,
    npy_header,
)
from squareseq.data.labels import MAX_LABEL_CHARS, check_label_array

__all__ = ["NPZ_KEYS", "read_arrays", "read_npz"]

NPZ_KEYS = ("X", "y", "lengths", "X_test", "y_test", "lengths_test")


def _key(member: str) -> str:
    return member[:-4] if member.endswith(".npy") else member


_WHAT = {"X": "the sequences, float (N, L, F) or (N, C, L)", "y": "the labels, integers or text (N,)"}


def _check_names(name: str, keys: List[str], required: Tuple[str, ...] = ("X", "y")) -> None:
    """Refuses names outside :data:`NPZ_KEYS` and an archive without a ``required`` array."""
    unknown = sorted(set(keys) - set(NPZ_KEYS))
    if unknown:
        shown = ", ".join(repr(k) for k in unknown[:10]) + (", ..." if len(unknown) > 10 else "")
        raise DataFileError(f"{name}: unknown array(s) {shown} (allowed: {', '.join(NPZ_KEYS)})")
    for key in required:
        if key not in keys:
            raise DataFileError(f"{name}: missing array {key!r} ({_WHAT[key]})")


def check_dtype(where: str, dtype: np.dtype) -> None:
    """Refuses pickled objects and text wider than a label (``where`` starts the message)."""
    if dtype.hasobject:
        raise DataFileError(f"{where} holds Python objects (pickled); save plain numeric "
                            "arrays")
    if dtype.kind == "U" and dtype.itemsize > 4 * MAX_LABEL_CHARS:
        raise DataFileError(f"{where} holds text of up to {dtype.itemsize // 4:,} characters; labels are class "
                            f"names of at most {MAX_LABEL_CHARS} characters")


def _check_headers(name: str, path: Path, required: Tuple[str, ...] = ("X", "y")) -> None:
    """Checks the archive's names, then each array's header: pickled objects and arrays of more
    than :data:`~squareseq.data.file_checks.MAX_PADDED_VALUES` values are refused before numpy
    allocates anything a header sizes."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            _check_names(name, [_key(m.filename) for m in members], required)
            for member in members:
                key = _key(member.filename)
                with archive.open(member) as f:
                    shape, dtype = npy_header(f"{name}: array {key!r}", f)
                check_dtype(f"{name}: array {key!r}", dtype)
                check_padded_size(f"{name}: array {key!r} has shape", shape,
                                  "use fewer or shorter sequences, or split them over several files")
    except (OSError, zipfile.BadZipFile, EOFError, RuntimeError) as exc:  # RuntimeError: encrypted members
        raise DataFileError(f"{name}: is not a readable .npz archive ({first_line(exc)}); write it with "
                            "numpy.savez") from None


def read_arrays(name: str, path: Path, required: Tuple[str, ...] = ("X", "y")) -> Dict[str, np.ndarray]:
    """Every array of the archive, read without unpickling once its header has been checked;
    refuses names outside :data:`NPZ_KEYS`, an archive without ``X`` or ``y``, and arrays of more
    than :data:`~squareseq.data.file_checks.MAX_PADDED_VALUES` values."""
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
    except OSError as exc:
        raise DataFileError(f"{name}: cannot be read ({exc.strerror or first_line(exc)})") from None
    if magic.startswith(b"\x93NUMPY"):
        raise DataFileError(f"{name}: is a single .npy array, not an .npz archive of named arrays (X, y, ...)")
    if not magic.startswith(b"PK"):  # numpy would try to unpickle anything that is not a zip or .npy
        raise DataFileError(f"{name}: is not a readable .npz archive (no zip header); write it with numpy.savez")
    _check_headers(name, path, required)
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataFileError(f"{name}: is not a readable .npz archive ({first_line(exc)}); write it with "
                            "numpy.savez") from None
    arrays = {}
    with archive:
        for key in archive.files:
            try:
                arrays[key] = archive[key]
            except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
                raise DataFileError(f"{name}: array {key!r} is unreadable ({first_line(exc)})") from None
    return arrays


def read_npz(path: Union[str, Path]) -> CheckedArrays:
    """Reads an ``.npz`` file and checks each array's dtype and shape, and that the test arrays
    come as a pair. ``X``/``X_test`` keep their dtype and layout; lengths are checked to be
    integers here, and against the step axis once the layout is known (:mod:`squareseq.data.layout`).

    Raises:
        DataFileError: the file is missing, unreadable, holds pickled objects, or breaks the schema.
    """
    name = str(path)
    path = Path(path)
    check_is_file(name, path)
    arrays = read_arrays(name, path)
    X = check_X(name, "X", arrays["X"])
    y = check_label_array(name, "y", arrays["y"], X.shape[0])
    lengths = check_ints(name, "lengths", arrays["lengths"], X.shape[0]) if "lengths" in arrays else None
    X_test = y_test = lengths_test = None
    has_test = "X_test" in arrays, "y_test" in arrays
    if any(has_test) and not all(has_test):
        given, other = ("X_test", "y_test") if has_test[0] else ("y_test", "X_test")
        raise DataFileError(f"{name}: {given} given without {other} (give both or neither)")
    if "lengths_test" in arrays and not has_test[0]:
        raise DataFileError(f"{name}: lengths_test given without X_test and y_test")
    if has_test[0]:
        X_test = check_X(name, "X_test", arrays["X_test"])
        y_test = check_label_array(name, "y_test", arrays["y_test"], X_test.shape[0])
        if "lengths_test" in arrays:
            lengths_test = check_ints(name, "lengths_test", arrays["lengths_test"], X_test.shape[0])
    return CheckedArrays(X, y, lengths, X_test, y_test, lengths_test)
