"""150 real exam-PC daemons (a SimFleet, the code `stu-client sim` runs) against the
real box network on loopback: all seated and online, every command reaches every PC,
every acknowledged answer is in the box database."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from stu_client.sim import raise_fd_limit
from tests.liveroom import LiveRoom

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_150_pcs_are_seated_commanded_and_lose_no_acknowledged_answer(tmp_path):
    raise_fd_limit()

    async def story() -> None:
        async with LiveRoom(tmp_path, 150) as room:
            scan = await room.seat_all()
            assert scan["replies"] == 150 and len(scan["added"]) == 150
            seats = await room.op("seats")
            assert all(s["online"] for s in seats) and len({s["fingerprint"] for s in seats}) == 150
            people = await room.start_exam()
            for batch in range(0, 150, 25):
                await asyncio.gather(
                    *(room.fleet.login(i, people[i]["admission_no"]) for i in range(batch, batch + 25))
                )
            await asyncio.gather(*(room.fleet.begin(i) for i in range(150)))
            sent = await room.op("message", "距离考试结束还有30分钟")
            assert len(sent["ok"]) == 150 and not sent["failed"]
            locked = await room.op("lock", [p["admission_no"] for p in people])
            assert len(locked["ok"]) == 150 and all(d.state.locked for d in room.fleet.daemons)
            await room.op("lock", [p["admission_no"] for p in people], unlock=True)
            await asyncio.gather(*(room.fleet.answer(i, 5, rate=0, subject="T01") for i in range(150)))
            await asyncio.gather(*(d.wait_synced(30) for d in room.fleet.daemons))
            assert all(d.acked_upto() >= d.journal.last_seq() for d in room.fleet.daemons)
            con = sqlite3.connect(f"file:{room.settings.home}/room.db?mode=ro", uri=True)
            try:
                stored = con.execute("SELECT count(*) FROM answer").fetchone()[0]
            finally:
                con.close()
            assert stored == 750, "every acknowledged answer is in the box database"

    asyncio.run(story())
