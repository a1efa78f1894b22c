"""The candidate answer app (考生作答系统): a kiosk window on the exam PC's asyncio
loop. It is an adapter: every touch becomes one `CandidateSession` call, and the
screen is redrawn from the session and the daemon's state, coalesced by one trigger."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from kiosk.common.kivyenv import configure_kivy, use_chinese_font
from stu_client import core
from stu_client.appapi import AppLink
from stu_client.candidate import ActionRefused, CandidateSession, find_sticks

log = logging.getLogger(__name__)

UI_DIR = Path(__file__).parent
TICK_S = 0.5  # clocks on screen; the box's time comes with the daemon's state
SAVE_DEBOUNCE_S = 0.8  # an answer is in the journal at most this long after the change
RETRY_S = 3.0  # an automatic submission the box did not take is tried again this often


def build_app_class() -> type:
    """The App class, made after configure_kivy() so that importing this module does not
    open a window."""
    from kivy.app import App
    from kivy.clock import Clock
    from kivy.core.window import Window
    from kivy.lang import Builder
    from kivy.properties import BooleanProperty, ListProperty, NumericProperty, ObjectProperty, StringProperty

    from stu_client.ui import widgets  # noqa: F401  (registers the kv classes)

    use_chinese_font()
    for kv in ("widgets.kv", "journey.kv", "answering.kv"):
        if str(UI_DIR / kv) not in Builder.files:
            Builder.load_file(str(UI_DIR / kv))

    class AnswerApp(App):
        title = "考生作答系统"
        step = StringProperty(core.Step.WAITING.value)
        seat = StringProperty("")
        box_time = StringProperty("")
        remaining = StringProperty("")
        remaining_low = BooleanProperty(False)
        save_line = StringProperty("")
        online = BooleanProperty(True)
        daemon_up = BooleanProperty(True)
        error = StringProperty("")
        cand_name = StringProperty("")
        cand_gender = StringProperty("")
        cand_id_type = StringProperty("")
        cand_id_number = StringProperty("")
        cand_no = StringProperty("")
        photo = ObjectProperty(None, allownone=True)  # the candidate's photo as a texture
        subjects_text = StringProperty("")
        lock_notice = StringProperty("")
        locked = BooleanProperty(False)
        seat_shown = StringProperty("")
        message = StringProperty("")
        logout_reason = StringProperty("")
        countdown = StringProperty("")
        may_submit = BooleanProperty(False)
        hand_raised = BooleanProperty(False)
        busy = BooleanProperty(False)
        question_no = NumericProperty(0)
        grid = ListProperty([])
        n_total = NumericProperty(0)
        n_answered = NumericProperty(0)
        n_unanswered = NumericProperty(0)
        n_flagged = NumericProperty(0)
        work_text = StringProperty("")

        def __init__(self, state_dir: Path, link: AppLink | None = None, **kw: Any) -> None:
            super().__init__(**kw)
            self.state_dir = Path(state_dir)
            self.link = link or AppLink(self.state_dir, on_state=self._on_state)
            if link is not None:
                link.on_state = self._on_state
            self.session = CandidateSession(self.state_dir, self.link)
            self.refresh = Clock.create_trigger(self._refresh, 0)
            self._save = Clock.create_trigger(lambda _dt: self.flush(), SAVE_DEBOUNCE_S)
            self._tasks: set[asyncio.Task[Any]] = set()
            self._remaining_before: float | None = None
            self._last_auto = 0.0  # auto-login tries, auto-answers
            self._last_submit = 0.0  # automatic submissions (at zero, unified collection)
            self._begun_for = ""
            self._started = False
            self.warnings: list[int] = []  # thresholds warned of (tests read it)

        # -- life cycle -------------------------------------------------------------

        def load_kv(self, filename: str | None = None) -> bool:
            return True  # the kv files are loaded once per process above, not by class name

        def build(self) -> Any:
            Window.bind(on_request_close=self._veto_close)
            root = Builder.load_string("AnswerRoot:")
            self._ticker = Clock.schedule_interval(lambda _dt: self.refresh(), TICK_S)
            return root

        def on_start(self) -> None:
            self.spawn(self.link.start())
            self.refresh()

        def on_stop(self) -> None:
            self._ticker.cancel()  # Kivy's clock outlives an app (tests start several)
            self.flush()
            self.session.close()

        async def run_async(self) -> None:
            try:
                await self.async_run(async_lib="asyncio")
            finally:
                await self.link.stop()
                for t in list(self._tasks):
                    t.cancel()
                await asyncio.gather(*self._tasks, return_exceptions=True)

        def _veto_close(self, *_args: Any) -> bool:
            # Closing the window is the box's (close_client): a candidate cannot quit.
            log.warning("window close refused: only the proctor box closes the answer app")
            return True

        # -- actions ------------------------------------------------------------------

        def spawn(self, coro: Awaitable[Any]) -> None:
            task = asyncio.ensure_future(coro)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        def act(self, coro: Awaitable[Any], after: Any = None) -> None:
            """Run a session call; its refusal is shown to the candidate, in Chinese."""

            async def run() -> None:
                self.busy, self.error = True, ""
                try:
                    await coro
                    if after is not None:
                        after()
                except ActionRefused as exc:
                    self.error = exc.zh
                finally:
                    self.busy = False
                    self.refresh()

            self.spawn(run())

        def do(self, fn: Any, *args: Any) -> Any:
            """A synchronous session call (journal writes), its refusal shown."""
            self.error = ""
            try:
                return fn(*args)
            except ActionRefused as exc:
                self.error = exc.zh
                return None
            finally:
                self.refresh()

        def login(self, admission_no: str) -> None:
            self.act(self.session.login(admission_no))

        def journey(self, event: str) -> None:
            self.do(self.session.record, event)

        def answer(self, value: Any) -> None:
            if self.session.current is None:
                return
            try:
                self.session.set_answer(self.session.current, value)
            except ValueError as exc:
                log.warning("answer refused: %s", exc)
                return
            self._save()
            self.refresh()

        def choose(self, letter: str) -> None:
            self.root.ids.screens.get_screen("answering").ids.panel.choose(letter)

        def collect_work(self) -> None:
            q = self.session.question()
            if q is None:
                return

            async def go() -> None:
                value = await asyncio.to_thread(self.session.snapshot_work, q)  # copies files
                self.session.set_answer(q.key, value)
                self.session.flush()

            self.act(go())

        def flush(self) -> None:
            try:
                self.session.flush()
            finally:
                self.refresh()

        def submit(self) -> None:
            self.act(self.session.submit())

        def raise_hand(self) -> None:
            self.act(self.session.raise_hand())

        def ack_lock(self) -> None:
            self.act(self.session.acknowledge_lock())

        def ack_message(self) -> None:
            self.act(self.session.acknowledge_message())

        def export(self) -> str:
            sticks = find_sticks()
            if not sticks:
                self.error = "未发现U盘，请插入U盘后重试"
                return ""
            path = self.do(self.session.export, sticks[0])
            return str(path or "")

        # -- redraw ---------------------------------------------------------------------

        def _on_state(self, _state: dict[str, Any]) -> None:
            self.refresh()

        def _refresh(self, _dt: float = 0) -> None:
            if self.root is None or App.get_running_app() is not self:
                return
            s, d = self.session, self.session.daemon
            self.daemon_up = self.link.connected
            self.online = bool(d.get("online")) and self.link.connected
            if d.get("admission_no", s.progress.admission_no) != s.progress.admission_no and (
                s.progress.admission_no and self.link.connected
            ):
                s.logged_out()  # forced out by the box (断点续考) or the PC initialised
            self.logout_reason = str(d.get("logout_reason") or "")
            now = s.box_now()
            self.box_time = _hm(now)
            self.seat = str(d.get("seat") or "")
            if self.seat and not self._started:
                self._started = True
                s.started(self.seat)
            self.seat_shown = str(d.get("seat_shown") or "")
            self.locked = bool(d.get("locked")) and not d.get("lock_acknowledged")
            self.lock_notice = str(d.get("notice") or "")
            self.message = "" if d.get("message_acknowledged") else str(d.get("message") or "")
            self.hand_raised = bool(d.get("hand_raised"))
            step = s.step()
            self.step = step.value
            view = s.progress.view
            for k in ("name", "gender", "id_type", "id_number"):
                setattr(self, f"cand_{k}", str(view.get(k) or ""))
            if self.cand_no != s.progress.admission_no:
                self.photo = _photo_texture(str(view.get("photo") or ""))
            self.cand_no = s.progress.admission_no
            self.subjects_text = "、".join(f"{x.name}（{x.duration_s // 60} 分钟）" for x in s.subjects)
            start = d.get("exam_start")
            self.countdown = core.clock_text(start - now) if isinstance(start, int | float) else ""
            remaining = s.remaining_s()
            self.remaining = core.clock_text(remaining) if remaining is not None else ""
            self.remaining_low = remaining is not None and remaining <= 5 * 60
            self.may_submit = s.may_submit()
            self.save_line = s.save_line()
            self.grid = [(q.key, m.value) for q, m in core.grid(s.questions(), s.answers, s.flags)]
            counts = core.counts(core.grid(s.questions(), s.answers, s.flags), s.answers)
            for k, v in counts.items():
                setattr(self, f"n_{k}", v)
            q = s.question()
            if q is not None and q.type == "operation":
                listing = s.answers.get(q.key) or {}
                names = "、".join(str(f.get("name")) for f in listing.get("files", []))
                self.work_text = f"已提交作品文件：{names}" if names else "尚未提交作品文件"
            keys = [k for k, _ in self.grid]
            self.question_no = keys.index(s.current) + 1 if s.current in keys else 0
            self._automatic(step, remaining)
            self.root.redraw()

        def _automatic(self, step: core.Step, remaining: float | None) -> None:
            """What happens without a touch: the start of the exam, the time warnings,
            the submission at zero, and mock mode's auto-login, auto-answer and unified
            collection."""
            s, d = self.session, self.session.daemon
            if self.busy:
                return
            now = s.clock()
            if step is core.Step.LOGIN and d.get("auto_login") and now - self._last_auto > RETRY_S:
                self._last_auto = now
                self.login("")
            if step is not core.Step.ANSWERING:
                self._remaining_before = remaining
                return
            if s.progress.view.get("state") != "in_exam" and self._begun_for != s.progress.admission_no:
                self._begun_for = s.progress.admission_no
                self.act(s.begin())
            for w in core.warnings_crossed(self._remaining_before, remaining):
                self.warnings.append(w)
                self.root.warn(f"距离考试结束还有{w // 60}分钟，请注意检查答案。")
            self._remaining_before = remaining
            due = (remaining is not None and remaining <= 0) or bool(d.get("collect_requested"))
            if due and now - self._last_submit > RETRY_S:
                self._last_submit = now
                self.submit()
            elif d.get("auto_answer") and not due and now - self._last_auto > 1.0:
                self._last_auto = now
                s.auto_answer_one()

    return AnswerApp


def _photo_texture(b64: str) -> Any:
    """The photo from the box's login answer as a texture; None without one or when the
    image cannot be read (the identity check then shows 无照片)."""
    import base64
    import binascii
    import io

    from kivy.core.image import Image as CoreImage

    if not b64:
        return None
    try:
        data = base64.b64decode(b64, validate=True)
        ext = "png" if data.startswith(b"\x89PNG") else "jpg"
        return CoreImage(io.BytesIO(data), ext=ext).texture
    except (binascii.Error, ValueError, Exception) as exc:  # a bad image must not stop the login
        log.warning("candidate photo unreadable: %s", exc)
        return None


def _hm(t: float) -> str:
    import time

    return time.strftime("%H:%M:%S", time.localtime(t))


def run(state_dir: Path, kiosk: bool = True, size: tuple[int, int] | None = None) -> int:
    """`stu-client app`: the answer app until the box closes it."""
    configure_kivy(kiosk, size, on_top=True)
    app = build_app_class()(state_dir)

    async def main() -> None:
        # close_client terminates the app: answers still waiting for their debounce go
        # to the journal first (on_stop flushes).
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):  # Windows: no loop signal handlers
                loop.add_signal_handler(sig, app.stop)
        await app.run_async()

    asyncio.run(main())
    return 0
