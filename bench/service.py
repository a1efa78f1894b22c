"""Benchmarks of the room service on a real SQLite file (synchronous=FULL):
answer sync throughput, the monitor's status() for a full room, the event chain check.

Run: .venv/bin/python -m bench.service   (prints one line per figure)"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from kiosk.common.clock import ManualClock
from kiosk.services.bootstrap import build
from kiosk.services.ports import Ports
from kiosk.services.room import RoomService
from kiosk.services.simulated import SimulatedSeats
from kiosk.settings import load
from kiosk.site.mock import MockExam, author_site, build_default_exam

T0 = 1780272000.0
ROOM = "1999999001"


def timed(label: str, fn, repeat: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    per = (time.perf_counter() - start) / repeat
    print(f"{label}: {per * 1000:.2f} ms")
    return per


def start_room(
    home: Path, pcs: int, exam: MockExam
) -> tuple[RoomService, SimulatedSeats, list[dict], list[str]]:
    """A room of `pcs` simulated PCs through the whole wizard, session 1 started and every
    candidate in the exam: the service, the fleet, the candidates and their PCs' IPs."""
    clock = ManualClock(T0)
    fleet = SimulatedSeats(pcs)
    room = build(load(home=str(home / "home"), min_free_bytes=1024**2), Ports(seats=fleet), clock)
    files = author_site(home / "usb", [exam]).rooms[ROOM]
    room.configure(ROOM, str(home / "answers"), box_ip="127.0.0.1")
    room.seats_scan("ip")
    fleet.attach(room)
    room.envcheck()
    room.room_sheet_import(str(files.sheet), files.registration_code)
    room.exam_import(str(files.package))
    room.seal_check()
    room.session_enter(1, "张三", "15000000001", "李四", "15000000002")
    room.authorise(str(files.authorisations[1]))
    clock.set(T0 + 3600 - 1700)
    room.allow_login()
    people = room.status()["session"]["candidates"]
    ips = [s["ip"] for s in room.seats()]
    for c, ip in zip(people, ips, strict=True):
        room.candidate_login(c["admission_no"], ip)
    room.allow_start()
    clock.set(T0 + 3600)
    for c, ip in zip(people, ips, strict=True):
        room.candidate_begin(c["admission_no"], ip)
    return room, fleet, people, ips


def main(pcs: int = 150) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        exam = build_default_exam(
            room_code=ROOM, first_start=T0 + 3600, candidates_per_session=pcs, mock=False
        )
        room, _, people, ips = start_room(Path(tmp), pcs, exam)

        seq = {c["admission_no"]: 0 for c in people}
        rounds = 4

        def one_round(batch: int) -> None:
            for c, ip in zip(people, ips, strict=True):
                no = c["admission_no"]
                entries = []
                for _ in range(batch):
                    seq[no] += 1
                    entries.append(
                        {
                            "subject": "T01",
                            "question": f"q{seq[no] % 45 + 1:02d}",
                            "value": "A",
                            "seq": seq[no],
                        }
                    )
                room.save_answers(no, ip, entries)

        per = timed(f"save_answers, {pcs} PCs x 1 answer (one commit each)", lambda: one_round(1), rounds)
        print(f"  = {pcs / per:.0f} answers/s")
        per = timed(f"save_answers, {pcs} PCs x 10 answers (batched)", lambda: one_round(10), rounds)
        print(f"  = {pcs * 10 / per:.0f} answers/s")

        def one_group(batch: int) -> None:
            frames = []
            for c, ip in zip(people, ips, strict=True):
                no = c["admission_no"]
                entries = []
                for _ in range(batch):
                    seq[no] += 1
                    answer = {"subject": "T01", "question": f"q{seq[no] % 45 + 1:02d}", "value": "A"}
                    entries.append(
                        {
                            "seq": seq[no],
                            "kind": "answer",
                            "admission_no": no,
                            "payload": {**answer, "aseq": seq[no]},
                            "created_at": T0 + 3600,
                        }
                    )
                frames.append((ip, entries))
            room.sync_journals(frames)

        for batch in (1, 5):
            per = timed(
                f"sync_journals, {pcs} frames x {batch} answers (one group commit)",
                lambda b=batch: one_group(b),
                rounds * 5,
            )
            print(f"  = {pcs * batch / per:.0f} answers/s")
        timed(f"status() for {pcs} candidates", room.status, 5)
        events = room.log_verify()["count"]
        timed(f"log_verify over {events} events", room.log_verify, 3)


if __name__ == "__main__":
    main()
