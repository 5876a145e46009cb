"""Serves the playground with uvicorn on ``host:port`` and opens its page in a browser (through
:mod:`webbrowser`, so the ``BROWSER`` variable is honoured). Binds to 127.0.0.1 unless told
otherwise, and warns when told otherwise: the page trains models for whoever can reach it."""
from __future__ import annotations

import os
import socket
import sys
import threading
import webbrowser
from typing import Optional, TextIO

__all__ = ["LOCAL_HOSTS", "serve", "page_url", "is_local"]

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def is_local(host: str) -> bool:
    return host.lower() in LOCAL_HOSTS


def page_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"http://[{shown}]:{port}/" if ":" in shown else f"http://{shown}:{port}/"


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _warm_up() -> None:
    """Loads the trainer's modules and runs one tiny epoch, so a page's first epoch comes at once."""
    from squareseq.playground.job import TrainingJob
    from squareseq.playground.settings import parse_settings

    job = TrainingJob(parse_settings({"epochs": "1", "n_train": "16", "n_test": "16"})[0])
    job.prepare()
    job.step()


def serve(host: str = "127.0.0.1", port: int = 0, open_browser: bool = True, workers: Optional[int] = None,
          out: TextIO = sys.stdout) -> None:
    """Runs the playground until interrupted. ``port`` 0 picks a free one; ``workers``: threads
    training the pages' jobs (default: the CPUs, at most 4)."""
    import torch  # before the first page: it takes seconds to load
    import uvicorn

    from squareseq.playground.server import LOCAL_NAMES, build_app

    _warm_up()
    torch.set_num_threads(1)  # many small jobs side by side: one thread each beats them fighting over all
    if not is_local(host):
        print(f"squareseq playground: warning: listening on {host}, not only this machine: anyone who can reach "
              "it can train models here (use --host 127.0.0.1 to keep it local)", file=sys.stderr)
    port = port or _free_port(host)
    url = page_url(host, port)
    app = build_app(workers=workers or max(1, min(4, os.cpu_count() or 1)),
                    allowed_hosts=LOCAL_NAMES if is_local(host) else None)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", ws_max_size=1 << 16,
                            lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    print(f"squareseq playground: {url} (Ctrl-C to stop)", file=out, flush=True)
    if open_browser:
        def _open() -> None:
            while not server.started and not server.should_exit:
                threading.Event().wait(0.05)
            if server.started:
                webbrowser.open(url)

        threading.Thread(target=_open, daemon=True).start()
    server.run()
