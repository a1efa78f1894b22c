"""Property: remaining time never depends on when the box was restarted.

A room on a real SQLite file with a manual clock runs a generated script (time passes,
extra time is granted, links drop and come back); the same script runs twice from the
same prepared home, once straight through and once with the box restarted at a
generated moment: the service is closed and rebuilt from its home, every link is reset
as the engine does at start-up, and the PCs that are up reconnect. After every step both
runs must show the same remaining time, offline time, extra time and state for every
tracked candidate, and give the same answer to every operation."""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from kiosk.common.clock import ManualClock
from kiosk.core.errors import Refused
from kiosk.services.bootstrap import build
from kiosk.services.ports import Ports
from kiosk.services.room import RoomService
from kiosk.services.simulated import SimulatedSeats
from kiosk.settings import load
from tests.conftest import T0, ExamFiles, enter, make_exam_files, prepare

START = T0 + 3600
LOGIN_AT = START - 1700
TRACKED = 5  # candidates the script acts on and observes; the first one never taps 我已阅读


class Template:
    """The prepared home, the site's files, the tracked candidates and their PCs."""

    def __init__(
        self, home: Path, files: ExamFiles, admission_nos: tuple[str, ...], ips: tuple[str, ...]
    ) -> None:
        self.home, self.files, self.admission_nos, self.ips = home, files, admission_nos, ips

    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing example
        return f"Template({self.home})"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Template]:
    """A prepared room, session 1 entered and authorised, login allowed, the tracked
    candidates logged in: the home both runs of every example start from."""
    folder = tmp_path_factory.mktemp("restart-template")
    files = make_exam_files(folder / "usb")
    fleet = SimulatedSeats(40)
    clock = ManualClock(T0)
    room = build(load(home=str(folder / "home"), min_free_bytes=1024**2), Ports(seats=fleet), clock)
    prepare(room, fleet, files)
    enter(room)
    room.authorise(str(files.auth[1]))
    clock.set(LOGIN_AT)
    room.allow_login()
    cands = room.status()["session"]["candidates"][:TRACKED]
    ips = [s["ip"] for s in room.seats()][:TRACKED]
    for c, ip in zip(cands, ips, strict=True):
        room.candidate_login(c["admission_no"], ip)
    room.db.close()
    yield Template(folder / "home", files, tuple(c["admission_no"] for c in cands), tuple(ips))


# One step of the day: time passes, extra time is asked for, a link drops or comes back.
advance = st.tuples(st.just("advance"), st.integers(0, 3000).map(lambda half_seconds: half_seconds / 2))
grant = st.tuples(st.just("grant"), st.integers(0, TRACKED - 1), st.integers(1, 3000))
link = st.tuples(st.sampled_from(["cut", "back"]), st.integers(0, TRACKED - 1))


@st.composite
def scripts(draw: st.DrawFn) -> tuple[list[tuple], int]:
    """allow start, the countdown (time passes, early grants are refused), the tracked
    candidates begin, then the exam; and the step before which the box restarts."""
    countdown = draw(st.lists(st.one_of(advance, grant), max_size=4))
    exam = draw(st.lists(st.one_of(advance, advance, grant, link), min_size=1, max_size=14))
    script = [("allow_start",), *countdown, ("begin",), *exam]
    return script, draw(st.integers(0, len(script)))


class Run:
    """One box on its own copy of the template home."""

    def __init__(self, template: Template, home: Path) -> None:
        shutil.copytree(template.home, home)
        self.template = template
        self.settings = load(home=str(home), min_free_bytes=1024**2)
        self.fleet = SimulatedSeats(40)
        self.clock = ManualClock(LOGIN_AT)
        self.room = self.open()

    def open(self) -> RoomService:
        return build(self.settings, Ports(seats=self.fleet), self.clock)

    def restart(self) -> None:
        """The box goes down and comes back at the same box time: the service is rebuilt
        from its home, no link survives, and every PC that is up links again."""
        self.room.db.close()
        self.room = self.open()
        self.room.reset_links()
        self.room.seat_links([(ip, True) for ip, pc in self.fleet.pcs.items() if pc.up])

    def close(self) -> None:
        self.room.db.close()

    def step(self, op: tuple) -> Any:
        room, t = self.room, self.template
        try:
            if op[0] == "allow_start":
                return room.allow_start()["start"]
            if op[0] == "advance":
                self.clock.advance(op[1])
                return None
            if op[0] == "begin":  # at the start at the earliest; the first candidate never begins
                self.clock.set(max(self.clock.now(), START))
                for no, ip in zip(t.admission_nos[1:], t.ips[1:], strict=True):
                    room.candidate_begin(no, ip)
                return None
            if op[0] == "grant":
                return self.grant(t.admission_nos[op[1]], op[2])
            ip = t.ips[op[1]]
            self.fleet.pcs[ip].reachable = op[0] == "back"
            room.seat_link(ip, op[0] == "back")
            return None
        except Refused as refusal:
            return refusal.code

    def grant(self, admission_no: str, seconds: int) -> Any:
        try:
            return self.room.extra_time(admission_no, seconds, "补时")["granted_s"]
        except Refused as refusal:
            if refusal.code != "extra_time_code_needed":
                raise
        challenge = self.room.challenge("extra_time", admission_no)["challenge"]
        code = self.template.files.code("extra_time", challenge, self.clock.now(), amount=seconds)
        return ("with code", self.room.extra_time(admission_no, seconds, code=code)["granted_s"])

    def observe(self) -> list[tuple]:
        room = self.room
        seen = []
        for no in self.template.admission_nos:
            c = room.candidate_dict(room.get_candidate(no))
            seen.append((no, c["state"], c["remaining_s"], c["extra_s"], c["offline_s"], c["online"]))
        return [*seen, tuple(sorted(room.countdown().items())), self.clock.now()]


def play(template: Template, script: list[tuple], restart_before: int | None) -> list[Any]:
    """Every step's answer and the room as seen after it."""
    with tempfile.TemporaryDirectory(prefix="restart-run-") as tmp:
        run = Run(template, Path(tmp) / "home")
        try:
            trace: list[Any] = []
            for i, op in enumerate(script):
                if i == restart_before:
                    run.restart()
                trace.append((op, run.step(op), run.observe()))
            if restart_before == len(script):
                run.restart()
            trace.append(("end", run.observe()))
            return trace
        finally:
            run.close()


# Few examples (each plays a day twice on SQLite); no shrinking: a failing script of at
# most 20 steps reads well as it is, and shrinking it would outlast the test's timeout.
@settings(
    max_examples=10,
    deadline=None,
    database=None,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=scripts())
def test_remaining_time_never_depends_on_when_the_box_was_restarted(template, case):
    script, restart_before = case
    straight = play(template, script, None)
    restarted = play(template, script, restart_before)
    assert restarted == straight
    # not vacuous: the exam ran, and the time left is what the stored deadline leaves
    *_, (_, last) = straight
    *seen, _countdown, now = last
    assert [c[1] for c in seen] == ["logged_in"] + ["in_exam"] * (TRACKED - 1)
    for _no, _state, remaining, extra, _offline, _online in seen:
        assert remaining == max(0, min(5400 + extra, math.floor(START + 5400 + extra - now)))


def test_a_restart_in_the_middle_of_grants_and_a_dropped_link_changes_nothing(template):
    """One fixed case that reaches every kind of step, with the restart between a grant
    and a link coming back."""
    script = [
        ("allow_start",),
        ("advance", 600.0),
        ("grant", 1, 60),
        ("begin",),
        ("advance", 300.5),
        ("grant", 1, 400),
        ("cut", 2),
        ("advance", 125.0),
        ("grant", 1, 500),
        ("grant", 2, 30),
        ("back", 2),
        ("grant", 3, 9000),
        ("advance", 1000.0),
    ]
    straight = play(template, script, None)
    for restart_before in (2, 5, 9, 10, len(script)):
        assert play(template, script, restart_before) == straight, restart_before
    answers = [answer for _, answer, _ in straight[:-1]]
    assert answers[2] == "not_in_exam" and answers[5] == 400
    assert answers[8] == ("with code", 500) and answers[9] == "offline"
    assert answers[11] == ("with code", 5400), "capped at the duration"
    *_, (_, last) = straight
    by_no = {c[0]: c for c in last[:-2]}
    nos = template.admission_nos
    # 300.5 + 125 + 1000 s of the exam gone; begin at START exactly
    assert by_no[nos[1]][2:5] == (5400 + 900 - 1426, 900, 0)
    assert by_no[nos[2]][2:5] == (5400 - 1426, 0, 125), "offline time shown, to grant back"
    assert by_no[nos[3]][2:4] == (5400 + 5400 - 1426, 5400)
