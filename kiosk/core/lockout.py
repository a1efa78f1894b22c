"""Administrator password rules: what a new password may be, and lock-out after failures."""

from __future__ import annotations

from collections.abc import Sequence

from kiosk.core.errors import Refused
from kiosk.core.timeline import format_duration_en, format_duration_zh

MAX_PASSWORD_LEN = 10  # the manual: 密码长度不能超过10位
MAX_FAILURES = 5
LOCKOUT_S = 300


def check_password_policy(new: str) -> None:
    if not new:
        raise Refused("password_empty", "密码不能为空", "the password must not be empty")
    if len(new) > MAX_PASSWORD_LEN:
        raise Refused(
            "password_too_long",
            f"密码长度不能超过 {MAX_PASSWORD_LEN} 位",
            f"the password must be at most {MAX_PASSWORD_LEN} characters",
        )
    # Printable ASCII only: the touch keyboard and any USB keyboard can type these, while
    # a Chinese input method could make a password that cannot be typed again at login.
    if any(not (" " <= ch <= "~") for ch in new):
        raise Refused(
            "password_charset",
            "密码只能使用英文字母、数字和英文符号",
            "the password may contain only printable ASCII characters",
        )


def locked_until(failure_times: Sequence[float], now: float) -> float | None:
    """The unlock time while locked, else None.

    ``failure_times`` are the failures since the last success. Locked once there are
    MAX_FAILURES of them, until LOCKOUT_S after the latest; each further failure while
    still over the limit locks again, so guessing stays at one try per LOCKOUT_S.
    """
    if len(failure_times) < MAX_FAILURES:
        return None
    unlock = max(failure_times) + LOCKOUT_S
    return unlock if now < unlock else None


def check_not_locked(failure_times: Sequence[float], now: float) -> None:
    unlock = locked_until(failure_times, now)
    if unlock is not None:
        wait = unlock - now
        raise Refused(
            "locked_out",
            f"密码错误次数过多，请 {format_duration_zh(wait)}后再试",
            f"too many wrong passwords; try again in {format_duration_en(wait)}",
        )
