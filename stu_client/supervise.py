"""Keeps the exam-PC daemon running where no service manager does: on Windows the Run key
starts `stu-client daemon --keep-alive` at the exam account's logon, and that process
runs the daemon as its child, starting it again whenever it dies (with a growing pause
while it keeps dying at once), until it is told to stop. On Linux systemd's
`Restart=always` does the same, and this is not used.

One supervisor per state folder: a second one (a second logon, a double click) sees the
lock held and leaves. Each process writes its own log file in `<state>/logs/`, rotated,
so the daemon of a PC that had trouble on exam day can be read afterwards."""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from stu_client.platform import stop_process

log = logging.getLogger(__name__)

LOG_BYTES = 5 * 1024**2
LOG_BACKUPS = 3


def restart_delay(quick_failures: int, first_s: float, most_s: float) -> float:
    """The pause before the next start after `quick_failures` deaths in a row, each soon
    after its start: none after a run that lasted, then `first_s` doubling up to `most_s`."""
    if quick_failures <= 0:
        return 0.0
    return min(most_s, first_s * 2 ** (quick_failures - 1))


def log_to_file(path: Path) -> None:
    """This process's log records go to `path` too, rotated at LOG_BYTES."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)


@contextlib.contextmanager
def single_instance(lock_path: Path) -> Iterator[bool]:
    """Yields whether this process holds the lock on `lock_path` (held until the block
    ends; the OS frees it when the process dies, so a crash leaves no stale lock)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    f = lock_path.open("a+b")
    try:
        held = _try_lock(f)
        yield held
    finally:
        f.close()  # closing releases the lock


def _try_lock(f: IO[bytes]) -> bool:
    try:
        if os.name == "nt":
            import msvcrt

            f.seek(0)
            msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        else:
            import fcntl

            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def supervise(
    command: Sequence[str],
    state: Path,
    stop: threading.Event,
    *,
    first_s: float,
    most_s: float,
    stable_s: float,
    spawn: Callable[..., Any] = subprocess.Popen,
) -> int:
    """Run `command` until `stop` is set or it exits 0 (asked to stop), starting it again
    after every other exit. Returns 0, or 3 when another supervisor holds the state."""
    with single_instance(state / "supervisor.lock") as held:
        if not held:
            log.warning("another supervisor runs for %s: leaving", state)
            return 3
        quick = 0
        while not stop.is_set():
            started = time.monotonic()
            child = spawn(list(command), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)  # fmt: skip
            log.info("daemon started (pid %s)", child.pid)
            code = _wait(child, stop)
            if stop.is_set():
                return 0
            if code == 0:
                log.info("daemon stopped on purpose: supervisor ends")
                return 0
            ran = time.monotonic() - started
            quick = quick + 1 if ran < stable_s else 0
            delay = restart_delay(quick, first_s, most_s)
            log.error("daemon died (exit %s after %.1f s): starting it again in %.1f s", code, ran, delay)
            stop.wait(delay)
        return 0


def _wait(child: Any, stop: threading.Event) -> int | None:
    """The child's exit code, or None once `stop` is set (the child then stopped)."""
    while True:
        try:
            return int(child.wait(timeout=0.5))
        except subprocess.TimeoutExpired:
            if stop.is_set():
                stop_process(child, 30)
                return None
