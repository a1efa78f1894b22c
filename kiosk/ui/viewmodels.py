"""What the proctor box's screens show, as plain data made from the room service's
answers (no Kivy): the seat grid, the stats bar, the wizard's steps, the status strip.
Screens bind to these; tests check them without a window."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

STATE_COLOURS = {  # the seat grid's colour per candidate state (RGBA)
    "not_logged_in": (0.90, 0.91, 0.93, 1),
    "logged_in": (0.80, 0.88, 1.00, 1),
    "in_exam": (0.16, 0.55, 0.33, 1),
    "submitted": (0.25, 0.35, 0.55, 1),
    "absent": (0.62, 0.64, 0.68, 1),
    "empty": (0.97, 0.97, 0.98, 1),
    "offline": (0.93, 0.55, 0.13, 1),  # a candidate writing whose PC lost the box
}
STATS = (  # the stats bar, in the manual's order
    ("expected", "应考"),
    ("logged_in", "已登录"),
    ("in_exam", "考试中"),
    ("submitted", "已交卷"),
    ("absent", "缺考"),
    ("violations", "违纪"),
    ("resumes", "断点续考"),
    ("extra_time", "补时"),
    ("offline", "离线"),
    ("hands", "举手"),
)
STEPS = (
    ("params", "参数配置"),
    ("seats", "机位管理"),
    ("envcheck", "环境检测"),
    ("exam", "载入考务"),
    ("seal", "封场检测"),
)


@dataclass(frozen=True)
class SeatCell:
    """One seat of the monitor grid."""

    seat: str
    ip: str
    admission_no: str
    name: str
    state: str
    state_zh: str
    online: bool
    flags: tuple[str, ...]  # short Chinese marks: 离线 锁屏 违纪 续考 补时 举手
    colour: tuple[float, float, float, float]
    dark: bool  # white text on it


def seat_cells(status: Mapping[str, Any]) -> list[SeatCell]:
    """Every seat in number order, with the candidate at it (or expected at it)."""
    session = status.get("session") or {}
    by_seat = {c["seat"]: c for c in session.get("candidates", []) if c.get("seat")}
    cells = []
    for s in status.get("seats", []):
        number = f"{int(s['number']):03d}"
        c = by_seat.get(number)
        if c is None:  # nobody has logged in here (yet)
            up = bool(s.get("online"))
            cells.append(
                SeatCell(number, s["ip"], "", "", "empty", "未登录" if session else "空闲", up,
                         () if up else ("离线",), STATE_COLOURS["empty"], False)
            )  # fmt: skip
            continue
        state = c["state"]
        flags = [
            mark
            for mark, on in (
                ("离线", state in ("logged_in", "in_exam") and not c.get("online")),
                ("锁屏", c.get("locked")),
                ("违纪", c.get("violation")),
                ("续考", c.get("resumed") or c.get("resume_pending")),
                ("补时", c.get("extra_s", 0) > 0),
                ("举手", c.get("hand_raised")),
            )
            if on
        ]
        colour = STATE_COLOURS["offline" if "离线" in flags else state]
        online, dark = bool(c.get("online")), state in ("in_exam", "submitted") or "离线" in flags
        cells.append(
            SeatCell(number, s["ip"], c["admission_no"], c["name"], state, c["state_zh"], online,
                     tuple(flags), colour, dark)
        )  # fmt: skip
    return cells


def grid_columns(count: int, width: float, height: float, min_cell: float = 96.0) -> int:
    """Columns that fit `count` cells of about the same shape into the area without
    scrolling when they can (150 seats on a 1920×1080 screen), never narrower than
    `min_cell` (then the grid scrolls)."""
    if count <= 0:
        return 1
    best = 1
    for cols in range(1, count + 1):
        rows = -(-count // cols)
        cell_w, cell_h = width / cols, height / rows
        if cell_w < min_cell:
            break
        best = cols
        if cell_h >= cell_w * 0.62:  # wide enough and every row fits
            break
    return best


def stats(status: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    counts = (status.get("session") or {}).get("counts") or {}
    return [(key, zh, int(counts.get(key, 0))) for key, zh in STATS]


def wizard_steps(wizard: Mapping[str, bool]) -> list[tuple[int, str, str, bool, bool]]:
    """(number, key, title, done, open): a step opens once every step before it is done."""
    out, before_done = [], True
    for n, (key, title) in enumerate(STEPS, start=1):
        done = bool(wizard.get(key))
        out.append((n, key, title, done, before_done))
        before_done = before_done and done
    return out


def remaining_text(seconds: float | None) -> str:
    if seconds is None:
        return "--:--:--"
    s = max(0, int(seconds + 0.999))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def strip(status: Mapping[str, Any], usb: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """The status strip: room code, box IP, site mode and link, USB sticks, box time."""
    cfg = status.get("config") or {}
    link = status.get("site_link") or {}
    return {
        "room": f"考场 {cfg.get('room_code') or '未配置'}",
        "ip": f"监考机 {cfg.get('box_ip') or '—'}",
        "site": f"考点 {cfg.get('site_ip')} {link.get('state_zh') or '检测中'}"
        if cfg.get("site_mode")
        else "单机模式",
        "usb": f"U盘 {len(usb)} 个" if usb else "U盘 未插入",
        "time": time.strftime("%H:%M:%S", time.localtime(float(status.get("box_time") or time.time()))),
    }


def html_text(html: str) -> str:
    """A report the service wrote as HTML (situation record, environment-check report) as
    plain lines for the box's screen: block elements end a line, table cells are
    separated by two spaces, scripts and styles are dropped."""
    from html.parser import HTMLParser

    class Text(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.parts: list[str] = []
            self.skip = 0

        def handle_starttag(self, tag: str, attrs: Any) -> None:
            if tag in ("script", "style"):
                self.skip += 1
            elif tag in ("td", "th"):
                self.parts.append("  ")

        def handle_endtag(self, tag: str) -> None:
            if tag in ("script", "style"):
                self.skip -= 1
            elif tag in ("p", "div", "tr", "h1", "h2", "h3", "li", "table", "br", "caption"):
                self.parts.append("\n")

        def handle_data(self, data: str) -> None:
            if not self.skip:
                self.parts.append(" ".join(data.split()))

    parser = Text()
    parser.feed(html)
    lines = ["".join(line).strip() for line in "".join(parser.parts).split("\n")]
    return "\n".join(line for line in lines if line)
