"""The exam's policy numbers (time windows, free extra time, mock mode) and their validation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

from kiosk.core.errors import Refused

_LABEL_ZH = {
    "login_before_s": "开考前允许登录时长",
    "start_grace_s": "最晚开考时长",
    "late_login_s": "迟到限制时长",
    "free_extra_s": "免授权补时时长",
    "earliest_submit_s": "最早交卷时长",
    "countdown_s": "开考倒计时",
    "mock": "模考模式",
}


def _bad(zh: str, en: str) -> Refused:
    return Refused("bad_policy", f"考务策略参数错误：{zh}", f"bad exam policy: {en}")


@dataclass(frozen=True)
class Policy:
    """Policy numbers in seconds, as carried by the exam package (defaults from the manual)."""

    login_before_s: int = 1800  # allow-login window opens this long before the scheduled start
    start_grace_s: int = 900  # latest room start without a late-start code, after scheduled start
    late_login_s: int = 1800  # a candidate may first log in until actual start + this
    free_extra_s: int = 600  # cumulative free extra time per candidate
    earliest_submit_s: int = 1800  # earliest submission / single-machine collection
    countdown_s: int = 60  # countdown after "allow start"
    mock: bool = False

    def __post_init__(self) -> None:
        # Validated here, not only in from_dict, so that no code path can hold a Policy
        # whose windows are negative or whose numbers are really booleans.
        for f in fields(self):
            value = getattr(self, f.name)
            label = _LABEL_ZH[f.name]
            if f.name == "mock":
                if not isinstance(value, bool):
                    raise _bad(f"{label}应为是/否", f"{f.name} must be a boolean")
                continue
            # bool is a subclass of int; True as "1 second" is a data error, not a number.
            if isinstance(value, bool) or not isinstance(value, int):
                raise _bad(f"{label}应为整数秒", f"{f.name} must be an integer number of seconds")
            if value < 0:
                raise _bad(f"{label}不能为负数", f"{f.name} must not be negative")

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> Policy:
        """Build from the exam package's policy object; missing keys take the defaults."""
        if not isinstance(d, Mapping):
            raise _bad("策略应为键值对象", "policy must be an object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in d if k not in known)
        if unknown:
            # An unknown key is most likely a newer package format or a typo; guessing would
            # silently run the exam under the wrong rules.
            names = ", ".join(unknown)
            raise _bad(f"未知参数 {names}", f"unknown keys {names}")
        return cls(**d)  # type: ignore[arg-type]  # types are checked in __post_init__

    def to_dict(self) -> dict[str, int | bool]:
        return asdict(self)
