"""The daemon's local API for the answer app (docs/network.md, "The answer app's local
API"): the server the daemon runs on 127.0.0.1 and `AppLink`, the app's client.

The app writes answers and client events straight into the daemon's journal file, so
saving never depends on this API; everything else (the state to show, requests to the
box, acknowledgements, export) goes through it. One TCP connection per app, framed with
`kiosk.common.wire`; the first frame carries the token the daemon wrote at start into
`<state>/app-api.json` (0600), so only a process that can read the state folder talks
to the daemon."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from kiosk.common import wire
from kiosk.common.errors import Refused
from kiosk.common.fsutil import write_atomic

if TYPE_CHECKING:
    from stu_client.daemon import Daemon

log = logging.getLogger(__name__)

API_FILE = "app-api.json"
HOST = "127.0.0.1"  # TCP on loopback, not a Unix socket: the exam PCs run Windows too
MAX_CLIENTS = 4  # the app, a restarted app whose old connection is not closed yet, a tool
MAX_APP_FRAME = 1024 * 1024  # what the daemon reads from an app; answers do not pass here
HELLO_TIMEOUT_S = 5.0
PUSH_INTERVAL_S = 0.05  # at most one state push per 50 ms: changes in between are coalesced
# Heartbeats move the measured box offset by a few milliseconds every second; the app's
# clock needs no better than this, so smaller moves alone are not pushed.
OFFSET_SLACK_S = 0.1
MAX_WRITE_BUFFER = 1024 * 1024  # an app that stops reading is dropped, not buffered for
MAX_IN_FLIGHT = 16  # requests of one app not answered yet; more are answered "busy" at once
REFUSAL_LOG_S = 60.0  # refused connections are logged at WARNING once a minute per reason
REQUEST_TIMEOUT_S = 12.0  # above the daemon's own 10 s to the box, so its answer comes first
SUBMIT_TIMEOUT_S = 22.0  # the daemon first waits up to 10 s for the journal to reach the box
CONNECT_TIMEOUT_S = 2.0
RECONNECT_FIRST_S, RECONNECT_CAP_S = 0.1, 1.0

# The snapshot pushed as {"t": "state", "state": {...}}, in this order.
STATE_FIELDS = (
    "online",
    "box_offset",
    "seat",
    "seat_shown",
    "locked",
    "notice",
    "lock_acknowledged",
    "message",
    "message_id",
    "message_acknowledged",
    "login_allowed",
    "session",
    "exam_start",
    "deadline",
    "deadline_for",
    "admission_no",
    "logout_reason",
    "collect_requested",
    "auto_login",
    "auto_answer",
    "hand_raised",
    "acked_upto",
    "app_running",
)

# The client events the app may ask the daemon to journal: the box's CLIENT_EVENTS
# (kiosk/services/candidates.py) less the two acknowledgements, which have their own ops
# (they change the daemon's state too). A test keeps the two lists in step.
APP_EVENTS = frozenset(
    {"client_started", "client_seat", "login_confirmed", "agreement", "paper_drawn", "rules_read"}
)
BOX_OPS = ("login", "begin", "submit", "raise_hand")
MAX_ADMISSION_NO = 64
MAX_PATH = 4096
MAX_DETAIL_KEYS, MAX_DETAIL_TEXT = 20, 1000

OFFLINE_ZH = "与监考机的连接已断开，请稍候或举手示意监考员"
DAEMON_DOWN_ZH = "考试机守护进程未运行，答案仍保存在本机"


class AppApiError(Exception):
    """A request the daemon (or the box through it) refused, or could not carry."""

    def __init__(self, code: str, zh: str = "", en: str = "") -> None:
        super().__init__(f"{code}: {en or zh}")
        self.code, self.zh, self.en = code, zh, en

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "zh": self.zh, "en": self.en}


BUSY = AppApiError("busy", "考试机守护进程忙，请稍候重试", "too many requests in flight")


def _bad_args(en: str) -> AppApiError:
    return AppApiError("bad_args", "请求参数错误", en)


# -- the token file ------------------------------------------------------------------


@dataclass(frozen=True)
class ApiInfo:
    port: int
    token: str
    pid: int


def api_file(state_dir: str | Path) -> Path:
    return Path(state_dir) / API_FILE


def read_api_file(state_dir: str | Path) -> ApiInfo:
    """The running daemon's port and token; ValueError when the file is missing or not one
    the daemon wrote."""
    try:
        raw = json.loads(api_file(state_dir).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"no {API_FILE}: {exc}") from exc
    except ValueError as exc:
        raise ValueError(f"{API_FILE} is not JSON") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"{API_FILE} is not the daemon's")
    port, token, pid = raw.get("port"), raw.get("token"), raw.get("pid")
    if not (type(port) is int and 0 < port < 65536 and isinstance(token, str) and type(pid) is int):
        raise ValueError(f"{API_FILE} is not the daemon's")
    return ApiInfo(port, token, pid)


# -- the server (in the daemon) --------------------------------------------------------


def snapshot(daemon: Daemon) -> dict[str, Any]:
    """What the app shows: the daemon's state as plain JSON data (STATE_FIELDS)."""
    s = daemon.state
    return {
        "online": daemon.online,
        "box_offset": daemon.clock_offset,
        "seat": s.seat,
        "seat_shown": s.seat_shown,
        "locked": s.locked,
        "notice": s.notice,
        "lock_acknowledged": s.lock_acknowledged,
        "message": s.message,
        "message_id": s.message_id,
        "message_acknowledged": s.message_acknowledged,
        "login_allowed": s.login_allowed,
        "session": s.session,
        "exam_start": s.exam_start,
        "deadline": s.deadline,
        "deadline_for": s.deadline_for,
        "admission_no": s.admission_no,
        "logout_reason": s.logout_reason,
        "collect_requested": s.collect_requested,
        "auto_login": s.auto_login,
        "auto_answer": s.auto_answer,
        "hand_raised": s.hand_raised,
        "acked_upto": daemon.acked_upto(),
        "app_running": s.app_running,
    }


def _worth_pushing(before: dict[str, Any] | None, now: dict[str, Any]) -> bool:
    if before is None:
        return True
    if abs(float(now["box_offset"]) - float(before["box_offset"])) > OFFSET_SLACK_S:
        return True
    return any(before[k] != now[k] for k in STATE_FIELDS if k != "box_offset")


class _Conn:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.peer = writer.get_extra_info("peername")
        self.ready = False  # after a good hello
        self.in_flight = 0  # requests not answered yet
        self.last: dict[str, Any] | None = None  # the snapshot last pushed

    def send(self, msg: dict[str, Any]) -> None:
        if self.writer.is_closing():
            return
        if self.writer.transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            log.warning("app connection %s does not read its frames: dropped", self.peer)
            self.writer.transport.abort()
            return
        wire.write_frame(self.writer, msg)


class AppApiServer:
    """The daemon's side: listens on 127.0.0.1, checks the token, pushes the state and
    answers requests. `changed()` is the daemon's hook at every change."""

    def __init__(self, daemon: Daemon, max_clients: int = MAX_CLIENTS) -> None:
        self.daemon = daemon
        self.max_clients = max_clients
        self.port = 0
        self.token = ""
        self.refusals = 0  # connections closed for a bad hello, a bad frame or the limit
        self.pushes = 0
        self._server: asyncio.Server | None = None
        self._conns: set[_Conn] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._requests: set[asyncio.Task[None]] = set()
        self._dirty = asyncio.Event()
        self._pusher: asyncio.Task[None] | None = None
        self._logged: dict[str, float] = {}

    @property
    def path(self) -> Path:
        return api_file(self.daemon.state_dir)

    async def start(self) -> None:
        self.token = secrets.token_hex(32)  # new at every start: an old app must re-read the file
        self._server = await asyncio.start_server(self._serve, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        body = {"port": self.port, "token": self.token, "pid": os.getpid()}
        # Not fsynced: after a power cut the daemon starts again and writes a new one.
        write_atomic(self.path, json.dumps(body).encode(), sync=False, mode=0o600)
        self._pusher = asyncio.create_task(self._push_loop(), name=f"app push {self.daemon.hostname}")
        log.info("answer-app API on %s:%d", HOST, self.port)

    async def stop(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        tasks = [*self._handlers, *self._requests, *([self._pusher] if self._pusher else [])]
        self._pusher = None
        for conn in list(self._conns):
            conn.writer.transport.abort()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()
        with contextlib.suppress(ValueError, OSError):
            if read_api_file(self.daemon.state_dir).token == self.token:  # not a newer daemon's
                self.path.unlink()

    @property
    def clients(self) -> int:
        return sum(1 for c in self._conns if c.ready)

    def changed(self) -> None:
        """Something the snapshot shows may have changed: pushed soon, coalesced."""
        if self._server is not None and any(c.ready for c in self._conns):
            self._dirty.set()

    async def _push_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            ready = [c for c in self._conns if c.ready]
            if ready:
                state = snapshot(self.daemon)
                for conn in ready:
                    self._push_to(conn, state)
            await asyncio.sleep(PUSH_INTERVAL_S)

    def _push_to(self, conn: _Conn, state: dict[str, Any] | None = None) -> None:
        state = state if state is not None else snapshot(self.daemon)
        if _worth_pushing(conn.last, state):
            conn.last = state
            conn.send({"t": "state", "state": state})
            self.pushes += 1

    def _refuse(self, conn: _Conn, reason: str, detail: str = "") -> None:
        # One line per refused connection; a process retrying in a loop is at WARNING
        # once a minute per reason (a fixed text: the detail may be the peer's) and at
        # DEBUG otherwise.
        self.refusals += 1
        now = time.monotonic()
        level = logging.DEBUG
        if now - self._logged.get(reason, -REFUSAL_LOG_S) >= REFUSAL_LOG_S:
            self._logged[reason], level = now, logging.WARNING
        log.log(level, "refused answer-app connection from %s: %s %s", conn.peer, reason, detail[:80])
        conn.writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        conn = _Conn(writer)
        if len(self._conns) >= self.max_clients:
            self._refuse(conn, "too many connections", str(len(self._conns)))
            return
        self._conns.add(conn)
        try:
            try:
                async with asyncio.timeout(HELLO_TIMEOUT_S):
                    hello = await wire.read_frame(reader, MAX_APP_FRAME)
            except TimeoutError:
                self._refuse(conn, "no hello in time")
                return
            if not (hello["t"] == "app_hello" and self._token_ok(hello.get("token"))):
                self._refuse(conn, "wrong or missing token")
                return
            conn.ready = True
            self._push_to(conn)
            log.info("answer app connected from %s", conn.peer)
            while True:
                msg = await wire.read_frame(reader, MAX_APP_FRAME)
                rid, op, args = msg.get("id"), msg.get("op"), msg.get("args", {})
                if msg["t"] != "req" or type(rid) is not int or not isinstance(op, str):
                    self._refuse(conn, "malformed frame", repr(msg["t"]))
                    return
                if not isinstance(args, dict):
                    self._refuse(conn, "malformed request", "args is not an object")
                    return
                if conn.in_flight >= MAX_IN_FLIGHT:
                    conn.send({"t": "res", "id": rid, "ok": False, "error": BUSY.to_dict()})
                    continue
                # Each request on its own: a login waiting for the box does not hold up
                # an acknowledgement. It runs to its end even if the app goes away, so the
                # daemon's bookkeeping of a login the box did is never lost half-way.
                conn.in_flight += 1
                req = asyncio.create_task(self._answer(conn, rid, op, args), name=f"app req {op[:40]}")
                self._requests.add(req)
                req.add_done_callback(self._requests.discard)
        except wire.WireError as exc:
            self._refuse(conn, "malformed frame", str(exc))
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
            # A port scan or a test of the port is not news; an app going away is.
            log.log(
                logging.INFO if conn.ready else logging.DEBUG,
                "answer app %s disconnected (%s)",
                conn.peer,
                type(exc).__name__,
            )
        finally:
            self._conns.discard(conn)
            writer.transport.abort()

    def _token_ok(self, token: Any) -> bool:
        if not isinstance(token, str):
            return False
        # surrogatepass: JSON may carry a lone surrogate, which must fail, not raise.
        return hmac.compare_digest(token.encode("utf-8", "surrogatepass"), self.token.encode())

    async def _answer(self, conn: _Conn, rid: int, op: str, args: dict[str, Any]) -> None:
        try:
            result = await self.handle(op, args)
            res: dict[str, Any] = {"t": "res", "id": rid, "ok": True, "result": result}
            # The state that reflects the request reaches the app before its answer.
            self._push_to(conn)
        except AppApiError as exc:
            res = {"t": "res", "id": rid, "ok": False, "error": exc.to_dict()}
        except Exception as exc:  # a bug: the app gets an answer, the daemon goes on
            log.exception("answer-app request %s failed", op)
            err = AppApiError(
                "internal", "考试机守护进程内部错误，请举手示意监考员", f"{type(exc).__name__}: {exc}"
            )
            res = {"t": "res", "id": rid, "ok": False, "error": err.to_dict()}
        finally:
            conn.in_flight -= 1
        try:
            conn.send(res)
        except wire.WireError as exc:  # larger than a frame may be: the app hears why
            log.error("answer to %s not sent: %s", op, exc)
            err = AppApiError("too_large", "数据过大，无法传给考生端", str(exc))
            conn.send({"t": "res", "id": rid, "ok": False, "error": err.to_dict()})

    # -- the operations ------------------------------------------------------------------

    async def handle(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        """One request's result; AppApiError when it is refused."""
        d = self.daemon
        if op in BOX_OPS:
            return await self._to_box(op, args)
        if op == "wake":
            _check(args, {})
            d.wake_sync()
            return {}
        if op == "ack_lock":
            _check(args, {})
            _local(d.acknowledge_lock)
            return {"lock_acknowledged": True}
        if op == "ack_message":
            message_id = _check(args, {}, {"message_id": int}).get("message_id")
            _local(lambda: d.acknowledge_message(message_id))
            return {"message_acknowledged": True, "message_id": d.state.message_id}
        if op == "event":
            a = _check(args, {"kind": str}, {"detail": dict})
            if a["kind"] not in APP_EVENTS:
                raise AppApiError("bad_event", "未知的考生端事件", f"unknown client event {a['kind']!r}")
            detail = _detail(a.get("detail") or {})
            return {"seq": d.record_event(d.state.admission_no, a["kind"], detail)}
        if op == "export":
            to = _check(args, {"to": str})["to"]
            if not to or len(to) > MAX_PATH:
                raise _bad_args("to: a folder")
            from stu_client.export import export_answer_package

            try:
                # Signing and the read-back of a stick take a while: off the loop.
                path = await asyncio.to_thread(export_answer_package, d.state_dir, Path(to))
            except Refused as exc:
                raise AppApiError(exc.code, exc.zh, exc.en) from exc
            return {"path": str(path)}
        raise AppApiError("unknown_op", "未知的请求", f"unknown op {op!r}")

    async def _to_box(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        from stu_client.daemon import BoxRefused  # the daemon imports this module first

        d = self.daemon
        a = _check(args, {"admission_no": str} if op == "login" else {}, {"admission_no": str})
        # "" logs in by seat (mock exams); the other requests default to who is logged in.
        admission_no = a.get("admission_no", d.state.admission_no)
        if len(admission_no) > MAX_ADMISSION_NO:
            raise _bad_args("admission_no: too long")
        try:
            return await d.request(op, admission_no=admission_no)
        except BoxRefused as exc:
            raise AppApiError(exc.code, exc.zh, exc.en) from exc
        except ConnectionError as exc:
            raise AppApiError("offline", OFFLINE_ZH, str(exc)) from exc


def _check(
    args: dict[str, Any], required: dict[str, type], optional: dict[str, type] | None = None
) -> dict[str, Any]:
    """The args of one op, each of its type (bool is not an int), and no others."""
    optional = optional or {}
    for key, value in args.items():
        want = required.get(key) or optional.get(key)
        if want is None:
            raise _bad_args(f"unexpected argument {key!r}")
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise _bad_args(f"{key}: expected {want.__name__}")
    missing = [k for k in required if k not in args]
    if missing:
        raise _bad_args(f"missing {', '.join(missing)}")
    return args


def _detail(detail: dict[str, Any]) -> dict[str, Any]:
    """A client event's detail as the box keeps it: a few short scalar fields."""
    if len(detail) > MAX_DETAIL_KEYS:
        raise _bad_args("detail: too many fields")
    for key, value in detail.items():
        scalar = value is None or isinstance(value, str | int | float | bool)
        if len(key) > 100 or not scalar or (isinstance(value, str) and len(value) > MAX_DETAIL_TEXT):
            raise _bad_args(f"detail.{key[:100]}: a short string or number")
    return detail


def _local(fn: Callable[[], Any]) -> None:
    try:
        fn()
    except Refused as exc:
        raise AppApiError(exc.code, exc.zh, exc.en) from exc


# -- the client (in the answer app) -----------------------------------------------------


StateCallback = Callable[[dict[str, Any]], None]


class AppLink:
    """The answer app's link to its daemon, on the app's asyncio loop.

    `start()` keeps a connection open for ever: it re-reads `app-api.json` before each
    attempt (a restarted daemon has a new port and token) and retries within a second.
    `.state` is the last snapshot pushed (STATE_FIELDS), `{}` while not connected.
    `on_state(snapshot)` is called after every push and once with `{}` when the
    connection is lost: `.connected` tells the two apart (it is False for `{}`).
    `request(op, **args)` returns the result dict or raises AppApiError (`daemon_down`
    when not connected, `timeout` when no answer comes in time)."""

    def __init__(self, state_dir: str | Path, on_state: StateCallback | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.on_state = on_state
        self.connected = False
        self.state: dict[str, Any] = {}
        self.connections = 0  # sessions that got their first state, for tests and logs
        self.request_timeout = REQUEST_TIMEOUT_S
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_id = 0
        self._task: asyncio.Task[None] | None = None
        self._tick = asyncio.Event()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="app link")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def request(self, op: str, /, **args: Any) -> dict[str, Any]:
        writer = self._writer
        if writer is None or not self.connected:
            raise AppApiError("daemon_down", DAEMON_DOWN_ZH, "not connected to the exam-PC daemon")
        self._next_id += 1
        rid = self._next_id
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        timeout = SUBMIT_TIMEOUT_S if op == "submit" else self.request_timeout
        try:
            wire.write_frame(writer, {"t": "req", "id": rid, "op": op, "args": args})
            async with asyncio.timeout(timeout):
                res = await fut
        except TimeoutError as exc:
            raise AppApiError(
                "timeout", "考试机守护进程未及时应答，请稍候重试", f"no answer to {op!r} in {timeout:.0f} s"
            ) from exc
        finally:
            self._pending.pop(rid, None)
        if res.get("ok") is True:
            result = res.get("result")
            return result if isinstance(result, dict) else {}
        err = res.get("error") if isinstance(res.get("error"), dict) else {}
        raise AppApiError(str(err.get("code", "refused")), str(err.get("zh", "")), str(err.get("en", "")))

    async def wait_state(self, predicate: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
        """Until `predicate(self.state)` holds (re-checked at every push and connection
        change); the state then. TimeoutError after `timeout` seconds."""
        async with asyncio.timeout(timeout):
            while not predicate(self.state):
                await self._tick.wait()
        return self.state

    def _changed(self, state: dict[str, Any]) -> None:
        self.state = state
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()
        if self.on_state is not None:
            try:
                self.on_state(state)
            except Exception:  # the app's bug must not end the link
                log.exception("on_state failed")

    async def _run(self) -> None:
        delay = RECONNECT_FIRST_S
        while True:
            before = self.connections
            try:
                await self._session()
            except (OSError, ValueError, asyncio.IncompleteReadError, wire.WireError, TimeoutError) as exc:
                log.debug("no link to the daemon: %s: %s", type(exc).__name__, exc)
            except Exception:  # a bug in one session: the app keeps trying, or it stays unlinked
                log.exception("link to the daemon failed")
            delay = RECONNECT_FIRST_S if self.connections > before else min(delay * 2, RECONNECT_CAP_S)
            await asyncio.sleep(delay)

    async def _session(self) -> None:
        info = read_api_file(self.state_dir)
        if not _pid_alive(info.pid):
            raise ValueError(f"the daemon {info.pid} of {API_FILE} is not running")
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            reader, writer = await asyncio.open_connection(HOST, info.port)
        try:
            wire.write_frame(writer, {"t": "app_hello", "token": info.token})
            async with asyncio.timeout(HELLO_TIMEOUT_S):
                first = await wire.read_frame(reader)
            if first["t"] != "state" or not isinstance(first.get("state"), dict):
                raise wire.WireError(f"expected the state, got {first['t']!r}")
            self._writer, self.connected = writer, True
            self.connections += 1
            log.info("linked to the exam-PC daemon on port %d", info.port)
            self._changed(first["state"])
            while True:
                msg = await wire.read_frame(reader)
                if msg["t"] == "state" and isinstance(msg.get("state"), dict):
                    self._changed(msg["state"])
                elif msg["t"] == "res":
                    rid = msg.get("id")
                    fut = self._pending.get(rid) if type(rid) is int else None
                    if fut is not None and not fut.done():
                        fut.set_result(msg)
        finally:
            was_connected = self.connected
            self._writer, self.connected = None, False
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(
                        AppApiError("daemon_down", DAEMON_DOWN_ZH, "the daemon closed the connection")
                    )
            writer.transport.abort()
            if was_connected:
                log.info("link to the exam-PC daemon lost")
                self._changed({})


def _pid_alive(pid: int) -> bool:
    """A daemon that died leaves its file; its port may belong to another process by now,
    which must not get the token."""
    return psutil.pid_exists(pid)
