"""Session 1 of 40 candidates through the room service on a real SQLite file: the
during- and after-exam operations and their refusals, one rule at a time (the whole day
in one script, with its coverage asserted, is test_scripted_day.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.common.crypto import Identity, make_identity
from kiosk.common.packages import AnswerFile
from kiosk.common.signed import open_sealed, seal_answer_package
from kiosk.core.errors import Refused
from kiosk.store.models import Event, Exam
from tests.conftest import ROOM, T0, enter, pin_site

START = T0 + 3600  # 09:00


def refused(expected: str, fn, *args, **kwargs) -> Refused:
    with pytest.raises(Refused) as err:
        fn(*args, **kwargs)
    assert err.value.code == expected, err.value.en
    assert err.value.zh and err.value.en
    return err.value


def candidates(room) -> list[dict]:
    return room.status()["session"]["candidates"]


def seat_ips(room) -> list[str]:
    return [s["ip"] for s in room.seats()]


def answer_package(
    path: Path,
    pc: Identity,
    admission_no: str,
    answers: list[dict],
    session: int = 1,
    room_code: str = ROOM,
    files: tuple[AnswerFile, ...] = (),
) -> str:
    """What the exam PC exports: sealed with the room's key, signed by the PC's key."""
    key = bytes(Exam.get().package_key)
    raw = seal_answer_package(
        pc, key, room_code=room_code, session=session, admission_no=admission_no, answers=answers,
        created_at=START, files=files,
    )  # fmt: skip
    path.write_bytes(raw)
    return str(path)


def test_entering_a_session_needs_a_passed_seal_check_and_staff(room, fleet, exam_files):
    room.configure(ROOM, str(Path(room.settings.home) / "answers"), box_ip="127.0.0.1")
    refused("no_exam_data", enter, room)
    pin_site(room, exam_files)
    room.exam_import(str(exam_files.package))
    refused("seal_not_passed", enter, room)


def test_the_session_flow_refuses_each_step_out_of_order(ready_room, clock, exam_files):
    room = ready_room
    refused("no_session", room.allow_login)
    refused("bad_staff", room.session_enter, 1, "", "15000000001", "李四", "15000000002")
    refused("bad_staff", room.session_enter, 1, "张三", "12ab", "李四", "15000000002")
    enter(room)
    refused("not_authorised", room.allow_login)
    refused("wrong_session", room.authorise, str(exam_files.auth[2]))
    room.authorise(str(exam_files.auth[1]))
    assert room.exam_summary()["sessions"][0]["papers"] == 1
    refused("too_early_login", room.allow_login)
    refused("login_not_allowed", room.allow_start)
    clock.set(START - 1800)
    room.allow_login()
    first = candidates(room)[0]
    refused("not_a_seat", room.candidate_login, first["admission_no"], "127.9.9.9")
    info = room.candidate_login(first["admission_no"], seat_ips(room)[0])
    assert info["state"] == "logged_in" and info["papers"]["T01"]
    assert all("answer" not in q for q in info["papers"]["T01"]), "answer keys never leave the box"
    refused("already_logged_in", room.candidate_login, first["admission_no"], seat_ips(room)[1])
    refused("not_started", room.candidate_begin, first["admission_no"], seat_ips(room)[0])
    result = room.allow_start()
    assert result["start"] == START and result["countdown_s"] == 1800
    refused("already_started", room.allow_start)


def test_a_late_start_needs_a_code_for_the_shown_challenge(ready_room, clock, exam_files):
    room = ready_room
    enter(room)
    room.authorise(str(exam_files.auth[1]))
    clock.set(START - 600)
    room.allow_login()
    clock.set(START + 16 * 60)
    err = refused("late_start_code_needed", room.allow_start)
    challenge = room.challenge("late_start")["challenge"]
    assert challenge in err.zh
    refused("code_malformed", room.allow_start, "0O1I")
    wrong = exam_files.code("late_start", challenge, clock.now(), session=2)
    refused("code_wrong", room.allow_start, wrong)
    code = exam_files.code("late_start", challenge, clock.now())
    result = room.allow_start(code)
    assert result["late"] and result["start"] == clock.now() + 60


def test_answers_sync_with_newest_sequence_winning(started):
    room = started
    c = candidates(room)[0]
    no, ip = c["admission_no"], c["ip"]
    assert room.save_answers(no, ip, [{"subject": "T01", "question": "q01", "value": "A", "seq": 2}]) == {
        "acked": 2
    }
    room.save_answers(no, ip, [{"subject": "T01", "question": "q01", "value": "B", "seq": 1}])
    answers = room.client_view(room.get_candidate(no))["answers"]
    assert [(a["question"], a["value"], a["seq"]) for a in answers] == [("q01", "A", 2)]
    other = candidates(room)[1]
    refused(
        "not_your_candidate",
        room.save_answers,
        no,
        other["ip"],
        [{"subject": "T01", "question": "q02", "value": "C", "seq": 3}],
    )
    refused(
        "bad_answers",
        room.save_answers,
        no,
        ip,
        [{"subject": "P01", "question": "q1", "value": 1, "seq": 4}],
    )
    refused(
        "bad_answers",
        room.save_answers,
        no,
        ip,
        [{"subject": "T01", "question": "q1", "value": 1, "seq": True}],
    )
    refused("bad_answers", room.save_answers, no, ip, "not a list")


def test_violations_are_registered_viewed_cancelled_and_exported(started, tmp_path):
    room = started
    c, absent = candidates(room)[2], candidates(room)[39]
    refused("bad_violation_code", room.violation_add, c["admission_no"], "Z999")
    refused("not_present", room.violation_add, absent["admission_no"], "A101")
    v = room.violation_add(c["admission_no"], "A101", "携带纸条进入考场")
    assert room.status()["session"]["counts"]["violations"] == 1
    path = room.export_list("violations", str(tmp_path / "violations.xlsx"))
    assert path["rows"] == 1
    refused("confirm_needed", room.violation_cancel, v["id"])
    room.violation_cancel(v["id"], confirm=True)
    assert room.violations() == [] and room.status()["session"]["counts"]["violations"] == 0
    refused("unknown_violation", room.violation_cancel, v["id"], confirm=True)


def test_extra_time_is_free_up_to_the_allowance_then_needs_a_code(started, clock, exam_files):
    room = started
    c = candidates(room)[3]
    no = c["admission_no"]
    before = c["remaining_s"]
    first = room.extra_time(no, 300, "鼠标无法使用")
    assert first["granted_s"] == 300 and "实际补时 300 秒" in first["message"]
    assert room.candidate_dict(room.get_candidate(no))["remaining_s"] == before + 300
    err = refused("extra_time_code_needed", room.extra_time, no, 400)
    challenge = room.challenge("extra_time", no)["challenge"]
    assert challenge in err.zh
    refused(
        "code_wrong",
        room.extra_time,
        no,
        400,
        code=exam_files.code("extra_time", challenge, clock.now(), amount=500),
    )
    code = exam_files.code("extra_time", challenge, clock.now(), amount=400)
    assert room.extra_time(no, 400, code=code)["total_s"] == 700
    refused("no_challenge", room.extra_time, no, 100, code=code)
    room.challenge("extra_time", no)
    refused("code_used", room.extra_time, no, 100, code=code)
    # capped at the subject's duration (90 min); the report says what was really granted
    ch = room.challenge("extra_time", no)["challenge"]
    big = room.extra_time(no, 9000, code=exam_files.code("extra_time", ch, clock.now(), amount=9000))
    assert big["granted_s"] == 5400 - 700 and big["total_s"] == 5400
    refused("extra_time_cap", room.extra_time, no, 10)


def test_extra_time_needs_an_online_candidate_in_the_exam(started, clock):
    room = started
    c = candidates(room)[4]
    refused("not_in_exam", room.extra_time, candidates(room)[39]["admission_no"], 60)
    room.seat_link(c["ip"], False)
    refused("offline", room.extra_time, c["admission_no"], 60)
    clock.advance(125)
    room.seat_link(c["ip"], True)
    info = room.candidate_dict(room.get_candidate(c["admission_no"]))
    assert info["offline_s"] == 125, "offline time is shown so it can be granted back"
    room.extra_time(c["admission_no"], info["offline_s"], "断线补回")


def test_lock_message_and_raised_hand_reach_the_pc(started, fleet):
    room = started
    c = candidates(room)[5]
    room.lock([c["admission_no"]])
    assert fleet.pcs[c["ip"]].locked and room.candidate_dict(room.get_candidate(c["admission_no"]))["locked"]
    room.lock([c["admission_no"]], unlock=True)
    assert not fleet.pcs[c["ip"]].locked
    refused("not_in_exam", room.lock, [candidates(room)[39]["admission_no"]])
    room.message("请注意保存答案")
    assert all("message" in fleet.commands(ip) for ip in seat_ips(room))
    refused("text_too_long", room.message, "长" * 201)
    room.raise_hand(c["admission_no"], c["ip"])
    assert room.status()["session"]["counts"]["hands"] == 1
    room.hand_answer(c["admission_no"])
    refused("no_hand_raised", room.hand_answer, c["admission_no"])


def test_break_resume_moves_a_candidate_to_any_pc_with_answers_and_time(started, clock, fleet):
    room = started
    c = candidates(room)[6]
    no = c["admission_no"]
    room.save_answers(no, c["ip"], [{"subject": "T01", "question": "q05", "value": "C", "seq": 1}])
    refused("bad_situation", room.resume, [no], "不存在的情况", "x", "张三")
    situation = room.situation_types()[0]
    refused("confirm_online", room.resume, [no], situation, "考试机蓝屏", "张三")
    refused("text_too_long", room.resume, [no], situation, "字" * 201, "张三")
    result = room.resume([no], situation, "考试机蓝屏", "张三", confirm_online=True)
    assert result["forced_out"] == [c["ip"]] and "force_logout" in fleet.commands(c["ip"])
    clock.advance(300)
    spare = seat_ips(room)[39]  # the 40th PC has nobody on it
    view = room.candidate_login(no, spare)
    assert view["state"] == "in_exam" and view["seat"] == "040"
    assert [a["value"] for a in view["answers"]] == ["C"]
    assert view["remaining_s"] == 5400 - 300, "time ran on during the move"
    assert room.resumes()[0]["description"] == "考试机蓝屏"


def test_a_late_candidate_needs_break_resume_with_a_code(started, clock, exam_files):
    room = started
    late = candidates(room)[38]
    ip = seat_ips(room)[38]
    clock.set(START + 1801)
    refused("late_login", room.candidate_login, late["admission_no"], ip)
    situation = room.situation_types()[2]
    err = refused(
        "late_candidate_code_needed", room.resume, [late["admission_no"]], situation, "迟到", "张三"
    )
    challenge = room.challenge("late_candidate")["challenge"]
    assert challenge in err.zh
    code = exam_files.code("late_candidate", challenge, clock.now())
    room.resume(
        [late["admission_no"]],
        situation,
        "按时进入考场，但登录时超过允许登录时间",
        "张三",
        code=code,
    )
    assert room.candidate_login(late["admission_no"], ip)["state"] == "in_exam"


def test_absence_is_allowed_only_after_the_late_login_limit(started, clock):
    room = started
    absent = candidates(room)[39]["admission_no"]
    refused("confirm_needed", room.absent, [absent])
    refused("absence_too_early", room.absent, [absent], confirm=True)
    clock.set(START + 1801)
    refused("not_absent_candidate", room.absent, [candidates(room)[0]["admission_no"]], confirm=True)
    room.absent([absent], confirm=True)
    assert room.status()["session"]["counts"]["absent"] == 1
    refused("absent", room.candidate_login, absent, seat_ips(room)[39])


def test_submission_collection_and_import_follow_the_time_rules(started, fleet, clock, tmp_path):
    room = started
    a, b, d = candidates(room)[7], candidates(room)[8], candidates(room)[9]
    pc_b, pc_d = fleet.pcs[b["ip"]].identity, fleet.pcs[d["ip"]].identity
    refused("too_early_submit", room.candidate_submit, a["admission_no"], a["ip"])
    pkg = answer_package(
        tmp_path / "b.json",
        pc_b,
        b["admission_no"],
        [{"subject": "T01", "question": "q01", "value": "D", "seq": 9, "saved_at": START}],
    )
    refused("too_early_collect", room.collect, pkg)
    clock.set(START + 1800)
    room.candidate_submit(a["admission_no"], a["ip"])
    refused("already_submitted", room.candidate_submit, a["admission_no"], a["ip"])
    assert room.collect(pkg)["answers"] == 1
    assert room.get_candidate(b["admission_no"]).state == "submitted"
    assert room.collect(pkg)["already"], "the same package twice changes nothing"
    foreign = answer_package(tmp_path / "f.json", pc_d, d["admission_no"], [], room_code="1999999002")
    refused("foreign_room", room.import_answers, foreign)
    other_session = answer_package(tmp_path / "s.json", pc_d, d["admission_no"], [], session=2)
    refused("wrong_session", room.import_answers, other_session)
    stranger = answer_package(tmp_path / "x.json", make_identity("stranger"), d["admission_no"], [])
    refused("foreign_pc", room.import_answers, stranger)
    neighbour = answer_package(tmp_path / "n.json", fleet.pcs[a["ip"]].identity, d["admission_no"], [])
    refused("foreign_candidate", room.import_answers, neighbour)
    (tmp_path / "broken.json").write_text("{not json")
    refused("package_invalid", room.import_answers, str(tmp_path / "broken.json"))
    room.save_answers(
        d["admission_no"], d["ip"], [{"subject": "T01", "question": "q02", "value": "A", "seq": 5}]
    )
    work = AnswerFile("T01", "q03", "表格.xlsx", b"PK\x03\x04 the candidate's work")
    newer = answer_package(
        tmp_path / "d.json",
        pc_d,
        d["admission_no"],
        [
            {"subject": "T01", "question": "q02", "value": "B", "seq": 7, "saved_at": START},
            {"subject": "T01", "question": "q03", "value": "C", "seq": 3, "saved_at": START},
        ],
        files=(work,),
    )
    stray = answer_package(tmp_path / "x.json", pc_d, d["admission_no"], [], files=(work,))
    refused("bad_answers", room.import_answers, stray)
    assert room.import_answers(newer)["newer"] == 2
    stored = Path(room.config().answer_dir) / "session-1" / d["admission_no"] / "T01" / "q03" / "表格.xlsx"
    assert stored.read_bytes() == work.data
    values = {
        x["question"]: x["value"] for x in room.client_view(room.get_candidate(d["admission_no"]))["answers"]
    }
    assert values == {"q02": "B", "q03": "C"}


def test_reexam_wipes_the_chosen_subject_after_every_confirmation(
    started, fleet, clock, exam_files, tmp_path
):
    room = started
    c = candidates(room)[10]
    no = c["admission_no"]
    work = AnswerFile("T01", "q01", "work.txt", b"the candidate's work")
    answer = {"subject": "T01", "question": "q01", "value": "A", "seq": 1, "saved_at": START}
    room.import_answers(
        answer_package(tmp_path / "p.json", fleet.pcs[c["ip"]].identity, no, [answer], files=(work,))
    )
    folder = Path(room.config().answer_dir) / "session-1" / no / "T01"
    assert (folder / "q01" / "work.txt").read_bytes() == work.data
    refused("tick_understood", room.reexam, no, ["T01"], "作答数据无法恢复", "")
    refused("bad_subjects", room.reexam, no, ["P01"], "作答数据无法恢复", "", understood=True)
    err = refused("reexam_code_needed", room.reexam, no, ["T01"], "作答数据无法恢复", "", understood=True)
    challenge = room.challenge("reexam", no)["challenge"]
    assert challenge in err.zh
    code = exam_files.code("reexam", challenge, clock.now())
    refused("confirm_needed", room.reexam, no, ["T01"], "作答数据无法恢复", code, understood=True)
    clock.advance(3600 + 700)
    refused(
        "code_expired",
        room.reexam,
        no,
        ["T01"],
        "作答数据无法恢复",
        code,
        understood=True,
        confirm=True,
    )
    challenge = room.challenge("reexam", no)["challenge"]
    code = exam_files.code("reexam", challenge, clock.now())
    result = room.reexam(no, ["T01"], "作答数据无法恢复", code, understood=True, confirm=True)
    assert result["answers_wiped"] == 1 and room.get_candidate(no).state == "not_logged_in"
    assert room.client_view(room.get_candidate(no))["answers"] == []
    assert not folder.exists(), "the subject's work files go with its answers"
    # Long past the late-login limit, the candidate logs in again and writes (manual 2.16).
    assert room.candidate_login(no, c["ip"])["state"] == "in_exam"


def test_the_whole_session_ends_verifies_and_reports(started, clock, tmp_path):
    room = started
    cands = candidates(room)
    clock.set(START + 1801)
    room.absent([c["admission_no"] for c in cands[38:]], confirm=True)
    for c in cands[:37]:
        room.save_answers(
            c["admission_no"],
            c["ip"],
            [{"subject": "T01", "question": f"q{i:02d}", "value": "A", "seq": i} for i in range(1, 11)],
        )
        room.candidate_submit(c["admission_no"], c["ip"])
    err = refused("candidates_still_writing", room.end, "888")
    assert "1" in err.zh
    last = cands[37]
    room.candidate_submit(last["admission_no"], last["ip"])
    refused("wrong_password", room.end, "999")
    room.end("888")
    refused("no_session", room.allow_login)
    table = room.verify()
    totals = table["totals"]
    assert (totals["total"], totals["absent"], totals["collected"]) == (40, 2, 40)
    assert table["ok"] and table["rows"][0]["progress_pct"] == 22  # 10 of 45 questions
    refused("backup_first", room.upload)
    usb = tmp_path / "usb-stick"
    usb.mkdir()
    progress = []
    backup = room.backup(str(usb), progress=lambda done, total: progress.append((done, total)))
    assert progress and progress[-1] == (backup["bytes"], backup["bytes"])
    doc = open_sealed(Path(backup["path"]).read_bytes(), "results-package", room.identity.cert_pem)
    assert doc["session"] == 1 and len(doc["answers"]) == 370 and doc["event_chain"]["ok"]
    refused("not_site_mode", room.upload)
    exported = room.export(str(tmp_path))
    assert Path(exported["path"]).exists() and exported["message"] == "导出完成"
    record = room.situation_record(str(tmp_path / "situation.html"), 1)
    html = Path(record["path"]).read_text(encoding="utf-8")
    assert "考场情况记录单" in html and "缺考人数:2人" in html
    verification = room.export_list("verification", str(tmp_path / "verify.csv"))
    assert verification["rows"] == 40


def test_the_event_log_names_the_first_tampered_event(started):
    room = started
    assert room.log_verify()["ok"]
    target = Event.select().order_by(Event.id).offset(10).first()
    Event.update(payload='{"forged": true}').where(Event.id == target.id).execute()
    report = room.log_verify()
    assert not report["ok"] and report["first_bad_id"] == target.id


def test_five_wrong_codes_spend_the_challenge(started, clock, exam_files):
    room = started
    no = candidates(room)[11]["admission_no"]
    room.extra_time(no, 600)
    challenge = room.challenge("extra_time", no)["challenge"]
    for _ in range(4):
        refused("code_wrong", room.extra_time, no, 60, code="ABCDEFGH")
    refused("challenge_spent", room.extra_time, no, 60, code="ABCDEFGH")
    good = exam_files.code("extra_time", challenge, clock.now(), amount=60)
    refused("no_challenge", room.extra_time, no, 60, code=good)
    fresh = room.challenge("extra_time", no)["challenge"]
    assert fresh != challenge
    assert (
        room.extra_time(no, 60, code=exam_files.code("extra_time", fresh, clock.now(), amount=60))["total_s"]
        == 660
    )


def test_login_is_allowed_by_itself_when_the_window_opens(ready_room, clock, exam_files):
    room = ready_room
    assert room.tick() == {}
    enter(room)
    room.authorise(str(exam_files.auth[1]))
    clock.set(START - 1801)
    assert room.tick() == {} and not room.status()["session"]["login_allowed"]
    clock.set(START - 1800)
    assert room.tick()["allow_login"]
    assert room.status()["session"]["login_allowed"]
    assert room.tick() == {}
    event = Event.select().where(Event.kind == "login_allowed").get()
    assert event.operator == "系统"


def test_remaining_time_does_not_depend_on_a_restart_of_the_box(started, clock, settings, fleet):
    from kiosk.services.bootstrap import build
    from kiosk.services.ports import Ports

    room = started
    c = candidates(room)[12]
    room.extra_time(c["admission_no"], 120)
    clock.advance(600)
    before = room.candidate_dict(room.get_candidate(c["admission_no"]))
    room.db.close()
    again = build(settings, Ports(seats=fleet), clock)
    after = again.candidate_dict(again.get_candidate(c["admission_no"]))
    assert after["remaining_s"] == before["remaining_s"] == 5400 + 120 - 600
    assert after["state"] == "in_exam" and again.log_verify()["ok"]


def test_events_name_the_operator_time_and_ip(started, clock):
    room = started
    c = candidates(room)[13]
    room.violation_add(c["admission_no"], "A102")
    staff = Event.select().where(Event.kind == "violation_registered").get()
    assert (staff.operator, staff.ip, staff.ts) == ("张三", "127.0.0.1", clock.now())
    login = Event.select().where(Event.kind == "login", Event.admission_no == c["admission_no"]).get()
    assert (login.operator, login.ip, login.seat) == ("", c["ip"], int(c["seat"]))


def test_every_answer_package_on_a_stick_is_imported_and_a_bad_one_is_named(started, fleet, tmp_path):
    room = started
    a, b = candidates(room)[3], candidates(room)[4]
    stick = tmp_path / "stick"
    stick.mkdir()
    work = AnswerFile("T01", "q05", "work.txt", b"operation work" * 1000)
    for c, files in ((a, (work,)), (b, ())):
        answers = [{"subject": "T01", "question": f"q{i:02d}", "value": "B", "seq": i, "saved_at": START}
                   for i in range(1, 6)]  # fmt: skip
        answer_package(stick / f"answer-{c['admission_no']}.json", fleet.pcs[c["ip"]].identity,
                       c["admission_no"], answers, files=files)  # fmt: skip
    raw = (stick / f"answer-{a['admission_no']}.json").read_bytes()
    (stick / "damaged.json").write_bytes(raw[:-10])
    answer_package(stick / "neighbour.json", fleet.pcs[a["ip"]].identity, b["admission_no"], [])
    events = Event.select().count()
    result = room.import_answers_all(str(stick))
    assert sorted(i["file"] for i in result["imported"]) == sorted(
        f"answer-{c['admission_no']}.json" for c in (a, b)
    )
    assert {r["file"]: r["code"] for r in result["refused"]} == {
        "damaged.json": "bad_signature",
        "neighbour.json": "foreign_candidate",
    }
    assert result["newer"] == 10 and Event.select().count() == events + 2
    stored = Path(room.config().answer_dir) / "session-1" / a["admission_no"] / "T01" / "q05" / "work.txt"
    assert stored.read_bytes() == work.data
    assert room.import_answers_all(str(stick))["newer"] == 0, "the same packages again change nothing"


def test_a_package_that_cannot_be_read_is_refused_with_the_reason(started, tmp_path, monkeypatch):
    """A stick pulled out while the box reads it: a refusal naming the error, no crash."""
    path = tmp_path / "answer.json"
    path.write_bytes(b"{}\n")

    def pulled_out(self) -> bytes:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(Path, "read_bytes", pulled_out)
    err = refused("read_failed", started.import_answers, str(path))
    assert "Input/output error" in err.zh


def test_extra_time_records_list_each_grant_with_what_was_really_granted(started, clock, exam_files):
    room = started
    a, b = candidates(room)[14]["admission_no"], candidates(room)[15]["admission_no"]
    assert room.extra_times() == []
    room.extra_time(a, 300, "鼠标无法使用")
    clock.advance(60)
    room.extra_time(b, 200, "断线补回")
    challenge = room.challenge("extra_time", a)["challenge"]
    code = exam_files.code("extra_time", challenge, clock.now(), amount=9000)
    room.extra_time(a, 9000, "考试机故障", code=code)  # capped at the 90-minute duration
    refused("extra_time_cap", room.extra_time, a, 10)
    records = room.extra_times()
    assert [(r["admission_no"], r["requested_s"], r["granted_s"], r["total_s"], r["with_code"])
            for r in records] == [
        (a, 300, 300, 300, False),
        (b, 200, 200, 200, False),
        (a, 9000, 5100, 5400, True),
    ]  # fmt: skip
    assert [r["reason"] for r in records] == ["鼠标无法使用", "断线补回", "考试机故障"]
    assert records[1]["time"] == records[0]["time"] + 60
    assert all(r["name"] for r in records)
    assert room.extra_times(1) == records and room.extra_times(2) == []
    assert room.situation()["totals"]["extra_time"] == 2, "two candidates, three grants"


def test_the_countdown_runs_from_allow_start_to_the_start(ready_room, clock, exam_files):
    room = ready_room
    refused("no_session", room.countdown)
    enter(room)
    room.authorise(str(exam_files.auth[1]))
    assert room.countdown() == {"started": False, "countdown_s": None}
    clock.set(START - 1800)
    room.allow_login()
    clock.set(START - 1200)
    room.allow_start()
    assert room.countdown() == {"started": False, "countdown_s": 1200, "start": START}
    clock.advance(1199)
    assert room.countdown() == {"started": False, "countdown_s": 1, "start": START}
    clock.set(START)
    assert room.countdown() == {"started": True, "countdown_s": 0, "start": START}
    clock.advance(600)
    assert room.countdown()["countdown_s"] == 0, "never negative once the exam runs"
