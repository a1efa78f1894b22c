"""System management and the remaining operations: administrator, password and
lock-out, remote control, initialisation, seat lists in and out, reports, mock mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.store.models import Candidate, Seat
from tests.conftest import ROOM, T0, enter, make_exam_files, prepare
from tests.integration.test_exam_session import candidates, refused, seat_ips

START = T0 + 3600


def test_the_default_password_is_flagged_until_changed(room):
    assert room.login("888")["default_password"]
    refused("password_too_long", room.passwd, "888", "12345678901")
    refused("wrong_password", room.passwd, "000", "abc123")
    room.passwd("888", "abc123")
    assert not room.user()["default_password"]
    refused("wrong_password", room.login, "888")
    assert room.login("abc123")["warning"] == ""
    assert room.admin().password_hash.startswith("scrypt$")


def test_five_wrong_passwords_lock_the_box_for_five_minutes(room, clock):
    for _ in range(5):
        refused("wrong_password", room.login, "bad")
    err = refused("locked_out", room.login, "888")
    assert "秒后再试" in err.zh
    clock.advance(301)
    assert room.login("888")["ok"]


def test_administrator_name_and_phone_are_checked(room):
    refused("bad_phone", room.user_set, "张三", "12ab")
    refused("bad_name", room.user_set, "", "15000000001")
    assert room.user_set("张三", "15000000001")["name"] == "张三"


def test_remote_control_reaches_all_or_chosen_pcs(ready_room, fleet):
    room = ready_room
    ips = seat_ips(room)
    result = room.remote("reboot", ips[:2])
    assert result["ok"] == ips[:2] and fleet.commands(ips[0]) == ["reboot"]
    refused("unknown_ip", room.remote, "shutdown", ["127.1.1.1"])
    refused("bad_ip", room.remote, "shutdown", ["not-an-ip"])
    refused("bad_action", room.remote, "format")
    room.remote("shutdown")
    assert not any(pc.powered for pc in fleet.pcs.values())
    failed = room.remote("reboot")["failed"]
    assert len(failed) == 40 and set(failed.values()) == {"离线"}
    assert set(room.remote("wake")["ok"]) == set(ips)
    assert all(pc.powered for pc in fleet.pcs.values())


def test_initialising_pcs_needs_confirmation_and_no_running_exam(ready_room, fleet, clock, exam_files):
    room = ready_room
    refused("confirm_needed", room.init_pcs)
    assert len(room.init_pcs(uninstall=True, confirm=True)["ok"]) == 40
    assert fleet.pcs[seat_ips(room)[0]].received[-1] == ("init", {"uninstall": True})
    enter(room)
    room.authorise(str(exam_files.auth[1]))
    clock.set(START - 1000)
    room.allow_login()
    room.allow_start()
    refused("exam_running", room.init_pcs, confirm=True)


def test_initialising_the_box_keeps_or_wipes_parameters_and_seats(ready_room):
    room = ready_room
    refused("confirm_needed", room.init_box, "888")
    refused("wrong_password", room.init_box, "999", confirm=True)
    work = Path(room.config().answer_dir) / "session-1" / "190119999990011001" / "P01" / "q01" / "work.xlsx"
    work.parent.mkdir(parents=True)
    work.write_bytes(b"a candidate's work")
    room.init_box("888", keep_params_and_seats=True, confirm=True)
    assert room.exam() is None and Candidate.select().count() == 0
    assert not work.exists() and work.parents[4].is_dir(), "the work files go, the answer folder stays"
    assert room.config() is not None and Seat.select().count() == 40
    room.init_box("888", keep_params_and_seats=False, confirm=True)
    assert room.config() is None and Seat.select().count() == 0
    assert room.log_verify()["ok"], "the audit log survives initialisation"


def test_seat_lists_go_out_and_come_back_in(ready_room, tmp_path, room_factory):
    path = ready_room.export_list("seats", str(tmp_path / "seats.xlsx"))["path"]
    ips = seat_ips(ready_room)  # read before the other box binds the models to its database
    other = room_factory()
    other.configure(ROOM, "/tmp/answers-other", box_ip="127.0.0.1")
    assert other.seats_import(path)["imported"] == 40
    assert [s["ip"] for s in other.seats()] == ips
    bad = tmp_path / "bad.csv"
    bad.write_text("机位号,IP\n1,127.0.10.11\n2,127.0.10.11\n", encoding="utf-8")
    refused("bad_seat_list", other.seats_import, str(bad))
    refused("bad_table", other.seats_import, str(tmp_path / "missing.csv"))


@pytest.fixture
def room_factory(tmp_path, clock, fleet):
    from kiosk.services.bootstrap import build
    from kiosk.services.ports import Ports
    from kiosk.settings import load

    def make():
        return build(load(home=str(tmp_path / "other"), min_free_bytes=1024**2), Ports(seats=fleet), clock)

    return make


def test_the_environment_report_is_written_as_html(ready_room, tmp_path):
    refused("bad_path", ready_room.envcheck_report, str(tmp_path / "report.txt"))
    path = Path(ready_room.envcheck_report(str(tmp_path / "env.html"))["path"])
    html = path.read_text(encoding="utf-8")
    assert "环境检测" in html and "127.0.10.11" in html


def test_clients_start_close_and_the_candidate_log_reads_like_the_manual(
    ready_room, fleet, clock, exam_files, tmp_path
):
    room = ready_room
    enter(room)
    assert len(room.start_clients()["ok"]) == 40
    room.authorise(str(exam_files.auth[1]))
    clock.set(START - 1700)
    room.allow_login()
    c = candidates(room)[0]
    ip = seat_ips(room)[0]
    room.client_event("", ip, "client_started")
    room.client_event("", ip, "client_seat", {"seat": "001"})
    room.candidate_login(c["admission_no"], ip)
    for kind in ("login_confirmed", "agreement"):
        room.client_event(c["admission_no"], ip, kind)
    room.client_event(c["admission_no"], ip, "paper_drawn", {"subject": "理论知识"})
    refused("bad_event", room.client_event, c["admission_no"], ip, "format_disk")
    log = room.candidate_log(c["admission_no"])["log"]
    assert [x["text"] for x in log] == [
        "启动",
        "机位号(001)",
        "登录",
        "登录确认",
        "考试协议",
        "抽卷:理论知识",
    ]
    assert all(x["ip"] == ip for x in log)
    assert room.export_list("candidate-log", str(tmp_path / "log.csv"), c["admission_no"])["rows"] == 6
    assert [x["admission_no"] for x in room.find(c["name"])] == [c["admission_no"]]
    assert room.find("001")[0]["admission_no"] == c["admission_no"]
    refused("empty_query", room.find, " ")
    assert len(room.close_clients()["ok"]) == 40


def test_mock_mode_extras_are_refused_in_a_formal_exam(ready_room, exam_files):
    room = ready_room
    enter(room)
    refused("mock_only", room.auto_login, True)
    refused("mock_only", room.auto_answer, True)
    refused("mock_only", room.collect_all)


def mock_session_at_login_window(room, fleet, clock, tmp_path) -> None:
    """A mock exam loaded, session 1 entered and authorised, its login window just open."""
    files = make_exam_files(tmp_path / "mock-usb", mock=True)
    prepare(room, fleet, files)
    enter(room)
    room.authorise(str(files.auth[1]))
    clock.set(START - 1700)


def test_mock_mode_auto_login_auto_answer_and_unified_collection(room, fleet, clock, tmp_path):
    mock_session_at_login_window(room, fleet, clock, tmp_path)
    room.allow_login(auto_login=True)
    ip = seat_ips(room)[0]
    assert ("allow_login", {"session": 1, "auto_login": True}) in fleet.pcs[ip].received
    assert room.auto_answer(True)["auto_answer"] and "auto_answer" in fleet.commands(ip)
    third = room.candidate_login("", seat_ips(room)[2])  # auto-login by seat: seat 003
    assert third["admission_no"] == candidates(room)[2]["admission_no"]
    assert not room.auto_login(False)["auto_login"]
    refused("auto_login_off", room.candidate_login, "", seat_ips(room)[3])
    c = candidates(room)[0]
    room.candidate_login(c["admission_no"], ip)
    room.allow_start()
    clock.set(START)
    room.candidate_begin(c["admission_no"], ip)
    room.candidate_submit(c["admission_no"], ip)  # mock mode: no earliest-submission time
    c2 = candidates(room)[1]
    room.candidate_login(c2["admission_no"], seat_ips(room)[1])
    room.candidate_begin(c2["admission_no"], seat_ips(room)[1])
    assert room.collect_all()["ok"] == [seat_ips(room)[1]]


def test_events_of_a_rolled_back_change_are_never_announced(room):
    from kiosk.core.errors import Refused

    heard = []
    room.subscribe(lambda ev: heard.append(ev.kind))
    with pytest.raises(Refused), room.tx():
        room.event("ghost")
        raise Refused("test", "测试", "test")
    room.user_set("张三", "15000000001")
    assert heard == ["user_updated"]
    assert room.log_verify()["ok"]


def test_a_rolled_back_savepoint_takes_its_events_with_it(room):
    from kiosk.core.errors import Refused
    from kiosk.store.models import Event

    heard = []
    room.subscribe(lambda ev: heard.append(ev.kind))
    before = Event.select().count()
    with room.tx():
        room.event("kept_before")
        with pytest.raises(Refused), room.tx():
            room.event("ghost")
            raise Refused("test", "测试", "test")
        room.event("kept_after")
    assert heard == ["kept_before", "kept_after"]
    kinds = [e.kind for e in Event.select().where(Event.id > before).order_by(Event.id)]
    assert kinds == ["kept_before", "kept_after"]
    assert room.log_verify()["ok"]


def test_auto_login_asked_after_the_box_allowed_login_by_itself_is_on(room, fleet, clock, tmp_path):
    mock_session_at_login_window(room, fleet, clock, tmp_path)
    assert room.tick()["allow_login"]  # the login window opened: the box allowed login itself
    ip = seat_ips(room)[0]
    assert fleet.pcs[ip].received[-1] == ("allow_login", {"session": 1, "auto_login": False})
    room.allow_login(auto_login=True)
    assert fleet.pcs[ip].received[-1] == ("allow_login", {"session": 1, "auto_login": True})
    assert room.candidate_login("", ip)["admission_no"] == candidates(room)[0]["admission_no"]
    room.allow_login()  # asked again without it: auto-login stays on, and the PCs are told so
    assert fleet.pcs[ip].received[-1] == ("allow_login", {"session": 1, "auto_login": True})
