"""The exam-site link as the box's status strip shows it, from the last time the box
reached the site or failed to (any call of the room service to the site, or the
engine's periodic probe). Pure: the caller passes what it saw and when."""

from __future__ import annotations

from typing import NamedTuple

OFF, CONNECTED, UNREACHABLE, UNKNOWN = "off", "connected", "unreachable", "unknown"
STATE_ZH = {OFF: "单机模式", CONNECTED: "已连接", UNREACHABLE: "无法连接", UNKNOWN: "检测中"}


class Seen(NamedTuple):
    """One attempt to reach the site at `site_ip`: whether it answered, and when
    (a monotonic time: link freshness is not exam time)."""

    ok: bool
    at: float
    site_ip: str


def link_state(site_mode: bool, site_ip: str, seen: Seen | None, now: float, stale_s: float) -> str:
    """off in single-machine mode; unknown until the site at the configured address
    was tried, or when the last try is older than `stale_s`; else what that try saw."""
    if not site_mode:
        return OFF
    if seen is None or seen.site_ip != site_ip or now - seen.at > stale_s:
        return UNKNOWN
    return CONNECTED if seen.ok else UNREACHABLE
