"""The crash-test driver: runs a scripted exam session on a real room database for ever
and, after each operation has returned (so after its commit), appends one fsynced line
to a witness file saying what is now committed.

Run as ``python -m tests.e2e.crash_driver HOME WITNESS SEED``. It is meant to be killed
with SIGKILL at any moment and started again: everything it decides (which setup step
is next, where the clock stands, the next answer sequence) comes from the database,
never from the witness file, so a restarted driver goes on where the last one stopped.
"""

from __future__ import annotations

import json
import os
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiosk.common.clock import ManualClock
from kiosk.core import codes
from kiosk.core.errors import Refused
from kiosk.services.base import loads
from kiosk.services.bootstrap import build
from kiosk.services.ports import Ports
from kiosk.services.room import RoomService
from kiosk.services.simulated import SimulatedSeats
from kiosk.settings import load
from kiosk.store.models import Answer as AnswerRow
from kiosk.store.models import (
    Candidate,
    Event,
    Exam,
    RoomConfig,
    SealResult,
    Seat,
    Session,
    Violation,
)
from tests.conftest import ROOM, T0, enter, make_exam_files, pin_site

START = T0 + 3600  # the session's scheduled start, as in tests/integration
SEATS = 40
STEP_S = 0.05  # box time that passes between two operations of the loop
QUESTIONS = [f"q{i:02d}" for i in range(1, 46)]

# Refusals the loop may run into by design; any other one is a bug and ends the driver.
EXPECTED_REFUSALS = frozenset(
    {
        "late_login",
        "already_logged_in",
        "extra_time_code_needed",
        "extra_time_cap",
        "offline",
        "not_in_exam",
    }
)

Facts = dict[str, Any]


class Witness:
    """The append-only witness file: one JSON line per committed operation, fsynced."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, record: Facts) -> None:
        os.write(self.fd, (json.dumps(record, ensure_ascii=False) + "\n").encode())
        os.fsync(self.fd)


class Driver:
    """One life of the driver: finish whatever setup is missing, then operate for ever."""

    def __init__(self, home: Path, witness: Path, rng: random.Random) -> None:
        self.home = home
        self.rng = rng
        self.clock = ManualClock(T0)
        self.fleet = SimulatedSeats(SEATS)
        settings = load(home=str(home), min_free_bytes=1024**2)
        self.room: RoomService = build(settings, Ports(seats=self.fleet), self.clock)
        self.witness = Witness(witness)
        self.ips = sorted(self.fleet.pcs)  # seats are scanned in IP order: seat n has ips[n-1]

    # -- witnessing ---------------------------------------------------------------------

    @staticmethod
    def tip() -> list[Any]:
        last = Event.select(Event.id, Event.hash).order_by(Event.id.desc()).first()
        return [last.id, last.hash] if last else [0, ""]

    def record(self, op: str, facts: Facts) -> None:
        """Witness an operation that has returned: its facts plus the event log's tip."""
        self.witness.write({"op": op, **facts, "event": self.tip()})

    def at(self, t: float) -> None:
        """Move the clock to `t`, never behind the last committed event."""
        last = Event.select(Event.ts).order_by(Event.id.desc()).first()
        self.clock.set(max(t, last.ts if last else t))

    # -- setup: the `started` fixture of tests/integration, resumable at every step -----

    def setup(self) -> None:
        if not SealResult.select().where(SealResult.passed).exists():
            self.at(T0)
            self._before_exam()
        session = Session.get(Session.number == 1)
        if session.entered_at is None:
            self.at(T0)
            enter(self.room)
            self.record("setup", {"step": "enter"})
        if session.authorised_at is None:
            self.at(T0)
            auth = make_exam_files(self.home / "usb").auth[1]  # deterministic key, same site
            self.room.authorise(str(auth))
            self.record("setup", {"step": "authorise"})
        if session.login_allowed_at is None:
            self.at(START - 1700)
            self.room.allow_login()
            self.record("setup", {"step": "allow_login"})
        if session.start_allowed_at is None:
            self.at(START - 1200)
            self.room.allow_start()
            self.record("setup", {"step": "allow_start"})
        # A kill between a step's commit and its witness line skips the step on restart;
        # what the database now shows is committed, so witness it all once more.
        for step in (
            "configure",
            "seats",
            "envcheck",
            "exam",
            "seal",
            "enter",
            "authorise",
            "allow_login",
            "allow_start",
        ):
            self.record("setup", {"step": step})
        self.at(START)

    def _before_exam(self) -> None:
        """tests.conftest.prepare, step by step, skipping what the database already has."""
        room = self.room
        if RoomConfig.get_or_none(RoomConfig.id == 1) is None:
            room.configure(ROOM, str(self.home / "answers"), box_ip="127.0.0.1")
            self.record("setup", {"step": "configure"})
        if Seat.select().count() < SEATS:
            room.seats_scan("ip")
            self.record("setup", {"step": "seats"})
        for seat in Seat.select().where(~Seat.online).order_by(Seat.number):
            room.seat_link(seat.ip, True)
            self.record("link", {"ip": seat.ip, "online": True})
        env = room.envcheck_result()
        if env["total"] < SEATS or env["failed"]:
            room.envcheck()
            self.record("setup", {"step": "envcheck"})
        if Exam.get_or_none() is None:
            # The package's nonces are random: a new file after a crash is a new package,
            # which is fine as long as none was loaded yet. The site key stays in the
            # folder, so a sheet pinned before the crash is only replaced by a newer one.
            files = make_exam_files(self.home / "usb")
            pin_site(room, files)
            room.exam_import(str(files.package))
            self.record("setup", {"step": "exam"})
        if not room.seal_check()["passed"]:
            raise RuntimeError("seal check failed in the crash driver")
        self.record("setup", {"step": "seal"})

    # -- the loop -----------------------------------------------------------------------

    def run(self) -> None:
        ops: list[tuple[Callable[[], Facts | None], int]] = [
            (self.op_save, 40),
            (self.op_login, 8),
            (self.op_begin, 8),
            (self.op_link, 6),
            (self.op_violation, 4),
            (self.op_violation_cancel, 2),
            (self.op_extra_time, 5),
            (self.op_lock, 4),
            (self.op_message, 3),
            (self.op_hand, 3),
            (self.op_client_event, 3),
            (self.op_resume, 2),
        ]
        funcs = [f for f, _ in ops]
        weights = [w for _, w in ops]
        while True:
            self.clock.advance(STEP_S)
            op = self.rng.choices(funcs, weights)[0]
            name = op.__name__.removeprefix("op_")
            try:
                facts = op()
            except Refused as exc:
                if exc.code not in EXPECTED_REFUSALS:
                    raise
                facts = {"refused": exc.code}
            if facts is not None:
                self.record(name, facts)

    def candidates(self, *where: Any) -> list[Candidate]:
        session = Session.get(Session.number == 1)
        return list(Candidate.select().where(Candidate.session == session, *where))

    def pick(self, *where: Any) -> Candidate | None:
        found = self.candidates(*where)
        return self.rng.choice(found) if found else None

    def home_ip(self, c: Candidate) -> str:
        return self.ips[c.seq - 1]

    def op_login(self) -> Facts | None:
        c = self.pick(
            (Candidate.state == "not_logged_in") | Candidate.resume_pending,
            Candidate.state.not_in(["absent", "submitted"]),
        )
        if c is None:
            return None
        self.room.candidate_login(c.admission_no, self.home_ip(c))
        return {"adm": c.admission_no}

    def op_begin(self) -> Facts | None:
        c = self.pick(Candidate.state == "logged_in", Candidate.ip != "")
        if c is None:
            return None
        self.room.candidate_begin(c.admission_no, c.ip)
        return {"adm": c.admission_no}

    def op_save(self) -> Facts | None:
        c = self.pick(Candidate.state == "in_exam", Candidate.ip != "")
        if c is None:
            return None
        top = (
            AnswerRow.select(AnswerRow.seq)
            .where(AnswerRow.admission_no == c.admission_no)
            .order_by(AnswerRow.seq.desc())
            .first()
        )
        seq = top.seq if top else 0
        subjects = loads(c.subjects)
        entries = []
        for question in self.rng.sample(QUESTIONS, self.rng.randint(1, 5)):
            seq += 1
            entries.append(
                {
                    "subject": self.rng.choice(subjects),
                    "question": question,
                    "value": f"{self.rng.choice('ABCD')}-{seq}",
                    "seq": seq,
                }
            )
        acked = self.room.save_answers(c.admission_no, c.ip, entries)["acked"]
        if acked != seq:
            raise RuntimeError(f"acknowledged {acked}, sent up to {seq}")
        answers = [[e["subject"], e["question"], e["seq"], e["value"]] for e in entries]
        return {"adm": c.admission_no, "answers": answers}

    def op_link(self) -> Facts | None:
        seat = self.rng.choice(list(Seat.select()))
        self.room.seat_link(seat.ip, not seat.online)
        return {"ip": seat.ip, "online": not seat.online}

    def op_violation(self) -> Facts | None:
        c = self.pick(Candidate.state.in_(["logged_in", "in_exam"]))
        if c is None:
            return None
        code = self.rng.choice(self.room.violation_codes())[0]
        v = self.room.violation_add(c.admission_no, code, "抽查发现")
        return {"adm": c.admission_no, "violation": v["id"]}

    def op_violation_cancel(self) -> Facts | None:
        active = list(Violation.select(Violation.id).where(Violation.cancelled_at.is_null()))
        if not active:
            return None
        vid = self.rng.choice(active).id
        self.room.violation_cancel(vid, confirm=True)
        return {"violation": vid}

    def op_extra_time(self) -> Facts | None:
        c = self.pick(Candidate.state == "in_exam", Candidate.online)
        if c is None:
            return None
        try:
            result = self.room.extra_time(c.admission_no, 60, "鼠标故障")
        except Refused as exc:
            if exc.code != "extra_time_code_needed":
                raise
            challenge = self.room.challenge("extra_time", c.admission_no)["challenge"]
            secret = bytes(Exam.get().site_secret)
            code = codes.issue_code(secret, "extra_time", ROOM, 1, challenge, 60, self.clock.now())
            result = self.room.extra_time(c.admission_no, 60, "鼠标故障", code=code)
        return {"adm": c.admission_no, "extra_s": result["total_s"]}

    def op_lock(self) -> Facts | None:
        c = self.pick(Candidate.state == "in_exam", Candidate.online, Candidate.ip != "")
        if c is None:
            return None
        self.room.lock([c.admission_no], unlock=c.locked)
        return {"adm": c.admission_no, "locked": not c.locked}

    def op_message(self) -> Facts | None:
        self.room.message(f"请注意保存答案（{self.rng.randrange(1000)}）")
        return {}

    def op_hand(self) -> Facts | None:
        c = self.pick(Candidate.state == "in_exam", Candidate.ip != "")
        if c is None:
            return None
        if c.hand_raised_at is None:
            self.room.raise_hand(c.admission_no, c.ip)
        else:
            self.room.hand_answer(c.admission_no)
        return {"adm": c.admission_no}

    def op_client_event(self) -> Facts | None:
        c = self.pick(Candidate.state.in_(["logged_in", "in_exam"]), Candidate.ip != "")
        if c is None:
            return None
        self.room.client_event(c.admission_no, c.ip, "paper_drawn", {"n": self.rng.randrange(99)})
        return {"adm": c.admission_no}

    def op_resume(self) -> Facts | None:
        c = self.pick(Candidate.state == "in_exam", Candidate.ip != "", ~Candidate.resume_pending)
        if c is None:
            return None
        situation = self.room.situation_types()[1]
        self.room.resume([c.admission_no], situation, "考生电脑异常关闭", "张三", confirm_online=True)
        return {"adm": c.admission_no}


def main(argv: list[str]) -> int:
    """Entry point: HOME WITNESS SEED; returns only on an error (it is meant to be killed)."""
    home, witness, seed = Path(argv[0]), Path(argv[1]), int(argv[2])
    driver = Driver(home, witness, random.Random(seed))
    driver.setup()
    driver.run()
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
