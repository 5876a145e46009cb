"""A person's own ``.npz`` sequences, uploaded to the playground: kept in a private temporary folder
under a random token for as long as the server runs (the last few only), read with squareseq's own
hardened reader (no pickles, sizes checked from the headers before anything is loaded) and
refused past the playground's caps. Imports no torch and no web server."""
from __future__ import annotations

import re
import secrets
import shutil
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from squareseq.errors import DataError

__all__ = ["MAX_UPLOAD_BYTES", "MAX_FILE_SEQUENCES", "MAX_FILE_STEPS", "Uploads"]

#: The largest file a page may upload.
MAX_UPLOAD_BYTES = 8 * 1024 * 1024
#: The most sequences (training and test together) and steps an uploaded file may hold.
MAX_FILE_SEQUENCES = 8192
MAX_FILE_STEPS = 512
#: Uploaded files kept at once (the oldest go first).
MAX_UPLOADS = 16
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


class Uploads:
    """The uploaded files of one server, by token."""

    def __init__(self) -> None:
        self._dir: Optional[Path] = None
        self.files: "OrderedDict[str, Path]" = OrderedDict()

    def add(self, data: bytes) -> Tuple[str, Dict[str, Any]]:
        """Keeps ``data`` as an ``.npz`` file if squareseq can train on it within the caps; returns
        its token and a summary. Raises :class:`~squareseq.errors.DataError` (one line) otherwise."""
        from squareseq.data.npz_files import read_npz

        if len(data) > MAX_UPLOAD_BYTES:
            raise DataError(f"the file has {len(data)} bytes: the playground takes at most {MAX_UPLOAD_BYTES}")
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="squareseq-playground-uploads-"))
        token = secrets.token_urlsafe(16)
        path = self._dir / f"{token}.npz"
        path.write_bytes(data)
        try:
            arrays = read_npz(path)
            n = arrays.X.shape[0] + (0 if arrays.X_test is None else arrays.X_test.shape[0])
            steps = max(arrays.X.shape[1:]) if arrays.X.ndim == 3 else 0
            if n > MAX_FILE_SEQUENCES:
                raise DataError(f"the file holds {n} sequences: the playground trains on at most "
                                f"{MAX_FILE_SEQUENCES} (use squareseq train --data for more)")
            if steps > MAX_FILE_STEPS:
                raise DataError(f"the file's sequences are {steps} long: the playground takes at most "
                                f"{MAX_FILE_STEPS} steps (use squareseq train --data for longer ones)")
        except ValueError as exc:  # DataFileError and DataError: what is wrong with the file, in one line
            path.unlink(missing_ok=True)
            text = str(exc).replace(str(path), "the file").strip().splitlines()
            raise DataError(text[0] if text else "not a readable .npz file") from None
        self.files[token] = path
        while len(self.files) > MAX_UPLOADS:
            _, old = self.files.popitem(last=False)
            old.unlink(missing_ok=True)
        classes = len({*arrays.y.tolist(), *([] if arrays.y_test is None else arrays.y_test.tolist())})
        return token, {"sequences": int(n), "shape": list(arrays.X.shape), "classes": classes,
                       "test_set": arrays.X_test is not None}

    def path(self, token: str) -> Optional[Path]:
        """The file of ``token``, or None (unknown, malformed or dropped)."""
        return self.files.get(token) if _TOKEN.match(token or "") else None

    def close(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
        self.files.clear()
