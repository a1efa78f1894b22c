"""`stu-client daemon --keep-alive` (what the Windows Run key starts): the daemon as a
child process started again whenever it dies, one supervisor per state folder, and the
log files in the state folder. Real child processes; the real daemon once, killed with
SIGKILL and brought back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from kiosk.services.room import RoomService
from stu_client.supervise import restart_delay, single_instance, supervise
from tests.integration.test_client_bundle import configured
from tests.polling import poll_until

FAST = {"first_s": 0.01, "most_s": 0.05, "stable_s": 60.0}


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    assert poll_until(lambda: bool(condition()), timeout), f"timed out waiting for {what}"


def test_the_pause_before_a_restart_grows_while_the_daemon_keeps_dying_at_once() -> None:
    assert [restart_delay(n, 1.0, 30.0) for n in range(8)] == [0, 1, 2, 4, 8, 16, 30, 30]


def child_that_dies(record: Path, times: int) -> list[str]:
    """A child that records its start and exits 1, `times` times; then exits 0."""
    code = (
        "import os, sys; p = sys.argv[1]; open(p, 'a').write(f'{os.getpid()}\\n'); "
        f"sys.exit(1 if len(open(p).read().split()) <= {times} else 0)"
    )
    return [sys.executable, "-c", code, str(record)]


def test_a_dying_daemon_is_started_again_until_it_stops_on_purpose(tmp_path: Path) -> None:
    record = tmp_path / "starts"
    assert supervise(child_that_dies(record, 3), tmp_path, threading.Event(), **FAST) == 0
    pids = record.read_text().split()
    assert len(pids) == 4 and len(set(pids)) == 4  # three deaths, three restarts, a stop


def test_stop_ends_the_daemon_and_the_supervisor(tmp_path: Path) -> None:
    record = tmp_path / "starts"
    sleeper = [sys.executable, "-c", "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); "
               "time.sleep(600)", str(record)]  # fmt: skip
    stop = threading.Event()
    result: list[int] = []
    t = threading.Thread(target=lambda: result.append(supervise(sleeper, tmp_path, stop, **FAST)))
    t.start()
    wait_for(lambda: record.exists() and record.read_text(), timeout=10, what="the child started")
    pid = int(record.read_text())
    stop.set()
    t.join(timeout=40)
    assert result == [0] and not t.is_alive()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_second_supervisor_of_the_same_state_leaves_without_starting_anything(tmp_path: Path) -> None:
    def never(*_a: object, **_k: object) -> None:
        raise AssertionError("a second supervisor started a daemon")

    with single_instance(tmp_path / "supervisor.lock") as held:
        assert held
        assert supervise(["true"], tmp_path, threading.Event(), spawn=never, **FAST) == 3
    with single_instance(tmp_path / "supervisor.lock") as held:  # released with the first
        assert held


def daemon_pids(log: Path) -> list[int]:
    if not log.exists():
        return []
    return [int(line.rsplit("pid ", 1)[1].rstrip(")")) for line in log.read_text().splitlines()
            if "daemon started (pid" in line]  # fmt: skip


@pytest.mark.slow
def test_the_real_daemon_killed_with_sigkill_comes_back(room: RoomService, tmp_path: Path) -> None:
    configured(room).client_bundle(str(tmp_path / "bundle"))  # a box to belong to; none runs
    state = tmp_path / "pc"
    logs = state / "logs"
    bundle = str(tmp_path / "bundle")
    cmd = [sys.executable, "-m", "stu_client.cli", "daemon", "--keep-alive", "--state", str(state),
           "--bundle", bundle, "--bind-ip", "127.0.10.31", "--app-command", "true"]  # fmt: skip
    sup = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: daemon_pids(logs / "supervisor.log"), timeout=20, what="the daemon started")
        first = daemon_pids(logs / "supervisor.log")[0]
        wait_for(lambda: (logs / "daemon.log").exists() and (logs / "daemon.log").stat().st_size,
                 timeout=20, what="the daemon's own log")  # fmt: skip
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: len(daemon_pids(logs / "supervisor.log")) == 2, timeout=20, what="a new daemon")
        second = daemon_pids(logs / "supervisor.log")[1]
        assert second != first
        assert "daemon died (exit -9" in (logs / "supervisor.log").read_text()
        os.kill(second, 0)  # alive
        sup.send_signal(signal.SIGTERM)
        assert sup.wait(timeout=40) == 0, sup.stderr.read().decode() if sup.stderr else ""
        with pytest.raises(ProcessLookupError):
            os.kill(second, 0)
    finally:
        if sup.poll() is None:
            sup.kill()
            sup.wait()
        if sup.stderr:
            sup.stderr.close()
