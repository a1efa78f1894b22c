"""The answer app killed with SIGKILL while the candidate answers: after each restart
every answer the screen showed as saved is there, and the candidate is back on the
question they were at, with the box's remaining time."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.ui.harness import (
    answer_app,
    box_status,
    candidates,
    exam_room,
    log_in,
    screen,
    stored_on_box,
    through_to_the_paper,
    until,
)

KILLS = 4


async def run_child(state_dir: Path, saves_before_kill: int) -> list[dict[str, Any]]:
    """The app as its own process, killed once it has reported that many saves."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.ui.crash_app", str(state_dir),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=dict(os.environ),
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(90):
            while sum("saved" in x for x in lines) < saves_before_kill:
                raw = await proc.stdout.readline()
                assert raw, "the app process ended by itself"
                lines.append(json.loads(raw))
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    return lines


@pytest.mark.slow
def test_answers_shown_as_saved_survive_sigkill_of_the_app(tmp_path: Path, xdisplay: str) -> None:
    rng = random.Random(7)

    async def body() -> None:
        async with exam_room(tmp_path) as (room, clock):
            state_dir = room.fleet[0].state_dir
            await room.op("allow_login")
            no = (await room.op("status"))["session"]["candidates"][0]["admission_no"]
            async with answer_app(state_dir) as app:  # the journey up to the paper, in-process
                await log_in(app, no)
                await through_to_the_paper(app, room, clock)
            saved: dict[tuple[str, str], str] = {}
            at: list[tuple[str, str]] = []
            for _ in range(KILLS):
                clock.advance(rng.randint(5, 120))
                for line in await run_child(state_dir, rng.randint(2, 6)):
                    if "saved" in line:
                        saved[tuple(line["saved"])] = line["value"]
                    else:
                        at.append(tuple(line["at"]))
            async with answer_app(state_dir) as app:
                await screen(app, "answering")
                for key, value in saved.items():
                    assert app.session.answers.get(key) == value, key
                keys = [q.key for q in app.session.questions()]
                last = at[-1]
                # The kill may fall between the move to the next question and its report.
                assert app.session.current in (last, keys[keys.index(last) + 1])
                await until(lambda: app.online, what="linked")
                box = candidates(box_status(room))[no]["remaining_s"]
                assert app.session.remaining_s() == pytest.approx(box, abs=3)
                journal = room.fleet[0].journal
                await until(lambda: journal.acked_upto() >= journal.last_seq(), timeout=15, what="all synced")
                on_box = stored_on_box(room, no)
                assert all(on_box.get(k) == v for k, v in saved.items())

    asyncio.run(asyncio.wait_for(body(), 240))
