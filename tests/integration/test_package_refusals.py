"""Packages refused through the room service change nothing: the exam package of another
room, a stale or second exam package, a session authorisation for another room, outside
its window, with a byte flipped or a signature swapped, and answer packages that are
foreign, older than what the box holds or the same again. Every test compares the whole
room database (every row of every table) before and after, on a real SQLite file."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.common.crypto import load_or_make_identity, make_identity, sign
from kiosk.common.packages import AnswerFile
from kiosk.common.signed import seal, unverified_body
from kiosk.core.errors import Refused
from kiosk.services.room import RoomService
from kiosk.site.mock import RoomFiles, author_site, build_default_exam
from kiosk.store.models import Answer, Event, Exam, Session, UsedCode
from tests.conftest import ROOM, T0, ExamFiles, enter, pin_site
from tests.integration.test_exam_session import answer_package, candidates

START = T0 + 3600
OTHER_ROOM = "1999999002"
Snapshot = dict[str, list[tuple[Any, ...]]]


def snapshot(room: RoomService) -> Snapshot:
    """Every row of every table of the room database."""
    tables = room.db.get_tables()
    return {t: room.db.execute_sql(f'SELECT * FROM "{t}" ORDER BY rowid').fetchall() for t in tables}


def counts() -> tuple[int, int, int, int]:
    return Event.select().count(), Exam.select().count(), UsedCode.select().count(), Answer.select().count()


def refused_unchanged(room: RoomService, expected: str | set[str], fn, *args: Any) -> Refused:
    """`fn(*args)` is refused with `expected` (a code or any of a set of codes) and the
    database is exactly as it was."""
    before, numbers = snapshot(room), counts()
    with pytest.raises(Refused) as err:
        fn(*args)
    codes = {expected} if isinstance(expected, str) else expected
    assert err.value.code in codes, err.value.en
    assert err.value.zh and err.value.en
    assert counts() == numbers, "events, exam, used codes and answers are counted the same"
    assert snapshot(room) == before, "a refusal changes nothing"
    return err.value


def same_site(exam_files: ExamFiles, folder: Path, now: float, room_code: str = ROOM) -> RoomFiles:
    """Another issue of the site's files, signed by the same site key (copied into
    `folder`): another room's, or the same room's issued at another time."""
    shutil.copytree(exam_files.package.parents[2] / "site", folder / "site")
    exam = build_default_exam(room_code=room_code, first_start=START, mock=False)
    return author_site(folder, [exam], now=now).rooms[room_code]


# -- the exam package ------------------------------------------------------------------------


@pytest.fixture
def pinned(room: RoomService, exam_files: ExamFiles) -> RoomService:
    room.configure(ROOM, str(Path(room.settings.home) / "answers"), box_ip="127.0.0.1")
    pin_site(room, exam_files)
    return room


def test_another_rooms_exam_package_signed_by_the_site_is_refused(pinned, exam_files, tmp_path):
    other = same_site(exam_files, tmp_path / "other", T0, OTHER_ROOM)
    err = refused_unchanged(pinned, "foreign_room", pinned.exam_import, str(other.package))
    assert OTHER_ROOM in err.zh and pinned.exam() is None
    pinned.exam_import(str(exam_files.package))
    refused_unchanged(pinned, "foreign_room", pinned.exam_import, str(other.package))


def test_an_older_exam_package_is_stale_and_a_newer_one_needs_initialising(pinned, exam_files, tmp_path):
    loaded = same_site(exam_files, tmp_path / "noon", T0)
    older = same_site(exam_files, tmp_path / "morning", T0 - 3600)
    newer = same_site(exam_files, tmp_path / "evening", T0 + 3600)
    pinned.exam_import(str(loaded.package))
    err = refused_unchanged(pinned, "stale_exam", pinned.exam_import, str(older.package))
    assert "旧" in err.zh
    err = refused_unchanged(pinned, "exam_already_loaded", pinned.exam_import, str(newer.package))
    assert "初始化" in err.zh
    before = snapshot(pinned)
    assert pinned.exam_import(str(loaded.package))["already_loaded"] is True
    assert snapshot(pinned) == before, "the same package again changes nothing"


def test_an_exam_package_without_an_issue_time_counts_as_the_oldest(pinned, exam_files, tmp_path):
    """`issued_at` is optional in the body (docs/formats.md): without it a package is
    older than any that has one."""
    pinned.exam_import(str(exam_files.package))
    key = load_or_make_identity(exam_files.package.parents[2] / "site", "site", "unused")
    body = unverified_body(exam_files.package.read_bytes(), "exam-package")
    del body["issued_at"]
    path = tmp_path / "undated.json"
    path.write_bytes(seal(key, "exam-package", body))
    refused_unchanged(pinned, "stale_exam", pinned.exam_import, str(path))


# -- the session authorisation ---------------------------------------------------------------


@pytest.fixture
def entered(ready_room: RoomService) -> RoomService:
    enter(ready_room)
    return ready_room


def test_another_rooms_authorisation_is_refused(entered, exam_files, tmp_path):
    other = same_site(exam_files, tmp_path / "other", T0, OTHER_ROOM)
    err = refused_unchanged(entered, "foreign_room", entered.authorise, str(other.authorisations[1]))
    assert OTHER_ROOM in err.zh
    assert Session.get(Session.number == 1).authorised_at is None


def test_an_authorisation_outside_its_window_is_refused_and_a_replay_later_too(entered, exam_files, clock):
    path = str(exam_files.auth[1])
    clock.set(START - 2 * 3600 - 1)  # a second before the site's window opens
    refused_unchanged(entered, "outside_window", entered.authorise, path)
    clock.set(START - 3600)
    assert entered.authorise(path) == {"already": False, "papers": 1}
    before = snapshot(entered)
    assert entered.authorise(path)["already"] is True, "inside the window: nothing more to do"
    assert snapshot(entered) == before
    clock.set(START + 8 * 3600 + 1)  # the same file replayed after the window closed
    refused_unchanged(entered, "outside_window", entered.authorise, path)


def test_an_authorisation_for_another_session_is_refused(entered, exam_files):
    refused_unchanged(entered, "wrong_session", entered.authorise, str(exam_files.auth[2]))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_an_authorisation_with_a_byte_flipped_anywhere_is_refused(entered, exam_files, tmp_path, data):
    raw = bytearray(exam_files.auth[1].read_bytes())
    at = data.draw(st.integers(0, len(raw) - 1), label="at")
    raw[at] ^= data.draw(st.integers(1, 255), label="xor")
    path = tmp_path / "flipped.json"
    path.write_bytes(bytes(raw))
    refused_unchanged(
        entered, {"package_invalid", "bad_signature", "foreign_signer"}, entered.authorise, str(path)
    )


def _envelope(path: Path) -> dict[str, Any]:
    return json.loads(path.read_bytes())


def _write(path: Path, doc: dict[str, Any]) -> str:
    path.write_bytes(json.dumps(doc, separators=(",", ":")).encode())
    return str(path)


def test_an_authorisation_with_a_swapped_signature_is_refused(entered, exam_files, tmp_path):
    real, other = _envelope(exam_files.auth[1]), _envelope(exam_files.auth[2])
    # The real body with the signature of another file the site signed.
    swapped = _write(tmp_path / "swapped.json", {**real, "sig": other["sig"]})
    refused_unchanged(entered, "bad_signature", entered.authorise, swapped)
    # The real body signed by another key, which names itself or claims to be the site.
    forger = make_identity("forger")
    forged_sig = base64.b64encode(sign(forger, base64.b64decode(real["body"]))).decode()
    own = _write(tmp_path / "own.json", {**real, "signer": forger.fingerprint, "sig": forged_sig})
    refused_unchanged(entered, "foreign_signer", entered.authorise, own)
    claimed = _write(tmp_path / "claimed.json", {**real, "sig": forged_sig})
    refused_unchanged(entered, "bad_signature", entered.authorise, claimed)
    assert entered.authorise(str(exam_files.auth[1]))["papers"] == 1, "the real one still opens"


# -- answer packages -------------------------------------------------------------------------


def _answer(question: str, value: Any, seq: int) -> dict[str, Any]:
    return {"subject": "T01", "question": question, "value": value, "seq": seq, "saved_at": START}


def _values(room: RoomService, admission_no: str) -> dict[str, tuple[Any, int]]:
    rows = room.client_view(room.get_candidate(admission_no))["answers"]
    return {a["question"]: (a["value"], a["seq"]) for a in rows}


def test_an_older_package_after_newer_answers_changes_nothing(started, fleet, tmp_path):
    room = started
    c = candidates(room)[14]
    no, pc = c["admission_no"], fleet.pcs[c["ip"]].identity
    older = answer_package(
        tmp_path / "older.json", pc, no, [_answer("q01", "A", 1), _answer("q02", "A", 2)],
        files=(AnswerFile("T01", "q02", "work.txt", b"first draft"),),
    )  # fmt: skip
    newer = answer_package(
        tmp_path / "newer.json", pc, no, [_answer("q01", "B", 3), _answer("q02", "C", 4)],
        files=(AnswerFile("T01", "q02", "work.txt", b"final version"),),
    )  # fmt: skip
    events = Event.select().count()
    assert room.import_answers(newer)["newer"] == 2
    assert Event.select().count() == events + 1, "an import that stores answers is an event"
    work = Path(room.config().answer_dir) / "session-1" / no / "T01" / "q02" / "work.txt"
    assert work.read_bytes() == b"final version"
    before = snapshot(room)
    result = room.import_answers(older)
    assert result["newer"] == 0 and "未做任何更改" in result["message"]
    assert snapshot(room) == before, "no answer, file row or event: the older package changes nothing"
    assert _values(room, no) == {"q01": ("B", 3), "q02": ("C", 4)}
    assert work.read_bytes() == b"final version", "the older package's file does not replace the newer"
    assert room.import_answers(newer)["newer"] == 0
    assert snapshot(room) == before, "the same package twice changes nothing"


def test_a_package_older_than_the_journal_changes_nothing(started, fleet, tmp_path):
    """The PC's journal brought newer answers before an old export arrives by USB."""
    room = started
    c = candidates(room)[15]
    no = c["admission_no"]
    room.save_answers(no, c["ip"], [{"subject": "T01", "question": "q01", "value": "D", "seq": 9}])
    old = answer_package(tmp_path / "old.json", fleet.pcs[c["ip"]].identity, no, [_answer("q01", "A", 2)])
    before = snapshot(room)
    assert room.import_answers(old)["newer"] == 0
    assert snapshot(room) == before and _values(room, no) == {"q01": ("D", 9)}


def test_a_package_with_some_newer_answers_stores_only_those(started, fleet, tmp_path):
    room = started
    c = candidates(room)[16]
    no, pc = c["admission_no"], fleet.pcs[c["ip"]].identity
    room.save_answers(no, c["ip"], [{"subject": "T01", "question": "q01", "value": "D", "seq": 5}])
    mixed = answer_package(tmp_path / "mixed.json", pc, no, [_answer("q01", "A", 2), _answer("q02", "B", 6)])
    events = Event.select().count()
    assert room.import_answers(mixed)["newer"] == 1
    assert _values(room, no) == {"q01": ("D", 5), "q02": ("B", 6)}
    assert Event.select().count() == events + 1


@pytest.mark.parametrize("operation", ["import_answers", "collect"])
def test_single_package_refusals_change_nothing(started, fleet, clock, tmp_path, operation):
    room = started
    clock.set(START + 1800)  # collection is allowed from the earliest-submission time
    a, d = candidates(room)[7], candidates(room)[9]
    no, pc = d["admission_no"], fleet.pcs[d["ip"]].identity
    answers = [_answer("q01", "A", 1)]
    room.save_answers(no, d["ip"], [{"subject": "T01", "question": "q02", "value": "B", "seq": 1}])
    cases = {
        "foreign_room": answer_package(tmp_path / "r.json", pc, no, answers, room_code=OTHER_ROOM),
        "wrong_session": answer_package(tmp_path / "s.json", pc, no, answers, session=2),
        "foreign_pc": answer_package(tmp_path / "x.json", make_identity("stranger"), no, answers),
        "foreign_candidate": answer_package(tmp_path / "n.json", fleet.pcs[a["ip"]].identity, no, answers),
    }
    for code, path in cases.items():
        refused_unchanged(room, code, getattr(room, operation), path)
    assert room.get_candidate(no).state == "in_exam" and not room.get_candidate(no).collected


def test_refused_packages_on_a_stick_leave_no_trace_and_the_same_stick_again_changes_nothing(
    started, fleet, tmp_path
):
    room = started
    a, b = candidates(room)[17], candidates(room)[18]
    stick = tmp_path / "stick"
    stick.mkdir()
    pa, first = fleet.pcs[a["ip"]].identity, [_answer("q01", "A", 1)]
    answer_package(stick / "foreign.json", pa, a["admission_no"], first, room_code=OTHER_ROOM)
    answer_package(stick / "neighbour.json", pa, b["admission_no"], first)
    before = snapshot(room)
    result = room.import_answers_all(str(stick))
    assert result["imported"] == [] and {r["code"] for r in result["refused"]} == {
        "foreign_room",
        "foreign_candidate",
    }
    assert snapshot(room) == before
    answer_package(stick / "good.json", pa, a["admission_no"], [_answer("q01", "B", 2)])
    assert room.import_answers_all(str(stick))["newer"] == 1
    after = snapshot(room)
    again = room.import_answers_all(str(stick))
    assert again["newer"] == 0 and len(again["refused"]) == 2
    assert snapshot(room) == after, "the same stick again: not even an event"


# -- files that cannot be read -----------------------------------------------------------------


def test_missing_too_large_or_unreadable_package_files_are_refused_with_the_reason(
    entered, exam_files, tmp_path, monkeypatch
):
    big = tmp_path / "big.json"
    with open(big, "wb") as f:
        f.truncate(1024**2 + 1)  # sparse: larger than any authorisation
    refused_unchanged(entered, "file_not_found", entered.authorise, str(tmp_path / "none.json"))
    refused_unchanged(entered, "file_too_large", entered.authorise, str(big))
    code = exam_files.registration_code
    refused_unchanged(entered, "file_too_large", entered.room_sheet_import, str(big), code)

    def pulled_out(self: Path) -> bytes:  # the stick went away between the listing and the read
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(Path, "read_bytes", pulled_out)
    for operation, args in (
        (entered.authorise, ()),
        (entered.exam_import, ()),
        (entered.room_sheet_import, (code,)),
    ):
        err = refused_unchanged(entered, "read_failed", operation, str(exam_files.auth[1]), *args)
        assert "Input/output error" in err.zh
