"""The room network on loopback: the real box network and real exam-PC daemons (a
SimFleet in this process). Scan, link, commands, candidates, answer sync, link loss."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import ssl
import subprocess
import sys

import pytest

from kiosk.core.errors import Refused
from tests.liveroom import LiveRoom

pytestmark = pytest.mark.timeout(120)


def box_answers(room: LiveRoom) -> dict[tuple[str, str], str]:
    con = sqlite3.connect(f"file:{room.settings.home}/room.db?mode=ro", uri=True)
    try:
        return {(a, q): v for a, q, v in con.execute("SELECT admission_no, question, value FROM answer")}
    finally:
        con.close()


def test_a_room_of_daemons_is_seated_by_scan_and_stays_in_step(tmp_path):
    async def story() -> None:
        async with LiveRoom(tmp_path, 8) as room:
            scan = await room.seat_all()
            assert scan["replies"] == 8 and scan["added"] == list(range(1, 9))
            seats = await room.op("seats")
            assert [s["ip"] for s in seats] == [f"127.0.10.{11 + i}" for i in range(8)]
            assert all(s["online"] for s in seats)
            assert [s["fingerprint"] for s in seats] == [d.fingerprint for d in room.fleet.daemons]
            again = await room.op("seats_scan", "name")
            assert again["added"] == [], "a second scan keeps every seat's number"

            shown = await room.op("seats_show", True)
            assert len(shown["ok"]) == 8 and room.fleet[2].state.seat_shown == "003"
            env = await room.op("envcheck")
            assert (env["passed"], env["failed"]) == (8, 0)
            pc = env["pcs"][0]["items"]
            assert {i["key"] for i in pc} >= {"rtt", "clock_skew"} or pc

            people = await room.start_exam()
            for i, c in enumerate(people[:6]):
                view = await room.fleet.login(i, c["admission_no"])
                assert view["state"] == "logged_in" and view["seat"] == f"{i + 1:03d}"
                await room.fleet.begin(i)
            await asyncio.gather(*(room.fleet.answer(i, 10, rate=0, subject="T01") for i in range(6)))
            await asyncio.gather(*(room.fleet[i].wait_synced(10) for i in range(6)))
            stored = box_answers(room)
            assert len(stored) == 60
            for i in range(6):
                mine = {q: v for (a, q), v in stored.items() if a == people[i]["admission_no"]}
                assert len(mine) == 10

            locked = await room.op("lock", [people[0]["admission_no"]])
            assert locked["ok"] == ["127.0.10.11"] and room.fleet[0].state.locked
            await room.op("lock", [people[0]["admission_no"]], unlock=True)
            assert not room.fleet[0].state.locked
            await room.op("message", "请检查答题卡")
            assert all(any(c == "message" for c, _ in d.seen) for d in room.fleet.daemons)

    asyncio.run(story())


def test_a_pc_cut_off_keeps_answering_and_loses_nothing_once_back(tmp_path):
    async def story() -> None:
        async with LiveRoom(tmp_path, 4) as room:
            await room.seat_all()
            people = await room.start_exam()
            await room.fleet.login(0, people[0]["admission_no"])
            await room.fleet.begin(0)
            await room.fleet.answer(0, 5, rate=0, subject="T01")
            await room.fleet[0].wait_synced(10)

            room.fleet.go_offline(0)
            took = await room.wait_seats(lambda seats: not seats[0]["online"], 6)
            assert took < 3.5, f"offline shown after {took:.1f} s"
            status = await room.op("status")
            assert status["session"]["counts"]["offline"] == 1
            # the candidate keeps writing, one answer every 0.1 s, while the cable is out
            for k in range(6, 26):
                room.fleet[0].save_answer(people[0]["admission_no"], "T01", f"q{k:02d}", "B")
                await asyncio.sleep(0.1)
            room.fleet.go_online(0)
            took = await room.wait_seats(lambda seats: seats[0]["online"], 8)
            await room.fleet[0].wait_synced(10)
            mine = {q for (a, q) in box_answers(room) if a == people[0]["admission_no"]}
            assert len(mine) == 25 and {f"q{k:02d}" for k in range(6, 26)} <= mine
            view = (await room.op("status"))["session"]["candidates"][0]
            assert view["offline_s"] >= 1, "the offline time is there to grant back"

    asyncio.run(story())


def test_break_resume_on_another_pc_continues_with_every_answer(tmp_path):
    async def story() -> None:
        async with LiveRoom(tmp_path, 3) as room:
            await room.seat_all()
            people = await room.start_exam()
            no = people[0]["admission_no"]
            await room.fleet.login(0, no)
            await room.fleet.begin(0)
            await room.fleet.answer(0, 4, rate=0, subject="T01")
            await room.fleet[0].wait_synced(10)
            situation = (await room.op("situation_types"))[0]
            result = await room.op("resume", [no], situation, "考试机死机", "张三", confirm_online=True)
            assert result["forced_out"] == ["127.0.10.11"] and room.fleet[0].state.admission_no == ""
            view = await room.fleet.login(2, no)  # the spare PC
            assert view["state"] == "in_exam" and view["seat"] == "003"
            assert sorted(a["question"] for a in view["answers"]) == ["1", "2", "3", "4"]
            room.fleet[2].save_answer(no, "T01", "1", "D")  # a change of mind on the new PC
            await room.fleet[2].wait_synced(10)
            stored = box_answers(room)
            assert stored[(no, "1")] == '"D"', "the new PC's answer is newer than the old PC's"

    asyncio.run(story())


def test_pcs_waiting_to_be_seated_link_as_soon_as_the_scan_seats_them(tmp_path):
    """The box's signed "link now" after a scan ends every daemon's backoff wait: here
    the next retry would be ten minutes away."""

    async def story() -> None:
        async with LiveRoom(tmp_path, 4) as room:
            for d in room.fleet.daemons:
                d.backoff_first_s = d.backoff_cap_s = 600.0
            # refused (not seated yet) at least once since: now in a 600 s wait
            base = [d.connect_failures for d in room.fleet.daemons]
            await asyncio.gather(
                *(
                    d.wait_until(lambda d=d, b=b: d.connect_failures > b, 10)
                    for d, b in zip(room.fleet.daemons, base, strict=True)
                )
            )
            await room.op("seats_scan", "ip")
            await room.fleet.wait_all_online(10)
            await room.wait_all_seats_online(10)

    asyncio.run(story())


def _client_hello() -> bytes:
    """The first bytes of a TLS client, made without a socket."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing)
    with contextlib.suppress(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def test_an_address_that_is_not_a_seat_gets_no_tls_at_all(tmp_path):
    """The box answers a ClientHello from a seat's address with its ServerHello, and
    closes the connection of any other address without a byte: no handshake work."""

    async def story() -> None:
        async with LiveRoom(tmp_path, 1) as room:
            await room.seat_all()

            async def answer_from(ip: str) -> bytes:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", room.settings.control_port, local_addr=(ip, 0)
                )
                try:
                    writer.write(_client_hello())
                    return await asyncio.wait_for(reader.read(64), 10)
                except ConnectionResetError:
                    return b""  # dropped (reset) without a byte
                finally:
                    writer.close()

            assert (await answer_from("127.0.10.11"))[:1] == b"\x16", "a TLS handshake record"
            assert await answer_from("127.0.10.250") == b""

    asyncio.run(story())


def test_a_pc_cut_off_exports_its_answer_package_and_the_box_takes_the_newer_answers(tmp_path):
    """导出作答包 with `stu-client export` (its own process, as when the daemon is dead),
    then 导入作答包 on the box: the answers written offline arrive, once."""

    async def story() -> None:
        async with LiveRoom(tmp_path, 2) as room:
            await room.seat_all()
            people = await room.start_exam()
            no = people[0]["admission_no"]
            await room.fleet.login(0, no)
            await room.fleet.begin(0)
            await room.fleet.answer(0, 3, rate=0, subject="T01")
            await room.fleet[0].wait_synced(10)
            room.fleet.go_offline(0)
            for k in range(4, 9):
                room.fleet[0].save_answer(no, "T01", f"q{k:02d}", "C")
            usb = tmp_path / "stick"
            usb.mkdir()
            run = subprocess.run(
                [sys.executable, "-m", "stu_client.cli", "export", "--state", str(room.fleet[0].state_dir),
                 "--to", str(usb)],
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            assert run.returncode == 0, run.stderr
            (package,) = usb.iterdir()
            assert package.name.startswith(f"answer-{no}-s1-")

            before = {q for (a, q) in box_answers(room) if a == no}
            damaged = tmp_path / "damaged.json"
            damaged.write_bytes(package.read_bytes().replace(b'"sig":"', b'"sig":"A', 1))
            with pytest.raises(Refused):
                await room.op("import_answers", str(damaged))
            imported = await room.op("import_answers", str(package))
            assert imported == {"admission_no": no, "answers": 8, "newer": 5}
            after = {q for (a, q) in box_answers(room) if a == no}
            assert len(before) == 3 and len(after) == 8
            again = await room.op("import_answers", str(package))
            assert again["newer"] == 0, "the same package twice changes nothing"

    asyncio.run(story())
