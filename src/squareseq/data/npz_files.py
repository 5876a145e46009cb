"""The ``.npz`` reader: an archive of named arrays to checked arrays (schema in
:mod:`squareseq.data.files`).

The archive is opened with ``allow_pickle=False`` after its first bytes are checked, so a file
that would need unpickling is refused, never executed. Splitting and standardising happen later,
in :mod:`squareseq.data.files`.
"""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Dict, List, Union

import numpy as np

from squareseq.data.file_checks import (
    CheckedArrays,
    DataFileError,
    as_float32,
    check_ints,
    check_is_file,
    check_lengths,
    check_padded_size,
    check_X,
    first_line,
    npy_header,
)

__all__ = ["NPZ_KEYS", "read_npz"]

NPZ_KEYS = ("X", "y", "lengths", "X_test", "y_test", "lengths_test")


def _key(member: str) -> str:
    return member[:-4] if member.endswith(".npy") else member


def _check_names(name: str, keys: List[str]) -> None:
    """Refuses names outside :data:`NPZ_KEYS` and an archive without ``X`` or ``y``."""
    unknown = sorted(set(keys) - set(NPZ_KEYS))
    if unknown:
        shown = ", ".join(repr(k) for k in unknown[:10]) + (", ..." if len(unknown) > 10 else "")
        raise DataFileError(f"{name}: unknown array(s) {shown} (allowed: {', '.join(NPZ_KEYS)})")
    for key, what in (("X", "the sequences, float (N, L, F)"), ("y", "the labels, integer (N,)")):
        if key not in keys:
            raise DataFileError(f"{name}: missing array {key!r} ({what})")


def _check_headers(name: str, path: Path) -> None:
    """Checks the archive's names, then each array's header: pickled objects and arrays of more
    than :data:`~squareseq.data.file_checks.MAX_PADDED_VALUES` values are refused before numpy
    allocates anything a header sizes."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            _check_names(name, [_key(m.filename) for m in members])
            for member in members:
                key = _key(member.filename)
                with archive.open(member) as f:
                    shape, dtype = npy_header(f"{name}: array {key!r}", f)
                if dtype.hasobject:
                    raise DataFileError(f"{name}: array {key!r} holds Python objects (pickled); save plain numeric "
                                        "arrays")
                check_padded_size(f"{name}: array {key!r} has shape", shape,
                                  "use fewer or shorter sequences, or split them over several files")
    except (OSError, zipfile.BadZipFile, EOFError, RuntimeError) as exc:  # RuntimeError: encrypted members
        raise DataFileError(f"{name}: is not a readable .npz archive ({first_line(exc)}); write it with "
                            "numpy.savez") from None


def _read_arrays(name: str, path: Path) -> Dict[str, np.ndarray]:
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
    _check_headers(name, path)
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
    """Reads an ``.npz`` file and checks each array's dtype, shape and range, and that the test
    arrays come as a pair with ``X``'s number of features.

    Raises:
        DataFileError: the file is missing, unreadable, holds pickled objects, or breaks the schema.
    """
    name = str(path)
    path = Path(path)
    check_is_file(name, path)
    arrays = _read_arrays(name, path)
    X = check_X(name, "X", arrays["X"])
    y = check_ints(name, "y", arrays["y"], X.shape[0])
    lengths = check_lengths(name, "lengths", arrays["lengths"], X) if "lengths" in arrays else None
    X = as_float32(name, "X", X, lengths)
    X_test = y_test = lengths_test = None
    has_test = "X_test" in arrays, "y_test" in arrays
    if any(has_test) and not all(has_test):
        given, other = ("X_test", "y_test") if has_test[0] else ("y_test", "X_test")
        raise DataFileError(f"{name}: {given} given without {other} (give both or neither)")
    if "lengths_test" in arrays and not has_test[0]:
        raise DataFileError(f"{name}: lengths_test given without X_test and y_test")
    if has_test[0]:
        X_test = check_X(name, "X_test", arrays["X_test"])
        if X_test.shape[2] != X.shape[2]:
            raise DataFileError(
                f"{name}: X_test has {X_test.shape[2]} feature(s) per step but X has {X.shape[2]}"
            )
        y_test = check_ints(name, "y_test", arrays["y_test"], X_test.shape[0])
        if "lengths_test" in arrays:
            lengths_test = check_lengths(name, "lengths_test", arrays["lengths_test"], X_test)
        X_test = as_float32(name, "X_test", X_test, lengths_test)
    return CheckedArrays(X, y, lengths, X_test, y_test, lengths_test)
