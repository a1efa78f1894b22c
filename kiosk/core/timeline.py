"""Exam timing rules: login and start windows, deadlines, remaining time and offline time.

Every time is a float epoch second from the box clock, passed in as ``now``; deadlines are
absolute times derived from stored values, so a restart of the box never resets a countdown.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from kiosk.core.errors import Refused
from kiosk.core.policy import Policy

if TYPE_CHECKING:
    # Only for the annotation: candidate.py imports this module, so a runtime import
    # here would be circular.
    from kiosk.core.candidate import CandidateState

# CandidateState is a StrEnum, so its members compare equal to these values.
_FINISHED_STATES = frozenset({"submitted", "absent"})


def format_duration_zh(seconds: float) -> str:
    """'1 小时 5 分 3 秒' style, rounded up so a wait is never shown shorter than it is."""
    total = max(0, math.ceil(seconds))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    parts = []
    if h:
        parts.append(f"{h} 小时")
    if m:
        parts.append(f"{m} 分")
    if s or not parts:
        parts.append(f"{s} 秒")
    return " ".join(parts)


def format_duration_en(seconds: float) -> str:
    total = max(0, math.ceil(seconds))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def login_window_opens(scheduled_start: float, policy: Policy) -> float:
    return scheduled_start - policy.login_before_s


def check_allow_login(now: float, scheduled_start: float, policy: Policy) -> None:
    opens = login_window_opens(scheduled_start, policy)
    if now < opens:
        wait = opens - now
        raise Refused(
            "too_early_login",
            f"未到允许登录时间，还需等待 {format_duration_zh(wait)}",
            f"too early to allow login: the window opens in {format_duration_en(wait)}",
        )


def start_needs_code(now: float, scheduled_start: float, policy: Policy) -> bool:
    """True once the latest start without a code has passed: a late-start (延考) code is needed."""
    return now > scheduled_start + policy.start_grace_s


def check_allow_start(now: float, scheduled_start: float, policy: Policy, login_allowed: bool) -> None:
    if not login_allowed:
        raise Refused(
            "login_not_allowed",
            "请先允许登录，再允许开考",
            "allow login before allowing the start",
        )
    opens = login_window_opens(scheduled_start, policy)
    if now < opens:
        wait = opens - now
        raise Refused(
            "too_early_start",
            f"未到允许开考时间，还需等待 {format_duration_zh(wait)}",
            f"too early to allow the start: the window opens in {format_duration_en(wait)}",
        )


def exam_start_time(allowed_at: float, scheduled_start: float, policy: Policy) -> float:
    """The countdown always runs in full, and the exam never starts before its scheduled time."""
    return max(scheduled_start, allowed_at + policy.countdown_s)


def late_login_deadline(actual_start: float, policy: Policy) -> float:
    return actual_start + policy.late_login_s


def earliest_submit_time(actual_start: float, policy: Policy) -> float:
    return actual_start + policy.earliest_submit_s


def _not_started() -> Refused:
    return Refused("not_started", "考试尚未开始", "the exam has not started")


def _check_started(now: float, actual_start: float | None) -> float:
    # A start time in the future means the countdown is still running: not started yet.
    if actual_start is None or now < actual_start:
        raise _not_started()
    return actual_start


def check_submit(now: float, actual_start: float | None, policy: Policy) -> None:
    start = _check_started(now, actual_start)
    if policy.mock:
        return  # mock exams are practice: candidates may submit whenever they are done
    earliest = earliest_submit_time(start, policy)
    if now < earliest:
        wait = earliest - now
        raise Refused(
            "too_early_submit",
            f"未到允许交卷时间，还需等待 {format_duration_zh(wait)}",
            f"too early to submit: allowed in {format_duration_en(wait)}",
        )


def check_collect(now: float, actual_start: float | None, policy: Policy) -> None:
    """Single-machine collection (单机收卷) follows the earliest-submission rule."""
    start = _check_started(now, actual_start)
    if policy.mock:
        return
    earliest = earliest_submit_time(start, policy)
    if now < earliest:
        wait = earliest - now
        raise Refused(
            "too_early_collect",
            f"正考模式下需到允许交卷时间才能单机收卷，还需等待 {format_duration_zh(wait)}",
            f"too early for single-machine collection: allowed in {format_duration_en(wait)}",
        )


def candidate_deadline(actual_start: float, duration_s: int, extra_s: int) -> float:
    # The integers are summed first so that the same total extra gives the same float
    # deadline however it was granted (one rounding, not one per grant).
    return actual_start + (duration_s + extra_s)


def remaining_seconds(now: float, actual_start: float | None, duration_s: int, extra_s: int) -> int:
    """Whole seconds left (rounded down, never negative); the full time before the start."""
    full = duration_s + extra_s
    if actual_start is None or now <= actual_start:
        return max(0, full)
    left = candidate_deadline(actual_start, duration_s, extra_s) - now
    return max(0, min(full, math.floor(left)))


def check_absence_allowed(now: float, actual_start: float | None, policy: Policy) -> None:
    start = _check_started(now, actual_start)
    deadline = late_login_deadline(start, policy)
    if now < deadline:
        wait = deadline - now
        raise Refused(
            "absence_too_early",
            f"迟到时间未过，暂不能登记缺考，还需等待 {format_duration_zh(wait)}",
            f"absence can be registered only after the late-login limit, in {format_duration_en(wait)}",
        )


def check_end_exam(states: Iterable[CandidateState]) -> None:
    writing = sum(1 for s in states if s not in _FINISHED_STATES)
    if writing:
        raise Refused(
            "candidates_still_writing",
            f"还有 {writing} 名考生既未交卷也未登记缺考，不能结束考试",
            f"{writing} candidate(s) have neither submitted nor been registered absent",
        )


def offline_seconds(
    intervals: Sequence[tuple[float, float | None]],
    now: float,
    since: float | None = None,
    until: float | None = None,
) -> int:
    """Whole seconds the link was down inside [since, until or now].

    An interval with end None is still down (ends at now). Overlapping or repeated intervals
    count once: the same outage may be reported by both the box and the PC.
    """
    lo = -math.inf if since is None else since
    hi = now if until is None else until
    clipped: list[tuple[float, float]] = []
    for start, end in intervals:
        a = max(start, lo)
        b = min(now if end is None else end, hi)
        if b > a:
            clipped.append((a, b))
    clipped.sort()
    total = 0.0
    cur_a: float | None = None
    cur_b = 0.0
    for a, b in clipped:
        if cur_a is None or a > cur_b:
            if cur_a is not None:
                total += cur_b - cur_a
            cur_a, cur_b = a, b
        else:
            cur_b = max(cur_b, b)
    if cur_a is not None:
        total += cur_b - cur_a
    return math.floor(total)
