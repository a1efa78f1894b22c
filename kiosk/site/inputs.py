"""What a school gives `kiosk site mock` to author its own drill: a candidate list (CSV or
XLSX) and a question bank (JSON, or XLSX for the objective questions). Both come from a
USB stick or a teacher's spreadsheet and are untrusted: every way they can be wrong ends
in Refused("bad_input") naming the file, the row or question and the reason in Chinese,
before anything is written."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.core.errors import Refused
from kiosk.services.documents import read_table

MAX_BANK_BYTES = 32 * 1024 * 1024
MAX_QUESTIONS = 500
MAX_TEXT = 2000
MAX_FILE_BYTES = 1024 * 1024
MAX_CANDIDATES = 9999

_TYPE_NAMES = {
    "single": ("单选", "单选题"),
    "multiple": ("多选", "多选题"),
    "judge": ("判断", "判断题"),
    "fill": ("填空", "填空题"),
    "operation": ("操作", "操作题"),
}
TYPES = {name: t for t, names in _TYPE_NAMES.items() for name in (t, *names)}
KINDS = {"theory": "theory", "理论": "theory", "operation": "operation", "实操": "operation"}
_TRUE, _FALSE = {"true", "对", "正确", "√", "t", "y", "yes"}, {"false", "错", "错误", "×", "f", "n", "no"}
_CODE = re.compile(r"[A-Za-z0-9]{1,16}")
_FILE_NAME = re.compile(r"[^\\/:*?\"<>|\x00-\x1f]{1,64}")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


@dataclass(frozen=True)
class SubjectSpec:
    code: str
    name: str
    duration_s: int
    kind: str
    questions: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class CandidateSpec:
    admission_no: str
    name: str
    gender: str
    id_type: str
    id_number: str
    subjects: tuple[str, ...]
    session: int


def _bad(where: str, zh: str, en: str) -> Refused:
    return Refused("bad_input", f"{where}：{zh}", f"{where}: {en}")


# -- question bank ---------------------------------------------------------------------


def read_question_bank(path: str | Path) -> list[SubjectSpec]:
    source = Path(path)
    suffix = source.suffix.lower()
    if suffix == ".json":
        try:
            raw = source.read_bytes()[: MAX_BANK_BYTES + 1]
        except OSError as exc:
            raise _bad(source.name, "无法读取文件", str(exc)) from exc
        if len(raw) > MAX_BANK_BYTES:
            raise _bad(source.name, "题库文件过大", "question bank too large")
        try:
            doc = json.loads(raw.decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: "[[[[…"
            raise _bad(source.name, "不是 UTF-8 编码的 JSON 文件", f"not UTF-8 JSON: {exc}") from exc
        subjects = doc.get("subjects") if isinstance(doc, dict) else None
        if not isinstance(subjects, list) or not subjects:
            raise _bad(source.name, "应有 subjects 科目列表", "no subjects list")
        bank = [_subject(s, f"{source.name} 第 {i} 个科目") for i, s in enumerate(subjects, 1)]
    elif suffix == ".xlsx":
        bank = _bank_from_table(source)
    else:
        raise _bad(source.name, "题库应为 .json 或 .xlsx 文件", f"unsupported bank format {suffix!r}")
    codes = [s.code for s in bank]
    if len(set(codes)) != len(codes):
        raise _bad(source.name, "科目代码重复", "duplicate subject codes")
    return bank


def _subject(s: Any, where: str) -> SubjectSpec:
    if not isinstance(s, dict):
        raise _bad(where, "格式错误", "subject must be an object")
    code, name = str(s.get("code", "")).strip(), str(s.get("name", "")).strip()
    if not _CODE.fullmatch(code):
        raise _bad(where, "科目代码应为1–16位字母或数字", f"bad subject code {code!r}")
    if not 0 < len(name) <= 64:
        raise _bad(where, "科目名称不能为空", "subject name missing")
    minutes = s.get("duration_min")
    if type(minutes) is not int or not 1 <= minutes <= 600:
        raise _bad(where, "考试时长应为1–600分钟的整数", f"bad duration {minutes!r}")
    kind = KINDS.get(str(s.get("kind", "")).strip())
    if kind is None:
        raise _bad(where, "科目类型应为 theory（理论）或 operation（实操）", f"bad kind {s.get('kind')!r}")
    questions = s.get("questions")
    if not isinstance(questions, list) or not 0 < len(questions) <= MAX_QUESTIONS:
        raise _bad(where, f"应有1–{MAX_QUESTIONS}道题", "questions must be a non-empty list")
    checked = tuple(_question(q, f"{where}（{code}）第 {i} 题", i) for i, q in enumerate(questions, 1))
    return SubjectSpec(code, name, minutes * 60, kind, checked)


def _question(q: Any, where: str, number: int) -> dict[str, Any]:
    if not isinstance(q, dict):
        raise _bad(where, "格式错误", "question must be an object")
    qtype = TYPES.get(str(q.get("type", "")).strip())
    if qtype is None:
        raise _bad(where, "题型应为单选、多选、判断、填空或操作", f"bad type {q.get('type')!r}")
    text = str(q.get("text", "")).strip()
    if not 0 < len(text) <= MAX_TEXT:
        raise _bad(where, f"题目内容不能为空，且不超过{MAX_TEXT}字", "bad text")
    score = q.get("score")
    if type(score) is not int or not 1 <= score <= 100:
        raise _bad(where, "分值应为1–100的整数", f"bad score {score!r}")
    out: dict[str, Any] = {"id": f"q{number:02d}", "type": qtype, "text": text, "score": score}
    if qtype in ("single", "multiple"):
        options = q.get("options")
        if not isinstance(options, list) or not 2 <= len(options) <= 8:
            raise _bad(where, "选择题应有2–8个选项", "options must be a list of 2..8")
        out["options"] = [str(o).strip()[:MAX_TEXT] for o in options]
        letters = "ABCDEFGH"[: len(options)]
        answer = q.get("answer")
        picked = [str(a).strip().upper() for a in (answer if isinstance(answer, list) else [answer])]
        picked = [p for part in picked for p in (list(part) if qtype == "multiple" else [part])]
        if not picked or any(p not in letters for p in picked) or len(set(picked)) != len(picked):
            raise _bad(where, f"答案应为选项字母（{letters[0]}–{letters[-1]}）", f"bad answer {answer!r}")
        if qtype == "single" and len(picked) != 1:
            raise _bad(where, "单选题只能有一个答案", "single choice needs one answer")
        if qtype == "multiple" and len(picked) < 2:
            raise _bad(where, "多选题至少有两个答案", "multiple choice needs two answers or more")
        out["answer"] = picked[0] if qtype == "single" else sorted(picked)
    elif qtype == "judge":
        answer = q.get("answer")
        word = str(answer).strip().lower()
        if answer is True or word in _TRUE:
            out["answer"] = True
        elif answer is False or word in _FALSE:
            out["answer"] = False
        else:
            raise _bad(where, "判断题答案应为“对”或“错”", f"bad answer {answer!r}")
    elif qtype == "fill":
        answer = str(q.get("answer", "")).strip()
        if not 0 < len(answer) <= 200:
            raise _bad(where, "填空题应有答案（不超过200字）", "fill-in answer missing")
        out["answer"] = answer
    else:
        out["files"] = _files(q.get("files", []), where)
    return out


def _files(files: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(files, list) or len(files) > 20:
        raise _bad(where, "操作题素材文件应为列表（最多20个）", "files must be a list of at most 20")
    out = []
    for f in files:
        name = str(f.get("name", "")) if isinstance(f, dict) else ""
        content = f.get("content") if isinstance(f, dict) else None
        if not _FILE_NAME.fullmatch(name) or name in (".", ".."):
            raise _bad(where, f"素材文件名“{name}”无效", f"bad file name {name!r}")
        if not isinstance(content, str) or len(content.encode()) > MAX_FILE_BYTES:
            raise _bad(where, f"素材文件“{name}”内容应为不超过1 MB的文本", f"bad content of {name!r}")
        out.append({"name": name, "content": content})
    if len({f["name"] for f in out}) != len(out):
        raise _bad(where, "素材文件名重复", "duplicate file names")
    return out


_BANK_COLUMNS = {
    "code": ("科目代码", "subject_code"),
    "type": ("题型", "type"),
    "name": ("科目名称", "subject_name"),
    "minutes": ("时长(分钟)", "时长（分钟）", "时长", "duration_min"),
    "kind": ("科目类型", "kind"),
    "text": ("题目", "text"),
    "options": ("选项", "options"),
    "answer": ("答案", "answer"),
    "score": ("分值", "score"),
}


def _bank_from_table(source: Path) -> list[SubjectSpec]:
    """One question a row; options one a line (or separated by |); the subject's name,
    duration and kind on its first row. Operation tasks with files need the JSON form."""
    rows = read_table(source, _BANK_COLUMNS, max_rows=MAX_QUESTIONS * 10)
    subjects: dict[str, dict[str, Any]] = {}
    for i, r in enumerate(rows, 2):
        code = r["code"]
        s = subjects.setdefault(code, {"code": code, "questions": []})
        for key, field in (("name", "name"), ("minutes", "duration_min"), ("kind", "kind")):
            if r[key] and field not in s:
                s[field] = _int(r[key], f"{source.name} 第 {i} 行") if key == "minutes" else r[key]
        s["questions"].append(
            {
                "type": r["type"],
                "text": r["text"],
                "options": [o.strip() for o in re.split(r"[\n|]", r["options"]) if o.strip()],
                "answer": r["answer"],
                "score": _int(r["score"], f"{source.name} 第 {i} 行"),
            }
        )
    if not subjects:
        raise _bad(source.name, "题库是空的", "empty question bank")
    return [_subject(s, f"{source.name} 科目 {code}") for code, s in subjects.items()]


def _int(text: str, where: str) -> int:
    try:
        return int(text)
    except ValueError as exc:
        raise _bad(where, f"“{text}”不是整数", f"not an integer: {text!r}") from exc


# -- candidate list ----------------------------------------------------------------------

_CANDIDATE_COLUMNS = {
    "admission_no": ("准考证号", "admission_no"),
    "name": ("姓名", "name"),
    "gender": ("性别", "gender"),
    "id_type": ("证件类型", "id_type"),
    "id_number": ("证件号码", "身份证号", "id_number"),
    "subjects": ("科目", "报考科目", "subjects"),
    "session": ("场次", "session"),
}


def read_candidate_list(path: str | Path, subjects: set[str]) -> list[CandidateSpec]:
    """The candidates, each sitting the listed subjects (codes of the question bank) in
    its session (场次, default 1)."""
    source = Path(path)
    rows = read_table(source, _CANDIDATE_COLUMNS, max_rows=MAX_CANDIDATES)
    if not rows:
        raise _bad(source.name, "考生名单是空的", "no candidates")
    out, seen = [], set()
    for i, r in enumerate(rows, 2):
        where = f"{source.name} 第 {i} 行"
        no = r["admission_no"]
        if not (no.isascii() and no.isdigit() and 6 <= len(no) <= 20):
            raise _bad(where, f"准考证号“{no}”应为6–20位数字", f"bad admission number {no!r}")
        if no in seen:
            raise _bad(where, f"准考证号 {no} 重复", f"duplicate admission number {no}")
        seen.add(no)
        if not 0 < len(r["name"]) <= 32:
            raise _bad(where, "姓名不能为空（最多32字）", "bad name")
        gender = {"m": "男", "male": "男", "f": "女", "female": "女"}.get(r["gender"].lower(), r["gender"])
        if gender not in ("男", "女"):
            raise _bad(where, "性别应为“男”或“女”", f"bad gender {r['gender']!r}")
        id_type = r["id_type"] or "身份证"
        id_number = r["id_number"].upper()
        if id_type == "身份证" and not valid_resident_id(id_number):
            raise _bad(where, f"身份证号码“{id_number}”无效（18位，校验位不符）", "bad resident id number")
        if not 0 < len(id_number) <= 32:
            raise _bad(where, "证件号码不能为空", "id number missing")
        listed = tuple(dict.fromkeys(c for c in re.split(r"[,，;；、\s]+", r["subjects"]) if c))
        unknown = [c for c in listed if c not in subjects]
        if not listed or unknown:
            raise _bad(
                where,
                f"报考科目应为题库中的科目代码（{'、'.join(sorted(subjects))}）",
                f"unknown subjects {unknown or listed!r}",
            )
        session = _int(r["session"], where) if r["session"] else 1
        if not 1 <= session <= 9:
            raise _bad(where, "场次应为1–9", f"bad session {session}")
        out.append(CandidateSpec(no, r["name"], gender, id_type, id_number, listed, session))
    return out


def valid_resident_id(number: str) -> bool:
    """A mainland resident identity card number (GB 11643-1999): 17 digits, a check
    character (0–9 or X) from the weighted sum, and a plausible birth date."""
    if not re.fullmatch(r"\d{17}[\dX]", number):
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    if "10X98765432"[total % 11] != number[17]:
        return False
    year, month, day = int(number[6:10]), int(number[10:12]), int(number[12:14])
    return 1900 <= year <= 2100 and 1 <= month <= 12 and 1 <= day <= 31
