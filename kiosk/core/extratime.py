"""Extra time (补时): how much of a request can be granted and whether it needs a code."""

from __future__ import annotations

from dataclasses import dataclass

from kiosk.core.errors import Refused


@dataclass(frozen=True)
class ExtraTimePlan:
    requested_s: int
    granted_s: int  # what is actually added: the request cut down to the duration cap
    total_before_s: int
    total_after_s: int
    needs_code: bool


def plan_extra_time(
    already_s: int, requested_s: int, duration_s: int, free_allowance_s: int
) -> ExtraTimePlan:
    """Plan one grant on top of ``already_s`` seconds granted before.

    The cumulative total never exceeds the subject's duration; a request beyond it is granted
    in part (the manual's "实际补时"). A code is needed once the new total is above the free
    allowance; the caller binds that code to ``requested_s``, the number the officer typed on
    both the box and the site.
    """
    # bool passes isinstance(int); a checkbox value must not become "1 second".
    if isinstance(requested_s, bool) or not isinstance(requested_s, int) or requested_s <= 0:
        raise Refused(
            "bad_amount",
            "补时时长应为大于 0 的整数秒",
            "extra time must be a whole number of seconds above 0",
        )
    if already_s < 0 or duration_s < 0 or free_allowance_s < 0:
        raise ValueError("already_s, duration_s and free_allowance_s must not be negative")
    granted = min(requested_s, duration_s - already_s)
    if granted <= 0:
        raise Refused(
            "extra_time_cap",
            f"累计补时已达科目考试时长（{duration_s} 秒），不能再补时",
            f"cumulative extra time has reached the subject duration ({duration_s} s)",
        )
    total_after = already_s + granted
    return ExtraTimePlan(
        requested_s=requested_s,
        granted_s=granted,
        total_before_s=already_s,
        total_after_s=total_after,
        needs_code=total_after > free_allowance_s,
    )
