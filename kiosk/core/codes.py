"""Authorisation codes (授权码): the site computes them, the box verifies them offline.

A code is the first 40 bits of HMAC-SHA256, under the site secret that the exam package
carries, over an unambiguous encoding of (version, purpose, room, session, challenge, amount,
expiry), written with 8 symbols of a 32-symbol alphabet. The expiry is not typed by anyone:
it is a multiple of EXPIRY_STEP_S, and the box tries every bucket that could still be valid.
Single use is enforced by the caller (the database), not here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import unicodedata
from enum import StrEnum

from kiosk.core.errors import Refused
from kiosk.core.timeline import format_duration_en, format_duration_zh


class Purpose(StrEnum):
    LATE_START = "late_start"
    LATE_CANDIDATE = "late_candidate"
    EXTRA_TIME = "extra_time"
    REEXAM = "reexam"


PURPOSE_ZH: dict[Purpose, str] = {
    Purpose.LATE_START: "延考",
    Purpose.LATE_CANDIDATE: "考生迟到延考",
    Purpose.EXTRA_TIME: "补时",
    Purpose.REEXAM: "重考",
}

VALIDITY_S: dict[Purpose, int] = {
    Purpose.LATE_START: 4 * 3600,
    Purpose.LATE_CANDIDATE: 4 * 3600,
    Purpose.EXTRA_TIME: 4 * 3600,
    Purpose.REEXAM: 3600,  # re-exam wipes answers: the spec limits its code to one hour
}

# 32 symbols without the look-alikes 0/O and 1/I, so a code read aloud or off a phone
# is typed right; 8 symbols carry 40 bits.
ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LEN = 8
EXPIRY_STEP_S = 600
CHALLENGE_DIGITS = 6
FORMAT_VERSION = 1

# How far back a matching code is still recognised as "expired" rather than "wrong".
_EXPIRED_LOOKBACK_S = 48 * 3600
_CODE_BITS = 5 * CODE_LEN


def new_challenge(random_bytes: bytes) -> str:
    """A 6-digit challenge (申请码) from caller-supplied randomness (os.urandom(8) or more)."""
    if len(random_bytes) < 8:
        # With 64 bits the modulo bias towards low challenges is below 1e-13.
        raise ValueError("need at least 8 random bytes for a challenge")
    value = int.from_bytes(random_bytes, "big") % 10**CHALLENGE_DIGITS
    return f"{value:0{CHALLENGE_DIGITS}d}"


def normalize_challenge(text: str) -> str:
    """The challenge as typed on the site: spaces ignored, full-width digits accepted."""
    s = "".join(unicodedata.normalize("NFKC", text).split())
    if len(s) != CHALLENGE_DIGITS or not s.isascii() or not s.isdigit():
        raise Refused(
            "challenge_malformed",
            f"申请码应为 {CHALLENGE_DIGITS} 位数字",
            f"the challenge must be {CHALLENGE_DIGITS} digits",
        )
    return s


def normalize_code(text: str) -> str:
    """Upper-case, without spaces or dashes; refuses a wrong length or a foreign symbol."""
    # NFKC turns full-width letters and digits from a Chinese input method into ASCII.
    s = unicodedata.normalize("NFKC", text)
    s = "".join(ch for ch in s if not ch.isspace() and ch not in "-_").upper()
    bad = sorted({ch for ch in s if ch not in ALPHABET})
    if bad:
        shown = "、".join(bad)
        raise Refused(
            "code_malformed",
            f"授权码含有无效字符：{shown}（授权码不使用 0、O、1、I）",
            f"the code contains invalid characters: {' '.join(bad)}",
        )
    if len(s) != CODE_LEN:
        raise Refused(
            "code_malformed",
            f"授权码应为 {CODE_LEN} 位，输入了 {len(s)} 位",
            f"the code must be {CODE_LEN} symbols, got {len(s)}",
        )
    return s


def _require_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int")


def compute_code(
    secret: bytes,
    purpose: Purpose | str,
    room: str,
    session: int,
    challenge: str,
    amount: int,
    expiry: int,
) -> str:
    """The code for exactly these fields. ``amount`` is the extra seconds for EXTRA_TIME, else 0."""
    if not secret:
        raise Refused(
            "code_secret_missing",
            "考务数据中没有授权码密钥，请先载入考务",
            "no authorisation-code secret: load the exam data first",
        )
    p = Purpose(purpose)
    _require_int("session", session)
    _require_int("amount", amount)
    _require_int("expiry", expiry)
    if not isinstance(room, str) or not isinstance(challenge, str):
        raise TypeError("room and challenge must be str")
    # A JSON list cannot be confused with another field split ("12","3" vs "1","23"),
    # unlike plain concatenation.
    message = json.dumps(
        [FORMAT_VERSION, p.value, room, session, challenge, amount, expiry],
        ensure_ascii=True,
        separators=(",", ":"),
    ).encode("ascii")
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    value = int.from_bytes(digest[: _CODE_BITS // 8], "big")
    symbols = []
    for _ in range(CODE_LEN):
        value, index = divmod(value, len(ALPHABET))
        symbols.append(ALPHABET[index])
    return "".join(reversed(symbols))


def expiry_for(purpose: Purpose | str, now: float) -> int:
    """The expiry the site binds into a code issued at ``now``: rounded up to the step."""
    end = now + VALIDITY_S[Purpose(purpose)]
    return math.ceil(end / EXPIRY_STEP_S) * EXPIRY_STEP_S


def issue_code(
    secret: bytes,
    purpose: Purpose | str,
    room: str,
    session: int,
    challenge: str,
    amount: int,
    now: float,
) -> str:
    """Site side: the code valid from now for VALIDITY_S[purpose] (up to one step more)."""
    return compute_code(secret, purpose, room, session, challenge, amount, expiry_for(purpose, now))


def _buckets(lo: float, hi: float) -> range:
    """Every multiple of the expiry step in [lo, hi]."""
    first = math.ceil(lo / EXPIRY_STEP_S) * EXPIRY_STEP_S
    last = math.floor(hi / EXPIRY_STEP_S) * EXPIRY_STEP_S
    return range(first, last + 1, EXPIRY_STEP_S)


def _match(
    code: str,
    secret: bytes,
    purpose: Purpose,
    room: str,
    session: int,
    challenge: str,
    amount: int,
    expiries: range,
) -> int | None:
    code_bytes = code.encode("ascii")
    for e in expiries:
        candidate = compute_code(secret, purpose, room, session, challenge, amount, e)
        if hmac.compare_digest(candidate.encode("ascii"), code_bytes):
            return e
    return None


def verify_code(
    secret: bytes,
    code_text: str,
    purpose: Purpose | str,
    room: str,
    session: int,
    challenge: str,
    amount: int,
    now: float,
) -> None:
    """Accept the code or refuse it with the clearest reason that can be found."""
    code = normalize_code(code_text)
    p = Purpose(purpose)
    fields = (room, session, challenge, amount)

    valid = _buckets(now, now + VALIDITY_S[p] + EXPIRY_STEP_S)
    if _match(code, secret, p, *fields, valid) is not None:
        return

    # Diagnostics only: none of these can accept a code, they only choose the message.
    expired_at = _match(code, secret, p, *fields, _buckets(now - _EXPIRED_LOOKBACK_S, now))
    if expired_at is not None and expired_at < now:
        ago = now - expired_at
        raise Refused(
            "code_expired",
            f"授权码已过期（{format_duration_zh(ago)}前失效），请重新申请",
            f"the code expired {format_duration_en(ago)} ago; request a new one",
        )
    for other in Purpose:
        if other is p:
            continue
        window = _buckets(now, now + VALIDITY_S[other] + EXPIRY_STEP_S)
        if _match(code, secret, other, *fields, window) is not None:
            raise Refused(
                "code_wrong_purpose",
                f"此授权码用于「{PURPOSE_ZH[other]}」，不能用于「{PURPOSE_ZH[p]}」",
                f"this code is for {other.value}, not {p.value}",
            )
    raise Refused(
        "code_wrong",
        "授权码不正确（请核对考场、场次、申请码与授权码）",
        "wrong code (check the room, session, challenge and code)",
    )
