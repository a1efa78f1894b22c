"""Shared fixtures: a room service over a real SQLite file in a temporary home, with
a manual clock and a simulated fleet of exam PCs standing in for the room network."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import pytest

from kiosk.common.clock import ManualClock
from kiosk.core import codes
from kiosk.services.bootstrap import build
from kiosk.services.ports import Ports
from kiosk.services.room import RoomService
from kiosk.services.simulated import SimulatedSeats
from kiosk.settings import Settings, load
from kiosk.site.mock import MockExam, build_default_exam, write_mock_exam

# 2026-06-01 08:00:00 +08:00: the first session starts an hour later.
T0 = 1780272000.0
ROOM = "1999999001"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load(home=str(tmp_path / "home"), min_free_bytes=1024**2)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def fleet() -> SimulatedSeats:
    return SimulatedSeats(40)


@dataclass
class ExamFiles:
    exam: MockExam
    package: Path
    auth: dict[int, Path]

    @property
    def secret(self) -> bytes:
        return base64.b64decode(self.exam.package["exam"]["site_secret"])

    def code(self, purpose: str, challenge: str, now: float, session: int = 1, amount: int = 0) -> str:
        return codes.issue_code(self.secret, purpose, ROOM, session, challenge, amount, now)


def make_exam_files(folder: Path, mock: bool = False, **policy: int) -> ExamFiles:
    exam = build_default_exam(room_code=ROOM, first_start=T0 + 3600, mock=mock)
    exam.package["exam"]["policy"].update(policy)
    paths = write_mock_exam(exam, folder)
    auth = {int(k.split("-")[1].split(".")[0]): v for k, v in paths.items() if k.startswith("authorisation")}
    return ExamFiles(exam, paths["exam-package.json"], auth)


@pytest.fixture
def exam_files(tmp_path: Path) -> ExamFiles:
    return make_exam_files(tmp_path / "usb")


@pytest.fixture
def room(settings: Settings, clock: ManualClock, fleet: SimulatedSeats) -> RoomService:
    return build(settings, Ports(seats=fleet), clock)


def prepare(room: RoomService, fleet: SimulatedSeats, exam_files: ExamFiles) -> RoomService:
    """The whole before-exam wizard, done right."""
    room.configure(ROOM, str(Path(room.settings.home) / "answers"), box_ip="127.0.0.1")
    room.seats_scan("ip")
    for ip in fleet.pcs:
        room.seat_link(ip, True)
    room.envcheck()
    room.exam_import(str(exam_files.package))
    assert room.seal_check()["passed"]
    return room


@pytest.fixture
def ready_room(room: RoomService, fleet: SimulatedSeats, exam_files: ExamFiles) -> RoomService:
    return prepare(room, fleet, exam_files)


def enter(room: RoomService, session: int = 1) -> None:
    room.session_enter(session, "张三", "15000000001", "李四", "15000000002")


@pytest.fixture(autouse=True)
def no_leaked_threads():
    """A test that leaves a thread running fails: it would leak into the next one."""
    import threading

    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    for t in leaked:
        t.join(timeout=2)
    leaked = [t.name for t in leaked if t.is_alive()]
    assert not leaked, f"threads left running: {leaked}"
