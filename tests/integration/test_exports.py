"""Documents and exports through the room service (issue 2, item 6): every list the
officer takes away is written as XLSX and as CSV, read back with openpyxl / csv and
compared with the service's own data; seat lists go out and come back in, both ways."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from openpyxl import load_workbook

from kiosk.services.bootstrap import build
from kiosk.services.documents import fmt_time
from kiosk.services.ports import Ports
from kiosk.settings import load
from tests.conftest import ROOM, T0
from tests.integration.test_exam_session import candidates, refused, seat_ips

START = T0 + 3600
FORMATS = ("xlsx", "csv")


def read_back(path: str | Path) -> list[list[str]]:
    """An exported table as rows of text: what a spreadsheet shows the officer."""
    path = Path(path)
    if path.suffix == ".xlsx":
        wb = load_workbook(path)
        try:
            return [
                ["" if v is None else str(v) for v in row] for row in wb.active.iter_rows(values_only=True)
            ]
        finally:
            wb.close()
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.reader(fh))


def export_both(room, kind: str, folder: Path, admission_no: str = "") -> dict[str, list[list[str]]]:
    """The same list as .xlsx and .csv; both files must hold the same header and rows."""
    out = {}
    for ext in FORMATS:
        result = room.export_list(kind, str(folder / f"{kind}.{ext}"), admission_no)
        assert Path(result["path"]).suffix == f".{ext}"
        rows = read_back(result["path"])
        assert result["rows"] == len(rows) - 1, "the header, then one row per record"
        out[ext] = rows
    assert out["xlsx"] == out["csv"], "XLSX and CSV carry the same table"
    return out


@pytest.fixture
def ended(started, clock, fleet):
    """Session 1 with one violation, one extra-time grant and one break-resume, then ended:
    37 submitted after answering, the resumed candidate submitted on the spare PC, 2 absent."""
    room = started
    cands = candidates(room)
    room.violation_add(cands[2]["admission_no"], "A101", "携带纸条进入考场")
    room.violation_add(cands[5]["admission_no"], "A102", "与他人交谈")
    cancelled = room.violation_add(cands[5]["admission_no"], "A101", "登记错误")
    room.violation_cancel(cancelled["id"], confirm=True)
    room.extra_time(cands[3]["admission_no"], 300, "鼠标无法使用")
    room.extra_time(cands[3]["admission_no"], 120, "断线补回")
    situation = room.situation_types()[0]
    moved = cands[6]
    room.resume([moved["admission_no"]], situation, "考试机蓝屏", "张三", confirm_online=True)
    spare = seat_ips(room)[39]
    room.candidate_login(moved["admission_no"], spare)
    clock.set(START + 1801)
    room.absent([c["admission_no"] for c in cands[38:]], confirm=True)
    for i, c in enumerate(cands[:38]):
        ip = spare if c is moved else c["ip"]
        if i < 10:
            answers = [
                {"subject": "T01", "question": f"q{i:02d}", "value": "A", "seq": i} for i in range(1, 10)
            ]
            room.save_answers(c["admission_no"], ip, answers)
        room.candidate_submit(c["admission_no"], ip)
    room.end("888")
    return room


def test_violations_export_the_registered_code_and_description(ended, tmp_path):
    room = ended
    tables = export_both(room, "violations", tmp_path)
    header, *rows = tables["xlsx"]
    assert header == ["准考证号", "姓名", "违纪代码", "违纪类型", "违纪情况描述", "处理时间"]
    expected = [
        [v["admission_no"], v["name"], v["code"], v["text"], v["description"], fmt_time(v["time"])]
        for v in room.violations()
    ]
    assert rows == expected
    cands = candidates_of(room)
    # what the script registered, without the cancelled one
    assert [(r[0], r[2], r[4]) for r in rows] == [
        (cands[2], "A101", "携带纸条进入考场"),
        (cands[5], "A102", "与他人交谈"),
    ]
    codes = dict(room.violation_codes())
    assert all(r[3] == codes[r[2]] for r in rows), "the code's text from the exam's table"


def test_resumes_export_the_situation_description_and_handler(ended, tmp_path):
    room = ended
    tables = export_both(room, "resumes", tmp_path)
    header, *rows = tables["csv"]
    assert header == ["准考证号", "姓名", "处理时间", "IP地址", "异常情况", "异常描述", "处理人员"]
    [record] = room.resumes()
    assert rows == [
        [
            record["admission_no"],
            record["name"],
            fmt_time(record["time"]),
            record["ip"],
            record["situation"],
            record["description"],
            record["handler"],
        ]
    ]
    assert rows[0][0] == candidates_of(room)[6]
    assert rows[0][4:] == [room.situation_types()[0], "考试机蓝屏", "张三"]


def test_extra_time_exports_each_grant_with_the_time_actually_granted(ended, tmp_path):
    room = ended
    tables = export_both(room, "extra-time", tmp_path)
    header, *rows = tables["xlsx"]
    assert header[:6] == ["准考证号", "姓名", "补时(秒)", "实际补时(秒)", "累计补时(秒)", "补时原因"]
    expected = [
        [e["admission_no"], e["name"], str(e["requested_s"]), str(e["granted_s"]), str(e["total_s"]),
         e["reason"], fmt_time(e["time"])]
        for e in room.extra_times()
    ]  # fmt: skip
    assert rows == expected
    no = candidates_of(room)[3]
    assert [(r[0], r[3], r[4], r[5]) for r in rows] == [
        (no, "300", "300", "鼠标无法使用"),
        (no, "120", "420", "断线补回"),
    ]
    # XLSX keeps the seconds as numbers, so the officer can sum them
    wb = load_workbook(tmp_path / "extra-time.xlsx")
    try:
        assert [c.value for c in wb.active["E"]][1:] == [300, 420]
    finally:
        wb.close()


def test_the_candidate_log_exports_every_event_of_the_candidate(ended, tmp_path):
    room = ended
    no = candidates_of(room)[6]  # the resumed one: log in, forced out, in again elsewhere
    log = room.candidate_log(no)["log"]
    kinds = [x["kind"] for x in log]
    assert kinds[:2] == ["login", "begin"] and kinds[-1] == "submitted"
    assert "resume_granted" in kinds
    assert kinds.count("login") == 2, "the second login is on the spare PC"
    tables = export_both(room, "candidate-log", tmp_path, admission_no=no)
    header, *rows = tables["csv"]
    assert header == ["序号", "时间", "IP", "操作"]
    assert rows == [[str(x["n"]), fmt_time(x["time"]), x["ip"], x["text"]] for x in log]
    assert [r[3] for r in rows][:2] == ["登录", "我已阅读"] and rows[-1][3] == "交卷"
    assert "断点续考" in [r[3] for r in rows]
    logins = [r for r in rows if r[3] == "登录"]
    assert [r[2] for r in logins] == [seat_ips(room)[6], seat_ips(room)[39]]
    refused("unknown_candidate", room.export_list, "candidate-log", str(tmp_path / "x.csv"), "000")


def test_the_verification_table_exports_every_candidate_and_its_totals(ended, tmp_path):
    room = ended
    table = room.verify()
    tables = export_both(room, "verification", tmp_path)
    header, *rows = tables["xlsx"]
    assert header == [
        "序号",
        "准考证号",
        "姓名",
        "考试状态",
        "答题进度",
        "作答包状态",
        "回收状态",
        "违纪",
        "问题",
    ]
    assert [r[1] for r in rows] == [r["admission_no"] for r in table["rows"]]
    assert [r[3] for r in rows] == [r["state_zh"] for r in table["rows"]]
    totals = table["totals"]
    # the totals the service computed, counted again from the exported file
    assert len(rows) == totals["total"] == 40
    assert sum(r[3] == "缺考" for r in rows) == totals["absent"] == 2
    assert sum(r[6] == "✓" for r in rows) == totals["collected"] == 40
    assert sum(r[7] == "Y" for r in rows) == totals["violations"] == 2
    assert sum(r[3] == "已交卷" for r in rows) == 38
    assert [r[4] for r in rows[:10]] == ["20%"] * 10, "9 of 45 questions answered"
    assert all(r[8] == "" for r in rows) and table["ok"]


def candidates_of(room) -> list[str]:
    from kiosk.store.models import Candidate, Session

    s = Session.get(Session.number == 1)
    return [c.admission_no for c in Candidate.select().where(Candidate.session == s).order_by(Candidate.seq)]


# -- seat lists -----------------------------------------------------------------------


def other_room(tmp_path: Path, clock, fleet, name: str):
    """A second box (its own home and database) that takes the seat list in."""
    room = build(load(home=str(tmp_path / name), min_free_bytes=1024**2), Ports(seats=fleet), clock)
    room.configure(ROOM, str(tmp_path / name / "answers"), box_ip="127.0.0.1")
    return room


def seat_rows(room) -> list[list[str]]:
    return [[s["seat"], s["ip"], s["hostname"], s["note"]] for s in room.seats()]


@pytest.mark.parametrize("ext", FORMATS)
def test_a_seat_list_goes_out_and_comes_back_in_unchanged(ready_room, tmp_path, clock, fleet, ext):
    room = ready_room
    # notes and names as people type them, some of which Excel would run as formulas
    room.seats_edit(1, note="靠窗, 风扇声大")
    room.seats_edit(2, note='键盘"Enter"键失灵\n已报修', hostname="=机房A-02")
    room.seats_edit(3, note="-备用机", hostname="@KS-003")
    room.seats_edit(4, note="'+86 150 已登记")
    exported = room.export_list("seats", str(tmp_path / f"seats.{ext}"))
    header, *rows = read_back(exported["path"])
    assert header == ["机位号", "IP", "计算机名", "备注"]
    if ext == "csv":
        assert rows[1][2] == "'=机房A-02", "a formula-like cell is guarded in the CSV"
    else:
        assert rows == seat_rows(room)
    assert exported["rows"] == 40

    expected = seat_rows(room)
    room.db.close()  # the models follow the last database opened: one box at a time
    copy = other_room(tmp_path, clock, fleet, "second-box")
    assert copy.seats_import(exported["path"]) == {"imported": 40}
    assert seat_rows(copy) == expected
    # and out again: the second box writes the same table (the same bytes, in CSV)
    again = copy.export_list("seats", str(tmp_path / f"again.{ext}"))
    assert read_back(again["path"]) == read_back(exported["path"])
    if ext == "csv":
        assert Path(again["path"]).read_bytes() == Path(exported["path"]).read_bytes()
    # a second import of the same list changes nothing
    assert copy.seats_import(again["path"]) == {"imported": 40}
    assert seat_rows(copy) == expected
    copy.db.close()


def test_an_edited_csv_seat_list_changes_the_seats_it_names(ready_room, tmp_path):
    room = ready_room
    path = Path(room.export_list("seats", str(tmp_path / "seats.csv"))["path"])
    header, *rows = read_back(path)
    rows[0][3] = "显示器偏色"
    rows[9][2] = "KS-010-新"
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows([header, *rows])
    assert room.seats_import(str(path)) == {"imported": 40}
    seats = room.seats()
    assert (seats[0]["note"], seats[9]["hostname"]) == ("显示器偏色", "KS-010-新")
    assert [s["ip"] for s in seats] == [r[1] for r in rows], "numbers and IPs unchanged"


@pytest.mark.parametrize("ext", FORMATS)
def test_a_seat_list_that_clashes_with_the_seats_is_refused_whole(ready_room, tmp_path, ext):
    room = ready_room
    before = seat_rows(room)
    path = tmp_path / f"clash.{ext}"
    from kiosk.services.documents import write_table

    write_table(path, ["机位号", "IP", "计算机名", "备注"],
                [["041", "127.0.10.99", "新机", ""], ["042", "127.0.10.11", "重复IP", ""]])  # fmt: skip
    refused("bad_seat_list", room.seats_import, str(path))
    assert seat_rows(room) == before, "nothing of a refused list is written"


def test_an_export_to_an_unknown_kind_or_format_is_refused(ready_room, tmp_path):
    out = tmp_path / "stick"
    out.mkdir()
    refused("bad_export_kind", ready_room.export_list, "answers", str(out / "x.csv"))
    refused("bad_export_format", ready_room.export_list, "seats", str(out / "seats.xls"))
    refused("no_session", ready_room.export_list, "violations", str(out / "v.csv"))
    assert not list(out.iterdir()), "a refused export leaves no file"


def test_lists_of_the_running_session_and_of_a_named_one_after_the_exam(started, clock, tmp_path):
    room = started
    cands = candidates(room)
    room.violation_add(cands[0]["admission_no"], "A101", "携带手机")
    during = read_back(room.export_list("violations", str(tmp_path / "during.csv"))["path"])
    clock.set(START + 1801)
    room.absent([c["admission_no"] for c in cands[38:]], confirm=True)
    for c in cands[:38]:
        room.candidate_submit(c["admission_no"], c["ip"])
    refused("not_ended", room.export_list, "verification", str(tmp_path / "v.csv"))
    room.end("888")
    assert [v["code"] for v in room.violations()] == ["A101"], "still shown after the exam"
    after = read_back(room.export_list("violations", str(tmp_path / "after.csv"))["path"])
    named = read_back(room.export_list("violations", str(tmp_path / "named.csv"), session=1)["path"])
    assert during == after == named and len(after) == 2
    other = read_back(room.export_list("violations", str(tmp_path / "s2.xlsx"), session=2)["path"])
    assert other == [after[0]], "session 2 has no violations: the header only"
    refused("unknown_session", room.export_list, "resumes", str(tmp_path / "x.csv"), session=9)
