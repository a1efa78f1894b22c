"""The answer app's pure rules: papers from the box checked, answers normalised, the
journey's step, the remaining time and its warnings, the save line."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stu_client import core

VIEW: dict[str, Any] = {
    "state": "logged_in",
    "subjects_detail": [{"code": "T01", "name": "理论知识", "duration_s": 5400}],
    "papers": {
        "T01": [
            {"id": "q01", "type": "single", "text": "单选", "options": ["甲", "乙", "丙"], "score": 2},
            {"id": "q02", "type": "multiple", "text": "多选", "options": ["甲", "乙", "丙", "丁"]},
            {"id": "q03", "type": "judge", "text": "判断"},
            {"id": "q04", "type": "fill", "text": "填空"},
            {
                "id": "q05",
                "type": "operation",
                "text": "操作",
                "files": [{"name": "a.html", "content": "<p>"}],
            },
        ]
    },
}


def paper() -> list[core.Question]:
    return list(core.parse_paper(VIEW)[0].questions)


def test_a_paper_from_the_box_is_read_with_its_types_options_and_files() -> None:
    qs = paper()
    assert [q.type for q in qs] == ["single", "multiple", "judge", "fill", "operation"]
    assert qs[0].options == ("甲", "乙", "丙") and qs[0].score == 2
    assert qs[4].files == (("a.html", "<p>"),)


@pytest.mark.parametrize(
    "bad",
    [
        {"id": "q", "type": "essay", "text": "x"},
        {"id": "q", "type": "single", "text": "x", "options": ["only one"]},
        {"id": "q", "type": "single", "text": "x", "options": ["a", 2]},
        {"id": "", "type": "judge", "text": "x"},
        {"id": "q", "type": "operation", "text": "x", "files": [{"name": "a"}]},
        "not a question",
    ],
)
def test_a_malformed_question_is_refused(bad: Any) -> None:
    view = {**VIEW, "papers": {"T01": [bad]}}
    with pytest.raises(core.PaperError):
        core.parse_paper(view)


def test_a_subject_without_a_paper_yet_is_left_out() -> None:
    assert core.parse_paper({**VIEW, "papers": {}}) == ()


def test_answers_are_normalised_by_type_and_nonsense_is_refused() -> None:
    single, multiple, judge, fill, operation = paper()
    assert core.normalise(single, "B") == "B"
    assert core.normalise(multiple, ["C", "A", "C"]) == ["A", "C"]
    assert core.normalise(multiple, []) is None
    assert core.normalise(judge, False) is False
    assert core.normalise(fill, "  答案 ") == "答案" and core.normalise(fill, "   ") is None
    assert core.normalise(operation, {"files": []}) is None
    for q, value in ((single, "D"), (multiple, ["E"]), (judge, "true"), (fill, 3), (operation, ["x"])):
        with pytest.raises(ValueError):
            core.normalise(q, value)


def test_the_grid_marks_flagged_over_answered_and_counts() -> None:
    qs = paper()
    answers = {qs[0].key: "A", qs[1].key: ["B"]}
    marks = core.grid(qs, answers, [qs[1].key])
    assert [m for _, m in marks] == ["answered", "flagged", "unanswered", "unanswered", "unanswered"]
    assert core.counts(marks, answers) == {"total": 5, "answered": 2, "unanswered": 3, "flagged": 1}


def progress(done: set[str], state: str = "logged_in") -> core.Progress:
    return core.Progress(admission_no="19001", view={**VIEW, "state": state}, done=done)


def test_the_journey_goes_step_by_step_and_waits_for_the_start() -> None:
    d: dict[str, Any] = {"admission_no": "19001", "login_allowed": True, "exam_start": 1000.0}
    order = ["login_confirmed", "agreement", "paper_drawn", "rules_read"]
    steps = [core.step(d, progress(set(order[:i])), 900) for i in range(5)]
    assert steps == [
        core.Step.CONFIRM,
        core.Step.AGREEMENT,
        core.Step.DRAW,
        core.Step.RULES,
        core.Step.COUNTDOWN,
    ]
    assert core.step(d, progress(set(order)), 1000) is core.Step.ANSWERING
    assert core.step({"login_allowed": False}, core.Progress(), 0) is core.Step.WAITING
    assert core.step({"login_allowed": True}, core.Progress(), 0) is core.Step.LOGIN


def test_a_resumed_candidate_goes_from_the_identity_check_to_the_paper() -> None:
    d = {"admission_no": "19001", "exam_start": 1000.0}
    assert core.step(d, progress(set(), "in_exam"), 2000) is core.Step.CONFIRM
    assert core.step(d, progress({"login_confirmed"}, "in_exam"), 2000) is core.Step.ANSWERING


def test_a_candidate_the_box_logged_out_is_back_at_the_login() -> None:
    d = {"admission_no": "", "login_allowed": True, "logout_reason": "断点续考"}
    assert core.step(d, progress(set(core.JOURNEY_EVENTS), "in_exam"), 2000) is core.Step.LOGIN


def test_the_latest_deadline_from_the_box_wins() -> None:
    p = progress(set(), "in_exam")
    p.view["deadline"] = 6400.0
    assert core.remaining_s({"exam_start": 1000.0}, p, 2000) == 4400
    granted = {"exam_start": 1000.0, "deadline": 6700.0, "deadline_for": "19001"}
    assert core.remaining_s(granted, p, 2000) == 4700
    someone_else = {**granted, "deadline_for": "19002"}
    assert core.remaining_s(someone_else, p, 2000) == 4400
    del p.view["deadline"]
    assert core.remaining_s({"exam_start": 1000.0}, p, 2000) == 1000 + 5400 - 2000
    assert core.remaining_s({}, p, 2000) is None


@given(st.lists(st.floats(min_value=0, max_value=3 * 3600, allow_nan=False), min_size=2, max_size=40))
def test_each_warning_comes_once_however_the_clock_is_read(readings: list[float]) -> None:
    remaining = sorted(readings, reverse=True)  # time only goes down between grants
    warned = [w for a, b in itertools.pairwise(remaining) for w in core.warnings_crossed(a, b)]
    assert len(warned) == len(set(warned))
    assert all(remaining[-1] <= w < remaining[0] for w in warned)


def test_the_save_line_says_saved_only_after_the_commit_and_synced_after_the_ack() -> None:
    assert core.save_status(pending=True, saved_seq=3, acked_upto=3) == "保存中…"
    assert core.save_status(pending=False, saved_seq=4, acked_upto=3) == "已保存"
    assert core.save_status(pending=False, saved_seq=4, acked_upto=4) == "已同步"
    assert core.save_status(pending=False, saved_seq=0, acked_upto=0) == ""


def test_work_file_names_that_could_escape_or_break_a_package_are_refused() -> None:
    assert core.safe_file_name("index.html") and core.safe_file_name("作品 1.docx")
    for bad in ("", ".", "..", "a/b", "a\\b", "x" * 129, "a:b", "a\x00"):
        assert not core.safe_file_name(bad)
