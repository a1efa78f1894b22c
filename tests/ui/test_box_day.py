"""A whole exam day on the proctor box by touch alone, in site mode: the box's touch app
in a real Kivy window under Xvfb, its real engine (room service, room network on
loopback, USB sticks as folders), the reference site server as its own `kiosk site
serve` process on loopback, and a fleet of real exam-PC daemons started from the client
folder the box wrote to a stick.

The officer only taps: login, 参数配置 in site mode (site IP and registration code typed
on the on-screen keyboard), registration, the client folder, scan, environment check,
download from the site, seal check (reported to the site), then every action of the
monitor's toolbar (app.TOOLBAR: a new one fails this test until the walk covers it),
a raised hand answered from the seat's long-press menu, the end with the password,
verification, backup to a stick and the upload with its progress bar. The candidates act
at their PCs through their daemons (log in, answer, raise a hand, export an answer
package to a stick, submit). The site goes away mid-day: the status strip says so, and
says so again when it is back. The engine is called only to read state for assertions."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from kiosk.common.crypto import cert_fingerprint
from kiosk.common.signed import open_sealed
from kiosk.core.candidate import CandidateState
from kiosk.core.verification import progress_pct
from kiosk.site.mock import author_site, build_default_exam, default_bank
from kiosk.ui.app import TOOLBAR
from stu_client.export import export_answer_package
from tests.e2e.cli_helpers import engine_env, kiosk_command
from tests.liveroom import ROOM, free_port
from tests.ui.box_harness import box_app, box_engine, fleet_from, open_form, site_box_engine, stick_with_exam
from tests.ui.harness import (
    ancestors,
    find,
    long_press,
    one,
    press,
    run_test,
    settle,
    shoot,
    tap,
    type_keys,
    until,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(360)]

PCS = 5
SEATED = 4  # the fifth candidate never comes (缺考): PC 5 stays empty
SUBJECT = "T01"
QUESTIONS = len(default_bank()[0].questions)  # the theory paper's
DURATION_S = default_bank()[0].duration_s
# The day's order of the toolbar: TOOLBAR's, but the mock-only actions are tried while
# the session runs (they refuse in a formal exam; after the end there is no session).
DAY = (
    "session-enter", "start-clients", "authorise", "allow-login", "allow-start", "violation-add",
    "violations", "resume", "extra-time", "collect", "import-answers-all", "lock", "message", "find",
    "auto-login", "auto-answer", "collect-all", "absent", "situation", "end", "close-clients",
)  # fmt: skip


class SiteServer:
    """`kiosk site serve` on loopback as its own process; stopped and started again on
    the same port and database."""

    def __init__(self, plan: Path, log: Path) -> None:
        self.plan, self.log, self.port = plan, log, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*kiosk_command(), "site", "serve", "--plan", str(self.plan), "--port", str(self.port)],
                stdout=out, stderr=out, stdin=subprocess.DEVNULL, env=engine_env(),
            )  # fmt: skip

    def listening(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    async def up(self) -> None:
        self.start()
        await until(self.listening, 60, "the site server listening")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(15) == 0, self.log.read_text()

    def db(self, sql: str) -> list[tuple[Any, ...]]:
        con = sqlite3.connect(f"file:{self.plan}/site/site.db?mode=ro", uri=True)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()


async def finish(app: Any) -> str:
    """After 确定: 是 to each confirmation the form asks, then the service's answer (no
    refusal), 关闭; the answer's text."""
    form = app.form
    while True:
        await until(
            lambda: form.result or form.error or getattr(form, "question", ""),
            20,
            f"the answer of {form.title}",
        )
        if form.result or form.error:
            break
        await press("是")
        await until(lambda: not form.question or form.result or form.error, what="the confirmation taken")
    assert not form.error, f"{form.title}: {form.error}"
    text = str(form.result)
    await press("关闭")
    await until(lambda: not find(cls="OpForm"), what="the form closed")
    return text


async def refused(app: Any) -> str:
    """The service's refusal on the form; 取消."""
    form = app.form
    await until(lambda: form.result or form.error, 20, f"the answer of {form.title}")
    assert not form.result, f"{form.title} was not refused: {form.result}"
    text = str(form.error)
    await press("取消")
    await until(lambda: not find(cls="OpForm"), what="the form closed")
    return text


async def type_into(form: Any, name: str, text: str) -> None:
    """Scroll the field into view, tap it, type on the on-screen keyboard."""
    field = form.fields[name].ids.input
    for view in (p for p in ancestors(field) if type(p).__name__ == "ScrollView"):
        view.scroll_to(field, padding=10, animate=False)  # as a finger would scroll to it first
    await settle(2)
    tap(field)
    await until(lambda: form.ids.keyboard.target is field, what=f"the keyboard on {name}")
    await type_keys(text)
    assert field.text == text, (name, field.text)


async def eventually(read: Callable[[], Awaitable[Any]], check: Callable[[Any], Any], what: str) -> Any:
    """Poll an async read (the engine's state) until `check` holds."""
    end = time.monotonic() + 20
    while True:
        value = await read()
        if check(value):
            return value
        assert time.monotonic() < end, f"timed out waiting for {what}: {value!r}"
        await asyncio.sleep(0.1)


def site_plan(folder: Path) -> Any:
    """The site's plan of one room: session 1 began a minute ago (its authorisation
    window is open), a candidate a PC, no countdown or earliest submission, no late
    login (the fifth can be registered absent at once)."""
    exam = build_default_exam(room_code=ROOM, first_start=time.time() - 60, candidates_per_session=PCS,
                              mock=False)  # fmt: skip
    exam.package["exam"]["policy"].update(countdown_s=0, earliest_submit_s=0, late_login_s=0)
    return author_site(folder, [exam]).rooms[ROOM]


def test_a_whole_exam_day_by_touch_in_site_mode_with_the_upload(tmp_path: Path, xdisplay: str) -> None:
    assert sorted(DAY) == sorted(TOOLBAR), "every toolbar action needs a step in this day's walk"
    files = site_plan(tmp_path / "plan")
    site = SiteServer(tmp_path / "plan", tmp_path / "site.log")
    stick, pc_stick = tmp_path / "media" / "STICK", tmp_path / "media" / "PCSTICK"
    shots = tmp_path / "shots"

    async def body() -> None:
        await site.up()
        async with site_box_engine(tmp_path, site.port) as engine, box_app(engine) as app:
            stick.mkdir(parents=True)
            pc_stick.mkdir()
            await type_keys("888")
            await press("登 录")
            await until(lambda: app.logged_in, what="logged in")
            await until(
                lambda: app.strip_site == "单机模式", what="single-machine mode before the parameters"
            )

            # 1 参数配置 in site mode: the site answers the registration with the room sheet.
            form = await open_form(app, "参数配置")
            await type_into(form, "room_code", ROOM)
            await press(contains="本机 ")
            await press("lo 127.0.0.1")
            await press("考点模式")
            await type_into(form, "site_ip", "127.0.0.1")
            await type_into(form, "registration_code", "abcdefgh")  # a wrong code: refused, nothing saved
            await press("确定")
            await until(lambda: form.error, 20, "the refusal")
            assert "注册码" in form.error, form.error
            assert (await engine.call("status"))["config"] is None
            assert site.db(f"SELECT box_fingerprint FROM rooms WHERE code = '{ROOM}'") == [(None,)]
            await press("清除")
            await type_into(form, "registration_code", files.registration_code.lower())
            await settle()
            shoot(shots, "00-config")
            await press("确定")
            await until(lambda: form.result, 20, "the registration")  # the refusal stays shown until then
            await finish(app)
            box_cert = (Path(engine.home) / "keys" / "box.crt").read_bytes()
            assert site.db(f"SELECT box_fingerprint FROM rooms WHERE code = '{ROOM}'") == [
                (cert_fingerprint(box_cert),)
            ]
            await until(lambda: app.strip_site == "考点 127.0.0.1 已连接", what="the site link on the strip")
            await open_form(app, "向考点注册（取得考点信息表）")  # again: the pinned sheet is kept
            await finish(app)
            await until(lambda: find(text="✓ 参数配置"))

            # 2 机位管理: the client folder onto a stick, the PCs started from it, the scan.
            await press("2 机位管理")
            await open_form(app, "生成考试机客户端目录（证书、地址、启动脚本）")
            await press("STICK")
            await press("确定")
            await finish(app)
            assert (stick / "daemon.json").is_file() and (stick / "box.crt").read_bytes() == box_cert
            async with fleet_from(stick, tmp_path, PCS, engine.settings.scan_port) as fleet:
                await walk(app, engine, fleet, site, files, stick, pc_stick, shots)

    try:
        run_test(body(), 330)
    finally:
        site.stop()


async def walk(
    app: Any, engine: Any, fleet: Any, site: SiteServer, files: Any, stick: Path, pc_stick: Path, shots: Path
) -> None:
    await open_form(app, "自动扫描机位")
    await press("确定")
    await finish(app)
    await until(lambda: len(app.seats) == PCS, what="seats scanned")
    await until(lambda: find(text="✓ 机位管理"))

    # 3 环境检测 (as an officer would: re-test the PCs that a loaded machine slowed).
    await press("3 环境检测")
    await open_form(app, "环境检测（可只补测未通过的）")
    await press("确定")
    await finish(app)
    for _ in range(3):
        await settle(10)
        if find(text="✓ 环境检测"):
            break
        await open_form(app, "环境检测（可只补测未通过的）")
        await press("只补测未通过的考试机")
        await press("确定")
        await finish(app)
    if not find(text="✓ 环境检测"):
        result = await engine.call("envcheck_result")
        failed = [
            (p["seat"], [i for i in p["items"] if not i.get("passed")])
            for p in result["pcs"]
            if not p["passed"]
        ]
        raise AssertionError(f"environment check failed: {failed}")

    # 4 载入考务 from the site; 5 封场检测, reported to the site.
    await press("4 载入考务")
    await open_form(app, "从考点下载考务数据")
    await finish(app)
    await until(lambda: find(text="✓ 载入考务"), what="exam data loaded")
    await press("5 封场检测")
    await open_form(app, "封场检测")
    seal = await finish(app)
    await until(lambda: find(text="✓ 封场检测"), what=f"seal check passed: {seal}")
    assert site.db("SELECT passed FROM seal_reports") == [(1,)], "the site has the seal check"
    await settle()
    shoot(shots, "01-wizard")

    await press("考中管理")
    day = Day(app, engine, fleet, site, pc_stick, shots)
    for verb in DAY:
        await getattr(day, verb.replace("-", "_"))()
        await settle()

    # 考后: verify, back up to the stick, upload to the site.
    await press("考后管理")
    await open_form(app, "核对考后数据")
    await press("确定")
    shown = await finish(app)
    table = await engine.call("verify")
    await day.check_verification(table, shown)
    await open_form(app, "上报第一步：备份到外部存储")
    await press("STICK")
    await press("确定")
    await until(lambda: app.form.result or app.form.error, 30, "the backup")
    assert app.form.progress == 100, app.form.progress
    await finish(app)
    assert list(stick.glob(f"results-{ROOM}-1*.json")), "no results package on the stick"
    form = await open_form(app, "上报第二步：上报考点")
    await press("确定")
    await until(lambda: form.result or form.error, 60, "the upload")
    assert form.progress == 100 and not form.error, (form.progress, form.error)
    await settle()
    shoot(shots, "09-uploaded")
    assert "上报完成" in await finish(app)
    day.check_the_site_has_the_results(table)


class Day:
    """The monitor's toolbar, one method per action: the officer's taps, the candidates'
    own actions at their PCs, and what each changed on the box or the PCs."""

    def __init__(
        self, app: Any, engine: Any, fleet: Any, site: SiteServer, pc_stick: Path, shots: Path
    ) -> None:
        self.app, self.engine, self.fleet, self.site = app, engine, fleet, site
        self.pc_stick, self.shots = pc_stick, shots
        self.people: list[str] = []  # the session's candidates; the first SEATED come
        self.answers: dict[str, dict[str, str]] = {}  # what each candidate answered at a PC
        self.start_calls = 0
        self.commands: list[tuple[int, str]] = []  # (PC, command) as each daemon applied it
        for i, d in enumerate(fleet.daemons):
            d.add_listener(lambda event, data, i=i: self._heard(i, event, data))

    def _heard(self, i: int, event: str, data: dict[str, Any]) -> None:
        if event == "command":
            self.commands.append((i, str(data.get("cmd"))))

    async def every_pc_got(self, command: str, since: int) -> None:
        """Each PC applied `command` after the first `since` commands recorded."""
        await until(
            lambda: {i for i, c in self.commands[since:] if c == command} == set(range(PCS)),
            what=f"{command} at every PC",
        )

    def box_answers(self, no: str) -> dict[str, str]:
        """What the box's database holds for the candidate (read-only, for the check)."""
        db = Path(self.engine.home) / "room.db"
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            rows = con.execute("SELECT question, value FROM answer WHERE admission_no = ?", (no,)).fetchall()
        finally:
            con.close()
        return {q: json.loads(v) for q, v in rows}

    # -- helpers ------------------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        return await self.engine.call("status")

    async def candidates(self) -> dict[str, dict[str, Any]]:
        return {c["admission_no"]: c for c in (await self.status())["session"]["candidates"]}

    def tiles(self) -> list[Any]:
        return sorted(find(cls="SeatTile"), key=lambda t: t.seat)

    def tile_of(self, no: str) -> Any:
        return one_of([t for t in self.tiles() if t.admission_no == no], no)

    def flags(self, no: str) -> str:
        """The marks on the candidate's seat ("" while no seat shows them)."""
        return " ".join(t.flags for t in self.tiles() if t.admission_no == no)

    async def tick(self, *nos: str) -> None:
        for no in nos:
            tap(self.tile_of(no))
        await until(lambda: self.app.selected == set(nos), what=f"ticked {nos}")

    async def untick(self) -> None:
        if self.app.selected:
            await press(contains="取消勾选")
        await until(lambda: not self.app.selected, what="nothing ticked")

    async def seat_menu(self, no: str, verb_title: str) -> Any:
        await long_press(self.tile_of(no), lambda: find(cls="SeatMenu"))
        return await open_form(self.app, verb_title)

    def answer(self, i: int, questions: range) -> None:
        """The candidate at PC i answers these questions (their PC's journal)."""
        no = self.people[i]
        for n in questions:
            q, value = f"q{n:02d}", "ABCD"[(i + n) % 4]
            self.fleet.daemons[i].save_answer(no, SUBJECT, q, value)
            self.answers.setdefault(no, {})[q] = value

    async def synced(self, i: int) -> None:
        await self.fleet.daemons[i].wait_synced(10)

    async def pc_package(self, i: int) -> Path:
        """The candidate at PC i exports an answer package to the stick (导出作答包),
        and the box lists it."""
        d = self.fleet.daemons[i]
        path = await asyncio.to_thread(export_answer_package, d.state_dir, self.pc_stick)

        def listed(sticks: list[dict[str, Any]]) -> bool:
            return any(p["path"] == str(path) for s in sticks for p in s["packages"])

        await eventually(lambda: self.engine.call("usb_sticks"), listed, f"{path.name} on the stick")
        return path

    # -- the toolbar, in the day's order ------------------------------------------------

    async def session_enter(self) -> None:
        await open_form(self.app, TOOLBAR["session-enter"])
        for choice in ("第 1 场", "张三", "张三 13807710001", "王芳", "王芳 15977120003"):
            await press(choice)
        await press("确定")
        await finish(self.app)
        status = await self.status()
        assert status["session"]["number"] == 1
        self.people = [c["admission_no"] for c in status["session"]["candidates"]]
        assert len(self.people) == PCS
        await until(lambda: self.app.session_text.startswith("第 1 场"), what="the session on the monitor")

    async def start_clients(self) -> None:
        await open_form(self.app, TOOLBAR["start-clients"])
        await finish(self.app)
        await until(
            lambda: all(d.state.app_running for d in self.fleet.daemons), what="the answer apps started"
        )
        assert all(d.platform.calls.count("start_app") == 1 for d in self.fleet.daemons)

    async def authorise(self) -> None:
        await open_form(self.app, TOOLBAR["authorise"])
        await press("确定")  # no file: from the site
        await finish(self.app)
        [first, *_] = (await self.status())["exam"]["sessions"]
        assert first["authorised"] and first["papers"] == 1

    async def allow_login(self) -> None:
        since = len(self.commands)  # the box's tick may have allowed login already: the tap says so again
        await open_form(self.app, TOOLBAR["allow-login"])
        await press("确定")
        await finish(self.app)
        await self.every_pc_got("allow_login", since)
        assert (await self.status())["session"]["login_allowed"]
        await until(
            lambda: all(d.state.login_allowed for d in self.fleet.daemons), what="login allowed at the PCs"
        )
        for d, no in zip(self.fleet.daemons[:SEATED], self.people[:SEATED], strict=True):  # they log in
            await d.request("login", admission_no=no)
        await until(lambda: len([t for t in self.tiles() if t.name]) == SEATED, what="names on the seats")

    async def allow_start(self) -> None:
        await open_form(self.app, TOOLBAR["allow-start"])
        await press("确定")
        await finish(self.app)
        start = (await self.status())["session"]["actual_start"]
        assert start is not None
        await until(
            lambda: all(d.state.exam_start == start for d in self.fleet.daemons), what="the start at the PCs"
        )
        for i, (d, no) in enumerate(zip(self.fleet.daemons[:SEATED], self.people[:SEATED], strict=True)):
            await d.request("begin", admission_no=no)
            self.answer(i, range(1, 3 + i))  # 2, 3, 4, 5 answers
        by_no = await self.candidates()
        assert all(by_no[no]["state"] == CandidateState.IN_EXAM for no in self.people[:SEATED])

        # The site goes away: the room goes on, the strip says so.
        self.site.stop()
        await until(lambda: "无法连接" in self.app.strip_site and self.app.strip_site_down, what="site down")
        await settle()
        shoot(self.shots, "02-site-unreachable")

    async def violation_add(self) -> None:
        no = self.people[0]
        await self.tick(no)
        form = await open_form(self.app, TOOLBAR["violation-add"])
        assert form.fields["admission_no"].ids.input.text == no
        await press(contains="A104")
        await press("与他人交谈")
        await press("确定")
        await finish(self.app)
        await self.untick()
        await until(lambda: "违纪" in self.flags(no), what="the violation on the seat")
        assert (await self.candidates())[no]["violation"]

    async def violations(self) -> None:
        await open_form(self.app, TOOLBAR["violations"])
        shown = await finish(self.app)
        assert self.people[0] in shown and "A104" in shown, shown

    async def resume(self) -> None:
        """PC 2's candidate: the PC failed; forced out, back in at the same PC, on with
        every answer kept."""
        no, d = self.people[1], self.fleet.daemons[1]
        await self.synced(1)
        form = await self.seat_menu(no, "断点续考")
        assert form.fields["admission_nos"].ids.input.text == no
        await press(contains="考生端或考生电脑异常关闭")
        await press("考试机故障，无法继续作答")
        await press("李四")
        await press("确定")
        await finish(self.app)  # 是: the candidate is online and is forced out
        await until(lambda: d.state.admission_no == "", what="the candidate forced out at the PC")
        assert (await self.candidates())[no]["resumed"]
        view = await d.request("login", admission_no=no)
        assert {a["question"]: a["value"] for a in view.get("answers") or []} == self.answers[no]
        self.answer(1, range(4, 6))
        await until(lambda: "续考" in self.flags(no), what="the resume on the seat")

    async def extra_time(self) -> None:
        no, d = self.people[2], self.fleet.daemons[2]
        form = await self.seat_menu(no, "补时")
        assert form.fields["admission_no"].ids.input.text == no
        await type_into(form, "seconds", "300")
        await press(contains="考试机故障")
        await press("确定")
        await finish(self.app)
        await until(lambda: "补时" in self.flags(no), what="extra time on the seat")
        assert (await self.candidates())[no]["extra_s"] == 300
        start = (await self.status())["session"]["actual_start"]
        await until(lambda: d.state.deadline == start + DURATION_S + 300, what="the PC's deadline moved")

        # Meanwhile a raised hand at the same PC, answered from the seat's menu.
        await d.request("raise_hand", admission_no=no)
        await until(lambda: "举手" in self.flags(no), what="the hand on the seat")
        await settle()
        shoot(self.shots, "03-monitor")
        await self.seat_menu(no, "处理举手")
        await press("确定")
        await finish(self.app)
        await until(lambda: not d.state.hand_raised, what="the hand answered at the PC")
        assert not (await self.candidates())[no]["hand_raised"]

    async def collect(self) -> None:
        """PC 4's candidate cannot hand in at the PC: 单机收卷 from its answer package."""
        no = self.people[3]
        await self.synced(3)
        package = await self.pc_package(3)
        await open_form(self.app, TOOLBAR["collect"])
        await press(contains=package.name)
        await press("确定")
        await finish(self.app)
        c = (await self.candidates())[no]
        assert c["state"] == CandidateState.SUBMITTED and c["collected"], c

    async def import_answers_all(self) -> None:
        """PC 3 lost its link: what its candidate answered since comes on the stick."""
        no, d = self.people[2], self.fleet.daemons[2]
        await self.synced(2)
        d.go_offline()
        await until(lambda: not d.online, what="PC 3 offline")
        self.answer(2, range(5, 7))
        await self.pc_package(2)
        assert self.box_answers(no) != self.answers[no], "the box has not got the later answers yet"
        await open_form(self.app, TOOLBAR["import-answers-all"])
        await press("PCSTICK")
        await press("确定")
        shown = await finish(self.app)
        assert no in shown, shown
        assert self.box_answers(no) == self.answers[no], "the stick brought the answers"
        d.go_online()
        await until(lambda: d.online, what="PC 3 back")

    async def lock(self) -> None:
        no, d = self.people[0], self.fleet.daemons[0]
        await self.tick(no)
        await open_form(self.app, TOOLBAR["lock"])
        await press(contains="请停止作答")
        await press("确定")
        await finish(self.app)
        await self.untick()
        await until(lambda: d.state.locked, what="the PC locked")
        await until(lambda: "锁屏" in self.flags(no), what="the lock on the seat")
        # Unlocked again by the same action (解除锁屏), so the candidate can hand in.
        await self.tick(no)
        await open_form(self.app, TOOLBAR["lock"])
        await press("解除锁屏")
        await press("确定")
        await finish(self.app)
        await self.untick()
        await until(lambda: not d.state.locked, what="the PC unlocked")

    async def message(self) -> None:
        await press("全选")
        await until(lambda: len(self.app.selected) == SEATED, what="everyone ticked")
        await open_form(self.app, TOOLBAR["message"])
        await press("请注意考试时间。")
        await press("确定")
        await finish(self.app)
        await self.untick()
        await until(
            lambda: all(d.state.message == "请注意考试时间。" for d in self.fleet.daemons[:SEATED]),
            what="sent",
        )

    async def find(self) -> None:
        no = self.people[1]
        form = await open_form(self.app, TOOLBAR["find"])
        await type_into(form, "query", no)
        await press("确定")
        shown = await finish(self.app)
        assert no in shown and "002" in shown, shown

    async def _mock_refused(self, verb: str, has_params: bool) -> None:
        await open_form(self.app, TOOLBAR[verb])
        if has_params:
            await press("开启（不选则取消）")
            await press("确定")
        reason = await refused(self.app)
        assert "模考" in reason, reason

    async def auto_login(self) -> None:
        await self._mock_refused("auto-login", True)
        assert not any(d.state.auto_login for d in self.fleet.daemons)

    async def auto_answer(self) -> None:
        await self._mock_refused("auto-answer", True)
        assert not any(d.state.auto_answer for d in self.fleet.daemons)

    async def collect_all(self) -> None:
        await self._mock_refused("collect-all", False)
        assert not any(d.state.collect_requested for d in self.fleet.daemons)

    async def absent(self) -> None:
        no = self.people[SEATED]  # never came
        form = await open_form(self.app, TOOLBAR["absent"])
        await type_into(form, "admission_nos", no)
        await press("确定")
        await finish(self.app)  # 是
        assert (await self.candidates())[no]["state"] == CandidateState.ABSENT

    async def situation(self) -> None:
        await press(TOOLBAR["situation"])
        await until(lambda: find(cls="ReportView"), what="the situation record")
        report = one(cls="ReportView").text
        assert "考场情况记录单" in report and ROOM in report
        for word in ("违纪", "补时", "断点续考", "缺考"):
            assert word in report, word
        await settle()
        shoot(self.shots, "04-situation")
        await press("关闭")

        # The site is back before the end: the strip says so.
        await self.site.up()
        await until(
            lambda: "已连接" in self.app.strip_site and not self.app.strip_site_down, what="site back"
        )

    async def end(self) -> None:
        for i in (0, 1, 2):  # the rest hand in at their PCs
            await self.fleet.daemons[i].request("submit", admission_no=self.people[i])
        form = await open_form(self.app, TOOLBAR["end"])
        await type_into(form, "password", "888")
        await press("确定")
        await finish(self.app)
        assert (await self.status())["session"] is None
        await until(
            lambda: all(not d.state.app_running for d in self.fleet.daemons), what="apps closed by the end"
        )
        self.start_calls = sum(d.platform.calls.count("close_app") for d in self.fleet.daemons)

    async def close_clients(self) -> None:
        await open_form(self.app, TOOLBAR["close-clients"])
        await finish(self.app)
        closes = sum(d.platform.calls.count("close_app") for d in self.fleet.daemons)
        assert closes == self.start_calls + PCS, "each PC was told to close its app once more"

    # -- after the exam -----------------------------------------------------------------

    async def check_verification(self, table: dict[str, Any], shown: str) -> None:
        """The verification table against what the candidates answered at their PCs."""
        rows = {r["admission_no"]: r for r in table["rows"]}
        for no in self.people[:SEATED]:
            want = progress_pct(CandidateState.SUBMITTED, len(self.answers[no]), QUESTIONS)
            assert rows[no]["progress_pct"] == want, (no, rows[no], want)
            assert no in shown
        assert rows[self.people[SEATED]]["progress_pct"] is None
        totals = table["totals"]
        assert (totals["total"], totals["sat"], totals["absent"]) == (PCS, SEATED, 1), totals
        assert (totals["violations"], totals["extra_time"]) == (1, 1), totals
        assert totals["collected"] == PCS, totals

    def check_the_site_has_the_results(self, table: dict[str, Any]) -> None:
        """The site's database holds the complete upload; the package it kept carries
        every candidate's answers and the verification table."""
        [(stored, complete)] = self.site.db("SELECT stored_path, complete FROM uploads WHERE session = 1")
        assert complete == 1
        box_cert = (Path(self.engine.home) / "keys" / "box.crt").read_bytes()
        doc = open_sealed(Path(stored).read_bytes(), "results-package", box_cert)
        received: dict[str, dict[str, str]] = {}
        for a in doc["answers"]:
            received.setdefault(a["admission_no"], {})[a["question"]] = a["value"]
        assert received == self.answers, json.dumps(received, ensure_ascii=False)
        assert doc["verification"] == table


def one_of(found: list[Any], what: str) -> Any:
    assert len(found) == 1, f"expected one seat of {what}, found {len(found)}"
    return found[0]


def test_a_mock_drill_by_touch_auto_login_auto_answer_and_unified_collection(
    tmp_path: Path, xdisplay: str
) -> None:
    """The toolbar's mock-exam actions with their effect (the formal day only sees them
    refused): the PCs play mock candidates (`SimFleet.play_mock`, as `stu-client sim
    --mock`); 自动登录 logs them in by seat, 自动作答 makes them answer, 统一收卷 makes
    every one hand in. The before-exam steps are the day test's; here the engine does
    them, and the drill itself is done by touch."""
    files = stick_with_exam(tmp_path, PCS, mock=True)
    stick = tmp_path / "media" / "STICK"

    async def body() -> None:
        async with (
            box_engine(tmp_path, PCS, max_rtt_ms=1000.0) as (engine, fleet),
            box_app(engine) as app,
        ):
            await engine.call("room_sheet_import", str(stick / files.sheet.name), files.registration_code)
            await engine.call("seats_scan", "ip")
            await fleet.wait_all_online()
            assert not (await engine.call("envcheck"))["failed"]
            await engine.call("exam_import", str(stick / files.package.name))
            assert (await engine.call("seal_check"))["passed"]
            fleet.play_mock(rate=20.0)

            await type_keys("888")
            await press("登 录")
            await until(lambda: app.logged_in, what="logged in")
            await press("考中管理")
            await open_form(app, TOOLBAR["session-enter"])
            for choice in ("第 1 场", "张三", "张三 13807710001", "王芳", "王芳 15977120003"):
                await press(choice)
            await press("确定")
            await finish(app)
            await open_form(app, TOOLBAR["authorise"])
            await press(contains="考试授权：")
            await press("确定")
            await finish(app)
            await open_form(app, TOOLBAR["allow-login"])
            await press("确定")
            await finish(app)

            async def candidates() -> list[dict[str, Any]]:
                return (await engine.call("status"))["session"]["candidates"]

            assert all(c["state"] == CandidateState.NOT_LOGGED_IN for c in await candidates())
            await open_form(app, TOOLBAR["auto-login"])
            await press("开启（不选则取消）")
            await press("确定")
            await finish(app)
            await until(
                lambda: all(d.state.admission_no for d in fleet.daemons), what="logged in by seat at every PC"
            )
            people = {c["admission_no"] for c in await candidates()}
            assert {d.state.admission_no for d in fleet.daemons} == people

            await open_form(app, TOOLBAR["allow-start"])
            await press("确定")
            await finish(app)
            await eventually(
                candidates,
                lambda cs: all(c["state"] == CandidateState.IN_EXAM for c in cs),
                "everyone writing",
            )
            answered = [len(d.journal.answer_rows(d.state.admission_no)) for d in fleet.daemons]
            assert answered == [0] * PCS, "nobody answers before 自动作答"
            await open_form(app, TOOLBAR["auto-answer"])
            await press("开启（不选则取消）")
            await press("确定")
            await finish(app)
            await until(
                lambda: all(len(d.journal.answer_rows(d.state.admission_no)) >= 3 for d in fleet.daemons),
                what="the PCs answering",
            )

            await open_form(app, TOOLBAR["collect-all"])
            await finish(app)
            await eventually(
                candidates,
                lambda cs: all(c["state"] == CandidateState.SUBMITTED for c in cs),
                "everyone handed in",
            )
            await settle()
            shoot(tmp_path / "shots", "10-mock-collected")

    run_test(body(), 150)
