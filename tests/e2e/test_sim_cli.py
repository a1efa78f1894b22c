"""`stu-client sim --count 150` as its own process against `kiosk serve` with the real
room network on loopback, driven by `kiosk ctl` processes: every PC seated by the scan
and online, every command acknowledged by every PC, a mock exam played by the fleet
(auto-login by seat, auto-answer, unified collection), and every answer a PC holds as
acknowledged is in the box database."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiosk.site.mock import RoomFiles
from tests.conftest import author_room
from tests.e2e.cli_helpers import (
    ROOM,
    ctl_ok,
    engine_env,
    load_exam,
    start_engine,
    stop_engine,
    wait_until,
)  # fmt: skip
from tests.liveroom import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

PCS = 150
STAFF = ("--admin-name", "张三", "--admin-phone", "13807710001",
         "--invigilator-name", "王芳", "--invigilator-phone", "15977120003")  # fmt: skip


def mock_exam(folder: Path) -> RoomFiles:
    """A mock exam for 150 that began a minute ago, with nothing to wait for."""
    _, files = author_room(folder, time.time() - 60, PCS, mock=True,
                              countdown_s=0, earliest_submit_s=0, late_login_s=0)  # fmt: skip
    return files


def box_answers(home: Path) -> set[tuple[str, str, str, int]]:
    con = sqlite3.connect(f"file:{home}/room.db?mode=ro", uri=True)
    try:
        return set(con.execute("SELECT admission_no, subject, question, seq FROM answer"))
    finally:
        con.close()


def acked_on_pcs(state: Path) -> set[tuple[str, str, str, int]]:
    """Every answer each PC's journal holds as acknowledged by the box."""
    held = set()
    for journal in sorted(state.glob("KS-*/journal.db")):
        con = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
        try:
            for no, payload in con.execute(
                "SELECT admission_no, payload FROM journal_entry WHERE kind = 'answer' AND acked"
            ):
                p = json.loads(payload)
                held.add((no, p["subject"], p["question"], p["aseq"]))
        finally:
            con.close()
    return held


def test_a_cli_fleet_of_150_is_seated_commanded_and_loses_no_acknowledged_answer(tmp_path: Path) -> None:
    env = {
        "KIOSK_CONTROL_HOST": "127.0.0.1",
        "KIOSK_CONTROL_PORT": str(free_port()),
        "KIOSK_SCAN_PORT": str(free_port(socket.SOCK_DGRAM)),
        "KIOSK_SCAN_BROADCAST": "127.255.255.255",
    }
    engine = start_engine(tmp_path / "box", seats=None, env=env)
    home = engine.home
    state = tmp_path / "pcs"
    sim = None
    try:
        ctl_ok(
            home,
            "config",
            "--room-code",
            ROOM,
            "--answer-dir",
            str(tmp_path / "answers"),
            "--box-ip",
            "127.0.0.1",
        )
        ctl_ok(home, "client-bundle", "--dest", str(tmp_path / "bundle"))
        with open(tmp_path / "sim.log", "wb") as out:
            sim = subprocess.Popen(
                [str(Path(sys.executable).with_name("stu-client")), "sim", "--count", str(PCS),
                 "--bundle", str(tmp_path / "bundle"), "--state", str(state), "--mock", "20"],
                env=engine_env(), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        # The fleet binds its scan sockets as it starts: scan until every PC has answered.
        seated: set[int] = set()

        def scan() -> bool:
            seated.update(ctl_ok(home, "seats-scan", "--order", "ip")["added"])
            return len(seated) == PCS

        wait_until(scan, 60, "150 PCs to answer the scan", poll_s=0.5)
        seats = ctl_ok(home, "seats")
        assert [s["number"] for s in seats] == list(range(1, PCS + 1))
        assert len({s["fingerprint"] for s in seats}) == PCS
        wait_until(lambda: all(s["online"] for s in ctl_ok(home, "seats")), 30, "every seat online", 0.5)

        shown = ctl_ok(home, "seats-show", "--show")
        assert len(shown["ok"]) == PCS and not shown["failed"]
        env_check = ctl_ok(home, "envcheck")
        assert (env_check["passed"], env_check["failed"]) == (PCS, 0)

        exam = mock_exam(tmp_path / "usb")
        load_exam(home, exam)
        assert ctl_ok(home, "seal-check")["passed"]
        ctl_ok(home, "session-enter", "--session", "1", *STAFF)
        ctl_ok(home, "authorise", "--path", str(exam.authorisations[1]))
        ctl_ok(home, "allow-login", "--auto-login")
        ctl_ok(home, "auto-answer", "--on")
        ctl_ok(home, "allow-start")

        def states() -> list[str]:
            return [c["state"] for c in ctl_ok(home, "status")["session"]["candidates"]]

        wait_until(lambda: states().count("in_exam") == PCS, 120, "150 candidates writing", 0.5)
        people = [c["admission_no"] for c in ctl_ok(home, "status")["session"]["candidates"]]
        sent = ctl_ok(home, "message", "--text", "距离考试结束还有30分钟")
        assert len(sent["ok"]) == PCS and not sent["failed"]
        locked = ctl_ok(home, "lock", "--admission-nos", *people)
        assert len(locked["ok"]) == PCS and not locked["failed"]
        unlocked = ctl_ok(home, "lock", "--unlock", "--admission-nos", *people)
        assert len(unlocked["ok"]) == PCS

        wait_until(lambda: len(box_answers(home)) >= PCS * 10, 120, "answers from every PC", 0.5)
        collected = ctl_ok(home, "collect-all")
        assert len(collected["ok"]) == PCS
        wait_until(lambda: states().count("submitted") == PCS, 120, "150 submissions", 0.5)

        stored, held = box_answers(home), acked_on_pcs(state)
        assert len(held) >= PCS * 10
        assert held <= stored, f"{len(held - stored)} acknowledged answers missing on the box"
    finally:
        if sim is not None:
            sim.send_signal(signal.SIGTERM)
            try:
                code = sim.wait(60)
            except subprocess.TimeoutExpired:
                sim.kill()
                code = sim.wait(10)
        assert stop_engine(engine) == 0, engine.log_text()
    assert code == 0, (tmp_path / "sim.log").read_text(errors="replace")[-3000:]
