"""Site mode through the SiteLink port, with a recording double standing in for the
exam-site server (the real site client is the exam-site issue's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.common.signed import open_sealed
from kiosk.core.errors import Refused
from kiosk.services.bootstrap import build
from kiosk.services.ports import Ports
from tests.conftest import ROOM, T0, enter
from tests.integration.test_exam_session import refused

START = T0 + 3600


class RecordingSite:
    def __init__(self, exam_files) -> None:
        self.files = exam_files
        self.up = True
        self.calls: list[tuple] = []
        self.uploaded: bytes = b""

    def _check(self) -> None:
        if not self.up:
            raise Refused("site_offline", "无法连接考点服务器", "site down")

    def reachable(self) -> bool:
        return self.up

    def register(self, room_code, registration_code) -> bytes:
        self._check()
        if registration_code != self.files.registration_code:
            raise Refused("registration_code_wrong", "注册码错误", "wrong registration code")
        self.calls.append(("register", room_code))
        return self.files.sheet.read_bytes()

    def download_exam(self, room_code) -> bytes:
        self._check()
        self.calls.append(("download", room_code))
        return self.files.package.read_bytes()

    def fetch_authorisation(self, room_code, session) -> bytes:
        self._check()
        self.calls.append(("authorisation", session))
        return self.files.auth[session].read_bytes()

    def report_seal(self, room_code, report) -> None:
        self._check()
        self.calls.append(("seal", report["passed"]))

    def upload_results(self, room_code, path: Path, progress, files=()) -> dict:
        self._check()
        self.uploaded = path.read_bytes()
        progress(len(self.uploaded), len(self.uploaded))
        self.calls.append(("upload", path.name))
        return {"complete": True}


@pytest.fixture
def site(exam_files):
    return RecordingSite(exam_files)


@pytest.fixture
def site_room(settings, clock, fleet, site):
    room = build(settings, Ports(seats=fleet, site=lambda ip, cert: site), clock)
    fleet.attach(room)
    return room


def configure(room, code=""):
    return room.configure(
        ROOM,
        str(Path(room.settings.home) / "answers"),
        box_ip="127.0.0.1",
        site_mode=True,
        site_ip="127.0.0.5",
        registration_code=code or room.ports.site("127.0.0.5", None).files.registration_code,
    )


def test_registration_is_refused_by_the_site_and_nothing_is_saved(site_room, site):
    refused("registration_code_wrong", configure, site_room, "WRONGONE")
    assert site_room.config() is None
    site.up = False
    refused("site_offline", configure, site_room)
    assert site_room.config() is None


def test_a_whole_site_mode_session_downloads_reports_and_uploads(site_room, site, clock, tmp_path):
    room = site_room
    configure(room)
    room.seats_scan("ip")
    room.envcheck()
    room.exam_download()
    result = room.seal_check()
    assert result["passed"] and result["reported"] and ("seal", True) in site.calls
    site.up = False
    refused("site_offline", enter, room)
    site.up = True
    enter(room)
    room.authorise()
    assert ("authorisation", 1) in site.calls
    clock.set(START - 1800)
    room.allow_login()
    clock.set(START + 1000)
    room.allow_start(code=_late_code(room, site, clock))
    clock.advance(60 + 1801)  # countdown, then the late-login limit
    room.absent([c["admission_no"] for c in room.status()["session"]["candidates"]], confirm=True)
    room.end("888")
    refused("backup_first", room.upload)
    usb = tmp_path / "usb-stick"
    usb.mkdir()
    room.backup(str(usb))
    progress = []
    assert room.upload(progress=lambda done, total: progress.append((done, total)))["message"] == "上报完成"
    results = open_sealed(site.uploaded, "results-package", room.identity.cert_pem)
    assert results["session"] == 1 and progress[-1][0] == progress[-1][1]


def _late_code(room, site, clock) -> str:
    import base64

    from kiosk.core import codes

    challenge = room.challenge("late_start")["challenge"]
    secret = base64.b64decode(site.files.exam.package["exam"]["site_secret"])
    return codes.issue_code(secret, "late_start", ROOM, 1, challenge, 0, clock.now())


def test_a_seal_check_that_cannot_be_reported_is_kept_with_the_reason(site_room, site):
    configure(site_room)
    site_room.seats_scan("ip")
    site_room.envcheck()
    site_room.exam_download()
    site.up = False
    result = site_room.seal_check()
    assert result["passed"] and not result["reported"] and "考点" in result["report_error"]


def test_registering_again_with_the_site_keeps_the_pinned_sheet(site_room, site, exam_files, tmp_path):
    from kiosk.site.mock import author_site, build_default_exam
    from kiosk.store.models import SiteTrust
    from tests.conftest import ExamFiles

    room = site_room
    refused("not_configured", room.site_register)
    configure(room)
    pinned = SiteTrust.get()
    result = room.site_register()
    assert result["site_code"] == "1999999" and result["fingerprint"] == pinned.fingerprint
    assert [s["number"] for s in result["sessions"]] == [1, 2]
    assert [c for c in site.calls if c[0] == "register"] == [("register", ROOM)] * 2
    assert SiteTrust.select().count() == 1 and SiteTrust.get().fingerprint == pinned.fingerprint
    site.up = False
    refused("site_offline", room.site_register)
    site.up = True
    # a server with another site key, answering with a sheet made for this very
    # registration code: its proof holds, but the box has pinned the first site
    exam = build_default_exam(room_code=ROOM, first_start=START, mock=False)
    code = {ROOM: exam_files.registration_code}
    site.files = ExamFiles(exam, author_site(tmp_path / "other-site", [exam], codes=code).rooms[ROOM])
    refused("site_key_changed", room.site_register)
    assert SiteTrust.get().fingerprint == pinned.fingerprint


def test_registration_needs_site_mode(room):
    room.configure(ROOM, str(Path(room.settings.home) / "answers"), box_ip="127.0.0.1")
    refused("not_site_mode", room.site_register)
