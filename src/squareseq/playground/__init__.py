"""``squareseq playground``: a local web page where a person sets a task and a recurrent cell,
presses Train, and watches squareseq's own trainer reorganise the hidden space epoch by epoch.

Lives here: the settings and their caps (:mod:`.settings`, no torch, no server), one page's
training job (:mod:`.job`), the viewer's per-epoch records (:mod:`.records`), the WebSocket
protocol (:mod:`.session`), the Starlette app (:mod:`.server`) and the uvicorn runner
(:mod:`.serve`). It may import every layer below the CLI (runs, stepbystep, figures, training,
models, data, config); the CLI imports it only inside ``squareseq playground``. Needs the optional
``playground`` extra (starlette, uvicorn): importing this package alone needs neither.
"""
from __future__ import annotations

__all__ = ["INSTALL_HINT", "available"]

#: How to get the optional packages the playground's server needs.
INSTALL_HINT = "pip install 'squareseq[playground]' (starlette and uvicorn)"


def available() -> bool:
    """Whether the playground's web server can run (starlette and uvicorn importable)."""
    from importlib.util import find_spec

    return all(find_spec(name) is not None for name in ("starlette", "uvicorn"))
