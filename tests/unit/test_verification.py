"""The after-exam verification table (上报结果)."""

from __future__ import annotations

from dataclasses import replace

from kiosk.core.candidate import CandidateState
from kiosk.core.verification import (
    CandidateFacts,
    PackageState,
    VerificationTotals,
    verification_table,
)

S = CandidateState
SUBMITTED = CandidateFacts(
    seq=1,
    admission_no="190319999990031001",
    name="张100",
    state=S.SUBMITTED,
    answered=40,
    questions=40,
    package=PackageState.VALID,
    collected=True,
    violation=False,
    extra_time=False,
)
ABSENT = replace(
    SUBMITTED,
    seq=2,
    admission_no="190319999990031002",
    state=S.ABSENT,
    answered=0,
    package=PackageState.NONE,
    collected=False,
)


def test_a_clean_room_has_no_problems_and_everyone_collected():
    table = verification_table([SUBMITTED, ABSENT])
    assert table.ok
    assert [r.problem_zh for r in table.rows] == ["", ""]
    assert table.totals == VerificationTotals(
        total=2,
        sat=1,
        absent=1,
        collected=2,
        not_collected=0,
        extra_time=0,
        violations=0,
        problems=0,
    )


def test_rows_are_ordered_by_sequence_number():
    later = replace(SUBMITTED, seq=7, admission_no="x7")
    table = verification_table([later, ABSENT, SUBMITTED])
    assert [r.seq for r in table.rows] == [1, 2, 7]


def test_a_row_shows_chinese_state_and_package():
    row = verification_table([SUBMITTED]).rows[0]
    assert (row.state_zh, row.package_zh, row.progress_pct, row.collected) == (
        "已交卷",
        "有效",
        100,
        True,
    )


def test_an_absent_candidate_has_no_progress_and_counts_as_collected():
    row = verification_table([ABSENT]).rows[0]
    assert row.progress_pct is None
    assert row.collected


def test_progress_rounds_down_so_almost_done_is_not_shown_as_done():
    row = verification_table([replace(SUBMITTED, answered=199, questions=200)]).rows[0]
    assert row.progress_pct == 99


def test_progress_of_an_empty_paper_is_zero_and_never_above_100():
    rows = verification_table([replace(SUBMITTED, questions=0), replace(SUBMITTED, seq=3, answered=41)]).rows
    assert [r.progress_pct for r in rows] == [0, 100]


def test_a_submitted_candidate_with_a_damaged_package_is_a_problem_and_not_collected():
    table = verification_table([replace(SUBMITTED, package=PackageState.DAMAGED)])
    row = table.rows[0]
    assert "已交卷但作答包损坏" in row.problem_zh
    assert not row.collected
    assert not table.ok
    assert table.totals.not_collected == 1


def test_a_submitted_candidate_without_a_package_is_a_problem():
    row = verification_table([replace(SUBMITTED, package=PackageState.NONE)]).rows[0]
    assert "已交卷但无作答包" in row.problem_zh


def test_a_candidate_neither_submitted_nor_absent_is_a_problem():
    facts = replace(SUBMITTED, state=S.NOT_LOGGED_IN, package=PackageState.NONE, collected=False)
    row = verification_table([facts]).rows[0]
    assert row.problem_zh == "未交卷也未登记缺考"
    assert row.progress_pct is None


def test_a_candidate_still_in_the_exam_is_a_problem_with_progress_shown():
    facts = replace(SUBMITTED, state=S.IN_EXAM, answered=10, collected=False)
    row = verification_table([facts]).rows[0]
    assert row.problem_zh == "考试中未交卷"
    assert row.progress_pct == 25


def test_an_absent_candidate_with_answers_is_a_problem():
    row = verification_table([replace(ABSENT, package=PackageState.VALID)]).rows[0]
    assert "已登记缺考却有作答包" in row.problem_zh


def test_a_record_claiming_collection_without_a_valid_package_is_a_problem():
    facts = replace(SUBMITTED, package=PackageState.DAMAGED, collected=True)
    row = verification_table([facts]).rows[0]
    assert "记录为已回收但无有效作答包" in row.problem_zh


def test_totals_count_violations_extra_time_and_problems():
    facts = [
        replace(SUBMITTED, violation=True),
        replace(SUBMITTED, seq=2, extra_time=True),
        replace(SUBMITTED, seq=3, state=S.LOGGED_IN, collected=False, extra_time=True),
        replace(ABSENT, seq=4),
    ]
    totals = verification_table(facts).totals
    assert (totals.sat, totals.absent, totals.violations, totals.extra_time) == (3, 1, 1, 2)
    assert (totals.collected, totals.not_collected, totals.problems) == (3, 1, 1)


def test_an_empty_room_is_ok_and_all_zero():
    table = verification_table([])
    assert table.ok
    assert table.rows == ()
    assert table.totals.total == 0
