"""The manual's multi-step dialogs on the proctor box's touch app, by touch in a real
window against a real engine and real exam-PC daemons: the late start (延考) with the
challenge shown and the site's code typed on the code pad, and a re-exam (考生初始化)
through the code and the final 是/否 to the candidate's answers erased on the box."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from kiosk.site import codes
from kiosk.site.mock import author_site, build_default_exam
from tests.liveroom import ROOM
from tests.ui.box_harness import box_app, box_engine, open_form
from tests.ui.harness import find, long_press, one, press, run_test, type_keys, until

PCS = 2


def stick(tmp: Path, pcs: int, late: bool) -> tuple[Any, bytes]:
    """A USB stick folder with the room sheet, the exam data and session 1's
    authorisation; `late`: the session began a minute ago and allows no grace, so its
    start needs a late-start code. The site's secret, for its code calculator."""
    exam = build_default_exam(
        room_code=ROOM, first_start=time.time() - 60, candidates_per_session=pcs, mock=False
    )
    exam.package["exam"]["policy"].update(countdown_s=0, earliest_submit_s=0)
    if late:
        exam.package["exam"]["policy"]["start_grace_s"] = 0
    files = author_site(tmp / "site", [exam]).rooms[ROOM]
    folder = tmp / "media" / "STICK"
    folder.mkdir(parents=True)
    for f in (files.sheet, files.package, files.authorisations[1]):
        (folder / f.name).write_bytes(f.read_bytes())
    return files, exam.site_secret


async def room_ready(engine: Any, files: Any, pcs: int) -> None:
    """The before-exam steps and the session's entry, authorisation and login window, as
    the wizard's own tests do them by touch (test_box_app)."""
    await engine.call("room_sheet_import", str(files.sheet), files.registration_code)
    await engine.call("seats_scan", "ip")
    for _ in range(4):  # a loaded machine can slow a PC's answer: re-test as an officer would
        env = await engine.call("envcheck", retest_failed=bool(_))
        if not env["failed"]:
            break
    await engine.call("exam_import", str(files.package))
    assert (await engine.call("seal_check"))["passed"]
    await engine.call("session_enter", 1, "张三", "13807710001", "王芳", "15977120003")
    await engine.call("authorise", str(files.authorisations[1]))
    await engine.call("allow_login")


async def logged_in(app: Any) -> None:
    await type_keys("888")
    await press("登 录")
    await until(lambda: app.logged_in, what="logged in")
    await press("考中管理")


def shown_challenge(form: Any) -> str:
    return dict(form.challenge_rows)["申请码"].replace(" ", "")


def answers_on_box(engine: Any, admission_no: str) -> int:
    from kiosk.common.models import Answer

    return engine.executor.submit(
        lambda: Answer.select().where(Answer.admission_no == admission_no).count()
    ).result()


@pytest.mark.slow
def test_a_late_start_shows_the_challenge_and_takes_the_sites_code_on_the_pad(
    tmp_path: Path, xdisplay: str
) -> None:
    files, secret = stick(tmp_path, PCS, late=True)

    async def body() -> None:
        async with box_engine(tmp_path, PCS) as (engine, _fleet), box_app(engine) as app:
            await room_ready(engine, files, PCS)
            await logged_in(app)
            form = await open_form(app, "允许开考")
            assert form.fields["code"].parent is None  # no code field while the start is on time
            await press("确定")
            # The service says the start is late: the challenge, to be read out by phone.
            await until(lambda: form.challenge_rows, what="the challenge shown")
            assert form.challenge_title == "延考授权" and not form.error
            challenge = shown_challenge(form)
            assert challenge == (await engine.call("challenge", "late_start"))["challenge"]
            rows = dict(form.challenge_rows)
            assert rows["考场代码"] == ROOM and rows["当前场次"] == "1"
            assert one(cls="Label", text=form.challenge_rows[-1][1]).font_size > 40  # large type
            assert form.ids.keyboard.code and form.ids.keyboard.target is form.fields["code"].ids.input

            # A wrong code is refused with its reason; nothing starts, the challenge stays.
            await type_keys("2222AAAA")
            assert form.fields["code"].ids.input.text == "2222AAAA"
            await press("确定")
            await until(lambda: form.error, what="the refusal")
            assert (await engine.call("status"))["session"]["actual_start"] is None
            assert shown_challenge(form) == challenge

            # The site's code calculator's answer, typed on the code pad.
            code = codes.calculate("late_start", ROOM, 1, challenge, 0, secret, time.time())
            await press("清除")
            await type_keys(code)
            await press("确定")
            await until(lambda: form.result, what="the answer")
            assert not form.error and not form.challenge_rows
            assert (await engine.call("status"))["session"]["actual_start"] is not None
            await press("关闭")
            await until(lambda: not find(cls="OpForm"), what="the form closed")

    run_test(body(), 150)


@pytest.mark.slow
def test_a_re_exam_by_touch_erases_the_candidates_answers_after_the_code_and_the_final_yes(
    tmp_path: Path, xdisplay: str
) -> None:
    files, secret = stick(tmp_path, PCS, late=False)

    async def body() -> None:
        async with box_engine(tmp_path, PCS) as (engine, fleet), box_app(engine) as app:
            await room_ready(engine, files, PCS)
            await engine.call("allow_start")
            status = await engine.call("status")
            cand = status["session"]["candidates"][0]
            no, subject = cand["admission_no"], cand["subjects"][0]
            daemon = fleet.daemons[0]
            await daemon.request("login", admission_no=no)
            await daemon.request("begin", admission_no=no)
            for q in ("1", "2", "3"):
                daemon.save_answer(no, subject, q, "A")
            await until(lambda: answers_on_box(engine, no) == 3, what="the answers on the box")

            await logged_in(app)
            await until(lambda: any(t.admission_no == no for t in find(cls="SeatTile")), what="the seat")
            tile = next(t for t in find(cls="SeatTile") if t.admission_no == no)
            await long_press(tile, lambda: find(cls="SeatMenu"))
            form = await open_form(app, "考生初始化（重考）")
            assert form.fields["admission_no"].ids.input.text == no
            assert "正在进行重考授权" in form.notice and "confirm" not in form.fields

            # Tick the subject (by its name), a reason, 我知道了: the service asks for the code.
            name = status["exam"]["subjects"][subject]
            await press(name)
            await until(lambda: form.fields["subjects"].ids.input.text == subject)
            assert find(text=f"✓ {name}")
            await press(contains="作答包损坏")
            await press("我知道了")
            await press("确定")
            await until(lambda: form.challenge_rows, what="the challenge shown")
            assert form.challenge_title == "重考授权" and dict(form.challenge_rows)["准考证号"] == no
            challenge = shown_challenge(form)
            code = codes.calculate("reexam", ROOM, 1, challenge, 0, secret, time.time())
            await type_keys(code)
            await press("确定")

            # The final confirmation says what will be erased; 否 changes nothing.
            await until(lambda: form.question, what="the final confirmation")
            assert no in form.question and subject in form.question and "无法恢复" in form.question
            assert form.ids.fields.parent.disabled  # the fields are set aside meanwhile
            await press("否")
            await until(lambda: not form.question)
            assert "已取消" in form.error and answers_on_box(engine, no) == 3
            await press("确定")
            await until(lambda: form.question, what="the final confirmation again")
            await press("是")
            await until(lambda: form.result, what="the answer")
            assert not form.error, form.error
            assert answers_on_box(engine, no) == 0
            after = {c["admission_no"]: c for c in (await engine.call("status"))["session"]["candidates"]}
            assert after[no]["state"] == "not_logged_in"
            await press("关闭")
            await until(lambda: not find(cls="OpForm"), what="the form closed")

    run_test(body(), 150)
