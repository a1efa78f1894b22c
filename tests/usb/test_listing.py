"""What list_stick reports: the project's packages near the top of a stick, classified
by their first bytes, and nothing else; a weird stick never makes it raise."""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

import pytest

from kiosk.usb import listing
from kiosk.usb.listing import classify, list_stick
from tests.usb.conftest import envelope, indented


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (envelope("exam-package"), "exam-package"),
        (envelope("room-sheet"), "room-sheet"),
        (envelope("answer-package"), "answer-package"),
        (indented("session-authorisation"), "session-authorisation"),
        (indented("results-package"), "results-package"),
        (b'  {\r\n\t"format" :  "exam-package"', "exam-package"),
        (b'{"version":2,"format":"exam-package"}', "other"),  # format is not the first key
        (envelope("exam-packages"), "other"),
        (b'{"format": 2}', "other"),
        (b"\xef\xbb\xbf" + envelope("exam-package"), "other"),
        (b"PK\x03\x04\x00\xff", "other"),
        (b"", "other"),
    ],
)
def test_a_file_is_classified_by_its_first_bytes(head, kind):
    assert classify(head) == kind


def test_each_package_comes_with_the_operation_the_box_offers(stick):
    files = {
        "exam-package.json": envelope("exam-package"),
        "room/room-sheet.json": envelope("room-sheet"),
        "a/b/authorisation-1.json": indented("session-authorisation"),
        "answers/1001.json": envelope("answer-package"),
        "results-1999999001-1.json": indented("results-package") + b" " * 5000,
    }
    for name, data in files.items():
        (stick.path / name).parent.mkdir(parents=True, exist_ok=True)
        (stick.path / name).write_bytes(data)

    got = list_stick(stick.path)

    assert {p.path.relative_to(stick.path).as_posix(): (p.kind, p.operation) for p in got.packages} == {
        "exam-package.json": ("exam-package", "exam_import"),
        "room/room-sheet.json": ("room-sheet", "room_sheet_import"),
        "a/b/authorisation-1.json": ("session-authorisation", "authorise"),
        "answers/1001.json": ("answer-package", "import_answers"),
        "results-1999999001-1.json": ("results-package", None),
    }
    results = next(p for p in got.packages if p.kind == "results-package")
    st = results.path.stat()
    assert (results.size, results.mtime) == (st.st_size, st.st_mtime)
    assert 0 < got.free_bytes <= got.total_bytes


def test_hidden_unfinished_other_and_deep_files_are_not_listed(stick):
    (stick.path / "a/b/c").mkdir(parents=True)
    (stick.path / ".hidden").mkdir()
    junk = {
        ".exam-package.json": envelope("exam-package"),
        ".exam-package.json.part": envelope("exam-package"),
        "exam-package.json.part": envelope("exam-package"),
        ".hidden/exam-package.json": envelope("exam-package"),
        "a/b/c/exam-package.json": envelope("exam-package"),  # depth 4
        "notes.txt": "考场记录".encode(),
        "other.json": b'{"name": "x", "format": "exam-package"}',
    }
    for name, data in junk.items():
        (stick.path / name).write_bytes(data)
    (stick.path / "a/b/ok.json").write_bytes(envelope("exam-package"))  # depth 3

    got = list_stick(stick.path)

    assert [p.path for p in got.packages] == [stick.path / "a/b/ok.json"]


def test_at_most_ten_thousand_entries_are_looked_at(tmp_path, monkeypatch):
    monkeypatch.setattr(listing, "MAX_ENTRIES", 5)
    for i in range(20):
        (tmp_path / f"{i:02}.json").write_bytes(envelope("answer-package"))
    assert len(list_stick(tmp_path).packages) == 5


def test_a_weird_stick_does_not_make_it_raise(stick, monkeypatch):
    root = os.fsencode(stick.path)
    made = []

    def attempt(what, make):
        try:
            make()
            made.append(what)
        except OSError:
            pass  # this file system cannot hold it (vfat: no FIFO, symlink or raw bytes in names)

    attempt("fifo", lambda: os.mkfifo(root + b"/fifo.json"))
    attempt("broken symlink", lambda: os.symlink("nowhere.json", root + b"/broken.json"))
    attempt("symlink to a package", lambda: os.symlink("exam-package.json", root + b"/link.json"))
    attempt(
        "non-UTF-8 name",
        lambda: Path(os.fsdecode(root + b"/bad\xff.json")).write_bytes(envelope("room-sheet")),
    )
    (stick.path / "unreadable.json").write_bytes(envelope("room-sheet"))
    with contextlib.suppress(OSError):  # fusefat has no chmod
        (stick.path / "unreadable.json").chmod(0)
    (stick.path / "exam-package.json").write_bytes(envelope("exam-package"))

    # Root reads a file whatever its mode, and a file vanishing between the listing of
    # its folder and its opening cannot be timed: both are made so by os.open.
    real_open = os.open

    def fake_open(path, flags, *args, **kwargs):
        name = os.path.basename(os.fsdecode(path))
        if name == "unreadable.json":
            raise PermissionError(errno.EACCES, "Permission denied", path)
        if name == "exam-package.json":
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        return real_open(path, flags, *args, **kwargs)

    if stick.backend != "vfat":
        assert made == ["fifo", "broken symlink", "symlink to a package", "non-UTF-8 name"]
    # Neither the links nor the odd name count (the unreadable file is readable to root).
    listed = {p.path.name for p in list_stick(stick.path).packages}
    assert listed - {"unreadable.json"} == {"exam-package.json"}
    monkeypatch.setattr(listing.os, "open", fake_open)
    assert list_stick(stick.path).packages == ()


def test_a_missing_stick_lists_nothing(tmp_path):
    got = list_stick(tmp_path / "gone")
    assert (got.packages, got.free_bytes, got.total_bytes) == ((), 0, 0)


def test_the_kinds_are_the_formats_the_project_writes():
    from kiosk.common.packages import AUTH_FORMAT, EXAM_FORMAT
    from kiosk.common.signed import ANSWER_FORMAT, ROOM_SHEET_FORMAT
    from kiosk.core.update import UPDATE_FORMAT

    kinds = {ROOM_SHEET_FORMAT, EXAM_FORMAT, AUTH_FORMAT, ANSWER_FORMAT, "results-package", UPDATE_FORMAT}
    assert set(listing.OPERATIONS) == kinds
