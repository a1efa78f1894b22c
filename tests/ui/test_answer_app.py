"""The real answer app in a real Kivy window under Xvfb, against a real box (room
service and room network on loopback, manual box clock) and a real exam-PC daemon,
driven by simulated touches through the whole candidate journey."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ui.harness import (
    answer_app,
    box_status,
    candidates,
    chosen,
    exam_room,
    find,
    log_in,
    one,
    press,
    run_test,
    screen,
    showing,
    stored_on_box,
    through_to_the_paper,
    until,
)


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

            clock.set(room.t0 + 3600 - 10)
            await room.op("allow_start")  # the countdown runs in full: the start is 30 s away
            clock.advance(31)  # the countdown; the box's heartbeat carries its clock
            await screen(app, "answering")
            await until(
                lambda: candidates(box_status(room))[no]["state"] == "in_exam", what="in exam on the box"
            )

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
                lambda: not candidates(box_status(room))[no]["locked"], what="box sees the acknowledgement"
            )

            # A raised hand shows on the box; a message from the box shows in a banner.
            await press("举手")
            await until(lambda: candidates(box_status(room))[no].get("hand_raised"), what="hand on the box")
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

    run_test(body())


@pytest.mark.slow
def test_resume_elsewhere_extra_time_warnings_export_and_the_submission_at_zero(
    tmp_path: Path, xdisplay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    stick = tmp_path / "media" / "stick"
    stick.mkdir(parents=True)
    monkeypatch.setenv("STU_USB_ROOTS", str(tmp_path / "media"))
    monkeypatch.setenv("STU_USB_FOLDERS", "1")

    async def body() -> None:
        async with exam_room(tmp_path) as (room, clock):
            await room.op("allow_login")
            no = (await room.op("status"))["session"]["candidates"][0]["admission_no"]
            async with answer_app(room.fleet[0].state_dir) as app:
                await log_in(app, no)
                await through_to_the_paper(app, room, clock)
                await press(contains="C．")
                await until(lambda: app.save_line == "已同步", what="synced")
                first = app.session.current

                # 导出作答包 from the app: a package the box would take, on the stick.
                await press("导出作答包")
                await until(lambda: list(stick.glob("answer-*.json")), what="answer package on the stick")

                # Break-resume: the box forces the candidate out of this PC, with the reason.
                situation = (await room.op("situation_types"))[0]
                await room.op("resume", [no], situation, "考试机故障", "李四", confirm_online=True)
                await screen(app, "login")
                await until(lambda: find(contains="监考员") or app.logout_reason, what="the reason")

            # ... and logs in at the other PC: every answer and the box's remaining time.
            async with answer_app(room.fleet[1].state_dir) as app:
                await log_in(app, no)
                await press("信息无误")
                await screen(app, "answering")
                assert app.session.answers[first] == "C"
                box = candidates(box_status(room))[no]
                assert app.session.remaining_s() == pytest.approx(box["remaining_s"], abs=3)

                # Extra time moves the end; the warnings come at 15 and 5 minutes; at zero
                # the app hands in by itself.
                before = app.session.remaining_s()
                await room.op("extra_time", no, 300, "考试机故障")
                await until(lambda: app.session.remaining_s() > before + 250, what="the extra time")
                clock.advance(app.session.remaining_s() - 15 * 60 + 2)
                await until(lambda: 900 in app.warnings, what="15-minute warning")
                await press("知道了")
                clock.advance(10 * 60)
                await until(lambda: 300 in app.warnings, what="5-minute warning")
                await press("知道了")
                clock.advance(5 * 60)
                await screen(app, "submitted", timeout=15)
                assert candidates(await room.op("status"))[no]["state"] == "submitted"
                assert app.warnings == [900, 300]

    run_test(body())


@pytest.mark.slow
def test_mock_mode_logs_in_by_seat_answers_by_itself_and_hands_in_on_unified_collection(
    tmp_path: Path, xdisplay: str
) -> None:
    async def body() -> None:
        async with (
            exam_room(tmp_path, mock=True) as (room, clock),
            answer_app(room.fleet[0].state_dir) as app,
        ):
            await room.op("allow_login", auto_login=True)
            await screen(app, "confirm")  # no admission number typed: the seat's candidate
            first = (await room.op("status"))["session"]["candidates"][0]["admission_no"]
            assert app.cand_no == first
            await through_to_the_paper(app, room, clock)
            await room.op("auto_answer", True)
            objective = [q for q in app.session.questions() if q.type in ("single", "multiple", "judge")]
            await until(lambda: len(app.session.answers) >= 3, timeout=15, what="auto-answered")
            assert all(q.type in ("single", "multiple", "judge") for q in app.session.questions()
                       if q.key in app.session.answers)  # fmt: skip
            assert objective
            await room.op("collect_all")
            await screen(app, "submitted", timeout=15)
            assert candidates(await room.op("status"))[first]["state"] == "submitted"
            on_box = stored_on_box(room, first)
            assert on_box and all(on_box[k] == v for k, v in app.session.answers.items())

    run_test(body())


@pytest.mark.slow
def test_an_operation_task_collects_the_work_folder_and_the_box_stores_the_files(
    tmp_path: Path, xdisplay: str
) -> None:
    async def body() -> None:
        async with exam_room(tmp_path, both=True) as (room, clock):
            await room.op("allow_login")
            no = (await room.op("status"))["session"]["candidates"][0]["admission_no"]
            async with answer_app(room.fleet[0].state_dir) as app:
                await log_in(app, no)
                await through_to_the_paper(app, room, clock)
                task = next(q for q in app.session.questions() if q.type == "operation")
                app.session.go(task.key)
                app.refresh()
                await showing(app, task.key)
                assert find(contains="素材文件：index.html")
                folder = app.session.work_folder(task)
                (folder / "index.html").write_text("<header>职业技能等级证书考核</header>", encoding="utf-8")
                await press("提交作品文件")
                await until(lambda: find(text="已提交作品文件：index.html"), what="the listing on screen")
                await until(lambda: app.save_line == "已同步", timeout=15, what="the answer on the box")
                stored = tmp_path / "answers" / "session-1" / no / task.subject / task.id / "index.html"
                assert stored.read_text(encoding="utf-8") == "<header>职业技能等级证书考核</header>"

    run_test(body())
