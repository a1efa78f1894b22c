"""The exam-PC daemon (docs/network.md): answers the box's signed seat scan, holds the
pinned TLS link to the box (hello, heartbeats, commands, journal sync, requests), keeps
what must survive a restart in its state folder, serves the answer app's local API
(appapi.py) and restarts the app when it dies while the box wants it running.

Everything runs on one asyncio loop; the journal is written synchronously (FULL) from
the loop, which is what "saved" means to a candidate."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from kiosk.common import wire
from kiosk.common.crypto import client_context, load_or_make_identity, peer_fingerprint, verify_signature
from kiosk.common.errors import Refused
from stu_client.appapi import AppApiServer
from stu_client.bundle import Bundle, BundleError, load_bundle
from stu_client.commands import MAX_TEXT, Applied, CommandFailed, Commands, as_int, as_num
from stu_client.localstore import DaemonState, Journal
from stu_client.platform import (
    PlatformBackend,
    daemon_version,
    default_app_command,
    describe_os,
    local_ipv4s,
    mac_towards,
    system_backend,
)
from stu_client.workfiles import listing_of, snapshot_intact, snapshot_path

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 3.0  # a LAN handshake takes milliseconds; this covers one lost SYN
REQUEST_TIMEOUT_S = 10.0
JACK_TIMEOUT_S = 15.0  # a journal frame not covered by a jack by then is sent again
JOURNAL_BATCH = 50  # entries per frame: the box holds one frame per link in memory at most
BACKOFF_FIRST_S, BACKOFF_CAP_S = 0.5, 2.0  # capped so a PC is back within 3 s of its cable
FILE_CHUNK = 512 * 1024  # bytes of a work file per put_file (the box takes at most this)
FILE_RETRY_S = 2.0  # an upload the box refused for now, or an entry it still waits files for
# put_file refusals after which the PC gives the files up (the entry goes as "unsent"),
# and those after which it tries again; any other concerns the candidate (not writing
# here): the entry goes as it is and the box refuses it.
_FILES_NEVER = {"file_too_large", "work_too_large"}
_FILES_RETRY = {
    "bad_hash", "file_gap", "file_overlap", "write_failed", "failed", "bad_args", "snapshot_short"
}


__all__ = ["BoxRefused", "Bundle", "BundleError", "Daemon", "load_bundle"]


class BoxRefused(Exception):
    """The box's room service refused a request (`res` with ok false)."""

    def __init__(self, code: str, zh: str = "", en: str = "") -> None:
        super().__init__(f"{code}: {en or zh}")
        self.code, self.zh, self.en = code, zh, en


class _LinkError(Exception):
    """The link is not the box's or broke the protocol: drop it and reconnect."""


class _Link:
    """One TLS connection to the box, from handshake to close."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.jack = asyncio.Event()
        self.sent_upto = 0  # highest journal seq sent on this link
        self.missing: int | None = None  # the box's last jack: it waits for this entry's files

    async def send(self, msg: dict[str, Any]) -> None:
        wire.write_frame(self.writer, msg)
        await self.writer.drain()

    async def close(self) -> None:
        self.writer.close()
        try:
            async with asyncio.timeout(1.0):
                await self.writer.wait_closed()
        except (OSError, ssl.SSLError, TimeoutError):
            # A dead peer never answers the TLS close: abort so the transport is freed.
            self.writer.transport.abort()


class _ScanProtocol(asyncio.DatagramProtocol):
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.daemon._on_scan(data, addr)


Listener = Callable[[str, dict[str, Any]], None]


class Daemon:
    """One exam PC's daemon. `start()` / `stop()` on a running loop."""

    def __init__(
        self,
        bundle_dir: Path,
        state_dir: Path,
        *,
        bind_ip: str | None = None,
        hostname: str | None = None,
        platform: PlatformBackend | None = None,
        scan_port: int | None = None,
        control_port: int | None = None,
    ) -> None:
        self.bundle = load_bundle(bundle_dir)
        self.state_dir = Path(state_dir)
        self.bind_ip = bind_ip
        self.hostname = hostname or socket.gethostname()
        self.platform: PlatformBackend = platform or system_backend(
            app_command=default_app_command(self.state_dir), disk_path=self.state_dir
        )
        self.scan_port = scan_port if scan_port is not None else self.bundle.scan_port
        self.control_port = control_port if control_port is not None else self.bundle.control_port
        self.identity = load_or_make_identity(self.state_dir, "pc", self.hostname)
        self.fingerprint = self.identity.fingerprint
        self.state_path = self.state_dir / "state.json"
        self.state = DaemonState.load(self.state_path)
        self.journal = Journal(self.state_dir / "journal.db")
        self.request_timeout = REQUEST_TIMEOUT_S
        self.backoff_first_s, self.backoff_cap_s = BACKOFF_FIRST_S, BACKOFF_CAP_S
        self.journal_poll_s = self.bundle.heartbeat_s

        # What tests and the simulated fleet look at.
        self.online = False
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self.refused: list[dict[str, Any]] = []  # journal entries the box will never apply
        self.clock_offset = 0.0  # box time - local time, from the last welcome / hb
        self.sessions = 0  # links that reached welcome
        self.connect_failures = 0
        self.last_error = ""
        self.scans_answered = 0
        self.scans_ignored = 0
        self.app_restarts = 0  # answer-app processes started again by the supervisor
        self.app_checks = 0  # supervisor rounds, so a test can see one that did nothing
        self.file_bytes_sent = 0  # work-file bytes sent with put_file
        self.file_retry_s = FILE_RETRY_S
        # Awaited after every chunk the box took, with (sha256, bytes it holds): a test
        # pauses an upload there (or drops the link in the middle of one).
        self.after_chunk: Callable[[str, int], Awaitable[None]] | None = None

        self._listeners: list[Listener] = []
        self.commands = Commands(self.state, self.journal, self.platform, self.state_dir)
        self._ssl: ssl.SSLContext | None = None
        self._link: _Link | None = None
        self._link_task: asyncio.Task[None] | None = None
        self._scan_transport: asyncio.DatagramTransport | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_id = 0
        self._stopping = False
        self._hold = False  # go_offline(): no link until go_online()
        self._resume = asyncio.Event()
        self._resume.set()
        self._journal_wake = asyncio.Event()
        self._link_now = asyncio.Event()  # set by the box's signed "link now" datagram
        self._tick = asyncio.Event()  # replaced at every change that waiters may await
        self._started = False
        self.app_api = AppApiServer(self)
        self._supervisor: asyncio.Task[None] | None = None

    # -- life cycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self.journal.open()
        self._started = True
        self._stopping = False
        # The lock is the daemon's, not the app's: re-applied before any link exists.
        self._emit("lock", {"locked": self.state.locked, "notice": self.state.notice})
        self._ssl = client_context(self.identity, self.bundle.box_cert_pem)
        wire.small_tls_buffers()  # a simulated fleet holds hundreds of links in one process
        try:
            await self.app_api.start()
            await self._start_scan()
        except BaseException:
            await self.stop()
            raise
        self._link_task = asyncio.create_task(self._link_loop(), name=f"link {self.hostname}")
        self._supervisor = asyncio.create_task(self._supervise_app(), name=f"app watch {self.hostname}")
        log.info("daemon %s started (fingerprint %s…)", self.hostname, self.fingerprint[:16])

    async def stop(self) -> None:
        self._stopping = True
        self._resume.set()
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:  # first: an app is never started by a daemon going away
            supervisor.cancel()
            await asyncio.gather(supervisor, return_exceptions=True)
        task, self._link_task = self._link_task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # stop() itself was cancelled, not only the link task
        await self.app_api.stop()  # before the journal closes: a push reads acked_upto
        if self._scan_transport is not None:
            self._scan_transport.close()
            self._scan_transport = None
        if self._started:
            self.journal.close()
            self._started = False
        self._notify()

    # -- observing ---------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        """`listener(event, data)` for "lock", "command", "online", "offline", "acked": how the lock
        overlay, the answer app's bridge and the simulated candidates learn of changes."""
        self._listeners.append(listener)

    def _emit(self, event: str, data: dict[str, Any]) -> None:
        for listener in list(self._listeners):
            try:
                listener(event, data)
            except Exception:
                log.exception("listener failed on %s", event)

    def _notify(self) -> None:
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()
        self.app_api.changed()  # every change a waiter may await is one the app may show

    async def wait_until(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Until `predicate()` holds, re-checked at every link, journal or state change."""
        async with asyncio.timeout(timeout):
            while not predicate():
                await self._tick.wait()

    async def wait_online(self, timeout: float = 10.0) -> None:
        """Until the box has welcomed this daemon."""
        await self.wait_until(lambda: self.online, timeout)

    async def wait_offline(self, timeout: float = 10.0) -> None:
        await self.wait_until(lambda: not self.online, timeout)

    async def wait_synced(self, timeout: float = 10.0) -> None:
        """Until the box has acknowledged every journal entry written so far."""
        last = self.journal.last_seq()
        await self.wait_until(lambda: self.journal.acked_upto() >= last, timeout)

    def box_time(self) -> float:
        """The exam clock: local time corrected by the offset measured at the last hb."""
        return time.time() + self.clock_offset

    # -- the app-facing API ---------------------------------------------------------------

    def save_answer(self, admission_no: str, subject: str, question: str, value: Any) -> int:
        """Durable when it returns (FULL commit); the journal seq to await the box's ack."""
        seq, _aseq = self.journal.save_answer(admission_no, subject, question, value)
        self._journal_wake.set()
        self._notify()
        return seq

    def record_event(self, admission_no: str, kind: str, detail: Any = None) -> int:
        seq = self.journal.record_event(admission_no, kind, detail)
        self._journal_wake.set()
        self._notify()
        return seq

    def acked_upto(self) -> int:
        return self.journal.acked_upto()

    def wake_sync(self) -> None:
        """The answer app wrote journal rows itself: send them now, not at the next poll."""
        self._journal_wake.set()

    def acknowledge_lock(self) -> None:
        """我已知晓 on the lock screen: journalled for the box's candidate log, then kept in
        state.json (a second tap records nothing more)."""
        if not self.state.locked:
            raise Refused("not_locked", "本机当前未被锁定", "the PC is not locked")
        if self.state.lock_acknowledged:
            return
        # The event first: a crash in between shows the lock again and records it twice,
        # never an acknowledgement the box does not hear of.
        self.record_event(self.state.admission_no, "lock_acknowledged", {"notice": self.state.notice})
        self.state.lock_acknowledged = True
        self._save_state()

    def acknowledge_message(self, message_id: int | None = None) -> None:
        """The candidate read the officer's message; `message_id`, when given, must be the
        latest (a newer message that came meanwhile is not acknowledged unread)."""
        if not self.state.message:
            raise Refused("no_message", "没有需要确认的消息", "there is no message to acknowledge")
        if message_id is not None and message_id != self.state.message_id:
            raise Refused(
                "stale_message",
                "监考员已发送新的消息，请先阅读",
                f"message {message_id} is not the latest ({self.state.message_id})",
            )
        if self.state.message_acknowledged:
            return
        detail = {"message_id": self.state.message_id}
        self.record_event(self.state.admission_no, "message_acknowledged", detail)
        self.state.message_acknowledged = True
        self._save_state()

    async def request(self, op: str, /, **args: Any) -> dict[str, Any]:
        """Ask the box's room service; BoxRefused when it says no, ConnectionError when
        the box is not reachable or does not answer in time."""
        if op == "submit" and self.online:
            # The box must hold every answer before it records the submission.
            try:
                await self.wait_synced(self.request_timeout)
            except TimeoutError as exc:
                raise ConnectionError("答案尚未同步到监考机 / answers not yet synced to the box") from exc
        link = self._link
        if link is None or not self.online:
            raise ConnectionError("与监考机的连接已断开 / not connected to the proctor box")
        self._next_id += 1
        rid = self._next_id
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        try:
            await link.send({"t": wire.REQUEST, "id": rid, "op": op, "args": args})
            async with asyncio.timeout(self.request_timeout):
                res = await fut
        except TimeoutError as exc:
            raise ConnectionError(f"监考机未应答 / the box did not answer {op!r} in time") from exc
        except OSError as exc:
            raise ConnectionError(f"与监考机的连接已断开 / link lost during {op!r}") from exc
        finally:
            self._pending.pop(rid, None)
        if not res.get("ok"):
            err = res.get("error") if isinstance(res.get("error"), dict) else {}
            raise BoxRefused(str(err.get("code", "refused")), str(err.get("zh", "")), str(err.get("en", "")))
        result = res.get("result") if isinstance(res.get("result"), dict) else {}
        self._after_request(op, args, result)
        return result

    def _after_request(self, op: str, args: dict[str, Any], result: dict[str, Any]) -> None:
        # Auto-login by seat names no one: the box's answer says who logged in.
        admission_no = str(result.get("admission_no") or args.get("admission_no", ""))
        if op == "login" and admission_no:
            answers = result.get("answers")
            if isinstance(answers, list):
                # A resumed candidate's next aseq must continue above the box's.
                self.journal.store_box_answers(admission_no, [a for a in answers if isinstance(a, dict)])
            self.state.admission_no = admission_no
            self.state.logout_reason = ""
            self.state.room_code = str(result.get("room_code") or "")
            self.state.package_key = str(result.get("package_key") or "")
            if isinstance(result.get("session"), int):
                self.state.session = result["session"]
            start, deadline = as_num(result.get("start")), as_num(result.get("deadline"))
            if start is not None:
                self.state.exam_start = start
            if deadline is not None:
                self.state.deadline, self.state.deadline_for = deadline, admission_no
            self._save_state()
        elif op == "raise_hand":
            self.state.hand_raised = True
            self._save_state()

    # -- seat scan ----------------------------------------------------------------------

    async def _start_scan(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            # Every daemon on this host (the simulated fleet: all in one process) must get
            # the broadcast, so the port is shared.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if hasattr(socket, "SO_REUSEPORT"):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(("0.0.0.0", self.scan_port))
            sock.setblocking(False)
            transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: _ScanProtocol(self), sock=sock
            )
        except BaseException:
            sock.close()
            raise
        self._scan_transport = transport

    def _verify_box(self, raw: bytes, sig: bytes) -> bool:
        try:
            return verify_signature(self.bundle.box_cert_pem, raw, sig)
        except ValueError:
            return False

    def _on_scan(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            msg = wire.open_datagram(data, self._verify_box)
            if msg["t"] == wire.LINK_NOW:  # the box seated PCs: link now if not linked
                self._link_now.set()
                return
            nonce = msg.get("nonce")
            if msg["t"] != wire.SCAN or not isinstance(nonce, str) or len(nonce) > 64:
                raise wire.WireError("not a scan")
        except wire.WireError as exc:
            self.scans_ignored += 1
            log.debug("ignored datagram from %s: %s", addr, exc)
            return
        reply = wire.plain_datagram(
            {
                "t": wire.SCAN_REPLY,
                "nonce": nonce,
                "hostname": self.hostname,
                "ips": [self.bind_ip] if self.bind_ip else local_ipv4s(),
                "mac": self.mac(),
                "os": describe_os(),
                "version": daemon_version(),
                "fingerprint": self.fingerprint,
                "cert": self.identity.cert_pem.decode(),
            }
        )
        # From the daemon's own address: the box takes the source address as the seat IP.
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
                out.bind((self.bind_ip or "0.0.0.0", 0))
                out.sendto(reply, addr)
        except OSError as exc:
            log.warning("scan reply to %s failed: %s", addr, exc)
            return
        self.scans_answered += 1
        self._notify()

    def mac(self) -> str:
        if self.bind_ip:
            # A simulated PC has no interface of its own: a stable, locally administered
            # address derived from its key.
            return "02:" + ":".join(self.fingerprint[i : i + 2] for i in range(0, 10, 2))
        return mac_towards(self.bundle.box_addr)

    # -- the link -----------------------------------------------------------------------

    def go_offline(self) -> None:
        """Drop the link and stay away until go_online() (a cable pulled)."""
        self._hold = True
        self._resume.clear()
        if self._link is not None:
            self._link.writer.transport.abort()

    def go_online(self) -> None:
        self._hold = False
        self._resume.set()

    async def _link_loop(self) -> None:
        failures = 0
        while not self._stopping:
            await self._resume.wait()
            if self._stopping:
                break
            welcomed_before = self.sessions
            started = time.monotonic()
            self._link_now.clear()
            try:
                await self._session()
            except (OSError, ssl.SSLError, asyncio.IncompleteReadError, wire.WireError, _LinkError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                # Once per outage at info: retries run forever and a room has 150 PCs.
                log.log(
                    logging.DEBUG if failures else logging.INFO,
                    "%s: link to the box lost or refused: %s",
                    self.hostname,
                    self.last_error,
                )
            except TimeoutError:
                self.last_error = "timeout"
                log.log(logging.DEBUG if failures else logging.INFO, "%s: the box is silent", self.hostname)
            except Exception as exc:  # the daemon outlives any bug in one session
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("%s: link session failed", self.hostname)
            if self.sessions > welcomed_before:
                failures = 0
            else:
                self.connect_failures += 1
                failures += 1
            self._notify()
            if self._stopping or self._hold:
                continue
            # The delay counts from the attempt's start: an attempt that hung until its
            # timeout (a pulled cable: SYNs unanswered) has waited already.
            # A "link now" from the box (it has just seated PCs) ends the wait early.
            delay = min(self.backoff_first_s * 2 ** max(failures - 1, 0), self.backoff_cap_s)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, delay - (time.monotonic() - started))):
                    await self._link_now.wait()

    async def _session(self) -> None:
        bundle = self.bundle
        # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation that
        # races with completion, and stop() must always end the link task.
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            reader, writer = await asyncio.open_connection(
                bundle.box_addr,
                self.control_port,
                ssl=self._ssl,
                server_hostname="",
                local_addr=(self.bind_ip, 0) if self.bind_ip else None,
                ssl_handshake_timeout=CONNECT_TIMEOUT_S,
            )
        link = _Link(writer)
        self._link = link
        tasks: list[asyncio.Task[None]] = []
        try:
            # The context already trusts only box.crt; the fingerprint check also refuses a
            # certificate that box.crt might have signed.
            ssl_object = writer.get_extra_info("ssl_object")
            if ssl_object is None or peer_fingerprint(ssl_object) != bundle.box_fingerprint:
                raise _LinkError("the peer is not the pinned box certificate")
            if self._hold:
                return
            sent_at = time.time()
            await link.send(
                {
                    "t": wire.HELLO,
                    "fingerprint": self.fingerprint,
                    "hostname": self.hostname,
                    "version": daemon_version(),
                    "last_cmd_seq": self.state.last_cmd_seq,
                    "pc_time": sent_at,
                    "locked": self.state.locked,
                    "app_running": self.state.app_running,
                    "admission_no": self.state.admission_no,
                }
            )
            dead_after = max(3.0, 3 * bundle.heartbeat_s)
            async with asyncio.timeout(dead_after):
                msg = await wire.read_frame(reader)
            if msg["t"] != wire.WELCOME:
                raise _LinkError(f"expected welcome, got {msg['t']!r}")
            self._on_welcome(msg, sent_at)
            self.online = True
            self.sessions += 1
            self._emit("online", {})
            self._notify()
            tasks = [
                asyncio.create_task(self._heartbeat_loop(link), name=f"hb {self.hostname}"),
                asyncio.create_task(self._sync_loop(link), name=f"sync {self.hostname}"),
            ]
            while True:
                async with asyncio.timeout(dead_after):
                    msg = await wire.read_frame(reader)
                await self._dispatch(link, msg)
                for t in tasks:
                    if t.done():  # a writer failed: the link is broken
                        t.result()
                        raise _LinkError("a link task ended")
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            was_online, self.online, self._link = self.online, False, None
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("与监考机的连接已断开 / link to the box lost"))
            await link.close()
            if was_online:
                self._emit("offline", {})
            self._notify()

    async def _heartbeat_loop(self, link: _Link) -> None:
        while True:
            await asyncio.sleep(self.bundle.heartbeat_s)
            await link.send({"t": wire.HEARTBEAT, "pc_time": time.time()})

    async def _sync_loop(self, link: _Link) -> None:
        """Unacknowledged entries in seq order, one frame in flight, from the first unacked
        one again on every new link. A frame ends with the first answer that lists work
        files, and those files are on the box before the frame is sent (put_file)."""
        while True:
            self._journal_wake.clear()
            entries = self.journal.unacked(JOURNAL_BATCH)
            if not entries:
                # Woken by save_answer or the app's wake; the poll finds rows another
                # process wrote without a wake (the app while this daemon was down).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.journal_poll_s):
                        await self._journal_wake.wait()
                continue
            try:
                entries = await self._with_files(entries)
            except BoxRefused as exc:
                log.warning("%s: the box refused a work file for now (%s); again shortly", self.hostname, exc)
                await asyncio.sleep(self.file_retry_s)
                continue
            last = entries[-1]["seq"]
            link.sent_upto = max(link.sent_upto, last)
            link.jack.clear()
            link.missing = None
            await link.send({"t": wire.JOURNAL, "entries": entries})
            # Until every entry of the frame is acknowledged (a jack may cover only part
            # of it) or gone (init); after JACK_TIMEOUT_S the rest is sent again. A jack
            # naming an entry whose files the box lacks ends the wait: upload, send again.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(JACK_TIMEOUT_S):
                    while self.journal.acked_upto() < last and link.missing is None:
                        await link.jack.wait()
                        link.jack.clear()
            if link.missing is not None:
                log.warning("%s: the box lacks the files of entry %d; again", self.hostname, link.missing)
                await asyncio.sleep(self.file_retry_s)

    async def _with_files(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The frame to send: up to the first answer that lists work files, whose files
        the box then holds. Files this PC cannot send (a snapshot gone or damaged, too
        large for the box) or need not send (a later entry answers the same question)
        mark the entry `unsent`: the box refuses it, and the journal goes on."""
        for i, e in enumerate(entries):
            payload = e.get("payload")
            if e.get("kind") != "answer" or not isinstance(payload, dict):
                continue
            try:
                listing = listing_of(payload.get("value"))
            except ValueError:
                continue  # the box refuses it as it is
            if listing is None:
                continue
            entries = entries[: i + 1]
            reason = "superseded" if self._superseded(e) else await self._send_files(e, listing)
            if reason:
                entries[i] = {**e, "unsent": reason}
            break
        return entries

    def _superseded(self, e: dict[str, Any]) -> bool:
        """A later entry of the journal answers the same question: its files count."""
        def question(x: dict[str, Any]) -> tuple[Any, ...] | None:
            if x["kind"] != "answer" or not isinstance(x["payload"], dict):
                return None
            return (x["admission_no"], x["payload"].get("subject"), x["payload"].get("question"))

        return any(question(x) == question(e) for x in self.journal.unacked(10_000, after=e["seq"]))

    async def _send_files(self, e: dict[str, Any], listing: list[dict[str, Any]]) -> str:
        """Every listed file onto the box; "" when done (or when the box will refuse the
        entry for its candidate anyway), else why they cannot go."""
        no, sent = str(e["admission_no"]), set()
        for f in listing:
            sha256, size = f["sha256"], f["size"]
            if sha256 in sent:
                continue
            if not await asyncio.to_thread(snapshot_intact, self.state_dir, sha256, size):
                log.error("%s: the snapshot of work file %s is gone or damaged", self.hostname, f["name"])
                return "snapshot_lost"
            try:
                await self._put_file(no, sha256, size)
            except BoxRefused as exc:
                if exc.code in _FILES_NEVER:
                    log.error("%s: the box will not take work file %s: %s", self.hostname, f["name"], exc)
                    return exc.code
                if exc.code in _FILES_RETRY:
                    raise
                return ""  # not this candidate's PC, not writing: the box refuses the entry
            sent.add(sha256)
        return ""

    async def _put_file(self, admission_no: str, sha256: str, size: int) -> None:
        """Upload one snapshot from where the box's copy ends (an upload cut off resumes)."""
        args = {"admission_no": admission_no, "sha256": sha256, "size": size}
        have = _have(await self.request("put_file", **args, offset=0, data=""), size)
        if have >= size:
            return
        with snapshot_path(self.state_dir, sha256).open("rb") as f:
            while have < size:
                f.seek(have)
                chunk = f.read(min(FILE_CHUNK, size - have))
                if not chunk:
                    raise BoxRefused("snapshot_short", en=f"snapshot {sha256} ends at {have}")
                data = base64.b64encode(chunk).decode()
                took = _have(await self.request("put_file", **args, offset=have, data=data), size)
                if took <= have:
                    raise BoxRefused("failed", en=f"the box took nothing at {have} of {sha256}")
                self.file_bytes_sent += len(chunk)
                have = took
                if self.after_chunk is not None:
                    await self.after_chunk(sha256, have)

    # -- frames from the box --------------------------------------------------------------

    async def _dispatch(self, link: _Link, msg: dict[str, Any]) -> None:
        t = msg["t"]
        if t == wire.HEARTBEAT:
            box_time = as_num(msg.get("box_time"))
            if box_time is not None:
                self.clock_offset = box_time - time.time()
                self._notify()
        elif t == wire.COMMAND:
            await self._on_command(link, msg)
        elif t == wire.JOURNAL_ACK:
            self._on_jack(link, msg)
        elif t == wire.RESPONSE:
            rid = as_int(msg.get("id"))
            fut = self._pending.get(rid) if rid is not None else None
            if fut is not None and not fut.done():
                fut.set_result(msg)
        elif t == wire.WELCOME:
            self._on_welcome(msg, None)
        else:
            log.debug("ignored frame %r from the box", t)

    def _on_welcome(self, msg: dict[str, Any], sent_at: float | None) -> None:
        now = time.time()
        box_time = as_num(msg.get("box_time"))
        if box_time is not None:
            # The welcome answers the hello: the box read its clock half a round trip ago.
            self.clock_offset = box_time - ((sent_at + now) / 2 if sent_at is not None else now)
        seat = msg.get("seat")
        if isinstance(seat, str | int) and not isinstance(seat, bool):
            self.state.seat = str(seat)
        # Not in the doc's table but sent by the box: who is logged in at this seat. The
        # box is the authority (a candidate resumed elsewhere, a logout missed offline).
        if isinstance(msg.get("admission_no"), str) and msg["admission_no"] != self.state.admission_no:
            self.state.admission_no = msg["admission_no"]
        # The box's view of the lock wins over what this PC remembered.
        locked, notice = bool(msg.get("locked")), str(msg.get("notice") or "")[:MAX_TEXT]
        changed = (locked, notice) != (self.state.locked, self.state.notice)
        if locked and changed:
            # A lock missed while offline, or another notice: not confirmed yet. The same
            # lock again keeps the confirmation; after an unlock the flag means nothing.
            self.state.lock_acknowledged = False
        self.state.locked, self.state.notice = locked, notice
        self._save_state()
        if changed:
            self._emit("lock", {"locked": locked, "notice": notice})

    def _on_jack(self, link: _Link, msg: dict[str, Any]) -> None:
        upto = as_int(msg.get("upto"))
        if upto is None:
            log.warning("jack without upto: %r", msg)
            return
        # Never mark more than this link carried: an entry is acknowledged only for
        # what the box has seen.
        upto = min(upto, link.sent_upto)
        refused = msg.get("refused")
        if isinstance(refused, list):
            self.refused.extend(r for r in refused if isinstance(r, dict))
        # The box stopped at an entry whose files it does not hold (yet): nothing from it on applied.
        link.missing = as_int(msg.get("missing"))
        self.journal.mark_acked(upto)
        link.jack.set()
        self._emit("acked", {"upto": upto})
        self._notify()

    async def _on_command(self, link: _Link, msg: dict[str, Any]) -> None:
        seq, cmd, args = as_int(msg.get("seq")), msg.get("cmd"), msg.get("args") or {}
        if seq is None or not isinstance(cmd, str) or not isinstance(args, dict):
            log.warning("malformed command from the box: %r", msg)
            return
        if seq <= self.state.last_cmd_seq:
            log.warning("command %s seq %d replayed (last %d)", cmd, seq, self.state.last_cmd_seq)
            await link.send({"t": wire.COMMAND_ACK, "seq": seq, "ok": False, "error": "replayed"})
            return
        ack: dict[str, Any] = {"t": wire.COMMAND_ACK, "seq": seq}
        lock_before = (self.state.locked, self.state.notice)
        applied: Applied | None = None
        try:
            applied = await self.commands.apply(cmd, args)
            ack.update(ok=True, result=applied.result)
            self.seen.append((cmd, dict(args)))
        except CommandFailed as exc:
            ack.update(ok=False, error=str(exc))
        except Exception as exc:
            log.exception("command %s failed", cmd)
            ack.update(ok=False, error=f"failed: {exc}")
        # The seq and the command's effects are on disk before the box hears "done".
        self.state.last_cmd_seq = seq
        self._save_state()
        if cmd == "init" and ack["ok"]:
            self.refused.clear()
            link.jack.set()  # the journal frame in flight is gone: stop waiting for its jack
        if (self.state.locked, self.state.notice) != lock_before:
            self._emit("lock", {"locked": self.state.locked, "notice": self.state.notice})
        if ack["ok"]:
            self._emit("command", {"cmd": cmd, "args": dict(args)})
        self._notify()
        await link.send(ack)
        if applied is not None and applied.after_ack is not None:
            applied.after_ack()

    def _save_state(self) -> None:
        self.state.save(self.state_path)
        self._notify()  # a login's bookkeeping, say, is shown to the app as it is saved

    # -- the answer app -----------------------------------------------------------------

    async def _supervise_app(self) -> None:
        """Every heartbeat: while the box wants the answer app running (start_client, not
        closed since, remembered across restarts) and it is not, start it again."""
        failing = False
        while True:
            self.app_checks += 1
            if self.state.app_running and not self.platform.app_alive():
                try:
                    self.platform.start_app()
                except OSError as exc:
                    log.debug("%s: starting the answer app failed: %s", self.hostname, exc)
                if self.platform.app_alive():
                    failing = False
                    self.app_restarts += 1
                    log.warning(
                        "%s: the answer app was not running; started it again (%d so far)",
                        self.hostname,
                        self.app_restarts,
                    )
                elif not failing:  # once per outage: it is retried every heartbeat
                    failing = True
                    log.error("%s: the answer app is not running and cannot be started", self.hostname)
            self._notify()
            await asyncio.sleep(self.bundle.heartbeat_s)


def _have(result: dict[str, Any], size: int) -> int:
    """The box's answer to put_file: how many bytes of the file it holds."""
    have = as_int(result.get("have"))
    if have is None or not 0 <= have <= size:
        raise BoxRefused("failed", en=f"put_file answered {result!r:.80}")
    return have
