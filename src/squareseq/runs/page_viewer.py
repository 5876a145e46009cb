"""The report's interactive replay: a run folder's ``replay.json`` (see
:mod:`squareseq.figures.viewer_data`) and the package's ``static/viewer.js`` and ``viewer.css``,
inlined in ``report.html``, so the page stays one file that opens from disk, offline.

Standard library only: the page (:mod:`squareseq.runs.page`) imports this module, and neither
imports torch or matplotlib.
"""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Optional, Tuple

from squareseq.figures.figure_set import VIEWER_FILE, VIEWER_TEXT

__all__ = ["STATIC_DIR", "MAX_VIEWER_BYTES", "viewer_assets", "viewer_html"]

#: The package's static files (the viewer).
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
#: The largest ``replay.json`` the page embeds (a default run's is about 0.5 MB).
MAX_VIEWER_BYTES = 32 * 2**20


def viewer_assets() -> Tuple[str, str]:
    """``(javascript, css)`` of the viewer, as shipped in the package."""
    return ((STATIC_DIR / "viewer.js").read_text(encoding="utf-8"),
            (STATIC_DIR / "viewer.css").read_text(encoding="utf-8"))


def _script_safe(text: str) -> str:
    """JSON or JavaScript that cannot end its ``<script>`` element early (``</script>``, ``<!--``)."""
    return text.replace("<", "\\u003c") if text.lstrip().startswith(("{", "[")) else text.replace("</", "<\\/")


def _payload(path: Path) -> Tuple[Optional[str], Optional[str]]:
    """``(compact JSON, None)`` of a readable viewer payload at ``path``, or ``(None, why not)``."""
    try:
        if path.stat().st_size > MAX_VIEWER_BYTES:
            return None, f"{path.name} is larger than {MAX_VIEWER_BYTES:,} bytes"
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        return None, f"{path.name} is not readable JSON ({type(exc).__name__})"
    if not (isinstance(data, dict) and isinstance(data.get("meta"), dict)
            and data["meta"].get("format") == "squareseq-viewer" and isinstance(data.get("epochs"), list)):
        return None, f"{path.name} is not a squareseq replay"
    return json.dumps(data, separators=(",", ":")), None


def viewer_html(run_dir: Path) -> Optional[str]:
    """The replay section's figure for ``run_dir``'s ``replay.json`` (viewer, data and the script
    that starts it), a note when the file is there but unusable, or None without the file."""
    path = Path(run_dir) / VIEWER_FILE
    if not path.exists():
        return None
    payload, problem = _payload(path)
    heading, caption = VIEWER_TEXT
    if payload is None:
        return f'<p class="muted">{html.escape(heading)}: not shown, {html.escape(str(problem))}.</p>'
    js, css = viewer_assets()
    start = ("(function(){var root=document.getElementById('sqv-replay');"
             "var data=JSON.parse(document.getElementById('sqv-replay-data').textContent);"
             "window.squareseqReplay=SquareseqViewer.create(root,data);})();")
    return (f'<figure id="replay"><h3>{html.escape(heading)}</h3><style>{css}</style>'
            '<div id="sqv-replay" class="sqv"><noscript>The interactive replay needs JavaScript.</noscript></div>'
            f'<script type="application/json" id="sqv-replay-data">{_script_safe(payload)}</script>'
            f"<script>{_script_safe(js)}</script><script>{start}</script>"
            f'<figcaption>{html.escape(caption)} <span class="muted">({VIEWER_FILE})</span></figcaption></figure>')
