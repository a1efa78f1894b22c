"""The proctor box's touch app in a real window under Xvfb, against a real engine, a
simulated fleet of real exam-PC daemons on loopback and exam data on a USB stick
folder: the before-exam wizard and a session in the monitor, by touch alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.liveroom import ROOM
from tests.ui.box_harness import box_app, box_engine, close_form, open_form, operation, stick_with_exam
from tests.ui.harness import find, long_press, one, press, run_test, settle, shoot, tap, type_keys, until

PCS = 4


@pytest.mark.slow
def test_the_officer_prepares_the_room_and_runs_a_session_by_touch(tmp_path: Path, xdisplay: str) -> None:
    files = stick_with_exam(tmp_path, PCS)
    shots = tmp_path / "shots"

    async def body() -> None:
        async with box_engine(tmp_path, PCS) as (engine, fleet), box_app(engine) as app:
            await type_keys("888")
            await press("登 录")
            await until(lambda: app.logged_in, what="logged in")
            await until(lambda: find(text="默认密码未修改"), what="the default-password warning")

            # 1 参数配置 is done (configured), and its form opens with what was saved.
            await until(lambda: find(text="✓ 参数配置"))
            form = await open_form(app, "参数配置")
            assert form.fields["room_code"].ids.input.text == ROOM
            assert form.fields["box_ip"].ids.input.text == "127.0.0.1"
            await press("取消")
            # 2 机位管理: scan.
            await open_form(app, "导入考点信息表（固定考点证书）")
            await press(contains="考点信息表：")
            tap(app.form.fields["registration_code"].ids.input)
            await type_keys(files.registration_code.lower())
            await press("确定")
            await close_form(app)
            await press("2 机位管理")
            await operation(app, "自动扫描机位")
            await until(lambda: len(app.seats) == PCS, what="seats scanned")
            await until(lambda: find(text="✓ 机位管理"))
            await press("3 环境检测")
            await operation(app, "环境检测（可只补测未通过的）")
            for _ in range(3):  # as an officer would: re-test the PCs that a loaded machine slowed
                await settle(10)
                if find(text="✓ 环境检测"):
                    break
                await operation(app, "环境检测（可只补测未通过的）", "只补测未通过的考试机")
            await until(lambda: find(text="✓ 环境检测"), what="environment passed")
            assert app.form.progress == 100 and app.form.progress_text == f"{PCS} / {PCS}"  # the bar ran
            await press("4 载入考务")
            await operation(app, "从U盘导入考务数据", "考务数据：")
            await until(lambda: find(text="✓ 载入考务"))
            await press("5 封场检测")
            await operation(app, "封场检测")
            await until(lambda: find(text="✓ 封场检测"), what="seal check passed")
            await settle()
            shoot(shots, "wizard")

            # 考中: enter the session with staff picked from the exam's list, authorise, start.
            await press("考中管理")
            await open_form(app, "进入场次")
            for choice in ("第 1 场", "张三", "张三 13807710001", "王芳", "王芳 15977120003"):
                await press(choice)
            await press("确定")
            await close_form(app)
            await operation(app, "考试授权", "考试授权：")
            await operation(app, "允许登录")
            await operation(app, "允许开考")
            status = await engine.call("status")
            people = [c["admission_no"] for c in status["session"]["candidates"]]
            for d, no in zip(fleet.daemons, people, strict=True):  # the candidates log in at their PCs
                await d.request("login", admission_no=no)
                await d.request("begin", admission_no=no)
            await until(
                lambda: len([t for t in find(cls="SeatTile") if t.name]) == PCS, what="names on seats"
            )

            # Tick the first seat and lock it from the toolbar.
            tiles = sorted(find(cls="SeatTile"), key=lambda t: t.seat)
            tap(tiles[0])
            await until(lambda: tiles[0].ticked)
            form = await open_form(app, "锁屏")
            assert form.op.verb == "lock" and form.fields["admission_nos"].ids.input.text == people[0]
            await press(contains="请停止作答")
            await press("确定")
            await close_form(app)
            await until(lambda: "锁屏" in tiles[0].flags, what="the lock on the seat")

            # Long press on the second seat: its menu, extra time of 300 s on the number pad.
            await long_press(tiles[1], lambda: find(cls="SeatMenu"))
            form = await open_form(app, "补时")
            assert form.op.verb == "extra-time" and form.fields["admission_no"].ids.input.text == people[1]
            tap(form.fields["seconds"].ids.input)
            await type_keys("300")
            await press(contains="考试机故障")
            await press("确定")
            await close_form(app)
            await until(lambda: "补时" in tiles[1].flags, what="extra time on the seat")
            await press("补时 1")
            await until(lambda: find(cls="Toast"), what="the extra-time list")
            assert one(cls="Toast").text.count("\n") == 1 and people[1] in one(cls="Toast").text
            await press("知道了")
            await settle()
            shoot(shots, "monitor")

            # The situation record (考场情况记录单) on the box's screen.
            await press("考场情况")
            await until(lambda: find(cls="ReportView"), what="the situation record")
            report = one(cls="ReportView").text
            assert "考场情况记录单" in report and "补时" in report and ROOM in report
            await press("关闭")

            # The list view with check boxes: everyone ticked, one message to all of them.
            tap(tiles[0])  # untick the locked one first: 全选 then ticks everyone
            await until(lambda: not app.selected)
            await press("列表视图")
            await press("全选")
            await until(lambda: len(app.selected) == PCS and len(find(cls="CandidateRow")) == PCS)
            form = await open_form(app, "发消息")
            assert sorted(form.fields["admission_nos"].ids.input.text.split(",")) == sorted(people)
            await press("请注意考试时间。")
            await press("确定")
            await close_form(app)
            await until(
                lambda: all(d.state.message == "请注意考试时间。" for d in fleet.daemons), what="sent"
            )
            status = await engine.call("status")
            by_no = {c["admission_no"]: c for c in status["session"]["candidates"]}
            assert by_no[people[0]]["locked"] and by_no[people[1]]["extra_s"] == 300

            # Everyone hands in; the end needs the password; after the exam: verify, back up.
            for d, no in zip(fleet.daemons, people, strict=True):
                await d.request("submit", admission_no=no)
            form = await open_form(app, "结束考试")
            tap(form.fields["password"].ids.input)
            await type_keys("888")
            await press("确定")
            await close_form(app)
            await press("考后管理")
            await operation(app, "核对考后数据")
            assert all(no in app.form.result for no in people)  # a row a candidate
            await operation(app, "上报第一步：备份到外部存储", "STICK")
            assert app.form.progress == 100
            assert list((tmp_path / "media" / "STICK").glob("results-*.json")), (
                "no results package on the stick"
            )

    run_test(body(), 170)
