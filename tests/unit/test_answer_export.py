"""导出作答包 on the exam PC refuses clearly when there is nothing it may export, and
what it writes opens on the box with the room key."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from kiosk.common.crypto import load_or_make_identity
from kiosk.common.errors import Refused
from kiosk.common.signed import open_answer_package
from stu_client.cli import main as stu_main
from stu_client.export import export_answer_package
from stu_client.localstore import DaemonState, Journal

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
