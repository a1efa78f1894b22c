"""The box side of the room network (docs/network.md): the signed UDP seat scan, the
pinned TLS 1.3 link to every exam-PC daemon, commands with acknowledgements, and the
journal sync with group commit. It implements the room service's SeatNetwork port.

Everything here runs on the engine's asyncio loop; the room service runs on its own
worker thread (`executor`). Port methods are called from that thread and wait for the
loop; the network calls the service through the executor, one operation at a time."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiosk.common import wire
from kiosk.common.crypto import Identity, cert_fingerprint, peer_fingerprint, server_context, sign
from kiosk.common.fsutil import write_atomic
from kiosk.core.errors import Refused
from kiosk.platform.netif import ipv4_interfaces
from kiosk.services.ports import ScanReply, SendResult
from kiosk.settings import Settings

log = logging.getLogger(__name__)

SEQ_BLOCK = 10_000  # command numbers reserved on disk at a time
GROUP_COMMIT_ENTRIES = 2_000  # journal entries per group commit, at most (plus one frame)
SEATS_ADDED = {"seats_scanned", "seat_added", "seats_imported"}  # events after which PCs may link
SEATS_CHANGED = SEATS_ADDED | {"seat_edited", "seat_deleted", "box_initialised"}
MAX_SCAN_ADDRESSES = 4096  # replying addresses one scan keeps, at most
DROP_LOG_S = 60.0  # an address that is not a seat is logged once a minute, however often it tries
# A PC's request: the room-service method, called with (admission_no, the link's IP) and
# these further arguments of the request (the service checks their types: JSON is untrusted).
REQUESTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "login": ("candidate_login", ()),
    "begin": ("candidate_begin", ()),
    "submit": ("candidate_submit", ()),
    "raise_hand": ("raise_hand", ()),
    "put_file": ("receive_file", ("sha256", "size", "offset", "data")),  # a work file, in chunks
}


@dataclass
class Link:
    ip: str
    fingerprint: str
    writer: asyncio.StreamWriter
    last_seen: float = field(default_factory=time.monotonic)
    waiting: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)

    def send(self, msg: dict[str, Any]) -> None:
        if not self.writer.is_closing():
            wire.write_frame(self.writer, msg)


class CommandNumbers:
    """Strictly increasing command numbers across restarts: a block is reserved on disk
    before any number in it is used, so a restarted box never reuses one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            start = int(path.read_text())
        except (OSError, ValueError):
            start = 0
        self.next = start + 1
        self.reserved = start

    def take(self) -> int:
        if self.next > self.reserved:
            self.reserved = self.next + SEQ_BLOCK
            write_atomic(self.path, str(self.reserved).encode())
        n, self.next = self.next, self.next + 1
        return n


class _ScanCollector(asyncio.DatagramProtocol):
    def __init__(self, nonce: str, on_reply: Callable[[dict[str, Any], str], None]) -> None:
        self.nonce = nonce
        self.on_reply = on_reply

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            msg = wire.open_plain_datagram(data)
        except wire.WireError:
            return
        if msg.get("t") == wire.SCAN_REPLY and msg.get("nonce") == self.nonce:
            self.on_reply(msg, addr[0])


class RoomNetwork:
    def __init__(self, settings: Settings, identity: Identity, executor: ThreadPoolExecutor) -> None:
        self.settings = settings
        self.identity = identity
        self.executor = executor
        self.pcs_dir = settings.home_path / "pcs"
        self.pcs_dir.mkdir(parents=True, exist_ok=True)
        self.numbers = CommandNumbers(settings.home_path / "keys" / "command.seq")
        self.links: dict[str, Link] = {}
        self.service: Any = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server: asyncio.Server | None = None
        self.journal_queue: asyncio.Queue[tuple[Link, list[dict[str, Any]]]] = asyncio.Queue()
        self.changed: set[str] = set()  # IPs whose link came or went since the last flush
        self.seat_ips: frozenset[str] = frozenset()  # refreshed after every change of the seats
        self.dropped: dict[str, float] = {}  # address -> when its last refusal was logged
        self.link_wake = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.handlers: set[asyncio.Task[Any]] = set()  # one per connection
        self.ctx = server_context(identity, [p.read_bytes() for p in sorted(self.pcs_dir.glob("*.crt"))])

    # -- life --------------------------------------------------------------------------

    async def start(self, service: Any) -> None:
        self.service = service
        self.loop = asyncio.get_running_loop()
        wire.small_tls_buffers()
        await self.call(service.reset_links)  # nothing is connected to a box that just started
        self.seat_ips = await self.call(self._read_seat_ips)
        service.subscribe(self._on_service_event)
        # Plain TCP first: TLS starts only for a seat's address (see _serve).
        self.server = await asyncio.start_server(
            self._serve, self.settings.control_host, self.settings.control_port
        )
        self.tasks = [
            asyncio.create_task(self._heartbeats()),
            asyncio.create_task(self._group_commit()),
            asyncio.create_task(self._record_links()),
        ]
        log.info("room network on %s:%s", self.settings.control_host, self.port)

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop serving; every link's handler has marked its seat offline when this returns."""
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.server is not None:
            self.server.close()
        for link in list(self.links.values()):
            link.writer.transport.abort()
        if self.handlers:
            await asyncio.wait(self.handlers, timeout=10)
        await self._flush_links()
        if self.server is not None:
            await self.server.wait_closed()

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one room-service operation on its worker thread."""
        assert self.loop is not None
        return await self.loop.run_in_executor(self.executor, lambda: fn(*args, **kwargs))

    def _wait(self, coro: Any, timeout: float) -> Any:
        """From the service's thread: run a coroutine on the loop and wait for it."""
        assert self.loop is not None
        if self.loop.is_running() and _on_loop_thread(self.loop):
            raise RuntimeError("the room network's port is called from the room-service thread only")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    # -- the SeatNetwork port ------------------------------------------------------------

    def scan(self, timeout_s: float) -> Sequence[ScanReply]:
        return self._wait(self._scan(timeout_s), timeout_s + 5)

    def send(self, ips: Sequence[str], command: str, args: dict[str, Any]) -> SendResult:
        return self._wait(self._send(list(ips), command, args), self.settings.command_timeout_s + 5)

    def wake(self, macs: Sequence[str]) -> None:
        self._wait(self._wake(list(macs)), 5)

    def env_check(self, ips: Sequence[str], software: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
        return self._wait(self._env_check(list(ips), list(software)), self.settings.command_timeout_s + 5)

    # -- scan --------------------------------------------------------------------------

    def broadcast_addresses(self) -> list[str]:
        if self.settings.scan_broadcast:
            return [a.strip() for a in self.settings.scan_broadcast.split(",") if a.strip()]
        return [i.broadcast for i in ipv4_interfaces() if i.broadcast] or ["127.255.255.255"]

    async def _scan(self, timeout_s: float) -> list[ScanReply]:
        """Send the signed scan; collect the replies until `timeout_s`, or until they have
        stopped coming for `scan_quiet_s`. Replies are only kept while they arrive (a
        thousand come within half a second); they are checked and pinned afterwards."""
        assert self.loop is not None
        nonce = secrets.token_hex(8)
        heard: dict[str, list[dict[str, Any]]] = {}
        arrived = asyncio.Event()

        def on_reply(msg: dict[str, Any], ip: str) -> None:
            if ip not in heard and len(heard) >= MAX_SCAN_ADDRESSES:
                return  # a flood of forged source addresses is not a room
            kept = heard.setdefault(ip, [])
            if len(kept) < 4:  # the first valid one counts; a flood from one address does not
                kept.append(msg)
            arrived.set()

        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        # a whole room's replies (~1.5 KiB each) may arrive at once: room for them all
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        sock.bind(("0.0.0.0", 0))
        transport, _ = await self.loop.create_datagram_endpoint(
            lambda: _ScanCollector(nonce, on_reply), sock=sock
        )
        try:
            packet = wire.signed_datagram(
                {"t": wire.SCAN, "nonce": nonce, "ts": self.service.now()},
                lambda raw: sign(self.identity, raw),
            )
            for addr in self.broadcast_addresses():
                transport.sendto(packet, (addr, self.settings.scan_port))
            deadline = self.loop.time() + timeout_s
            while (left := deadline - self.loop.time()) > 0:
                arrived.clear()
                try:
                    await asyncio.wait_for(
                        arrived.wait(), min(left, self.settings.scan_quiet_s) if heard else left
                    )
                except TimeoutError:
                    if heard:
                        break  # quiet for a while after the answers came in
        finally:
            transport.close()
        certs: dict[str, bytes] = {}
        replies: list[ScanReply] = []
        for ip, msgs in heard.items():
            for msg in msgs:
                if (reply := _scan_reply(msg, ip)) is not None:
                    replies.append(reply)
                    certs[reply.fingerprint] = msg["cert"].encode()
                    break
        self._trust(certs)
        return replies

    def _read_seat_ips(self) -> frozenset[str]:
        return frozenset(s["ip"] for s in self.service.seats())

    def _on_service_event(self, ev: Any) -> None:
        """On the service's thread, after the commit of a change of the seats: the new
        set of seat addresses goes to the loop; after seats are added, every PC waiting
        to be seated links at once instead of at its next backoff retry, up to 2 s later."""
        if ev.kind not in SEATS_CHANGED or self.loop is None or self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self._seats_changed, self._read_seat_ips(), ev.kind in SEATS_ADDED)

    def _seats_changed(self, ips: frozenset[str], added: bool) -> None:
        self.seat_ips = ips
        self.dropped.clear()  # an address refused under the old seats is news again
        if added:
            self._announce_seats()

    def _announce_seats(self) -> None:
        packet = wire.signed_datagram(
            {"t": wire.LINK_NOW, "ts": self.service.now()}, lambda raw: sign(self.identity, raw)
        )
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            for addr in self.broadcast_addresses():
                with contextlib.suppress(OSError):
                    sock.sendto(packet, (addr, self.settings.scan_port))

    def _trust(self, certs: dict[str, bytes]) -> None:
        """Pin the certificates of the PCs that answered: in the live TLS context, and a
        file each for the next start, on disk before the seats that name them commit."""
        new = {fp: pem for fp, pem in certs.items() if not (self.pcs_dir / f"{fp}.crt").exists()}
        for fp, pem in new.items():
            write_atomic(self.pcs_dir / f"{fp}.crt", pem, sync=False)
            self.ctx.load_verify_locations(cadata=pem.decode())
        if new:
            os.sync()  # one flush for the whole scan, not two per certificate

    # -- commands ------------------------------------------------------------------------

    def _issue(self, link: Link, command: str, args: dict[str, Any]) -> asyncio.Future[dict[str, Any]]:
        """Send one numbered command; the future gets the PC's acknowledgement."""
        assert self.loop is not None
        seq = self.numbers.take()
        future: asyncio.Future[dict[str, Any]] = self.loop.create_future()
        link.waiting[seq] = future
        future.add_done_callback(lambda _: link.waiting.pop(seq, None))
        link.send({"t": wire.COMMAND, "seq": seq, "cmd": command, "args": args})
        return future

    async def _command(self, ip: str, command: str, args: dict[str, Any]) -> dict[str, Any]:
        link = self.links.get(ip)
        if link is None:
            raise ConnectionError("离线")
        return await asyncio.wait_for(self._issue(link, command, args), self.settings.command_timeout_s)

    async def _send(self, ips: list[str], command: str, args: dict[str, Any]) -> SendResult:
        """Every frame is written first, then the acknowledgements are awaited together:
        a room-wide lock costs one pass over the links, not a task and a timer per PC."""
        waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        failed: dict[str, str] = {}
        for ip in ips:
            link = self.links.get(ip)
            if link is None:
                failed[ip] = "离线"
                continue
            per_pc = {"seat": args.get("numbers", {}).get(ip, "")} if command == "show_seat" else args
            waiting[ip] = self._issue(link, command, per_pc)
        if waiting:
            await asyncio.wait(waiting.values(), timeout=self.settings.command_timeout_s)
        for ip, future in waiting.items():
            if not future.done():
                future.cancel()
                failed[ip] = "无应答"
            elif future.exception() is not None:
                failed[ip] = "离线"  # the link closed before the acknowledgement
            elif not future.result().get("ok"):
                failed[ip] = str(future.result().get("error", "执行失败"))
        return SendResult(ok=tuple(ip for ip in ips if ip not in failed), failed=failed)

    async def _env_check(self, ips: list[str], software: list[str]) -> dict[str, dict[str, Any]]:
        async def one(ip: str) -> tuple[str, dict[str, Any] | None]:
            sent_box, sent = self.service.now(), time.monotonic()
            try:
                ack = await self._command(ip, "envcheck", {"software": software})
            except (ConnectionError, TimeoutError):
                return ip, None
            rtt = time.monotonic() - sent
            report = ack.get("result") if ack.get("ok") else None
            if not isinstance(report, dict):
                return ip, None
            report = dict(report)
            report["rtt_ms"] = round(rtt * 1000, 1)
            pc_time = report.get("pc_time")
            if isinstance(pc_time, int | float) and not isinstance(pc_time, bool):
                report["clock_skew_s"] = round(pc_time - (sent_box + rtt / 2), 3)
            return ip, report

        return {ip: r for ip, r in await asyncio.gather(*(one(ip) for ip in ips)) if r is not None}

    async def _wake(self, macs: list[str]) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        try:
            for mac in macs:
                raw = bytes.fromhex(mac.replace(":", "").replace("-", ""))
                if len(raw) != 6:
                    continue
                packet = b"\xff" * 6 + raw * 16
                for addr in self.broadcast_addresses():
                    sock.sendto(packet, (addr, 9))
        finally:
            sock.close()

    # -- the link ------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.handlers.add(task)
            task.add_done_callback(self.handlers.discard)
        ip = writer.get_extra_info("peername")[0]
        if ip not in self.seat_ips:
            # Not a seat: dropped before any TLS work, so unseated PCs retrying (a whole
            # lab before its scan) cost the box a socket each, not a handshake each.
            writer.transport.abort()
            if time.monotonic() - self.dropped.get(ip, -DROP_LOG_S) >= DROP_LOG_S:
                self.dropped[ip] = time.monotonic()
                log.info("refused link from %s: not a seat's address (not scanned yet?)", ip)
            return
        link: Link | None = None
        try:
            await writer.start_tls(self.ctx, ssl_handshake_timeout=10)
            fingerprint = peer_fingerprint(writer.get_extra_info("ssl_object"))
            hello = await asyncio.wait_for(wire.read_frame(reader), 10)
            welcome = await self.call(self.service.pc_welcome, ip, fingerprint)
            if hello.get("t") != wire.HELLO or welcome is None:
                log.warning("refused link from %s (%s): not a seated PC", ip, fingerprint[:12])
                return
            link = Link(ip, fingerprint, writer)
            old = self.links.pop(ip, None)
            if old is not None:
                old.writer.close()
            self.links[ip] = link
            link.send({"t": wire.WELCOME, "box_time": self.service.now(), **welcome})
            self._link_changed(ip)
            link.last_seen = time.monotonic()  # the wait for the service is not the PC's silence
            while True:
                msg = await wire.read_frame(reader)
                link.last_seen = time.monotonic()
                await self._dispatch(link, msg)
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError, wire.WireError, OSError) as exc:
            log.info("link %s closed: %s", ip, type(exc).__name__)
        finally:
            writer.close()
            if link is not None and self.links.get(ip) is link:
                del self.links[ip]
                for future in link.waiting.values():
                    if not future.done():
                        future.set_exception(ConnectionError("link closed"))
                self._link_changed(ip)

    def _link_changed(self, ip: str) -> None:
        self.changed.add(ip)
        self.link_wake.set()

    async def _record_links(self) -> None:
        """The seats' online state follows the links: whatever came or went while the
        last batch was being recorded is recorded in the next one, in one transaction.
        Level, not edge: each seat gets the state of its link at the time of the batch,
        so a link replaced by a newer one from the same PC can never leave it offline."""
        while True:
            await self.link_wake.wait()
            await self._flush_links()

    async def _flush_links(self) -> None:
        self.link_wake.clear()
        changes = [(ip, ip in self.links) for ip in sorted(self.changed)]
        self.changed.clear()
        if changes:
            try:
                await self.call(self.service.seat_links, changes)
            except Exception:
                log.exception("recording %d link changes failed", len(changes))
                self.changed.update(ip for ip, _ in changes)  # the next change retries them
        if sum(not up for _, up in changes) >= 50:
            _release_memory()

    async def _dispatch(self, link: Link, msg: dict[str, Any]) -> None:
        kind = msg["t"]
        if kind == wire.COMMAND_ACK:
            future = link.waiting.get(msg.get("seq"))  # type: ignore[arg-type]
            if future is not None and not future.done():
                future.set_result(msg)
        elif kind == wire.JOURNAL:
            entries = msg.get("entries")
            if isinstance(entries, list) and entries:
                await self.journal_queue.put((link, entries))
        elif kind == wire.REQUEST:
            asyncio.create_task(self._request(link, msg))  # noqa: RUF006 - ends with its reply

    async def _request(self, link: Link, msg: dict[str, Any]) -> None:
        known = REQUESTS.get(str(msg.get("op")))
        args = msg.get("args") if isinstance(msg.get("args"), dict) else {}
        try:
            if known is None:
                raise Refused("bad_request", "未知的请求", f"unknown request {msg.get('op')!r}")
            method, extra = known
            result = await self.call(
                getattr(self.service, method),
                str(args.get("admission_no", "")),
                link.ip,
                **{name: args.get(name) for name in extra},
            )
            link.send({"t": wire.RESPONSE, "id": msg.get("id"), "ok": True, "result": result})
        except Refused as exc:
            link.send({"t": wire.RESPONSE, "id": msg.get("id"), "ok": False, "error": exc.to_dict()})
        except Exception:  # the PC hears of it at once instead of waiting for its timeout
            log.exception("request %r from %s failed", msg.get("op"), link.ip)
            error = Refused("failed", "监考机处理请求时出错，请稍后重试", "the box failed on this request")
            link.send({"t": wire.RESPONSE, "id": msg.get("id"), "ok": False, "error": error.to_dict()})

    async def _heartbeats(self) -> None:
        every = self.settings.heartbeat_s
        while True:
            await asyncio.sleep(every)
            now = time.monotonic()
            for link in list(self.links.values()):
                if now - link.last_seen > self.settings.offline_after_s:
                    # abort, not close: a TLS close waits for the silent peer up to 30 s
                    link.writer.transport.abort()  # its reader ends and marks the seat offline
                else:
                    link.send({"t": wire.HEARTBEAT, "box_time": self.service.now()})

    async def _group_commit(self) -> None:
        """Every journal frame waiting is committed in one transaction, then acknowledged:
        many acknowledgements per synchronous=FULL commit, none before it."""
        while True:
            batch = [await self.journal_queue.get()]
            entries = len(batch[0][1])
            # Bounded: a whole room reconnecting with a backlog is several commits, not
            # one transaction holding every entry of the room in memory at once.
            while not self.journal_queue.empty() and entries < GROUP_COMMIT_ENTRIES:
                batch.append(self.journal_queue.get_nowait())
                entries += len(batch[-1][1])
            try:
                results = await self.call(self.service.sync_journals, [(link.ip, e) for link, e in batch])
            except Exception:
                log.exception("journal batch of %d frames failed", len(batch))
                continue  # not acknowledged: the PCs send the entries again
            for (link, _), result in zip(batch, results, strict=True):
                link.send({"t": wire.JOURNAL_ACK, **result})


def _scan_reply(msg: dict[str, Any], ip: str) -> ScanReply | None:
    """A reply whose certificate matches the fingerprint it claims, else None."""
    cert, fp = msg.get("cert"), msg.get("fingerprint")
    if not isinstance(cert, str) or not isinstance(fp, str):
        return None
    try:
        if cert_fingerprint(cert.encode()) != fp:
            return None
    except ValueError:
        return None
    return ScanReply(
        ip=ip,
        hostname=str(msg.get("hostname", ""))[:64],
        mac=str(msg.get("mac", ""))[:17],
        os=str(msg.get("os", ""))[:64],
        daemon_version=str(msg.get("version", ""))[:16],
        fingerprint=fp,
    )


def _release_memory() -> None:
    """After many links closed at once: collect their cycles and give freed memory back."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _on_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
