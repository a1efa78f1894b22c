"""A school's own drill: the candidate list (CSV/XLSX) and the question bank (JSON/XLSX)
read into an exam package the box accepts; every bad row or question refused with its
place and reason in Chinese, and nothing written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import Workbook

from kiosk.cli import main as kiosk_main
from kiosk.common.packages import open_paper, parse_authorisation, parse_exam
from kiosk.common.signed import unverified_body
from kiosk.core.errors import Refused
from kiosk.site.inputs import read_candidate_list, read_question_bank, valid_resident_id
from kiosk.site.mock import build_exam_from, default_bank

START = 1_780_272_000.0
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def resident_id(first17: str) -> str:
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11]


ID_A, ID_B, ID_C = (
    resident_id("45010219900307101"),
    resident_id("45010319851123202"),
    resident_id("45020320010101303"),
)

BANK: dict[str, Any] = {
    "subjects": [
        {
            "code": "W01",
            "name": "网页设计理论",
            "duration_min": 60,
            "kind": "theory",
            "questions": [
                {"type": "单选", "text": "HTML 的标题标签是？", "options": ["<p>", "<h1>", "<a>"],
                 "answer": "b", "score": 2},
                {"type": "multiple", "text": "哪些是 CSS 属性？", "options": ["color", "href", "margin"],
                 "answer": "CA", "score": 3},
                {"type": "判断", "text": "HTTP 默认端口是 80。", "answer": "对", "score": 2},
                {"type": "fill", "text": "用于换行的标签是____。", "answer": "<br>", "score": 2},
            ],
        },
        {
            "code": "W02",
            "name": "网页制作实操",
            "duration_min": 90,
            "kind": "实操",
            "questions": [
                {"type": "操作题", "text": "按素材完成页面。", "score": 100,
                 "files": [{"name": "素材.txt", "content": "标题：欢迎"}]},
            ],
        },
    ]
}  # fmt: skip
CANDIDATES = (
    "准考证号,姓名,性别,证件类型,证件号码,科目,场次\n"
    f"450100000001,黄丽,女,身份证,{ID_A},W01,1\n"
    f"450100000002,韦强,男,身份证,{ID_B},W01、W02,1\n"
    f"450100000003,莫凡,M,身份证,{ID_C.lower()},W02,2\n"
)


def write(path: Path, text: str, encoding: str = "utf-8-sig") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


@pytest.fixture
def bank_file(tmp_path: Path) -> Path:
    return write(tmp_path / "bank.json", json.dumps(BANK, ensure_ascii=False), "utf-8")


def refused(fn, *args) -> Refused:
    with pytest.raises(Refused) as info:
        fn(*args)
    assert info.value.code == "bad_input" and info.value.zh and info.value.en
    return info.value


def test_a_list_and_a_bank_make_a_package_the_box_accepts(tmp_path: Path, bank_file: Path) -> None:
    bank = read_question_bank(bank_file)
    assert [s.code for s in bank] == ["W01", "W02"] and bank[1].kind == "operation"
    q = bank[0].questions
    assert [x["type"] for x in q] == ["single", "multiple", "judge", "fill"]
    assert (q[0]["answer"], q[1]["answer"], q[2]["answer"]) == ("B", ["A", "C"], True)
    people = read_candidate_list(write(tmp_path / "list.csv", CANDIDATES), {"W01", "W02"})
    assert [(p.gender, p.subjects, p.session) for p in people] == [
        ("女", ("W01",), 1), ("男", ("W01", "W02"), 1), ("男", ("W02",), 2)
    ]  # fmt: skip
    assert people[2].id_number == ID_C, "an x check character is read as X"

    exam = build_exam_from(bank, people, first_start=START)
    data = parse_exam(exam.package)
    assert [c.admission_no for c in data.candidates] == ["450100000001", "450100000002", "450100000003"]
    assert {s.code: s.duration_s for s in data.subjects} == {"W01": 3600, "W02": 5400}
    first = next(s for s in data.sessions if s.number == 1)
    assert sorted(p.subject for p in first.papers) == ["W01", "W02"]
    auth = parse_authorisation(exam.authorisations[1])
    paper = next(p for p in first.papers if p.subject == "W02")
    task = open_paper(auth.key, data.room_code, 1, paper)[0]
    assert task["files"] == [{"name": "素材.txt", "content": "标题：欢迎"}]


def test_the_bank_as_a_spreadsheet_reads_like_the_json(tmp_path: Path, bank_file: Path) -> None:
    wb = Workbook()
    ws = wb.active
    ws.append(["科目代码", "科目名称", "时长(分钟)", "科目类型", "题型", "题目", "选项", "答案", "分值"])
    for q in BANK["subjects"][0]["questions"]:
        options = "\n".join(q.get("options", []))
        first = ws.max_row == 1
        ws.append(["W01", "网页设计理论" if first else "", 60 if first else None, "theory" if first else "",
                   q["type"], q["text"], options, q["answer"], q["score"]])  # fmt: skip
    wb.save(tmp_path / "bank.xlsx")
    from_sheet = read_question_bank(tmp_path / "bank.xlsx")
    assert from_sheet == read_question_bank(bank_file)[:1]


def test_gbk_csv_from_chinese_excel_is_read(tmp_path: Path) -> None:
    people = read_candidate_list(write(tmp_path / "list.csv", CANDIDATES, "gb18030"), {"W01", "W02"})
    assert people[0].name == "黄丽"


def bank_with(change) -> dict[str, Any]:
    doc = json.loads(json.dumps(BANK))
    change(doc["subjects"])
    return doc


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda s: s[0]["questions"][0].update(answer="D"), "第 1 题"),
        (lambda s: s[0]["questions"][0].update(answer=["A", "B"]), "单选题只能有一个答案"),
        (lambda s: s[0]["questions"][1].update(answer="A"), "多选题至少有两个答案"),
        (lambda s: s[0]["questions"][2].update(answer="也许"), "判断题"),
        (lambda s: s[0]["questions"][3].update(answer=""), "填空题"),
        (lambda s: s[0]["questions"][0].update(type="essay"), "题型"),
        (lambda s: s[0]["questions"][0].update(score=True), "分值"),
        (lambda s: s[0].update(duration_min=0), "考试时长"),
        (lambda s: s[0].update(code="W 1"), "科目代码"),
        (lambda s: s[1].update(code="W01"), "科目代码重复"),
        (lambda s: s[1]["questions"][0]["files"][0].update(name="../etc/passwd"), "素材文件名"),
        (lambda s: s[1]["questions"][0].update(files=[{"name": "a"}, {"name": "a", "content": ""}]), "素材"),
        (lambda s: s[0].update(questions=[]), "应有1"),
    ],
)
def test_a_bad_question_bank_is_refused_naming_the_place(tmp_path: Path, change, says: str) -> None:
    path = write(tmp_path / "bank.json", json.dumps(bank_with(change), ensure_ascii=False), "utf-8")
    assert says in refused(read_question_bank, path).zh


@pytest.mark.parametrize(
    ("row", "says"),
    [
        (f"45010000000X,黄丽,女,身份证,{ID_A},W01,1", "准考证号"),
        (f"450100000001,黄丽,女,身份证,{ID_A},W01,1", "重复"),
        (f"450100000009,,女,身份证,{ID_A},W01,1", "姓名"),
        (f"450100000009,黄丽,未知,身份证,{ID_A},W01,1", "性别"),
        (f"450100000009,黄丽,女,身份证,{ID_A[:-1]}{'0' if ID_A[-1] != '0' else '1'},W01,1", "校验位"),
        (f"450100000009,黄丽,女,身份证,{ID_A},W09,1", "报考科目"),
        (f"450100000009,黄丽,女,身份证,{ID_A},W01,十", "不是整数"),
    ],
)
def test_a_bad_candidate_row_is_refused_with_its_row_number(tmp_path: Path, row: str, says: str) -> None:
    text = CANDIDATES + row + "\n"
    err = refused(read_candidate_list, write(tmp_path / "list.csv", text), {"W01", "W02"})
    assert "第 5 行" in err.zh and says in err.zh


@given(st.text("0123456789", min_size=6, max_size=6), st.integers(1950, 2020), st.integers(1, 12),
       st.integers(1, 28), st.text("0123456789", min_size=3, max_size=3))  # fmt: skip
def test_a_resident_id_is_valid_only_with_its_own_check_character(area, year, month, day, serial):
    number = resident_id(f"{area}{year:04d}{month:02d}{day:02d}{serial}")
    assert valid_resident_id(number)
    for other in "0123456789X":
        if other != number[-1]:
            assert not valid_resident_id(number[:-1] + other)


def test_the_cli_builds_a_drill_from_files_and_refuses_a_bad_list(
    tmp_path: Path, bank_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write(tmp_path / "list.csv", CANDIDATES)
    out = tmp_path / "usb"
    code = kiosk_main(["site", "mock", "--out", str(out), "--start", str(START),
                       "--candidates-file", str(good), "--questions-file", str(bank_file)])  # fmt: skip
    assert code == 0
    raw = (out / "rooms" / "1999999001" / "exam-package.json").read_bytes()
    package = parse_exam(unverified_body(raw, "exam-package"))
    assert len(package.candidates) == 3 and package.site_secret

    bad = write(tmp_path / "bad.csv", CANDIDATES + f"450100000001,重复,女,身份证,{ID_A},W01,1\n")
    code = kiosk_main(["site", "mock", "--out", str(tmp_path / "nothing"), "--start", str(START),
                       "--candidates-file", str(bad), "--questions-file", str(bank_file)])  # fmt: skip
    assert code == 1
    assert "第 5 行" in capsys.readouterr().err
    assert not (tmp_path / "nothing").exists(), "a refused drill writes nothing"


def test_a_list_alone_uses_the_built_in_bank(tmp_path: Path) -> None:
    codes = {s.code for s in default_bank()}
    text = CANDIDATES.replace("W01、W02", "T01").replace("W01", "T01").replace("W02", "P01")
    people = read_candidate_list(write(tmp_path / "list.csv", text), codes)
    exam = build_exam_from(default_bank(), people, first_start=START)
    assert parse_exam(exam.package).room_code == "1999999001"
