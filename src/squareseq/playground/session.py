"""One page's WebSocket session: the protocol, the job's states, and the fair use of the workers.

The page sends JSON objects ``{"type": ...}``:

* ``start`` with ``settings`` (the URL's names, see :mod:`squareseq.playground.settings`): builds a
  job and trains it; refused while this page's job is running or paused (one job per page);
* ``pause``, ``resume``, ``step`` (one epoch, while paused), ``reset`` (drops the job);
* ``lr`` with ``lr``: the learning rate from the next epoch on, while paused.

The server answers with ``meta`` (once per job), ``epoch`` (epoch 0 first, then one per epoch
trained), ``state`` (``idle``, ``preparing``, ``running``, ``paused``, ``done``, ``failed``),
``done`` (with the run's ``download`` address) and ``error`` (``message``, ``field``).

Training runs in the :class:`Hub`'s worker threads, one epoch per task; every epoch waits for a
free worker in arrival order, so pages training at once take turns epoch by epoch and the event
loop is never blocked. A page that closes cancels its job at the next mini-batch.
"""
from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, Optional, TypeVar

from squareseq.errors import SquareseqError
from squareseq.playground.settings import SettingsError, parse_lr, parse_settings
from squareseq.playground.uploads import Uploads

__all__ = ["Hub", "Session", "MAX_MESSAGE", "MAX_PAGES"]

LOG = logging.getLogger("squareseq.playground")
T = TypeVar("T")
#: The longest message a page may send (settings are a few hundred bytes).
MAX_MESSAGE = 16_384
#: Pages connected at once; one more is told to close another.
MAX_PAGES = 16
#: Finished runs whose zip stays downloadable (the oldest go first).
MAX_DOWNLOADS = 16


class Hub:
    """What every page shares: the worker threads, the turn order, the pages' count and the finished
    runs' zips."""

    def __init__(self, workers: int = 2) -> None:
        self.workers = workers
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="squareseq-playground")
        self._turns: Optional[asyncio.Semaphore] = None
        self.pages = 0
        #: the pages' jobs now alive (each page's one), for the log and the tests
        self.jobs: "set[Any]" = set()
        self.downloads: "OrderedDict[str, bytes]" = OrderedDict()
        self.uploads = Uploads()

    async def run(self, fn: Callable[[], T]) -> T:
        """``fn()`` in a worker thread once a worker is free (waiters are served in arrival order)."""
        if self._turns is None:  # made on the running loop
            self._turns = asyncio.Semaphore(self.workers)
        async with self._turns:
            return await asyncio.get_running_loop().run_in_executor(self.pool, fn)

    def keep_download(self, data: bytes) -> str:
        token = secrets.token_urlsafe(16)
        self.downloads[token] = data
        while len(self.downloads) > MAX_DOWNLOADS:
            self.downloads.popitem(last=False)
        return token

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.uploads.close()


class Session:
    """One page: its socket, its job (at most one) and the job's state."""

    def __init__(self, websocket: Any, hub: Hub) -> None:
        self.ws, self.hub = websocket, hub
        self.job: Any = None
        self.state = "idle"
        self.step_once = False
        self.in_flight = False  # an epoch of this page's job is training now
        self.wake = asyncio.Event()

    async def send(self, message: Dict[str, Any]) -> None:
        await self.ws.send_text(json.dumps(message, allow_nan=False))

    async def error(self, message: str, field: Optional[str] = None) -> None:
        await self.send({"type": "error", "message": message, "field": field})

    async def set_state(self, state: str) -> None:
        self.state = state
        await self.send({"type": "state", "state": state, "epoch": self.job.epoch if self.job else 0,
                         "lr": self.job.lr if self.job else None})

    async def run(self) -> None:
        """Serves the page until it closes; then cancels its job."""
        reader = asyncio.create_task(self._read())
        trainer = asyncio.create_task(self._train())
        try:
            done, _ = await asyncio.wait({reader, trainer}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                failure = None if task.cancelled() else task.exception()
                if failure is not None and not _closed(failure):
                    LOG.error("playground session failed", exc_info=failure)
        finally:
            for task in (reader, trainer):
                task.cancel()
            self._drop_job()

    def _drop_job(self) -> None:
        if self.job is not None:
            self.job.cancelled.set()
            self.hub.jobs.discard(self.job)
        self.job = None

    async def _read(self) -> None:
        while True:
            text = await self.ws.receive_text()
            if len(text) > MAX_MESSAGE:
                await self.error(f"message of {len(text)} characters: at most {MAX_MESSAGE}")
                continue
            try:
                message = json.loads(text)
            except ValueError:
                await self.error("not JSON: send an object such as {\"type\": \"pause\"}")
                continue
            if not isinstance(message, dict) or not isinstance(message.get("type"), str):
                await self.error("send an object with a \"type\": start, pause, resume, step, reset or lr")
                continue
            await self._command(message)

    async def _command(self, message: Dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "start":
            await self._start(message.get("settings", {}))
        elif kind == "pause" and self.state == "running":
            self.state = "paused"  # said once the epoch in flight (if any) is on the page
            if not self.in_flight:
                await self.set_state("paused")
        elif kind == "resume" and self.state == "paused":
            await self.set_state("running")
            self.wake.set()
        elif kind == "step" and self.state == "paused":
            self.step_once = True
            self.wake.set()
        elif kind == "reset":
            self._drop_job()
            await self.set_state("idle")
        elif kind == "lr":
            await self._lr(message.get("lr"))
        elif kind in ("pause", "resume", "step"):
            await self.error(f"cannot {kind} while {self.state}")
        else:
            await self.error(f"unknown message type {kind[:40]!r}: start, pause, resume, step, reset or lr")

    async def _start(self, settings: Any) -> None:
        if self.job is not None and self.state not in ("done", "failed"):
            await self.error("this page already has a training job: reset it first (one job per page)")
            return
        if not isinstance(settings, dict):
            await self.error("settings must be an object of the page's settings", "settings")
            return
        try:
            config, _ = parse_settings(settings, self.hub.uploads.path)
        except SettingsError as exc:
            await self.error(str(exc), exc.field)
            return
        from squareseq.playground.job import TrainingJob  # torch loads with the first job

        self._drop_job()
        self.job = TrainingJob(config)
        self.hub.jobs.add(self.job)
        await self.set_state("preparing")
        self.wake.set()

    async def _lr(self, value: Any) -> None:
        if self.job is None or self.state != "paused":
            await self.error("pause the training to change its learning rate", "lr")
            return
        try:
            lr = parse_lr(value)
        except SettingsError as exc:
            await self.error(str(exc), exc.field)
            return
        self.job.set_lr(lr)
        await self.set_state("paused")

    async def _train(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            job = self.job
            if job is None:
                continue
            if self.state == "preparing" and not await self._prepare(job):
                continue
            await self._epochs(job)

    async def _prepare(self, job: Any) -> bool:
        first = await self._call(job, job.prepare)
        if first is None:
            return False
        await self.send(first["meta"])
        await self.send(first["epoch"])
        await self.set_state("running")
        return True

    async def _epochs(self, job: Any) -> None:
        while self.job is job and not job.finished and (self.state == "running" or self.step_once):
            self.step_once = False
            self.in_flight = True
            try:
                record = await self._call(job, job.step)
            finally:
                self.in_flight = False
            if record is None or self.job is not job:
                return
            await self.send(record)
            if self.state == "paused":  # a step, or a pause that came during the epoch
                await self.set_state("paused")
        if self.job is job and job.finished and self.state != "done":
            data = await self._call(job, job.archive)
            if data is None:
                return
            token = self.hub.keep_download(data)
            await self.set_state("done")
            await self.send({"type": "done", "epoch": job.epoch, "accuracy": job.accuracy,
                             "download": f"/download/{token}"})

    async def _call(self, job: Any, fn: Callable[[], T]) -> Optional[T]:
        """``fn()`` on a worker; None (the page told why) when it failed or the job was dropped."""
        from squareseq.playground.job import JobCancelled

        try:
            return await self.hub.run(fn)
        except JobCancelled:
            return None
        except SquareseqError as exc:  # bad data or settings, a NaN loss: said on the page
            if self.job is job:
                await self.error(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                await self.set_state("failed")
            return None
        except Exception as exc:  # a bug: logged here, one line on the page, never a traceback
            LOG.error("playground job failed", exc_info=exc)
            if self.job is job:
                await self.error(f"internal error: {type(exc).__name__} (see the server's log)")
                await self.set_state("failed")
            return None


def _closed(exc: BaseException) -> bool:
    return type(exc).__name__ in ("WebSocketDisconnect", "ConnectionClosed", "ClientDisconnected")
