"""During the exam (考中管理), the session flow: entering a session, starting the
answer apps, authorisation, allow login, allow start, challenges and codes."""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.common.packages import open_paper
from kiosk.common.signed import read_authorisation, read_exam_package
from kiosk.core import codes, timeline
from kiosk.core.codes import Purpose
from kiosk.core.errors import Refused
from kiosk.services.base import ServiceBase, dumps
from kiosk.services.before import read_package_file
from kiosk.store.models import (
    Candidate,
    Challenge,
    ImportedPackage,
    Paper,
    SealResult,
    Seat,
    Session,
    SessionAuthorisation,
    Subject,
    UsedCode,
)

MAX_CODE_FAILURES = 5


@dataclass(frozen=True)
class CodeGrant:
    purpose: Purpose
    code: str
    challenge_id: int
    challenge: str
    amount: int
    admission_no: str


class DuringExam(ServiceBase):
    def session_enter(
        self,
        session: int,
        admin_name: str,
        admin_phone: str,
        invigilator_name: str,
        invigilator_phone: str,
    ) -> dict[str, Any]:
        cfg = self.require_config()
        self.require_exam()
        seal = SealResult.select().order_by(SealResult.id.desc()).first()
        if seal is None or not seal.passed:
            raise Refused("seal_not_passed", "封场检测未通过，不能进入考中管理", "seal check has not passed")
        if cfg.site_mode and not self.site().reachable():
            raise Refused(
                "site_offline",
                "连接考点机异常：考点模式下只能查看考前页面，请检查考点机后重试",
                "site mode and the exam site is not reachable",
            )
        for label, value, limit in (
            ("系统管理员姓名", admin_name, 20),
            ("监考员姓名", invigilator_name, 20),
        ):
            if not 1 <= len(value.strip()) <= limit:
                raise Refused("bad_staff", f"请填写{label}", f"{label} missing")
        for label, value in (("系统管理员电话", admin_phone), ("监考员电话", invigilator_phone)):
            if not (value.strip().isdigit() and 7 <= len(value.strip()) <= 15):
                raise Refused("bad_staff", f"{label}应为7到15位数字", f"bad phone for {label}")
        with self.tx():
            s = self.get_session(session)
            if s.ended_at is not None:
                raise Refused("session_ended", f"场次 {session} 已结束", f"session {session} ended")
            other = (
                Session.select()
                .where(
                    Session.entered_at.is_null(False),
                    Session.ended_at.is_null(),
                    Session.id != s.id,
                )
                .first()
            )
            if other is not None:
                raise Refused(
                    "other_session_open",
                    f"场次 {other.number} 尚未结束考试",
                    f"session {other.number} is still open",
                )
            s.admin_name, s.admin_phone = admin_name.strip(), admin_phone.strip()
            s.invigilator_name, s.invigilator_phone = (
                invigilator_name.strip(),
                invigilator_phone.strip(),
            )
            s.entered_at = s.entered_at or self.now()
            s.save()
            self.event(
                "session_entered",
                session=s.number,
                admin=s.admin_name,
                invigilator=s.invigilator_name,
            )
        return {"session": s.number, "name": s.name}

    def _seat_ips(self, admission_nos: Sequence[str] | None = None) -> list[str]:
        if admission_nos is None:
            return [s.ip for s in Seat.select().order_by(Seat.number)]
        session = self.current_session()
        return [c.ip for c in self.get_candidates(admission_nos, session) if c.ip]

    def start_clients(self) -> dict[str, Any]:
        session = self.current_session()
        sent = self.ports.seats.send(self._seat_ips(), "start_client", {"session": session.number})
        with self.tx():
            self.event("clients_started", ok=len(sent.ok), failed=sent.failed)
        return {"ok": list(sent.ok), "failed": sent.failed}

    def close_clients(self) -> dict[str, Any]:
        sent = self.ports.seats.send(self._seat_ips(), "close_client", {})
        with self.tx():
            self.event("clients_closed", ok=len(sent.ok), failed=sent.failed)
        return {"ok": list(sent.ok), "failed": sent.failed}

    # -- authorisation ---------------------------------------------------------------

    def authorise(self, path: str | None = None) -> dict[str, Any]:
        """Take the session authorisation (from the site, or a file) and open its papers."""
        cfg = self.require_config()
        session = self.current_session()
        if path:
            raw, source = read_package_file(path, 1024**2, "考试授权"), Path(path).name
        else:
            if not cfg.site_mode:
                raise Refused("not_site_mode", "未开启考点模式，请从U盘导入考试授权", "site mode is off")
            raw, source = self.site().fetch_authorisation(cfg.room_code, session.number), "site"
        cert = self.site_cert()
        auth = read_authorisation(raw, cert)
        if auth.room_code != cfg.room_code:
            raise Refused("foreign_room", f"授权属于考场 {auth.room_code}，不是本考场", "foreign room")
        if auth.session != session.number:
            raise Refused(
                "wrong_session",
                f"授权属于第 {auth.session} 场次，当前为第 {session.number} 场次",
                "authorisation for another session",
            )
        now = self.now()
        if not auth.valid_from <= now <= auth.valid_until:
            raise Refused("outside_window", "不在考试授权的有效时间内", "outside the authorisation window")
        exam = self.require_exam()
        package = read_exam_package(self.exam_package_path(exam.package_sha256).read_bytes(), cert)
        sdata = next(s for s in package.sessions if s.number == session.number)
        opened = [(p.subject, open_paper(auth.key, cfg.room_code, session.number, p)) for p in sdata.papers]
        with self.tx():
            if session.authorised_at is not None:
                return {
                    "already": True,
                    "papers": Paper.select().where(Paper.session == session).count(),
                }
            for subject_code, questions in opened:
                Paper.create(
                    session=session,
                    subject=Subject.get(Subject.code == subject_code),
                    questions=dumps(questions),
                    question_count=len(questions),
                )
            SessionAuthorisation.create(
                session=session,
                key=auth.key,
                valid_from=auth.valid_from,
                valid_until=auth.valid_until,
                imported_at=now,
            )
            ImportedPackage.insert(
                kind="authorisation",
                sha256=hashlib.sha256(raw).hexdigest(),
                name=source,
                imported_at=now,
            ).on_conflict_ignore().execute()
            Session.update(authorised_at=now).where(Session.id == session.id).execute()
            self.event("session_authorised", session=session.number, source=source, papers=len(opened))
        return {"already": False, "papers": len(opened)}

    # -- allow login / allow start ----------------------------------------------------

    def allow_login(self, auto_login: bool = False, operator: str | None = None) -> dict[str, Any]:
        session = self.current_session()
        if session.authorised_at is None:
            raise Refused("not_authorised", "请先完成考试授权", "session not authorised")
        policy = self.policy()
        if auto_login and not policy.mock:
            raise Refused("mock_only", "自动登录只能在模考模式下使用", "auto-login is mock mode only")
        timeline.check_allow_login(self.now(), session.scheduled_start, policy)
        with self.tx():
            if session.login_allowed_at is None:
                Session.update(login_allowed_at=self.now(), auto_login=auto_login).where(
                    Session.id == session.id
                ).execute()
                self.event("login_allowed", operator=operator, session=session.number, auto_login=auto_login)
            elif auto_login and not session.auto_login:  # login was allowed already (by the box's tick)
                Session.update(auto_login=True).where(Session.id == session.id).execute()
                self.event("auto_login_on", operator=operator, session=session.number)
        now = self.current_session()  # what the PCs must hold, whoever allowed login first
        self.ports.seats.send(
            self._seat_ips(), "allow_login", {"session": session.number, "auto_login": now.auto_login}
        )
        return {"login_allowed_at": now.login_allowed_at}

    def tick(self) -> dict[str, Any]:
        """What the box does by itself as time passes (the engine calls this every
        heartbeat): allow login once the session is authorised and its window is open."""
        try:
            session = self.current_session()
        except Refused:
            return {}
        if session.authorised_at is None or session.login_allowed_at is not None:
            return {}
        if self.now() < timeline.login_window_opens(session.scheduled_start, self.policy()):
            return {}
        return {"allow_login": self.allow_login(operator="系统")}

    def auto_login(self, on: bool) -> dict[str, Any]:
        return self._mock_switch("auto_login", on)

    def auto_answer(self, on: bool) -> dict[str, Any]:
        return self._mock_switch("auto_answer", on)

    def _mock_switch(self, name: str, on: bool) -> dict[str, Any]:
        session = self.current_session()
        if not self.policy().mock:
            raise Refused("mock_only", "该功能只在模考模式下可用", f"{name} is mock mode only")
        with self.tx():
            Session.update(**{name: on}).where(Session.id == session.id).execute()
            self.event(name + ("_on" if on else "_off"), session=session.number)
        sent = self.ports.seats.send(self._seat_ips(), name, {"on": on})
        return {name: on, "ok": list(sent.ok), "failed": sent.failed}

    def challenge(self, purpose: str, admission_no: str = "") -> dict[str, Any]:
        """The challenge (申请码) to read to the site administrator for a code."""
        try:
            p = Purpose(purpose)
        except ValueError as exc:
            raise Refused("bad_purpose", "授权用途无效", f"unknown purpose {purpose}") from exc
        session = self.current_session()
        if admission_no:
            self.get_candidate(admission_no, session)
        key = admission_no if p in (Purpose.EXTRA_TIME, Purpose.REEXAM) else ""
        with self.tx():
            ch = (
                Challenge.select()
                .where(
                    Challenge.purpose == p.value,
                    Challenge.session_number == session.number,
                    Challenge.subject_key == key,
                    Challenge.used_at.is_null(),
                )
                .order_by(Challenge.id.desc())
                .first()
            )
            if ch is None or self.now() - ch.created_at > codes.VALIDITY_S[p]:
                ch = Challenge.create(
                    purpose=p.value,
                    session_number=session.number,
                    subject_key=key,
                    challenge=codes.new_challenge(os.urandom(8)),
                    created_at=self.now(),
                )
                self.event(
                    "challenge_issued",
                    purpose=p.value,
                    challenge=ch.challenge,
                    admission_no=admission_no,
                )
        return {
            "purpose": p.value,
            "purpose_zh": codes.PURPOSE_ZH[p],
            "room_code": self.require_config().room_code,
            "session": session.number,
            "challenge": ch.challenge,
        }

    def _pending_challenge(self, purpose: Purpose, admission_no: str) -> Challenge | None:
        key = admission_no if purpose in (Purpose.EXTRA_TIME, Purpose.REEXAM) else ""
        return (
            Challenge.select()
            .where(
                Challenge.purpose == purpose.value,
                Challenge.session_number == self.current_session().number,
                Challenge.subject_key == key,
                Challenge.used_at.is_null(),
            )
            .order_by(Challenge.id.desc())
            .first()
        )

    def check_code(self, purpose: Purpose, code: str, amount: int = 0, admission_no: str = "") -> CodeGrant:
        """Verify a code for the pending challenge, before the change it allows.

        A wrong code is counted against its challenge; after MAX_CODE_FAILURES the
        challenge is spent, so a 40-bit code cannot be guessed at the box."""
        ch = self._pending_challenge(purpose, admission_no)
        if ch is None:
            raise Refused("no_challenge", "请先获取申请码，再向考点申请授权码", "no pending challenge")
        normalized = codes.normalize_code(code)
        if UsedCode.get_or_none(UsedCode.code == normalized) is not None:
            raise Refused("code_used", "该授权码已使用过，每个授权码只能使用一次", "code already used")
        session = self.current_session()
        try:
            codes.verify_code(
                bytes(self.require_exam().site_secret),
                normalized,
                purpose,
                self.require_config().room_code,
                session.number,
                ch.challenge,
                amount,
                self.now(),
            )
        except Refused as refusal:
            with self.tx():
                failures = ch.failures + 1
                burnt = failures >= MAX_CODE_FAILURES
                Challenge.update(failures=failures, used_at=self.now() if burnt else None).where(
                    Challenge.id == ch.id
                ).execute()
                self.event(
                    "code_refused",
                    purpose=purpose.value,
                    challenge=ch.challenge,
                    reason=refusal.code,
                    failures=failures,
                    admission_no=admission_no,
                )
            if burnt:
                raise Refused(
                    "challenge_spent",
                    f"{refusal.zh}。错误次数过多，该申请码已作废，请重新获取申请码",
                    f"{refusal.en}; too many wrong codes, the challenge is spent",
                ) from refusal
            raise
        return CodeGrant(purpose, normalized, ch.id, ch.challenge, amount, admission_no)

    def spend_code(self, grant: CodeGrant) -> str:
        """Spend a checked code and its challenge; call inside the tx() of the change."""
        Challenge.update(used_at=self.now()).where(Challenge.id == grant.challenge_id).execute()
        UsedCode.create(
            code=grant.code,
            purpose=grant.purpose.value,
            session_number=self.current_session().number,
            challenge=grant.challenge,
            amount=grant.amount,
            admission_no=grant.admission_no,
            used_at=self.now(),
        )
        self.event(
            "code_used",
            purpose=grant.purpose.value,
            challenge=grant.challenge,
            code=grant.code,
            amount=grant.amount,
            admission_no=grant.admission_no,
        )
        return grant.code

    def allow_start(self, code: str = "") -> dict[str, Any]:
        session = self.current_session()
        policy = self.policy()
        now = self.now()
        if session.start_allowed_at is not None:
            raise Refused("already_started", "已经允许开考", "start already allowed")
        timeline.check_allow_start(
            now, session.scheduled_start, policy, login_allowed=session.login_allowed_at is not None
        )
        late = timeline.start_needs_code(now, session.scheduled_start, policy)
        if late and not code:
            info = self.challenge(Purpose.LATE_START.value)
            raise Refused(
                "late_start_code_needed",
                f"开考时间已过，请向考点申请延考授权码（考场代码 {info['room_code']}，"
                f"场次 {info['session']}，申请码 {info['challenge']}）",
                "start window passed: a late-start code is needed",
            )
        start = timeline.exam_start_time(now, session.scheduled_start, policy)
        grant = self.check_code(Purpose.LATE_START, code) if late else None
        with self.tx():
            if grant is not None:
                self.spend_code(grant)
            Session.update(start_allowed_at=now, actual_start=start).where(Session.id == session.id).execute()
            self.event("start_allowed", session=session.number, start=start, late=late)
        self.ports.seats.send(self._seat_ips(), "start_exam", {"start": start})
        return {"start": start, "countdown_s": max(0, int(start - now)), "late": late}

    def countdown(self) -> dict[str, Any]:
        session = self.current_session()
        if session.actual_start is None:
            return {"started": False, "countdown_s": None}
        now = self.now()
        left = max(0, math.ceil(session.actual_start - now))  # never "0 s" before the start
        return {"started": now >= session.actual_start, "countdown_s": left, "start": session.actual_start}

    def candidate_rows(self, session: Session) -> list[Candidate]:
        return list(Candidate.select().where(Candidate.session == session).order_by(Candidate.seq))
