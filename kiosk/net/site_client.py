"""The box's link to the exam-site server (the `SiteLink` port, docs/site.md): HTTPS with
the site certificate pinned from the room sheet, every room call signed with the box key,
the results upload resumable. Synchronous: the room service calls it from its worker
thread. The request-signing rule lives here too; the site server imports it."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import logging
import ssl
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from kiosk.common.crypto import Identity, peer_fingerprint, sign
from kiosk.common.signed import MAX_ENVELOPE_BYTES, registration_proof
from kiosk.core.errors import Refused
from kiosk.settings import Settings

log = logging.getLogger(__name__)

API = "/api/v2"
_BACKOFF_S = 0.5  # times the number of the failed attempt
_RESUMABLE = ("site_offline", "offset_mismatch")  # an upload resumes from the server's count


def request_payload(method: str, path_qs: str, x_time: str, body: bytes) -> bytes:
    """What the box signs for a room call: method, path with query, time, body hash."""
    return f"{method}\n{path_qs}\n{x_time}\n{hashlib.sha256(body).hexdigest()}".encode()


def signed_headers(identity: Identity, method: str, path_qs: str, body: bytes, now: float) -> dict[str, str]:
    x_time = str(int(now))
    signature = sign(identity, request_payload(method, path_qs, x_time, body))
    return {"X-Time": x_time, "X-Signature": base64.b64encode(signature).decode()}


def _tls_context(site_cert_pem: bytes | None) -> ssl.SSLContext:
    """Pinned: trusts exactly the site certificate (a self-signed CA), by key not by name.
    Without one (registration only) the peer is not verified: the room sheet is."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False
    if site_cert_pem is None:
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.load_verify_locations(cadata=site_cert_pem.decode())
    return ctx


def _server_refusal(status: int, data: bytes) -> Refused:
    try:
        doc = json.loads(data)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and all(isinstance(doc.get(k), str) for k in ("code", "zh", "en")):
        return Refused(doc["code"], doc["zh"], doc["en"])
    return Refused("site_error", f"考点服务器返回错误（HTTP {status}）", f"site answered HTTP {status}")


def _file_digest(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as f:
        while block := f.read(1024 * 1024):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


class SiteClient:
    """One exam-site server; `site_cert_pem` is the pinned site certificate (None until
    the box has read a room sheet)."""

    def __init__(
        self,
        host: str,
        port: int,
        identity: Identity,
        site_cert_pem: bytes | None,
        *,
        timeout_s: float = Settings.site_timeout_s,
        retries: int = Settings.site_retries,
        chunk_bytes: int = Settings.site_chunk_bytes,
    ) -> None:
        self.host, self.port = host, port
        self.identity = identity
        self.site_cert_pem = site_cert_pem
        self.timeout_s, self.retries, self.chunk_bytes = timeout_s, retries, chunk_bytes

    # -- SiteLink -----------------------------------------------------------------------

    def reachable(self) -> bool:
        try:
            self._exchange("GET", f"{API}/hello", signed=False)
        except Refused as exc:
            log.info("site not reachable: %s", exc.en)
            return False
        return True

    def register(self, room_code: str, registration_code: str) -> bytes:
        """The room sheet, from the server that signed it. The caller checks the sheet
        (`read_room_sheet`) and pins its certificate."""
        body = {
            "box_cert": self.identity.cert_pem.decode(),
            "proof": registration_proof(registration_code, room_code, self.identity.fingerprint),
        }
        raw, peer = self._exchange(
            "POST", self._room(room_code, "register"), json.dumps(body).encode(), signed=False, pinned=False
        )
        try:
            signer = json.loads(raw).get("signer")
        except (ValueError, AttributeError):
            signer = None
        if signer != peer:
            raise Refused(
                "site_cert_mismatch",
                "考点信息表不是由所连接的考点服务器签发的",
                "the room sheet is not signed by the server's TLS certificate",
            )
        return raw

    def download_exam(self, room_code: str) -> bytes:
        return self._exchange("GET", self._room(room_code, "exam-package"))[0]

    def fetch_authorisation(self, room_code: str, session: int) -> bytes:
        return self._exchange("GET", self._room(room_code, f"sessions/{int(session)}/authorisation"))[0]

    def report_seal(self, room_code: str, report: dict[str, Any]) -> None:
        body = json.dumps(report, ensure_ascii=False).encode()
        self._exchange("POST", self._room(room_code, "seal-report"), body)

    def upload_results(
        self,
        room_code: str,
        path: Path,
        progress: Callable[[int, int], None],
        files: Sequence[tuple[Path, str]] = (),
    ) -> dict[str, Any]:
        """The results package, then each answer file it lists ((path, sha256) pairs):
        each sends what the server does not have yet, chunk by chunk, and after a lost
        connection resumes from the server's count (up to `retries` failures in a row).
        `progress` counts all their bytes. Returns the server's answer to the results
        package, with its reconciliation of the authorisation codes."""
        total, digest = _file_digest(path)
        grand = total + sum(p.stat().st_size for p, _ in files)
        answer = self._upload(self._room(room_code, f"results/{digest}"), path, total, progress, 0, grand)
        done = total
        for file, sha in files:
            size = file.stat().st_size
            self._upload(self._room(room_code, f"files/{sha}"), file, size, progress, done, grand)
            done += size
        return answer

    def _upload(
        self, url: str, path: Path, total: int, progress: Callable[[int, int], None], before: int, grand: int
    ) -> dict[str, Any]:
        failures = 0
        while True:
            try:
                answer = self._json("GET", url)
                if answer.get("complete") is True:
                    progress(before + total, grand)
                    return answer
                received = answer.get("received")
                if type(received) is not int or not 0 <= received <= total:
                    raise Refused(
                        "site_error", "考点服务器的上报进度无效", f"bad received count {received!r}"
                    )
                with path.open("rb") as f:
                    f.seek(received)
                    while True:
                        chunk = f.read(self.chunk_bytes)
                        answer = self._json("PUT", f"{url}?offset={received}&total={total}", chunk)
                        received += len(chunk)
                        failures = 0
                        progress(before + received, grand)
                        if answer.get("complete") is True:
                            return answer
                        if not chunk:
                            raise Refused(
                                "site_error",
                                "考点服务器未确认上报完成",
                                "the site did not complete the upload",
                            )
            except Refused as exc:
                if exc.code not in _RESUMABLE or failures >= self.retries:
                    raise
                failures += 1
                log.info("upload interrupted (%s), attempt %d of %d", exc.en, failures, self.retries)
                time.sleep(_BACKOFF_S * failures)

    # -- HTTPS --------------------------------------------------------------------------

    def _room(self, room_code: str, rest: str) -> str:
        return f"{API}/rooms/{quote(room_code, safe='')}/{rest}"

    def _json(self, method: str, path: str, body: bytes = b"") -> dict[str, Any]:
        data = self._exchange(method, path, body)[0]
        try:
            doc = json.loads(data)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            raise Refused("site_error", "考点服务器的应答格式错误", "the site's answer is not a JSON object")
        return doc

    def _exchange(
        self, method: str, path: str, body: bytes = b"", *, signed: bool = True, pinned: bool = True
    ) -> tuple[bytes, str]:
        """One request on its own connection: the response body and the fingerprint of
        the server's TLS certificate. `signed` needs the pinned site certificate."""
        if pinned and signed and self.site_cert_pem is None:
            raise Refused(
                "site_not_registered", "请先向考点注册（导入考点信息表）", "no site certificate pinned"
            )
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(body))}
        if signed:
            headers.update(signed_headers(self.identity, method, path, body, time.time()))
        ctx = _tls_context(self.site_cert_pem if pinned else None)
        conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout_s, context=ctx)
        try:
            conn.connect()
            peer = peer_fingerprint(conn.sock)
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read(MAX_ENVELOPE_BYTES + 1)
        except ssl.SSLCertVerificationError as exc:
            raise Refused(
                "site_cert_mismatch",
                "考点服务器的证书与考点信息表不符，请联系考点",
                f"the site's TLS certificate is not the pinned one: {exc}",
            ) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise Refused(
                "site_offline",
                f"无法连接考点服务器（{self.host}:{self.port}），请检查网络或使用U盘导入/导出",
                f"site {self.host}:{self.port} not reachable: {exc!r}",
            ) from exc
        finally:
            conn.close()
        if len(data) > MAX_ENVELOPE_BYTES:
            raise Refused("site_error", "考点服务器的应答过大", "response too large")
        if response.status >= 400:
            raise _server_refusal(response.status, data)
        return data, peer
