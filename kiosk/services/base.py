"""What every part of the room service shares: the database, the clock, the ports,
one transaction helper that writes the audit event with the change, and lookups."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from peewee import SqliteDatabase

from kiosk.common.clock import Clock
from kiosk.common.crypto import Identity
from kiosk.core.candidate import CandidateState, CandidateView, Flags, RoomPhase
from kiosk.core.errors import Refused
from kiosk.core.policy import Policy
from kiosk.core.sitelink import STATE_ZH, Seen, link_state
from kiosk.services.ports import Ports, SiteLink
from kiosk.settings import Settings
from kiosk.store import events
from kiosk.store.models import (
    Candidate,
    Event,
    Exam,
    Resume,
    RoomConfig,
    Seat,
    Session,
    SiteTrust,
    User,
    Violation,
)

log = logging.getLogger(__name__)

Listener = Callable[[Event], None]
T = TypeVar("T")


def loads(text: str) -> Any:
    return json.loads(text) if text else None


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True)


class ServiceBase:
    def __init__(self, db: SqliteDatabase, clock: Clock, ports: Ports, settings: Settings) -> None:
        self.db = db
        self.clock = clock
        self.ports = ports
        self.settings = settings
        self.home = Path(settings.home)
        self._listeners: list[Listener] = []
        self._pending: list[events.NewEvent] = []  # events of the open transaction
        self._who: tuple[str, str] | None = None  # operator and box IP of the open transaction
        self.identity: Identity | None = None  # the box's key pair (bootstrap sets it)
        self._site_seen: Seen | None = None  # the last call to the site or probe of it

    # -- events and transactions -------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        """Screens and the room network learn of changes from events, after commit."""
        self._listeners.append(listener)

    @contextmanager
    def tx(self) -> Iterator[None]:
        """One atomic change; its events commit with it and are announced afterwards.

        A nested tx is a savepoint: when it rolls back, so do the events it wrote.
        Events are buffered and written in one statement just before the commit."""
        outer = not self.db.in_transaction()
        mark = len(self._pending)
        written: list[Event] = []
        try:
            with self.db.atomic():
                yield
                if outer:
                    written = events.append_many(self._pending)
        except BaseException:
            del self._pending[mark:]
            raise
        finally:
            if outer:
                self._who = None
        if outer:
            self._pending.clear()
            for ev in written:
                for listener in self._listeners:
                    try:
                        listener(ev)
                    except Exception:  # a broken screen must not break the exam
                        log.exception("event listener failed for %s", ev.kind)

    def event(
        self,
        kind: str,
        *,
        ip: str | None = None,
        seat: int | None = None,
        admission_no: str = "",
        operator: str | None = None,
        **payload: Any,
    ) -> None:
        if not self.db.in_transaction():
            raise RuntimeError("events are written inside the transaction of their change")
        if self._who is None and (operator is None or ip is None):  # once per transaction
            self._who = (self.operator(), self.box_ip())
        self._pending.append(
            events.NewEvent(
                kind,
                ts=self.now(),
                operator=self._who[0] if operator is None else operator,
                ip=self._who[1] if ip is None else ip,
                seat=seat,
                admission_no=admission_no,
                payload=payload,
            )
        )

    def now(self) -> float:
        return self.clock.now()

    def operator(self) -> str:
        """Who acts at the box: the administrator entered for the open session, else admin."""
        s = (
            Session.select(Session.admin_name)
            .where(Session.entered_at.is_null(False), Session.ended_at.is_null())
            .first()
        )
        return s.admin_name if s is not None and s.admin_name else "admin"

    # -- lookups -----------------------------------------------------------------

    def config(self) -> RoomConfig | None:
        return RoomConfig.get_or_none(RoomConfig.id == 1)

    def box_ip(self) -> str:
        cfg = self.config()
        return cfg.box_ip if cfg else ""

    def require_config(self) -> RoomConfig:
        cfg = self.config()
        if cfg is None:
            raise Refused("not_configured", "请先完成参数配置", "room parameters are not set")
        return cfg

    def exam(self) -> Exam | None:
        return Exam.get_or_none()

    def require_exam(self) -> Exam:
        exam = self.exam()
        if exam is None:
            raise Refused("no_exam_data", "尚未载入考务数据", "no exam data loaded")
        return exam

    @staticmethod
    def site_cert() -> bytes:
        """The pinned exam-site certificate: every package from the site is checked with it."""
        pinned = SiteTrust.get_or_none()
        if pinned is None:
            raise Refused(
                "site_not_pinned",
                "请先导入考点信息表（或向考点注册），再载入考务数据",
                "no site certificate pinned yet",
            )
        return pinned.cert_pem.encode()

    def site(self, site_ip: str = "") -> SiteLink:
        """The exam site of the parameters (or at `site_ip`), pinned once a sheet is;
        whether each call reached it is kept for the link state."""
        ip = site_ip or self.require_config().site_ip
        pinned = SiteTrust.get_or_none()
        link = self.ports.site(ip, pinned.cert_pem.encode() if pinned else None)
        return _Watched(link, lambda ok: self.site_seen(ip, ok))

    # -- the site link's state (the status strip) ------------------------------------

    def site_seen(self, site_ip: str, ok: bool) -> None:
        """The site at `site_ip` answered (or not), just now. Touches no database: the
        engine's probe calls it from its own thread."""
        before = self._site_seen
        self._site_seen = Seen(ok, time.monotonic(), site_ip)
        if before is None or (before.ok, before.site_ip) != (ok, site_ip):
            log.info("exam site %s %s", site_ip, "reachable" if ok else "not reachable")

    def site_probe_target(self) -> tuple[str, bytes | None] | None:
        """What the periodic probe tries: the configured site's address and pinned
        certificate; None in single-machine mode."""
        cfg = self.config()
        if cfg is None or not cfg.site_mode or not cfg.site_ip:
            return None
        pinned = SiteTrust.get_or_none()
        return cfg.site_ip, pinned.cert_pem.encode() if pinned else None

    def site_link(self) -> dict[str, Any]:
        """The link to the site as last seen: off / connected / unreachable / unknown."""
        cfg = self.config()
        mode, ip = bool(cfg and cfg.site_mode), cfg.site_ip if cfg else ""
        state = link_state(mode, ip, self._site_seen, time.monotonic(), self.settings.site_link_stale_s)
        return {"site_mode": mode, "site_ip": ip, "state": state, "state_zh": STATE_ZH[state]}

    def answer_root(self) -> Path:
        """The answer folder of the parameters: the operation tasks' files live there."""
        return Path(self.require_config().answer_dir)

    def exam_package_path(self, sha256: str) -> Path:
        return self.home / "packages" / f"exam-{sha256[:16]}.json"

    def policy(self) -> Policy:
        exam = self.exam()
        return Policy.from_dict(loads(exam.policy)) if exam else Policy()

    def admin(self) -> User:
        return User.get(User.username == "admin")

    def current_session(self) -> Session:
        """The session entered for the exam (考中), or a refusal."""
        s = (
            Session.select()
            .where(Session.entered_at.is_null(False), Session.ended_at.is_null())
            .order_by(Session.entered_at.desc())
            .first()
        )
        if s is None:
            raise Refused("no_session", "请先进入考试场次", "no exam session entered")
        return s

    def session_of(self, number: int | None) -> Session:
        """The session named, else the one being run, else (after the exam: 考后, where the
        lists are exported) the one that ended last."""
        if number is not None:
            return self.get_session(number)
        try:
            return self.current_session()
        except Refused:
            last = (
                Session.select()
                .where(Session.ended_at.is_null(False))
                .order_by(Session.ended_at.desc())
                .first()
            )
            if last is None:
                raise
            return last

    def get_session(self, number: int) -> Session:
        s = Session.get_or_none(Session.number == number)
        if s is None:
            raise Refused("unknown_session", f"场次 {number} 不存在", f"unknown session {number}")
        return s

    def get_candidate(self, admission_no: str, session: Session | None = None) -> Candidate:
        c = Candidate.get_or_none(Candidate.admission_no == str(admission_no).strip())
        if c is None or (session is not None and c.session_id != session.id):
            raise Refused(
                "unknown_candidate",
                f"本场次没有准考证号为 {admission_no} 的考生",
                f"no candidate {admission_no} in this session",
            )
        return c

    def get_candidates(self, admission_nos: Sequence[str], session: Session) -> list[Candidate]:
        """The candidates named, in the order given, duplicates dropped: one query."""
        wanted = list(dict.fromkeys(str(a).strip() for a in admission_nos))
        found = {
            c.admission_no: c
            for c in Candidate.select().where(
                Candidate.admission_no.in_(wanted), Candidate.session == session
            )
        }
        for a in wanted:
            if a not in found:
                self.get_candidate(a, session)  # refuses, naming the candidate
        return [found[a] for a in wanted]

    def get_seat(self, number: int) -> Seat:
        seat = Seat.get_or_none(Seat.number == number)
        if seat is None:
            raise Refused("unknown_seat", f"机位 {number:03d} 不存在", f"no seat {number}")
        return seat

    def seat_by_ip(self, ip: str) -> Seat | None:
        return Seat.get_or_none(Seat.ip == ip)

    def phase(self, session: Session) -> RoomPhase:
        return RoomPhase(
            login_allowed=session.login_allowed_at is not None,
            actual_start=session.actual_start,
            policy=self.policy(),
        )

    @staticmethod
    def marked(ids: Sequence[int]) -> tuple[set[int], set[int]]:
        """Of these candidates, those with a violation standing and those resumed."""
        violated = {
            v.candidate_id
            for v in Violation.select(Violation.candidate).where(
                Violation.candidate.in_(list(ids)), Violation.cancelled_at.is_null()
            )
        }
        resumed = {
            r.candidate_id for r in Resume.select(Resume.candidate).where(Resume.candidate.in_(list(ids)))
        }
        return violated, resumed

    @classmethod
    def views(cls, cands: Sequence[Candidate]) -> list[CandidateView]:
        violated, resumed = cls.marked([c.id for c in cands])
        return [
            CandidateView(
                state=CandidateState(c.state),
                flags=Flags(
                    violation=c.id in violated,
                    resumed=c.id in resumed,
                    extra_time=c.extra_s > 0,
                    locked=c.locked,
                    online=c.online,
                ),
                resume_pending=c.resume_pending,
            )
            for c in cands
        ]

    @classmethod
    def view(cls, c: Candidate) -> CandidateView:
        return cls.views([c])[0]


_NOT_REACHED = ("site_offline", "site_cert_mismatch")  # a link to another site is none


class _Watched:
    """A site link that reports whether each call reached the site: a call that
    returned, or that the site refused with its own answer, reached it; `site_offline`
    (or a server without the pinned key) did not; `reachable()` reports what it found."""

    def __init__(self, link: SiteLink, seen: Callable[[bool], None]) -> None:
        self._link, self._seen = link, seen

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            out = fn(*args)
        except Refused as exc:
            self._seen(exc.code not in _NOT_REACHED)
            raise
        self._seen(True)
        return out

    def reachable(self) -> bool:
        ok = self._link.reachable()
        self._seen(ok)
        return ok

    def register(self, room_code: str, registration_code: str) -> bytes:
        return self._call(self._link.register, room_code, registration_code)

    def download_exam(self, room_code: str) -> bytes:
        return self._call(self._link.download_exam, room_code)

    def fetch_authorisation(self, room_code: str, session: int) -> bytes:
        return self._call(self._link.fetch_authorisation, room_code, session)

    def report_seal(self, room_code: str, report: dict[str, Any]) -> None:
        return self._call(self._link.report_seal, room_code, report)

    def upload_results(
        self,
        room_code: str,
        path: Path,
        progress: Callable[[int, int], None],
        files: Sequence[tuple[Path, str]] = (),
    ) -> dict[str, Any]:
        return self._call(self._link.upload_results, room_code, path, progress, files)
