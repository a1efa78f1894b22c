"""Which actions each candidate state allows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from kiosk.core.candidate import (
    STATE_ZH,
    CandidateState,
    CandidateView,
    Flags,
    RoomPhase,
    after_absent,
    after_begin,
    after_login,
    after_resume,
    after_submit,
    check_absent,
    check_begin,
    check_extra_time,
    check_lock,
    check_login,
    check_reexam,
    check_resume,
    check_submit_candidate,
    check_violation,
    transition_after_reexam,
)
from kiosk.core.errors import Refused
from kiosk.core.policy import Policy

S = CandidateState
START = 1_750_000_000.0
P = Policy()
WAITING = RoomPhase(login_allowed=True, actual_start=None, policy=P)
CLOSED = RoomPhase(login_allowed=False, actual_start=None, policy=P)
STARTED = RoomPhase(login_allowed=True, actual_start=START, policy=P)
MOCK_STARTED = RoomPhase(login_allowed=True, actual_start=START, policy=Policy(mock=True))
PAST_LATE = START + 1801
ONLINE = Flags(online=True)


def view(state: S, **kw) -> CandidateView:
    return CandidateView(state=state, **kw)


def refused_code(fn: Callable[..., object], *args: object) -> str:
    with pytest.raises(Refused) as info:
        fn(*args)
    assert info.value.zh and info.value.en
    return info.value.code


def test_every_state_has_a_chinese_name():
    assert {s: STATE_ZH[s] for s in S} == {
        S.NOT_LOGGED_IN: "未登录",
        S.LOGGED_IN: "已登录",
        S.IN_EXAM: "考试中",
        S.SUBMITTED: "已交卷",
        S.ABSENT: "缺考",
    }


# --- login -----------------------------------------------------------------------------


def test_a_new_candidate_logs_in_once_login_is_allowed():
    c = view(S.NOT_LOGGED_IN)
    check_login(c, WAITING, START - 600)
    assert after_login(c, WAITING).state is S.LOGGED_IN


def test_login_is_refused_before_the_room_allows_it():
    assert refused_code(check_login, view(S.NOT_LOGGED_IN), CLOSED, START) == "login_not_allowed"


def test_a_late_candidate_may_log_in_up_to_the_late_login_limit():
    check_login(view(S.NOT_LOGGED_IN), STARTED, START + 1800)


def test_a_candidate_past_the_late_login_limit_is_refused():
    assert refused_code(check_login, view(S.NOT_LOGGED_IN), STARTED, PAST_LATE) == "late_login"


def test_a_candidate_past_the_limit_with_a_granted_resume_may_log_in():
    c = view(S.NOT_LOGGED_IN, resume_pending=True)
    check_login(c, STARTED, PAST_LATE)
    after = after_login(after_resume(view(S.NOT_LOGGED_IN)), STARTED)
    assert after.state is S.IN_EXAM
    assert not after.resume_pending
    assert after.flags.resumed


@pytest.mark.parametrize("state", [S.LOGGED_IN, S.IN_EXAM])
def test_a_second_login_is_refused_without_a_resume(state):
    assert refused_code(check_login, view(state), STARTED, START + 10) == "already_logged_in"


def test_a_resumed_candidate_in_the_exam_logs_in_again_and_goes_straight_on():
    c = after_resume(view(S.IN_EXAM, flags=ONLINE))
    check_login(c, STARTED, START + 4000)
    after = after_login(c, STARTED)
    assert after.state is S.IN_EXAM
    assert after.flags.resumed
    assert not after.resume_pending


def test_a_resume_is_used_up_by_one_login():
    c = after_login(after_resume(view(S.IN_EXAM)), STARTED)
    assert refused_code(check_login, c, STARTED, START + 4000) == "already_logged_in"


def test_a_resume_before_the_start_leaves_the_candidate_logged_in():
    c = after_resume(view(S.LOGGED_IN))
    check_login(c, WAITING, START - 100)
    assert after_login(c, WAITING).state is S.LOGGED_IN


@pytest.mark.parametrize(("state", "code"), [(S.SUBMITTED, "already_submitted"), (S.ABSENT, "absent")])
def test_submitted_and_absent_candidates_cannot_log_in_even_with_a_resume(state, code):
    assert refused_code(check_login, view(state, resume_pending=True), STARTED, START) == code


# --- begin ("我已阅读") ------------------------------------------------------------------


def test_a_logged_in_candidate_begins_once_the_exam_has_started():
    c = view(S.LOGGED_IN)
    check_begin(c, STARTED, START)
    assert after_begin(c).state is S.IN_EXAM


def test_begin_is_refused_during_the_countdown_and_before_the_start():
    assert refused_code(check_begin, view(S.LOGGED_IN), STARTED, START - 1) == "not_started"
    assert refused_code(check_begin, view(S.LOGGED_IN), WAITING, START) == "not_started"


def test_begin_is_refused_for_a_candidate_who_is_not_logged_in():
    assert refused_code(check_begin, view(S.NOT_LOGGED_IN), STARTED, START) == "not_logged_in"


# --- break-resume ----------------------------------------------------------------------


@pytest.mark.parametrize("state", [S.NOT_LOGGED_IN, S.LOGGED_IN, S.IN_EXAM])
def test_resume_is_allowed_without_a_code_inside_the_late_login_limit(state):
    assert check_resume(view(state), STARTED, START + 600) is False


def test_a_late_candidate_past_the_limit_needs_a_code_to_resume():
    assert check_resume(view(S.NOT_LOGGED_IN), STARTED, PAST_LATE) is True


def test_a_candidate_already_writing_needs_no_code_to_resume_after_the_limit():
    assert check_resume(view(S.IN_EXAM), STARTED, PAST_LATE) is False
    assert check_resume(view(S.LOGGED_IN), STARTED, PAST_LATE) is False


def test_in_mock_mode_a_late_candidate_resumes_without_a_code():
    assert check_resume(view(S.NOT_LOGGED_IN), MOCK_STARTED, PAST_LATE) is False


def test_resume_is_refused_before_login_is_allowed():
    assert refused_code(check_resume, view(S.LOGGED_IN), CLOSED, START) == "login_not_allowed"


@pytest.mark.parametrize(("state", "code"), [(S.SUBMITTED, "already_submitted"), (S.ABSENT, "absent")])
def test_resume_is_refused_for_submitted_and_absent_candidates(state, code):
    assert refused_code(check_resume, view(state), STARTED, START + 60) == code


# --- extra time and lock ---------------------------------------------------------------


def test_extra_time_is_allowed_for_an_online_candidate_in_the_exam():
    check_extra_time(view(S.IN_EXAM, flags=ONLINE), STARTED)


def test_extra_time_is_refused_for_an_offline_candidate():
    assert refused_code(check_extra_time, view(S.IN_EXAM), STARTED) == "offline"


@pytest.mark.parametrize("state", [S.NOT_LOGGED_IN, S.LOGGED_IN, S.SUBMITTED, S.ABSENT])
def test_extra_time_is_refused_outside_the_exam(state):
    assert refused_code(check_extra_time, view(state, flags=ONLINE), STARTED) == "not_in_exam"


def test_lock_needs_an_online_candidate_in_the_exam():
    check_lock(view(S.IN_EXAM, flags=ONLINE))
    assert refused_code(check_lock, view(S.IN_EXAM)) == "offline"
    assert refused_code(check_lock, view(S.LOGGED_IN, flags=ONLINE)) == "not_in_exam"


# --- absence ---------------------------------------------------------------------------


def test_a_candidate_who_never_logged_in_is_registered_absent_after_the_limit():
    c = view(S.NOT_LOGGED_IN)
    check_absent(c, STARTED, START + 1800)
    assert after_absent(c).state is S.ABSENT


def test_absence_is_refused_before_the_late_login_limit():
    assert refused_code(check_absent, view(S.NOT_LOGGED_IN), STARTED, START) == "absence_too_early"


@pytest.mark.parametrize("state", [S.LOGGED_IN, S.IN_EXAM, S.SUBMITTED, S.ABSENT])
def test_absence_is_refused_for_anyone_who_logged_in(state):
    assert refused_code(check_absent, view(state), STARTED, PAST_LATE) == "not_absent_candidate"


# --- violations and re-exam ------------------------------------------------------------


@pytest.mark.parametrize("state", [S.LOGGED_IN, S.IN_EXAM, S.SUBMITTED])
def test_a_violation_can_be_registered_for_a_present_candidate(state):
    check_violation(view(state))


@pytest.mark.parametrize("state", [S.NOT_LOGGED_IN, S.ABSENT])
def test_a_violation_is_refused_for_a_candidate_who_is_not_present(state):
    assert refused_code(check_violation, view(state)) == "not_present"


@pytest.mark.parametrize("state", [S.LOGGED_IN, S.IN_EXAM, S.SUBMITTED])
def test_a_present_candidate_can_be_reset_for_a_re_exam(state):
    check_reexam(view(state))


def test_re_exam_is_refused_for_a_candidate_with_nothing_to_reset_or_absent():
    assert refused_code(check_reexam, view(S.NOT_LOGGED_IN)) == "nothing_to_reset"
    assert refused_code(check_reexam, view(S.ABSENT)) == "absent"


def test_after_a_re_exam_the_candidate_is_not_logged_in_and_unlocked_with_history_kept():
    flags = Flags(violation=True, resumed=True, extra_time=True, locked=True, online=True)
    after = transition_after_reexam(view(S.SUBMITTED, flags=flags))
    assert after.state is S.NOT_LOGGED_IN
    assert after.flags == replace(flags, locked=False)


def test_after_a_re_exam_the_candidate_may_log_in_past_the_late_login_limit():
    after = transition_after_reexam(view(S.SUBMITTED))
    assert refused_code(check_login, view(S.NOT_LOGGED_IN), STARTED, PAST_LATE) == "late_login"
    check_login(after, STARTED, PAST_LATE)
    assert after_login(after, STARTED).state is S.IN_EXAM


# --- submit ----------------------------------------------------------------------------


def test_a_candidate_in_the_exam_submits_after_the_earliest_time():
    c = view(S.IN_EXAM, flags=ONLINE)
    check_submit_candidate(c, STARTED, START + 1800)
    assert after_submit(c).state is S.SUBMITTED


def test_submit_is_refused_too_early_in_normal_mode_but_not_in_mock_mode():
    c = view(S.IN_EXAM)
    assert refused_code(check_submit_candidate, c, STARTED, START + 60) == "too_early_submit"
    check_submit_candidate(c, MOCK_STARTED, START + 60)


@pytest.mark.parametrize(
    ("state", "code"),
    [
        (S.NOT_LOGGED_IN, "not_in_exam"),
        (S.LOGGED_IN, "not_in_exam"),
        (S.SUBMITTED, "already_submitted"),
        (S.ABSENT, "absent"),
    ],
)
def test_submit_is_refused_for_anyone_not_in_the_exam(state, code):
    assert refused_code(check_submit_candidate, view(state), STARTED, START + 4000) == code
