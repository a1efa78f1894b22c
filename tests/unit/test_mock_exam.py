"""The default drill exam: its shape, its determinism, its round trip through the
readers, and the atomic writing of its files."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from kiosk.common import fsutil
from kiosk.common.packages import open_paper, parse_authorisation, parse_exam
from kiosk.common.signed import read_authorisation, read_exam_package, read_room_sheet
from kiosk.core.errors import Refused
from kiosk.core.policy import Policy
from kiosk.site.mock import MockExam, author_site, build_default_exam

START = 1_750_000_000.0
GAP = 4 * 3600


@pytest.fixture(scope="module")
def exam() -> MockExam:
    return build_default_exam(first_start=START)


def papers_of(exam: MockExam) -> dict[int, list[dict[str, Any]]]:
    data = parse_exam(exam.package)
    out = {}
    for session in data.sessions:
        key = parse_authorisation(exam.authorisations[session.number]).key
        (paper,) = session.papers
        out[session.number] = open_paper(key, data.room_code, session.number, paper)
    return out


def without_ciphertexts(package: dict[str, Any]) -> dict[str, Any]:
    # Sealing draws a fresh GCM nonce every time, so only the ciphertexts may differ.
    doc = copy.deepcopy(package)
    for session in doc["sessions"]:
        for paper in session["papers"]:
            paper["nonce"] = paper["ciphertext"] = None
    return doc


def test_the_default_exam_has_two_sessions_of_forty_candidates(exam: MockExam) -> None:
    data = parse_exam(exam.package)
    assert [s.number for s in data.sessions] == [1, 2]
    assert [s.name for s in data.sessions] == ["第一场次", "第二场次"]
    per_session = [sum(c.session == n for c in data.candidates) for n in (1, 2)]
    assert per_session == [40, 40]
    assert sorted(exam.authorisations) == [1, 2]


def test_admission_numbers_are_unique_18_digit_and_laid_out_like_the_manual(
    exam: MockExam,
) -> None:
    numbers = [c["admission_no"] for c in exam.package["candidates"]]
    assert len(set(numbers)) == len(numbers) == 80
    assert all(len(n) == 18 and n.isascii() and n.isdigit() for n in numbers)
    # The manual's room sheet: room 1999999001 has 190119999990011001-…040 and …2001-…2040.
    assert numbers[0] == "190119999990011001"
    assert numbers[39] == "190119999990011040"
    assert numbers[40] == "190119999990012001"


def test_candidates_look_like_real_people(exam: MockExam) -> None:
    for c in exam.package["candidates"]:
        assert 2 <= len(c["name"]) <= 3
        assert all("\u4e00" <= ch <= "\u9fff" for ch in c["name"])
        assert c["gender"] in ("男", "女")
        assert c["id_type"] == "身份证"
        assert len(c["id_number"]) == 18


def test_id_numbers_carry_a_valid_check_character_and_the_gender(exam: MockExam) -> None:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    for c in exam.package["candidates"]:
        body, check = c["id_number"][:17], c["id_number"][17]
        assert body.isdigit()
        assert "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11] == check
        assert (int(body[16]) % 2 == 1) == (c["gender"] == "男")


def test_session_one_sits_theory_and_session_two_sits_operation(exam: MockExam) -> None:
    data = parse_exam(exam.package)
    subjects = {s.code: s for s in data.subjects}
    assert (subjects["T01"].name, subjects["T01"].duration_s, subjects["T01"].kind) == (
        "理论知识",
        90 * 60,
        "theory",
    )
    assert (subjects["P01"].name, subjects["P01"].duration_s, subjects["P01"].kind) == (
        "实操技能",
        120 * 60,
        "operation",
    )
    assert {c.subjects for c in data.candidates if c.session == 1} == {("T01",)}
    assert {c.subjects for c in data.candidates if c.session == 2} == {("P01",)}
    assert [[p.subject for p in s.papers] for s in data.sessions] == [["T01"], ["P01"]]


def test_sessions_start_a_gap_apart_and_authorisations_cover_the_exam_day(
    exam: MockExam,
) -> None:
    data = parse_exam(exam.package)
    assert [s.start for s in data.sessions] == [START, START + GAP]
    for session in data.sessions:
        auth = parse_authorisation(exam.authorisations[session.number])
        assert (auth.room_code, auth.session) == ("1999999001", session.number)
        assert auth.valid_from == session.start - 2 * 3600
        assert auth.valid_until == session.start + 8 * 3600


def test_the_exam_data_round_trips_through_the_reader(exam: MockExam) -> None:
    data = parse_exam(exam.package)
    assert data.name == "1+X 职业技能等级证书考核（模拟）"
    assert (data.site_code, data.room_code) == ("1999999", "1999999001")
    assert data.site_name == "测试考点（某职业技术学院）"
    assert data.site_secret == exam.site_secret and len(data.site_secret) == 32
    assert data.violation_codes[0] == (
        "A101",
        "携带通讯工具、规定以外的电子用品或与考试内容相关的资料进入座位，经提醒仍不改正的",
    )
    assert len(data.violation_codes) >= 7
    assert all(code[0] in "AB" and code[1:].isdigit() for code, _ in data.violation_codes)
    assert "停电或网络故障" in data.situation_types and data.situation_types[-1] == "其他"
    roles = [s["role"] for s in data.staff]
    assert roles.count("administrator") == 2 and roles.count("invigilator") == 2
    assert all(len(s["phone"]) == 11 and s["phone"].isdigit() for s in data.staff)
    assert data.requirements["min_screen"] == [1024, 768]
    assert data.requirements["required_software"] == ["Chrome"]


def test_the_policy_is_accepted_by_the_policy_rules(exam: MockExam) -> None:
    policy = Policy.from_dict(parse_exam(exam.package).policy)
    assert policy == Policy(mock=True)  # the manual's defaults, in mock mode


def test_a_real_exam_is_not_flagged_as_mock() -> None:
    real = build_default_exam(first_start=START, mock=False)
    assert real.package["exam"]["policy"]["mock"] is False
    assert "模拟" not in real.package["exam"]["name"]


def test_the_theory_paper_has_the_usual_sections_with_answer_keys(exam: MockExam) -> None:
    questions = papers_of(exam)[1]
    types = [q["type"] for q in questions]
    counts = {t: types.count(t) for t in ("single", "multiple", "judge", "fill")}
    assert counts == {"single": 20, "multiple": 10, "judge": 10, "fill": 5}
    assert [q["id"] for q in questions] == [f"q{i:02d}" for i in range(1, 46)]
    assert sum(q["score"] for q in questions) == 100
    for q in questions:
        letters = "ABCD"[: len(q.get("options", []))]
        if q["type"] == "single":
            assert q["answer"] in letters
        elif q["type"] == "multiple":
            assert len(q["answer"]) >= 2 and set(q["answer"]) <= set(letters)
        elif q["type"] == "judge":
            assert isinstance(q["answer"], bool)
        else:
            assert isinstance(q["answer"], str) and q["answer"]


def test_the_operation_paper_has_three_tasks_with_files(exam: MockExam) -> None:
    tasks = papers_of(exam)[2]
    assert len(tasks) == 3
    assert {t["type"] for t in tasks} == {"operation"}
    for task in tasks:
        assert task["text"] and task["files"]
        assert all(f["name"] and isinstance(f["content"], str) for f in task["files"])


def test_the_same_seed_builds_the_same_exam(exam: MockExam) -> None:
    again = build_default_exam(first_start=START)
    assert without_ciphertexts(again.package) == without_ciphertexts(exam.package)
    assert again.authorisations == exam.authorisations
    assert again.site_secret == exam.site_secret
    assert papers_of(again) == papers_of(exam)


def test_another_seed_builds_other_people_and_other_keys(exam: MockExam) -> None:
    other = build_default_exam(first_start=START, seed=2)
    assert other.site_secret != exam.site_secret
    assert other.authorisations[1]["key"] != exam.authorisations[1]["key"]
    names = [c["name"] for c in exam.package["candidates"]]
    assert [c["name"] for c in other.package["candidates"]] != names


def test_other_sizes_and_rooms_are_built_consistently() -> None:
    small = build_default_exam(
        room_code="1450301007",
        site_code="1450301",
        first_start=START,
        candidates_per_session=3,
        sessions=3,
    )
    data = parse_exam(small.package)
    assert [c.admission_no for c in data.candidates][:4] == [
        "190714503010071001",
        "190714503010071002",
        "190714503010071003",
        "190714503010072001",
    ]
    assert [s.start for s in data.sessions] == [START, START + GAP, START + 2 * GAP]
    assert [s.papers[0].subject for s in data.sessions] == ["T01", "P01", "T01"]
    assert len(papers_of(small)) == 3


@pytest.mark.parametrize(
    "kwargs",
    [
        {"room_code": "1999998001"},  # not in the site
        {"room_code": "199999900"},
        {"site_code": "199999"},
        {"sessions": 0},
        {"sessions": 10},
        {"candidates_per_session": 1000},
        {"session_gap_s": 3600},  # shorter than the operation paper
    ],
)
def test_impossible_exam_parameters_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(Refused) as info:
        build_default_exam(first_start=START, **kwargs)
    assert info.value.code == "mock_invalid"


def test_the_site_plan_holds_per_room_files_the_box_reads_once_the_sheet_is_pinned(
    exam: MockExam, tmp_path: Path
) -> None:
    second = build_default_exam(room_code="1999999002", first_start=START)
    plan = author_site(tmp_path / "site", [exam, second], site_ip="10.0.0.2", now=START - 86400)
    assert sorted(plan.rooms) == ["1999999001", "1999999002"]
    room = plan.rooms["1999999001"]
    assert sorted(p.name for p in room.folder.iterdir()) == [
        "authorisation-1.json", "authorisation-2.json", "exam-package.json", "room-sheet.json"
    ]  # fmt: skip
    sheet = read_room_sheet(room.sheet.read_bytes(), room.registration_code, "1999999001")
    assert sheet.site_fingerprint == plan.site.fingerprint and sheet.site_ip == "10.0.0.2"
    assert [s["candidates"] for s in sheet.sessions] == [40, 40]
    data = read_exam_package(room.package.read_bytes(), sheet.site_cert_pem)
    for n in (1, 2):
        auth = read_authorisation(room.authorisations[n].read_bytes(), sheet.site_cert_pem)
        assert open_paper(auth.key, data.room_code, n, data.sessions[n - 1].papers[0])
    other = plan.rooms["1999999002"]
    assert other.registration_code != room.registration_code
    with pytest.raises(Refused) as info:
        read_room_sheet(other.sheet.read_bytes(), room.registration_code, "1999999002")
    assert info.value.code == "registration_code_wrong", "each room has its own registration code"
    private = json.loads((tmp_path / "site" / "site" / "plan.json").read_text("utf-8"))
    assert [r["registration_code"] for r in private["rooms"]] == [
        room.registration_code,
        other.registration_code,
    ]


def test_authoring_again_keeps_the_site_key(exam: MockExam, tmp_path: Path) -> None:
    first = author_site(tmp_path, [exam])
    again = author_site(tmp_path, [build_default_exam(first_start=START, seed=2)])
    assert again.site.fingerprint == first.site.fingerprint
    assert not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob(".*"))


def test_a_failed_write_keeps_the_old_file_whole(
    exam: MockExam, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = author_site(tmp_path, [build_default_exam(first_start=START, seed=2)]).rooms["1999999001"]
    before = old.package.read_bytes()

    def fail_replace(src: object, dst: object) -> None:
        raise OSError("disk pulled out")

    monkeypatch.setattr(fsutil.os, "replace", fail_replace)
    with pytest.raises(OSError, match="disk pulled out"):
        author_site(tmp_path, [exam])
    assert old.package.read_bytes() == before


def test_the_default_drill_is_one_site_with_two_rooms_of_forty(tmp_path: Path, capsys) -> None:
    from kiosk.cli import main as kiosk_main

    assert kiosk_main(["site", "mock", "--out", str(tmp_path), "--start", str(START)]) == 0
    out = capsys.readouterr().out
    plan = json.loads((tmp_path / "site" / "plan.json").read_text("utf-8"))
    assert [r["room_code"] for r in plan["rooms"]] == ["1999999001", "1999999002"]
    for r in plan["rooms"]:
        assert f"考场 {r['room_code']}  注册码 {r['registration_code']}" in out
        sheet = read_room_sheet((tmp_path / r["sheet"]).read_bytes(), r["registration_code"], r["room_code"])
        assert [s["candidates"] for s in sheet.sessions] == [40, 40]
        assert r["publish_at"] < START and r["download_until"] == START + 4 * 3600  # the last session
    assert kiosk_main(["site", "mock", "--out", str(tmp_path / "x"), "--rooms", "0"]) == 1
    assert "考场" in capsys.readouterr().err and not (tmp_path / "x").exists()
