"""The box's commands (docs/network.md) applied on the exam PC: each handler changes the
daemon's state and asks the platform; the daemon persists the state and acknowledges.

Replay protection, persistence before the ack and the ack itself are the daemon's; a
handler only says what the command does and what must wait until after the ack."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stu_client.localstore import DaemonState, Journal
from stu_client.platform import PlatformBackend, daemon_version

MAX_TEXT = 2000  # notice and message lengths kept from a command
MAX_SOFTWARE, MAX_SOFTWARE_NAME = 50, 64  # software names an envcheck may ask about


def asked_software(asked: Any) -> list[str]:
    """The software names an envcheck command asks about (the exam's requirements):
    plain names, never paths; anything else is ignored."""
    if not isinstance(asked, list):
        return []
    names = [s for s in asked if isinstance(s, str) and 0 < len(s) <= MAX_SOFTWARE_NAME]
    return [s for s in names if "/" not in s and "\\" not in s][:MAX_SOFTWARE]


class CommandFailed(Exception):
    """A command the daemon could not apply; its text is the ack's `error`."""


@dataclass
class Applied:
    result: dict[str, Any] = field(default_factory=dict)
    # Runs once the ack is written: a PC going down (or uninstalling) answers first.
    after_ack: Callable[[], None] | None = None


def as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


# What the answer app keeps in the state folder for a candidate: gone with an init.
CANDIDATE_FILES = ("work", "files", "app-state.json")


class Commands:
    def __init__(
        self, state: DaemonState, journal: Journal, platform: PlatformBackend, state_dir: Path | None = None
    ) -> None:
        self.state = state
        self.journal = journal
        self.platform = platform
        self.state_dir = state_dir

    async def apply(self, cmd: str, args: dict[str, Any]) -> Applied:
        handler = getattr(self, f"_cmd_{cmd}", None) if cmd.isidentifier() else None
        if handler is None:
            raise CommandFailed("unknown_command")
        outcome = handler(args)
        if asyncio.iscoroutine(outcome):
            outcome = await outcome
        return outcome if isinstance(outcome, Applied) else Applied()

    def _cmd_start_client(self, args: dict[str, Any]) -> None:
        self.platform.start_app()
        self.state.app_running = True

    def _cmd_close_client(self, args: dict[str, Any]) -> None:
        self.platform.close_app()
        self.state.app_running = False

    def _cmd_lock(self, args: dict[str, Any]) -> None:
        self.state.locked, self.state.notice = True, str(args.get("notice") or "")[:MAX_TEXT]
        self.state.lock_acknowledged = False  # every lock is confirmed anew, a repeated one too

    def _cmd_unlock(self, args: dict[str, Any]) -> None:
        self.state.locked, self.state.notice = False, ""

    def _cmd_message(self, args: dict[str, Any]) -> None:
        text = args.get("text")
        if not isinstance(text, str):
            raise CommandFailed("bad_args: text")
        self.state.message = text[:MAX_TEXT]
        self.state.message_id += 1
        self.state.message_acknowledged = False

    def _cmd_show_seat(self, args: dict[str, Any]) -> None:
        seat = args.get("seat", self.state.seat)
        if not isinstance(seat, str | int) or isinstance(seat, bool):
            raise CommandFailed("bad_args: seat")
        self.state.seat_shown = str(seat)

    def _cmd_hide_seat(self, args: dict[str, Any]) -> None:
        self.state.seat_shown = ""

    def _cmd_reboot(self, args: dict[str, Any]) -> Applied:
        return Applied(after_ack=self.platform.reboot)

    def _cmd_shutdown(self, args: dict[str, Any]) -> Applied:
        return Applied(after_ack=self.platform.shutdown)

    def _cmd_init(self, args: dict[str, Any]) -> Applied:
        # The candidate's data goes; the bundle, the key, the lock and the last command
        # seq stay (replay protection must outlive an initialisation).
        self.journal.wipe()
        self.state.forget_candidate()
        if self.state_dir is not None:  # the work folders, their snapshots, the app's page
            for name in CANDIDATE_FILES:
                path = self.state_dir / name
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
        return Applied(after_ack=self.platform.uninstall if args.get("uninstall") else None)

    async def _cmd_envcheck(self, args: dict[str, Any]) -> Applied:
        # The real probe runs helper tools (xrandr, systemd-detect-virt): off the loop.
        report = dict(await asyncio.to_thread(self.platform.probe, asked_software(args.get("software"))))
        report.setdefault("pc_time", time.time())
        report.setdefault("daemon_version", daemon_version())
        return Applied(result=report)

    def _cmd_force_logout(self, args: dict[str, Any]) -> None:
        self.state.admission_no = ""
        self.state.logout_reason = str(args.get("reason") or "")[:MAX_TEXT]
        self.state.hand_raised = False
        self.state.deadline, self.state.deadline_for = None, ""

    def _cmd_collect(self, args: dict[str, Any]) -> None:
        # The answer app (or a simulated candidate) submits when it sees this.
        self.state.collect_requested = True

    def _cmd_auto_login(self, args: dict[str, Any]) -> None:
        self.state.auto_login = bool(args.get("on"))

    def _cmd_auto_answer(self, args: dict[str, Any]) -> None:
        self.state.auto_answer = bool(args.get("on"))

    def _cmd_allow_login(self, args: dict[str, Any]) -> None:
        self.state.login_allowed = True
        self.state.session = args.get("session")
        self.state.auto_login = bool(args.get("auto_login", self.state.auto_login))

    def _cmd_start_exam(self, args: dict[str, Any]) -> None:
        start = as_num(args.get("start"))
        if start is None:
            raise CommandFailed("bad_args: start")
        self.state.exam_start = start

    def _cmd_deadline(self, args: dict[str, Any]) -> None:
        deadline = as_num(args.get("deadline"))
        if deadline is None:
            raise CommandFailed("bad_args: deadline")
        self.state.deadline, self.state.deadline_for = deadline, str(args.get("admission_no") or "")

    def _cmd_hand_answered(self, args: dict[str, Any]) -> None:
        self.state.hand_raised = False
