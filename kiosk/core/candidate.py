"""Candidate states and which invigilator and candidate actions each state allows."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from kiosk.core import timeline
from kiosk.core.errors import Refused
from kiosk.core.policy import Policy


class CandidateState(StrEnum):
    NOT_LOGGED_IN = "not_logged_in"
    LOGGED_IN = "logged_in"
    IN_EXAM = "in_exam"
    SUBMITTED = "submitted"
    ABSENT = "absent"


STATE_ZH: dict[CandidateState, str] = {
    CandidateState.NOT_LOGGED_IN: "未登录",
    CandidateState.LOGGED_IN: "已登录",
    CandidateState.IN_EXAM: "考试中",
    CandidateState.SUBMITTED: "已交卷",
    CandidateState.ABSENT: "缺考",
}


@dataclass(frozen=True)
class Flags:
    violation: bool = False
    resumed: bool = False
    extra_time: bool = False
    locked: bool = False
    online: bool = False


@dataclass(frozen=True)
class CandidateView:
    state: CandidateState
    flags: Flags = Flags()
    resume_pending: bool = False  # a break-resume was granted and not yet used by a login


@dataclass(frozen=True)
class RoomPhase:
    login_allowed: bool
    actual_start: float | None  # None = not started (no start time fixed yet)
    policy: Policy


_S = CandidateState


def _already_submitted() -> Refused:
    return Refused("already_submitted", "该考生已交卷", "the candidate has already submitted")


def _absent() -> Refused:
    return Refused("absent", "该考生已登记缺考", "the candidate is registered absent")


def _login_not_allowed() -> Refused:
    return Refused("login_not_allowed", "考场尚未允许登录", "login has not been allowed yet")


def _not_in_exam(c: CandidateView) -> Refused:
    return Refused(
        "not_in_exam",
        f"只能对考试中的考生操作，该考生状态为「{STATE_ZH[c.state]}」",
        f"only a candidate in the exam qualifies; this one is {c.state.value}",
    )


def _refuse_finished(c: CandidateView) -> None:
    if c.state is _S.SUBMITTED:
        raise _already_submitted()
    if c.state is _S.ABSENT:
        raise _absent()


def check_login(c: CandidateView, room: RoomPhase, now: float) -> None:
    _refuse_finished(c)
    if c.state in (_S.LOGGED_IN, _S.IN_EXAM) and not c.resume_pending:
        # Two live sessions for one candidate would let two people answer one paper.
        raise Refused(
            "already_logged_in",
            "该考生已在其他考试机登录；如需换机，请先办理断点续考",
            "the candidate is already logged in elsewhere; a break-resume is needed to move",
        )
    if not room.login_allowed:
        raise _login_not_allowed()
    if (
        c.state is _S.NOT_LOGGED_IN
        and not c.resume_pending
        and room.actual_start is not None
        and now > timeline.late_login_deadline(room.actual_start, room.policy)
    ):
        raise Refused(
            "late_login",
            "已超过迟到限制时间，不能登录；如确需参加考试，请办理断点续考",
            "past the late-login limit; only a break-resume can let the candidate in",
        )


def after_login(c: CandidateView, room: RoomPhase) -> CandidateView:
    """The state after a login that check_login allowed.

    A resume after the start skips the reading step: the candidate already confirmed the
    rules, or (a late candidate) was let in by the invigilator to write at once.
    """
    if c.resume_pending and room.actual_start is not None:
        return replace(c, state=_S.IN_EXAM, resume_pending=False)
    if c.state is _S.IN_EXAM:
        return replace(c, resume_pending=False)
    return replace(c, state=_S.LOGGED_IN, resume_pending=False)


def check_begin(c: CandidateView, room: RoomPhase, now: float) -> None:
    """The candidate taps 我已阅读: LOGGED_IN -> IN_EXAM, only once the exam has started."""
    _refuse_finished(c)
    if c.state is _S.NOT_LOGGED_IN:
        raise Refused("not_logged_in", "该考生尚未登录", "the candidate has not logged in")
    if c.state is _S.IN_EXAM:
        raise Refused("already_in_exam", "该考生已在考试中", "the candidate is already writing")
    if room.actual_start is None or now < room.actual_start:
        raise Refused("not_started", "考试尚未开始", "the exam has not started")


def after_begin(c: CandidateView) -> CandidateView:
    return replace(c, state=_S.IN_EXAM)


def check_resume(c: CandidateView, room: RoomPhase, now: float) -> bool:
    """May a break-resume (断点续考) be granted? Returns True when a late-candidate code is needed.

    The code is needed only for a candidate who never logged in and is past the late-login
    limit; in mock mode nobody needs one.
    """
    _refuse_finished(c)
    if not room.login_allowed:
        raise _login_not_allowed()
    return (
        c.state is _S.NOT_LOGGED_IN
        and not room.policy.mock
        and room.actual_start is not None
        and now > timeline.late_login_deadline(room.actual_start, room.policy)
    )


def after_resume(c: CandidateView) -> CandidateView:
    """Grant a break-resume: the next login on any PC is allowed once."""
    return replace(c, resume_pending=True, flags=replace(c.flags, resumed=True))


def check_extra_time(c: CandidateView, room: RoomPhase) -> None:
    if c.state is not _S.IN_EXAM:
        raise _not_in_exam(c)
    if not c.flags.online:
        # Extra time must reach the client at once, or its countdown and the box disagree.
        raise Refused("offline", "该考生考试机离线，不能补时", "the candidate's PC is offline")


def after_extra_time(c: CandidateView) -> CandidateView:
    return replace(c, flags=replace(c.flags, extra_time=True))


def check_lock(c: CandidateView) -> None:
    if c.state is not _S.IN_EXAM:
        raise _not_in_exam(c)
    if not c.flags.online:
        raise Refused("offline", "该考生考试机离线，不能锁屏", "the candidate's PC is offline")


def check_absent(c: CandidateView, room: RoomPhase, now: float) -> None:
    if c.state is not _S.NOT_LOGGED_IN:
        raise Refused(
            "not_absent_candidate",
            f"只有未登录的考生才能登记缺考，该考生状态为「{STATE_ZH[c.state]}」",
            f"only a candidate who never logged in can be registered absent; this one is {c.state.value}",
        )
    timeline.check_absence_allowed(now, room.actual_start, room.policy)


def after_absent(c: CandidateView) -> CandidateView:
    return replace(c, state=_S.ABSENT, resume_pending=False)


def check_violation(c: CandidateView) -> None:
    if c.state in (_S.NOT_LOGGED_IN, _S.ABSENT):
        raise Refused(
            "not_present",
            f"该考生状态为「{STATE_ZH[c.state]}」，未参加考试，不能登记违纪",
            f"the candidate is {c.state.value} and not present; no violation can be registered",
        )


def check_reexam(c: CandidateView) -> None:
    if c.state is _S.NOT_LOGGED_IN:
        raise Refused(
            "nothing_to_reset",
            "该考生尚未登录，无需初始化",
            "the candidate never logged in; there is nothing to reset",
        )
    if c.state is _S.ABSENT:
        raise _absent()


def transition_after_reexam(c: CandidateView) -> CandidateView:
    """Back to 未登录, and the next login is let in as after a break-resume (the manual:
    初始化成功后……考生可登录进行作答, whatever the late-login limit): the re-exam code
    was the authorisation. The history flags stay for the record, the lock goes."""
    return replace(c, state=_S.NOT_LOGGED_IN, resume_pending=True, flags=replace(c.flags, locked=False))


def check_submit_candidate(c: CandidateView, room: RoomPhase, now: float) -> None:
    _refuse_finished(c)
    if c.state is not _S.IN_EXAM:
        raise _not_in_exam(c)
    timeline.check_submit(now, room.actual_start, room.policy)


def after_submit(c: CandidateView) -> CandidateView:
    return replace(c, state=_S.SUBMITTED, resume_pending=False, flags=replace(c.flags, locked=False))
