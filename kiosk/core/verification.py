"""The after-exam verification table (上报结果): one row per candidate, totals, and problems."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from kiosk.core.candidate import STATE_ZH, CandidateState


class PackageState(StrEnum):
    VALID = "valid"
    NONE = "none"
    DAMAGED = "damaged"


PACKAGE_ZH: dict[PackageState, str] = {
    PackageState.VALID: "有效",
    PackageState.NONE: "无",
    PackageState.DAMAGED: "损坏",
}

_S = CandidateState
_SAT = frozenset({_S.LOGGED_IN, _S.IN_EXAM, _S.SUBMITTED})


@dataclass(frozen=True)
class CandidateFacts:
    seq: int
    admission_no: str
    name: str
    state: CandidateState
    answered: int
    questions: int
    package: PackageState
    collected: bool  # as recorded by the box; the row's value is recomputed from state and package
    violation: bool
    extra_time: bool


@dataclass(frozen=True)
class VerificationRow:
    seq: int
    admission_no: str
    name: str
    state_zh: str
    progress_pct: int | None  # None when the candidate never sat (absent, not logged in)
    package_zh: str
    collected: bool
    violation: bool
    problem_zh: str  # "" when fine


@dataclass(frozen=True)
class VerificationTotals:
    total: int
    sat: int  # logged in, in the exam or submitted
    absent: int
    collected: int
    not_collected: int
    extra_time: int
    violations: int
    problems: int


@dataclass(frozen=True)
class VerificationTable:
    rows: tuple[VerificationRow, ...]
    totals: VerificationTotals
    ok: bool  # no row has a problem


def is_collected(state: CandidateState, package: PackageState) -> bool:
    """已回收: submitted with a valid package, or absent (there is nothing to collect)."""
    return (state is _S.SUBMITTED and package is PackageState.VALID) or state is _S.ABSENT


def progress_pct(state: CandidateState, answered: int, questions: int) -> int | None:
    if state not in _SAT:
        return None
    if questions <= 0:
        return 0
    # Rounded down and clamped: 99.6 % must not read as 100 % (all answered).
    return max(0, min(100, answered * 100 // questions))


def _problems(f: CandidateFacts) -> list[str]:
    problems: list[str] = []
    if f.state is _S.NOT_LOGGED_IN:
        problems.append("未交卷也未登记缺考")
    elif f.state is _S.LOGGED_IN:
        problems.append("已登录但未交卷")
    elif f.state is _S.IN_EXAM:
        problems.append("考试中未交卷")
    elif f.state is _S.SUBMITTED:
        if f.package is PackageState.DAMAGED:
            problems.append("已交卷但作答包损坏")
        elif f.package is PackageState.NONE:
            problems.append("已交卷但无作答包")
    elif f.state is _S.ABSENT and f.package is not PackageState.NONE:
        # An absent candidate with answers means the records disagree; someone must look.
        problems.append("已登记缺考却有作答包")
    if f.collected and not is_collected(f.state, f.package):
        # Only this direction matters: a record claiming answers are safe when they are not.
        problems.append("记录为已回收但无有效作答包")
    return problems


def verification_table(facts: Iterable[CandidateFacts]) -> VerificationTable:
    ordered = sorted(facts, key=lambda f: (f.seq, f.admission_no))
    rows: list[VerificationRow] = []
    for f in ordered:
        rows.append(
            VerificationRow(
                seq=f.seq,
                admission_no=f.admission_no,
                name=f.name,
                state_zh=STATE_ZH[f.state],
                progress_pct=progress_pct(f.state, f.answered, f.questions),
                package_zh=PACKAGE_ZH[f.package],
                collected=is_collected(f.state, f.package),
                violation=f.violation,
                problem_zh="；".join(_problems(f)),
            )
        )
    collected = sum(1 for r in rows if r.collected)
    problems = sum(1 for r in rows if r.problem_zh)
    totals = VerificationTotals(
        total=len(rows),
        sat=sum(1 for f in ordered if f.state in _SAT),
        absent=sum(1 for f in ordered if f.state is _S.ABSENT),
        collected=collected,
        not_collected=len(rows) - collected,
        extra_time=sum(1 for f in ordered if f.extra_time),
        violations=sum(1 for f in ordered if f.violation),
        problems=problems,
    )
    return VerificationTable(rows=tuple(rows), totals=totals, ok=problems == 0)
