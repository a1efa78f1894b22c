"""The operation tasks' work files over the room network, in a live room (the real box
on loopback, real exam-PC daemons, the candidate acting through the answer app's session
layer and its AppLink): a collected work folder reaches the box with its answer and is
stored as a USB answer package stores it; edits after collecting do not travel, a new
collection replaces what the box holds; an upload cut off resumes where the box's copy
ends; put_file refuses another PC's candidate, a wrong hash, an oversized file and
chunks that do not fit, leaving nothing but an honest part file; an answer whose files
the box lacks is not acknowledged; the results package lists the stored files."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import random
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from kiosk.common.models import Answer
from kiosk.common.signed import open_sealed
from kiosk.services.after import RESULTS_FORMAT
from kiosk.site.inputs import CandidateSpec
from kiosk.site.mock import author_site, build_exam_from, default_bank
from kiosk.store.models import StoredFile
from stu_client import core
from stu_client.appapi import AppLink
from stu_client.candidate import CandidateSession
from stu_client.daemon import BoxRefused, Daemon
from stu_client.workfiles import snapshot_path
from tests.liveroom import ROOM, LiveRoom

pytestmark = pytest.mark.timeout(180)

T = 20.0  # every wait's timeout
MB = 1024**2
NOS = ("190119999990011001", "190119999990011002")


def work(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


async def on_box(room: LiveRoom, fn: Callable[[], Any]) -> Any:
    """Read the box's database on the room service's thread (where it is bound)."""
    return await asyncio.get_running_loop().run_in_executor(room.executor, fn)


async def start_operation_exam(room: LiveRoom) -> None:
    """Exam data where every candidate sits the theory and the operation subject (T01,
    P01); session 1 entered, authorised and started at once."""
    people = [
        CandidateSpec(no, name, "女", "身份证", "", ("T01", "P01"), 1)
        for no, name in zip(NOS[: room.count], ("林晓雯", "周子航"), strict=False)
    ]
    exam = build_exam_from(default_bank(), people, room_code=ROOM, first_start=time.time() - 60, mock=False)
    exam.package["exam"]["policy"].update(countdown_s=0, earliest_submit_s=0)
    files = author_site(room.folder / "usb", [exam]).rooms[ROOM]
    env = await room.op("envcheck")
    for _ in range(3):  # a loaded test machine may slow a PC's first answer
        if not env["failed"]:
            break
        env = await room.op("envcheck", retest_failed=True)
    await room.op("room_sheet_import", str(files.sheet), files.registration_code)
    await room.op("exam_import", str(files.package))
    assert (await room.op("seal_check"))["passed"]
    await room.op("session_enter", 1, "张三", "15000000001", "李四", "15000000002")
    await room.op("authorise", str(files.authorisations[1]))
    await room.op("allow_login")
    await room.op("allow_start")


@contextlib.asynccontextmanager
async def candidate(d: Daemon, no: str) -> AsyncIterator[CandidateSession]:
    """The answer app's session layer on this PC, logged in and writing."""
    link = AppLink(d.state_dir)
    await link.start()
    session = CandidateSession(d.state_dir, link)
    try:
        await link.wait_state(lambda s: bool(s.get("online")), T)
        await session.login(no)
        await session.begin()
        yield session
    finally:
        session.close()
        await link.stop()


@contextlib.asynccontextmanager
async def writing_room(
    tmp_path: Path, pcs: int = 1
) -> AsyncIterator[tuple[LiveRoom, CandidateSession, core.Question]]:
    """A live room; candidate 1 writing at PC 0 through the app's session; the first
    operation task."""
    async with LiveRoom(tmp_path, pcs) as room:
        await room.seat_all()
        await start_operation_exam(room)
        async with candidate(room.fleet[0], NOS[0]) as session:
            q = next(q for q in session.questions() if q.type == "operation")
            yield room, session, q


async def collected(room: LiveRoom, session: CandidateSession, q: core.Question, **files: bytes) -> int:
    """Write these files into the task's work folder (and nothing else), collect it and
    wait for the box's acknowledgement; the journal seq of the answer."""
    folder = session.work_folder(q)
    for old in folder.iterdir():
        old.unlink()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    session.collect_work(q)
    seq = session.saved_seq
    d = room.fleet[0]
    await d.wait_until(lambda: d.acked_upto() >= seq, T)
    return seq


def answer_folder(room: LiveRoom, q: core.Question, no: str = NOS[0]) -> Path:
    return room.folder / "answers" / "session-1" / no / q.subject / q.id


def incoming(room: LiveRoom, no: str = NOS[0]) -> list[str]:
    folder = room.folder / "answers" / ".incoming" / no
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


async def stored_rows(room: LiveRoom, q: core.Question) -> dict[str, tuple[int, str]]:
    def read() -> dict[str, tuple[int, str]]:
        rows = StoredFile.select().where(
            StoredFile.admission_no == NOS[0], StoredFile.subject == q.subject, StoredFile.question == q.id
        )
        return {r.name: (r.size, r.sha256) for r in rows}

    return await on_box(room, read)


async def box_answer(room: LiveRoom, q: core.Question) -> Any:
    def read() -> Any:
        a = Answer.get_or_none(
            Answer.admission_no == NOS[0], Answer.subject == q.subject, Answer.question == q.id
        )
        return json.loads(a.value) if a is not None else None

    return await on_box(room, read)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- collected work reaches the box -------------------------------------------------------


def test_collected_work_is_stored_on_the_box_and_later_edits_stay_on_the_pc(tmp_path):
    first, notes = work(3 * MB, 1), "第一版说明".encode()

    async def story() -> None:
        async with writing_room(tmp_path) as (room, session, q):
            d = room.fleet[0]
            await collected(room, session, q, **{"表格.xlsx": first, "说明.txt": notes})
            folder = answer_folder(room, q)
            assert sorted(p.name for p in folder.iterdir()) == ["表格.xlsx", "说明.txt"]
            assert (folder / "表格.xlsx").read_bytes() == first
            assert (folder / "说明.txt").read_bytes() == notes
            assert await stored_rows(room, q) == {"表格.xlsx": (len(first), sha(first)),
                                                  "说明.txt": (len(notes), sha(notes))}  # fmt: skip
            listing = await box_answer(room, q)
            assert {f["name"]: f["sha256"] for f in listing["files"]} == {
                "表格.xlsx": sha(first),
                "说明.txt": sha(notes),
            }
            assert incoming(room) == [], "what came is stored, not kept twice"
            assert d.file_bytes_sent == len(first) + len(notes)
            assert d.refused == []

            # The candidate edits the work folder and does not collect: the box keeps the
            # collected version, even after later answers have reached it.
            (session.work_folder(q) / "表格.xlsx").write_bytes(work(3 * MB, 2))
            theory = next(x for x in session.questions() if x.type == "single")
            session.set_answer(theory.key, "A")
            seq = session.flush()
            await d.wait_until(lambda: d.acked_upto() >= seq, T)
            assert (folder / "表格.xlsx").read_bytes() == first
            assert await stored_rows(room, q) == {"表格.xlsx": (len(first), sha(first)),
                                                  "说明.txt": (len(notes), sha(notes))}  # fmt: skip

            # Collected again (one file changed, one gone): the box's folder is replaced.
            second = work(3 * MB + 17, 3)
            await collected(room, session, q, **{"表格.xlsx": second})
            assert sorted(p.name for p in folder.iterdir()) == ["表格.xlsx"]
            assert (folder / "表格.xlsx").read_bytes() == second
            assert await stored_rows(room, q) == {"表格.xlsx": (len(second), sha(second))}
            assert [f["sha256"] for f in (await box_answer(room, q))["files"]] == [sha(second)]
            assert incoming(room) == []
            assert d.file_bytes_sent == len(first) + len(notes) + len(second), "nothing is sent twice"
            assert d.refused == []

            # Collected with the folder emptied: the box holds no files for the task any more.
            await collected(room, session, q)
            assert list(folder.iterdir()) == [] and await stored_rows(room, q) == {}
            assert await box_answer(room, q) is None
            assert d.refused == []

    asyncio.run(story())


def test_the_results_package_lists_the_work_that_came_over_the_network(tmp_path):
    data = work(3 * MB, 4)

    async def story() -> None:
        async with writing_room(tmp_path) as (room, session, q):
            await collected(room, session, q, **{"作品.docx": data})
            await session.submit()
            await room.op("end", "888")
            stick = tmp_path / "stick"
            stick.mkdir()
            backup = await room.op("backup", str(stick))
            assert backup["files"] == 1
            rel = f"answer-files-{ROOM}/session-1/{NOS[0]}/{q.subject}/{q.id}/作品.docx"
            assert (stick / rel).read_bytes() == data
            doc = open_sealed((stick / Path(backup["path"]).name).read_bytes(), RESULTS_FORMAT,
                              room.service.identity.cert_pem)  # fmt: skip
            assert doc["files"] == [{"path": rel, "size": len(data), "sha256": sha(data)}]

    asyncio.run(story())


# -- uploads cut off, refused, or not needed ------------------------------------------------


def test_an_upload_cut_off_after_a_chunk_resumes_where_the_box_copy_ends(tmp_path):
    data = work(3 * MB, 5)

    async def story() -> None:
        async with writing_room(tmp_path) as (room, session, q):
            d = room.fleet[0]
            haves: list[int] = []
            cut = asyncio.Event()

            async def after_chunk(sha256: str, have: int) -> None:
                haves.append(have)
                if len(haves) == 1:
                    d.go_offline()  # the cable is pulled just after the box took one chunk
                    cut.set()

            d.after_chunk = after_chunk
            folder = session.work_folder(q)
            (folder / "大作业.zip").write_bytes(data)
            session.collect_work(q)
            seq = session.saved_seq
            async with asyncio.timeout(T):
                await cut.wait()
            await d.wait_offline(T)
            part = room.folder / "answers" / ".incoming" / NOS[0] / f"{sha(data)}.part"
            assert part.stat().st_size == haves[0] == 512 * 1024, "an honest part: what the box took"
            assert d.acked_upto() < seq and await box_answer(room, q) is None

            d.go_online()
            await d.wait_until(lambda: d.acked_upto() >= seq, T)
            assert (answer_folder(room, q) / "大作业.zip").read_bytes() == data
            assert haves == [512 * 1024 * n for n in range(1, 7)], "resumed at 512 KiB, not from the start"
            assert d.file_bytes_sent == len(data)
            assert incoming(room) == []

    asyncio.run(story())


def test_put_file_refuses_what_it_must_and_leaves_only_honest_parts(tmp_path):
    data = work(600 * 1024, 6)
    digest = sha(data)

    def put(offset: int, chunk: bytes, **over: Any) -> dict[str, Any]:
        args = {"admission_no": NOS[0], "sha256": digest, "size": len(data), "offset": offset,
                "data": base64.b64encode(chunk).decode()}  # fmt: skip
        return {**args, **over}

    async def refused(d: Daemon, **args: Any) -> str:
        with pytest.raises(BoxRefused) as info:
            await d.request("put_file", **args)
        assert info.value.zh
        return info.value.code

    async def story() -> None:
        async with writing_room(tmp_path, pcs=2) as (room, _session, _q):
            d, other = room.fleet[0], room.fleet[1]
            await other.request("login", admission_no=NOS[1])
            await other.request("begin", admission_no=NOS[1])

            # Another PC's candidate: neither PC may write for the other.
            assert await refused(other, **put(0, data[:1000])) == "not_your_candidate"
            assert await refused(d, **put(0, data[:1000], admission_no=NOS[1])) == "not_your_candidate"
            assert incoming(room) == [] and incoming(room, NOS[1]) == []

            # Too large, malformed: refused before anything is written.
            assert await refused(d, **put(0, b"x", size=200 * MB + 1)) == "file_too_large"
            assert await refused(d, **put(0, b"x", sha256="ABC")) == "bad_args"
            assert await refused(d, **put(0, b"", data="not base64!")) == "bad_args"
            assert await refused(d, **put(0, bytes(512 * 1024 + 1), size=MB)) == "bad_args"
            assert await refused(d, **put(len(data) - 10, data[-10:] + b"more")) == "bad_args"
            assert incoming(room) == []

            # A query, a chunk, a gap, an overlap that agrees, one that does not.
            assert await d.request("put_file", **put(0, b"")) == {"have": 0}
            assert await d.request("put_file", **put(0, data[:100_000])) == {"have": 100_000}
            assert await refused(d, **put(200_000, data[200_000:300_000])) == "file_gap"
            assert incoming(room) == [f"{digest}.part"]
            assert await d.request("put_file", **put(50_000, data[50_000:150_000])) == {"have": 150_000}
            part = room.folder / "answers" / ".incoming" / NOS[0] / f"{digest}.part"
            assert part.read_bytes() == data[:150_000], "the part holds exactly what came, in order"
            assert await refused(d, **put(0, bytes([data[0] ^ 0xFF]) + data[1:1000])) == "file_overlap"
            assert incoming(room) == [], "a part that disagrees is gone: the upload starts again"

            # The whole file under a hash that is not its own: refused, nothing kept.
            assert await d.request("put_file", **put(0, data[:400_000], sha256="0" * 64)) == {"have": 400_000}
            assert await refused(d, **put(400_000, data[400_000:], sha256="0" * 64)) == "bad_hash"
            assert incoming(room) == []

            # And under its own: complete, and asked again, the box says so.
            assert await d.request("put_file", **put(0, data[:400_000])) == {"have": 400_000}
            assert await d.request("put_file", **put(400_000, data[400_000:])) == {"have": len(data)}
            assert incoming(room) == [digest]
            assert await d.request("put_file", **put(0, b"")) == {"have": len(data)}
            assert (room.folder / "answers" / ".incoming" / NOS[0] / digest).read_bytes() == data

    asyncio.run(story())


def test_an_answer_whose_files_the_box_lacks_is_not_acknowledged_until_they_come(tmp_path):
    data = work(100_000, 7)

    async def story() -> None:
        async with writing_room(tmp_path) as (room, session, q):
            ip = room.fleet[0].bind_ip
            theory = next(x for x in session.questions() if x.type == "single")
            value = {"files": [{"name": "作品.txt", "size": len(data), "sha256": sha(data)}]}

            def entry(seq: int, aseq: int, question: core.Question, v: Any) -> dict[str, Any]:
                payload = {"subject": question.subject, "question": question.id, "value": v, "aseq": aseq}
                return {"seq": seq, "admission_no": NOS[0], "kind": "answer", "payload": payload,
                        "created_at": time.time()}  # fmt: skip

            frame = [entry(901, 901, theory, "B"), entry(902, 902, q, value), entry(903, 903, theory, "C")]
            [result] = await room.op("sync_journals", [(ip, frame)])
            assert result == {"upto": 901, "refused": [], "missing": 902}, "nothing from the entry on applies"
            assert await box_answer(room, q) is None

            chunk = base64.b64encode(data).decode()
            took = await room.op("receive_file", NOS[0], ip, sha(data), len(data), 0, chunk)
            assert took == {"have": len(data)}
            [result] = await room.op("sync_journals", [(ip, frame[1:])])
            assert result == {"upto": 903, "refused": []}
            assert (answer_folder(room, q) / "作品.txt").read_bytes() == data
            assert await box_answer(room, q) == value

            # An older answer to the question needs no files: the box holds a newer one.
            [result] = await room.op("sync_journals", [(ip, [entry(904, 900, q, {"files": [
                {"name": "旧.txt", "size": 5, "sha256": "1" * 64}]})])])  # fmt: skip
            assert result == {"upto": 904, "refused": []}
            assert await box_answer(room, q) == value

    asyncio.run(story())


def test_a_snapshot_lost_on_the_pc_does_not_hold_up_the_answers_after_it(tmp_path):
    data = work(200_000, 8)

    async def story() -> None:
        async with writing_room(tmp_path) as (room, session, q):
            d = room.fleet[0]
            d.go_offline()
            await d.wait_offline(T)
            (session.work_folder(q) / "作品.txt").write_bytes(data)
            session.collect_work(q)
            snapshot_path(d.state_dir, sha(data)).unlink()  # a damaged disk
            theory = next(x for x in session.questions() if x.type == "single")
            session.set_answer(theory.key, "D")
            seq = session.flush()
            d.go_online()
            await d.wait_until(lambda: d.acked_upto() >= seq, T)
            assert [r["code"] for r in d.refused] == ["files_not_sent"]
            assert await box_answer(room, q) is None and not answer_folder(room, q).exists()
            assert d.file_bytes_sent == 0

    asyncio.run(story())


def test_work_collected_twice_while_offline_sends_only_the_last_version(tmp_path):
    old, new = work(MB, 9), work(MB, 10)

    async def story() -> None:
        async with writing_room(tmp_path) as (room, session, q):
            d = room.fleet[0]
            d.go_offline()
            await d.wait_offline(T)
            folder = session.work_folder(q)
            (folder / "作品.bin").write_bytes(old)
            session.collect_work(q)
            (folder / "作品.bin").write_bytes(new)
            session.collect_work(q)
            seq = session.saved_seq
            d.go_online()
            await d.wait_until(lambda: d.acked_upto() >= seq, T)
            assert (answer_folder(room, q) / "作品.bin").read_bytes() == new
            assert [f["sha256"] for f in (await box_answer(room, q))["files"]] == [sha(new)]
            assert d.file_bytes_sent == len(new), "the superseded version is not sent"
            assert [r["code"] for r in d.refused] == ["files_not_sent"]

    asyncio.run(story())
