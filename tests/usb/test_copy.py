"""Verified copies onto a stick: a round trip, a stick too small, a writer killed or a
stick pulled out mid-write (never a file under its final name), trees and bad names."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kiosk.common import verified as usb_copy  # what kiosk.usb.copy re-exports
from kiosk.core.errors import Refused
from kiosk.usb.copy import CHUNK, MiB, copy_files_verified, write_verified
from kiosk.usb.listing import list_stick
from tests.usb.conftest import envelope

ROOT = Path(__file__).resolve().parents[2]


def package(size: int) -> bytes:
    """An answer package of about `size` bytes (header and filler)."""
    head = envelope("answer-package")
    return head + os.urandom(size - len(head))


def everything(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_write_verified_round_trip_with_progress(stick):
    data = package(5 * MiB + 123)
    seen: list[tuple[int, int]] = []

    result = write_verified(stick.path, "answers-1999999001.json", data, lambda d, t: seen.append((d, t)))

    assert result.path == stick.path / "answers-1999999001.json"
    assert result.path.read_bytes() == data
    assert (result.bytes, result.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert len(seen) == -(-len(data) // CHUNK)
    assert [d for d, _ in seen] == sorted({d for d, _ in seen})  # strictly increasing
    assert seen[-1] == (len(data), len(data)) and {t for _, t in seen} == {len(data)}
    assert not [p for p in everything(stick.path) if p.endswith(".part")]
    [listed] = list_stick(stick.path).packages
    assert (listed.path, listed.kind) == (result.path, "answer-package")


def test_a_source_file_is_copied_as_it_is(stick, tmp_path):
    source = tmp_path / "results.json"
    source.write_bytes(package(2 * MiB))
    result = write_verified(stick.path, "results.json", source)
    assert result.path.read_bytes() == source.read_bytes()
    assert result.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()


def test_a_stick_too_small_is_refused_and_nothing_is_written(make_stick, tmp_path):
    stick = make_stick(8)
    stick.plug()
    before = everything(stick.path)
    # A sparse source larger than the free space: 20 MB on an 8 MB image; a folder
    # stick shares the host's disk, so just over its free space there.
    source = tmp_path / "backup.bin"
    with open(source, "wb") as f:
        f.truncate(max(20 * MiB, shutil.disk_usage(stick.path).free + 1))

    with pytest.raises(Refused) as refused:
        copy_files_verified(stick.path, [(source, "room/backup.bin")])
    assert refused.value.code == "usb_full"
    assert refused.value.zh.startswith("U盘空间不足：需要 ")
    if stick.backend != "folder":
        with pytest.raises(Refused, match="not enough space"):
            write_verified(stick.path, "backup.bin", bytes(20 * MiB))
    assert everything(stick.path) == before


@pytest.mark.parametrize(("free_over", "ok"), [(0, True), (-1, False)])
def test_free_space_must_cover_the_bytes_and_a_margin(tmp_path, monkeypatch, free_over, ok):
    data = bytes(3 * MiB)
    need = len(data) + MiB + len(data) // 100
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(usb_copy.shutil, "disk_usage", lambda _: usage._replace(free=need + free_over))
    if ok:
        write_verified(tmp_path, "x.bin", data)
    else:
        with pytest.raises(Refused, match="not enough space"):
            write_verified(tmp_path, "x.bin", data)
        assert not list(tmp_path.iterdir())


WRITER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from kiosk.usb.copy import write_verified

    def progress(done, total):
        print(done, total, flush=True)
        sys.stdin.readline()  # the parent lets each chunk go on, until it kills us

    head = b'{"format":"answer-package","version":2,"signer":"ab","body":"","sig":""}'
    write_verified(Path(sys.argv[1]), "answers.json", head + os.urandom(12 * 1024 * 1024), progress)
    """
)


def test_a_writer_killed_mid_write_leaves_no_file_under_its_final_name(stick):
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(stick.path)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        for line in child.stdout:
            done, total = map(int, line.split())
            if done * 3 > total:
                child.send_signal(signal.SIGKILL)
                break
            child.stdin.write("go\n")
            child.stdin.flush()
    finally:
        child.kill()
        child.wait()
        child.stdin.close()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert not (stick.path / "answers.json").exists()
    assert (stick.path / ".answers.json.part").exists()  # the worst it leaves
    assert list_stick(stick.path).packages == ()


def test_a_stick_pulled_out_mid_write_is_refused_and_keeps_no_final_file(stick):
    pulled = []

    def pull_at_a_third(done: int, total: int) -> None:
        if done * 3 > total and not pulled:
            stick.unplug(lazy=True)  # the writer's open file lives on, its folder is gone
            pulled.append(done)

    with pytest.raises(Refused) as refused:
        write_verified(stick.path, "answers.json", package(12 * MiB), pull_at_a_third)

    assert refused.value.code == "write_failed"
    assert refused.value.zh.startswith("写入外部存储失败：")
    # The whole file reached the detached stick; its rename found the folder gone.
    assert isinstance(refused.value.__cause__, FileNotFoundError)
    stick.plug()
    assert not (stick.path / "answers.json").exists()
    assert (stick.path / ".answers.json.part").stat().st_size == 12 * MiB
    assert list_stick(stick.path).packages == ()


def test_a_room_backup_keeps_its_sub_folders_and_hashes(stick, tmp_path):
    src = tmp_path / "room"
    tree = {
        "results-1999999001-1.json": b'{\n "format": "results-package",\n "version": 1\n}',
        "answers/1001/q01.json": os.urandom(300_000),
        "answers/1001/q02.json": b"",
        "answers/1002/q01.json": os.urandom(2 * MiB + 7),
        "log/events.jsonl": b"{}\n" * 1000,
    }
    for name, data in tree.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(data)
    seen: list[int] = []

    result = copy_files_verified(
        stick.path, [(src / n, f"backup/{n}") for n in tree], lambda d, t: seen.append(d)
    )

    hashes = {f"backup/{n}": hashlib.sha256(d).hexdigest() for n, d in tree.items()}
    assert result.files == hashes
    assert result.bytes == sum(map(len, tree.values())) == seen[-1]
    manifest = "".join(f"{h}  {n}\n" for n, h in sorted(hashes.items()))
    assert result.sha256 == hashlib.sha256(manifest.encode()).hexdigest()
    for name, data in tree.items():
        assert (stick.path / "backup" / name).read_bytes() == data
    assert not [p for p in everything(stick.path) if p.endswith(".part")]
    assert [p.kind for p in list_stick(stick.path).packages] == ["results-package"]


@pytest.mark.parametrize("name", ["../escape.json", "a/../../escape.json", "/tmp/escape.json", "", "a/.."])
def test_names_that_leave_the_folder_are_refused(stick, tmp_path, name):
    source = tmp_path / "x.json"
    source.write_bytes(b"{}")
    before = everything(stick.path)
    with pytest.raises(Refused) as refused:
        copy_files_verified(stick.path, [(source, "fine.json"), (source, name)])
    assert refused.value.code == "bad_name"
    assert everything(stick.path) == before


def test_a_missing_folder_or_source_is_refused(tmp_path):
    with pytest.raises(Refused) as refused:
        write_verified(tmp_path / "no stick", "x.json", b"{}")
    assert refused.value.code == "bad_folder"
    with pytest.raises(Refused) as refused:
        copy_files_verified(tmp_path, [(tmp_path / "missing.json", "x.json")])
    assert refused.value.code == "bad_source"


def test_a_copy_that_does_not_verify_is_removed(tmp_path, monkeypatch):
    real = usb_copy._write

    def corrupting_write(src, tmp, counter):
        digest = real(src, tmp, counter)
        with open(tmp, "r+b") as f:  # the device returns other bytes than were written
            f.write(b"X")
        return digest

    monkeypatch.setattr(usb_copy, "_write", corrupting_write)
    with pytest.raises(Refused) as refused:
        write_verified(tmp_path, "results.json", b"{}" * 1000)
    assert refused.value.code == "verify_failed"
    assert not list(tmp_path.iterdir())


def test_an_os_error_while_writing_is_refused_and_leaves_no_part_file(tmp_path, monkeypatch):
    def failing_progress(done: int, total: int) -> None:
        raise OSError(5, "Input/output error")

    with pytest.raises(Refused) as refused:
        write_verified(tmp_path, "results.json", bytes(3 * MiB), failing_progress)
    assert refused.value.code == "write_failed"
    assert refused.value.zh == "写入外部存储失败：Input/output error"
    assert not list(tmp_path.iterdir())
