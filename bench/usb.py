"""Benchmarks of the USB paths of a full room: importing one answer package per PC
(operation files included; the whole stick at once) and the room backup (results package + answer files, a
verified copy), each beside the raw copy speed of the same bytes on the same disk.

Run: .venv/bin/python -m bench.usb [--pcs 150] [--mb 5] [--dir PATH]

`--dir` is where the "stick" folders and the room live (default: a temporary folder);
point it at a mounted stick to measure one. The raw copy is `cp -r` then `sync`, so
that both sides are timed until the bytes are durable. Each timed pair (operation, raw
copy) comes after a warm-up, see `warm_memory` (`--no-warm` skips it)."""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bench.service import ROOM, T0, start_room
from kiosk.common.packages import AnswerFile
from kiosk.common.signed import seal_answer_package
from kiosk.site.inputs import CandidateSpec
from kiosk.site.mock import build_exam_from, default_bank
from kiosk.store.models import Exam

MB = 1024 * 1024


def raw_copy(src: Path, dest: Path) -> float:
    start = time.perf_counter()
    subprocess.run(["cp", "-r", str(src), str(dest)], check=True)
    os.sync()
    return time.perf_counter() - start


def warm_memory(nbytes: int) -> None:
    """Write, sync and delete a scratch file of `nbytes` (in the system's temporary
    folder, not on `--dir`). On a virtual machine whose host backs guest memory only when
    first touched and takes freed pages back (free page reporting is on here), filling
    such pages costs more than the copy itself: `cp` of the stick ran at 300-400 MB/s
    into them, at 3 GB/s into pages the guest had just used. After the warm-up the
    operation and its raw copy both write into used pages, as on hardware."""
    block = os.urandom(MB)
    scratch = Path(tempfile.gettempdir()) / f"bench-usb-warm-up-{os.getpid()}.tmp"
    with scratch.open("wb") as f:
        for _ in range(nbytes // MB):
            f.write(block)
    os.sync()
    scratch.unlink()
    os.sync()


def crypto_seconds(nbytes: int) -> float:
    """One core's time for what importing `nbytes` of answer packages cannot skip: AES-GCM
    and the SHA-256 of each file (the PC signed the list of them; the box records them)."""
    data, key, nonce = os.urandom(8 * MB), AESGCM.generate_key(bit_length=256), os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, data, b"")
    rounds = 8
    start = time.perf_counter()
    for _ in range(rounds):
        AESGCM(key).decrypt(nonce, sealed, b"")
        hashlib.sha256(data).digest()
    return (time.perf_counter() - start) * nbytes / (rounds * len(data))


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def cpu_seconds() -> tuple[float, float]:
    """This process's CPU time so far, all threads: user, system."""
    t = os.times()
    return t.user, t.system


def since(start: tuple[float, float]) -> tuple[float, float]:
    now = cpu_seconds()
    return now[0] - start[0], now[1] - start[1]


def report(label: str, seconds: float, cpu: tuple[float, float], nbytes: int, raw_s: float) -> None:
    print(
        f"{label}: {seconds:.2f} s (CPU {sum(cpu):.2f} s, of it system {cpu[1]:.2f} s), "
        f"{nbytes / MB / seconds:.0f} MB/s; "
        f"raw cp+sync of the same bytes {raw_s:.2f} s ({nbytes / MB / raw_s:.0f} MB/s); "
        f"ratio {seconds / raw_s:.2f}x"
    )


def main(pcs: int, mb: float, base: str | None, warm: bool = True) -> None:
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        root = Path(tmp)
        people = [
            CandidateSpec(f"1901199999900{n:05d}", f"考生{n}", "男", "身份证", "", ("P01",), 1)
            for n in range(1, pcs + 1)
        ]
        exam = build_exam_from(default_bank(), people, room_code=ROOM, first_start=T0 + 3600, mock=False)
        room, fleet, cands, ips = start_room(root, pcs, exam)
        key = bytes(Exam.get().package_key)

        # One package per PC: three operation answers, the work as one incompressible file.
        stick = root / "stick"
        stick.mkdir()
        size = int(mb * MB)
        for c, ip in zip(cands, ips, strict=True):
            answers = [
                {"subject": "P01", "question": f"q0{q}", "value": {"files": ["work.bin"]}, "seq": q,
                 "saved_at": T0 + 3700}
                for q in (1, 2, 3)
            ]  # fmt: skip
            work = AnswerFile("P01", "q01", "work.bin", os.urandom(size))
            raw = seal_answer_package(
                fleet.pcs[ip].identity, key, room_code=ROOM, session=1, admission_no=c["admission_no"],
                answers=answers, created_at=T0 + 3800, files=[work],
            )  # fmt: skip
            (stick / f"answer-{c['admission_no']}.json").write_bytes(raw)
        os.sync()
        nbytes = folder_bytes(stick)

        start = time.perf_counter()
        room.import_answers(str(sorted(stick.iterdir())[0]))
        one_s = time.perf_counter() - start
        if warm:
            warm_memory(4 * nbytes)
        start, cpu = time.perf_counter(), cpu_seconds()
        result = room.import_answers_all(str(stick))  # 导入作答包, the whole stick
        imported_s, imported_cpu = time.perf_counter() - start, since(cpu)
        assert len(result["imported"]) == pcs and not result["refused"], result["refused"]
        print(f"import one answer package of {mb:g} MB on its own: {one_s * 1000:.0f} ms")
        stored = folder_bytes(root / "answers")
        assert stored == pcs * size, f"stored {stored} bytes of answer files, expected {pcs * size}"
        raw_s = raw_copy(stick, root / "cp-1")
        report(f"import {pcs} answer packages of {mb:g} MB", imported_s, imported_cpu, nbytes, raw_s)
        floor = crypto_seconds(nbytes)
        print(
            f"  of which unavoidable: AES-GCM and SHA-256 of the same bytes, {floor:.2f} s "
            f"of CPU ({floor / 2:.2f} s on two cores, {floor / 2 / raw_s:.2f}x the raw copy)"
        )

        room.clock.advance(1800)  # the earliest submission
        for c, ip in zip(cands, ips, strict=True):
            room.candidate_submit(c["admission_no"], ip)
        room.end("888")
        usb = root / "backup"
        usb.mkdir()
        if warm:
            warm_memory(4 * nbytes)
        os.sync()
        start, cpu = time.perf_counter(), cpu_seconds()
        backup = room.backup(str(usb))  # the whole operation: results package made, copy verified
        backup_s, backup_cpu = time.perf_counter() - start, since(cpu)
        assert backup["files"] == pcs
        raw_s = raw_copy(usb, root / "cp-2")
        label = f"room backup ({pcs} answer files + results package, verified)"
        report(label, backup_s, backup_cpu, backup["bytes"], raw_s)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pcs", type=int, default=150)
    parser.add_argument("--mb", type=float, default=5.0, help="size of each PC's work file")
    parser.add_argument("--dir", default=None, help="where the room and the stick folders live")
    parser.add_argument("--no-warm", action="store_true", help="no warm-up before the timed steps")
    ns = parser.parse_args()
    main(ns.pcs, ns.mb, ns.dir, warm=not ns.no_warm)
