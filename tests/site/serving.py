"""The site server on loopback for tests: `kiosk.site.server.run` on its own thread and
event loop, with a clock the test moves; a TCP proxy that cuts one connection after a
number of bytes; and raw HTTPS requests for what the real client never sends."""

from __future__ import annotations

import asyncio
import http.client
import json
import ssl
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kiosk.common.crypto import Identity
from kiosk.net.site_client import SiteClient, signed_headers
from kiosk.site.server import run

START_TIMEOUT_S = 30.0


class ShiftedClock:
    """Wall time plus a shift the test sets (the box signs with wall time)."""

    def __init__(self) -> None:
        self.shift = 0.0

    def __call__(self) -> float:
        return time.time() + self.shift


class LoopThread:
    """Runs `main(ready)` on a thread of its own until stop(); `ready(port)` is called
    by `main` once it listens."""

    def __init__(self, main: Callable[[Callable[[int], None]], Coroutine[Any, Any, None]]) -> None:
        self._main = main
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._run(),), name="site-test-loop")

    async def _run(self) -> None:
        self._loop, self._task = asyncio.get_running_loop(), asyncio.current_task()
        try:
            await self._main(self._on_ready)
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # reported to the test by start()
            self.error = exc
        finally:
            self._ready.set()

    def _on_ready(self, port: int) -> None:
        self.port = port
        self._ready.set()

    def start(self) -> LoopThread:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S) or self.error is not None or not self.port:
            self.stop()
            raise RuntimeError(f"did not start: {self.error!r}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._task is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(START_TIMEOUT_S)
        assert not self._thread.is_alive(), "the test loop did not stop"


def site_server(plan_dir: Path, db_url: str, clock: Callable[[], float]) -> LoopThread:
    async def main(ready: Callable[[int], None]) -> None:
        def on_ready(url: str, fingerprint: str) -> None:
            ready(urlsplit(url).port or 0)

        await run(plan_dir, db_url, "127.0.0.1", 0, clock, ready=on_ready)

    return LoopThread(main).start()


class CuttingProxy:
    """Forwards TCP to `target`; the connection whose client-to-server bytes cross
    `cut_after` (counted over all connections) is aborted there, once."""

    def __init__(self, target: int, cut_after: int) -> None:
        self.target, self.cut_after = target, cut_after
        self.forwarded = 0
        self.cut = False
        # Strong references: a task parked on a socket nobody else holds can be collected.
        self._handlers: set[asyncio.Task[None]] = set()

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, upstream: bool) -> None:
        while data := await src.read(65536):
            if upstream and not self.cut and self.forwarded + len(data) > self.cut_after:
                self.cut = True
                raise ConnectionAbortedError("cut by the test proxy")
            if upstream:
                self.forwarded += len(data)
            dst.write(data)
            await dst.drain()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Both directions until either ends; then both sockets close (abort if cut)."""
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        writers, cut = [writer], True
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
            writers.append(up_writer)
            pipes = [
                asyncio.create_task(self._pipe(reader, up_writer, True)),
                asyncio.create_task(self._pipe(up_reader, writer, False)),
            ]
            try:
                await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pipe in pipes:
                    pipe.cancel()
                ends = await asyncio.gather(*pipes, return_exceptions=True)
            cut = any(isinstance(end, OSError) for end in ends)
        except (OSError, asyncio.CancelledError):  # the target is gone, or the proxy stops
            pass
        finally:
            for w in writers:
                if cut:
                    w.transport.abort()
                else:
                    w.close()
            self._handlers.discard(task)

    async def main(self, ready: Callable[[int], None]) -> None:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        try:
            ready(server.sockets[0].getsockname()[1])
            await asyncio.Event().wait()
        finally:
            server.close()
            for handler in self._handlers:
                handler.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)


def client(port: int, box: Identity, site_cert: bytes | None, **options: Any) -> SiteClient:
    options = {"timeout_s": 10.0, "retries": 3, "chunk_bytes": 4096, **options}
    return SiteClient("127.0.0.1", port, box, site_cert, **options)


def raw_request(
    port: int, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """One HTTPS request as given (TLS unverified): the status and the JSON answer."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=30, context=ctx)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    try:
        return response.status, json.loads(data)
    except ValueError:
        return response.status, data


def signed_request(
    port: int, box: Identity, method: str, path: str, body: bytes = b"", *, now: float | None = None
) -> tuple[int, Any]:
    headers = signed_headers(box, method, path, body, time.time() if now is None else now)
    return raw_request(port, method, path, body, headers)
