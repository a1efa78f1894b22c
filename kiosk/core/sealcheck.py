"""The seal check (封场检测): is everything in place to run the exam? One item per condition."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class SealFacts:
    params_ok: bool
    seats: int
    largest_session: int  # candidates in the largest session of the loaded exam
    env_checked: int  # seated PCs with an environment result
    env_failed: int  # of those, how many failed
    exam_loaded: bool
    free_disk_bytes: int
    min_free_bytes: int
    clock_skew_s: float  # box clock minus site clock; NaN when it could not be measured
    max_skew_s: float
    daemons_online: int


@dataclass(frozen=True)
class SealItem:
    key: str
    label_zh: str
    ok: bool
    detail_zh: str


@dataclass(frozen=True)
class SealVerdict:
    items: tuple[SealItem, ...]
    passed: bool


def _gb(n: int) -> str:
    return f"{n / 1024**3:.1f} GB"


def _params(f: SealFacts) -> SealItem:
    detail = "参数已配置" if f.params_ok else "参数配置未完成"
    return SealItem("params", "参数配置", f.params_ok, detail)


def _seats(f: SealFacts) -> SealItem:
    ok = f.seats > 0 and f.seats >= f.largest_session
    if f.seats <= 0:
        detail = "尚未添加机位"
    elif ok:
        detail = f"机位 {f.seats} 个，最大场次考生 {f.largest_session} 人"
    else:
        detail = f"机位不足：机位 {f.seats} 个，最大场次考生 {f.largest_session} 人"
    return SealItem("seats", "机位", ok, detail)


def _environment(f: SealFacts) -> SealItem:
    unchecked = max(0, f.seats - f.env_checked)
    ok = f.seats > 0 and unchecked == 0 and f.env_failed == 0
    if f.seats <= 0:
        detail = "尚未添加机位，无法检测环境"
    elif ok:
        detail = f"{f.env_checked} 台考试机全部通过"
    else:
        parts = []
        if unchecked:
            parts.append(f"{unchecked} 台未检测")
        if f.env_failed:
            parts.append(f"{f.env_failed} 台未通过")
        detail = "，".join(parts) + f"（共 {f.seats} 台）"
    return SealItem("environment", "环境检测", ok, detail)


def _exam(f: SealFacts) -> SealItem:
    detail = "考务数据已载入" if f.exam_loaded else "尚未载入考务数据"
    return SealItem("exam", "考务数据", f.exam_loaded, detail)


def _disk(f: SealFacts) -> SealItem:
    ok = f.free_disk_bytes >= f.min_free_bytes
    detail = f"可用 {_gb(f.free_disk_bytes)}，至少需要 {_gb(f.min_free_bytes)}"
    return SealItem("disk", "磁盘空间", ok, detail)


def _clock(f: SealFacts) -> SealItem:
    # An unmeasurable skew fails: the box is the exam clock and must be known to be right.
    if not math.isfinite(f.clock_skew_s):
        return SealItem("clock", "时钟", False, "无法确定时钟偏差")
    ok = abs(f.clock_skew_s) <= f.max_skew_s
    detail = f"时钟偏差 {f.clock_skew_s:+.1f} 秒（允许 ±{f.max_skew_s:g} 秒）"
    return SealItem("clock", "时钟", ok, detail)


def _daemons(f: SealFacts) -> SealItem:
    ok = f.seats > 0 and f.daemons_online >= f.seats
    detail = "尚未添加机位" if f.seats <= 0 else f"在线 {min(f.daemons_online, f.seats)}/{f.seats} 台"
    return SealItem("daemons", "考试机守护进程", ok, detail)


def seal_check(f: SealFacts) -> SealVerdict:
    items = (
        _params(f),
        _seats(f),
        _environment(f),
        _exam(f),
        _disk(f),
        _clock(f),
        _daemons(f),
    )
    return SealVerdict(items=items, passed=all(i.ok for i in items))
