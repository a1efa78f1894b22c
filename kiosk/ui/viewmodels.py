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


# -- the operation forms -------------------------------------------------------------

# Touch hints per parameter name, where the registry's help is written for the command
# line (option lists such as "up / down", "不加则…") or missing; per (verb, name) where the
# same name means different things.
FIELD_HINTS = {
    "path": "文件（可点选下方U盘上的文件）",
    "folder": "文件夹（可点选下方的U盘）",
    "dest": "目标文件夹（可点选下方的U盘）",
    "admission_no": "准考证号",
    "admission_nos": "准考证号（多个用逗号分隔；可在座位图中勾选）",
    "session": "场次",
    "session_no": "场次",
    "admin_name": "系统管理员姓名",
    "admin_phone": "系统管理员电话",
    "invigilator_name": "监考员姓名",
    "invigilator_phone": "监考员电话",
    "order": "机位排序（点选下方）",
    "direction": "移动方向（点选下方）",
    "action": "操作（点选下方）",
    "purpose": "授权用途（点选下方）",
    "kind": "明细种类（点选下方）",
    "show": "显示机位号（不选则隐藏）",
    "on": "开启（不选则取消）",
    "ip": "考试机 IP",
    "hostname": "计算机名",
    "note": "备注",
    "name": "姓名",
    "phone": "电话",
    "password": "系统管理员密码",
    "old": "原密码",
    "new": "新密码（最多10位）",
    "description": "情况描述（最多200字）",
    "situation": "异常情况类型（点选下方）",
    "handler": "处理人员",
    "seconds": "补时时长（秒）",
    "reason": "原因",
    "query": "准考证号、姓名或机位号",
    "notice": "锁屏提示（可不填）",
    "text": "消息内容",
    "violation_id": "违纪记录编号（见违纪记录）",
    "subjects": "重考科目（点选下方，可多选）",
    "code": "授权码（8位字母或数字）",
}
VERB_FIELD_HINTS = {
    ("violation-add", "code"): "违纪代码（如 A101）",
    ("violation-add", "description"): "违纪情况描述",
    ("resume", "description"): "异常描述（最多200字）",
    ("extra-time", "reason"): "补时原因",
    ("reexam", "reason"): "重考原因",
}
CLI_HELP = frozenset({"order", "direction", "action", "purpose", "kind", "show", "on"})


def field_hint(verb: str, name: str, help_text: str) -> str:
    """What a form field says when empty: in Chinese, for a finger, not a command line."""
    if (verb, name) in VERB_FIELD_HINTS:
        return VERB_FIELD_HINTS[(verb, name)]
    if help_text and name not in CLI_HELP:
        return help_text
    return FIELD_HINTS.get(name, help_text or name)


def missing_fields(op: Any, values: Mapping[str, Any]) -> list[str]:
    """The required fields left empty, by their hints without the parenthesised help."""
    return [
        field_hint(op.verb, p.name, p.help).split("（")[0]
        for p in op.params
        if p.required and p.kind != "bool" and values.get(p.name) in (None, "", [])
    ]


@dataclass(frozen=True)
class CodeStep:
    """The service refuses with `refusal` when the operation needs an authorisation code:
    the form then fetches the challenge for `purpose` (per candidate where the code is
    the candidate's) and shows it to be read to the site, with the code's field."""

    refusal: str
    purpose: str
    title: str
    note: str
    per_candidate: bool = False


@dataclass(frozen=True)
class ConfirmStep:
    """The service refuses with `refusal` until the flag `flag` is set: the form asks 是 /
    否 `times` times (with what will happen) and sends the flag on the last 是."""

    refusal: str
    flag: str
    times: int = 1


@dataclass(frozen=True)
class Flow:
    """How one operation's form goes beyond its fields: a notice at the top, fields shown
    only once a step asks for them, its code step and its confirmations, defaults."""

    notice: str = ""
    later: tuple[str, ...] = ()
    code: CodeStep | None = None
    confirms: tuple[ConfirmStep, ...] = ()
    defaults: tuple[tuple[str, Any], ...] = ()


_ASK_SITE = (
    "请将下面的考场代码、场次和申请码报给考点（电话），按考务要求取得授权码后输入。申请期间请勿退出监考机。"
)
FLOWS: dict[str, Flow] = {
    "allow-start": Flow(
        notice="允许开考后开始倒计时，倒计时结束全场同时开考。",
        later=("code",),
        code=CodeStep("late_start_code_needed", "late_start", "延考授权", "开考时间已过。" + _ASK_SITE),
    ),
    "resume": Flow(
        notice="本操作记录考生的异常处理情况。在线的考生会被强制退出考生端；续考后考生可在任意考试机登录。",
        later=("code", "confirm_online"),
        code=CodeStep(
            "late_candidate_code_needed",
            "late_candidate",
            "考生迟到延考授权",
            "考生已超过迟到时间。" + _ASK_SITE,
        ),
        confirms=(ConfirmStep("confirm_online", "confirm_online"),),
    ),
    "extra-time": Flow(
        notice="每个考生可以多次补时；累计补时不超过免授权时长时无需授权码，超过时需要补时授权码。",
        later=("code",),
        code=CodeStep(
            "extra_time_code_needed",
            "extra_time",
            "补时授权",
            "累计补时超过免授权时长。" + _ASK_SITE + "授权码与补时时长对应，申请后请勿修改时长。",
            per_candidate=True,
        ),
    ),
    "reexam": Flow(
        notice="正在进行重考授权，您的操作不能被撤销。为了防止误操作，请勾选“我知道了”后根据考务要求获得授权码。"
        "重考操作会清除原来的作答记录，且无法恢复，请谨慎操作！",
        later=("code", "confirm"),
        code=CodeStep(
            "reexam_code_needed",
            "reexam",
            "重考授权",
            _ASK_SITE + "重考授权码1小时内有效。",
            per_candidate=True,
        ),
        confirms=(ConfirmStep("confirm_needed", "confirm"),),
    ),
    "init-box": Flow(
        notice="初始化监考机会清除所有考务数据、考试授权和考生作答信息（事件日志保留）。",
        later=("confirm",),
        confirms=(ConfirmStep("confirm_needed", "confirm", times=2),),
        defaults=(("keep_params_and_seats", True),),
    ),
    "init-pcs": Flow(
        notice="初始化考试机会清除考试机上的考生作答等信息；考试开始前或结束后使用。",
        later=("confirm",),
        confirms=(ConfirmStep("confirm_needed", "confirm", times=2),),
    ),
    "end": Flow(notice="所有考生交卷或登记缺考后才能结束考试。请输入系统管理员密码（初始密码 888）。"),
}


def flow(verb: str, param_names: Sequence[str]) -> Flow:
    """The operation's flow; an operation with a `confirm` flag and no flow of its own
    asks once."""
    if verb in FLOWS:
        return FLOWS[verb]
    if "confirm" in param_names:
        return Flow(later=("confirm",), confirms=(ConfirmStep("confirm_needed", "confirm"),))
    return Flow()


def step_for(f: Flow, refusal: str) -> CodeStep | ConfirmStep | None:
    """Which step of the flow the service's refusal asks for (none: show it as an error)."""
    if f.code is not None and f.code.refusal == refusal:
        return f.code
    return next((c for c in f.confirms if c.refusal == refusal), None)


def challenge_rows(challenge: Mapping[str, Any], values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What the officer reads to the site by phone: room, session, the challenge in
    groups of three, and the candidate and seconds where the code is for them."""
    ch = str(challenge.get("challenge", ""))
    rows = [
        ("考场代码", str(challenge.get("room_code", ""))),
        ("当前场次", str(challenge.get("session", ""))),
    ]
    if values.get("admission_no"):
        rows.append(("准考证号", str(values["admission_no"])))
    if challenge.get("purpose") == "extra_time" and values.get("seconds") is not None:
        rows.append(("补时时长", f"{values['seconds']} 秒"))
    rows.append(("申请码", " ".join(ch[i : i + 3] for i in range(0, len(ch), 3))))
    return rows


def confirm_text(verb: str, values: Mapping[str, Any], said: str, round_: int, times: int) -> str:
    """The question of confirmation `round_` (1-based) of `times`: what will be erased,
    in the service's words first, then what the officer chose, one thing a line."""
    if round_ > 1:
        return "请再次确认：此操作无法撤销，数据清除后不能恢复。\n确定要继续吗？"
    if verb == "init-box":
        kept = (
            "将保留：考场参数与机位信息、事件日志。"
            if values.get("keep_params_and_seats")
            else "考场参数、机位信息和已固定的考点证书也将一并清除；事件日志保留。"
        )
        return "\n".join((f"{said}。", BOX_WIPED, kept, "确定要初始化监考机吗？"))
    if verb == "init-pcs":
        ips = values.get("ips") or []
        who = f"IP 为 {'、'.join(ips)} 的考试机" if ips else "全部考试机"
        extra = "，并卸载考生端" if values.get("uninstall") else ""
        return f"{said}。\n将清除{who}上的考生数据{extra}。\n确定要初始化吗？"
    if verb == "reexam":
        return said.replace("，请确认", "。\n请确认要执行重考操作吗？") if said.endswith("请确认") else said
    return said if said.endswith(("？", "?")) else f"{said}。\n确定要继续吗？"


BOX_WIPED = (  # what init_box deletes (kiosk/services/admin.py), as the officer reads it
    "将清除：考务数据与场次、考试授权、全部考生作答与操作题文件、违纪、补时、断点续考与缺考记录、"
    "授权码记录、环境检测与封场检测结果。"
)


ANSWER_LINES = 60  # a label's texture is drawn whole: a room's every detail would stall the screen


def answer_text(result: Any, human: Any, max_lines: int = ANSWER_LINES) -> str:
    """The service's answer on the form: its own sentence first where it has one (补时成功：…
    实际补时 N 秒), then the details; `human` formats the rest (kiosk.ctl_text.human). At
    most `max_lines` lines, then how many more there are."""
    if result in (None, {}, []):
        return "完成"
    if isinstance(result, Mapping) and isinstance(result.get("message"), str):
        rest = {k: v for k, v in result.items() if k != "message"}
        text = result["message"] + ("\n" + human(rest) if rest else "")
    else:
        text = str(human(result))
    lines = text.splitlines()
    if len(lines) <= max_lines:
        return text
    return "\n".join([*lines[:max_lines], f"……（另有 {len(lines) - max_lines} 行，可导出明细查看）"])


def subject_choices(status: Mapping[str, Any], admission_no: str) -> list[tuple[str, str]]:
    """The candidate's subjects as (name, code) to tick for a re-exam."""
    names = (status.get("exam") or {}).get("subjects") or {}
    for c in (status.get("session") or {}).get("candidates", []):
        if c.get("admission_no") == admission_no:
            return [(str(names.get(s, s)), str(s)) for s in c.get("subjects") or []]
    return []


def list_items(text: str) -> list[str]:
    """A list field's values: comma separated, the full-width comma of an input method too."""
    return [x.strip() for x in text.replace("，", ",").split(",") if x.strip()]


def toggle_item(text: str, value: str) -> str:
    """A comma list with `value` added, or removed when it was there (a multi-choice tap)."""
    items = list_items(text)
    return ",".join([x for x in items if x != value] if value in items else [*items, value])


def changed_at(drawn: Sequence[Any] | None, wanted: Sequence[Any]) -> list[int] | None:
    """Where the screen must change: the positions at which `wanted` differs from what is
    `drawn`, in order; None when nothing comparable is drawn (first draw, or another
    number of items): then every item is drawn anew."""
    if drawn is None or len(drawn) != len(wanted):
        return None
    return [i for i, (old, new) in enumerate(zip(drawn, wanted, strict=True)) if old != new]


def shortened(text: str, most: int) -> str:
    """`text` in at most `most` characters, an ellipsis saying when it was cut."""
    return text if len(text) <= most else text[: most - 1] + "…"
