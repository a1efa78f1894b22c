"""Judging one exam PC's environment report against the requirements table (环境检测).

The report arrives from the network and is untrusted: a missing or malformed value gives a
failed item that says so, never an exception.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

MISSING = "缺失"
MALFORMED = "格式错误"
_MAX_INT = 2**53
_MAX_SHOWN = 80  # a hostile or broken report must not flood the table or the HTML report


@dataclass(frozen=True)
class Requirements:
    min_cpu_cores: int = 2
    min_memory_mb: int = 4096
    min_free_disk_mb: int = 10240
    min_screen: tuple[int, int] = (1024, 768)
    required_software: tuple[str, ...] = ()
    max_clock_skew_s: float = 5.0
    max_rtt_ms: float = 200.0
    allowed_os_prefixes: tuple[str, ...] = ("Windows", "Linux")
    forbid_vm: bool = False
    min_daemon_version: str = ""  # "" = any version; else dotted numbers such as "1.2"


@dataclass(frozen=True)
class EnvItem:
    key: str
    label_zh: str
    value: str
    required: str
    ok: bool


class _Bad(Exception):
    """A report value is missing or malformed; carries what to show instead of it."""

    def __init__(self, shown: str) -> None:
        super().__init__(shown)
        self.shown = shown


_ABSENT = object()


def _show(text: str) -> str:
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in text)
    return cleaned if len(cleaned) <= _MAX_SHOWN else cleaned[: _MAX_SHOWN - 1] + "…"


def _fmt_num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.1f}"


def _get(report: Mapping[str, object], key: str) -> object:
    value = report.get(key, _ABSENT)
    if value is _ABSENT or value is None:
        raise _Bad(MISSING)
    return value


def _number(report: Mapping[str, object], key: str, *, non_negative: bool = True) -> float:
    value = _get(report, key)
    # bool is an int to Python but never a measurement.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Bad(MALFORMED)
    # A huge int would overflow float(); no real measurement comes near 2**53.
    if isinstance(value, int) and abs(value) > _MAX_INT:
        raise _Bad(MALFORMED)
    if not math.isfinite(value) or (non_negative and value < 0):
        raise _Bad(MALFORMED)
    return float(value)


def _string(report: Mapping[str, object], key: str) -> str:
    value = _get(report, key)
    if not isinstance(value, str) or not value.strip():
        raise _Bad(MALFORMED)
    return value.strip()


def _strings(report: Mapping[str, object], key: str) -> list[str]:
    value = _get(report, key)
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise _Bad(MALFORMED)
    return [v.strip() for v in value if v.strip()]


_SCREEN_RE = re.compile(r"^\s*(\d{1,5})\s*[xX×*]\s*(\d{1,5})\s*$")


def _screen(report: Mapping[str, object]) -> tuple[int, int]:
    value = _get(report, "screen")
    if isinstance(value, str):
        m = _SCREEN_RE.match(value)
        if not m:
            raise _Bad(MALFORMED)
        return int(m.group(1)), int(m.group(2))
    if (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 99999 for v in value)
    ):
        return int(value[0]), int(value[1])
    raise _Bad(MALFORMED)


def _version_tuple(text: str) -> tuple[int, ...] | None:
    # Only a short prefix is parsed: int() of a huge digit string from the network raises.
    m = re.match(r"^v?(\d+(?:\.\d+)*)", text.strip()[:40])
    return tuple(int(p) for p in m.group(1).split(".")) if m else None


def _item(key: str, label: str, required: str, judge: Callable[[], tuple[str, bool]]) -> EnvItem:
    """Run one judge; a _Bad from it becomes a failed item showing 缺失 / 格式错误."""
    try:
        value, ok = judge()
    except _Bad as bad:
        return EnvItem(key, label, bad.shown, required, False)
    return EnvItem(key, label, _show(value), required, ok)


def judge_env(report: Mapping[str, object], req: Requirements) -> tuple[EnvItem, ...]:
    if not isinstance(report, Mapping):
        report = {}

    def os_() -> tuple[str, bool]:
        name = _string(report, "os")
        allowed = req.allowed_os_prefixes
        ok = not allowed or any(name.lower().startswith(p.lower()) for p in allowed)
        return name, ok

    def cpu() -> tuple[str, bool]:
        n = _number(report, "cpu_cores")
        if not n.is_integer():
            raise _Bad(MALFORMED)
        return _fmt_num(n), n >= req.min_cpu_cores

    def memory() -> tuple[str, bool]:
        n = _number(report, "memory_mb")
        return f"{_fmt_num(n)} MB", n >= req.min_memory_mb

    def disk() -> tuple[str, bool]:
        n = _number(report, "free_disk_mb")
        return f"{_fmt_num(n)} MB", n >= req.min_free_disk_mb

    def screen() -> tuple[str, bool]:
        w, h = _screen(report)
        min_w, min_h = req.min_screen
        return f"{w}x{h}", w >= min_w and h >= min_h

    def software() -> tuple[str, bool]:
        present = {s.casefold() for s in _strings(report, "software")}
        missing = [s for s in req.required_software if s.casefold() not in present]
        if missing:
            return "缺少：" + "、".join(missing), False
        return ("齐全" if req.required_software else "无要求"), True

    def daemon() -> tuple[str, bool]:
        version = _string(report, "daemon_version")
        if not req.min_daemon_version:
            return version, True
        have = _version_tuple(version)
        need = _version_tuple(req.min_daemon_version)
        if have is None:
            raise _Bad(MALFORMED)
        return version, need is None or have >= need

    def clock() -> tuple[str, bool]:
        skew = _number(report, "clock_skew_s", non_negative=False)
        return f"{skew:+.1f} 秒", abs(skew) <= req.max_clock_skew_s

    def rtt() -> tuple[str, bool]:
        ms = _number(report, "rtt_ms")
        return f"{_fmt_num(round(ms, 1))} ms", ms <= req.max_rtt_ms

    def vm() -> tuple[str, bool]:
        value = _get(report, "virtual_machine")
        if not isinstance(value, bool):
            raise _Bad(MALFORMED)
        return ("是" if value else "否"), not (req.forbid_vm and value)

    def remote() -> tuple[str, bool]:
        found = _strings(report, "remote_control")
        if found:
            return "发现：" + "、".join(found), False
        return "无", True

    min_w, min_h = req.min_screen
    os_required = " / ".join(req.allowed_os_prefixes) if req.allowed_os_prefixes else "不限"
    soft_required = "、".join(req.required_software) if req.required_software else "无"
    daemon_required = f"≥ {req.min_daemon_version}" if req.min_daemon_version else "不限"
    return (
        _item("os", "操作系统", os_required, os_),
        _item("cpu_cores", "CPU 核数", f"≥ {req.min_cpu_cores}", cpu),
        _item("memory_mb", "内存", f"≥ {req.min_memory_mb} MB", memory),
        _item("free_disk_mb", "可用磁盘", f"≥ {req.min_free_disk_mb} MB", disk),
        _item("screen", "屏幕分辨率", f"≥ {min_w}x{min_h}", screen),
        _item("software", "必备软件", soft_required, software),
        _item("daemon_version", "守护进程版本", daemon_required, daemon),
        _item("clock_skew_s", "时钟偏差", f"≤ ±{req.max_clock_skew_s:g} 秒", clock),
        _item("rtt_ms", "网络延迟", f"≤ {req.max_rtt_ms:g} ms", rtt),
        _item("virtual_machine", "虚拟机", "不允许" if req.forbid_vm else "不限", vm),
        _item("remote_control", "远程控制/禁用程序", "无", remote),
    )


def env_passed(items: Iterable[EnvItem]) -> bool:
    items = tuple(items)
    return bool(items) and all(i.ok for i in items)
