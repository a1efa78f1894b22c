"""The answer app's rules as pure functions over plain data (no Kivy, no I/O, `now`
passed in): the paper and its questions as the box sends them, what counts as an
answer, which step of the candidate journey to show, the remaining time and its
warnings, and the save status line."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

QUESTION_TYPES = ("single", "multiple", "judge", "fill", "operation")
TYPE_ZH = {
    "single": "单选题",
    "multiple": "多选题",
    "judge": "判断题",
    "fill": "填空题",
    "operation": "操作题",
}
LETTERS = "ABCDEFGHIJ"
MAX_FILL = 500  # characters of a fill-in answer
WARN_AT_S = (15 * 60, 5 * 60)  # the candidate is warned once as the remaining time crosses these
# The journey's client events, in order (the box accepts exactly these: docs/network.md).
JOURNEY_EVENTS = ("login_confirmed", "agreement", "paper_drawn", "rules_read")


class PaperError(ValueError):
    """The box sent a paper the app cannot show (it never should: the box checked it)."""


@dataclass(frozen=True)
class Question:
    subject: str
    id: str
    type: str
    text: str
    options: tuple[str, ...] = ()
    files: tuple[tuple[str, str], ...] = ()  # operation material: (name, text)
    score: float = 0

    @property
    def key(self) -> tuple[str, str]:
        return (self.subject, self.id)


@dataclass(frozen=True)
class Subject:
    code: str
    name: str
    duration_s: int
    questions: tuple[Question, ...]


def parse_paper(view: Mapping[str, Any]) -> tuple[Subject, ...]:
    """The subjects and their questions from the box's login answer, checked field by
    field: a paper is untrusted input like any other."""
    papers = view.get("papers")
    details = view.get("subjects_detail")
    if not isinstance(papers, dict) or not isinstance(details, list):
        raise PaperError("no papers in the box's answer")
    out = []
    for d in details:
        if not isinstance(d, dict) or not isinstance(d.get("code"), str):
            raise PaperError(f"bad subject {d!r}")
        code = d["code"]
        questions = papers.get(code)
        if not isinstance(questions, list):
            continue  # not authorised yet: no paper for this subject
        out.append(
            Subject(
                code=code,
                name=str(d.get("name") or code),
                duration_s=_int(d.get("duration_s"), "duration_s"),
                questions=tuple(_question(code, q) for q in questions),
            )
        )
    return tuple(out)


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise PaperError(f"bad {what}: {value!r}")
    return value


def _question(subject: str, q: Any) -> Question:
    if not isinstance(q, dict):
        raise PaperError(f"bad question {q!r}")
    qid, qtype, text = q.get("id"), q.get("type"), q.get("text")
    if not isinstance(qid, str) or not qid or qtype not in QUESTION_TYPES or not isinstance(text, str):
        raise PaperError(f"bad question {qid!r}")
    options = q.get("options") or []
    if qtype in ("single", "multiple") and (
        not isinstance(options, list)
        or not 2 <= len(options) <= len(LETTERS)
        or not all(isinstance(o, str) for o in options)
    ):
        raise PaperError(f"question {qid}: bad options")
    files = q.get("files") or []
    if not isinstance(files, list) or not all(
        isinstance(f, dict) and isinstance(f.get("name"), str) and isinstance(f.get("content"), str)
        for f in files
    ):
        raise PaperError(f"question {qid}: bad files")
    score = q.get("score", 0)
    return Question(
        subject=subject,
        id=qid,
        type=qtype,
        text=text,
        options=tuple(options) if qtype in ("single", "multiple") else (),
        files=tuple((f["name"], f["content"]) for f in files),
        score=score if isinstance(score, int | float) and not isinstance(score, bool) else 0,
    )


# -- answers ----------------------------------------------------------------------------


def normalise(q: Question, value: Any) -> Any:
    """The stored form of an answer, or None for "no answer" (cleared). Raises
    ValueError for a value the question cannot take."""
    if value is None:
        return None
    if q.type == "single":
        if value not in LETTERS[: len(q.options)]:
            raise ValueError(f"{q.id}: {value!r} is not an option")
        return value
    if q.type == "multiple":
        letters = LETTERS[: len(q.options)]
        if not isinstance(value, list | tuple | set) or not all(v in letters for v in value):
            raise ValueError(f"{q.id}: {value!r} are not options")
        chosen = sorted(set(value))
        return chosen or None
    if q.type == "judge":
        if not isinstance(value, bool):
            raise ValueError(f"{q.id}: {value!r} is not true/false")
        return value
    if q.type == "fill":
        if not isinstance(value, str):
            raise ValueError(f"{q.id}: {value!r} is not text")
        text = value.strip()[:MAX_FILL]
        return text or None
    # operation: the listing of the candidate's work folder
    if not isinstance(value, dict) or not isinstance(value.get("files"), list):
        raise ValueError(f"{q.id}: {value!r} is not a work listing")
    return value if value["files"] else None


def is_answered(q: Question, value: Any) -> bool:
    try:
        return normalise(q, value) is not None
    except ValueError:
        return False


def toggle(chosen: Iterable[str], letter: str) -> list[str]:
    """A multiple-choice tap: the letter in or out."""
    s = set(chosen)
    s.symmetric_difference_update({letter})
    return sorted(s)


class Mark(enum.StrEnum):
    UNANSWERED = "unanswered"
    ANSWERED = "answered"
    FLAGGED = "flagged"


def grid(
    questions: Iterable[Question], answers: Mapping[tuple[str, str], Any], flagged: Iterable[tuple[str, str]]
) -> list[tuple[Question, Mark]]:
    """The question grid: flagged wins over answered (the candidate wants to come back)."""
    flags = set(flagged)
    return [
        (
            q,
            Mark.FLAGGED
            if q.key in flags
            else Mark.ANSWERED
            if is_answered(q, answers.get(q.key))
            else Mark.UNANSWERED,
        )
        for q in questions
    ]


def counts(marks: Iterable[tuple[Question, Mark]], answers: Mapping[tuple[str, str], Any]) -> dict[str, int]:
    rows = list(marks)
    answered = sum(1 for q, _ in rows if is_answered(q, answers.get(q.key)))
    return {
        "total": len(rows),
        "answered": answered,
        "unanswered": len(rows) - answered,
        "flagged": sum(1 for _, m in rows if m is Mark.FLAGGED),
    }


# -- work folders (operation tasks) -----------------------------------------------------

_BAD_NAME = re.compile(r'[\\/:*?"<>|\x00-\x1f]')


def safe_file_name(name: str) -> bool:
    """A name a work file may have in an answer package (docs/formats.md)."""
    return 0 < len(name) <= 128 and not _BAD_NAME.search(name) and name not in (".", "..")


# -- the journey -------------------------------------------------------------------------


class Step(enum.StrEnum):
    WAITING = "waiting"  # seat number and box time; login not allowed yet
    LOGIN = "login"
    CONFIRM = "confirm"  # identity
    AGREEMENT = "agreement"  # 考试协议
    DRAW = "draw"  # 抽卷
    RULES = "rules"  # 考场规则 + 我已阅读
    COUNTDOWN = "countdown"
    ANSWERING = "answering"
    SUBMITTED = "submitted"


@dataclass
class Progress:
    """What this candidate has done on the client, from the journal's events and the
    box's answers: it survives a crash of the app and a resume on another PC."""

    admission_no: str = ""
    view: dict[str, Any] = field(default_factory=dict)  # the box's login answer
    done: set[str] = field(default_factory=set)  # JOURNEY_EVENTS recorded
    submitted: bool = False


def step(daemon: Mapping[str, Any], progress: Progress, box_now: float) -> Step:
    """The screen the candidate sees, from the daemon's state (what the box said) and
    the candidate's progress. A resumed candidate whose exam is running goes straight
    from the identity check to the paper."""
    logged_in = bool(daemon.get("admission_no")) and daemon.get("admission_no") == progress.admission_no
    if not logged_in or not progress.view:
        return Step.LOGIN if daemon.get("login_allowed") else Step.WAITING
    if progress.submitted or progress.view.get("state") == "submitted":
        return Step.SUBMITTED
    if "login_confirmed" not in progress.done:
        return Step.CONFIRM
    writing = progress.view.get("state") == "in_exam"
    if not writing:
        for event, s in (
            ("agreement", Step.AGREEMENT),
            ("paper_drawn", Step.DRAW),
            ("rules_read", Step.RULES),
        ):
            if event not in progress.done:
                return s
    start = daemon.get("exam_start")
    if not writing and (not isinstance(start, int | float) or box_now < start):
        return Step.COUNTDOWN
    return Step.ANSWERING


def remaining_s(daemon: Mapping[str, Any], progress: Progress, box_now: float) -> float | None:
    """Seconds left for this candidate by the box's deadline (extra time included): the
    latest one the box sent (an extra-time grant), else the one in its answer to the
    login or the start, else the start plus the longest subject; None before the start."""
    deadline = daemon.get("deadline")
    if not _num(deadline) or daemon.get("deadline_for") not in ("", progress.admission_no):
        deadline = progress.view.get("deadline")
    if not _num(deadline):
        start, durations = daemon.get("exam_start"), [d.get("duration_s") for d in _details(progress.view)]
        if not _num(start) or not durations or not all(_num(x) for x in durations):
            return None
        deadline = start + max(durations)
    return max(0.0, deadline - box_now)


def _num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _details(view: Mapping[str, Any]) -> list[dict[str, Any]]:
    details = view.get("subjects_detail")
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def warnings_crossed(before: float | None, after: float | None) -> list[int]:
    """The warning thresholds passed between two readings of the remaining time (a jump
    over both, after a restart, warns once for the nearer one only)."""
    if before is None or after is None or after >= before:
        return []
    crossed = [w for w in WARN_AT_S if after <= w < before]
    return crossed[-1:]


def earliest_submit(view: Mapping[str, Any], daemon: Mapping[str, Any]) -> float | None:
    """When the candidate may hand in (the box's earliest-submission rule); None before
    the exam has started. The box checks it again: this only greys the button."""
    start, after = daemon.get("exam_start"), view.get("earliest_submit_s")
    if isinstance(start, int | float) and isinstance(after, int | float):
        return float(start + after)
    return None


def clock_text(seconds: float) -> str:
    s = max(0, int(seconds + 0.999))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def save_status(pending: bool, saved_seq: int, acked_upto: int) -> str:
    """The save line: "已保存" only after the journal commit, "已同步" only after the box's
    acknowledgement of everything saved."""
    if pending:
        return "保存中…"
    if saved_seq == 0:
        return ""
    return "已同步" if acked_upto >= saved_seq else "已保存"
