"""The real answer app in a real Kivy window under Xvfb, against a real box (room
service and room network on loopback, manual box clock) and a real exam-PC daemon,
driven by simulated touches through the whole candidate journey."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from kiosk.common.clock import ManualClock
from kiosk.site.mock import author_site, build_default_exam
from tests.liveroom import ROOM, LiveRoom
from tests.ui.harness import find, one, press, screen, until

T0 = time.time()  # the box clock starts at the PCs' time (the environment check compares them)


def run(coro: Any) -> None:
    async def main() -> None:
        async with asyncio.timeout(150):
            await coro

    asyncio.run(main())


@asynccontextmanager
async def exam_room(tmp: Path, mock: bool = False) -> AsyncIterator[tuple[LiveRoom, Any]]:
    """A box with two seated PCs and session 1 entered and authorised (login not yet allowed)."""
    clock = ManualClock(T0)
    async with LiveRoom(tmp, 2, clock=clock) as room:
        await room.seat_all()
        exam = build_default_exam(room_code=ROOM, first_start=T0 + 3600, candidates_per_session=2, mock=mock)
        exam.package["exam"]["policy"].update(countdown_s=30)
        files = author_site(tmp / "site", [exam]).rooms[ROOM]
        env = await room.op("envcheck")
        assert not env["failed"], env
        await room.op("room_sheet_import", str(files.sheet), files.registration_code)
        await room.op("exam_import", str(files.package))
        assert (await room.op("seal_check"))["passed"]
        await room.op("session_enter", 1, "张三", "15000000001", "李四", "15000000002")
        clock.set(T0 + 3600 - 1200)  # the authorisation's window
        await room.op("authorise", str(files.authorisations[1]))
        yield room, clock


@asynccontextmanager
async def answer_app(state_dir: Path) -> AsyncIterator[Any]:
    from stu_client.ui.app import build_app_class

    app = build_app_class()(state_dir)
    task = asyncio.create_task(app.run_async())
    try:
        await until(lambda: app.root is not None and app.link.connected, what="the app linked to its daemon")
        yield app
    finally:
        app.stop()
        await task


def chosen() -> list[str]:
    return sorted(b.letter for b in find(cls="OptionButton") if b.chosen)


async def showing(app: Any, key: tuple[str, str]) -> None:
    panel = app.root.ids.screens.get_screen("answering").ids.panel
    await until(lambda: panel.question is not None and panel.question.key == key, what=f"question {key}")


def candidates(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["admission_no"]: c for c in status["session"]["candidates"]}


async def log_in(app: Any, admission_no: str) -> None:
    await screen(app, "login")
    field = one(cls="TextInput")
    for digit in admission_no:  # by the on-screen number pad, as on a touch screen
        await press(digit)
    assert field.text == admission_no
    await press("登 录")
    await screen(app, "confirm")


@pytest.mark.slow
def test_a_candidate_goes_from_the_waiting_screen_to_submitted_by_touch(
    tmp_path: Path, xdisplay: str
) -> None:
    async def body() -> None:
        async with exam_room(tmp_path) as (room, clock), answer_app(room.fleet[0].state_dir) as app:
            daemon = room.fleet[0]
            await screen(app, "waiting")
            assert one(contains="请等待监考员允许登录")
            await room.op("allow_login")
            status = await room.op("status")
            no = status["session"]["candidates"][0]["admission_no"]
            await log_in(app, no)
            await until(lambda: find(text=app.cand_name), what="the candidate's name")
            assert app.cand_no == no and find(text=no)
            await press("信息无误")
            await screen(app, "agreement")
            await press("同意并继续")
            await screen(app, "draw")
            await press("抽 卷")
            await screen(app, "rules")
            await press("我已阅读")
            await screen(app, "countdown")

            clock.set(T0 + 3600 - 10)
            await room.op("allow_start")  # the countdown runs in full: the start is 30 s away
            clock.advance(31)  # the countdown; the box's heartbeat carries its clock
            await screen(app, "answering")
            await until(lambda: candidates(_sync(room))[no]["state"] == "in_exam", what="in exam on the box")

            # Single choice: tap B; saved, then synced, then on the box.
            q1 = app.session.question()
            assert q1.type == "single" and app.question_no == 1
            await press(contains="B．")
            await until(lambda: app.save_line == "已保存" or app.save_line == "已同步", what="saved")
            assert app.session.journal.answers(no)[q1.key][0] == "B"
            await until(lambda: app.save_line == "已同步", what="synced")
            box = await room.op("status")
            assert box  # the box's answer store is checked at the end

            # Flag it, go on by the grid to a multiple-choice question and tick two options.
            await press("标记")
            assert q1.key in app.session.flags
            multiple = next(q for q in app.session.questions() if q.type == "multiple")
            number = [q.key for q in app.session.questions()].index(multiple.key) + 1
            await press(str(number))
            await showing(app, multiple.key)
            await press(contains="A．")
            await until(lambda: chosen() == ["A"], what="A ticked on screen")
            await press(contains="C．")
            await until(lambda: chosen() == ["A", "C"], what="A and C ticked on screen")
            assert app.session.answers[multiple.key] == ["A", "C"]
            await until(lambda: app.save_line == "已同步", what="multiple synced")
            cells = {c.text: c.mark for c in find(cls="GridCell")}
            assert cells["1"] == "flagged" and cells[str(number)] == "answered"

            # The box locks the PC: the notice covers the paper until 我已知晓.
            await room.op("lock", [no], "请停止作答，等待监考员处理")
            await until(lambda: find(cls="LockOverlay"), what="lock overlay")
            assert one(text="请停止作答，等待监考员处理")
            await press("我已知晓")
            await until(lambda: not find(cls="LockOverlay"), what="lock lifted")
            await until(
                lambda: not candidates(_sync(room))[no]["locked"], what="box sees the acknowledgement"
            )

            # A raised hand shows on the box; a message from the box shows in a banner.
            await press("举手")
            await until(lambda: candidates(_sync(room))[no].get("hand_raised"), what="hand on the box")
            await room.op("message", "请注意考试时间", [no])
            await until(lambda: find(contains="请注意考试时间"), what="message banner")

            # The link to the box drops: a banner, work goes on, saved locally, synced on return.
            daemon.go_offline()
            await until(lambda: find(contains="与监考机的连接已断开"), what="reconnect banner")
            judge = next(q for q in app.session.questions() if q.type == "judge")
            app.session.go(judge.key)
            app.refresh()
            await showing(app, judge.key)
            await press("正确")
            await until(lambda: app.save_line == "已保存", what="saved offline")
            daemon.go_online()
            await until(lambda: app.save_line == "已同步", timeout=15, what="synced after reconnect")

            # Submission: not before the earliest-submission time, then with a confirmation.
            assert one(text="未到交卷时间").disabled
            clock.advance(1800)
            await press("交 卷")
            await until(lambda: find(text="确定交卷"), what="confirmation")
            assert one(cls="SubmitDialog", contains="道题未作答")
            await press("确定交卷")
            await screen(app, "submitted")
            final = candidates(await room.op("status"))[no]
            assert final["state"] == "submitted"
            log = await room.op("candidate_log", no)
            kinds = [e["kind"] for e in log["log"]]
            journey = ["client_started", "client_seat", "login", "login_confirmed", "agreement"]
            journey += ["paper_drawn", "rules_read", "begin", "lock_acknowledged", "hand_raised", "submitted"]
            assert [k for k in kinds if k in journey] == journey, kinds
            # Every answer the app saved is on the box, newest value.
            box_answers = stored_on_box(room, no)
            local = {k: v for k, (v, _seq) in app.session.journal.answers(no).items()}
            assert box_answers == local and local[q1.key] == "B" and local[judge.key] is True

    run(body())


def stored_on_box(room: LiveRoom, admission_no: str) -> dict[tuple[str, str], Any]:
    from kiosk.common.models import Answer

    def read() -> dict[tuple[str, str], Any]:
        rows = Answer.select().where(Answer.admission_no == admission_no)
        return {(a.subject, a.question): json.loads(a.value) for a in rows}

    return room.executor.submit(read).result()


def _sync(room: LiveRoom) -> dict[str, Any]:
    """The room status read on the service thread from a synchronous predicate."""
    return room.executor.submit(room.service.status).result()
