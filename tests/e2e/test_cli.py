"""`kiosk serve` as a real process, driven by `kiosk ctl` processes over the local admin
API, on the real clock: the before-exam wizard, a session from entry to end, the
refusals and exit codes, the API's own checks, and the site's code calculator."""

from __future__ import annotations

import json
import os
import re
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.common.packages import parse_exam
from kiosk.common.signed import open_sealed, unverified_body
from kiosk.core import codes
from kiosk.core.errors import Refused
from kiosk.net.admin import PORT_FILE
from kiosk.site.mock import RoomFiles
from tests.e2e.cli_helpers import (
    CANDIDATES,
    ROOM,
    Engine,
    api,
    ctl,
    ctl_ok,
    ctl_refused,
    failed_items,
    load_exam,
    make_exam,
    run_kiosk,
    run_wizard,
    start_engine,
    stop_engine,
)

pytestmark = pytest.mark.slow

STAFF = (
    "--admin-name",
    "张三",
    "--admin-phone",
    "13807710001",
    "--invigilator-name",
    "王芳",
    "--invigilator-phone",
    "15977120003",
)
WIZARD_STEPS = ("params", "seats", "envcheck", "exam", "seal")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A fresh engine with 40 simulated exam PCs; it must stop cleanly on SIGTERM."""
    eng = start_engine(tmp_path)
    yield eng
    code = stop_engine(eng)
    assert code == 0, f"kiosk serve exited with {code} on SIGTERM:\n{eng.log_text()}"


@pytest.fixture
def exam(tmp_path: Path) -> RoomFiles:
    """Session 1 began a minute ago (inside the 15-minute grace); no countdown, no
    earliest-submission wait and no late-login limit, so nothing has to wait."""
    return make_exam(tmp_path / "usb", time.time() - 60, countdown_s=0, earliest_submit_s=0, late_login_s=0)


def enter_and_start(home: Path, exam: RoomFiles) -> None:
    seal = run_wizard(home, exam)
    assert seal["passed"], failed_items(seal)
    assert ctl_ok(home, "session-enter", "--session", "1", *STAFF) == {"session": 1, "name": "第一场次"}
    assert ctl_ok(home, "authorise", "--path", str(exam.authorisations[1])) == {
        "already": False,
        "papers": 1,
    }
    assert ctl_ok(home, "allow-login")["login_allowed_at"] is not None


# -- 考前 ------------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_the_before_exam_wizard_runs_through_ctl(engine: Engine, exam: RoomFiles) -> None:
    home = engine.home
    assert ctl_ok(home, "wizard") == dict.fromkeys(WIZARD_STEPS, False)

    # human output: a Chinese summary on stdout, exit 0
    run = ctl(
        home,
        "config",
        "--room-code",
        ROOM,
        "--answer-dir",
        str(engine.root / "answers"),
        "--box-ip",
        "127.0.0.1",
    )
    assert run.code == 0 and run.err == "", str(run)
    assert run.out.splitlines()[0] == "完成：参数配置" and f"考场代码: {ROOM}" in run.out, str(run)
    assert (engine.root / "answers").is_dir(), "saving the parameters creates the answer folder"

    scan = ctl_ok(home, "seats-scan")
    assert scan["replies"] == CANDIDATES and len(scan["added"]) == CANDIDATES
    seats = ctl_ok(home, "seats")
    assert [s["seat"] for s in seats] == [f"{n:03d}" for n in range(1, CANDIDATES + 1)]
    offline = [s["seat"] for s in seats if not s["online"]]
    assert offline == [], f"the simulated PCs answered the scan, so their daemons are online: {offline}"

    env = ctl_ok(home, "envcheck")
    assert (env["total"], env["passed"], env["failed"]) == (CANDIDATES, CANDIDATES, 0)
    early = ctl_ok(home, "seal-check")
    assert not early["passed"] and failed_items(early) == ["exam"], early["items"]

    loaded = load_exam(home, exam)
    assert loaded["policy"]["countdown_s"] == 0
    assert [(s["number"], s["candidates"], s["state"]) for s in loaded["sessions"]] == [
        (1, CANDIDATES, "未开考"),
        (2, CANDIDATES, "未开考"),
    ]

    seal = ctl_ok(home, "seal-check")
    assert seal["passed"] is True, f"seal check failed on {failed_items(seal)}"
    assert ctl_ok(home, "wizard") == dict.fromkeys(WIZARD_STEPS, True)


@pytest.mark.timeout(120)
def test_refusals_exit_1_with_a_chinese_reason_and_change_nothing(engine: Engine) -> None:
    home = engine.home
    answers = str(engine.root / "answers")
    run = ctl(home, "config", "--room-code", "12345", "--answer-dir", answers, "--box-ip", "127.0.0.1")
    assert run.code == 1 and run.out == "", str(run)
    first, second = run.err.splitlines()[:2]
    assert first == "拒绝：考场代码应为10位数字（考点代码7位+3位）", str(run)
    assert second.startswith("(bad_room_code: "), str(run)

    run = ctl(
        home, "config", "--room-code", "12345", "--answer-dir", answers, "--box-ip", "127.0.0.1", as_json=True
    )
    assert run.code == 1 and run.err == "", str(run)
    assert run.json() == {
        "ok": False,
        "error": {
            "code": "bad_room_code",
            "zh": "考场代码应为10位数字（考点代码7位+3位）",
            "en": "room code must be 10 digits",
        },
    }

    ctl_refused(
        home,
        "config",
        "--room-code",
        ROOM,
        "--answer-dir",
        "relative/answers",
        "--box-ip",
        "127.0.0.1",
        code="bad_answer_dir",
    )
    ctl_refused(home, "exam-import", "--path", str(engine.root / "nowhere.json"), code="not_configured")
    ctl_refused(home, "session-enter", "--session", "1", *STAFF, code="not_configured")
    assert not (engine.root / "answers").exists()
    assert ctl_ok(home, "wizard")["params"] is False, "a refused operation saves nothing"

    run = ctl(home, "frobnicate")
    assert run.code == 2 and "invalid choice: 'frobnicate'" in run.err, str(run)
    run = ctl(home, "config", "--answer-dir", answers)
    assert run.code == 2 and "--room-code" in run.err, "argparse names the missing option"


# -- 考中 and 考后 ---------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_a_session_runs_from_entry_to_end_through_ctl(engine: Engine, exam: RoomFiles) -> None:
    home = engine.home
    ctl_refused(home, "allow-login", code="no_session")
    enter_and_start(home, exam)

    started = ctl_ok(home, "allow-start")
    assert started["late"] is False and started["countdown_s"] == 0
    assert abs(started["start"] - time.time()) < 30, "no countdown: the exam starts now"
    ctl_refused(home, "allow-start", code="already_started")

    status = ctl_ok(home, "status")
    session = status["session"]
    assert (session["number"], session["state_zh"]) == (1, "考试中")
    assert session["countdown"]["started"] is True
    counts = session["counts"]
    assert (
        counts["expected"],
        counts["logged_in"],
        counts["in_exam"],
        counts["submitted"],
        counts["absent"],
        counts["violations"],
    ) == (CANDIDATES, 0, 0, 0, 0, 0)
    assert all(c["state"] == "not_logged_in" for c in session["candidates"])
    assert 0 < session["remaining_s"] <= 90 * 60
    admission_nos = [c["admission_no"] for c in session["candidates"]]
    assert len(set(admission_nos)) == CANDIDATES

    table = dict(map(tuple, ctl_ok(home, "violation-codes")))
    assert {"A101", "B103"} <= set(table) and "通讯工具" in table["A101"]
    run = ctl(home, "violation-codes")
    assert run.code == 0 and run.out.startswith("完成：违纪代码表\n") and "A101" in run.out, str(run)

    challenge = ctl_ok(home, "challenge", "--purpose", "late_start")
    assert re.fullmatch(r"\d{6}", challenge["challenge"]), challenge
    assert (challenge["purpose_zh"], challenge["room_code"], challenge["session"]) == ("延考", ROOM, 1)
    again = ctl_ok(home, "challenge", "--purpose", "late_start")
    assert again["challenge"] == challenge["challenge"], "the pending challenge is shown again"
    ctl_refused(home, "challenge", "--purpose", "holiday", code="bad_purpose")

    sent = ctl_ok(home, "message", "--text", "请注意保存答案")
    assert len(sent["ok"]) == CANDIDATES and sent["failed"] == {}
    ctl_refused(home, "message", "--text", "长" * 201, code="text_too_long")

    # the bad room code is refused in the middle of an exam too, and the room keeps its code
    run = ctl(
        home,
        "config",
        "--room-code",
        "19999990",
        "--answer-dir",
        str(engine.root / "answers"),
        "--box-ip",
        "127.0.0.1",
    )
    assert run.code == 1 and run.err.startswith("拒绝：考场代码") and run.out == "", str(run)
    assert ctl_ok(home, "status")["config"]["room_code"] == ROOM

    err = ctl_refused(home, "end", "--password", "888", code="candidates_still_writing")
    assert f"{CANDIDATES} 名考生" in err["zh"]
    ctl_refused(home, "absent", "--admission-nos", *admission_nos, code="confirm_needed")
    assert ctl_ok(home, "absent", "--admission-nos", *admission_nos, "--confirm") == {"absent": admission_nos}
    assert ctl_ok(home, "status")["session"]["counts"]["absent"] == CANDIDATES

    err = ctl_refused(home, "end", "--password", "999", code="wrong_password")
    assert "密码错误" in err["zh"]
    run = ctl(home, "end", "--password", "999")
    assert run.code == 1 and run.err.startswith("拒绝：密码错误"), str(run)
    ended = ctl_ok(home, "end", "--password", "888")
    assert ended["session"] == 1
    ctl_refused(home, "allow-login", code="no_session")

    table = ctl_ok(home, "verify")
    assert (table["totals"]["total"], table["totals"]["absent"]) == (CANDIDATES, CANDIDATES)
    usb = engine.root / "usb-stick"
    usb.mkdir()
    backup = ctl_ok(home, "backup", "--dest", str(usb))
    assert Path(backup["path"]).is_file() and Path(backup["path"]).parent == usb
    box_cert = (home / "keys" / "box.crt").read_bytes()
    doc = open_sealed(Path(backup["path"]).read_bytes(), "results-package", box_cert)
    assert doc["session"] == 1 and doc["event_chain"]["ok"] is True

    chain = ctl_ok(home, "log-verify")
    assert chain["ok"] is True and chain["first_bad_id"] is None and chain["count"] > 50, chain


@pytest.mark.timeout(120)
def test_a_late_start_takes_a_code_from_the_site_calculator(tmp_path: Path, engine: Engine) -> None:
    exam = make_exam(tmp_path / "late-usb", time.time() - 20 * 60, countdown_s=0)
    home = engine.home
    enter_and_start(home, exam)
    err = ctl_refused(home, "allow-start", code="late_start_code_needed")
    challenge = ctl_ok(home, "challenge", "--purpose", "late_start")["challenge"]
    assert challenge in err["zh"], "the refusal shows the challenge to read to the site"

    def site_code(session: str) -> str:
        run = run_kiosk(
            "site",
            "code",
            "late_start",
            "--room",
            ROOM,
            "--session",
            session,
            "--challenge",
            challenge,
            "--package",
            str(exam.package),
            cwd=tmp_path,
        )
        assert run.code == 0, str(run)
        return run.out.strip()

    ctl_refused(home, "allow-start", "--code", site_code("2"), code="code_wrong")
    started = ctl_ok(home, "allow-start", "--code", site_code("1"))
    assert started["late"] is True and started["countdown_s"] == 0
    assert ctl_ok(home, "log-verify")["ok"] is True


# -- the admin API itself ---------------------------------------------------------------


@pytest.mark.timeout(120)
def test_the_admin_api_checks_the_token_and_every_parameter(engine: Engine) -> None:
    host, _, port = engine.address.partition(":")
    assert host == "127.0.0.1" and int(port) > 0, "bound to loopback on a free port"
    token_mode = stat.S_IMODE(os.stat(engine.home / "admin.token").st_mode)
    assert token_mode & 0o077 == 0, f"the token file is private, not {oct(token_mode)}"
    addr, token = engine.address, engine.token

    for bad in (None, "", "x" * len(token), token[:-1], token + "x"):
        status, answer = api(addr, "status", b"{}", bad)
        assert status == 401 and answer["error"]["code"] == "unauthorised", (bad, answer)
    status, answer = api(addr, "status", b"{}", token)
    assert status == 200 and answer["ok"] is True and answer["result"]["wizard"]["params"] is False

    answers = str(engine.root / "answers")

    def bad_params(verb: str, body: object) -> str:
        status, answer = api(addr, verb, json.dumps(body).encode(), token)
        assert status == 409 and answer["ok"] is False, (verb, body, answer)
        assert answer["error"]["code"] == "bad_params", (verb, body, answer)
        return answer["error"]["en"]

    assert "colour" in bad_params("config", {"room_code": ROOM, "answer_dir": answers, "colour": "red"})
    assert "room_code" in bad_params("config", {"room_code": int(ROOM), "answer_dir": answers})
    assert "answer_dir" in bad_params("config", {"room_code": ROOM})
    assert "site_mode" in bad_params("config", {"room_code": ROOM, "answer_dir": answers, "site_mode": "yes"})
    assert "timeout_s" in bad_params("seats-scan", {"timeout_s": "2"})
    assert "number" in bad_params("seats-delete", {"number": True, "confirm": True})
    assert "admission_nos" in bad_params("message", {"text": "hi", "admission_nos": "1901"})
    assert "admission_nos" in bad_params("message", {"text": "hi", "admission_nos": [1901]})

    for body in (b"[1, 2]", b"{not json", b'"config"'):
        status, answer = api(addr, "config", body, token)
        assert status == 400 and answer["error"]["code"] == "bad_request", (body, answer)
    status, answer = api(addr, "frobnicate", b"{}", token)
    assert status == 404 and answer["error"]["code"] == "unknown_verb"

    status, answer = api(addr, "wizard", None, token)
    assert status == 200 and answer["result"] == dict.fromkeys(WIZARD_STEPS, False), (
        "no refused request changed anything"
    )
    assert not Path(answers).exists()


# -- the command line without an engine ------------------------------------------------


def test_ctl_help_lists_the_verbs_by_group(tmp_path: Path) -> None:
    run = run_kiosk("ctl", "--help", cwd=tmp_path)
    assert run.code == 0, str(run)
    groups: dict[str, list[str]] = {}
    current = None
    for line in run.out.splitlines():
        if re.fullmatch(r"\S+:", line) and not line.isascii():
            current = line[:-1]
            groups[current] = []
        elif current and line.startswith("  ") and line.split():
            groups[current].append(line.split()[0])
    assert list(groups)[:4] == ["考前", "系统管理", "考中", "考后"], str(run)
    assert {"config", "seats-scan", "envcheck", "exam-import", "seal-check"} <= set(groups["考前"])
    assert {"passwd", "init-box"} <= set(groups["系统管理"])
    assert {"allow-start", "extra-time", "reexam", "resume", "end"} <= set(groups["考中"])
    assert {"verify", "backup", "upload", "export"} <= set(groups["考后"])
    listed = [v for verbs in groups.values() for v in verbs]
    assert len(listed) == len(set(listed)), "each verb is listed once"


def test_ctl_without_an_engine_exits_3_with_a_chinese_error(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    run = ctl(home, "status")
    assert run.code == 3 and run.out == "", str(run)
    assert run.err.startswith("错误：监考引擎未运行") and PORT_FILE in run.err, str(run)
    assert ctl(home, "status", as_json=True).code == 3


@pytest.mark.timeout(120)
def test_ctl_after_the_engine_stopped_exits_3(tmp_path: Path) -> None:
    eng = start_engine(tmp_path)
    assert ctl_ok(eng.home, "wizard")["params"] is False
    assert stop_engine(eng) == 0, eng.log_text()
    run = ctl(eng.home, "wizard")
    assert run.code == 3 and run.out == "" and run.err.startswith("错误："), str(run)
    assert "监考引擎" in run.err and "Traceback" not in run.err, str(run)


@pytest.mark.timeout(120)
def test_the_engine_stops_cleanly_on_sigterm_as_soon_as_it_is_ready(tmp_path: Path) -> None:
    """The port file is the engine's readiness signal: a supervisor may stop it at once."""
    for attempt in range(6):
        eng = start_engine(tmp_path / f"run-{attempt}", seats=1, poll_s=0.0)
        code = stop_engine(eng)
        assert code == 0, (
            f"attempt {attempt}: SIGTERM right after the port file appeared "
            f"ended kiosk serve with {code}:\n{eng.log_text()}"
        )


# -- the site's code calculator ---------------------------------------------------------


def test_site_code_prints_a_code_the_box_accepts(tmp_path: Path) -> None:
    exam = make_exam(tmp_path / "usb", time.time() + 3600)
    package = str(exam.package)
    run = run_kiosk(
        "site",
        "code",
        "extra_time",
        "--room",
        ROOM,
        "--session",
        "1",
        "--challenge",
        "123456",
        "--seconds",
        "300",
        "--package",
        package,
        cwd=tmp_path,
    )
    assert run.code == 0 and run.err == "", str(run)
    code = run.out.strip()
    assert re.fullmatch(f"[{codes.ALPHABET}]{{{codes.CODE_LEN}}}", code), str(run)

    secret = parse_exam(unverified_body(Path(package).read_bytes(), "exam-package")).site_secret
    now = time.time()
    codes.verify_code(secret, code, "extra_time", ROOM, 1, "123456", 300, now)
    with pytest.raises(Refused):
        codes.verify_code(secret, code, "extra_time", ROOM, 1, "123456", 301, now)

    run = run_kiosk(
        "site",
        "code",
        "extra_time",
        "--room",
        "19999",
        "--session",
        "1",
        "--challenge",
        "123456",
        "--seconds",
        "300",
        "--package",
        package,
        cwd=tmp_path,
    )
    assert run.code == 1 and run.out == "", str(run)
    assert run.err.startswith("拒绝：") and "考场代码应为10位数字" in run.err, str(run)
