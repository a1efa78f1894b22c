"""The reference exam-site server (考点服务器, docs/site.md): HTTPS with the site
certificate for the rooms of one site plan. Boxes register with their room's registration
code, then download the exam package and session authorisations inside their windows,
report the seal check and upload the results package, resumably; the site reconciles the
authorisation codes the box used against the codes it issued.

Everything from the network is untrusted: bodies are bounded, JSON is typed strictly, and
a refused request changes nothing. The rules are plain functions with `now` passed in;
database and file work runs on one worker thread, so the requests of one upload are
applied one after another."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import math
import os
import re
import ssl
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from cryptography import x509

from kiosk.common.crypto import cert_fingerprint, tokens_equal, verify_signature
from kiosk.common.fsutil import fsync_dir
from kiosk.common.signed import open_sealed, registration_proof
from kiosk.core.errors import Refused
from kiosk.net.site_client import API, request_payload
from kiosk.site import store

log = logging.getLogger(__name__)

RESULTS_FORMAT = "results-package"
MAX_JSON_BYTES = 64 * 1024  # registration, seal report
MAX_CHUNK_BYTES = 8 * 1024**2
MAX_UPLOAD_BYTES = 512 * 1024**2
MAX_SKEW_S = 300
_NUMBER = re.compile(r"\d{1,12}")


class Denied(Exception):
    """A refused request: its HTTP status, the refusal, and fields the client may use."""

    def __init__(self, status: int, refused: Refused, **extra: Any) -> None:
        super().__init__(refused.en)
        self.status, self.refused, self.extra = status, refused, extra


def _bad_request(en: str) -> Denied:
    return Denied(400, Refused("bad_request", "请求格式错误", en))


def _json_object(body: bytes) -> dict[str, Any]:
    def no_constants(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    try:
        doc = json.loads(body.decode("utf-8"), parse_constant=no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # nesting beyond the parser's depth
        raise _bad_request(f"body is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise _bad_request("body must be a JSON object")
    return doc


def _local(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


# -- the rules ---------------------------------------------------------------------------


def check_window(what_zh: str, what_en: str, start: float, end: float, now: float) -> None:
    """A package is handed out only inside its download window."""
    if not start <= now <= end:
        raise Denied(
            403,
            Refused(
                "outside_window",
                f"{what_zh}下载时间为 {_local(start)} 至 {_local(end)}，现在不在此时间内",
                f"{what_en} can be downloaded from {start:.0f} to {end:.0f}, not at {now:.0f}",
            ),
        )


def check_request(
    cert_pem: bytes, method: str, path_qs: str, x_time: str, signature: str, body: bytes, now: float
) -> None:
    """A room call must be signed by the registered box, at most MAX_SKEW_S ago or ahead."""
    try:
        sig = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        sig = b""
    payload = request_payload(method, path_qs, x_time, body)
    if not (_NUMBER.fullmatch(x_time) and sig and verify_signature(cert_pem, payload, sig)):
        raise Denied(
            401, Refused("bad_signature", "请求签名无效", "the request is not signed by the registered box")
        )
    skew = int(x_time) - now
    if abs(skew) > MAX_SKEW_S:
        raise Denied(
            401,
            Refused(
                "clock_skew",
                f"监考机时间与考点服务器相差 {abs(skew):.0f} 秒，请校准监考机时间",
                f"box clock is {skew:+.0f} s off the site's",
            ),
        )


MAX_SESSION = 999_999  # the session route's six digits


def _plain(value: Any) -> bool:
    """JSON the site can store and answer with: text without NUL or lone surrogates (a
    JSON escape can spell both), finite numbers, lists and objects of those. Walked
    without recursion: the nesting is the sender's choice."""
    todo = [value]
    while todo:
        v = todo.pop()
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                return False
            if "\x00" in v:
                return False
        elif isinstance(v, float):
            if not math.isfinite(v):
                return False
        elif isinstance(v, list):
            todo.extend(v)
        elif isinstance(v, dict):
            todo.extend(v.keys())
            todo.extend(v.values())
        elif not (v is None or isinstance(v, bool | int)):
            return False
    return True


def codes_used(body: dict[str, Any], room_code: str) -> tuple[int, list[dict[str, Any]]]:
    """The session and the codes the box used, from an opened results package."""
    session, used = body.get("session"), body.get("codes_used")
    if body.get("room_code") != room_code:
        raise Denied(422, Refused("foreign_room", "结果包不是本考场的", "the results are for another room"))
    keys = ("code", "purpose", "challenge")
    if (
        type(session) is not int
        or not 1 <= session <= MAX_SESSION
        or not isinstance(used, list)
        or not all(isinstance(u, dict) and all(isinstance(u.get(k), str) for k in keys) for u in used)
        or not _plain(used)
    ):
        raise Denied(
            422, Refused("package_invalid", "结果包缺少场次或授权码使用记录", "bad session or codes_used")
        )
    return session, used


@dataclass(frozen=True)
class Results:
    """What the site takes from a results package."""

    session: int
    made_at: float  # when the box made it: an older one of the same session is stale
    codes_used: list[dict[str, Any]]
    files: list[dict[str, Any]]


def read_results(raw: bytes, box_cert_pem: bytes, room_code: str) -> Results:
    """A results package signed by the room's registered box, for that room, with its
    session, creation time, codes used and answer files typed; anything else is refused
    (Denied 422 with the reason). No database, no files: the caller stores."""
    try:
        body = open_sealed(raw, RESULTS_FORMAT, box_cert_pem)
    except Refused as exc:
        raise Denied(422, exc) from exc
    session, used = codes_used(body, room_code)
    files = files_listed(body)
    made_at = body.get("created_at")
    try:
        ok = not isinstance(made_at, bool) and isinstance(made_at, int | float) and math.isfinite(made_at)
    except OverflowError:  # an integer beyond any float
        ok = False
    if not ok:
        raise Denied(
            422, Refused("package_invalid", "结果包缺少生成时间", "created_at must be a finite number")
        )
    return Results(session, float(made_at), used, files)


def reconcile(used: list[dict[str, Any]], issued: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Each code the box used either was issued by the site for that purpose and challenge
    (matched) or was not (not_issued); codes issued but never used are listed too."""

    def key(c: dict[str, Any]) -> tuple[str, str, str]:
        return c["purpose"], c["challenge"], c["code"]

    issued_keys, used_keys = {key(c) for c in issued}, {key(c) for c in used}
    return {
        "matched": [u for u in used if key(u) in issued_keys],
        "not_issued": [u for u in used if key(u) not in issued_keys],
        "issued_unused": [c for c in issued if key(c) not in used_keys],
    }


# -- the operations (on the worker thread) ------------------------------------------------


def _room(code: str) -> store.Room:
    row = store.room(code)
    if row is None:
        raise Denied(
            404, Refused("unknown_room", f"考场 {code} 不属于本考点", f"no room {code} at this site")
        )
    return row


def register(code: str, body: bytes, now: float) -> bytes:
    """A box proves it knows the room's registration code; its certificate replaces any
    registered before (a replaced or initialised box). Returns the room sheet."""
    row = _room(code)
    doc = _json_object(body)
    cert, proof = doc.get("box_cert"), doc.get("proof")
    if not isinstance(cert, str) or not isinstance(proof, str):
        raise _bad_request("box_cert and proof must be strings")
    try:
        x509.load_pem_x509_certificate(cert.encode())
    except ValueError as exc:
        raise _bad_request(f"box_cert is not a PEM certificate: {exc}") from exc
    fingerprint = cert_fingerprint(cert.encode())
    if not tokens_equal(proof, registration_proof(row.registration_code, code, fingerprint)):
        raise Denied(
            403, Refused("registration_code_wrong", "注册码错误", "registration proof does not hold")
        )
    store.register_box(code, cert, fingerprint, now)
    log.info("room %s registered box %s", code, fingerprint[:16])
    return store.blob(row.sheet)


def authenticate(
    code: str, method: str, path_qs: str, x_time: str, signature: str, body: bytes, now: float
) -> store.Room:
    row = _room(code)
    if row.box_cert is None:
        raise Denied(
            401, Refused("not_registered", "本考场尚未注册监考机，请先注册", f"room {code} has no box")
        )
    check_request(row.box_cert.encode(), method, path_qs, x_time, signature, body, now)
    return row


def exam_package(row: store.Room, now: float) -> bytes:
    check_window("考务数据", "the exam package", row.publish_at, row.download_until, now)
    return store.blob(row.exam)


def authorisation(row: store.Room, session: int, now: float) -> bytes:
    auth = store.authorisation(row.code, session)
    if auth is None:
        raise Denied(404, Refused("unknown_session", f"没有第{session}场", f"no session {session}"))
    check_window(
        f"第{session}场考试授权", f"session {session}'s authorisation", auth.valid_from, auth.valid_until, now
    )
    return store.blob(auth.data)


def seal_report(row: store.Room, body: bytes, now: float) -> None:
    report = _json_object(body)
    if not isinstance(report.get("passed"), bool):
        raise _bad_request("passed must be true or false")
    store.add_seal_report(row.code, report, now)


def _answer(up: store.Upload | None) -> dict[str, Any]:
    if up is None:
        return {"received": 0, "complete": False, "reconciliation": None}
    done = json.loads(up.reconciliation) if up.reconciliation else None
    return {"received": up.received, "complete": up.complete, "reconciliation": done}


def upload_status(row: store.Room, sha256: str) -> dict[str, Any]:
    return _answer(store.upload(row.code, sha256))


def _query_int(query: dict[str, str], name: str) -> int:
    text = query.get(name, "")
    if not _NUMBER.fullmatch(text):
        raise _bad_request(f"{name} must be a non-negative integer")
    return int(text)


def upload_chunk(
    folder: Path,
    row: store.Room,
    sha256: str,
    query: dict[str, str],
    chunk: bytes,
    now: float,
    answer_file: bool = False,
) -> dict[str, Any]:
    """Append a chunk at exactly the offset received so far; the last one completes the
    upload (the results package checked, opened, reconciled; an answer file checked
    against what the results listed). A complete upload answers the same again."""
    up = store.upload(row.code, sha256)
    if up is not None and up.complete:
        return _answer(up)
    offset, total = _query_int(query, "offset"), _query_int(query, "total")
    if total > MAX_UPLOAD_BYTES:
        raise Denied(413, Refused("too_large", "结果文件超过 512 MiB", "the upload is over 512 MiB"))
    if answer_file:
        expected = store.expected_file(row.code, sha256)
        if expected is None:
            raise Denied(
                404,
                Refused(
                    "unexpected_file", "该文件不在已上报结果的文件清单中", "not in the results' file index"
                ),
            )
        if expected.size != total:
            raise _bad_request("the total is not the listed size")
    if offset + len(chunk) > total or (up is not None and up.total != total):
        raise _bad_request("the chunk does not fit the upload's total")
    received = up.received if up is not None else 0
    if offset != received:
        raise Denied(
            409,
            Refused(
                "offset_mismatch", "上报进度不一致，将从服务器已收到的位置继续", f"server has {received}"
            ),
            received=received,
        )
    part = folder / row.code / f"{sha256}.part"
    _write_at(part, offset, chunk)
    if offset + len(chunk) < total:
        return _answer(store.save_upload(row.code, sha256, total, offset + len(chunk), now))
    return (_finish_file if answer_file else _finish)(row, sha256, part, total, now)


def _write_at(part: Path, offset: int, chunk: bytes) -> None:
    """Durable before the database records it; bytes a crash left past `offset` go."""
    part.parent.mkdir(parents=True, exist_ok=True)
    with open(part, "r+b" if part.exists() else "wb") as f:
        f.truncate(offset)
        f.seek(offset)
        f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
    if offset == 0:
        fsync_dir(part.parent)


def _finish(row: store.Room, sha256: str, part: Path, total: int, now: float) -> dict[str, Any]:
    raw = part.read_bytes()
    try:
        if hashlib.sha256(raw).hexdigest() != sha256:
            raise Denied(
                422, Refused("hash_mismatch", "上报的结果文件校验失败，请重新上报", "sha256 does not match")
            )
        results = read_results(raw, row.box_cert.encode(), row.code)
        session = results.session
        newest = store.newest_results(row.code, session)
        if newest is not None and newest.made_at > results.made_at:
            raise Denied(
                409,
                Refused(
                    "stale_results",
                    f"考点已收到第{session}场次更新的考试结果，此结果包较旧",
                    "a newer results package of this session was uploaded already",
                ),
            )
    except Denied:
        part.unlink()
        store.drop_upload(row.code, sha256)
        raise
    result = reconcile(results.codes_used, store.issued_codes(row.code, session))
    store.expect_files(row.code, results.files)
    result["files"] = len(results.files)
    final = part.with_suffix(".json")
    os.replace(part, final)
    fsync_dir(final.parent)
    log.info("room %s uploaded results %s, session %d", row.code, sha256[:16], session)
    return _answer(
        store.save_upload(row.code, sha256, total, total, now, final, result, (session, results.made_at))
    )


def files_listed(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The answer files the results package lists (path, size, sha256), checked."""
    files = body.get("files", [])
    ok = isinstance(files, list) and all(
        isinstance(f, dict)
        and isinstance(f.get("path"), str)
        and 0 < len(f["path"]) <= 512
        and _plain(f["path"])
        and type(f.get("size")) is int
        and 0 <= f["size"] <= MAX_UPLOAD_BYTES
        and isinstance(f.get("sha256"), str)
        and re.fullmatch(r"[0-9a-f]{64}", f["sha256"])
        for f in files
    )
    if not ok:
        raise Denied(422, Refused("package_invalid", "结果中的文件清单无效", "bad files index"))
    return files


def _finish_file(row: store.Room, sha256: str, part: Path, total: int, now: float) -> dict[str, Any]:
    digest = hashlib.sha256()
    with part.open("rb") as f:
        while block := f.read(1024 * 1024):
            digest.update(block)
    if digest.hexdigest() != sha256:
        part.unlink()
        store.drop_upload(row.code, sha256)
        raise Denied(
            422, Refused("hash_mismatch", "上报的作答文件校验失败，请重新上报", "sha256 does not match")
        )
    final = part.with_suffix(".file")
    os.replace(part, final)
    fsync_dir(final.parent)
    return _answer(store.save_upload(row.code, sha256, total, total, now, final, None))


# -- HTTP ------------------------------------------------------------------------------------


def _json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=partial(json.dumps, ensure_ascii=False))


@web.middleware
async def _errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except Denied as exc:
        return _json_response({**exc.refused.to_dict(), **exc.extra}, exc.status)
    except web.HTTPException as exc:  # the router's 404 and 405
        if exc.status < 400:
            raise
        return _json_response(
            {"code": "not_found" if exc.status == 404 else "bad_request", "zh": "请求无效", "en": exc.reason},
            exc.status,
        )


async def _read(request: web.Request, limit: int) -> bytes:
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        body = None
    except (HttpProcessingError, ConnectionError) as exc:  # the client went away mid-body
        raise _bad_request(f"incomplete body: {exc}") from exc
    if body is None or len(body) > limit:
        raise Denied(413, Refused("too_large", "请求过大", f"body over {limit} bytes"))
    return body


def make_app(plan_dir: Path, clock: Callable[[], float] = time.time) -> web.Application:
    """The API over the database `store.connect` has bound; one worker thread does the
    database and file work and is shut down with the app."""
    plan = store.read_plan(plan_dir)
    uploads = plan_dir / "site" / "uploads"
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="site-store")

    async def on_worker(fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(worker, fn, *args)

    async def signed(request: web.Request, limit: int, op: Callable[[store.Room, bytes, float], Any]) -> Any:
        """Check the box's signature, then run `op(room_row, body, now)`."""
        body = await _read(request, limit)
        code, method, path_qs = request.match_info["room"], request.method, request.raw_path
        x_time, signature = request.headers.get("X-Time", ""), request.headers.get("X-Signature", "")

        def work() -> Any:
            now = clock()
            row = authenticate(code, method, path_qs, x_time, signature, body, now)
            return op(row, body, now)

        return await on_worker(work)

    def _bytes(data: bytes) -> web.Response:
        return web.Response(body=data, content_type="application/json")

    async def hello(request: web.Request) -> web.Response:
        return _json_response(
            {"site_code": plan["site_code"], "site_name": plan["site_name"], "time": clock()}
        )

    async def register_room(request: web.Request) -> web.Response:
        body = await _read(request, MAX_JSON_BYTES)
        return _bytes(await on_worker(register, request.match_info["room"], body, clock()))

    async def get_exam(request: web.Request) -> web.Response:
        return _bytes(await signed(request, 0, lambda row, body, now: exam_package(row, now)))

    async def get_authorisation(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        return _bytes(await signed(request, 0, lambda row, body, now: authorisation(row, n, now)))

    async def post_seal_report(request: web.Request) -> web.Response:
        await signed(request, MAX_JSON_BYTES, seal_report)
        return _json_response({"stored": True})

    async def get_results(request: web.Request) -> web.Response:
        sha = request.match_info["sha256"]
        return _json_response(await signed(request, 0, lambda row, body, now: upload_status(row, sha)))

    async def put_results(request: web.Request) -> web.Response:
        sha, query = request.match_info["sha256"], dict(request.query)
        answer = await signed(
            request, MAX_CHUNK_BYTES, lambda row, body, now: upload_chunk(uploads, row, sha, query, body, now)
        )
        return _json_response(answer)

    async def put_file(request: web.Request) -> web.Response:
        sha, query = request.match_info["sha256"], dict(request.query)
        answer = await signed(
            request,
            MAX_CHUNK_BYTES,
            lambda row, body, now: upload_chunk(uploads, row, sha, query, body, now, answer_file=True),
        )
        return _json_response(answer)

    async def stop_worker(app: web.Application) -> None:
        await on_worker(store.database.close)  # the worker's own connection
        worker.shutdown(wait=True)

    app = web.Application(client_max_size=MAX_CHUNK_BYTES, middlewares=[_errors])
    room = f"{API}/rooms/{{room}}"
    app.router.add_get(f"{API}/hello", hello)
    app.router.add_post(f"{room}/register", register_room)
    app.router.add_get(f"{room}/exam-package", get_exam)
    app.router.add_get(rf"{room}/sessions/{{n:\d{{1,6}}}}/authorisation", get_authorisation)
    app.router.add_post(f"{room}/seal-report", post_seal_report)
    app.router.add_get(f"{room}/results/{{sha256:[0-9a-f]{{64}}}}", get_results)
    app.router.add_put(f"{room}/results/{{sha256:[0-9a-f]{{64}}}}", put_results)
    app.router.add_get(f"{room}/files/{{sha256:[0-9a-f]{{64}}}}", get_results)  # the same status
    app.router.add_put(f"{room}/files/{{sha256:[0-9a-f]{{64}}}}", put_file)
    app.on_cleanup.append(stop_worker)
    return app


def tls_context(plan_dir: Path) -> ssl.SSLContext:
    """The site certificate, TLS 1.2 or newer; boxes show no client certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(plan_dir / "site" / "site.crt", plan_dir / "site" / "site.key")
    return ctx


async def run(
    plan_dir: Path,
    db_url: str | None,
    host: str,
    port: int,
    clock: Callable[[], float] = time.time,
    ready: Callable[[str, str], None] = lambda url, fingerprint: None,
) -> None:
    """Import the plan and serve until cancelled; `ready(url, fingerprint)` once listening."""
    store.read_plan(plan_dir)  # a wrong folder is refused before a database is made in it
    db = store.connect(db_url or store.default_url(plan_dir))
    try:
        store.import_plan(plan_dir)
        runner = web.AppRunner(make_app(plan_dir, clock), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port, ssl_context=tls_context(plan_dir)).start()
            bound = runner.addresses[0][1]
            fingerprint = cert_fingerprint((plan_dir / "site" / "site.crt").read_bytes())
            log.info("site server on %s:%s", host, bound)
            ready(f"https://{host}:{bound}", fingerprint)
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()
    finally:
        db.close()
