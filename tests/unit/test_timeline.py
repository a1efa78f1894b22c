"""Exam timing rules and the policy numbers they read."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kiosk.core.candidate import CandidateState
from kiosk.core.errors import Refused
from kiosk.core.policy import Policy
from kiosk.core.timeline import (
    candidate_deadline,
    check_absence_allowed,
    check_allow_login,
    check_allow_start,
    check_collect,
    check_end_exam,
    check_submit,
    earliest_submit_time,
    exam_start_time,
    format_duration_zh,
    late_login_deadline,
    login_window_opens,
    offline_seconds,
    remaining_seconds,
    start_needs_code,
)

T0 = 1_750_000_000.0  # scheduled start
P = Policy()
MOCK = Policy(mock=True)


def refused_code(fn: Callable[..., object], *args: object) -> str:
    with pytest.raises(Refused) as info:
        fn(*args)
    assert info.value.zh and info.value.en
    return info.value.code


# --- policy ---------------------------------------------------------------------------


def test_policy_defaults_are_the_manuals_numbers():
    assert Policy().to_dict() == {
        "login_before_s": 1800,
        "start_grace_s": 900,
        "late_login_s": 1800,
        "free_extra_s": 600,
        "earliest_submit_s": 1800,
        "countdown_s": 60,
        "mock": False,
    }


def test_policy_round_trips_through_a_dict():
    p = Policy(login_before_s=600, free_extra_s=0, mock=True)
    assert Policy.from_dict(p.to_dict()) == p


def test_policy_from_a_partial_dict_takes_defaults_for_the_rest():
    assert Policy.from_dict({"late_login_s": 900}) == Policy(late_login_s=900)


@pytest.mark.parametrize(
    "bad",
    [
        {"late_login_s": -1},
        {"late_login_s": 1.5},
        {"late_login_s": "1800"},
        {"late_login_s": True},
        {"mock": 1},
        {"mock": "yes"},
        {"late_login": 1800},
    ],
)
def test_policy_refuses_negative_fractional_textual_boolean_or_unknown_values(bad):
    assert refused_code(Policy.from_dict, bad) == "bad_policy"


def test_policy_refuses_something_that_is_not_an_object():
    assert refused_code(Policy.from_dict, [1, 2]) == "bad_policy"


def test_policy_refusal_names_the_unknown_key():
    with pytest.raises(Refused) as info:
        Policy.from_dict({"lateLogin": 5})
    assert "lateLogin" in info.value.zh


def test_a_policy_cannot_be_built_with_a_negative_window_directly():
    with pytest.raises(Refused):
        Policy(countdown_s=-5)


# --- login and start windows -----------------------------------------------------------


def test_login_window_opens_login_before_s_ahead_of_the_scheduled_start():
    assert login_window_opens(T0, P) == T0 - 1800


def test_allow_login_is_refused_one_second_before_the_window_opens():
    assert refused_code(check_allow_login, T0 - 1801, T0, P) == "too_early_login"


def test_allow_login_is_accepted_when_the_window_opens_and_later():
    check_allow_login(T0 - 1800, T0, P)
    check_allow_login(T0 + 5000, T0, P)


def test_the_too_early_message_says_how_long_to_wait():
    with pytest.raises(Refused) as info:
        check_allow_login(T0 - 1800 - 125, T0, P)
    assert "2 分 5 秒" in info.value.zh


def test_start_needs_no_code_up_to_the_grace_and_a_code_after_it():
    assert not start_needs_code(T0 + 900, T0, P)
    assert start_needs_code(T0 + 900.5, T0, P)


def test_allow_start_is_refused_before_login_is_allowed():
    assert refused_code(check_allow_start, T0, T0, P, False) == "login_not_allowed"


def test_allow_start_is_refused_before_the_window_opens():
    assert refused_code(check_allow_start, T0 - 1900, T0, P, True) == "too_early_start"


def test_allow_start_is_accepted_inside_the_window():
    check_allow_start(T0 - 600, T0, P, True)


def test_an_early_allow_start_still_starts_the_exam_at_the_scheduled_time():
    assert exam_start_time(T0 - 600, T0, P) == T0


def test_a_late_allow_start_starts_after_the_full_countdown():
    assert exam_start_time(T0 + 100, T0, P) == T0 + 160


def test_late_login_and_earliest_submit_are_measured_from_the_actual_start():
    assert late_login_deadline(T0 + 160, P) == T0 + 160 + 1800
    assert earliest_submit_time(T0 + 160, P) == T0 + 160 + 1800


# --- submit and collect ----------------------------------------------------------------


def test_submit_is_refused_before_the_exam_starts():
    assert refused_code(check_submit, T0, None, P) == "not_started"


def test_submit_is_refused_during_the_countdown():
    assert refused_code(check_submit, T0 - 10, T0, P) == "not_started"


def test_submit_is_refused_until_the_earliest_submission_time():
    assert refused_code(check_submit, T0 + 1799, T0, P) == "too_early_submit"
    check_submit(T0 + 1800, T0, P)


def test_in_mock_mode_a_candidate_may_submit_right_after_the_start():
    check_submit(T0 + 1, T0, MOCK)


def test_single_machine_collection_follows_the_earliest_submission_time():
    assert refused_code(check_collect, T0 + 60, T0, P) == "too_early_collect"
    assert refused_code(check_collect, T0, None, P) == "not_started"
    check_collect(T0 + 1800, T0, P)
    check_collect(T0 + 60, T0, MOCK)


# --- remaining time --------------------------------------------------------------------


def test_before_the_start_the_full_time_remains():
    assert remaining_seconds(T0 - 500, None, 5400, 120) == 5520
    assert remaining_seconds(T0 - 500, T0, 5400, 120) == 5520


def test_remaining_counts_down_in_whole_seconds_rounded_down():
    assert remaining_seconds(T0 + 0.5, T0, 5400, 0) == 5399
    assert remaining_seconds(T0 + 100, T0, 5400, 0) == 5300


def test_extra_time_moves_the_deadline():
    assert candidate_deadline(T0, 5400, 300) == T0 + 5700
    assert remaining_seconds(T0 + 5400, T0, 5400, 300) == 300


def test_remaining_is_never_negative():
    assert remaining_seconds(T0 + 99_999, T0, 5400, 0) == 0


# --- absence and end of exam -----------------------------------------------------------


def test_absence_is_refused_before_the_start():
    assert refused_code(check_absence_allowed, T0, None, P) == "not_started"


def test_absence_is_refused_until_the_late_login_limit():
    assert refused_code(check_absence_allowed, T0 + 1799, T0, P) == "absence_too_early"
    check_absence_allowed(T0 + 1800, T0, P)


def test_end_exam_is_allowed_when_everyone_submitted_or_is_absent():
    check_end_exam([CandidateState.SUBMITTED, CandidateState.ABSENT])


def test_end_exam_refusal_says_how_many_are_still_writing():
    states = [
        CandidateState.SUBMITTED,
        CandidateState.IN_EXAM,
        CandidateState.NOT_LOGGED_IN,
        CandidateState.LOGGED_IN,
    ]
    with pytest.raises(Refused) as info:
        check_end_exam(states)
    assert info.value.code == "candidates_still_writing"
    assert "3 名" in info.value.zh


# --- offline time ----------------------------------------------------------------------


def test_closed_intervals_are_summed():
    assert offline_seconds([(10, 20), (30, 35)], now=100) == 15


def test_an_open_interval_runs_until_now():
    assert offline_seconds([(90, None)], now=100) == 10


def test_overlapping_intervals_are_not_counted_twice():
    assert offline_seconds([(10, 30), (20, 40), (25, 26)], now=100) == 30


def test_offline_time_is_clipped_to_the_window():
    assert offline_seconds([(0, 50), (80, None)], now=100, since=40, until=90) == 20


def test_intervals_outside_the_window_or_backwards_count_nothing():
    assert offline_seconds([(0, 5), (50, 40), (200, 300)], now=100, since=10) == 0


def test_durations_read_in_hours_minutes_and_seconds():
    assert format_duration_zh(3725) == "1 小时 2 分 5 秒"
    assert format_duration_zh(0.2) == "1 秒"
    assert format_duration_zh(0) == "0 秒"
