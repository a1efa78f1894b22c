"""Exam package and session authorisation: the plain-data shape the box loads, and
strict parsers of their bodies that refuse anything malformed before a single row is
written. The bodies travel inside the site-signed envelope of kiosk.common.signed
(docs/formats.md); papers are AES-GCM encrypted per session and the session
authorisation carries the key and its validity window."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import math
import os
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kiosk.common.errors import Refused

EXAM_FORMAT = "exam-package"
AUTH_FORMAT = "session-authorisation"
VERSION = 2


def _bad(what: str, en: str) -> Refused:
    return Refused("package_invalid", f"数据包无效：{what}", f"invalid package: {en}")


def _get(d: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(d, dict) or key not in d:
        raise _bad(f"{where} 缺少字段 {key}", f"{where}: missing {key}")
    value = d[key]
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        raise _bad(f"{where}.{key} 类型错误", f"{where}.{key}: wrong type")
    if not isinstance(value, kind):
        raise _bad(f"{where}.{key} 类型错误", f"{where}.{key}: wrong type")
    return value


@dataclass(frozen=True)
class SubjectData:
    code: str
    name: str
    duration_s: int
    kind: str


@dataclass(frozen=True)
class PaperData:
    subject: str
    nonce: bytes
    ciphertext: bytes


@dataclass(frozen=True)
class SessionData:
    number: int
    name: str
    start: float
    papers: tuple[PaperData, ...]


@dataclass(frozen=True)
class CandidateData:
    admission_no: str
    name: str
    gender: str
    id_type: str
    id_number: str
    session: int
    subjects: tuple[str, ...]
    photo: bytes = b""  # JPEG or PNG, shown at the identity check


MAX_PHOTO = 256 * 1024
_PHOTO_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")


def _photo(c: dict[str, Any]) -> bytes:
    raw = c.get("photo", "")
    if raw == "":
        return b""
    try:
        if not isinstance(raw, str) or len(raw) > MAX_PHOTO * 4 // 3 + 4:
            raise ValueError("too large")
        data = base64.b64decode(raw, validate=True)
    except ValueError as exc:
        raise _bad("考生照片数据无效", f"candidate photo: {exc}") from exc
    if not data.startswith(_PHOTO_MAGIC) or len(data) > MAX_PHOTO:
        raise _bad("考生照片应为不超过 256 KB 的 JPEG 或 PNG 图片", "photo is not a small JPEG or PNG")
    return data


@dataclass(frozen=True)
class ExamData:
    name: str
    site_code: str
    site_name: str
    room_code: str
    policy: dict[str, Any]
    site_secret: bytes
    package_key: bytes  # the room's answer-package key (AES-256-GCM)
    violation_codes: tuple[tuple[str, str], ...]
    situation_types: tuple[str, ...]
    staff: tuple[dict[str, str], ...]
    requirements: dict[str, Any]
    subjects: tuple[SubjectData, ...]
    sessions: tuple[SessionData, ...]
    candidates: tuple[CandidateData, ...]
    issued_at: float = 0.0  # when the site signed it: an older package is stale


def _number(d: Any, key: str, where: str) -> float:
    """A JSON number as a finite float (an integer too large for a float is refused)."""
    try:
        value = float(_get(d, key, (int, float), where))
    except OverflowError:
        value = math.inf
    if not math.isfinite(value):
        raise _bad(f"{where}.{key} 数值无效", f"{where}.{key}: not a finite number")
    return value


def _b64(s: str, where: str) -> bytes:
    try:
        return base64.b64decode(s, validate=True)
    except ValueError as exc:
        raise _bad(f"{where} 编码错误", f"{where}: bad base64") from exc


def parse_exam(doc: dict[str, Any]) -> ExamData:
    """The exam package's body, checked field by field."""
    exam = _get(doc, "exam", dict, "package")
    subjects = tuple(
        SubjectData(
            _get(s, "code", str, "subject"),
            _get(s, "name", str, "subject"),
            _get(s, "duration_s", int, "subject"),
            s.get("kind", "theory"),
        )
        for s in _get(doc, "subjects", list, "package")
    )
    if any(s.kind not in ("theory", "operation") for s in subjects):
        raise _bad("科目类型只能是 theory 或 operation", "subject kind must be theory or operation")
    codes = {s.code for s in subjects}
    if not subjects or len(codes) != len(subjects):
        raise _bad("科目为空或重复", "no subjects or duplicate subject codes")
    if any(s.duration_s <= 0 for s in subjects):
        raise _bad("科目时长必须大于0", "subject duration must be positive")
    sessions = []
    for s in _get(doc, "sessions", list, "package"):
        papers = tuple(
            PaperData(
                _get(p, "subject", str, "paper"),
                _b64(_get(p, "nonce", str, "paper"), "paper"),
                _b64(_get(p, "ciphertext", str, "paper"), "paper"),
            )
            for p in _get(s, "papers", list, "session")
        )
        if any(p.subject not in codes for p in papers):
            raise _bad("试卷科目不存在", "paper for an unknown subject")
        if len({p.subject for p in papers}) != len(papers):
            raise _bad("同一场次同一科目有多份试卷", "two papers for one subject in a session")
        if any(len(p.nonce) != 12 for p in papers):
            raise _bad("试卷加密参数错误", "paper nonce must be 12 bytes")
        number, start = _get(s, "number", int, "session"), _number(s, "start", "session")
        if number <= 0:
            raise _bad("场次编号或开考时间无效", "bad session number or start")
        sessions.append(SessionData(number, _get(s, "name", str, "session"), start, papers))
    numbers = [s.number for s in sessions]
    if not sessions or len(set(numbers)) != len(numbers):
        raise _bad("场次为空或重复", "no sessions or duplicate session numbers")
    candidates = []
    for c in _get(doc, "candidates", list, "package"):
        subj = tuple(_get(c, "subjects", list, "candidate"))
        for key in ("gender", "id_type", "id_number"):
            if not isinstance(c.get(key, ""), str):
                raise _bad(f"考生字段 {key} 类型错误", f"candidate.{key}: wrong type")
        cand = CandidateData(
            _get(c, "admission_no", str, "candidate"),
            _get(c, "name", str, "candidate"),
            c.get("gender", ""),
            c.get("id_type", ""),
            c.get("id_number", ""),
            _get(c, "session", int, "candidate"),
            subj,
            _photo(c),
        )
        if (
            not (cand.admission_no.isascii() and cand.admission_no.isdigit())
            or not 1 <= len(cand.admission_no) <= 32
        ):
            raise _bad(f"准考证号格式错误：{cand.admission_no[:40]}", "bad admission number")
        if cand.session not in numbers:
            raise _bad(f"考生 {cand.admission_no} 的场次不存在", "candidate in unknown session")
        if not subj or any(not isinstance(x, str) or x not in codes for x in subj):
            raise _bad(f"考生 {cand.admission_no} 的科目不存在", "candidate with unknown subject")
        paper_subjects = {p.subject for p in sessions[numbers.index(cand.session)].papers}
        if any(x not in paper_subjects for x in subj):
            raise _bad(
                f"考生 {cand.admission_no} 的科目在该场次没有试卷",
                "candidate subject without a paper",
            )
        candidates.append(cand)
    admission = [c.admission_no for c in candidates]
    if len(set(admission)) != len(admission):
        raise _bad("准考证号重复", "duplicate admission numbers")
    violation_codes = []
    for v in _get(exam, "violation_codes", list, "exam"):
        if not (isinstance(v, list) and len(v) == 2 and all(isinstance(x, str) and x for x in v)):
            raise _bad("违纪代码表格式错误", "violation codes must be [code, text] pairs")
        violation_codes.append((v[0], v[1]))
    staff = exam.get("staff", [])
    if not isinstance(staff, list) or not all(
        isinstance(x, dict) and all(isinstance(k, str) and isinstance(val, str) for k, val in x.items())
        for x in staff
    ):
        raise _bad("考务人员名单格式错误", "staff must be a list of objects of strings")
    requirements = exam.get("requirements", {})
    if not isinstance(requirements, dict):
        raise _bad("环境要求格式错误", "requirements must be an object")
    secret = _b64(_get(exam, "site_secret", str, "exam"), "site_secret")
    if len(secret) < 16:
        raise _bad("考点密钥过短", "site secret shorter than 16 bytes")
    package_key = _b64(_get(exam, "package_key", str, "exam"), "package_key")
    if len(package_key) != 32:
        raise _bad("作答包密钥长度错误", "package key must be 32 bytes")
    issued_at = _number(doc, "issued_at", "package") if "issued_at" in doc else 0.0
    return ExamData(
        name=_get(exam, "name", str, "exam"),
        site_code=_get(exam, "site_code", str, "exam"),
        site_name=exam.get("site_name", ""),
        room_code=_get(exam, "room_code", str, "exam"),
        policy=_get(exam, "policy", dict, "exam"),
        site_secret=secret,
        package_key=package_key,
        violation_codes=tuple(violation_codes),
        situation_types=tuple(str(x) for x in _get(exam, "situation_types", list, "exam")),
        staff=tuple(dict(x) for x in staff),
        requirements=dict(requirements),
        subjects=subjects,
        sessions=tuple(sessions),
        candidates=tuple(candidates),
        issued_at=issued_at,
    )


@dataclass(frozen=True)
class AuthorisationData:
    room_code: str
    session: int
    key: bytes
    valid_from: float
    valid_until: float


def parse_authorisation(doc: dict[str, Any]) -> AuthorisationData:
    """The session authorisation's body, checked field by field."""
    key = _b64(_get(doc, "key", str, "authorisation"), "key")
    room = _get(doc, "room_code", str, "authorisation")
    if not (room.isascii() and room.isdigit() and len(room) == 10):
        raise _bad("授权中的考场代码无效", "authorisation room code must be 10 digits")
    if len(key) != 32:
        raise _bad("授权密钥长度错误", "key must be 32 bytes")
    valid_from = _number(doc, "valid_from", "authorisation")
    valid_until = _number(doc, "valid_until", "authorisation")
    if not valid_from < valid_until:
        raise _bad("授权有效期无效", "valid_until must be after valid_from")
    return AuthorisationData(room, _get(doc, "session", int, "authorisation"), key, valid_from, valid_until)


def _paper_aad(room_code: str, session: int, subject: str) -> bytes:
    return json.dumps([EXAM_FORMAT, VERSION, room_code, session, subject]).encode()


def seal_paper(
    key: bytes, room_code: str, session: int, subject: str, questions: list[dict[str, Any]]
) -> dict[str, str]:
    nonce = os.urandom(12)
    body = json.dumps(questions, ensure_ascii=False).encode()
    ct = AESGCM(key).encrypt(nonce, body, _paper_aad(room_code, session, subject))
    return {
        "subject": subject,
        "nonce": base64.b64encode(nonce).decode(),
        "ciphertext": base64.b64encode(ct).decode(),
    }


def open_paper(key: bytes, room_code: str, session: int, paper: PaperData) -> list[dict[str, Any]]:
    try:
        body = AESGCM(key).decrypt(
            paper.nonce, paper.ciphertext, _paper_aad(room_code, session, paper.subject)
        )
        questions = json.loads(body)
    except (InvalidTag, ValueError) as exc:
        raise Refused(
            "authorisation_key_wrong",
            "考试授权与试卷不匹配，无法解密试卷",
            "the authorisation key does not open the paper",
        ) from exc
    if not isinstance(questions, list):
        raise _bad("试卷内容格式错误", "paper is not a list")
    return questions


def dump(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8")


@dataclass(frozen=True)
class AnswerFile:
    """A file of an operation task's answer (the candidate's work)."""

    subject: str
    question: str
    name: str
    data: bytes | memoryview  # read from a package: a view into its decrypted contents

    @functools.cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class AnswerPackage:
    room_code: str
    session: int
    admission_no: str
    created_at: float
    answers: tuple[dict[str, Any], ...]
    signer: str  # the fingerprint of the exam PC that signed it
    files: tuple[AnswerFile, ...] = ()

    @property
    def seq_range(self) -> tuple[int, int]:
        seqs = [a["seq"] for a in self.answers]
        return (min(seqs), max(seqs)) if seqs else (0, 0)


def read_answers(given: list[Any]) -> tuple[dict[str, Any], ...]:
    """The answers of an answer package, each with its fields typed."""
    answers = []
    for a in given:
        seq = _get(a, "seq", int, "answer")
        if seq <= 0:
            raise _bad("作答序号无效", "answer seq must be positive")
        answers.append(
            {
                "subject": _get(a, "subject", str, "answer"),
                "question": _get(a, "question", str, "answer"),
                "value": a.get("value"),
                "seq": seq,
                "saved_at": _number(a, "saved_at", "answer"),
            }
        )
    return tuple(answers)
