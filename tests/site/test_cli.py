"""`kiosk site serve` and `kiosk site code --plan` as real processes."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

from kiosk.common.crypto import make_identity
from kiosk.site import store
from tests.e2e.cli_helpers import engine_env, first_line, kiosk_command
from tests.site.plan import CODES, OPEN_ROOM, Plan
from tests.site.serving import client

START_DEADLINE_S = 60.0
STOP_DEADLINE_S = 15.0


def test_site_serve_answers_a_box_and_stops_cleanly_on_sigterm(plan: Plan, db_url: str, tmp_path: Path):
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [*kiosk_command(), "site", "serve", "--plan", str(plan.folder), "--db", db_url, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=log,
        stdin=subprocess.DEVNULL,
        env=engine_env(),
    )
    try:
        line = first_line(proc, START_DEADLINE_S)
        found = re.search(r"https://127\.0\.0\.1:(\d+) 证书指纹 ([0-9a-f]{64})", line)
        assert found, line
        assert found.group(2) == plan.site.fingerprint
        link = client(int(found.group(1)), make_identity("box"), plan.site.cert_pem)
        assert link.reachable()
        link.register(OPEN_ROOM, CODES[OPEN_ROOM])
        assert link.download_exam(OPEN_ROOM) == plan.exam(OPEN_ROOM)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(STOP_DEADLINE_S) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        log.close()
    db = store.connect(db_url)  # the registration is in the database the server was given
    try:
        assert store.room(OPEN_ROOM).box_fingerprint is not None
    finally:
        db.close()


def test_site_code_with_the_plan_records_the_issued_code(plan: Plan):
    command = [*kiosk_command(), "site", "code", "extra_time", "--room", OPEN_ROOM, "--session", "1"]
    command += ["--challenge", "１２３ ４５６", "--seconds", "300", "--plan", str(plan.folder)]
    done = subprocess.run(command, capture_output=True, text=True, env=engine_env(), timeout=60)
    assert done.returncode == 0, done.stderr
    code = done.stdout.strip()
    db = store.connect(store.default_url(plan.folder))
    try:
        assert store.issued_codes(OPEN_ROOM, 1) == [
            {
                "purpose": "extra_time",
                "challenge": "123456",
                "amount": 300,
                "code": code,
                "issued_at": store.IssuedCode.get().issued_at,
            }
        ]
    finally:
        db.close()


def test_site_code_refuses_a_room_that_is_not_in_the_plan(plan: Plan):
    command = [*kiosk_command(), "site", "code", "late_start", "--room", "1999999099", "--session", "1"]
    command += ["--challenge", "123456", "--plan", str(plan.folder)]
    done = subprocess.run(command, capture_output=True, text=True, env=engine_env(), timeout=60)
    assert done.returncode == 1 and "1999999099" in done.stderr
    assert not (plan.folder / "site" / "site.db").exists()


def test_site_serve_refuses_a_folder_without_a_plan(tmp_path: Path):
    command = [*kiosk_command(), "site", "serve", "--plan", str(tmp_path), "--port", "0"]
    done = subprocess.run(command, capture_output=True, text=True, env=engine_env(), timeout=60)
    assert done.returncode == 1 and "考点计划文件有误" in done.stderr
    assert list(tmp_path.iterdir()) == []
