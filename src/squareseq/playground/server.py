"""The playground's web app: a Starlette ASGI application, served by uvicorn (:mod:`.serve`).

Routes: ``/`` the page; ``/static/...`` the package's static folder and nothing outside it;
``/api/fields`` the settings with their defaults and caps; ``/api/check?...`` a query string's
settings checked (``400`` with ``{"error", "field"}`` when bad); ``/api/upload`` (POST) one's own
``.npz`` sequences (:mod:`.uploads`); ``/ws`` a page's training session
(:mod:`.session`); ``/download/{token}`` a finished run's folder as a zip.

Starlette rather than aiohttp: it is ASGI (any ASGI server runs it; tests drive it in-process
with its ``TestClient``, without a socket), small, typed, and well kept; its ``StaticFiles``
refuses paths that leave the folder.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, AsyncIterator, Optional, Sequence
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from squareseq.errors import SquareseqError
from squareseq.playground.session import MAX_PAGES, Hub, Session
from squareseq.playground.settings import LIMITS, SettingsError, describe_fields, parse_settings
from squareseq.playground.uploads import MAX_UPLOAD_BYTES

__all__ = ["LOCAL_NAMES", "STATIC", "build_app"]

#: The names this machine answers to: a page served on 127.0.0.1 accepts requests for these only,
#: so that another site whose name is made to point here (DNS rebinding) is refused.
LOCAL_NAMES = ("127.0.0.1", "localhost", "[::1]", "::1")

#: The package's static folder: the page, its script and style, and the report's viewer.
STATIC = Path(__file__).resolve().parents[1] / "static"
#: Headers of every page and API answer: no framing by other sites, no sniffing, scripts from here only.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
                               "style-src 'self' 'unsafe-inline'",
    "Referrer-Policy": "no-referrer",
}


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers=SECURITY_HEADERS)


async def page(request: Request) -> Response:
    return FileResponse(STATIC / "playground.html", headers=SECURITY_HEADERS)


async def fields(request: Request) -> Response:
    return _json({**describe_fields(), "limits": LIMITS})


async def check(request: Request) -> Response:
    """The query string's settings, checked: 200 with them in full, or 400 saying what is wrong."""
    try:
        _, texts = parse_settings(dict(request.query_params), request.app.state.hub.uploads.path)
    except SettingsError as exc:
        return _json({"error": str(exc), "field": exc.field}, 400)
    return _json({"ok": True, "settings": texts})


async def upload(request: Request) -> Response:
    """A person's ``.npz`` file (the request's body): 200 with its token and summary, 413 past the
    size cap, 400 saying what is wrong with it."""
    hub: Hub = request.app.state.hub
    declared = request.headers.get("content-length", "")
    too_big = _json({"error": f"the file is larger than {MAX_UPLOAD_BYTES} bytes, the playground's cap "
                              "(use squareseq train --data for large files)", "field": "data"}, 413)
    if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
        return too_big
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_UPLOAD_BYTES:
            return too_big
    try:
        token, summary = await hub.run(lambda: hub.uploads.add(bytes(body)))
    except SquareseqError as exc:
        return _json({"error": str(exc), "field": "data"}, 400)
    return _json({"data": token, "summary": summary})


async def download(request: Request) -> Response:
    data = request.app.state.hub.downloads.get(request.path_params["token"])
    if data is None:
        return _json({"error": "no such run: train one and use the page's download link (the server keeps the "
                               "last few)"}, 404)
    return Response(data, media_type="application/zip",
                    headers={"Content-Disposition": 'attachment; filename="playground-run.zip"', **SECURITY_HEADERS})


def _same_origin(websocket: WebSocket) -> bool:
    """A socket opened by this server's own page (or by a client that sends no Origin): another
    site's page in the person's browser must not drive training here."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc.lower() == websocket.headers.get("host", "").lower()


async def socket(websocket: WebSocket) -> None:
    hub: Hub = websocket.app.state.hub
    if not _same_origin(websocket):
        await websocket.close(code=1008, reason="the playground's socket serves its own page only")
        return
    await websocket.accept()
    if hub.pages >= MAX_PAGES:
        await websocket.send_json({"type": "error", "message": f"{MAX_PAGES} pages are training already: close one "
                                                               "and reload", "field": None})
        await websocket.close(code=1013)
        return
    hub.pages += 1
    try:
        await Session(websocket, hub).run()
    except WebSocketDisconnect:
        pass
    finally:
        hub.pages -= 1


async def _not_found(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    text = "not found" if status == 404 else "method not allowed" if status == 405 else "server error"
    return _json({"error": text}, status)


def build_app(workers: int = 2, static: Optional[Path] = None,
              allowed_hosts: Optional[Sequence[str]] = LOCAL_NAMES) -> Starlette:
    """The playground's ASGI app; ``workers`` threads train the pages' jobs, one epoch at a time.
    ``allowed_hosts``: the ``Host`` names it answers (None: any, for a server bound to another
    address by ``--host``)."""
    hub = Hub(workers)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        hub.close()

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/api/fields", fields),
            Route("/api/check", check),
            Route("/api/upload", upload, methods=["POST"]),
            Route("/download/{token}", download),
            WebSocketRoute("/ws", socket),
            Mount("/static", app=StaticFiles(directory=static or STATIC), name="static"),
        ],
        exception_handlers={404: _not_found, 405: _not_found, 500: _not_found},
        lifespan=lifespan,
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))] if allowed_hosts else [],
    )
    app.state.hub = hub
    return app
