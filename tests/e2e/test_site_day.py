"""A whole exam day against `kiosk site serve` as a real process: the box registers by
code (and pins the site key), downloads the exam data, reports the seal check, fetches
the authorisation, starts late with a code from the site's calculator, three candidates
log in, answer and submit, and the box uploads the results, which the site reconciles
against the codes it issued and which carry those answers. Then the same day through
USB folders only, with the site switched off: one candidate's later answers arrive as
an answer package (with a work file) signed by that candidate's PC and imported from a
stick; the backup and the exported results carry them.

The officer works through `kiosk ctl` against the engine (`kiosk serve`, a real
process). What the exam PCs do — the scan replies of the USB day, the candidates'
logins, answers and submissions — is played in this process by a second room service on
the engine's room database (SQLite, WAL, IMMEDIATE write transactions: the two
processes write it in turn, as the engine's own room network would), with simulated
PCs whose keys this test holds so that it can sign an answer package as a seated PC."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from kiosk.common.crypto import cert_fingerprint
from kiosk.common.packages import AnswerFile
from kiosk.common.signed import open_sealed, seal_answer_package
from kiosk.services.bootstrap import build
from kiosk.services.ports import Ports
from kiosk.services.room import RoomService
from kiosk.services.simulated import SimulatedSeats
from kiosk.settings import load
from tests.e2e.cli_helpers import (
    CANDIDATES,
    MIN_FREE_BYTES,
    ROOM,
    ctl_ok,
    ctl_refused,
    engine_env,
    first_line,
    kiosk_command,
    load_exam,
    make_exam,
    run_kiosk,
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


@contextmanager
def exam_pcs(home: Path, fleet: SimulatedSeats | None = None) -> Iterator[RoomService]:
    """The exam PCs' side of the room: a room service on the engine's database whose
    seat network is `fleet` (simulated PCs with keys this process holds)."""
    settings = load(home=str(home), min_free_bytes=MIN_FREE_BYTES)
    side = build(settings, Ports(seats=fleet or SimulatedSeats(CANDIDATES)))
    try:
        yield side
    finally:
        side.db.close()


def log_in(pcs: RoomService, count: int) -> dict[str, str]:
    """The first `count` candidates log in at the first seats: admission number -> IP."""
    people = [c["admission_no"] for c in pcs.status()["session"]["candidates"][:count]]
    seats = [s["ip"] for s in pcs.seats()[:count]]
    for no, ip in zip(people, seats, strict=True):
        assert pcs.candidate_login(no, ip)["state"] == "logged_in"
    return dict(zip(people, seats, strict=True))


def three_answers(value: str, first_seq: int = 1) -> list[dict[str, Any]]:
    """Answers to q01..q03, numbered from `first_seq`."""
    return [answer(f"q0{i + 1}", value, first_seq + i) for i in range(3)]


def answer(question: str, value: Any, seq: int) -> dict[str, Any]:
    return {"subject": "T01", "question": question, "value": value, "seq": seq}


def write_and_submit(pcs: RoomService, seated: dict[str, str], skip: str = "") -> None:
    """Each seated candidate begins, saves three answers (their PC's journal) and submits;
    `skip` begins and saves but has not submitted yet."""
    for no, ip in seated.items():
        pcs.candidate_begin(no, ip)
        assert pcs.save_answers(no, ip, three_answers("A")) == {"acked": 3}
        if no != skip:
            pcs.candidate_submit(no, ip)


def end_with_the_rest_absent(home: Path) -> None:
    people = [c["admission_no"] for c in ctl_ok(home, "status")["session"]["candidates"]
              if c["state"] == "not_logged_in"]  # fmt: skip
    assert len(people) == CANDIDATES - 3
    ctl_ok(home, "absent", "--admission-nos", *people, "--confirm")
    assert ctl_ok(home, "end", "--password", "888")["session"] == 1


def stored_answers(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A results package's answers: admission number -> {question: value}."""
    out: dict[str, dict[str, Any]] = {}
    for a in doc["answers"]:
        out.setdefault(a["admission_no"], {})[a["question"]] = a["value"]
    return out


def test_a_day_with_the_site_then_the_same_day_by_usb_with_the_site_off(tmp_path: Path) -> None:
    plan = tmp_path / "site"
    # Session 1 began 20 minutes ago: past the 15-minute grace, so the start needs a code.
    room = make_exam(plan, time.time() - 20 * 60, countdown_s=0, late_login_s=0, earliest_submit_s=0)
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
        with exam_pcs(home) as pcs:
            seated = log_in(pcs, 3)
            assert late_start(home, plan)["late"] is True
            write_and_submit(pcs, seated)
        end_with_the_rest_absent(home)

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
        [(kept,)] = site_db(plan, "SELECT stored_path FROM uploads WHERE session = 1")
        box_cert = (home / "keys" / "box.crt").read_bytes()
        received = stored_answers(open_sealed(Path(kept).read_bytes(), "results-package", box_cert))
        assert received == {no: {"q01": "A", "q02": "A", "q03": "A"} for no in seated}, "the site has them"
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
        ctl_ok(home, "config", "--room-code", ROOM, "--answer-dir", str(home.parent / "answers"),
               "--box-ip", "127.0.0.1")  # fmt: skip
        fleet = SimulatedSeats(CANDIDATES)
        with exam_pcs(home, fleet) as pcs:
            fleet.attach(pcs)  # the PCs answer the scan and keep their links up
            assert pcs.seats_scan("ip")["replies"] == CANDIDATES
        env = ctl_ok(home, "envcheck")
        assert (env["total"], env["passed"]) == (CANDIDATES, CANDIDATES)
        load_exam(home, room)
        assert ctl_ok(home, "seal-check")["passed"]
        ctl_ok(home, "session-enter", "--session", "1", *STAFF)
        ctl_refused(home, "authorise", code="not_site_mode")
        ctl_ok(home, "authorise", "--path", str(room.authorisations[1]))
        ctl_ok(home, "allow-login")
        stick = tmp_path / "stick-2"
        stick.mkdir()
        with exam_pcs(home, fleet) as pcs:
            seated = log_in(pcs, 3)
            assert late_start(home, plan)["late"] is True
            last, last_ip = list(seated.items())[-1]
            write_and_submit(pcs, seated, skip=last)
            # The last candidate's PC lost its link: the answers after the journal's come
            # on a stick, sealed as that PC's export does (its key, the room's package key).
            work = AnswerFile("T01", "q04", "表格.xlsx", b"PK\x03\x04 the candidate's work")
            listing = {"files": [{"name": work.name, "size": len(work.data), "sha256": work.sha256}]}
            newer = [*three_answers("B", first_seq=4), answer("q04", listing, 7)]
            key = bytes(pcs.require_exam().package_key)  # what the login answer handed that PC
            package = stick / f"answer-{last}-s1-7.json"
            package.write_bytes(seal_answer_package(
                fleet.pcs[last_ip].identity, key, room_code=ROOM, session=1, admission_no=last,
                answers=[{**a, "saved_at": time.time()} for a in newer], created_at=time.time(), files=[work],
            ))  # fmt: skip
        imported = ctl_ok(home, "import-answers", "--path", str(package))
        assert (imported["admission_no"], imported["newer"]) == (last, 4)
        with exam_pcs(home, fleet) as pcs:
            pcs.candidate_submit(last, last_ip)
        end_with_the_rest_absent(home)
        backup = ctl_ok(home, "backup", "--dest", str(stick))
        assert backup["files"] == 1
        copied = stick / f"answer-files-{ROOM}" / "session-1" / last / "T01" / "q04" / work.name
        assert copied.read_bytes() == work.data
        ctl_refused(home, "upload", code="not_site_mode")
        listed = json.loads(json.dumps(ctl_ok(home, "export", "--dest", str(tmp_path))))
        assert Path(listed["path"]).name == f"results-{ROOM}-1.json"
        doc = open_sealed(Path(listed["path"]).read_bytes(), "results-package",
                          (home / "keys" / "box.crt").read_bytes())  # fmt: skip
        answers = stored_answers(doc)
        assert answers.pop(last) == {"q01": "B", "q02": "B", "q03": "B", "q04": listing}
        assert answers == {no: {"q01": "A", "q02": "A", "q03": "A"} for no in seated if no != last}
        assert [f["sha256"] for f in doc["files"]] == [work.sha256]
    finally:
        assert stop_engine(usb_box) == 0, usb_box.log_text()
