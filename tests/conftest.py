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
from kiosk.site.mock import MockExam, RoomFiles, author_site, build_default_exam

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
    """One room of an authored site: its exam, and its files as the site wrote them."""

    exam: MockExam
    room: RoomFiles

    @property
    def package(self) -> Path:
        return self.room.package

    @property
    def auth(self) -> dict[int, Path]:
        return self.room.authorisations

    @property
    def sheet(self) -> Path:
        return self.room.sheet

    @property
    def registration_code(self) -> str:
        return self.room.registration_code

    @property
    def secret(self) -> bytes:
        return base64.b64decode(self.exam.package["exam"]["site_secret"])

    def code(self, purpose: str, challenge: str, now: float, session: int = 1, amount: int = 0) -> str:
        return codes.issue_code(self.secret, purpose, ROOM, session, challenge, amount, now)


def author_room(
    folder: Path, start: float, candidates: int = 40, mock: bool = False, **policy: int
) -> tuple[MockExam, RoomFiles]:
    """The site's files for ROOM (first session at `start`), its policy numbers changed
    before the site signs them."""
    exam = build_default_exam(room_code=ROOM, first_start=start, candidates_per_session=candidates, mock=mock)
    exam.package["exam"]["policy"].update(policy)
    return exam, author_site(folder, [exam]).rooms[ROOM]


def make_exam_files(folder: Path, mock: bool = False, **policy: int) -> ExamFiles:
    return ExamFiles(*author_room(folder, T0 + 3600, mock=mock, **policy))


@pytest.fixture
def exam_files(tmp_path: Path) -> ExamFiles:
    return make_exam_files(tmp_path / "usb")


@pytest.fixture
def room(settings: Settings, clock: ManualClock, fleet: SimulatedSeats) -> RoomService:
    return build(settings, Ports(seats=fleet), clock)


def pin_site(room: RoomService, exam_files: ExamFiles) -> None:
    """Wizard step 4's first half: the room sheet pins the site's key."""
    room.room_sheet_import(str(exam_files.sheet), exam_files.registration_code)


def prepare(room: RoomService, fleet: SimulatedSeats, exam_files: ExamFiles) -> RoomService:
    """The whole before-exam wizard, done right."""
    room.configure(ROOM, str(Path(room.settings.home) / "answers"), box_ip="127.0.0.1")
    room.seats_scan("ip")
    for ip in fleet.pcs:
        room.seat_link(ip, True)
    room.envcheck()
    pin_site(room, exam_files)
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
