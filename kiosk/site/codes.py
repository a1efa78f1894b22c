"""The site administrator's authorisation-code calculator (授权码计算): checks what was
typed in from the proctor box's request and issues the code with kiosk.core.codes."""

from __future__ import annotations

from kiosk.core.codes import PURPOSE_ZH, Purpose, issue_code, normalize_challenge
from kiosk.core.errors import Refused


def _bad(zh: str, en: str) -> Refused:
    return Refused("code_request_invalid", f"授权码申请信息有误：{zh}", f"bad code request: {en}")


def _is_int(value: object) -> bool:
    # bool is an int subclass; True as "session 1" is a typing slip, not a number.
    return isinstance(value, int) and not isinstance(value, bool)


def calculate(
    purpose: str, room: str, session: int, challenge: str, seconds: int, secret: bytes, now: float
) -> str:
    """The code for this request; ``seconds`` is the extra time for extra_time, else 0."""
    try:
        p = Purpose(purpose)
    except ValueError:
        names = "、".join(PURPOSE_ZH.values())
        raise _bad(
            f"用途应为{names}之一", f"purpose must be one of {', '.join(x.value for x in Purpose)}"
        ) from None
    if not (isinstance(room, str) and len(room) == 10 and room.isascii() and room.isdigit()):
        raise _bad("考场代码应为10位数字", "the room code must be 10 digits")
    if not _is_int(session) or session < 1:
        raise _bad("场次应为正整数", "the session must be a positive integer")
    if not isinstance(challenge, str):
        raise _bad("申请码应为6位数字", "the challenge must be 6 digits")
    # Same reading as the box: spaces and full-width digits from an input method are fine.
    challenge = normalize_challenge(challenge)
    if not _is_int(seconds) or seconds < 0:
        raise _bad("补时时长应为非负整数秒", "seconds must be a non-negative integer")
    if p is Purpose.EXTRA_TIME and seconds == 0:
        raise _bad("补时时长应大于0", "extra time must be more than 0 seconds")
    if p is not Purpose.EXTRA_TIME and seconds != 0:
        # The box verifies other purposes with amount 0, so such a code could never work.
        raise _bad(f"「{PURPOSE_ZH[p]}」不需要填写补时时长", f"{p.value} takes no seconds")
    if not isinstance(secret, bytes | bytearray) or not secret:
        raise Refused(
            "code_secret_missing",
            "没有授权码密钥，请先载入考务数据",
            "no authorisation-code secret: load the exam data first",
        )
    return issue_code(bytes(secret), p, room, session, challenge, seconds, now)
