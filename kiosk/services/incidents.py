"""During the exam, what happens to single candidates: violations, break-resume,
extra time, lock screen, messages, raised hands, re-exam, absence, lookups."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kiosk.core import candidate as rules
from kiosk.core import timeline
from kiosk.core.candidate import CandidateView
from kiosk.core.codes import Purpose
from kiosk.core.errors import Refused
from kiosk.core.extratime import plan_extra_time
from kiosk.services.base import loads
from kiosk.services.during import DuringExam
from kiosk.store import answer_files
from kiosk.store.models import (
    Absence,
    Answer,
    Candidate,
    Event,
    ExtraTime,
    OfflineInterval,
    Session,
    Subject,
    Violation,
)
from kiosk.store.models import Resume as ResumeRecord

MAX_DESCRIPTION = 200
MAX_MESSAGE = 200


def _text(value: str, label: str, limit: int, required: bool = True) -> str:
    value = (value or "").strip()
    if required and not value:
        raise Refused("text_required", f"请填写{label}", f"{label} is required")
    if len(value) > limit:
        raise Refused(
            "text_too_long",
            f"{label}最多 {limit} 个字，当前 {len(value)} 个字",
            f"{label} longer than {limit}",
        )
    return value


class Incidents(DuringExam):
    def apply(self, c: Candidate, v: CandidateView) -> None:
        """Write a rule's resulting view back to the candidate row."""
        Candidate.update(state=v.state.value, resume_pending=v.resume_pending, locked=v.flags.locked).where(
            Candidate.id == c.id
        ).execute()

    def duration_s(self, c: Candidate) -> int:
        subjects = loads(c.subjects) or []
        return max((s.duration_s for s in Subject.select().where(Subject.code.in_(subjects))), default=0)

    # -- violations ------------------------------------------------------------------

    def violation_codes(self) -> list[list[str]]:
        return loads(self.require_exam().violation_codes)

    def violation_add(self, admission_no: str, code: str, description: str = "") -> dict[str, Any]:
        table = dict(map(tuple, self.violation_codes()))
        if code not in table:
            raise Refused("bad_violation_code", f"违纪代码 {code} 不在违纪代码表中", f"unknown code {code}")
        description = _text(description, "违纪情况描述", MAX_DESCRIPTION, required=False)
        session = self.current_session()
        with self.tx():
            c = self.get_candidate(admission_no, session)
            rules.check_violation(self.view(c))
            v = Violation.create(
                candidate=c,
                code=code,
                text=table[code],
                description=description,
                registered_at=self.now(),
            )
            self.event(
                "violation_registered",
                admission_no=c.admission_no,
                seat=c.seat_number,
                violation=v.id,
                code=code,
                description=description,
            )
        return {"id": v.id, "admission_no": c.admission_no, "code": code, "text": table[code]}

    def violation_cancel(self, violation_id: int, confirm: bool = False) -> dict[str, Any]:
        if not confirm:
            raise Refused("confirm_needed", "取消违纪需要确认", "cancelling needs confirmation")
        session = self.current_session()
        with self.tx():
            v = Violation.get_or_none(Violation.id == violation_id)
            if v is None or v.candidate.session_id != session.id or v.cancelled_at is not None:
                raise Refused("unknown_violation", "没有这条违纪登记（或已取消）", "no such active violation")
            Violation.update(cancelled_at=self.now()).where(Violation.id == v.id).execute()
            self.event("violation_cancelled", admission_no=v.candidate.admission_no, violation=v.id)
        return {"cancelled": violation_id}

    def violations(self, session_no: int | None = None) -> list[dict[str, Any]]:
        session = self.session_of(session_no)
        q = (
            Violation.select(Violation, Candidate)
            .join(Candidate)
            .where(Candidate.session == session, Violation.cancelled_at.is_null())
            .order_by(Violation.registered_at, Violation.id)  # ties: in the order registered
        )
        return [
            dict(
                id=v.id,
                admission_no=v.candidate.admission_no,
                name=v.candidate.name,
                code=v.code,
                text=v.text,
                description=v.description,
                time=v.registered_at,
            )
            for v in q
        ]

    # -- break-resume ----------------------------------------------------------------

    def situation_types(self) -> list[str]:
        return loads(self.require_exam().situation_types)

    def resume(
        self,
        admission_nos: Sequence[str],
        situation: str,
        description: str,
        handler: str,
        code: str = "",
        confirm_online: bool = False,
    ) -> dict[str, Any]:
        """断点续考: the candidates may log in again on any PC and go on where they were."""
        if not admission_nos:
            raise Refused("no_candidates", "请选择考生", "no candidates chosen")
        if situation not in self.situation_types():
            raise Refused("bad_situation", "请选择异常情况类型", f"unknown situation {situation!r}")
        description = _text(description, "异常描述", MAX_DESCRIPTION)
        handler = _text(handler, "处理人员", 40)
        session = self.current_session()
        room = self.phase(session)
        now = self.now()
        chosen = self.get_candidates(admission_nos, session)
        needs_code = [
            c.admission_no
            for c, v in zip(chosen, self.views(chosen), strict=True)
            if rules.check_resume(v, room, now)
        ]
        online = [c.admission_no for c in chosen if c.online and c.state in ("logged_in", "in_exam")]
        if online and not confirm_online:
            raise Refused(
                "confirm_online",
                f"{len(online)} 名考生在线，续考将强制退出其考生端，请确认",
                "online candidates will be forced out: confirm",
            )
        if needs_code and not code:
            info = self.challenge(Purpose.LATE_CANDIDATE.value)
            raise Refused(
                "late_candidate_code_needed",
                f"{len(needs_code)} 名考生已超过迟到时间，需要考生迟到延考授权码"
                f"（申请码 {info['challenge']}）",
                "late candidates need a code",
            )
        grant = self.check_code(Purpose.LATE_CANDIDATE, code) if needs_code else None
        with self.tx():
            used = self.spend_code(grant) if grant else ""
            for c in chosen:
                c = Candidate.get_by_id(c.id)
                self.apply(c, rules.after_resume(self.view(c)))
                ResumeRecord.create(
                    candidate=c,
                    situation=situation,
                    description=description,
                    handler=handler,
                    seat_number=c.seat_number,
                    ip=c.ip,
                    code=used,
                    created_at=now,
                )
                Candidate.update(online=False, seat_number=None, ip="").where(Candidate.id == c.id).execute()
                self.event(
                    "resume_granted",
                    admission_no=c.admission_no,
                    seat=c.seat_number,
                    situation=situation,
                    description=description,
                    handler=handler,
                    late_code=bool(used),
                )
        # After the commit: a PC that misses the command can no longer act for the
        # candidate anyway, since the box no longer has it on that seat.
        forced = (
            self.ports.seats.send(
                [c.ip for c in chosen if c.admission_no in online],
                "force_logout",
                {"reason": "断点续考"},
            )
            if online
            else None
        )
        return {
            "resumed": [c.admission_no for c in chosen],
            "late_code_used": bool(needs_code),
            "forced_out": list(forced.ok) if forced else [],
        }

    def resumes(self, session_no: int | None = None) -> list[dict[str, Any]]:
        session = self.session_of(session_no)
        q = (
            ResumeRecord.select(ResumeRecord, Candidate)
            .join(Candidate)
            .where(Candidate.session == session)
            .order_by(ResumeRecord.created_at, ResumeRecord.id)
        )
        return [
            dict(
                admission_no=r.candidate.admission_no,
                name=r.candidate.name,
                time=r.created_at,
                ip=r.ip,
                situation=r.situation,
                description=r.description,
                handler=r.handler,
            )
            for r in q
        ]

    # -- extra time ------------------------------------------------------------------

    def extra_time(self, admission_no: str, seconds: int, reason: str = "", code: str = "") -> dict[str, Any]:
        session = self.current_session()
        c = self.get_candidate(admission_no, session)
        rules.check_extra_time(self.view(c), self.phase(session))
        reason = _text(reason, "补时原因", MAX_DESCRIPTION, required=False)
        plan = plan_extra_time(c.extra_s, int(seconds), self.duration_s(c), self.policy().free_extra_s)
        if plan.needs_code and not code:
            info = self.challenge(Purpose.EXTRA_TIME.value, c.admission_no)
            raise Refused(
                "extra_time_code_needed",
                f"累计补时将达 {plan.total_after_s} 秒，超过免授权的 {self.policy().free_extra_s} 秒，"
                f"需要补时授权码（申请码 {info['challenge']}，补时 {plan.requested_s} 秒）",
                "extra time beyond the free allowance needs a code",
            )
        grant = (
            self.check_code(Purpose.EXTRA_TIME, code, plan.requested_s, c.admission_no)
            if plan.needs_code
            else None
        )
        with self.tx():
            used = self.spend_code(grant) if grant else ""
            Candidate.update(extra_s=plan.total_after_s).where(Candidate.id == c.id).execute()
            ExtraTime.create(
                candidate=c,
                requested_s=plan.requested_s,
                granted_s=plan.granted_s,
                total_after_s=plan.total_after_s,
                reason=reason,
                code=used,
                created_at=self.now(),
            )
            self.event(
                "extra_time_granted",
                admission_no=c.admission_no,
                seat=c.seat_number,
                requested_s=plan.requested_s,
                granted_s=plan.granted_s,
                total_s=plan.total_after_s,
                reason=reason,
                with_code=bool(used),
            )
        deadline = timeline.candidate_deadline(session.actual_start, self.duration_s(c), plan.total_after_s)
        self.ports.seats.send([c.ip], "deadline", {"admission_no": c.admission_no, "deadline": deadline})
        return {
            "admission_no": c.admission_no,
            "requested_s": plan.requested_s,
            "granted_s": plan.granted_s,
            "total_s": plan.total_after_s,
            "deadline": deadline,
            "message": f"补时成功：考生 {c.admission_no} 补时 {plan.requested_s} 秒，"
            f"实际补时 {plan.granted_s} 秒。",
        }

    def extra_times(self, session_no: int | None = None) -> list[dict[str, Any]]:
        session = self.session_of(session_no)
        q = (
            ExtraTime.select(ExtraTime, Candidate)
            .join(Candidate)
            .where(Candidate.session == session)
            .order_by(ExtraTime.created_at, ExtraTime.id)
        )
        return [
            dict(
                admission_no=e.candidate.admission_no,
                name=e.candidate.name,
                requested_s=e.requested_s,
                granted_s=e.granted_s,
                total_s=e.total_after_s,
                reason=e.reason,
                time=e.created_at,
                with_code=bool(e.code),
            )
            for e in q
        ]

    # -- lock, message, raised hand ----------------------------------------------------

    def lock(self, admission_nos: Sequence[str], notice: str = "", unlock: bool = False) -> dict[str, Any]:
        session = self.current_session()
        notice = _text(notice or "监考老师已锁定你的考试机，请听从监考老师安排。", "锁屏提示", MAX_MESSAGE)
        chosen = self.get_candidates(admission_nos, session)
        if not chosen:
            raise Refused("no_candidates", "请选择考生", "no candidates chosen")
        if not unlock:
            for v in self.views(chosen):
                rules.check_lock(v)
        # The box's record comes first: the daemon re-applies the lock state from it on
        # every reconnect, so a PC that misses the command now gets it when it returns.
        with self.tx():
            Candidate.update(locked=not unlock).where(Candidate.id.in_([c.id for c in chosen])).execute()
            for c in chosen:
                self.event(
                    "unlocked" if unlock else "locked",
                    admission_no=c.admission_no,
                    seat=c.seat_number,
                    notice=notice,
                )
        sent = self.ports.seats.send(
            [c.ip for c in chosen], "unlock" if unlock else "lock", {"notice": notice}
        )
        return {"ok": list(sent.ok), "failed": sent.failed}

    def message(self, text: str, admission_nos: Sequence[str] | None = None) -> dict[str, Any]:
        text = _text(text, "消息内容", MAX_MESSAGE)
        ips = self._seat_ips(admission_nos or None)
        sent = self.ports.seats.send(ips, "message", {"text": text})
        with self.tx():
            self.event(
                "message_sent",
                text=text,
                to=list(admission_nos or []),
                ok=len(sent.ok),
                failed=sent.failed,
            )
        return {"ok": list(sent.ok), "failed": sent.failed}

    def hand_answer(self, admission_no: str) -> dict[str, Any]:
        session = self.current_session()
        with self.tx():
            c = self.get_candidate(admission_no, session)
            if c.hand_raised_at is None:
                raise Refused("no_hand_raised", "该考生没有举手", "no raised hand")
            Candidate.update(hand_raised_at=None).where(Candidate.id == c.id).execute()
            self.event("hand_answered", admission_no=c.admission_no, seat=c.seat_number)
        self.ports.seats.send([c.ip], "hand_answered", {})
        return {"admission_no": c.admission_no}

    # -- re-exam and absence ---------------------------------------------------------

    def reexam(
        self,
        admission_no: str,
        subjects: Sequence[str],
        reason: str,
        code: str = "",
        understood: bool = False,
        confirm: bool = False,
    ) -> dict[str, Any]:
        """考生初始化: wipe the chosen subjects' answers (cannot be undone)."""
        if not understood:
            raise Refused("tick_understood", "请先勾选“我知道了”", "the officer must tick 'I understand'")
        session = self.current_session()
        c = self.get_candidate(admission_no, session)
        rules.check_reexam(self.view(c))
        mine = loads(c.subjects) or []
        if not subjects or any(s not in mine for s in subjects):
            raise Refused("bad_subjects", "请选择该考生报考的重考科目", "choose the candidate's subjects")
        reason = _text(reason, "重考原因", MAX_DESCRIPTION)
        if not code:
            info = self.challenge(Purpose.REEXAM.value, c.admission_no)
            raise Refused(
                "reexam_code_needed",
                f"重考需要授权码（申请码 {info['challenge']}，1小时内有效）",
                "re-exam needs a code",
            )
        if not confirm:
            raise Refused(
                "confirm_needed",
                f"对考生 {c.admission_no} 执行重考操作，会清除科目 {','.join(subjects)} 的作答记录，"
                "且无法恢复，请确认",
                "re-exam needs the final confirmation",
            )
        grant = self.check_code(Purpose.REEXAM, code, 0, c.admission_no)
        with self.tx():
            self.spend_code(grant)
            wiped = (
                Answer.delete()
                .where(Answer.admission_no == c.admission_no, Answer.subject.in_(list(subjects)))
                .execute()
            )
            answer_files.forget(self.answer_root(), c.session.number, c.admission_no, list(subjects))
            self.apply(c, rules.transition_after_reexam(self.view(c)))
            Candidate.update(
                submitted_at=None,
                began_at=None,
                logged_in_at=None,
                collected=False,
                package_state="none",
                seat_number=None,
                ip="",
                online=False,
            ).where(Candidate.id == c.id).execute()
            self.event(
                "reexam",
                admission_no=c.admission_no,
                subjects=list(subjects),
                reason=reason,
                answers_wiped=wiped,
            )
        return {"admission_no": c.admission_no, "answers_wiped": wiped, "state": "not_logged_in"}

    def absent(self, admission_nos: Sequence[str], confirm: bool = False) -> dict[str, Any]:
        if not admission_nos:
            raise Refused("no_candidates", "请选择缺考考生", "no candidates chosen")
        if not confirm:
            raise Refused(
                "confirm_needed",
                f"确认登记 {len(admission_nos)} 名考生缺考？",
                "needs confirmation",
            )
        session = self.current_session()
        room = self.phase(session)
        with self.tx():
            for a in dict.fromkeys(admission_nos):
                c = self.get_candidate(a, session)
                rules.check_absent(self.view(c), room, self.now())
                self.apply(c, rules.after_absent(self.view(c)))
                Absence.create(candidate=c, subjects=c.subjects, created_at=self.now())
                self.event("absence_registered", admission_no=c.admission_no)
        return {"absent": list(dict.fromkeys(admission_nos))}

    # -- lookups ---------------------------------------------------------------------

    def find(self, query: str) -> list[dict[str, Any]]:
        session = self.current_session()
        q = query.strip()
        if not q:
            raise Refused("empty_query", "请输入准考证号、姓名或机位号", "empty query")
        cond = (Candidate.admission_no.contains(q)) | (Candidate.name.contains(q))
        if q.isdigit() and len(q) <= 3:
            cond = cond | (Candidate.seat_number == int(q))
        rows = Candidate.select().where(Candidate.session == session, cond).order_by(Candidate.seq).limit(50)
        return self.candidate_dicts(list(rows))

    def candidate_log(self, admission_no: str) -> dict[str, Any]:
        """Every event of the candidate, with the PC's start and seat events before each login."""
        c = self.get_candidate(admission_no)
        rows: list[Event] = []
        for e in Event.select().where(Event.admission_no == c.admission_no).order_by(Event.id):
            if e.kind == "login":
                before = (
                    Event.select()
                    .where(
                        Event.ip == e.ip,
                        Event.admission_no == "",
                        Event.id < e.id,
                        Event.kind.in_(["client_started", "client_seat"]),
                    )
                    .order_by(Event.id.desc())
                    .limit(2)
                )
                rows.extend(sorted(before, key=lambda x: x.id))
            rows.append(e)
        log = [
            dict(
                n=i,
                time=e.ts,
                ip=e.ip,
                kind=e.kind,
                text=event_text(e.kind, loads(e.payload)),
                operator=e.operator,
            )
            for i, e in enumerate(rows, 1)
        ]
        return {"candidate": self.candidate_dict(c), "log": log}

    def candidate_dict(self, c: Candidate) -> dict[str, Any]:
        return self.candidate_dicts([c])[0]

    def candidate_dicts(self, cands: Sequence[Candidate]) -> list[dict[str, Any]]:
        """The monitor's view of candidates: a handful of queries for the whole room."""
        ids = [c.id for c in cands]
        violated, resumed = self.marked(ids)
        offline: dict[int, list[tuple[float, float | None]]] = {}
        for o in OfflineInterval.select().where(OfflineInterval.candidate.in_(ids)):
            offline.setdefault(o.candidate_id, []).append((o.lost_at, o.back_at))
        durations = {s.code: s.duration_s for s in Subject.select()}
        starts = {s.id: s.actual_start for s in Session.select(Session.id, Session.actual_start)}
        now = self.now()
        out = []
        for c in cands:
            subjects = loads(c.subjects) or []
            duration = max((durations.get(x, 0) for x in subjects), default=0)
            start = starts[c.session_id]
            out.append(
                dict(
                    seq=c.seq,
                    admission_no=c.admission_no,
                    name=c.name,
                    gender=c.gender,
                    id_type=c.id_type,
                    id_number=c.id_number,
                    subjects=subjects,
                    state=c.state,
                    state_zh=rules.STATE_ZH[rules.CandidateState(c.state)],
                    seat=f"{c.seat_number:03d}" if c.seat_number else "",
                    ip=c.ip,
                    online=c.online,
                    locked=c.locked,
                    violation=c.id in violated,
                    resumed=c.id in resumed,
                    resume_pending=c.resume_pending,
                    extra_s=c.extra_s,
                    hand_raised=c.hand_raised_at is not None,
                    remaining_s=timeline.remaining_seconds(now, start, duration, c.extra_s),
                    offline_s=timeline.offline_seconds(offline.get(c.id, []), now, since=start),
                    collected=c.collected,
                    package_state=c.package_state,
                )
            )
        return out


EVENT_ZH = {
    "client_started": "启动",
    "client_seat": "机位号",
    "login": "登录",
    "login_confirmed": "登录确认",
    "agreement": "考试协议",
    "paper_drawn": "抽卷",
    "rules_read": "我已阅读提醒",
    "begin": "我已阅读",
    "answers_saved": "保存答案",
    "submitted": "交卷",
    "violation_registered": "登记违纪",
    "violation_cancelled": "取消违纪",
    "resume_granted": "断点续考",
    "extra_time_granted": "补时",
    "locked": "锁屏",
    "unlocked": "解除锁屏",
    "absence_registered": "缺考登记",
    "reexam": "考生初始化",
    "collected": "单机收卷",
    "answers_imported": "导入作答包",
    "hand_raised": "举手",
    "hand_answered": "处理举手",
    "link_lost": "离线",
    "link_back": "恢复在线",
    "forced_logout": "强制退出",
    "lock_acknowledged": "我已知晓",
}


def event_text(kind: str, payload: dict[str, Any]) -> str:
    """One line of the candidate log, as the manual shows it (启动, 机位号(001), 抽卷:理论知识…)."""
    label = EVENT_ZH.get(kind, kind)
    payload = {**payload, **payload.get("detail", {})}
    if kind == "client_seat" and payload.get("seat"):
        return f"{label}({payload['seat']})"
    if kind == "paper_drawn" and payload.get("subject"):
        return f"{label}:{payload['subject']}"
    if kind == "answers_saved":
        return f"{label}({payload.get('count', 0)}题)"
    if kind == "extra_time_granted":
        return f"{label}{payload.get('granted_s', 0)}秒"
    return label
