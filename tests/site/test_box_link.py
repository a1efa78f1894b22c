"""The room service in site mode against the real site server on loopback: a room of
three whose one candidate's operation work arrives by answer package; the upload takes
the results package and then that work file to the site, which keeps it."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from kiosk.common.clock import ManualClock
from kiosk.common.packages import AnswerFile
from kiosk.common.signed import seal_answer_package
from kiosk.net.site_client import SiteClient
from kiosk.services.bootstrap import box_identity, build
from kiosk.services.ports import Ports
from kiosk.services.simulated import SimulatedSeats
from kiosk.settings import load
from kiosk.site import store
from kiosk.site.mock import author_site, build_default_exam
from kiosk.store.models import Exam
from tests.site.serving import ShiftedClock, site_server

ROOM = "1999999001"


def test_the_box_registers_downloads_and_uploads_the_results_with_the_work_files(tmp_path: Path) -> None:
    now = time.time()
    start = now + 3600
    exam = build_default_exam(room_code=ROOM, first_start=start, candidates_per_session=3, mock=False)
    plan = author_site(tmp_path / "site", [exam])
    code = plan.rooms[ROOM].registration_code
    server = site_server(plan.folder, f"sqlite:///{tmp_path / 'site.db'}", ShiftedClock())
    try:
        settings = load(home=str(tmp_path / "box"), min_free_bytes=1024**2)
        identity = box_identity(settings)

        def site(site_ip: str, cert: bytes | None) -> SiteClient:
            return SiteClient(site_ip, server.port, identity, cert, chunk_bytes=64 * 1024)

        fleet, clock = SimulatedSeats(3), ManualClock(now)
        room = build(settings, Ports(seats=fleet, site=site), clock)
        fleet.attach(room)
        room.configure(ROOM, str(tmp_path / "answers"), box_ip="127.0.0.1", site_mode=True,
                       site_ip="127.0.0.1", registration_code=code)  # fmt: skip
        room.seats_scan("ip")
        room.envcheck()
        room.exam_download()
        assert room.seal_check()["reported"]
        room.session_enter(1, "张三", "15000000001", "李四", "15000000002")
        room.authorise()
        clock.set(start - 1700)
        room.allow_login()
        people = room.status()["session"]["candidates"]
        ips = [s["ip"] for s in room.seats()]
        for c, ip in zip(people, ips, strict=True):
            room.candidate_login(c["admission_no"], ip)
        clock.set(start - 1200)
        room.allow_start()
        clock.set(start)
        for c, ip in zip(people, ips, strict=True):
            room.candidate_begin(c["admission_no"], ip)

        work = AnswerFile("T01", "q01", "报表.xlsx", bytes(range(256)) * 1000)
        answer = {"subject": "T01", "question": "q01", "value": "见附件", "seq": 1, "saved_at": start + 50}
        raw = seal_answer_package(
            fleet.pcs[ips[0]].identity, bytes(Exam.get().package_key), room_code=ROOM, session=1,
            admission_no=people[0]["admission_no"], created_at=start + 60, files=[work],
            answers=[answer],
        )  # fmt: skip
        (tmp_path / "pkg.json").write_bytes(raw)
        assert room.import_answers(str(tmp_path / "pkg.json"))["newer"] == 1
        clock.set(start + 1800)
        for c, ip in zip(people, ips, strict=True):
            room.candidate_submit(c["admission_no"], ip)
        room.end("888")
        usb = tmp_path / "stick"
        usb.mkdir()
        assert room.backup(str(usb))["files"] == 1
        seen: list[tuple[int, int]] = []
        uploaded = room.upload(progress=lambda done, total: seen.append((done, total)))
        assert uploaded["site"]["complete"] and uploaded["site"]["reconciliation"]["files"] == 1
        assert seen[-1][0] == seen[-1][1] > len(work.data)

        stored = store.upload(ROOM, hashlib.sha256(work.data).hexdigest())
        assert stored is not None and stored.complete
        assert Path(stored.stored_path).read_bytes() == work.data
    finally:
        server.stop()
        if store.database.obj is not None:
            store.database.close()
