"""The officer's documents: the two HTML reports and the CSV/XLSX tables."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import zipfile
from pathlib import Path

import pytest
from openpyxl import load_workbook

from kiosk.core.envcheck import Requirements, env_passed, judge_env
from kiosk.core.errors import Refused
from kiosk.services.documents import (
    fmt_duration,
    fmt_time,
    read_table,
    render_envcheck_report,
    render_situation_record,
    write_table,
)

T0 = dt.datetime(2019, 12, 22, 13, 55).timestamp()  # local time, as the box shows it
SEAT_COLUMNS = {
    "seat": ["机位号", "机位", "seat"],
    "ip": ["IP", "IP地址", "ip"],
    "name": ["计算机名", "名称", "name"],
    "note": ["备注", "note"],
}
EVIL = "<script>alert(1)</script>"


def situation(**overrides: object) -> dict:
    data = {
        "exam_name": "测试任务",
        "site_code": "1999999",
        "site_name": "测试考点",
        "room_code": "1999999003",
        "session_number": 1,
        "session_name": "第一场次",
        "start": T0,
        "end": T0 + 89 * 60,
        "state_zh": "考试中",
        "admin": {"name": "张三", "phone": "15011111111"},
        "invigilator": {"name": "李四", "phone": "15011111112"},
        "totals": {
            "expected": 40,
            "sat": 3,
            "absent": 0,
            "violations": 1,
            "extra_time": 1,
            "resumes": 0,
        },
        "absences": [],
        "violations": [],
        "extra_time": [],
        "resumes": [],
        "generated_at": T0 + 600,
    }
    data.update(overrides)
    return data


def violation(name: str = "张89", admission_no: str = "19031999990031004", **kw: object) -> dict:
    return {
        "name": name,
        "admission_no": admission_no,
        "code": "A101",
        "text": "携带通讯工具",
        "description": "携带纸条进入考场",
        "time": T0 + 34,
        **kw,
    }


# -- formatting ----------------------------------------------------------------------------


def test_fmt_time_shows_local_wall_clock_time_and_nothing_for_none() -> None:
    assert fmt_time(T0 + 34) == "2019-12-22 13:55:34"
    assert fmt_time(None) == ""


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0秒"),
        (45, "45秒"),
        (60, "1分00秒"),
        (65, "1分05秒"),
        (750, "12分30秒"),
        (3600, "1小时00分"),
        (3900, "1小时05分"),
        (3959, "1小时05分"),
        (7260, "2小时01分"),
    ],
)
def test_fmt_duration_says_it_the_way_the_officer_does(seconds: int, shown: str) -> None:
    assert fmt_duration(seconds) == shown


# -- 考场情况记录单 --------------------------------------------------------------------------


def test_situation_record_is_a_standalone_chinese_page() -> None:
    html = render_situation_record(situation())
    assert html.startswith("<!DOCTYPE html>")
    assert '<html lang="zh-CN">' in html
    assert '<meta charset="utf-8">' in html
    assert "<style>" in html and "<link" not in html and "<script" not in html


def test_situation_record_header_shows_exam_site_room_times_staff_and_totals() -> None:
    html = render_situation_record(situation())
    for text in [
        "考场情况记录单",
        "测试任务",
        "测试考点",
        "1999999003",
        "第一场次",
        "2019-12-22 13:55:00 到 2019-12-22 15:24:00(考试中)",
        "张三(15011111111)",
        "李四(15011111112)",
        "应考人数:40人;实考人数:3人;缺考人数:0人;违纪人数:1人;补时人数:1人;断点续考人数:0人;",
    ]:
        assert text in html, text


def test_situation_record_says_none_under_every_empty_section() -> None:
    html = render_situation_record(situation())
    for title in ["一、缺考情况", "二、违纪情况", "三、补时情况", "四、断点续考情况"]:
        assert re.search(rf"{title}</h2>\s*<p[^>]*>无</p>", html), title
    assert "详细名单如下" not in html


def test_situation_record_lists_each_section_with_its_people_count() -> None:
    html = render_situation_record(
        situation(
            absences=[
                {
                    "name": "王五",
                    "admission_no": "19031999990031009",
                    "subjects": ["理论知识", "专业技术"],
                }
            ],
            violations=[violation(), violation(code="A102", text="抄袭", description="偷看")],
            extra_time=[
                {
                    "name": "张63",
                    "admission_no": "19031999990031018",
                    "granted_s": 300,
                    "total_s": 750,
                    "reason": "机器故障",
                    "time": T0 + 1200,
                }
            ],
            resumes=[
                {
                    "name": "张72",
                    "admission_no": "19031999990031003",
                    "situation": "考生电脑异常关闭",
                    "description": "换机继续考试",
                    "handler": "李四",
                    "time": T0 + 1733,
                    "ip": "192.168.0.159",
                }
            ],
        )
    )
    assert "该场次缺考情况1人,详细名单如下:" in html
    assert "理论知识、专业技术" in html
    # Two violations of one candidate count as one person.
    assert "该场次违纪情况1人,详细名单如下:" in html
    assert "A101:携带通讯工具" in html and "携带纸条进入考场" in html
    assert "2019-12-22 13:55:34" in html
    assert "该场次补时情况1人,详细名单如下:" in html
    assert "5分00秒" in html and "12分30秒" in html and "机器故障" in html
    assert "该场次断点续考情况1人,详细名单如下:" in html
    assert "考生电脑异常关闭" in html and "192.168.0.159" in html
    assert not re.search(r"</h2>\s*<p[^>]*>无</p>", html)


def test_situation_record_escapes_what_people_typed() -> None:
    html = render_situation_record(
        situation(
            exam_name=EVIL,
            admin={"name": EVIL, "phone": "1"},
            violations=[violation(name=EVIL, description=EVIL)],
            resumes=[
                {
                    "name": "甲",
                    "admission_no": "1",
                    "situation": "断电",
                    "description": '"><img src=x onerror=alert(1)>',
                    "handler": EVIL,
                    "time": T0,
                    "ip": "",
                }
            ],
        )
    )
    assert "<script>" not in html
    assert "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_situation_record_copes_with_a_session_not_yet_started_and_missing_staff() -> None:
    html = render_situation_record(
        situation(start=None, end=None, state_zh="未开考", admin={}, invigilator={"name": "李四"})
    )
    assert "未开考 到 未结束(未开考)" in html
    assert "<th>系统管理员</th><td>未登记</td>" in html
    assert "<th>监考人员</th><td>李四</td>" in html


def test_templates_load_next_to_the_module_whatever_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert "考场情况记录单" in render_situation_record(situation())
    assert "环境检测报告" in render_envcheck_report({"pcs": []})


# -- 环境检测报告 ------------------------------------------------------------------------------


GOOD_PC = {
    "os": "Windows 10",
    "cpu_cores": 4,
    "memory_mb": 8192,
    "free_disk_mb": 50000,
    "screen": "1920x1080",
    "software": ["WPS"],
    "daemon_version": "1.2",
    "clock_skew_s": 0.3,
    "rtt_ms": 2,
    "virtual_machine": False,
    "remote_control": [],
}


def envcheck_data(reports: dict[str, dict]) -> dict:
    """The data the room service passes: items judged by the real rules."""
    req = Requirements(required_software=("WPS",))
    pcs = []
    for n, (seat, report) in enumerate(reports.items()):
        items = judge_env(report, req)
        pcs.append(
            {
                "seat": seat,
                "ip": f"192.168.0.{151 + n}",
                "passed": env_passed(items),
                "checked_at": T0 + n,
                "items": [dataclasses.asdict(i) for i in items],
            }
        )
    passed = sum(pc["passed"] for pc in pcs)
    return {
        "room_code": "1999999003",
        "generated_at": T0 + 60,
        "checked_at": T0,
        "total": len(pcs),
        "passed": passed,
        "failed": len(pcs) - passed,
        "requirements": dataclasses.asdict(req),
        "pcs": pcs,
    }


def pc_row(html: str, seat: str) -> str:
    match = re.search(rf'<tr>\s*<td class="seat">{seat}</td>.*?</tr>', html, re.S)
    assert match, seat
    return match.group(0)


def test_envcheck_report_shows_summary_and_requirements() -> None:
    html = render_envcheck_report(envcheck_data({"001": GOOD_PC, "002": {**GOOD_PC, "memory_mb": 2048}}))
    assert '<html lang="zh-CN">' in html and '<meta charset="utf-8">' in html
    assert "<th>检测时间</th><td>2019-12-22 13:55:00</td>" in html
    assert re.search(r"<th>总数</th><td[^>]*>2 台</td>", html)
    assert re.search(r"<th>通过</th><td[^>]*>1 台</td>", html)
    assert re.search(r"<th>未通过</th><td[^>]*>1 台</td>", html)
    assert "<th>未通过机位</th><td>002</td>" in html
    for label, required in [
        ("内存", "≥ 4096 MB"),
        ("屏幕分辨率", "≥ 1024x768"),
        ("必备软件", "WPS"),
        ("时钟偏差", "≤ ±5 秒"),
        ("虚拟机", "不限"),
    ]:
        assert f"<th>{label}</th><td>{required}</td>" in html, label


def test_envcheck_report_marks_only_the_failed_items_red() -> None:
    html = render_envcheck_report(envcheck_data({"001": GOOD_PC, "002": {**GOOD_PC, "memory_mb": 2048}}))
    good, bad = pc_row(html, "001"), pc_row(html, "002")
    assert not re.search(r'class="[^"]*\bbad\b', good)
    assert ">通过</td>" in good
    assert re.findall(r'<td class="[^"]*\bbad\b[^"]*"[^>]*>([^<]*)</td>', bad) == ["2048 MB"]
    assert ">未通过</td>" in bad
    assert 'title="要求：≥ 4096 MB"' in bad


def test_envcheck_report_shows_a_pc_that_never_reported() -> None:
    data = envcheck_data({"001": GOOD_PC})
    data["pcs"].append({"seat": "002", "ip": "192.168.0.9", "passed": False, "checked_at": None, "items": []})
    row = pc_row(render_envcheck_report(data), "002")
    assert "未收到检测结果" in row and ">未通过</td>" in row


def test_envcheck_report_escapes_values_reported_by_the_pc() -> None:
    html = render_envcheck_report(envcheck_data({"001": {**GOOD_PC, "os": EVIL}}))
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


# -- tables ----------------------------------------------------------------------------------


HEADERS = ["机位号", "IP地址", "计算机名", "备注"]
ROWS = [
    ["001", "192.168.0.151", "考试机-01", "靠窗，风扇声大"],
    ["002", "192.168.0.152", "PC02", None],
]
EXPECTED = [
    {"seat": "001", "ip": "192.168.0.151", "name": "考试机-01", "note": "靠窗，风扇声大"},
    {"seat": "002", "ip": "192.168.0.152", "name": "PC02", "note": ""},
]


@pytest.mark.parametrize("ext", ["csv", "xlsx"])
def test_a_written_table_reads_back_with_its_chinese_text(tmp_path: Path, ext: str) -> None:
    path = write_table(tmp_path / f"机位表.{ext}", HEADERS, ROWS, title="机位表")
    assert path == tmp_path / f"机位表.{ext}"
    assert read_table(path, SEAT_COLUMNS) == EXPECTED


@pytest.mark.parametrize("ext", ["csv", "xlsx"])
def test_write_table_leaves_no_temporary_file_behind(tmp_path: Path, ext: str) -> None:
    write_table(tmp_path / f"out.{ext}", HEADERS, ROWS)
    write_table(tmp_path / f"out.{ext}", HEADERS, ROWS)  # replacing an existing export
    assert os.listdir(tmp_path) == [f"out.{ext}"]


@pytest.mark.parametrize("ext", ["csv", "xlsx"])
def test_a_write_that_fails_halfway_leaves_the_old_file_and_no_temporary(tmp_path: Path, ext: str) -> None:
    target = write_table(tmp_path / f"out.{ext}", HEADERS, ROWS)
    before = target.read_bytes()

    def rows_then_crash():
        yield ROWS[0]
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError):
        write_table(target, HEADERS, rows_then_crash())
    assert os.listdir(tmp_path) == [f"out.{ext}"]
    assert target.read_bytes() == before


def test_csv_export_starts_with_a_bom_so_excel_reads_chinese(tmp_path: Path) -> None:
    raw = write_table(tmp_path / "t.csv", HEADERS, ROWS).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert "机位号".encode() in raw


def test_xlsx_export_has_a_bold_frozen_header_and_columns_wide_enough(tmp_path: Path) -> None:
    path = write_table(tmp_path / "t.xlsx", HEADERS, ROWS, title="环境检测")
    wb = load_workbook(path)
    ws = wb.active
    assert ws.title == "环境检测"
    assert ws["A1"].font.b and not ws["A2"].font.b
    assert ws.freeze_panes == "A2"
    # "靠窗，风扇声大" is 7 wide characters: its column must be wider than the seat column.
    assert ws.column_dimensions["D"].width >= 14 > ws.column_dimensions["A"].width
    wb.close()


@pytest.mark.parametrize("ext", ["csv", "xlsx"])
def test_text_that_looks_like_a_formula_is_never_run_by_excel(tmp_path: Path, ext: str) -> None:
    path = write_table(tmp_path / f"t.{ext}", HEADERS, [["001", "1.1.1.1", "=cmd|' /C calc'!A0", "-5"]])
    if ext == "xlsx":
        wb = load_workbook(path)
        cell = wb.active["C2"]
        assert (cell.data_type, cell.value) == ("s", "=cmd|' /C calc'!A0")
        wb.close()
    else:
        assert "'=cmd" in path.read_text(encoding="utf-8-sig")
    assert read_table(path, SEAT_COLUMNS)[0]["note"] == "-5"  # a plain number stays as it is


@pytest.mark.parametrize(
    ("text", "guarded"),
    [
        ("=SUM(A1)", True),
        ("-备用机", True),
        ("+86 150", True),
        ("@host", True),
        ("'=already quoted", True),
        ("''-two", True),
        ("'plain", False),
        ("'", False),
        ("-5", False),
        ("-", False),
    ],
)
def test_a_guarded_csv_cell_reads_back_as_it_was_written(tmp_path: Path, text: str, guarded: bool) -> None:
    # The formula guard must not grow by one apostrophe at every export and import.
    path = write_table(tmp_path / "t.csv", HEADERS, [["001", "10.0.0.1", text, text]])
    raw = path.read_text(encoding="utf-8-sig")
    assert (f"'{text}" in raw) == guarded, "a formula is still guarded against Excel"
    row = read_table(path, SEAT_COLUMNS)[0]
    assert (row["name"], row["note"]) == (text, text)


def test_a_lone_dash_placeholder_is_not_mistaken_for_a_formula(tmp_path: Path) -> None:
    path = write_table(tmp_path / "t.csv", HEADERS, [["001", "10.0.0.1", "-", "+"]])
    assert read_table(path, SEAT_COLUMNS)[0] == {
        "seat": "001",
        "ip": "10.0.0.1",
        "name": "-",
        "note": "+",
    }


def test_xlsx_numbers_read_as_the_text_the_officer_typed(tmp_path: Path) -> None:
    path = write_table(tmp_path / "t.xlsx", HEADERS, [[1, "10.0.0.1", 2.0, 1.5]])
    assert read_table(path, SEAT_COLUMNS) == [{"seat": "1", "ip": "10.0.0.1", "name": "2", "note": "1.5"}]


def test_a_gbk_csv_from_chinese_excel_reads(tmp_path: Path) -> None:
    path = tmp_path / "机位.csv"
    path.write_bytes("机位号,IP地址,计算机名,备注\r\n001,192.168.0.151,考试机一,正常\r\n".encode("gbk"))
    assert read_table(path, SEAT_COLUMNS) == [
        {"seat": "001", "ip": "192.168.0.151", "name": "考试机一", "note": "正常"}
    ]


def test_headers_match_any_accepted_name_ignoring_case_and_spaces(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(" SEAT ,Ip\n3,10.0.0.3\n", encoding="utf-8")
    assert read_table(path, SEAT_COLUMNS) == [{"seat": "3", "ip": "10.0.0.3", "name": "", "note": ""}]


def test_blank_rows_are_skipped_and_values_trimmed(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("机位,IP\n\n 001 , 10.0.0.1 \n,\n002,10.0.0.2\n", encoding="utf-8")
    assert [r["seat"] for r in read_table(path, SEAT_COLUMNS)] == ["001", "002"]
    assert read_table(path, SEAT_COLUMNS)[0]["ip"] == "10.0.0.1"


def test_a_table_without_a_required_column_is_refused_naming_it(tmp_path: Path) -> None:
    path = write_table(tmp_path / "t.xlsx", ["机位号", "计算机名"], [["001", "PC1"]])
    with pytest.raises(Refused) as err:
        read_table(path, SEAT_COLUMNS)
    assert err.value.code == "bad_table"
    assert "IP" in err.value.zh and "机位号" not in err.value.zh


def test_a_damaged_xlsx_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "机位.xlsx"
    path.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(Refused) as err:
        read_table(path, SEAT_COLUMNS)
    assert err.value.code == "bad_table"


def test_a_truncated_xlsx_is_refused(tmp_path: Path) -> None:
    good = write_table(tmp_path / "good.xlsx", HEADERS, ROWS).read_bytes()
    path = tmp_path / "cut.xlsx"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(Refused) as err:
        read_table(path, SEAT_COLUMNS)
    assert err.value.code == "bad_table"


def test_an_undecodable_csv_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"\xff\xfe\x81\x30\xff\x00" * 100)
    with pytest.raises(Refused) as err:
        read_table(path, SEAT_COLUMNS)
    assert err.value.code == "bad_table"


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"")
    with pytest.raises(Refused) as err:
        read_table(path, SEAT_COLUMNS)
    assert err.value.code == "bad_table"


@pytest.mark.parametrize("ext", ["csv", "xlsx"])
def test_a_table_with_too_many_rows_is_refused(tmp_path: Path, ext: str) -> None:
    rows = [[f"{i:03d}", f"10.0.0.{i}", "", ""] for i in range(1, 12)]
    path = write_table(tmp_path / f"t.{ext}", HEADERS, rows)
    assert len(read_table(path, SEAT_COLUMNS, max_rows=11)) == 11
    with pytest.raises(Refused) as err:
        read_table(path, SEAT_COLUMNS, max_rows=10)
    assert err.value.code == "bad_table"


def without_named_styles(xlsx: Path) -> None:
    """Rewrite the stylesheet the way some other spreadsheet programs write it."""
    with zipfile.ZipFile(xlsx) as z:
        parts = {name: z.read(name) for name in z.namelist()}
    parts["xl/styles.xml"] = (
        b'<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        b'<cellXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellXfs>'
        b"</styleSheet>"
    )
    with zipfile.ZipFile(xlsx, "w") as z:
        for name, data in parts.items():
            z.writestr(name, data)


def test_an_xlsx_openpyxl_warns_about_reads_without_a_warning_escaping(tmp_path: Path) -> None:
    path = write_table(tmp_path / "wps.xlsx", ["机位号", "IP"], [[7, "10.0.0.7"]])
    without_named_styles(path)
    with pytest.warns(UserWarning, match="no default style"):
        load_workbook(path, read_only=True).close()
    # pytest turns warnings into errors here: read_table must deal with it, not leak it.
    assert read_table(path, SEAT_COLUMNS) == [{"seat": "7", "ip": "10.0.0.7", "name": "", "note": ""}]


def test_an_unknown_export_format_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(Refused) as err:
        write_table(tmp_path / "t.pdf", HEADERS, ROWS)
    assert err.value.code == "bad_export_format"
    assert os.listdir(tmp_path) == []


def test_an_unknown_import_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(Refused) as err:
        read_table(path, SEAT_COLUMNS)
    assert err.value.code == "bad_table"


def test_exporting_to_a_missing_folder_is_refused_not_raised(tmp_path: Path) -> None:
    with pytest.raises(Refused) as err:
        write_table(tmp_path / "pulled-usb" / "t.csv", HEADERS, ROWS)
    assert err.value.code == "export_failed"
