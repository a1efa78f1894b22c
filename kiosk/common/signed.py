"""Format v2 (docs/formats.md, "Signing"): a signed envelope around a JSON body; the room
sheet (考点信息表) that ties the site's key to the room's registration code so that the
box can pin it; the answer package (作答包) sealed with the room key and signed by the
exam PC's key.

A reader checks the signature before it parses the body, and refuses anything else with
Refused(code, Chinese, English); nothing here touches a database."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from kiosk.common.crypto import Identity, cert_fingerprint, sign, tokens_equal, verify_signature
from kiosk.common.errors import Refused
from kiosk.common.packages import (
    AUTH_FORMAT,
    EXAM_FORMAT,
    AnswerFile,
    AnswerPackage,
    AuthorisationData,
    ExamData,
    parse_authorisation,
    parse_exam,
    read_answers,
)

ENVELOPE_VERSION = 2
ROOM_SHEET_FORMAT = "room-sheet"
MAX_ENVELOPE_BYTES = 256 * 1024 * 1024
_REGISTRATION = re.compile(r"[A-Z]{8}")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def seal(signer: Identity, fmt: str, body: dict[str, Any]) -> bytes:
    """The signed envelope: ``{"format", "version": 2, "signer", "body", "sig"}`` where
    ``body`` is the base64 of the canonical JSON and ``sig`` its ECDSA signature."""
    raw = _canonical(body)
    doc = {
        "format": fmt,
        "version": ENVELOPE_VERSION,
        "signer": signer.fingerprint,
        "body": base64.b64encode(raw).decode(),
        "sig": base64.b64encode(sign(signer, raw)).decode(),
    }
    # Compact: every byte of the file is significant, so any changed byte is refused.
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Envelope:
    fmt: str
    signer: str  # the fingerprint the envelope names
    raw: bytes  # the signed bytes
    sig: bytes


def _envelope(raw: bytes, fmt: str) -> Envelope:
    if len(raw) > MAX_ENVELOPE_BYTES:
        raise Refused("package_invalid", "文件过大", "envelope too large")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: "[[[[…"
        raise Refused("package_invalid", "不是有效的 JSON 文件", f"not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise Refused("package_invalid", f"不是{fmt}文件", f"format is not {fmt}")
    if type(doc.get("version")) is not int or doc["version"] != ENVELOPE_VERSION:
        raise Refused("package_invalid", f"不支持的版本 {doc.get('version')!r}", "unsupported version")
    signer, body, sig = doc.get("signer"), doc.get("body"), doc.get("sig")
    if not all(isinstance(v, str) for v in (signer, body, sig)):
        raise Refused("package_invalid", "缺少签名信息", "signer, body and sig must be strings")
    return Envelope(fmt, signer, _strict_b64(body), _strict_b64(sig))


def _strict_b64(text: str) -> bytes:
    """Base64 in its one canonical spelling: a changed padding bit is a changed file."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Refused("package_invalid", "签名信息编码错误", f"bad base64: {exc}") from exc
    if base64.b64encode(raw).decode() != text:
        raise Refused("package_invalid", "签名信息编码错误", "non-canonical base64")
    return raw


def _body(env: Envelope) -> dict[str, Any]:
    try:
        body = json.loads(env.raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # signed, yet not JSON
        raise Refused("package_invalid", "文件内容不是有效的 JSON", f"body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise Refused("package_invalid", "文件内容格式错误", "signed body is not an object")
    return body


def open_sealed(raw: bytes, fmt: str, signer_cert_pem: bytes) -> dict[str, Any]:
    """The body of an envelope signed by the pinned certificate, or a refusal:
    ``foreign_signer`` (another key signed it), ``bad_signature`` (changed after signing)."""
    env = _envelope(raw, fmt)
    if env.signer != cert_fingerprint(signer_cert_pem):
        raise Refused("foreign_signer", "文件不是本考点签发的", "signed by another key")
    if not verify_signature(signer_cert_pem, env.raw, env.sig):
        raise Refused("bad_signature", "文件签名无效（已被修改或损坏）", "signature does not verify")
    return _body(env)


def unverified_body(raw: bytes, fmt: str) -> dict[str, Any]:
    """The body of the signer's own file, for the signer's tools (never for the box)."""
    return _body(_envelope(raw, fmt))


def read_exam_package(raw: bytes, site_cert_pem: bytes) -> ExamData:
    """The exam package (考务数据) signed by the pinned site."""
    return parse_exam(open_sealed(raw, EXAM_FORMAT, site_cert_pem))


def read_authorisation(raw: bytes, site_cert_pem: bytes) -> AuthorisationData:
    """The session authorisation (考试授权) signed by the pinned site."""
    return parse_authorisation(open_sealed(raw, AUTH_FORMAT, site_cert_pem))


# -- the room sheet ----------------------------------------------------------------------


def normalise_registration_code(code: str) -> str:
    """As typed: full-width letters folded, case and spaces ignored."""
    return re.sub(r"[\s\-_]", "", unicodedata.normalize("NFKC", str(code))).upper()


def registration_proof(registration_code: str, room_code: str, site_fingerprint: str) -> str:
    """HMAC-SHA256 of the site's certificate fingerprint under a key stretched from the
    registration code (scrypt, salted with the room code): the sheet is the site's only if
    its maker knew the code that reached the room apart from the files."""
    code = normalise_registration_code(registration_code)
    key = Scrypt(salt=room_code.encode(), length=32, **_SCRYPT).derive(code.encode())
    return hmac.new(key, site_fingerprint.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class RoomSheet:
    site_code: str
    site_name: str
    site_ip: str
    room_code: str
    site_cert_pem: bytes
    site_fingerprint: str
    sessions: tuple[dict[str, Any], ...]  # number, candidates, first/last admission number
    issued_at: float


def write_room_sheet(site: Identity, registration_code: str, sheet: dict[str, Any]) -> bytes:
    """The site's side: the sheet for one room, with the site certificate and the proof."""
    code = normalise_registration_code(registration_code)
    if not _REGISTRATION.fullmatch(code):
        raise Refused("bad_registration_code", "注册码应为8个字母", "registration code must be 8 letters")
    body = {
        **sheet,
        "site_cert": site.cert_pem.decode(),
        "proof": registration_proof(code, str(sheet["room_code"]), site.fingerprint),
    }
    return seal(site, ROOM_SHEET_FORMAT, body)


def read_room_sheet(raw: bytes, registration_code: str, room_code: str) -> RoomSheet:
    """The box's side: the sheet of this room, signed by the certificate it carries, whose
    proof holds for the registration code the officer typed. Refusals: ``bad_signature``,
    ``foreign_room``, ``registration_code_wrong``, ``package_invalid``."""
    env = _envelope(raw, ROOM_SHEET_FORMAT)
    body = _body(env)  # parsed before the check only to find the certificate to check with
    cert = body.get("site_cert")
    if not isinstance(cert, str):
        raise Refused("package_invalid", "考点信息表缺少考点证书", "no site certificate")
    try:
        pem = cert.encode()  # JSON may hold lone surrogates, which do not encode
        fingerprint = cert_fingerprint(pem)
    except ValueError as exc:
        raise Refused("package_invalid", "考点证书无效", f"bad site certificate: {exc}") from exc
    if env.signer != fingerprint or not verify_signature(pem, env.raw, env.sig):
        raise Refused("bad_signature", "考点信息表签名无效（已被修改或损坏）", "signature does not verify")
    if body.get("room_code") != room_code:
        raise Refused(
            "foreign_room", f"这是考场 {body.get('room_code')} 的考点信息表", "the sheet is for another room"
        )
    proof = body.get("proof")
    expected = registration_proof(registration_code, room_code, fingerprint)
    if not isinstance(proof, str) or not tokens_equal(proof, expected):  # any text, not only ASCII
        raise Refused("registration_code_wrong", "注册码与考点信息表不符", "registration code mismatch")
    sessions = body.get("sessions", [])
    issued = body.get("issued_at")
    if not isinstance(sessions, list) or not all(isinstance(s, dict) for s in sessions):
        raise Refused("package_invalid", "考点信息表的场次格式错误", "sessions must be a list of objects")
    if isinstance(issued, bool) or not isinstance(issued, int | float):
        raise Refused("package_invalid", "考点信息表缺少签发时间", "issued_at must be a number")
    text = {k: body.get(k) for k in ("site_code", "site_name", "site_ip")}
    if not all(isinstance(v, str) for v in text.values()):
        raise Refused("package_invalid", "考点信息表缺少考点代码、名称或地址", "site fields must be strings")
    return RoomSheet(
        site_code=text["site_code"],  # type: ignore[arg-type]
        site_name=text["site_name"],  # type: ignore[arg-type]
        site_ip=text["site_ip"],  # type: ignore[arg-type]
        room_code=room_code,
        site_cert_pem=pem,
        site_fingerprint=fingerprint,
        sessions=tuple(sessions),
        issued_at=float(issued),
    )


# -- the sealed answer package (作答包) ------------------------------------------------------

ANSWER_FORMAT = "answer-package"
MAX_ANSWER_FILES = 1000
_FILE_NAME = re.compile(r"[^/\\\x00-\x1f:*?\"<>|]{1,128}")


def valid_file_name(name: str) -> bool:
    """A name an answer package may give a file (the box refuses any other)."""
    return bool(_FILE_NAME.fullmatch(name)) and name not in (".", "..")


def _answer_aad(manifest: dict[str, Any]) -> bytes:
    return _canonical({"format": ANSWER_FORMAT, "version": ENVELOPE_VERSION, "manifest": manifest})


def seal_answer_package(
    pc: Identity,
    room_key: bytes,
    *,
    room_code: str,
    session: int,
    admission_no: str,
    answers: list[dict[str, Any]],
    created_at: float,
    files: Sequence[AnswerFile] = (),
) -> bytes:
    """An exam PC's answer package: one line, the envelope signed by the PC's key, then
    the AES-GCM ciphertext (room key, manifest as associated data) of the answers and the
    operation tasks' files, raw so that megabytes of work are not base64'd twice. The
    signature covers the SHA-256 of the contents' header, which lists every file's
    SHA-256: the box checks each file once, and never hashes the ciphertext."""
    seqs = [a["seq"] for a in answers]
    manifest = {
        "room_code": room_code,
        "session": session,
        "admission_no": admission_no,
        "subjects": sorted({a["subject"] for a in answers}),
        "count": len(answers),
        "seq_from": min(seqs, default=0),
        "seq_to": max(seqs, default=0),
        "files": len(files),
        "created_at": created_at,
        "pc_fingerprint": pc.fingerprint,
    }
    index = [
        {"subject": f.subject, "question": f.question, "name": f.name, "size": len(f.data),
         "sha256": f.sha256}
        for f in files
    ]  # fmt: skip
    header = _canonical({"answers": answers, "files": index})
    plain = b"".join([len(header).to_bytes(4, "big"), header, *(f.data for f in files)])
    nonce = os.urandom(12)
    ciphertext = AESGCM(room_key).encrypt(nonce, plain, _answer_aad(manifest))
    body = {
        "manifest": manifest,
        "pc_cert": pc.cert_pem.decode(),
        "nonce": base64.b64encode(nonce).decode(),
        "header_sha256": hashlib.sha256(header).hexdigest(),
        "ciphertext_size": len(ciphertext),
    }
    return seal(pc, ANSWER_FORMAT, body) + b"\n" + ciphertext


def open_answer_package(
    raw: bytes,
    room_key: bytes,
    room_code: str,
    session: int,
    seated: Collection[str],
    into: bytearray | None = None,
) -> AnswerPackage:
    """The box's side: signed by a seated PC's key (`seated`: their fingerprints), for
    this room and session, opened with the room key, matching its manifest. Refusals:
    ``foreign_pc``, ``bad_signature``, ``foreign_room``, ``wrong_session``,
    ``package_key_wrong``, ``manifest_mismatch``, ``package_invalid``.

    `into`: where to decrypt, when large enough (a caller opening many packages reuses
    it); the package's files are views into the decrypted contents."""
    end = raw.find(b"\n")
    if end < 0:
        raise Refused("package_invalid", "不是作答包文件", "no line break after the envelope")
    env = _envelope(raw[:end], ANSWER_FORMAT)
    ciphertext = memoryview(raw)[end + 1 :]  # megabytes: not copied
    if env.signer not in seated:
        raise Refused("foreign_pc", "作答包不是本考场考试机导出的", "not signed by a seated PC")
    body = _body(env)
    cert = body.get("pc_cert")
    try:
        own = isinstance(cert, str) and cert_fingerprint(cert.encode()) == env.signer
    except ValueError:  # not a certificate at all
        own = False
    if not own:
        raise Refused("bad_signature", "作答包签名无效（已被修改或损坏）", "certificate is not the signer's")
    if not verify_signature(cert.encode(), env.raw, env.sig):
        raise Refused("bad_signature", "作答包签名无效（已被修改或损坏）", "signature does not verify")
    manifest = body.get("manifest")
    if not isinstance(manifest, dict):
        raise Refused("package_invalid", "作答包缺少清单", "no manifest")
    if manifest.get("room_code") != room_code:
        raise Refused("foreign_room", "作答包不是本考场的", "package is for another room")
    if manifest.get("session") != session:
        raise Refused("wrong_session", "作答包不是本场次的", "package is for another session")
    if body.get("ciphertext_size") != len(ciphertext):
        raise Refused("bad_signature", "作答包内容已被修改或不完整", "the ciphertext is not the signed size")
    signed_header = body.get("header_sha256")
    if not isinstance(signed_header, str):
        raise Refused("package_invalid", "作答包格式过旧或无效，请在考试机上重新导出", "no header_sha256")
    size = max(len(ciphertext) - 16, 0)  # all but the 16-byte GCM tag
    if into is None or len(into) < size:
        into = bytearray(size)
    plain = memoryview(into)[:size]
    try:
        AESGCM(room_key).decrypt_into(
            _strict_b64(str(body.get("nonce"))), ciphertext, _answer_aad(manifest), plain
        )
    except (InvalidTag, ValueError) as exc:
        zh = "无法用本考场密钥打开作答包（不是本考场的，或已损坏、被修改）"
        raise Refused("package_key_wrong", zh, f"cannot open: {exc!r}") from exc
    answers, files = _answer_contents(plain, signed_header)
    seqs = [a["seq"] for a in answers]
    expected = (len(answers), min(seqs, default=0), max(seqs, default=0), len(files))
    if tuple(manifest.get(k) for k in ("count", "seq_from", "seq_to", "files")) != expected:
        raise Refused("manifest_mismatch", "作答包清单与内容不符", "manifest does not match the contents")
    created = manifest.get("created_at")
    if isinstance(created, bool) or not isinstance(created, int | float):
        raise Refused("package_invalid", "作答包缺少导出时间", "created_at must be a number")
    admission_no = str(manifest.get("admission_no", ""))
    return AnswerPackage(room_code, session, admission_no, float(created), answers, env.signer, files)


def _answer_contents(
    plain: memoryview, signed_header: str
) -> tuple[tuple[dict[str, Any], ...], tuple[AnswerFile, ...]]:
    """The decrypted part: the header the PC signed (the answers and the files' index),
    then each file checked against its index entry."""
    size = int.from_bytes(plain[:4], "big")
    raw_header = bytes(plain[4 : 4 + size])
    if len(raw_header) != size or hashlib.sha256(raw_header).hexdigest() != signed_header:
        raise Refused("bad_signature", "作答包内容已被修改或不完整", "the contents are not the signed ones")
    try:
        header = json.loads(raw_header)
        answers = read_answers(header["answers"] if isinstance(header["answers"], list) else [])
        index = header["files"]
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise Refused("package_invalid", "作答包内容格式错误", f"bad contents: {exc!r}") from exc
    if not isinstance(index, list) or len(index) > MAX_ANSWER_FILES:
        raise Refused("package_invalid", "作答包的文件清单无效", "files must be a list of at most 1000")
    files, at, view = [], 4 + size, plain  # the files are not copied out of it
    for entry in index:
        ok = isinstance(entry, dict) and all(
            isinstance(entry.get(k), str) for k in ("subject", "question", "name")
        )
        length = entry.get("size") if isinstance(entry, dict) else None
        if not ok or type(length) is not int or length < 0 or not _FILE_NAME.fullmatch(entry["name"]):
            raise Refused("package_invalid", "作答包的文件清单无效", f"bad file entry {entry!r:.80}")
        if not valid_file_name(entry["name"]):
            raise Refused("package_invalid", "作答包的文件名无效", "dot names")
        file = AnswerFile(entry["subject"], entry["question"], entry["name"], view[at : at + length])
        at += length
        if len(file.data) != length or file.sha256 != entry.get("sha256"):
            raise Refused("manifest_mismatch", "作答包中的文件与清单不符", f"file {entry['name']!r} differs")
        files.append(file)
    if at != len(plain):
        raise Refused("manifest_mismatch", "作答包中有清单以外的内容", "trailing bytes")
    return answers, tuple(files)
