"""Run the `kiosk` command as real processes: the engine (`kiosk serve`) and one-shot
`kiosk ctl` / `kiosk site` calls. Every wait polls with a deadline; nothing sleeps to
synchronise."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kiosk.net.admin import PORT_FILE, TOKEN_FILE
from kiosk.site.mock import RoomFiles
from tests.conftest import ROOM, author_room
from tests.polling import poll_until

CANDIDATES = 40
START_DEADLINE_S = 30.0
STOP_DEADLINE_S = 15.0
CALL_TIMEOUT_S = 60.0
# The wizard refuses an answer folder with less than 5 GB free; tests run on small disks.
MIN_FREE_BYTES = 1024 * 1024

_SCRIPT = Path(sys.executable).with_name("kiosk")


def kiosk_command(exe: Sequence[str] | None = None) -> list[str]:
    """`exe` when given (e.g. a frozen `kiosk` executable), else the installed `kiosk`
    console script next to this interpreter (or the module)."""
    if exe:
        return list(exe)
    return [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "kiosk.cli"]


def engine_env() -> dict[str, str]:
    """This environment without stray KIOSK_* settings, plus what the tests need."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
    env.update(KIOSK_MIN_FREE_BYTES=str(MIN_FREE_BYTES), KIOSK_ADMIN_PORT="0", PYTHONIOENCODING="utf-8")
    return env


def wait_until(condition: Callable[[], bool], deadline_s: float, what: str, poll_s: float = 0.02) -> None:
    """Poll `condition` until it holds; fail the test when the deadline passes."""
    if not poll_until(condition, deadline_s, poll_s):
        pytest.fail(f"timed out after {deadline_s} s waiting for {what}")


# -- one-shot commands ---------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    args: tuple[str, ...]
    code: int
    out: str
    err: str

    def json(self) -> Any:
        try:
            return json.loads(self.out)
        except json.JSONDecodeError:
            pytest.fail(f"not JSON on stdout:\n{self}")

    def __str__(self) -> str:
        return (
            f"$ kiosk {' '.join(self.args)}\nexit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"
        )


def run_kiosk(*args: str, cwd: Path, exe: Sequence[str] | None = None) -> Run:
    proc = subprocess.run(
        [*kiosk_command(exe), *args],
        cwd=cwd,
        env=engine_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=CALL_TIMEOUT_S,
        check=False,
    )
    return Run(tuple(args), proc.returncode, proc.stdout, proc.stderr)


def ctl(home: Path, verb: str, *args: str, as_json: bool = False, exe: Sequence[str] | None = None) -> Run:
    flags = ["--home", str(home), *(["--json"] if as_json else [])]
    return run_kiosk("ctl", *flags, verb, *args, cwd=home.parent, exe=exe)


def ctl_ok(home: Path, verb: str, *args: str, exe: Sequence[str] | None = None) -> Any:
    """Run one operation with --json; it must succeed. Returns its result."""
    run = ctl(home, verb, *args, as_json=True, exe=exe)
    answer = run.json()
    assert run.code == 0 and answer["ok"] is True, str(run)
    assert run.err == "", str(run)
    return answer["result"]


def ctl_refused(home: Path, verb: str, *args: str, code: str) -> dict[str, str]:
    """Run one operation with --json; it must be refused with `code`. Returns the error."""
    run = ctl(home, verb, *args, as_json=True)
    answer = run.json()
    assert run.code == 1, str(run)
    assert answer["ok"] is False and answer["error"]["code"] == code, str(run)
    assert answer["error"]["zh"] and answer["error"]["en"], str(run)
    return answer["error"]


def first_line(proc: subprocess.Popen, deadline_s: float) -> str:
    """The first line a process prints, read without blocking past the deadline."""
    assert proc.stdout is not None
    end, out = time.monotonic() + deadline_s, b""
    while b"\n" not in out:
        left = end - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            pytest.fail(f"no line from {proc.args!r} (exit {proc.poll()}): {out!r}")
        if select.select([proc.stdout], [], [], left)[0]:
            out += os.read(proc.stdout.fileno(), 4096)
    return out.decode().splitlines()[0]


# -- the engine ----------------------------------------------------------------------


@dataclass
class Engine:
    root: Path
    home: Path
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def address(self) -> str:
        return (self.home / PORT_FILE).read_text().strip()

    @property
    def token(self) -> str:
        return (self.home / TOKEN_FILE).read_text().strip()

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def start_engine(
    root: Path,
    seats: int | None = CANDIDATES,
    poll_s: float = 0.02,
    env: dict[str, str] | None = None,
    exe: Sequence[str] | None = None,
) -> Engine:
    """`kiosk serve --simulate-seats N` in a fresh home (`seats=None`: the real room
    network, on the ports in `env`; `exe`: another `kiosk` executable); returns once the
    admin port file exists (the engine's own signal that it is ready)."""
    root.mkdir(parents=True, exist_ok=True)
    home = root / "home"
    log = root / "engine.log"
    with open(log, "wb") as out:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [
                *kiosk_command(exe),
                "serve",
                "--home",
                str(home),
                *(["--simulate-seats", str(seats)] if seats else []),
            ],
            cwd=root,
            env={**engine_env(), **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    engine = Engine(root, home, proc, log)
    try:
        wait_until(
            lambda: (home / PORT_FILE).exists() or proc.poll() is not None,
            START_DEADLINE_S,
            "the admin port file",
            poll_s,
        )
    except BaseException:
        kill(engine)
        raise
    if proc.poll() is not None:
        pytest.fail(f"kiosk serve exited with {proc.returncode} before it was ready:\n{engine.log_text()}")
    return engine


def kill(engine: Engine) -> None:
    if engine.proc.poll() is None:
        engine.proc.kill()
    engine.proc.wait(STOP_DEADLINE_S)


def stop_engine(engine: Engine) -> int:
    """SIGTERM, then the exit code; a process still alive at the deadline is killed
    and the test fails."""
    if engine.proc.poll() is None:
        engine.proc.send_signal(signal.SIGTERM)
    try:
        return engine.proc.wait(STOP_DEADLINE_S)
    except subprocess.TimeoutExpired:
        kill(engine)
        pytest.fail(f"kiosk serve ignored SIGTERM for {STOP_DEADLINE_S} s:\n{engine.log_text()}")


# -- the admin API, called directly -----------------------------------------------------


def api(address: str, verb: str, body: bytes | None, token: str | None) -> tuple[int, dict[str, Any]]:
    """POST to the admin API; returns the HTTP status and the JSON answer."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(f"http://{address}/api/op/{verb}", data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=CALL_TIMEOUT_S) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read())
        finally:
            exc.close()


# -- exam data -----------------------------------------------------------------------


def make_exam(folder: Path, start: float, **policy: int) -> RoomFiles:
    """The site's files for a formal exam whose first session starts at `start`."""
    return author_room(folder, start, CANDIDATES, **policy)[1]


def run_wizard(home: Path, files: RoomFiles) -> dict[str, Any]:
    """The five before-exam steps through ctl, each checked; returns the seal check."""
    config = ctl_ok(
        home,
        "config",
        "--room-code",
        ROOM,
        "--answer-dir",
        str(home.parent / "answers"),
        "--box-ip",
        "127.0.0.1",
    )
    assert config["room_code"] == ROOM and Path(config["answer_dir"]).is_dir()
    scan = ctl_ok(home, "seats-scan")
    assert scan["replies"] == CANDIDATES and scan["added"] == list(range(1, CANDIDATES + 1))
    env = ctl_ok(home, "envcheck")
    assert (env["total"], env["passed"], env["failed"]) == (CANDIDATES, CANDIDATES, 0)
    load_exam(home, files)
    return ctl_ok(home, "seal-check")


def load_exam(home: Path, files: RoomFiles, exe: Sequence[str] | None = None) -> dict[str, Any]:
    """Step 4 from USB: the room sheet (with the registration code), then the exam data."""
    sheet = ctl_ok(home, "room-sheet-import", "--path", str(files.sheet),
                   "--registration-code", files.registration_code, exe=exe)  # fmt: skip
    assert sheet["site_code"] == ROOM[:7], sheet
    exam = ctl_ok(home, "exam-import", "--path", str(files.package), exe=exe)
    assert exam["loaded"] and all(s["candidates"] for s in exam["sessions"]), exam
    return exam


def failed_items(seal: dict[str, Any]) -> list[str]:
    return [i["key"] for i in seal["items"] if not i["ok"]]
