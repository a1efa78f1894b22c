"""The exam-PC daemon's own persistence: its journal file (the shared peewee models in a
SQLite database of its own) and its state.json (written atomically).

The shared models' `database` proxy is process-global, but the simulated fleet runs many
daemons in one process (and the box may run in it too), so a Journal never binds the
models: every query is bound to this journal's own database object (`query.bind(db)`)
and the tables are created through a SchemaManager bound to it."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from peewee import EXCLUDED, SchemaManager, SqliteDatabase, fn

from kiosk.common.fsutil import write_atomic
from kiosk.common.models import PRAGMAS, SHARED_MODELS, Answer, JournalEntry

log = logging.getLogger(__name__)

# The kind of the one row kept by wipe(): it holds the highest seq so that sequence
# numbers never go back after an initialisation (the box may remember them).
WIPED = "wiped"


class Journal:
    """One daemon's journal: answers and client events, in seq order, until acknowledged."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        # IMMEDIATE: the answer app may write the same file from another process, and
        # read-then-write transactions need the write lock from the start (PLATFORM-NOTES).
        self.db = SqliteDatabase(str(self.path), pragmas=PRAGMAS, timeout=10, lock_type="IMMEDIATE")

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db.connect(reuse_if_open=True)
        for model in SHARED_MODELS:
            SchemaManager(model, self.db).create_all(safe=True)

    def close(self) -> None:
        if not self.db.is_closed():
            self.db.close()

    def _last_seq(self) -> int:
        return JournalEntry.select(fn.MAX(JournalEntry.seq)).bind(self.db).scalar() or 0

    def _append(self, admission_no: str, kind: str, payload: dict[str, Any]) -> int:
        """Inside a transaction: the next seq, never reused (explicit, not SQLite's rowid)."""
        seq = self._last_seq() + 1
        JournalEntry.insert(
            seq=seq,
            admission_no=admission_no,
            kind=kind,
            payload=json.dumps(payload, ensure_ascii=False),
            created_at=time.time(),
            acked=False,
        ).bind(self.db).execute()
        return seq

    # -- writes ------------------------------------------------------------------------

    def save_answer(self, admission_no: str, subject: str, question: str, value: Any) -> tuple[int, int]:
        """The answer row and its journal entry in one FULL-synchronous transaction.

        Returns (journal seq, aseq); aseq continues above every answer of this candidate
        known locally, the box's returned at login included."""
        with self.db.atomic():
            top = (
                Answer.select(fn.MAX(Answer.seq))
                .where(Answer.admission_no == admission_no)
                .bind(self.db)
                .scalar()
            )
            aseq = (top or 0) + 1
            self._upsert_answer(admission_no, subject, question, value, aseq, time.time(), newer_only=False)
            seq = self._append(
                admission_no,
                "answer",
                {"subject": subject, "question": question, "value": value, "aseq": aseq},
            )
        return seq, aseq

    def record_event(self, admission_no: str, kind: str, detail: Any) -> int:
        with self.db.atomic():
            return self._append(admission_no, "event", {"kind": kind, "detail": detail})

    def store_box_answers(self, admission_no: str, answers: list[dict[str, Any]]) -> int:
        """The answers the box returned at login; newest-seq wins against local rows."""
        stored = 0
        with self.db.atomic():
            for a in answers:
                try:
                    subject, question = str(a["subject"]), str(a["question"])
                    aseq = int(a.get("seq", a.get("aseq")))
                except (KeyError, TypeError, ValueError):
                    log.warning("ignoring a malformed answer from the box: %r", a)
                    continue
                saved_at = a.get("saved_at")
                when = float(saved_at) if isinstance(saved_at, int | float) else time.time()
                self._upsert_answer(admission_no, subject, question, a.get("value"), aseq, when, True)
                stored += 1
        return stored

    def _upsert_answer(
        self,
        admission_no: str,
        subject: str,
        question: str,
        value: Any,
        aseq: int,
        when: float,
        newer_only: bool,
    ) -> None:
        q = Answer.insert(
            admission_no=admission_no,
            subject=subject,
            question=question,
            value=json.dumps(value, ensure_ascii=False),
            seq=aseq,
            saved_at=when,
        ).on_conflict(
            conflict_target=[Answer.admission_no, Answer.subject, Answer.question],
            update={
                Answer.value: EXCLUDED.value,
                Answer.seq: EXCLUDED.seq,
                Answer.saved_at: EXCLUDED.saved_at,
            },
            where=(Answer.seq < EXCLUDED.seq) if newer_only else None,
        )
        q.bind(self.db).execute()

    def mark_acked(self, upto: int) -> int:
        with self.db.atomic():
            return (
                JournalEntry.update(acked=True)
                .where((JournalEntry.seq <= upto) & ~JournalEntry.acked)
                .bind(self.db)
                .execute()
            )

    def wipe(self) -> None:
        """Delete every answer and entry (init), keeping only the highest seq as an acked
        marker row so that the next entry's seq is still above every one sent before."""
        with self.db.atomic():
            last = self._last_seq()
            Answer.delete().bind(self.db).execute()
            JournalEntry.delete().where(JournalEntry.seq < last).bind(self.db).execute()
            if last:
                JournalEntry.update(
                    admission_no="", kind=WIPED, payload="{}", created_at=time.time(), acked=True
                ).where(JournalEntry.seq == last).bind(self.db).execute()

    # -- reads -------------------------------------------------------------------------

    def unacked(self, limit: int = 200, after: int = 0) -> list[dict[str, Any]]:
        """The next entries to send, in seq order, as the journal frame carries them."""
        rows = (
            JournalEntry.select(
                JournalEntry.seq,
                JournalEntry.admission_no,
                JournalEntry.kind,
                JournalEntry.payload,
                JournalEntry.created_at,
            )
            .where(~JournalEntry.acked & (JournalEntry.seq > after))
            .order_by(JournalEntry.seq)
            .limit(limit)
            .dicts()
            .bind(self.db)
        )
        out = []
        for r in rows:
            try:
                payload = json.loads(r["payload"])
            except ValueError:
                payload = {"raw": r["payload"]}
            out.append({**r, "payload": payload})
        return out

    def acked_upto(self) -> int:
        """The highest seq such that it and every entry before it are acknowledged."""
        first_open = (
            JournalEntry.select(fn.MIN(JournalEntry.seq)).where(~JournalEntry.acked).bind(self.db).scalar()
        )
        return self._last_seq() if first_open is None else first_open - 1

    def last_seq(self) -> int:
        return self._last_seq()

    def answers(self, admission_no: str) -> dict[tuple[str, str], tuple[Any, int]]:
        """(subject, question) -> (value, aseq) of one candidate's latest answers."""
        rows = Answer.select().where(Answer.admission_no == admission_no).dicts().bind(self.db)
        return {(r["subject"], r["question"]): (json.loads(r["value"]), r["seq"]) for r in rows}

    def answer_rows(self, admission_no: str) -> list[dict[str, Any]]:
        """One candidate's latest answers as an answer package lists them."""
        rows = (
            Answer.select()
            .where(Answer.admission_no == admission_no)
            .order_by(Answer.subject, Answer.question)
            .dicts()
            .bind(self.db)
        )
        return [
            {
                "subject": r["subject"],
                "question": r["question"],
                "value": json.loads(r["value"]),
                "seq": r["seq"],
                "saved_at": r["saved_at"],
            }
            for r in rows
        ]

    def entries(self) -> list[dict[str, Any]]:
        """Every row, for tests and `stu-client journal`-like inspection."""
        rows = JournalEntry.select().order_by(JournalEntry.seq).dicts().bind(self.db)
        return [dict(r) for r in rows]


@dataclass
class DaemonState:
    """What the daemon must remember across restarts (state.json)."""

    last_cmd_seq: int = 0
    locked: bool = False
    notice: str = ""
    lock_acknowledged: bool = False  # the candidate confirmed this lock's notice in the app
    seat: str = ""  # the seat number the box gave at welcome
    seat_shown: str = ""  # the seat number on screen now; "" = hidden
    app_running: bool = False
    auto_login: bool = False
    auto_answer: bool = False
    admission_no: str = ""  # the candidate logged in on this PC
    room_code: str = ""  # from the login answer: what an exported answer package names
    package_key: str = ""  # base64 of the room's answer-package key, from the login answer
    message: str = ""
    # +1 at every message command, never reset: an app that acknowledged message n cannot
    # mistake a later message for it, an initialisation included.
    message_id: int = 0
    message_acknowledged: bool = False
    login_allowed: bool = False
    session: Any = None
    exam_start: float | None = None
    deadline: float | None = None
    deadline_for: str = ""
    hand_raised: bool = False
    collect_requested: bool = False
    logout_reason: str = ""

    @classmethod
    def load(cls, path: Path) -> DaemonState:
        if not path.exists():
            return cls()
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(raw, dict):
                raise ValueError("not an object")
        except (OSError, ValueError) as exc:
            # Written atomically, so this is a damaged disk or a hand edit: start clean and
            # let the box's welcome restore the lock rather than refusing to run.
            log.error("state file %s is unreadable (%s); starting from defaults", path, exc)
            return cls()
        known = {f.name for f in fields(cls)}
        state = cls(**{k: v for k, v in raw.items() if k in known})
        if not isinstance(state.last_cmd_seq, int):
            state.last_cmd_seq = 0
        if not isinstance(state.message_id, int) or isinstance(state.message_id, bool):
            state.message_id = 0
        return state

    def save(self, path: Path) -> None:
        write_atomic(path, json.dumps(asdict(self), ensure_ascii=False, indent=1).encode("utf-8"))

    def forget_candidate(self) -> None:
        """Init: the candidate's state goes; the room's (lock, seat, last command) stays."""
        self.admission_no = ""
        self.room_code = ""
        self.package_key = ""
        self.message = ""
        self.message_acknowledged = False
        self.auto_login = False
        self.auto_answer = False
        self.login_allowed = False
        self.session = None
        self.exam_start = None
        self.deadline = None
        self.deadline_for = ""
        self.hand_raised = False
        self.collect_requested = False
        self.logout_reason = ""
