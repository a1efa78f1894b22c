"""The crash test the project requires: a process runs a scripted session and is killed
with SIGKILL at random points; after each kill every committed state and event is still
there, the event chain holds and the database passes PRAGMA integrity_check."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.crash_check import (
    Snapshot,
    check_database,
    complete_lines,
    read_witness,
    trim_torn_tail,
)
from tests.polling import poll_until

ROOT = Path(__file__).resolve().parents[2]
KILLS = 60
SEED = 20260601
FIRST_LINE_DEADLINE_S = 30.0  # a fresh driver must witness something within this
LOOP_OPS = {
    "save", "login", "begin", "link", "violation", "violation_cancel", "extra_time",
    "lock", "message", "hand", "client_event", "resume",
}  # fmt: skip
SETUP_STEPS = {
    "configure", "seats", "envcheck", "exam", "seal", "enter", "authorise",
    "allow_login", "allow_start",
}  # fmt: skip


def start_driver(home: Path, witness: Path, seed: int, log: Path) -> subprocess.Popen[bytes]:
    """Start one life of tests/e2e/crash_driver.py; its stderr goes to `log`."""
    with log.open("ab") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.crash_driver", str(home), str(witness), str(seed)],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else ""


def wait_for_new_line(proc: subprocess.Popen[bytes], witness: Path, lines: int, log: Path) -> None:
    """Poll the witness file until the driver has witnessed one more whole line."""
    witnessed = poll_until(
        lambda: complete_lines(witness) > lines or proc.poll() is not None, FIRST_LINE_DEADLINE_S, 0.002
    )
    assert proc.poll() is None, f"the driver exited with {proc.returncode}:\n{tail(log)}"
    assert witnessed, f"the driver witnessed nothing:\n{tail(log)}"


def random_point(rng: random.Random) -> float:
    """How long to let the driver run on after its first new witness line."""
    return rng.uniform(0, 0.01) if rng.random() < 0.3 else rng.uniform(0, 0.4)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_committed_state_survives_sigkill_at_random_points(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    home, witness, log = tmp_path / "home", tmp_path / "witness.jsonl", tmp_path / "driver.log"
    db = home / "room.db"
    seen = Snapshot()
    torn = 0
    proc: subprocess.Popen[bytes] | None = None
    try:
        for kill in range(1, KILLS + 1):
            lines = complete_lines(witness)
            proc = start_driver(home, witness, rng.randrange(2**32), log)
            wait_for_new_line(proc, witness, lines, log)
            time.sleep(random_point(rng))  # the random point; synchronisation was the poll
            proc.kill()
            assert proc.wait(timeout=10) == -signal.SIGKILL, f"driver died first:\n{tail(log)}"
            torn += trim_torn_tail(witness) > 0
            witnessed = read_witness(witness)
            now, problems = check_database(db, witnessed, seen)
            assert not problems, f"after kill {kill}:\n" + "\n".join(problems[:20])
            assert now.events >= seen.events
            seen = now
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)

    # The kills fell all over a real session, not into a loop that does nothing.
    witnessed = read_witness(witness)
    ops = {w["op"] for w in witnessed if "refused" not in w}
    steps = {w["step"] for w in witnessed if w["op"] == "setup"}
    assert ops >= LOOP_OPS, f"never witnessed: {LOOP_OPS - ops}"
    assert steps >= SETUP_STEPS, f"setup steps never witnessed: {SETUP_STEPS - steps}"
    saved = sum(len(w.get("answers", ())) for w in witnessed)
    assert saved > 200 and seen.events > 400, (saved, seen.events)
    assert "Traceback" not in tail(log), tail(log)


def test_a_torn_last_witness_line_is_cut_and_never_read(tmp_path: Path) -> None:
    witness = tmp_path / "witness.jsonl"
    witness.write_bytes(b'{"op": "message", "event": [1, "h"]}\n{"op": "sa')
    assert read_witness(witness) == [{"op": "message", "event": [1, "h"]}]
    assert complete_lines(witness) == 1
    assert trim_torn_tail(witness) == len(b'{"op": "sa')
    assert witness.read_bytes().endswith(b"]}\n") and trim_torn_tail(witness) == 0
