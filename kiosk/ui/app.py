"""The proctor box's touch app (监考机): the engine and the Kivy window on one asyncio
loop. The app is an adapter over the room service: a touch becomes one service call
(through the engine's worker thread), and the screens are redrawn from the service's
room status, refreshed after every event (coalesced) and every second for the clocks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from kiosk.common.kivyenv import configure_kivy, swap_without_gil, use_chinese_font
from kiosk.core.errors import Refused
from kiosk.services.registry import BY_VERB, Op, coerce
from kiosk.ui import viewmodels as vm

log = logging.getLogger(__name__)

UI_DIR = Path(__file__).parent
KV_FILES = ("widgets.kv", "shell.kv", "monitor.kv")
TICK_S = 1.0
REFRESH_S = 0.25  # at most one status read in this time: events within it give one more read
USB_EVERY_S = 5.0

# The monitor's toolbar (short labels for touch), and what a long press on a seat
# offers for its candidate.
TOOLBAR = {
    "session-enter": "进入场次", "start-clients": "启动考生端", "authorise": "考试授权",
    "allow-login": "允许登录", "allow-start": "允许开考", "violation-add": "违纪登记",
    "violations": "违纪记录", "resume": "断点续考", "extra-time": "补时", "collect": "单机收卷",
    "import-answers-all": "导入作答包", "lock": "锁屏", "message": "发消息", "find": "查找考生",
    "absent": "缺考登记", "situation": "考场情况", "end": "结束考试", "close-clients": "关闭考生端",
    "auto-login": "自动登录", "auto-answer": "自动作答", "collect-all": "统一收卷",
}  # fmt: skip
SEAT_MENU = ("violation-add", "resume", "extra-time", "lock", "message", "hand-answer", "candidate-log",
             "reexam", "absent", "challenge", "find")  # fmt: skip
LIST_NAMES = {  # export-list kinds, as the officer reads them
    "violations": "违纪明细", "resumes": "断点续考明细", "extra-time": "补时明细",
    "candidate-log": "考生日志", "verification": "考后核对表", "seats": "机位表",
}  # fmt: skip
REPORTS = ("situation", "envcheck-report")  # written as HTML, shown as text on the box
PROGRESS_OPS = ("envcheck", "backup", "upload", "export")  # these report (done, total) as they go


def build_app_class() -> type:
    from kivy.app import App
    from kivy.clock import Clock
    from kivy.core.window import Window
    from kivy.lang import Builder
    from kivy.properties import BooleanProperty, ListProperty, NumericProperty, StringProperty

    from kiosk.ui import monitor, widgets  # noqa: F401  (registers the kv classes)

    use_chinese_font()
    for kv in KV_FILES:
        if str(UI_DIR / kv) not in Builder.files:
            Builder.load_file(str(UI_DIR / kv))

    class KioskApp(App):
        title = "监考机"
        logged_in = BooleanProperty(False)
        default_password = BooleanProperty(False)
        login_error = StringProperty("")
        area = StringProperty("before")
        strip_room = StringProperty("")
        strip_ip = StringProperty("")
        strip_site = StringProperty("")
        strip_site_down = BooleanProperty(False)  # in site mode, the site does not answer
        strip_usb = StringProperty("")
        strip_time = StringProperty("")
        seats = ListProperty([])
        steps = ListProperty([])
        step = StringProperty("params")
        remaining = StringProperty("--:--:--")
        session_text = StringProperty("")
        stats = ListProperty([])
        selected_count = NumericProperty(0)

        def __init__(self, engine: Any, closable: bool = False, **kw: Any) -> None:
            """`engine`: `await .call(method, ...)`, `.subscribe(listener)` and `.home` (the
            in-process Engine, or a RemoteEngine attached to `kiosk serve`); `closable`: the
            window may be closed (the demo), where the appliance refuses."""
            super().__init__(**kw)
            self.engine = engine
            self.closable = closable
            self.status: dict[str, Any] = {}
            self.selected: set[str] = set()  # admission numbers ticked in the monitor
            self.usb: list[dict[str, Any]] = []
            self.interfaces: list[dict[str, str]] = []
            self._usb_read_at = -USB_EVERY_S
            self._tasks: set[asyncio.Task[Any]] = set()
            self.form: Any = None  # the operation form open now (tests read it)
            self._wanted = False  # a status read is asked for
            self._reader: asyncio.Task[Any] | None = None  # reading while one is wanted
            self._ticker: Any = None
            self._loop: asyncio.AbstractEventLoop | None = None  # the app's, once it runs
            engine.subscribe(self._on_event)

        def load_kv(self, filename: str | None = None) -> bool:
            return True  # loaded once per process above

        def build(self) -> Any:
            Window.bind(on_request_close=lambda *_a: not self.closable)  # an appliance is not closed
            if not swap_without_gil():  # the room service goes on while a frame is drawn
                log.info("frames swapped by Kivy, holding the interpreter lock")
            self._ticker = Clock.schedule_interval(lambda _dt: self._refresh(), TICK_S)
            return Builder.load_string("KioskRoot:")

        def on_stop(self) -> None:
            # Kivy's clock outlives an app (another may start in the same process).
            if self._ticker is not None:
                self._ticker.cancel()

        def _refresh(self) -> None:
            """Ask for the room status: read at once when no read is under way, else once
            more right after it, and never more often than every REFRESH_S (a storm of
            events gives a few reads, the first of them at once)."""
            if App.get_running_app() is not self:  # an event of an engine whose app has stopped
                return
            self._wanted = True
            if self._reader is None or self._reader.done():
                self._reader = self.spawn(self._read_while_wanted())

        async def _read_while_wanted(self) -> None:
            loop = asyncio.get_running_loop()
            while self._wanted:
                self._wanted = False
                started = loop.time()
                await self.reload()
                await asyncio.sleep(max(0.0, REFRESH_S - (loop.time() - started)))

        def on_start(self) -> None:
            self._loop = asyncio.get_running_loop()
            self._refresh()

        def _on_event(self, _event: Any) -> None:
            """Told on the engine's worker thread: the read is asked for on the loop at
            once (through Kivy's clock it would wait for the next frame)."""
            loop = self._loop
            if loop is not None:
                with contextlib.suppress(RuntimeError):  # the app's loop has closed
                    loop.call_soon_threadsafe(self._refresh)

        async def run_async(self) -> None:
            try:
                await self.async_run(async_lib="asyncio")
            finally:
                for t in list(self._tasks):
                    t.cancel()
                await asyncio.gather(*self._tasks, return_exceptions=True)

        def spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
            task = asyncio.ensure_future(coro)
            self._tasks.add(task)
            task.add_done_callback(self._done)
            return task

        def _done(self, task: asyncio.Task[Any]) -> None:
            self._tasks.discard(task)
            if not task.cancelled() and task.exception() is not None:
                from kivy.factory import Factory

                log.error("screen task failed", exc_info=task.exception())
                Factory.Toast(text=f"操作失败：{task.exception()}").open(animation=False)

        # -- the service --------------------------------------------------------------

        async def reload(self) -> None:
            loop = asyncio.get_running_loop()
            try:
                status = await self.engine.call("status")
                if loop.time() - self._usb_read_at > USB_EVERY_S:  # listing a stick reads it
                    self._usb_read_at = loop.time()
                    self.usb = await self.engine.call("usb_sticks")
            except Refused as exc:
                log.warning("status refused: %s", exc.en)
                return
            if App.get_running_app() is self:  # not stopped meanwhile
                self.apply_status(status)

        def apply_status(self, status: dict[str, Any]) -> None:
            """The room status read on the worker thread, shown (on the UI thread)."""
            self.status = status
            strip = vm.strip(self.status, self.usb)
            for key, text in strip.items():
                setattr(self, f"strip_{key}", text)
            self.strip_site_down = (self.status.get("site_link") or {}).get("state") == "unreachable"
            self.steps = vm.wizard_steps(self.status.get("wizard") or {})
            self.seats = list(self.status.get("seats") or [])
            self.default_password = bool((self.status.get("user") or {}).get("default_password"))
            session = self.status.get("session")
            self.stats = vm.stats(self.status)
            if session:
                self.session_text = f"第 {session['number']} 场 {session['name']}  {session['state_zh']}"
                self.remaining = vm.remaining_text(session.get("remaining_s"))
            if self.root is not None:
                self.root.redraw()

        def selection_changed(self) -> None:
            self.selected_count = len(self.selected)
            if self.root is not None:
                self.root.redraw()

        def login(self, password: str) -> None:
            async def go() -> None:
                try:
                    await self.engine.call("login", password)
                except Refused as exc:
                    self.login_error = exc.zh
                    return
                self.login_error, self.logged_in = "", True
                await self.reload()

            self.spawn(go())

        def logout(self) -> None:
            self.logged_in = False

        def run_op(self, op: Op, values: dict[str, Any], form: Any) -> None:
            async def go() -> None:
                try:
                    kwargs = coerce(op, values)
                    if op.verb in PROGRESS_OPS:  # called on the worker thread; drawn on the UI's
                        kwargs["progress"] = lambda done, total: Clock.schedule_once(
                            lambda _dt: form.show_progress(done, total)
                        )
                    form.running = True
                    result = await self.engine.call(op.method, **kwargs)
                except Refused as exc:
                    form.refused(exc.zh, exc.code)  # the code: a form's flow may take the next step
                    return
                finally:
                    form.running = False
                form.done(result)
                self._refresh()

            self.spawn(go())

        def open_op(self, verb: str, prefill: dict[str, Any] | None = None) -> None:
            """The operation's form, its candidate fields filled from the ticked seats and its
            path fields offering what is on the USB sticks; one without parameters runs at once;
            a report is shown on the box."""
            if verb in REPORTS:
                self.view_report(verb)
                return

            async def go() -> None:
                from kiosk.ui.widgets import OpForm

                op = BY_VERB[verb]
                names = {p.name for p in op.params}
                if names & {"path", "folder", "dest"}:
                    self.usb = await self.engine.call("usb_sticks")
                if "box_ip" in names:
                    self.interfaces = await self.engine.call("interfaces")
                fill = self._prefill(op, prefill or {})
                choices = self._choices(op)
                choices["subjects"] = vm.subject_choices(self.status, str(fill.get("admission_no", "")))
                form = OpForm(op, fill, choices)
                self.form = form
                form.open(animation=False)
                if not op.params:
                    form.submit()

            self.spawn(go())

        def view_report(self, verb: str) -> None:
            """A report the service writes as HTML, shown on the box (and kept in the home
            folder's reports/, from where 导出 copies it)."""

            async def go() -> None:
                from kivy.factory import Factory

                from kiosk.ui.widgets import label

                target = Path(self.engine.home) / "reports" / f"{verb}.html"
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    await self.engine.call(BY_VERB[verb].method, str(target))
                except Refused as exc:
                    Factory.Toast(text=exc.zh).open(animation=False)
                    return
                text = await asyncio.to_thread(target.read_text, encoding="utf-8")
                Factory.ReportView(title=label(verb), text=vm.html_text(text)).open(animation=False)

            self.spawn(go())

        def _prefill(self, op: Op, given: dict[str, Any]) -> dict[str, Any]:
            fill, chosen = dict(given), sorted(self.selected)
            if op.method == "configure":  # 参数配置 opens with the parameters saved
                fill = {**(self.status.get("config") or {}), **fill}
            for p in op.params:
                if p.name == "admission_nos" and chosen and p.name not in fill:
                    fill[p.name] = chosen
                elif p.name == "admission_no" and len(chosen) == 1 and p.name not in fill:
                    fill[p.name] = chosen[0]
            return fill

        def _choices(self, op: Op) -> dict[str, list[tuple[str, str]]]:
            packages = [p for stick in self.usb for p in stick["packages"]]
            takes = {op.method, "import_answers"} if op.method == "collect" else {op.method}
            offered = [p for p in packages if p.get("operation") in takes] or packages
            sticks = [(Path(s["path"]).name or s["path"], s["path"]) for s in self.usb]
            exam = self.status.get("exam") or {}
            staff = exam.get("staff") or []
            answers = str(Path(self.engine.home) / "answers")  # the answer folder beside the home
            user = self.status.get("user") or {}
            people = {
                "administrator": [(user.get("name", ""), user.get("phone", ""))] if user.get("name") else [],
                "invigilator": [],
            }
            for s in staff:
                people.setdefault(str(s.get("role")), []).append((str(s.get("name")), str(s.get("phone"))))
            sessions = [str(s["number"]) for s in (self.status.get("exam") or {}).get("sessions", [])]
            if op.verb == "export-list":  # a new file on the stick, named by the list
                offered = []
            return {
                "path": [(f"{p['kind_zh']}：{Path(p['path']).name}", p["path"]) for p in offered]
                + [
                    (f"U盘 {name}：{LIST_NAMES.get(k, k)}", str(Path(path) / f"{k}.xlsx"))
                    for name, path in sticks
                    for k in (LIST_NAMES if op.verb == "export-list" else ())
                ],
                "box_ip": [(f"{i['name']} {i['ip']}", i["ip"]) for i in self.interfaces],
                "order": [("按 IP", "ip"), ("按计算机名", "name"), ("按应答顺序", "reply")],
                "kind": [(zh, k) for k, zh in LIST_NAMES.items()],
                "direction": [("上移", "up"), ("下移", "down")],
                "action": [("远程开机", "wake"), ("重启", "reboot"), ("关机", "shutdown")],
                "purpose": [
                    ("延考", "late_start"),
                    ("迟到延考", "late_candidate"),
                    ("补时", "extra_time"),
                    ("重考", "reexam"),
                ],
                "folder": sticks,
                "dest": sticks,
                "session": [(f"第 {n} 场", n) for n in sessions],
                "admin_name": [(n, n) for n, _ in people["administrator"]],
                "admin_phone": [(f"{n} {t}", t) for n, t in people["administrator"]],
                "invigilator_name": [(n, n) for n, _ in people["invigilator"]],
                "invigilator_phone": [(f"{n} {t}", t) for n, t in people["invigilator"]],
                # The exam's own tables: the service takes nothing else.
                "code": [(f"{c} {vm.shortened(t, 14)}", c) for c, t in exam.get("violation_codes") or []]
                if op.verb == "violation-add"
                else [],
                "situation": [(t, t) for t in exam.get("situation_types") or []],
                "answer_dir": [(f"本机 {answers}", answers)],
            }

    return KioskApp


def run(
    home: str | None, kiosk: bool = True, size: tuple[int, int] | None = None, attach: bool = False
) -> int:
    """`kiosk run`: the engine and the touch app until the appliance is switched off; or,
    `attach`, the app on the `kiosk serve` already running in that home."""
    from kiosk import settings as settings_mod
    from kiosk.engine import Engine
    from kiosk.ui.remote import RemoteEngine

    configure_kivy(kiosk, size)
    settings = settings_mod.load(home=home)

    async def main() -> None:
        engine: Any = RemoteEngine(settings.home_path) if attach else Engine(settings)
        if not attach:
            await engine.start()
        app = build_app_class()(engine)
        # The window refuses to close; a supervisor's SIGTERM still stops the app (and
        # then the engine) in order.
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):  # Windows: no loop signal handlers
                loop.add_signal_handler(sig, app.stop)
        try:
            await app.run_async()
        finally:
            if not attach:
                await engine.stop()

    asyncio.run(main())
    return 0
