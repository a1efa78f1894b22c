"""Mock-exam authoring: builds the exam packages and session authorisations a school
drill (模考) runs on, and writes them as the exam site publishes them: a site plan
with, per room, the room sheet, the exam package and the session authorisations, all
signed by the site key (docs/formats.md, docs/site.md).

Everything in the packages is derived from `seed`, including the site secret, the
paper keys and the room's package key, so tests and drills are reproducible. That also
makes the keys guessable: a package built here is for drills and tests only, never for
a real exam. The site key and the registration codes are random."""

from __future__ import annotations

import base64
import random
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.common.crypto import Identity, load_or_make_identity
from kiosk.common.fsutil import write_atomic
from kiosk.common.packages import AUTH_FORMAT, EXAM_FORMAT, dump, seal_paper
from kiosk.common.signed import seal, write_room_sheet
from kiosk.core.errors import Refused
from kiosk.site.inputs import CandidateSpec, SubjectSpec

PLAN_FORMAT = "site-plan"
PUBLISH_BEFORE_S = 7 * 86400  # the exam package can be downloaded a week ahead

THEORY = {"code": "T01", "name": "理论知识", "duration_s": 90 * 60, "kind": "theory"}
OPERATION = {"code": "P01", "name": "实操技能", "duration_s": 120 * 60, "kind": "operation"}

# Worded after the national exam violation rules the site's table is copied from.
VIOLATION_CODES: tuple[tuple[str, str], ...] = (
    ("A101", "携带通讯工具、规定以外的电子用品或与考试内容相关的资料进入座位，经提醒仍不改正的"),
    ("A102", "未在规定的座位参加考试的"),
    ("A103", "考试开始信号发出前答题或者考试结束信号发出后继续答题的"),
    ("A104", "在考试过程中旁窥、交头接耳、互打暗号或者手势的"),
    ("A105", "未经考试工作人员同意在考试过程中擅自离开考场的"),
    ("B101", "抄袭或者协助他人抄袭试题答案或者与考试内容相关的资料的"),
    ("B102", "携带具有发送或者接收信息功能的设备的"),
    ("B103", "由他人冒名代替参加考试的"),
)

SITUATION_TYPES: tuple[str, ...] = (
    "考生端或考生电脑异常，考试无法继续进行",
    "考生端或考生电脑异常关闭，电脑可以继续考试",
    "按时进入考场，但登录时超过允许登录时间",
    "停电或网络故障",
    "其他",
)

STAFF: tuple[dict[str, str], ...] = (
    {"role": "administrator", "name": "张三", "phone": "13807710001"},
    {"role": "administrator", "name": "李四", "phone": "13907710002"},
    {"role": "invigilator", "name": "王芳", "phone": "15977120003"},
    {"role": "invigilator", "name": "刘洋", "phone": "18677130004"},
)

REQUIREMENTS: dict[str, Any] = {
    "min_cpu_cores": 2,
    "min_memory_mb": 4096,
    "min_free_disk_mb": 10240,
    "min_screen": [1024, 768],
    "required_software": ["Chrome"],
}

_SESSION_NAMES = (
    "第一场次",
    "第二场次",
    "第三场次",
    "第四场次",
    "第五场次",
    "第六场次",
    "第七场次",
    "第八场次",
    "第九场次",
)

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐韦覃蒙莫黎"
_GIVEN_MALE = "伟强磊军洋勇杰涛明超辉鹏华飞斌宇浩凯健俊帆志东"
_GIVEN_FEMALE = "芳娜敏静丽艳娟霞婷雪琳洁颖倩玲璐慧月瑶欣怡佳"
# Prefectures of Guangxi, where the manual's sample site is; any real prefix would do.
_AREA_CODES = ("450102", "450103", "450105", "450203", "450305", "450403", "450521", "450802")

# Theory paper, a 1+X "Web 前端开发" flavour: (text, options, answer letter).
_SINGLE: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("HTML 文档中用于定义最重要标题的标签是？", ("<h6>", "<head>", "<h1>", "<title>"), "C"),
    ("下列哪个 CSS 属性用于设置文字颜色？", ("font-color", "color", "text-color", "fgcolor"), "B"),
    ("HTTP 状态码 404 表示？", ("服务器内部错误", "请求成功", "资源未找到", "禁止访问"), "C"),
    ("JavaScript 中声明块级作用域常量的关键字是？", ("var", "let", "const", "static"), "C"),
    ("CSS 盒模型中，位于边框与内容之间的是？", ("margin", "padding", "outline", "border"), "B"),
    ("下列哪个标签用于插入图片？", ("<img>", "<picture-src>", "<image>", "<src>"), "A"),
    ("HTTP 默认使用的端口号是？", ("21", "443", "8080", "80"), "D"),
    (
        "使元素脱离文档流并相对最近的定位祖先定位的 position 取值是？",
        ("static", "relative", "absolute", "sticky"),
        "C",
    ),
    (
        "JavaScript 中 typeof null 的结果是？",
        ('"null"', '"object"', '"undefined"', '"number"'),
        "B",
    ),
    ("下列选择器中优先级最高的是？", ("#nav", ".nav", "div", "*"), "A"),
    (
        "在 Flex 布局中设置主轴方向的属性是？",
        ("justify-content", "align-items", "flex-direction", "flex-wrap"),
        "C",
    ),
    (
        "HTML5 文档类型声明的正确写法是？",
        ("<!DOCTYPE html>", "<html5>", "<!DOCTYPE HTML5>", "<doctype>"),
        "A",
    ),
    (
        "将 JSON 字符串解析为对象的方法是？",
        ("JSON.stringify()", "JSON.parse()", "JSON.toObject()", "eval.json()"),
        "B",
    ),
    ("表示超链接的 HTML 标签是？", ("<link>", "<href>", "<a>", "<url>"), "C"),
    ("数组末尾添加元素并返回新长度的方法是？", ("pop()", "shift()", "unshift()", "push()"), "D"),
    (
        "下列哪个属性可以设置元素的透明度？",
        ("opacity", "visibility", "filter-alpha", "display"),
        "A",
    ),
    ("HTTPS 在 HTTP 的基础上增加了？", ("压缩", "缓存", "TLS 加密", "负载均衡"), "C"),
    ("Vue 中用于双向数据绑定的指令是？", ("v-bind", "v-model", "v-if", "v-on"), "B"),
    (
        "让块级元素水平居中的常用写法是？",
        ("margin: 0 auto", "text-align: middle", "float: center", "align: center"),
        "A",
    ),
    (
        "下列哪个事件在页面 DOM 加载完成后触发？",
        ("onclick", "onchange", "DOMContentLoaded", "onblur"),
        "C",
    ),
)

_MULTIPLE: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "下列属于 HTML5 新增语义化标签的有？",
        ("<header>", "<article>", "<font>", "<nav>"),
        ("A", "B", "D"),
    ),
    (
        "下列属于 JavaScript 基本数据类型的有？",
        ("string", "number", "array", "boolean"),
        ("A", "B", "D"),
    ),
    (
        "可以隐藏元素的 CSS 写法有？",
        ("display: none", "visibility: hidden", "opacity: 0", "color: none"),
        ("A", "B", "C"),
    ),
    ("下列属于 HTTP 请求方法的有？", ("GET", "POST", "SEND", "DELETE"), ("A", "B", "D")),
    ("下列可以实现页面布局的技术有？", ("Flex", "Grid", "float", "JSON"), ("A", "B", "C")),
    (
        "下列属于浏览器本地存储方式的有？",
        ("localStorage", "sessionStorage", "Cookie", "innerHTML"),
        ("A", "B", "C"),
    ),
    (
        "下列数组方法中会改变原数组的有？",
        ("push()", "splice()", "map()", "sort()"),
        ("A", "B", "D"),
    ),
    ("下列属于 CSS 长度单位的有？", ("px", "em", "rem", "pt"), ("A", "B", "C", "D")),
    (
        "提高网页加载性能的做法有？",
        ("压缩静态资源", "使用浏览器缓存", "图片懒加载", "把所有脚本放在 <head> 中同步加载"),
        ("A", "B", "C"),
    ),
    ("下列属于表单元素的有？", ("<input>", "<select>", "<textarea>", "<span>"), ("A", "B", "C")),
)

_JUDGE: tuple[tuple[str, bool], ...] = (
    ("HTML 标签名不区分大小写。", True),
    ("CSS 中 id 选择器的优先级低于类选择器。", False),
    ("JavaScript 中 == 会进行类型转换，=== 不会。", True),
    ("<br> 标签需要成对出现。", False),
    ("行内元素默认不能设置宽度和高度。", True),
    ("localStorage 中的数据在关闭浏览器后会自动清除。", False),
    ("一个 HTML 页面中 id 属性的值应当唯一。", True),
    ("GET 请求的参数通常放在 URL 中。", True),
    ("CSS 中注释的写法是 /* 注释 */。", True),
    ("JavaScript 是一种只能在浏览器中运行的语言。", False),
)

_FILL: tuple[tuple[str, str], ...] = (
    ("HTML 的英文全称是 HyperText ______ Language。", "Markup"),
    ("CSS 中设置元素外边距的属性名是 ______。", "margin"),
    ("JavaScript 中输出到浏览器控制台的方法是 console.______()。", "log"),
    ("HTTP 状态码 ______ 表示请求成功。", "200"),
    ("在 HTML 中，定义无序列表的标签是 <______>。", "ul"),
)

_SCORES = {"single": 2, "multiple": 3, "judge": 2, "fill": 2}  # 40 + 30 + 20 + 10 = 100

_TASKS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "任务一：页面结构。根据素材 index.html，补全页头、导航和页脚的语义化标签，"
        "并使页面标题显示为“职业技能等级证书考核”。",
        (
            (
                "index.html",
                '<!DOCTYPE html>\n<html lang="zh-CN">\n<head>\n'
                '  <meta charset="utf-8">\n  <title></title>\n</head>\n<body>\n'
                "  <!-- 在此补全页面结构 -->\n</body>\n</html>\n",
            ),
            ("说明.txt", "请勿修改文件名，完成后保存到考试目录。\n"),
        ),
    ),
    (
        "任务二：样式布局。编辑 style.css，使用 Flex 布局将导航项水平排列、间距 16px，"
        "并使页面主体在 1024px 宽度下居中显示。",
        (("style.css", "/* 在此编写样式 */\nbody {\n  margin: 0;\n}\n"),),
    ),
    (
        "任务三：交互功能。编辑 app.js，读取 data.json 中的考生成绩列表，按分数从高到低"
        "渲染到表格中，分数低于 60 的行显示为红色。",
        (
            ("app.js", "// 在此编写脚本\n"),
            ("data.json", '[{"name": "张三", "score": 86}, {"name": "李四", "score": 57}]\n'),
        ),
    ),
)


@dataclass(frozen=True)
class MockExam:
    """One room's exam, as bodies the site signs when it writes them (author_site)."""

    package: dict  # the exam package's body, as parse_exam reads it
    authorisations: dict[int, dict]  # session number -> session authorisation's body
    site_secret: bytes

    @property
    def room_code(self) -> str:
        return str(self.package["exam"]["room_code"])


def _bad(zh: str, en: str) -> Refused:
    return Refused("mock_invalid", f"模拟考试参数错误：{zh}", f"bad mock exam parameters: {en}")


def _rng(seed: int, purpose: str) -> random.Random:
    # One stream per purpose, so adding a candidate field never changes the keys.
    return random.Random(f"proctor-box-mock:{seed}:{purpose}")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _id_number(rng: random.Random, male: bool) -> str:
    """An 18-character resident ID number with a valid GB 11643 check character."""
    birth = f"{rng.randint(1998, 2006)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    order = rng.randrange(0, 500) * 2 + (1 if male else 0)  # odd order digit = male
    body = f"{rng.choice(_AREA_CODES)}{birth}{order:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(d) * w for d, w in zip(body, weights, strict=True))
    return body + "10X98765432"[total % 11]


def _candidates(
    rng: random.Random, room_code: str, session: int, count: int, subject: str
) -> list[dict[str, Any]]:
    # Same layout as the manual's ranges (190119999990011001 for room 1999999001,
    # session 1, seat 1): "19" + room suffix + room code + session + sequence.
    prefix = f"19{room_code[-2:]}{room_code}{session}"
    out = []
    for seq in range(1, count + 1):
        male = rng.random() < 0.5
        pool = _GIVEN_MALE if male else _GIVEN_FEMALE
        given = "".join(rng.choice(pool) for _ in range(rng.choice((1, 2))))
        out.append(
            {
                "admission_no": f"{prefix}{seq:03d}",
                "name": rng.choice(_SURNAMES) + given,
                "gender": "男" if male else "女",
                "id_type": "身份证",
                "id_number": _id_number(rng, male),
                "session": session,
                "subjects": [subject],
            }
        )
    return out


def _theory_questions(rng: random.Random) -> list[dict[str, Any]]:
    # Order within each section is shuffled per seed so two seeds give different papers.
    sections: list[list[dict[str, Any]]] = [
        [{"type": "single", "text": t, "options": list(o), "answer": a} for t, o, a in _SINGLE],
        [{"type": "multiple", "text": t, "options": list(o), "answer": list(a)} for t, o, a in _MULTIPLE],
        [{"type": "judge", "text": t, "answer": a} for t, a in _JUDGE],
        [{"type": "fill", "text": t, "answer": a} for t, a in _FILL],
    ]
    questions = []
    for section in sections:
        rng.shuffle(section)
        questions.extend(section)
    return [{"id": f"q{i:02d}", **q, "score": _SCORES[q["type"]]} for i, q in enumerate(questions, start=1)]


def _operation_tasks() -> list[dict[str, Any]]:
    return [
        {
            "id": f"q{i:02d}",
            "type": "operation",
            "text": text,
            "files": [{"name": n, "content": c} for n, c in files],
            "score": score,
        }
        for i, ((text, files), score) in enumerate(zip(_TASKS, (30, 30, 40), strict=True), start=1)
    ]


def build_default_exam(
    *,
    room_code: str = "1999999001",
    site_code: str = "1999999",
    first_start: float,
    candidates_per_session: int = 40,
    sessions: int = 2,
    session_gap_s: int = 4 * 3600,
    mock: bool = True,
    seed: int = 1,
) -> MockExam:
    """The drill exam: odd sessions sit the theory paper, even ones the operation paper;
    every candidate sits exactly one subject in one session."""
    # One digit for the session and three for the sequence keep admission numbers 18 long.
    if not 1 <= sessions <= 9:
        raise _bad("场次数应为1到9", "sessions must be 1..9")
    if not 1 <= candidates_per_session <= 999:
        raise _bad("每场考生数应为1到999", "candidates per session must be 1..999")
    if session_gap_s < OPERATION["duration_s"]:
        raise _bad("场次间隔短于科目时长", "session gap shorter than a subject's duration")

    people = _rng(seed, f"candidates:{room_code}")
    papers_rng = _rng(seed, "papers")
    theory, operation = _theory_questions(papers_rng), _operation_tasks()
    candidates: list[dict[str, Any]] = []
    papers: dict[int, list[tuple[dict[str, Any], list[dict[str, Any]]]]] = {}
    for number in range(1, sessions + 1):
        subject, questions = (THEORY, theory) if number % 2 else (OPERATION, operation)
        papers[number] = [(subject, questions)]
        candidates += _candidates(people, room_code, number, candidates_per_session, subject["code"])
    return _exam(room_code, site_code, first_start, session_gap_s, mock, seed, papers, candidates)


def default_bank(seed: int = 1) -> list[SubjectSpec]:
    """The built-in question bank: the theory paper and the operation tasks."""
    papers = {"T01": _theory_questions(_rng(seed, "papers")), "P01": _operation_tasks()}
    return [
        SubjectSpec(s["code"], s["name"], s["duration_s"], s["kind"], tuple(papers[s["code"]]))
        for s in (THEORY, OPERATION)
    ]


def build_exam_from(
    bank: Sequence[SubjectSpec],
    people: Sequence[CandidateSpec],
    *,
    room_code: str = "1999999001",
    site_code: str = "1999999",
    first_start: float,
    session_gap_s: int = 4 * 3600,
    mock: bool = True,
    seed: int = 1,
) -> MockExam:
    """A school's own drill from its question bank and candidate list (kiosk.site.inputs):
    each session has a paper for every subject its candidates sit."""
    if not people:
        raise _bad("考生名单是空的", "no candidates")
    by_code = {s.code: s for s in bank}
    longest = max(by_code[c].duration_s for p in people for c in p.subjects)
    if session_gap_s < longest:
        raise _bad("场次间隔短于科目时长", "session gap shorter than a subject's duration")
    numbers = sorted({p.session for p in people})
    if numbers != list(range(1, len(numbers) + 1)):
        raise _bad(f"场次应从1开始连续编号（名单中有：{numbers}）", f"sessions must be 1..n, got {numbers}")
    papers: dict[int, list[tuple[dict[str, Any], list[dict[str, Any]]]]] = {}
    for n in numbers:
        codes = dict.fromkeys(c for p in people if p.session == n for c in p.subjects)
        papers[n] = [(_subject_doc(by_code[c]), list(by_code[c].questions)) for c in codes]
    candidates = [
        {
            "admission_no": p.admission_no,
            "name": p.name,
            "gender": p.gender,
            "id_type": p.id_type,
            "id_number": p.id_number,
            "session": p.session,
            "subjects": list(p.subjects),
        }
        for p in people
    ]
    return _exam(room_code, site_code, first_start, session_gap_s, mock, seed, papers, candidates)


def _subject_doc(s: SubjectSpec) -> dict[str, Any]:
    return {"code": s.code, "name": s.name, "duration_s": s.duration_s, "kind": s.kind}


def _exam(
    room_code: str,
    site_code: str,
    first_start: float,
    session_gap_s: int,
    mock: bool,
    seed: int,
    papers: dict[int, list[tuple[dict[str, Any], list[dict[str, Any]]]]],
    candidates: list[dict[str, Any]],
) -> MockExam:
    """The exam package and the session authorisations: per session, its papers sealed
    with the session's key."""
    if not (len(site_code) == 7 and site_code.isdigit()):
        raise _bad("考点代码应为7位数字", "site code must be 7 digits")
    if not (len(room_code) == 10 and room_code.isdigit() and room_code.startswith(site_code)):
        raise _bad("考场代码应为考点代码加3位数字", "room code must be the site code + 3 digits")
    site_secret = _rng(seed, "site-secret").randbytes(32)
    key_rng = _rng(seed, "paper-keys")
    session_docs: list[dict[str, Any]] = []
    authorisations: dict[int, dict] = {}
    subjects: dict[str, dict[str, Any]] = {}
    for number, session_papers in sorted(papers.items()):
        start = first_start + (number - 1) * session_gap_s
        key = key_rng.randbytes(32)
        sealed = [seal_paper(key, room_code, number, subject["code"], qs) for subject, qs in session_papers]
        subjects.update({subject["code"]: dict(subject) for subject, _ in session_papers})
        name = _SESSION_NAMES[number - 1]
        session_docs.append({"number": number, "name": name, "start": start, "papers": sealed})
        authorisations[number] = {
            "room_code": room_code,
            "session": number,
            "key": _b64(key),
            # The site publishes authorisations on the exam day only.
            "valid_from": start - 2 * 3600,
            "valid_until": start + 8 * 3600,
        }

    package = {
        "exam": {
            "name": "1+X 职业技能等级证书考核" + ("（模拟）" if mock else ""),
            "site_code": site_code,
            "site_name": "测试考点（某职业技术学院）",
            "room_code": room_code,
            "policy": {
                "login_before_s": 1800,
                "start_grace_s": 900,
                "late_login_s": 1800,
                "free_extra_s": 600,
                "earliest_submit_s": 1800,
                "countdown_s": 60,
                "mock": mock,
            },
            "site_secret": _b64(site_secret),
            "package_key": _b64(_rng(seed, f"package-key:{room_code}").randbytes(32)),
            "violation_codes": [list(v) for v in VIOLATION_CODES],
            "situation_types": list(SITUATION_TYPES),
            "staff": [dict(s) for s in STAFF],
            "requirements": {k: list(v) if isinstance(v, list) else v for k, v in REQUIREMENTS.items()},
        },
        "subjects": list(subjects.values()),
        "sessions": session_docs,
        "candidates": candidates,
    }
    return MockExam(package=package, authorisations=authorisations, site_secret=site_secret)


def split_rooms(people: Sequence[CandidateSpec], room_size: int) -> list[list[CandidateSpec]]:
    """Candidates into rooms in list order: in each session the first `room_size` sit in
    the first room, the next ones in the second, and so on."""
    if room_size < 1:
        raise _bad("每个考场的座位数至少为1", "room size must be at least 1")
    rooms: list[list[CandidateSpec]] = []
    for n in sorted({p.session for p in people}):
        for i, person in enumerate(p for p in people if p.session == n):
            if i // room_size == len(rooms):
                rooms.append([])
            rooms[i // room_size].append(person)
    return rooms


def registration_code() -> str:
    """Eight letters without I and O, read over the phone to the room."""
    return "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(8))


@dataclass(frozen=True)
class RoomFiles:
    room_code: str
    registration_code: str
    sheet: Path
    package: Path
    authorisations: dict[int, Path]

    @property
    def folder(self) -> Path:
        return self.sheet.parent


@dataclass(frozen=True)
class SitePlan:
    folder: Path
    site: Identity
    rooms: dict[str, RoomFiles]


def author_site(
    folder: Path,
    exams: Sequence[MockExam],
    *,
    site_ip: str = "127.0.0.1",
    codes: dict[str, str] | None = None,
    now: float | None = None,
) -> SitePlan:
    """Write the site plan: `site/site.key|crt` (made once, kept after), `site/plan.json`
    (site-private: registration codes, windows) and `rooms/<room>/` with the room sheet,
    the exam package and one authorisation per session, each signed by the site key.
    Whatever a room needs on its USB stick is in its folder."""
    folder = Path(folder)
    if not exams or len({e.room_code for e in exams}) != len(exams):
        raise _bad("考场为空或重复", "no rooms or duplicate room codes")
    first = exams[0].package["exam"]
    if any(e.package["exam"]["site_code"] != first["site_code"] for e in exams):
        raise _bad("所有考场应属于同一考点", "rooms of several sites")
    site = load_or_make_identity(folder / "site", "site", f"exam site {first['site_code']}")
    issued = time.time() if now is None else now
    rooms, plan_rooms = {}, []
    for exam in exams:
        room = exam.room_code
        code = (codes or {}).get(room) or registration_code()
        sessions = sorted(exam.package["sessions"], key=lambda s: s["number"])
        publish_at = sessions[0]["start"] - PUBLISH_BEFORE_S
        sheet = {
            "site_code": first["site_code"],
            "site_name": first["site_name"],
            "site_ip": site_ip,
            "room_code": room,
            "publish_at": publish_at,
            "default_login": "admin",
            "sessions": [_sheet_session(s, exam.package["candidates"]) for s in sessions],
            "issued_at": issued,
        }
        out = folder / "rooms" / room
        out.mkdir(parents=True, exist_ok=True)
        files = RoomFiles(room, code, out / "room-sheet.json", out / "exam-package.json", {})
        write_atomic(files.sheet, write_room_sheet(site, code, sheet))
        write_atomic(files.package, seal(site, EXAM_FORMAT, {**exam.package, "issued_at": issued}))
        for n, auth in sorted(exam.authorisations.items()):
            files.authorisations[n] = out / f"authorisation-{n}.json"
            write_atomic(files.authorisations[n], seal(site, AUTH_FORMAT, auth))
        rooms[room] = files
        plan_rooms.append(
            {
                "room_code": room,
                "registration_code": code,
                "sheet": str(files.sheet.relative_to(folder)),
                "exam": str(files.package.relative_to(folder)),
                "publish_at": publish_at,
                "download_until": sessions[-1]["start"],
                "sessions": [
                    {
                        "number": n,
                        "authorisation": str(files.authorisations[n].relative_to(folder)),
                        "valid_from": exam.authorisations[n]["valid_from"],
                        "valid_until": exam.authorisations[n]["valid_until"],
                    }
                    for n in sorted(exam.authorisations)
                ],
            }
        )
    plan = {
        "format": PLAN_FORMAT,
        "version": 2,
        "site_code": first["site_code"],
        "site_name": first["site_name"],
        "site_ip": site_ip,
        "site_secret": first["site_secret"],
        "rooms": plan_rooms,
    }
    write_atomic(folder / "site" / "plan.json", dump(plan))
    return SitePlan(folder, site, rooms)


def _sheet_session(session: dict[str, Any], candidates: list[dict[str, Any]]) -> dict[str, Any]:
    numbers = sorted(c["admission_no"] for c in candidates if c["session"] == session["number"])
    return {
        "number": session["number"],
        "name": session["name"],
        "start": session["start"],
        "candidates": len(numbers),
        "first_admission": numbers[0] if numbers else "",
        "last_admission": numbers[-1] if numbers else "",
    }
