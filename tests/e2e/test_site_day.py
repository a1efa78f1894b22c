"""A whole exam day against `kiosk site serve` as a real process: the box registers by
code (and pins the site key), downloads the exam data, reports the seal check, fetches
the authorisation, starts late with a code from the site's calculator and uploads the
results, which the site reconciles against the codes it issued. Then the same day
through USB folders only, with the site switched off."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from kiosk.common.crypto import cert_fingerprint
from tests.e2e.cli_helpers import (
    ROOM,
    ctl_ok,
    ctl_refused,
    engine_env,
    first_line,
    kiosk_command,
    make_exam,
    run_kiosk,
    run_wizard,
    start_engine,
    stop_engine,
)
from tests.liveroom import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
STAFF = ("--admin-name", "张三", "--admin-phone", "13807710001",
         "--invigilator-name", "王芳", "--invigilator-phone", "15977120003")  # fmt: skip


def site_db(plan: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(f"file:{plan}/site/site.db?mode=ro", uri=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def late_start(home: Path, plan: Path) -> dict:
    """The late start (延考): the challenge read to the site, its calculator's code."""
    challenge = ctl_ok(home, "challenge", "--purpose", "late_start")["challenge"]
    run = run_kiosk("site", "code", "late_start", "--room", ROOM, "--session", "1",
                    "--challenge", challenge, "--plan", str(plan), cwd=plan)  # fmt: skip
    assert run.code == 0, str(run)
    return ctl_ok(home, "allow-start", "--code", run.out.strip())


def end_with_everyone_absent(home: Path) -> None:
    people = [c["admission_no"] for c in ctl_ok(home, "status")["session"]["candidates"]]
    ctl_ok(home, "absent", "--admission-nos", *people, "--confirm")
    assert ctl_ok(home, "end", "--password", "888")["session"] == 1


def test_a_day_with_the_site_then_the_same_day_by_usb_with_the_site_off(tmp_path: Path) -> None:
    plan = tmp_path / "site"
    # Session 1 began 20 minutes ago: past the 15-minute grace, so the start needs a code.
    room = make_exam(plan, time.time() - 20 * 60, countdown_s=0, late_login_s=0)
    port = free_port()
    with (tmp_path / "site.log").open("wb") as log:
        site = subprocess.Popen(
            [*kiosk_command(), "site", "serve", "--plan", str(plan), "--port", str(port)],
            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, env=engine_env(),
        )  # fmt: skip
    box = start_engine(tmp_path / "box", env={"KIOSK_SITE_PORT": str(port)})
    try:
        assert f"127.0.0.1:{port}" in first_line(site, 60)
        home = box.home
        site_args = ("--room-code", ROOM, "--answer-dir", str(tmp_path / "answers"), "--box-ip", "127.0.0.1",
                     "--site-mode", "--site-ip", "127.0.0.1")  # fmt: skip
        ctl_refused(
            home, "config", *site_args, "--registration-code", "WRONGABC", code="registration_code_wrong"
        )
        ctl_ok(home, "config", *site_args, "--registration-code", room.registration_code)
        registered = site_db(plan, "SELECT box_fingerprint FROM rooms WHERE code = '1999999001'")
        assert registered == [(cert_fingerprint((home / "keys" / "box.crt").read_bytes()),)]
        ctl_ok(home, "seats-scan")
        ctl_ok(home, "envcheck")
        exam = ctl_ok(home, "exam-download")
        assert exam["loaded"] and [s["candidates"] for s in exam["sessions"]] == [40, 40]
        seal = ctl_ok(home, "seal-check")
        assert seal["passed"] and seal["reported"], seal
        assert site_db(plan, "SELECT passed FROM seal_reports") == [(1,)]
        ctl_ok(home, "session-enter", "--session", "1", *STAFF)
        assert ctl_ok(home, "authorise") == {"already": False, "papers": 1}
        ctl_ok(home, "allow-login")
        assert late_start(home, plan)["late"] is True
        end_with_everyone_absent(home)

        usb = tmp_path / "stick"
        usb.mkdir()
        ctl_refused(home, "upload", code="backup_first")
        backup = ctl_ok(home, "backup", "--dest", str(usb))
        assert Path(backup["path"]).is_file()
        uploaded = ctl_ok(home, "upload")
        assert uploaded["message"] == "上报完成" and uploaded["site"]["complete"] is True
        reconciled = uploaded["site"]["reconciliation"]
        assert [c["purpose"] for c in reconciled["matched"]] == ["late_start"], reconciled
        assert reconciled["not_issued"] == [] and reconciled["issued_unused"] == []
        assert ctl_ok(home, "upload")["site"] == uploaded["site"], "uploading again changes nothing"
        assert site_db(plan, "SELECT complete FROM uploads") == [(1,)]
    finally:
        site.send_signal(signal.SIGTERM)
        assert site.wait(15) == 0
        site.stdout.close()
        assert stop_engine(box) == 0, box.log_text()

    # The same day by USB only: the site is off.
    usb_box = start_engine(tmp_path / "usb-box", env={"KIOSK_SITE_PORT": str(port)})
    try:
        home = usb_box.home
        ctl_refused(
            home, "config", *site_args, "--registration-code", room.registration_code, code="site_offline"
        )
        assert ctl_ok(home, "status")["config"] is None, "a refused registration saves nothing"
        assert run_wizard(home, room)["passed"]
        ctl_ok(home, "session-enter", "--session", "1", *STAFF)
        ctl_refused(home, "authorise", code="not_site_mode")
        ctl_ok(home, "authorise", "--path", str(room.authorisations[1]))
        ctl_ok(home, "allow-login")
        assert late_start(home, plan)["late"] is True
        end_with_everyone_absent(home)
        stick = tmp_path / "stick-2"
        stick.mkdir()
        ctl_ok(home, "backup", "--dest", str(stick))
        ctl_refused(home, "upload", code="not_site_mode")
        listed = json.loads(json.dumps(ctl_ok(home, "export", "--dest", str(tmp_path))))
        assert Path(listed["path"]).name == f"results-{ROOM}-1.json"
    finally:
        assert stop_engine(usb_box) == 0, usb_box.log_text()
