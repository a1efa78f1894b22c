"""The room service with real sticks (ext4 loop, vfat through fusefat, or plain folders
where mounting is not allowed; the summary line says which ran): what is on a stick and
the operation offered for each package, the exam data taken from it, and a backup that
does not fit refused before anything is written."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from kiosk.common.errors import Refused
from kiosk.services.bootstrap import build
from kiosk.services.ports import Ports
from kiosk.store.answer_files import question_folder
from kiosk.store.models import StoredFile
from kiosk.usb.watch import UsbWatcher
from tests.conftest import ROOM, T0, enter, make_exam_files
from tests.usb.conftest import StickMaker


@pytest.fixture
def usb_room(make_stick: StickMaker, settings, clock, fleet, tmp_path):
    """A configured room whose USB port watches a stick that is plugged in, and the stick."""
    stick = make_stick(32)
    stick.plug()
    watcher = UsbWatcher(stick.settings())
    watcher.start()
    room = build(settings, Ports(seats=fleet, usb=watcher), clock)
    fleet.attach(room)
    room.configure(ROOM, str(tmp_path / "answers"), box_ip="127.0.0.1")
    yield room, stick
    watcher.stop()


def test_the_box_lists_a_sticks_packages_and_takes_the_exam_data_from_it(usb_room, tmp_path):
    room, stick = usb_room
    files = make_exam_files(tmp_path / "site")
    for src in (files.sheet, files.package, files.auth[1]):
        shutil.copyfile(src, stick.path / src.name)  # vfat keeps no permission bits
    (stick.path / "notes.txt").write_text("一份说明")
    os.sync()
    (listed,) = room.usb_sticks()
    assert listed["path"] == str(stick.path) and listed["free_bytes"] > 0
    offered = {Path(p["path"]).name: (p["kind_zh"], p["operation"]) for p in listed["packages"]}
    assert offered == {
        "room-sheet.json": ("考点信息表", "room_sheet_import"),
        "exam-package.json": ("考务数据", "exam_import"),
        "authorisation-1.json": ("考试授权", "authorise"),
    }
    path = {Path(p["path"]).name: p["path"] for p in listed["packages"]}
    room.room_sheet_import(path["room-sheet.json"], files.registration_code)
    assert room.exam_import(path["exam-package.json"])["loaded"]


def test_a_backup_that_does_not_fit_is_refused_before_anything_is_written(usb_room, fleet, clock, tmp_path):
    room, stick = usb_room
    files = make_exam_files(tmp_path / "site")
    room.seats_scan("ip")
    for ip in fleet.pcs:
        room.seat_link(ip, True)
    room.envcheck()
    room.room_sheet_import(str(files.sheet), files.registration_code)
    room.exam_import(str(files.package))
    assert room.seal_check()["passed"]
    enter(room)
    room.authorise(str(files.auth[1]))
    people = room.status()["session"]["candidates"]
    clock.set(T0 + 3600 - 1700)
    room.allow_login()
    clock.set(T0 + 3600 - 1200)
    room.allow_start()
    clock.set(T0 + 3600 + 1801)  # past the late-login limit: everyone is absent
    room.absent([c["admission_no"] for c in people], confirm=True)
    room.end("888")
    # A candidate's work larger than the stick (sparse on the box's disk, so a folder
    # stick, which has the host's free space, is also too small for it).
    no, size = people[0]["admission_no"], shutil.disk_usage(stick.path).free + 1
    work = question_folder(room.answer_root(), 1, no, "T01", "q01") / "work.bin"
    work.parent.mkdir(parents=True)
    with work.open("wb") as f:
        f.truncate(size)
    row = StoredFile.create(admission_no=no, session=1, subject="T01", question="q01", name="work.bin",
                            size=size, sha256="0" * 64)  # fmt: skip
    before = sorted(stick.path.iterdir())
    with pytest.raises(Refused) as info:
        room.backup()  # no folder given: the stick plugged in
    assert info.value.code == "usb_full" and "U盘空间不足" in info.value.zh
    assert sorted(stick.path.iterdir()) == before, "nothing written, not even a .part file"
    work.unlink()
    row.delete_instance()
    done = room.backup()
    assert Path(done["path"]).parent == stick.path and done["files"] == 0
