"""导出作答包 on the exam PC refuses clearly when there is nothing it may export, and
what it writes opens on the box with the room key; the operation tasks' work files go
with it, taken from the snapshots made when they were collected and checked against the
answer's listing, and the box stores them."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from kiosk.common import verified
from kiosk.common.crypto import CERT_FILE, KEY_FILE, Identity, load_or_make_identity
from kiosk.common.errors import Refused
from kiosk.common.signed import open_answer_package
from kiosk.store.models import Exam, StoredFile
from stu_client.cli import main as stu_main
from stu_client.export import WORK_DIR, export_answer_package
from stu_client.localstore import DaemonState, Journal
from stu_client.workfiles import snapshot, snapshot_path
from tests.conftest import T0, enter

ROOM, KEY, NO = "1999999001", bytes(range(32)), "190119999990011001"


def pc_state(folder: Path, **state: object) -> Path:
    pc = load_or_make_identity(folder, "pc", "KS-001")
    DaemonState(**state).save(folder / "state.json")  # type: ignore[arg-type]
    journal = Journal(folder / "journal.db")
    journal.open()
    journal.save_answer(NO, "T01", "q01", "A")
    journal.save_answer(NO, "T01", "q02", ["A", "C"])
    journal.save_answer(NO, "T01", "q01", "B")  # a change of mind: the latest counts
    journal.close()
    assert pc.fingerprint
    return folder


LOGGED_IN = dict(admission_no=NO, room_code=ROOM, session=1, package_key=base64.b64encode(KEY).decode())


def test_the_package_holds_the_latest_answers_and_opens_with_the_room_key(tmp_path: Path) -> None:
    state = pc_state(tmp_path / "pc", **LOGGED_IN)
    path = export_answer_package(state, tmp_path, now=1000.0)
    pc = load_or_make_identity(state, "pc", "KS-001")
    pkg = open_answer_package(path.read_bytes(), KEY, ROOM, 1, {pc.fingerprint})
    assert pkg.admission_no == NO and pkg.created_at == 1000.0
    assert {a["question"]: a["value"] for a in pkg.answers} == {"q01": "B", "q02": ["A", "C"]}
    assert path.name == f"answer-{NO}-s1-{max(a['seq'] for a in pkg.answers)}.json"


@pytest.mark.parametrize(
    ("state", "code"),
    [
        ({}, "no_candidate"),
        ({"admission_no": NO}, "no_package_key"),
        ({**LOGGED_IN, "package_key": "not base64!"}, "no_package_key"),
        ({**LOGGED_IN, "package_key": base64.b64encode(bytes(16)).decode()}, "no_package_key"),
    ],
    ids=["nobody logged in", "no key yet", "damaged key", "short key"],
)
def test_nothing_is_exported_without_a_candidate_and_the_room_key(tmp_path: Path, state, code) -> None:
    with pytest.raises(Refused) as info:
        export_answer_package(pc_state(tmp_path / "pc", **state), tmp_path / "pc")
    assert info.value.code == code and info.value.zh
    assert not list((tmp_path / "pc").glob("answer-*"))


def test_the_command_names_a_missing_stick_in_chinese(tmp_path: Path, capsys) -> None:
    state = pc_state(tmp_path / "pc", **LOGGED_IN)
    assert stu_main(["export", "--state", str(state), "--to", str(tmp_path / "no-stick")]) == 1
    assert "请插入U盘" in capsys.readouterr().err
    assert stu_main(["export", "--state", str(state), "--to", str(tmp_path)]) == 0
    assert "作答包已导出" in capsys.readouterr().out


# -- the operation tasks' work files -----------------------------------------------------------

START = T0 + 3600
WORK = bytes(range(256)) * 40 + "表格的最后一行".encode()


def listing(*files: tuple[str, bytes]) -> dict[str, Any]:
    """An operation task's answer value as the answer app stores it."""
    return {"files": [{"name": n, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()} for n, d in files]}


def work_state(folder: Path, no: str, pc: Identity | None = None, key: bytes = KEY) -> Path:
    """A PC's state folder with a theory answer and an operation answer listing two work
    files, collected as the answer app collects them (the work folder's files copied into
    the snapshot store, the listing naming the copies); signed with `pc`'s key if given."""
    folder.mkdir(parents=True)
    if pc is not None:
        (folder / KEY_FILE.format("pc")).write_bytes(pc.key_pem)
        (folder / CERT_FILE.format("pc")).write_bytes(pc.cert_pem)
    else:
        load_or_make_identity(folder, "pc", "KS-001")
    state = dict(admission_no=no, room_code=ROOM, session=1, package_key=base64.b64encode(key).decode())
    DaemonState(**state).save(folder / "state.json")  # type: ignore[arg-type]
    work = folder / WORK_DIR / no / "T01" / "q05"
    work.mkdir(parents=True)
    (work / "表格.xlsx").write_bytes(WORK)
    (work / "说明.txt").write_bytes(b"")
    collected = [snapshot(folder, work / name) for name in ("表格.xlsx", "说明.txt")]
    assert collected == [(len(WORK), hashlib.sha256(WORK).hexdigest()), (0, hashlib.sha256(b"").hexdigest())]
    journal = Journal(folder / "journal.db")
    journal.open()
    journal.save_answer(no, "T01", "q01", "A")
    journal.save_answer(no, "T01", "q05", listing(("表格.xlsx", WORK), ("说明.txt", b"")))
    journal.close()
    return folder


def test_the_work_files_travel_in_the_package_and_the_box_stores_them(
    ready_room, fleet, clock, exam_files, tmp_path: Path
) -> None:
    room = ready_room
    enter(room)
    room.authorise(str(exam_files.auth[1]))
    clock.set(START - 1700)
    room.allow_login()
    no, ip = room.status()["session"]["candidates"][0]["admission_no"], room.seats()[0]["ip"]
    room.candidate_login(no, ip)
    key = bytes(Exam.get().package_key)  # what the login answer hands the PC
    state = work_state(tmp_path / "pc", no, fleet.pcs[ip].identity, key)
    stick = tmp_path / "stick"
    stick.mkdir()
    path = export_answer_package(state, stick, now=START)
    assert sorted(p.name for p in stick.iterdir()) == [path.name], "no .part file is left"
    result = room.import_answers(str(path))
    assert result["newer"] == 2
    folder = Path(room.config().answer_dir) / "session-1" / no / "T01" / "q05"
    assert (folder / "表格.xlsx").read_bytes() == WORK and (folder / "说明.txt").read_bytes() == b""
    rows = {r.name: (r.size, r.sha256) for r in StoredFile.select().where(StoredFile.admission_no == no)}
    assert rows == {"表格.xlsx": (len(WORK), hashlib.sha256(WORK).hexdigest()),
                    "说明.txt": (0, hashlib.sha256(b"").hexdigest())}  # fmt: skip
    answers = {a["question"]: a["value"] for a in room.client_view(room.get_candidate(no))["answers"]}
    assert answers["q05"] == listing(("表格.xlsx", WORK), ("说明.txt", b""))


def test_the_package_opens_with_the_files_as_listed(tmp_path: Path) -> None:
    state = work_state(tmp_path / "pc", NO)
    path = export_answer_package(state, tmp_path, now=1000.0)
    pc = load_or_make_identity(state, "pc", "KS-001")
    pkg = open_answer_package(path.read_bytes(), KEY, ROOM, 1, {pc.fingerprint})
    assert [(f.subject, f.question, f.name, bytes(f.data)) for f in pkg.files] == [
        ("T01", "q05", "表格.xlsx", WORK),
        ("T01", "q05", "说明.txt", b""),
    ]


def test_the_work_folder_changed_after_collecting_does_not_change_what_is_exported(tmp_path: Path) -> None:
    state = work_state(tmp_path / "pc", NO)
    work = state / WORK_DIR / NO / "T01" / "q05"
    (work / "表格.xlsx").write_bytes(b"edited after collecting")
    (work / "说明.txt").unlink()
    (work / "新文件.txt").write_bytes(b"never collected")
    path = export_answer_package(state, tmp_path, now=1000.0)
    pc = load_or_make_identity(state, "pc", "KS-001")
    pkg = open_answer_package(path.read_bytes(), KEY, ROOM, 1, {pc.fingerprint})
    assert [(f.name, bytes(f.data)) for f in pkg.files] == [("表格.xlsx", WORK), ("说明.txt", b"")]


def _snapshot(state: Path, data: bytes) -> Path:
    return snapshot_path(state, hashlib.sha256(data).hexdigest())


def _changed(state: Path) -> None:
    _snapshot(state, WORK).write_bytes(WORK[:-1] + b"!")  # same size, other bytes


def _grown(state: Path) -> None:
    with open(_snapshot(state, WORK), "ab") as f:
        f.write(b"more")


def _gone(state: Path) -> None:
    _snapshot(state, b"").unlink()


@pytest.mark.parametrize(
    ("change", "code", "words"),
    [(_changed, "work_file_damaged", "已损坏"), (_grown, "work_file_damaged", "已损坏"),
     (_gone, "work_file_missing", "已不存在")],
    ids=["same size, other bytes", "grown", "vanished"],
)  # fmt: skip
def test_a_snapshot_damaged_or_gone_since_it_was_collected_is_refused(
    tmp_path: Path, change, code: str, words: str
) -> None:
    state = work_state(tmp_path / "pc", NO)
    change(state)
    stick = tmp_path / "stick"
    stick.mkdir()
    with pytest.raises(Refused) as info:
        export_answer_package(state, stick)
    assert info.value.code == code and words in info.value.zh and "q05" in info.value.zh
    assert list(stick.iterdir()) == [], "nothing is written"


@pytest.mark.parametrize(
    "files",
    [
        "not a list",
        [{"name": "../../state.json", "size": 1, "sha256": "0" * 64}],
        [{"name": "a.txt", "size": True, "sha256": "0" * 64}],
        [{"name": "a.txt", "size": 1, "sha256": "not a hash"}],
        [{"name": "a.txt", "size": 1, "sha256": "0" * 64}, {"name": "a.txt", "size": 1, "sha256": "0" * 64}],
    ],
    ids=["not a list", "a path out of the folder", "a boolean size", "no hash", "a name twice"],
)
def test_a_listing_the_export_cannot_trust_is_refused(tmp_path: Path, files: Any) -> None:
    state = work_state(tmp_path / "pc", NO)
    journal = Journal(state / "journal.db")
    journal.open()
    journal.save_answer(NO, "T01", "q05", {"files": files})
    journal.close()
    with pytest.raises(Refused) as info:
        export_answer_package(state, tmp_path)
    assert info.value.code == "work_listing_invalid" and "q05" in info.value.zh
    assert not list(tmp_path.glob("*answer-*"))


def test_a_stick_too_small_is_refused_before_anything_is_written(tmp_path: Path, monkeypatch) -> None:
    state = work_state(tmp_path / "pc", NO)
    stick = tmp_path / "stick"
    stick.mkdir()
    usage = shutil.disk_usage(stick)
    monkeypatch.setattr(verified.shutil, "disk_usage", lambda _: usage._replace(free=len(WORK)))
    with pytest.raises(Refused) as info:
        export_answer_package(state, stick)
    assert info.value.code == "usb_full" and info.value.zh.startswith("U盘空间不足")
    assert list(stick.iterdir()) == []


def test_a_package_that_does_not_read_back_from_the_stick_is_refused_and_removed(
    tmp_path: Path, monkeypatch
) -> None:
    state = work_state(tmp_path / "pc", NO)
    stick = tmp_path / "stick"
    stick.mkdir()
    real = verified._write

    def corrupting_write(src, tmp, counter):  # the device keeps other bytes than were written
        digest = real(src, tmp, counter)
        with open(tmp, "r+b") as f:
            f.seek(-1, os.SEEK_END)
            f.write(b"X")
        return digest

    monkeypatch.setattr(verified, "_write", corrupting_write)
    with pytest.raises(Refused) as info:
        export_answer_package(state, stick)
    assert info.value.code == "verify_failed" and info.value.zh == "作答包写入后校验失败，请更换U盘重试"
    assert list(stick.iterdir()) == []
