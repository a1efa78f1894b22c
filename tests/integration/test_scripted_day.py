"""One scripted exam day of a room of 40, headless, through the room service on a real
SQLite file (issue 2, "How it is checked"): the morning's system management and wizard
in site mode, a mock drill (模考) that is then wiped by initialising the box, the formal
session 1 with every incident SPEC.md names, and the after-exam verification, backup,
upload and exports.

The service is wrapped so that every operation called is recorded: the test ends by
asserting that every operation of the registry (kiosk/services/registry.py) succeeded
at least once, and that every refusal path SPEC.md names was hit."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from kiosk.common.clock import ManualClock
from kiosk.common.packages import AnswerFile
from kiosk.core.errors import Refused
from kiosk.services.bootstrap import build
from kiosk.services.ports import Ports
from kiosk.services.registry import OPERATIONS
from kiosk.services.room import RoomService
from kiosk.services.simulated import SimulatedSeats
from kiosk.settings import Settings
from kiosk.site.mock import author_site, build_default_exam
from kiosk.store.models import Candidate, Seat, SiteTrust
from tests import update_kit
from tests.conftest import ROOM, T0, ExamFiles
from tests.integration.test_exam_session import answer_package, refused
from tests.integration.test_site_mode import RecordingSite

DAWN = T0 - 3 * 3600  # 05:00, the officer switches the box on
DRILL = T0 - 3600  # 07:00, the mock drill starts
START = T0 + 3600  # 09:00, the formal session 1 is scheduled
REGISTRATION = "ABCDEFGH"
NEW_PASSWORD = "Kc2026"

REGISTRY = {op.method for op in OPERATIONS}

# Operations that genuinely need another machine and are left out, with the reason.
# None is: the site's (site-register, exam-download, upload) are called through the
# in-process site double, USB (usb) on a folder standing in for a stick, the room
# network's (seats-scan, remote wake/reboot/shutdown, envcheck…) through the simulated
# fleet. Add an entry only with the reason it cannot be called here.
NEEDS_ANOTHER_MACHINE: dict[str, str] = {}

# Every refusal path SPEC.md names (and the list), by the code the box gives.
SPEC_REFUSALS = {
    "too_early_login": "allow login before the window (too early)",
    "too_early_submit": "submit before the earliest submission (too early)",
    "too_early_collect": "single-machine collection before the earliest submission (too early)",
    "absence_too_early": "absence before the late-login limit (too early)",
    "late_login": "a candidate past the late-login limit (too late)",
    "late_start_code_needed": "allow start after the window without a code (too late, no code)",
    "late_candidate_code_needed": "a late candidate's resume without a code (no code)",
    "extra_time_code_needed": "extra time beyond the free allowance without a code (no code)",
    "reexam_code_needed": "re-exam without a code (no code)",
    "code_wrong": "a wrong code",
    "code_malformed": "a code that is not one",
    "code_used": "a reused code",
    "code_expired": "an expired code",
    "challenge_spent": "five wrong codes spend the challenge",
    "extra_time_cap": "extra time above the subject's duration",
    "offline": "extra time for an offline candidate",
    "not_in_exam": "extra time for a candidate not in the exam",
    "candidates_still_writing": "end with candidates still writing",
    "wrong_password": "a wrong password",
    "locked_out": "five wrong passwords lock the box",
    "site_offline": "site mode without a reachable site",
    "seal_not_passed": "entering the exam before the seal check passed",
    "not_authorised": "allow login before the authorisation",
    "confirm_needed": "a destructive operation without its confirmation",
    "confirm_online": "break-resume of an online candidate without the confirmation",
    "tick_understood": "re-exam without the 'I understand' tick",
    "bad_violation_code": "a violation code not in the table",
    "text_too_long": "a description over 200 characters",
    "absent": "an absent candidate logging in",
    "mock_only": "mock-mode extras in a formal exam",
    "auto_login_off": "auto-login by seat after it was cancelled",
    "backup_first": "upload before the backup",
    "not_started": "a candidate beginning during the countdown",
    "foreign_candidate": "an answer package signed at another candidate's PC",
}


class Recorded:
    """The room service, with every call recorded: the methods that succeeded, and the
    refusals (method, code) of the ones that did not."""

    def __init__(self, service: RoomService) -> None:
        self._service = service
        self.succeeded: set[str] = set()
        self.refusals: list[tuple[str, str]] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._service, name)
        if name.startswith("_") or not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                result = attr(*args, **kwargs)
            except Refused as refusal:
                self.refusals.append((name, refusal.code))
                raise
            self.succeeded.add(name)
            return result

        return call


class FolderSticks:
    """The UsbDrives port: folders standing in for the sticks plugged in."""

    def __init__(self) -> None:
        self.plugged: list[Path] = []

    def sticks(self) -> Sequence[Path]:
        return list(self.plugged)


def author(folder: Path, first_start: float, mock: bool, issued: float) -> ExamFiles:
    """One room of the site's plan, signed by the site's one key (kept in folder/site)."""
    exam = build_default_exam(room_code=ROOM, first_start=first_start, mock=mock)
    plan = author_site(folder, [exam], codes={ROOM: REGISTRATION}, now=issued)
    return ExamFiles(exam, plan.rooms[ROOM])


def on_stick(files: ExamFiles, stick: Path) -> ExamFiles:
    """The room's folder of the plan copied to a stick (the next plan overwrites it)."""
    shutil.copytree(files.room.folder, stick, dirs_exist_ok=True)
    room = files.room
    moved = type(room)(
        room.room_code,
        room.registration_code,
        stick / room.sheet.name,
        stick / room.package.name,
        {n: stick / p.name for n, p in room.authorisations.items()},
    )
    return ExamFiles(files.exam, moved)


def answer(question: str, value: str, seq: int, saved_at: float) -> dict[str, Any]:
    return {"subject": "T01", "question": question, "value": value, "seq": seq, "saved_at": saved_at}


def names(rows: list[dict[str, Any]]) -> list[str]:
    return [r["admission_no"] for r in rows]


def test_one_exam_day_calls_every_operation_and_hits_every_refusal(
    settings: Settings, tmp_path: Path
) -> None:
    clock = ManualClock(DAWN)
    fleet = SimulatedSeats(40)
    # The box app's update folder and trusted update key (kiosk/update), temporary.
    settings = replace(settings, app_dir=str(tmp_path / "app"), update_keys_dir=str(tmp_path / "update-keys"))
    update_kit.trust(Path(settings.update_keys_dir))
    plan = tmp_path / "site-plan"
    drill_files = on_stick(author(plan, DRILL, mock=True, issued=DAWN - 86400), tmp_path / "drill-stick")
    formal = author(plan, START, mock=False, issued=DAWN - 3600)
    site = RecordingSite(drill_files)
    usb = FolderSticks()
    service = build(settings, Ports(seats=fleet, site=lambda ip, cert: site, usb=usb), clock)
    fleet.attach(service)
    room = Recorded(service)
    answers_dir = str(tmp_path / "answers")
    pw = "888"

    # -- 05:00 系统管理: the administrator, the password and its lock-out ----------------
    loopback = [i for i in room.interfaces() if i["ip"] == "127.0.0.1"]
    assert loopback and loopback[0]["name"] == "lo"
    assert room.user()["default_password"]
    for _ in range(5):
        refused("wrong_password", room.login, "123")
    refused("locked_out", room.login, pw)
    clock.advance(301)
    assert room.login(pw)["default_password"]
    room.user_set("张三", "13807710001")
    refused("wrong_password", room.passwd, "000", NEW_PASSWORD)
    room.passwd(pw, NEW_PASSWORD)
    pw = NEW_PASSWORD
    assert not room.user()["default_password"] and room.user()["name"] == "张三"
    # the box app updated from a stick: takes effect at the next start
    kup = update_kit.make_package(tmp_path / "update-stick", "99.0.0")
    assert "重启监考机后生效" in room.update_install(str(kup))["message"]
    assert room.update_status()["current_release"] == "99.0.0"

    # -- 1 参数配置 in site mode: the site answers the registration with the room sheet ----
    def configure(code: str = REGISTRATION) -> dict[str, Any]:
        return room.configure(ROOM, answers_dir, box_ip="127.0.0.1", site_mode=True,
                              site_ip="127.0.0.5", registration_code=code)  # fmt: skip

    site.up = False
    refused("site_offline", configure)
    site.up = True
    refused("registration_code_wrong", configure, "ZZZZZZZZ")
    assert room.config() is None, "a refused registration saves nothing"
    configure()
    assert room.site_register()["fingerprint"] == SiteTrust.get().fingerprint
    assert room.room_sheet_import(str(drill_files.sheet))["site_code"] == "1999999"

    # -- 2 机位管理 --------------------------------------------------------------------
    assert room.seats_scan("reply")["added"] == list(range(1, 41))
    assert all(s["online"] for s in room.seats())
    spare = room.seats_add("127.0.10.99", hostname="备用机")
    assert spare["number"] == 41 and not spare["online"]
    room.seats_edit(41, note="备用，未接网线")
    room.seats_move(41, "up")
    assert room.seats()[39]["ip"] == "127.0.10.99"
    room.seats_move(40, "down")
    refused("confirm_needed", room.seats_delete, 41)
    room.seats_delete(41, confirm=True)
    ips = [s["ip"] for s in room.seats()]
    assert len(ips) == 40
    seat_list = room.export_list("seats", str(tmp_path / "机位.csv"))["path"]
    assert room.seats_import(seat_list) == {"imported": 40}
    assert [s["ip"] for s in room.seats()] == ips
    room.seats_show(True)
    assert fleet.pcs[ips[0]].seat_shown == "001"
    room.seats_show(False)
    bundle = Path(room.client_bundle(str(tmp_path / "bundle"))["path"])
    assert (bundle / "box.crt").is_file() and (bundle / "daemon.json").is_file()
    assert room.remote("reboot", ips[:1])["ok"] == ips[:1]
    room.remote("shutdown")
    assert not any(s["online"] for s in room.seats()), "the links went down with the PCs"
    assert sorted(room.remote("wake")["ok"]) == sorted(ips)
    assert all(s["online"] for s in room.seats())
    refused("confirm_needed", room.init_pcs)
    assert len(room.init_pcs(confirm=True)["ok"]) == 40

    # -- 3 环境检测 ----------------------------------------------------------------------
    fleet.pcs[ips[4]].env["memory_mb"] = 1024
    first = room.envcheck()
    assert (first["passed"], first["failed"]) == (39, 1)
    fleet.pcs[ips[4]].env["memory_mb"] = 8192
    assert room.envcheck(retest_failed=True)["failed"] == 0
    assert room.envcheck_result()["passed"] == 40
    report = Path(room.envcheck_report(str(tmp_path / "环境检测.html"))["path"])
    assert "环境检测" in report.read_text(encoding="utf-8")

    # -- 4 载入考务 from the drill's stick, 5 封场检测 ------------------------------------
    usb.plugged = [drill_files.room.folder]
    kinds = {p["kind"] for stick in room.usb_sticks() for p in stick["packages"]}
    assert {"room-sheet", "exam-package", "session-authorisation"} <= kinds
    room.exam_import(str(drill_files.package))
    assert room.exam_summary()["policy"]["mock"]
    assert room.wizard() == {"params": True, "seats": True, "envcheck": True, "exam": True, "seal": False}
    refused("seal_not_passed", room.session_enter, 1, "张三", "13807710001", "王芳", "15977120003")
    seal = room.seal_check()
    assert seal["passed"] and seal["reported"] and ("seal", True) in site.calls

    # -- 06:30 模考: the drill, auto-login by seat, auto-answer, unified collection ----
    def enter(session: int) -> None:
        room.session_enter(session, "张三", "13807710001", "王芳", "15977120003")

    site.up = False
    refused("site_offline", enter, 1)
    site.up = True
    enter(1)
    room.start_clients()
    room.authorise(str(drill_files.auth[1]))
    clock.set(DRILL - 1800)
    room.allow_login(auto_login=True)
    drill = [room.candidate_login("", ip)["admission_no"] for ip in ips[:5]]  # seats 001-005
    assert room.auto_login(False)["auto_login"] is False
    refused("auto_login_off", room.candidate_login, "", ips[5])
    assert room.auto_login(True)["auto_login"]
    assert room.auto_answer(True)["auto_answer"] and "auto_answer" in fleet.commands(ips[0])
    room.allow_start()
    clock.set(DRILL)
    for no, ip in zip(drill, ips, strict=False):
        room.candidate_begin(no, ip)
    assert sorted(room.collect_all()["ok"]) == sorted(ips[:5])
    for no, ip in zip(drill, ips, strict=False):  # the answer apps submit on the command
        room.candidate_submit(no, ip)
    room.auto_answer(False)
    room.close_clients()
    # the drill is wiped; parameters, seats and the pinned site stay
    refused("wrong_password", room.init_box, "888", confirm=True)
    refused("confirm_needed", room.init_box, pw)
    room.init_box(pw, keep_params_and_seats=True, confirm=True)
    assert room.exam() is None and Seat.select().count() == 40 and SiteTrust.select().count() == 1

    # -- 07:30 the formal exam: downloaded from the site, the same package on a stick --
    clock.set(T0 - 1800)
    site.files = formal
    room.room_sheet_import(str(formal.sheet))  # newer, signed by the same site key
    assert room.envcheck()["passed"] == 40
    room.exam_download()
    assert not room.exam_summary()["policy"]["mock"] and ("download", ROOM) in site.calls
    assert room.exam_import(str(formal.package))["already_loaded"]
    assert room.seal_check()["passed"]

    # -- 08:00 考中: session 1 ------------------------------------------------------------
    clock.set(T0)
    enter(1)
    room.start_clients()
    refused("not_authorised", room.allow_login)
    room.authorise()  # from the site
    assert ("authorisation", 1) in site.calls
    refused("too_early_login", room.allow_login)
    refused("mock_only", room.auto_login, True)
    refused("mock_only", room.auto_answer, True)
    refused("mock_only", room.collect_all)
    clock.set(START - 1800)
    room.allow_login()
    status = room.status()["session"]
    cands = [c["admission_no"] for c in status["candidates"]]
    names_of = {c["admission_no"]: c["name"] for c in status["candidates"]}
    assert len(cands) == 40 and status["login_allowed"]
    late, absent = cands[38], cands[39]
    room.client_event("", ips[0], "client_started")
    room.client_event("", ips[0], "client_seat", {"seat": "001"})
    for no, ip in zip(cands[:38], ips, strict=False):
        room.candidate_login(no, ip)
    room.client_event(cands[0], ips[0], "agreement")
    refused("already_logged_in", room.candidate_login, cands[0], ips[39])

    # 09:16: the start window has passed; a late-start code is read over the phone
    clock.set(START + 16 * 60)
    refused("late_start_code_needed", room.allow_start)
    challenge = room.challenge("late_start")["challenge"]
    refused("code_malformed", room.allow_start, "0O1I")
    refused("code_wrong", room.allow_start, formal.code("late_start", challenge, clock.now(), session=2))
    stale = formal.code("late_start", challenge, clock.now() - 5 * 3600)  # valid 4 hours from its issue
    refused("code_expired", room.allow_start, stale)
    late_start = formal.code("late_start", challenge, clock.now())
    started = room.allow_start(late_start)
    begin = started["start"]
    assert started["late"] and begin == clock.now() + 60
    countdown = room.countdown()
    assert countdown == {"started": False, "countdown_s": 60, "start": begin}
    refused("not_started", room.candidate_begin, cands[0], ips[0])
    clock.set(begin)
    assert room.countdown()["started"]
    for no, ip in zip(cands[:38], ips, strict=False):
        room.candidate_begin(no, ip)
    for no, ip in zip(cands[:10], ips, strict=False):
        room.save_answers(no, ip, [{"subject": "T01", "question": f"q{q:02d}", "value": "A", "seq": q}
                                   for q in range(1, 11)])  # fmt: skip

    # violations: registered, viewed, one cancelled
    codes = dict(map(tuple, room.violation_codes()))
    assert "A101" in codes
    refused("bad_violation_code", room.violation_add, cands[2], "Z999")
    refused("not_present", room.violation_add, absent, "A101")
    refused("text_too_long", room.violation_add, cands[2], "A101", "长" * 201)
    room.violation_add(cands[2], "A101", "携带纸条进入考场")
    room.violation_add(cands[5], "A104", "与邻座交头接耳")
    wrong = room.violation_add(cands[7], "A102", "登记错误")
    refused("confirm_needed", room.violation_cancel, wrong["id"])
    room.violation_cancel(wrong["id"], confirm=True)
    assert [(v["admission_no"], v["code"]) for v in room.violations()] == [
        (cands[2], "A101"),
        (cands[5], "A104"),
    ]

    # extra time: free up to the allowance, then a code, never above the duration
    no3 = cands[3]
    assert room.extra_time(no3, 300, "鼠标无法使用")["granted_s"] == 300
    refused("extra_time_code_needed", room.extra_time, no3, 400)
    ch = room.challenge("extra_time", no3)["challenge"]
    refused(
        "code_wrong", room.extra_time, no3, 400, code=formal.code("extra_time", ch, clock.now(), amount=500)
    )
    used = formal.code("extra_time", ch, clock.now(), amount=400)
    assert room.extra_time(no3, 400, "鼠标无法使用", code=used)["total_s"] == 700
    room.challenge("extra_time", no3)
    refused("code_used", room.extra_time, no3, 100, code=used)
    for _ in range(4):
        refused("code_wrong", room.extra_time, no3, 100, code="ABCDEFGH")
    refused("challenge_spent", room.extra_time, no3, 100, code="ABCDEFGH")
    ch = room.challenge("extra_time", no3)["challenge"]
    big = room.extra_time(
        no3, 9000, "考试机故障", code=formal.code("extra_time", ch, clock.now(), amount=9000)
    )
    assert (big["granted_s"], big["total_s"]) == (5400 - 700, 5400)
    refused("extra_time_cap", room.extra_time, no3, 10)
    refused("not_in_exam", room.extra_time, late, 60)
    # a PC that lost its link: no extra time while offline, its offline time granted back
    no4, ip4 = cands[4], ips[4]
    fleet.pcs[ip4].reachable = False
    room.seat_link(ip4, False)
    refused("offline", room.extra_time, no4, 60)
    clock.advance(125)
    fleet.pcs[ip4].reachable = True
    room.seat_link(ip4, True)
    offline_s = room.candidate_dict(room.get_candidate(no4))["offline_s"]
    assert offline_s == 125
    room.extra_time(no4, offline_s, "断线补回")
    grants = room.extra_times()
    assert [(g["admission_no"], g["granted_s"]) for g in grants] == [
        (no3, 300), (no3, 400), (no3, 4700), (no4, 125)
    ]  # fmt: skip

    # lock, message, raised hand, find, refresh
    room.lock([cands[5]], notice="请停止作答，听从监考老师安排")
    assert fleet.pcs[ips[5]].locked
    room.lock([cands[5]], unlock=True)
    assert not fleet.pcs[ips[5]].locked
    room.message("请注意保存答案")
    assert all("message" in fleet.commands(ip) for ip in ips)
    room.raise_hand(cands[8], ips[8])
    assert room.status()["session"]["counts"]["hands"] == 1
    room.hand_answer(cands[8])
    refused("no_hand_raised", room.hand_answer, cands[8])
    assert names(room.find(names_of[cands[0]]))[0] == cands[0]
    assert names(room.find("001"))[0] == cands[0], "seat 001 first"

    # break-resume: forced out, continues on the 40th PC with its answers and time
    no6 = cands[6]
    situation = room.situation_types()[0]
    refused("confirm_online", room.resume, [no6], situation, "考试机蓝屏", "张三")
    assert room.resume([no6], situation, "考试机蓝屏", "张三", confirm_online=True)["forced_out"] == [ips[6]]
    moved = room.candidate_login(no6, ips[39])
    assert moved["state"] == "in_exam" and moved["seat"] == "040" and len(moved["answers"]) == 10
    assert [r["admission_no"] for r in room.resumes()] == [no6]

    # re-exam of one candidate (answers wiped after every confirmation), who starts again
    no13, ip13 = cands[13], ips[13]
    room.save_answers(no13, ip13, [{"subject": "T01", "question": "q01", "value": "B", "seq": 1}])
    refused("tick_understood", room.reexam, no13, ["T01"], "作答数据无法恢复")
    refused("reexam_code_needed", room.reexam, no13, ["T01"], "作答数据无法恢复", understood=True)
    ch = room.challenge("reexam", no13)["challenge"]
    code = formal.code("reexam", ch, clock.now())
    refused("confirm_needed", room.reexam, no13, ["T01"], "作答数据无法恢复", code, understood=True)
    wiped = room.reexam(no13, ["T01"], "作答数据无法恢复", code, understood=True, confirm=True)
    assert wiped["answers_wiped"] == 1
    assert room.candidate_login(no13, ip13)["state"] == "in_exam"  # let in again, writes at once

    # too early: submission, single-machine collection, absence
    refused("too_early_submit", room.candidate_submit, cands[0], ips[0])
    work = AnswerFile("T01", "q03", "草稿.txt", b"the candidate's working")
    pkg9 = answer_package(tmp_path / "pkg9.json", fleet.pcs[ips[9]].identity, cands[9],
                          [answer("q11", "C", 11, begin)])  # fmt: skip
    refused("too_early_collect", room.collect, pkg9)
    refused("confirm_needed", room.absent, [absent])
    refused("absence_too_early", room.absent, [absent], confirm=True)

    # too late: a late candidate needs a break-resume with a late-candidate code
    clock.set(begin + 1801)
    refused("late_login", room.candidate_login, late, ips[38])
    late_situation = room.situation_types()[2]
    refused("late_candidate_code_needed", room.resume, [late], late_situation, "迟到", "张三")
    ch = room.challenge("late_candidate")["challenge"]
    room.resume([late], late_situation, "按时进入考场，但登录时超过允许登录时间", "张三",
                code=formal.code("late_candidate", ch, clock.now()))  # fmt: skip
    assert room.candidate_login(late, ips[38])["state"] == "in_exam"
    room.absent([absent], confirm=True)
    refused("absent", room.candidate_login, absent, ips[6])  # the PC the moved candidate left

    # answer packages: one collected, one imported, a stick of them with a bad one
    assert room.collect(pkg9)["answers"] == 1
    assert room.get_candidate(cands[9]).state == "submitted"
    pkg10 = answer_package(tmp_path / "pkg10.json", fleet.pcs[ips[10]].identity, cands[10],
                           [answer("q03", "D", 20, begin)], files=(work,))  # fmt: skip
    assert room.import_answers(pkg10)["newer"] == 1
    stick = tmp_path / "answers-stick"
    stick.mkdir()
    for i in (11, 12):
        answer_package(stick / f"answer-{cands[i]}.json", fleet.pcs[ips[i]].identity, cands[i],
                       [answer("q01", "A", 1, begin)])  # fmt: skip
    neighbour = answer_package(stick / "neighbour.json", fleet.pcs[ips[11]].identity, cands[12], [])
    refused("foreign_candidate", room.import_answers, neighbour)
    on_stick_result = room.import_answers_all(str(stick))
    assert len(on_stick_result["imported"]) == 2
    assert [r["code"] for r in on_stick_result["refused"]] == ["foreign_candidate"]

    # documents during the exam: the candidate log and the situation record
    log = room.candidate_log(no6)["log"]
    kinds_of_6 = [x["kind"] for x in log]
    assert kinds_of_6.count("login") == 2 and "resume_granted" in kinds_of_6
    exported_log = room.export_list("candidate-log", str(tmp_path / "log.xlsx"), no6)
    assert exported_log["rows"] == len(log)
    record = Path(room.situation_record(str(tmp_path / "情况记录单.html"))["path"])
    assert "考场情况记录单" in record.read_text(encoding="utf-8")

    # -- 结束考试 --------------------------------------------------------------------------
    clock.advance(120)
    writing = [
        (c["admission_no"], c["ip"])
        for c in room.status()["session"]["candidates"]
        if c["state"] == "in_exam"
    ]
    last, *others = writing
    for no, ip in others:
        room.candidate_submit(no, ip)
    refused("candidates_still_writing", room.end, pw)
    room.candidate_submit(*last)
    refused("wrong_password", room.end, "888")  # the default password was changed at dawn
    room.end(pw)

    # -- 考后: the verification table against what the script did ---------------------
    table = room.verify()
    totals = table["totals"]
    assert totals == {
        "total": 40,
        "sat": 39,  # everybody but the one registered absent, the late one included
        "absent": 1,
        "collected": 40,  # the absent one has nothing to collect
        "not_collected": 0,
        "extra_time": 2,  # cands[3] three grants, cands[4] its offline time
        "violations": 2,  # cands[7]'s was cancelled
        "problems": 0,
    }
    assert table["ok"]
    rows = {r["admission_no"]: r for r in table["rows"]}
    assert rows[absent]["state_zh"] == "缺考" and rows[absent]["progress_pct"] is None
    assert [rows[no]["progress_pct"] for no in cands[:9]] == [22] * 9  # 10 of 45 questions
    assert rows[cands[9]]["progress_pct"] == 24, "the collected package added an 11th answer"
    assert rows[no13]["progress_pct"] == 0, "the re-exam wiped the answer"
    assert {no for no, r in rows.items() if r["violation"]} == {cands[2], cands[5]}
    verification = Path(room.export_list("verification", str(tmp_path / "核对.csv"))["path"])
    with verification.open(encoding="utf-8-sig", newline="") as fh:
        exported = list(csv.DictReader(fh))
    assert len(exported) == totals["total"]
    assert sum(r["考试状态"] == "缺考" for r in exported) == totals["absent"]
    assert sum(r["回收状态"] == "✓" for r in exported) == totals["collected"]
    assert sum(r["违纪"] == "Y" for r in exported) == totals["violations"]
    for kind in ("violations", "resumes", "extra-time"):
        assert room.export_list(kind, str(tmp_path / f"{kind}.xlsx"))["rows"] == {
            "violations": 2, "resumes": 2, "extra-time": 4
        }[kind]  # fmt: skip

    # backup first, then upload; the results exported to a folder too
    refused("backup_first", room.upload)
    backup_stick = tmp_path / "backup-stick"
    backup_stick.mkdir()
    backup = room.backup(str(backup_stick))
    assert Path(backup["path"]).is_file()
    assert room.upload()["message"] == "上报完成" and site.calls[-1][0] == "upload"
    exported_results = room.export(str(tmp_path))
    assert Path(exported_results["path"]).exists() and exported_results["message"] == "导出完成"
    assert room.log_verify()["ok"]
    assert Candidate.select().where(Candidate.state == "in_exam").count() == 0

    # -- the coverage, asserted mechanically ------------------------------------------
    expected = REGISTRY - set(NEEDS_ANOTHER_MACHINE)
    assert room.succeeded & REGISTRY == expected, f"never called: {sorted(expected - room.succeeded)}"
    hit = {code for _, code in room.refusals}
    assert set(SPEC_REFUSALS) <= hit, f"refusal paths not hit: {sorted(set(SPEC_REFUSALS) - hit)}"


def test_the_recorder_notices_an_operation_that_was_never_called(room: RoomService) -> None:
    """The coverage check above can fail: a recorder that saw only two calls is short of
    the registry, and a refusal is recorded as a refusal, not as a success."""
    recorded = Recorded(room)
    recorded.interfaces()
    recorded.wizard()
    with pytest.raises(Refused):
        recorded.allow_login()
    assert recorded.succeeded == {"interfaces", "wizard"}
    assert recorded.refusals == [("allow_login", "no_session")]
    assert len(REGISTRY - recorded.succeeded) == len(REGISTRY) - 2
    assert recorded.settings is room.settings, "attributes pass through unrecorded"
