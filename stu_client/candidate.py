"""What the answer app does for the candidate, with no Kivy: the one service layer the
screens call. Answers and journey events go straight into the daemon's journal (so a
save is durable even while the daemon is down); requests to the box and the box's
state come through the daemon's local API (`stu_client.appapi`).

What must survive a crash of the app is on disk: the journal (answers, the journey's
events) and `app-state.json` (the box's login answer, the question on screen, the
flags), written atomically."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiosk.common.errors import Refused
from kiosk.common.fsutil import write_atomic
from kiosk.common.models import JournalEntry
from stu_client import core
from stu_client.appapi import AppApiError, AppLink
from stu_client.export import export_answer_package
from stu_client.localstore import Journal
from stu_client.workfiles import snapshot

log = logging.getLogger(__name__)

APP_STATE = "app-state.json"
MAX_WORK_FILES = 50
MAX_WORK_BYTES = 200 * 1024**2


class ActionRefused(Exception):
    """An action the candidate tried that cannot happen now; `zh` is shown to them."""

    def __init__(self, code: str, zh: str) -> None:
        super().__init__(f"{code}: {zh}")
        self.code, self.zh = code, zh


@dataclass
class Saved:
    """The answer app's own file (app-state.json)."""

    admission_no: str = ""
    view: dict[str, Any] = field(default_factory=dict)
    current: list[str] = field(default_factory=list)  # [subject, question]
    flags: list[list[str]] = field(default_factory=list)
    submitted: bool = False


class CandidateSession:
    def __init__(self, state_dir: Path, link: AppLink, clock: Callable[[], float] = time.time) -> None:
        self.state_dir = Path(state_dir)
        self.link = link
        self.clock = clock
        self.journal = Journal(self.state_dir / "journal.db")
        self.journal.open()
        self.progress = core.Progress()
        self.subjects: tuple[core.Subject, ...] = ()
        self.answers: dict[tuple[str, str], Any] = {}
        self.flags: set[tuple[str, str]] = set()
        self.current: tuple[str, str] | None = None
        self.pending: dict[tuple[str, str], Any] = {}
        self.saved_seq = 0
        self.last_error = ""
        self._tasks: set[asyncio.Task[None]] = set()
        self._restore()

    def close(self) -> None:
        self.journal.close()

    # -- what the screens read --------------------------------------------------------

    @property
    def daemon(self) -> dict[str, Any]:
        return self.link.state

    def box_now(self) -> float:
        offset = self.daemon.get("box_offset")
        return self.clock() + (offset if isinstance(offset, int | float) else 0.0)

    def step(self) -> core.Step:
        return core.step(self.daemon, self.progress, self.box_now())

    def remaining_s(self) -> float | None:
        return core.remaining_s(self.daemon, self.progress, self.box_now())

    def may_submit(self) -> bool:
        earliest = core.earliest_submit(self.progress.view, self.daemon)
        return earliest is not None and self.box_now() >= earliest

    def questions(self) -> list[core.Question]:
        return [q for s in self.subjects for q in s.questions]

    def question(self, key: tuple[str, str] | None = None) -> core.Question | None:
        key = key or self.current
        return next((q for q in self.questions() if q.key == key), None)

    def save_line(self) -> str:
        acked = self.daemon.get("acked_upto")
        return core.save_status(bool(self.pending), self.saved_seq, acked if isinstance(acked, int) else 0)

    # -- the journey ------------------------------------------------------------------

    async def login(self, admission_no: str) -> None:
        admission_no = admission_no.strip().upper()
        if admission_no and not (admission_no.isalnum() and len(admission_no) <= 32):
            raise ActionRefused("bad_admission_no", "准考证号只能由数字和字母组成")
        view = await self._request("login", admission_no=admission_no)
        try:
            subjects = core.parse_paper(view)
        except core.PaperError as exc:
            log.error("the box's paper cannot be shown: %s", exc)
            raise ActionRefused("bad_paper", "试卷数据有误，请举手示意监考员") from exc
        who = str(view.get("admission_no") or admission_no)
        self._start(who, view, subjects)
        self._save()

    def _start(self, admission_no: str, view: dict[str, Any], subjects: tuple[core.Subject, ...]) -> None:
        same = self.progress.admission_no == admission_no
        self.progress = core.Progress(
            admission_no=admission_no, view=view, done=self._done_events(admission_no)
        )
        self.subjects = subjects
        self.answers = {k: v for k, (v, _seq) in self.journal.answers(admission_no).items()}
        if not same:
            self.flags, self.current, self.pending, self.saved_seq = set(), None, {}, 0
        keys = [q.key for q in self.questions()]
        if self.current not in keys:
            self.current = keys[0] if keys else None

    def _done_events(self, admission_no: str) -> set[str]:
        rows = (
            JournalEntry.select(JournalEntry.payload)
            .where((JournalEntry.kind == "event") & (JournalEntry.admission_no == admission_no))
            .bind(self.journal.db)
        )
        done = set()
        for (payload,) in rows.tuples():
            with contextlib.suppress(ValueError, AttributeError):
                done.add(json.loads(payload).get("kind"))
        return done & set(core.JOURNEY_EVENTS)

    def started(self, seat: str) -> None:
        """The app came up at this seat (the candidate log's 启动 and 机位号 lines)."""
        self.journal.record_event("", "client_started", {})
        self.journal.record_event("", "client_seat", {"seat": seat})
        self._wake()

    def record(self, kind: str, **detail: Any) -> None:
        """A step of the journey: in the journal (it reaches the box's candidate log)."""
        self.journal.record_event(self.progress.admission_no, kind, detail)
        if kind in core.JOURNEY_EVENTS:
            self.progress.done.add(kind)
        self._wake()

    async def begin(self) -> None:
        """我已阅读 once the exam has started on the box: 已登录 → 考试中."""
        if self.progress.view.get("state") == "in_exam":
            return
        try:
            view = await self._request("begin")
        except ActionRefused as exc:
            if exc.code != "already_in_exam":  # a begin whose answer the app did not live to see
                raise
            self.last_error = ""
            view = {"state": "in_exam"}
        self.progress.view = {**self.progress.view, **view}
        self._save()

    async def submit(self) -> None:
        self.flush()
        try:
            await self._request("submit")
        except ActionRefused as exc:
            if exc.code != "already_submitted":  # unified collection, or an answer not seen
                raise
            self.last_error = ""
        self.progress.submitted = True
        self._save()

    async def raise_hand(self) -> None:
        await self._request("raise_hand")

    async def acknowledge_lock(self) -> None:
        await self._request("ack_lock")

    async def acknowledge_message(self) -> None:
        await self._request("ack_message")

    def export(self, folder: Path) -> Path:
        """导出作答包 from the app: reads only the state folder, like the daemon does."""
        self.flush()
        try:
            return export_answer_package(self.state_dir, Path(folder))
        except Refused as exc:
            raise ActionRefused(exc.code, exc.zh) from exc

    def logged_out(self) -> None:
        """The box forced this candidate out (break-resume) or the PC was initialised."""
        self.flush()
        self.progress = core.Progress()
        self.subjects, self.answers, self.flags, self.current = (), {}, set(), None
        self.saved_seq = 0
        self._save()

    # -- answering --------------------------------------------------------------------

    def go(self, key: tuple[str, str]) -> None:
        if self.question(key) is not None:
            self.current = key
            self._save()

    def move(self, delta: int) -> None:
        keys = [q.key for q in self.questions()]
        if self.current in keys:
            i = min(max(keys.index(self.current) + delta, 0), len(keys) - 1)
            self.go(keys[i])

    def toggle_flag(self) -> None:
        if self.current is not None:
            self.flags.symmetric_difference_update({self.current})
            self._save()

    def set_answer(self, key: tuple[str, str], value: Any) -> None:
        """Kept in memory and marked pending; `flush()` (debounced by the screen, ≤ 1 s)
        makes it durable."""
        q = self.question(key)
        if q is None:
            raise ActionRefused("no_question", "没有这道题")
        value = core.normalise(q, value)
        if self.answers.get(key) == value:
            return
        self.answers[key] = value
        self.pending[key] = value

    def flush(self) -> int:
        """Every pending answer in the journal (one FULL commit each); the last seq."""
        if not self.pending or not self.progress.admission_no:
            return self.saved_seq
        for (subject, question), value in list(self.pending.items()):
            seq, _aseq = self.journal.save_answer(self.progress.admission_no, subject, question, value)
            self.saved_seq = seq
            del self.pending[(subject, question)]
        self._wake()
        return self.saved_seq

    def work_folder(self, q: core.Question) -> Path:
        """Where the candidate saves an operation task's work; the material is beside it."""
        folder = self.state_dir / "work" / self.progress.admission_no / q.subject / q.id
        folder.mkdir(parents=True, exist_ok=True)
        material = folder.parent / f"{q.id}-材料"
        if q.files and not material.exists():
            material.mkdir()
            for name, content in q.files:
                if core.safe_file_name(name):
                    (material / name).write_text(content, encoding="utf-8")
        return folder

    def collect_work(self, q: core.Question) -> dict[str, Any]:
        """The work folder's files as the operation task's answer (names, sizes, hashes).

        Each file is first copied into the PC's snapshot store (`<state>/files/<sha256>`,
        durable) and the listing names the copies: what the export and the upload to the
        box send is what was collected, whatever the candidate does to the folder later."""
        value = self.snapshot_work(q)
        self.set_answer(q.key, value)
        self.flush()
        return value

    def snapshot_work(self, q: core.Question) -> dict[str, Any]:
        """The copying half of `collect_work`: files only, no journal (the app runs it off
        its UI loop; a large work folder takes a while)."""
        folder = self.work_folder(q)
        found, total = [], 0
        for p in sorted(folder.iterdir()):
            if not p.is_file():
                continue
            if not core.safe_file_name(p.name):
                raise ActionRefused("bad_file_name", f"文件名不合规：{p.name}（请改名后再提交）")
            total += p.stat().st_size
            if len(found) >= MAX_WORK_FILES or total > MAX_WORK_BYTES:
                raise ActionRefused("work_too_large", "作品文件过多或过大，请删除无关文件")
            found.append(p)
        files, total = [], 0
        for p in found:
            try:
                size, sha256 = snapshot(self.state_dir, p)
            except OSError as exc:
                log.error("snapshot of %s failed: %s", p, exc)
                zh = f"保存作品文件「{p.name}」失败，请重试或举手示意监考员"
                raise ActionRefused("work_copy_failed", zh) from exc
            total += size
            if total > MAX_WORK_BYTES:  # grown while being copied
                raise ActionRefused("work_too_large", "作品文件过多或过大，请删除无关文件")
            files.append({"name": p.name, "size": size, "sha256": sha256})
        return {"files": files}

    def auto_answer_one(self) -> bool:
        """Mock mode: one unanswered objective question gets an answer; False when none is left."""
        for q in self.questions():
            if q.type in ("single", "multiple", "judge") and not core.is_answered(q, self.answers.get(q.key)):
                value: Any = {"single": "A", "multiple": ["A", "B"], "judge": True}[q.type]
                self.set_answer(q.key, value)
                self.flush()
                return True
        return False

    # -- plumbing ---------------------------------------------------------------------

    async def _request(self, op: str, **args: Any) -> dict[str, Any]:
        try:
            result = await self.link.request(op, **args)
        except AppApiError as exc:
            self.last_error = exc.zh or exc.code
            raise ActionRefused(exc.code, exc.zh or "操作失败") from exc
        self.last_error = ""
        return result

    def _wake(self) -> None:
        # The daemon polls the journal anyway; this only makes the sync immediate.
        if not self.link.connected:
            return
        try:
            task = asyncio.get_running_loop().create_task(self._quiet_wake())
        except RuntimeError:  # no loop (a test of the session alone)
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _quiet_wake(self) -> None:
        with contextlib.suppress(AppApiError):
            await self.link.request("wake")

    def _save(self) -> None:
        saved = Saved(
            admission_no=self.progress.admission_no,
            view=self.progress.view,
            current=list(self.current or []),
            flags=sorted([list(k) for k in self.flags]),
            submitted=self.progress.submitted,
        )
        write_atomic(self.state_dir / APP_STATE, json.dumps(saved.__dict__, ensure_ascii=False).encode())

    def _restore(self) -> None:
        try:
            raw = json.loads((self.state_dir / APP_STATE).read_text(encoding="utf-8"))
            saved = Saved(**{k: raw[k] for k in Saved.__dataclass_fields__ if k in raw})
            subjects = core.parse_paper(saved.view) if saved.admission_no else ()
        except FileNotFoundError:
            return
        except (OSError, ValueError, TypeError, core.PaperError) as exc:
            log.error("app-state.json unreadable (%s): the candidate logs in again", exc)
            return
        if not saved.admission_no:
            return
        self._start(saved.admission_no, saved.view, subjects)
        self.flags = {(f[0], f[1]) for f in saved.flags if isinstance(f, list) and len(f) == 2}
        if len(saved.current) == 2 and self.question((saved.current[0], saved.current[1])):
            self.current = (saved.current[0], saved.current[1])
        self.progress.submitted = bool(saved.submitted)


def find_sticks(roots: str | None = None) -> list[Path]:
    """USB sticks for 导出作答包, as the platform backend finds them: on Linux mount points
    under the mount roots (/media, /run/media, /mnt), on Windows the removable drives.
    `STU_USB_ROOTS` (comma-separated) gives other roots; with `STU_USB_FOLDERS=1`
    (tests, and PCs where sticks are folders) every folder under a root is one."""
    from stu_client.platform import system_backend  # psutil and netifaces: only when asked

    backend = system_backend()
    roots_text = roots if roots is not None else os.environ.get("STU_USB_ROOTS")
    bases = [Path(r) for r in roots_text.split(",") if r] if roots_text is not None else None
    if os.environ.get("STU_USB_FOLDERS") == "1":
        return sorted(
            p
            for b in (bases if bases is not None else backend.usb_roots())
            if b.is_dir()
            for p in b.iterdir()
            if p.is_dir() and os.access(p, os.W_OK)
        )
    return backend.usb_sticks(bases)
