"""What the exam PCs report through the room network: links coming and going,
candidate logins, reading, answers, submission, raised hands and client events.

A PC may act only for the candidate logged in on it: every call names the PC's IP,
which the room network has authenticated."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from kiosk.common.packages import AnswerFile
from kiosk.common.signed import MAX_ANSWER_FILES, valid_file_name
from kiosk.core import candidate as rules
from kiosk.core import timeline
from kiosk.core.errors import Refused
from kiosk.services.base import loads
from kiosk.services.incidents import Incidents
from kiosk.store import answer_files
from kiosk.store import answers as answers_store
from kiosk.store import journal as journal_store
from kiosk.store.models import Answer, Candidate, OfflineInterval, Paper, Seat, Session, Subject

CLIENT_EVENTS = {
    "client_started",
    "client_seat",
    "login_confirmed",
    "agreement",
    "paper_drawn",
    "rules_read",
    "lock_acknowledged",
    "message_acknowledged",
}
MAX_ANSWER_BYTES = 64 * 1024
MAX_BATCH = 500
MAX_FILE_BYTES = 200 * 1024**2  # one work file over the room network (the app's limit per question)
MAX_INCOMING_BYTES = 1024**3  # one candidate's work files on their way to the box, at once
MAX_CHUNK_BYTES = 512 * 1024  # the bytes of one put_file (base64'd: well inside a frame)
_SHA256 = re.compile(r"[0-9a-f]{64}")
_KEYS_FOR_CLIENT = ("id", "type", "text", "options", "files", "score")


class CandidateLink(Incidents):
    def _seat_for(self, ip: str) -> Seat:
        seat = self.seat_by_ip(ip)
        if seat is None:
            raise Refused("not_a_seat", f"{ip} 不是本考场的机位", f"{ip} is not a seat of this room")
        return seat

    def _candidate_at(self, admission_no: str, ip: str) -> Candidate:
        c = self.get_candidate(admission_no, self.current_session())
        if not ip or c.ip != ip:
            raise Refused(
                "not_your_candidate",
                "该考生未在本机登录",
                f"{admission_no} is not logged in at {ip}",
            )
        return c

    def seat_link(self, ip: str, online: bool) -> None:
        """The room network saw a seat's link come or go."""
        with self.tx():
            seat = self._seat_for(ip)
            if seat.online == online:
                Seat.update(last_seen=self.now()).where(Seat.id == seat.id).execute()
                return
            Seat.update(online=online, last_seen=self.now()).where(Seat.id == seat.id).execute()
            c = Candidate.get_or_none(Candidate.ip == ip, Candidate.state.in_(["logged_in", "in_exam"]))
            if c is not None:
                Candidate.update(online=online).where(Candidate.id == c.id).execute()
                if online:
                    OfflineInterval.update(back_at=self.now()).where(
                        OfflineInterval.candidate == c, OfflineInterval.back_at.is_null()
                    ).execute()
                else:
                    OfflineInterval.create(candidate=c, lost_at=self.now())
            self.event(
                "link_back" if online else "link_lost",
                ip=ip,
                seat=seat.number,
                admission_no=c.admission_no if c else "",
            )

    def seat_links(self, changes: Sequence[tuple[str, bool]]) -> None:
        """Links that came or went, in one transaction: a whole room reconnecting is one
        commit. An IP that is no longer a seat is skipped."""
        with self.tx():
            for ip, online in changes:
                with contextlib.suppress(Refused):
                    self.seat_link(ip, online)

    def candidate_login(self, admission_no: str, ip: str) -> dict[str, Any]:
        """A candidate logs in at a PC; no admission number is mock mode's auto-login by
        seat (按机位号登录): the candidate whose place in the session's list is the seat's."""
        seat = self._seat_for(ip)
        session = self.current_session()
        room = self.phase(session)
        with self.tx():
            c = (
                self.get_candidate(admission_no, session)
                if admission_no
                else self._seat_candidate(session, seat)
            )
            v = self.view(c)
            rules.check_login(v, room, self.now())
            after = rules.after_login(v, room)
            busy = Candidate.get_or_none(
                Candidate.ip == ip,
                Candidate.id != c.id,
                Candidate.state.in_(["logged_in", "in_exam"]),
            )
            if busy is not None:
                raise Refused(
                    "seat_busy",
                    f"本机已有考生 {busy.admission_no} 登录",
                    "another candidate is on this PC",
                )
            self.apply(c, after)
            OfflineInterval.update(back_at=self.now()).where(
                OfflineInterval.candidate == c, OfflineInterval.back_at.is_null()
            ).execute()
            Candidate.update(
                seat_number=seat.number,
                ip=ip,
                online=True,  # the PC is talking to the box right now
                logged_in_at=c.logged_in_at or self.now(),
                began_at=c.began_at or (self.now() if after.state.value == "in_exam" else None),
            ).where(Candidate.id == c.id).execute()
            self.event(
                "login",
                ip=ip,
                seat=seat.number,
                admission_no=c.admission_no,
                operator="",
                resumed=v.resume_pending,
            )
        return self.client_view(Candidate.get_by_id(c.id))

    def _seat_candidate(self, session: Session, seat: Seat) -> Candidate:
        if not (session.auto_login and self.policy().mock):
            raise Refused("auto_login_off", "未开启自动登录，请输入准考证号", "auto-login is off")
        c = (
            Candidate.select()
            .where(Candidate.session == session)
            .order_by(Candidate.seq)
            .offset(seat.number - 1)
            .first()
        )
        if c is None:
            raise Refused(
                "no_seat_candidate",
                f"机位 {seat.number:03d} 没有对应的考生",
                f"no candidate for seat {seat.number}",
            )
        return c

    def client_view(self, c: Candidate) -> dict[str, Any]:
        """What the answer app needs: identity, subjects, times, papers when authorised, answers."""
        session = Session.get_by_id(c.session_id)
        codes = loads(c.subjects) or []
        subjects = [
            dict(code=s.code, name=s.name, duration_s=s.duration_s, kind=s.kind)
            for s in Subject.select().where(Subject.code.in_(codes))
        ]
        papers = {}
        for p in Paper.select().where(Paper.session == session):
            if p.subject.code in codes:
                papers[p.subject.code] = [
                    {k: q[k] for k in _KEYS_FOR_CLIENT if k in q} for q in loads(p.questions)
                ]
        answers = [
            dict(subject=a.subject, question=a.question, value=loads(a.value), seq=a.seq)
            for a in Answer.select().where(Answer.admission_no == c.admission_no)
        ]
        duration = self.duration_s(c)
        info = self.candidate_dict(c)
        deadline = (
            timeline.candidate_deadline(session.actual_start, duration, c.extra_s)
            if session.actual_start
            else None
        )
        exam = self.require_exam()
        return {
            **info,
            "room_code": exam.room_code,
            # The PC seals the candidate's answer package (导出作答包) with the room's key.
            "package_key": base64.b64encode(bytes(exam.package_key)).decode(),
            "session": session.number,
            "session_name": session.name,
            "start": session.actual_start,
            "deadline": deadline,
            "box_time": self.now(),
            "exam_name": exam.name,
            "earliest_submit_s": self.policy().earliest_submit_s,
            "mock": self.policy().mock,
            "subjects_detail": subjects,
            "papers": papers,
            "answers": answers,
            "photo": base64.b64encode(bytes(c.photo)).decode() if c.photo else "",
        }

    def client_event(
        self, admission_no: str, ip: str, kind: str, detail: dict[str, Any] | None = None
    ) -> None:
        if kind not in CLIENT_EVENTS:
            raise Refused("bad_event", "未知的考生端事件", f"unknown client event {kind!r}")
        seat = self._seat_for(ip)
        detail = {k: str(v)[:100] for k, v in (detail or {}).items()}
        if admission_no:
            self._candidate_at(admission_no, ip)
        with self.tx():
            self.event(kind, ip=ip, seat=seat.number, admission_no=admission_no, operator="", detail=detail)

    def candidate_begin(self, admission_no: str, ip: str) -> dict[str, Any]:
        session = self.current_session()
        with self.tx():
            c = self._candidate_at(admission_no, ip)
            v = self.view(c)
            rules.check_begin(v, self.phase(session), self.now())
            self.apply(c, rules.after_begin(v))
            Candidate.update(began_at=self.now()).where(Candidate.id == c.id).execute()
            self.event("begin", ip=ip, seat=c.seat_number, admission_no=c.admission_no, operator="")
        return self.client_view(Candidate.get_by_id(c.id))

    def save_answers(self, admission_no: str, ip: str, entries: Sequence[dict[str, Any]]) -> dict[str, int]:
        """Store a batch of journal answers, newest sequence wins; returns the acknowledged seq.

        The acknowledgement is returned only after the commit, so the PC may forget an
        entry once it sees its number here."""
        if not isinstance(entries, list) or not 0 < len(entries) <= MAX_BATCH:
            raise Refused("bad_answers", "作答数据格式错误", "entries must be a non-empty list")
        c = self._candidate_at(admission_no, ip)
        if c.state != "in_exam":
            raise Refused("not_in_exam", "考生不在考试中，不能保存答案", "candidate is not writing")
        rows = self._validate_answers(c.admission_no, loads(c.subjects) or [], entries)
        with self.tx():
            answers_store.upsert_newest(rows, count=False)
            top = max(r["seq"] for r in rows)
            self.event(
                "answers_saved",
                ip=ip,
                seat=c.seat_number,
                admission_no=c.admission_no,
                operator="",
                count=len(rows),
                seq_to=top,
            )
        return {"acked": top}

    def _validate_answers(
        self, admission_no: str, subjects: Collection[str], entries: Sequence[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        rows = []
        for e in entries:
            try:
                subject, question, seq = str(e["subject"]), str(e["question"]), e["seq"]
                value = json.dumps(e["value"], ensure_ascii=False)
                saved_at = float(e.get("saved_at", self.now()))
            except (KeyError, TypeError, ValueError) as exc:
                raise Refused("bad_answers", "作答数据格式错误", f"bad answer entry: {exc}") from exc
            if (
                subject not in subjects
                or not 0 < len(question) <= 64
                or not isinstance(seq, int)
                or isinstance(seq, bool)
                or seq <= 0
                or len(value.encode()) > MAX_ANSWER_BYTES
            ):
                raise Refused("bad_answers", "作答数据格式错误", "answer entry out of range")
            rows.append(
                dict(
                    admission_no=admission_no,
                    subject=subject,
                    question=question,
                    value=value,
                    seq=seq,
                    saved_at=saved_at,
                )
            )
        return rows

    def candidate_submit(self, admission_no: str, ip: str) -> dict[str, Any]:
        session = self.current_session()
        with self.tx():
            c = self._candidate_at(admission_no, ip)
            v = self.view(c)
            rules.check_submit_candidate(v, self.phase(session), self.now())
            self.apply(c, rules.after_submit(v))
            Candidate.update(submitted_at=self.now(), package_state="valid", collected=True).where(
                Candidate.id == c.id
            ).execute()
            self.event("submitted", ip=ip, seat=c.seat_number, admission_no=c.admission_no, operator="")
        return {"submitted": True}

    def raise_hand(self, admission_no: str, ip: str) -> None:
        with self.tx():
            c = self._candidate_at(admission_no, ip)
            Candidate.update(hand_raised_at=self.now()).where(Candidate.id == c.id).execute()
            self.event("hand_raised", ip=ip, seat=c.seat_number, admission_no=c.admission_no, operator="")

    def receive_file(
        self,
        admission_no: str,
        ip: str,
        sha256: Any = None,
        size: Any = None,
        offset: Any = 0,
        data: Any = "",
    ) -> dict[str, int]:
        """put_file: a chunk of a work file of the candidate writing at this PC, before
        the journal entry that lists it (docs/network.md). The bytes go to the
        candidate's `.incoming` folder (answer_files.receive); the answer is how many
        bytes of the file the box holds, so an upload cut off resumes there. No data
        asks just that. Nothing is recorded in the event log: the answer that lists the
        file is, when it is stored."""
        if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
            raise Refused("bad_args", "作品文件的校验值无效", "sha256 must be 64 lower-case hex digits")
        if any(type(v) is not int or v < 0 for v in (size, offset)) or not isinstance(data, str):
            raise Refused("bad_args", "作品文件的传输参数无效", "size, offset: integers >= 0; data: base64")
        try:
            chunk = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise Refused("bad_args", "作品文件的传输参数无效", "data is not base64") from exc
        if len(chunk) > MAX_CHUNK_BYTES or offset + len(chunk) > size:
            raise Refused("bad_args", "作品文件的传输参数无效", "chunk too large or past the end of the file")
        if size > MAX_FILE_BYTES:
            raise Refused(
                "file_too_large",
                f"作品文件超过 {MAX_FILE_BYTES // 1024**2} MB，监考机不接收",
                f"a file of {size} bytes",
            )
        c = self._candidate_at(admission_no, ip)
        if c.state != "in_exam":
            raise Refused("not_in_exam", "考生不在考试中", "candidate is not writing")
        root = self.answer_root()
        held = answer_files.incoming_bytes(root, c.admission_no, but=sha256) if chunk else 0
        if held + size > MAX_INCOMING_BYTES:
            raise Refused(
                "work_too_large",
                f"该考生待保存的作品文件超过 {MAX_INCOMING_BYTES // 1024**2} MB",
                "the candidate's incoming files would exceed their limit",
            )
        try:
            have = answer_files.receive(root, c.admission_no, sha256, size, offset, chunk)
        except OSError as exc:
            raise Refused(
                "write_failed",
                f"监考机保存作品文件失败：{exc.strerror or exc}",
                f"writing the incoming file failed: {exc}",
            ) from exc
        return {"have": have}

    def _place_files(
        self,
        admission_no: str,
        session: int,
        groups: Mapping[tuple[str, str], tuple[int, Sequence[AnswerFile | answer_files.Received]]],
        sync: bool = True,
    ) -> int:
        """Newest sequence wins, for the files too: each question's files (with the seq of
        the answer that lists them) replace the question's folder only when that answer is
        newer than the one the box holds, from a USB answer package or the room network
        alike. Inside the caller's transaction, before the answers are upserted; returns
        how many files were stored."""
        root = self.answer_root()
        for subject, question in groups:  # refused before anything is written
            answer_files.question_folder(root, session, admission_no, subject, question)
        stored = {
            (a.subject, a.question): a.seq
            for a in Answer.select(Answer.subject, Answer.question, Answer.seq).where(
                Answer.admission_no == admission_no
            )
        }
        placed = 0
        for (subject, question), (seq, files) in groups.items():
            if seq > stored.get((subject, question), 0):
                answer_files.replace_files(
                    root, session, admission_no, files, sync, subject=subject, question=question
                )
                placed += len(files)
        return placed

    # -- the room network's side --------------------------------------------------------

    def reset_links(self) -> None:
        """At start-up no exam PC is connected yet: every seat still marked online goes
        offline (a box restart counts as offline time for the candidates on them)."""
        self.seat_links([(seat.ip, False) for seat in Seat.select().where(Seat.online)])

    def pc_welcome(self, ip: str, fingerprint: str) -> dict[str, Any] | None:
        """The state a connecting exam PC must hold, or None when it is not a seated PC
        (unknown IP, or a key other than the one recorded when it was seated)."""
        seat = self.seat_by_ip(ip)
        if seat is None or not seat.fingerprint or seat.fingerprint != fingerprint:
            return None
        c = Candidate.get_or_none(Candidate.ip == ip, Candidate.state.in_(["logged_in", "in_exam"]))
        return {
            "seat": f"{seat.number:03d}",
            "locked": bool(c and c.locked),
            "notice": "监考老师已锁定你的考试机，请听从监考老师安排。" if c and c.locked else "",
            "admission_no": c.admission_no if c else "",
        }

    def sync_journals(self, batch: Sequence[tuple[str, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
        """Journal frames from many PCs in one transaction (group commit).

        Everything is checked before anything is written, so a malformed frame or entry is
        refused alone. Returns, per frame, the highest seq now committed and the entries
        refused. The hot path of the box: one lookup of the writing candidates and one
        statement for all answers of the batch."""
        ips = list({ip for ip, _ in batch})
        with self.tx():
            seats, writers = journal_store.seats_and_writers(ips)
            rows: list[dict[str, Any]] = []
            results = [self._sync_journal(ip, entries, seats.get(ip), writers, rows) for ip, entries in batch]
            answers_store.upsert_newest(rows, count=False)
        return results

    def _sync_journal(
        self,
        ip: str,
        entries: list[dict[str, Any]],
        seat: int | None,
        writers: dict[tuple[str, str], journal_store.Writer],
        rows: list[dict[str, Any]],
    ) -> dict[str, Any]:
        seqs = [e.get("seq") for e in entries if isinstance(e, dict)]
        if len(seqs) != len(entries) or not all(type(x) is int and x > 0 for x in seqs):
            return {"upto": 0, "refused": [], "error": "bad_frame"}
        # An operation answer is stored only with its files: from the first entry whose
        # files the box does not hold complete, nothing of the frame applies yet.
        waiting = self._waiting_for_files(ip, entries, writers)
        entries = entries[:waiting]
        refused: list[dict[str, Any]] = []
        answers: dict[str, list[dict[str, Any]]] = {}
        listings: dict[int, list[dict[str, Any]]] = {}  # seq -> the answer's file listing

        def writer(no: str) -> journal_store.Writer:
            w = writers.get((no, ip))
            if w is None:
                self._candidate_at(no, ip)  # refuses, naming the reason (no session, unknown, elsewhere)
                raise Refused("not_your_candidate", "该考生未在本机登录", f"{no} is not logged in at {ip}")
            return w

        for e in entries:
            kind, payload, no = e.get("kind"), e.get("payload"), str(e.get("admission_no", ""))
            try:
                if not isinstance(payload, dict):
                    raise Refused("bad_entry", "日志条目格式错误", "payload must be an object")
                if kind == "answer":
                    if "unsent" in e:  # the PC cannot send the files it lists (docs/network.md)
                        why = f"files unsent: {e['unsent']!r:.40}"
                        raise Refused("files_not_sent", "考试机未能发送该题的作品文件", why)
                    listing = _listing(payload.get("value"))
                    if listing is not None:
                        listings[e["seq"]] = listing
                    answers.setdefault(no, []).append(
                        {**payload, "seq": payload.get("aseq"), "saved_at": e.get("created_at", self.now())}
                    )
                elif kind == "event":
                    ev_kind = payload.get("kind")
                    if ev_kind not in CLIENT_EVENTS or seat is None:
                        raise Refused("bad_event", "未知的考生端事件", f"unknown client event {ev_kind!r}")
                    if no:
                        writer(no)
                    detail = payload.get("detail") if isinstance(payload.get("detail"), dict) else {}
                    self.event(
                        ev_kind,
                        ip=ip,
                        seat=seat,
                        admission_no=no,
                        operator="",
                        detail={k: str(v)[:100] for k, v in detail.items()},
                    )
                    if ev_kind == "lock_acknowledged" and no:
                        # 我已知晓 (manual 2.12): the candidate read the notice and goes on.
                        Candidate.update(locked=False).where(
                            Candidate.admission_no == no, Candidate.ip == ip
                        ).execute()
                else:
                    raise Refused("bad_entry", "日志条目格式错误", f"unknown entry kind {kind!r}")
            except Refused as exc:
                refused.append({"seq": e["seq"], "code": exc.code})
        for no, given in answers.items():
            try:
                w = writer(no)
                if w.state != "in_exam":
                    raise Refused("not_in_exam", "考生不在考试中", "candidate is not writing")
                valid = self._validate_answers(no, w.subjects, given)
                placed = self._place_received(no, given, listings)
            except Refused as exc:
                refused += [
                    {"seq": e["seq"], "code": exc.code}
                    for e in entries
                    if e.get("kind") == "answer" and "unsent" not in e and str(e.get("admission_no")) == no
                ]
                continue
            finally:
                # Stored, or never to be: what came for these answers is not kept.
                sent = {
                    f["sha256"]
                    for e in entries
                    if str(e.get("admission_no")) == no
                    for f in listings.get(e["seq"], ())
                }
                if sent:
                    with contextlib.suppress(Refused):
                        answer_files.drop_incoming(self.answer_root(), no, sent)
            rows += valid
            self.event(
                "answers_saved",
                ip=ip,
                seat=w.seat_number,
                admission_no=no,
                operator="",
                count=len(valid),
                seq_to=max(r["seq"] for r in valid),
                **({"files": placed} if placed else {}),
            )
        result: dict[str, Any] = {"upto": max(seqs[:waiting], default=0), "refused": refused}
        if waiting < len(seqs):
            result["missing"] = seqs[waiting]
        return result

    def _waiting_for_files(
        self, ip: str, entries: list[dict[str, Any]], writers: dict[tuple[str, str], journal_store.Writer]
    ) -> int:
        """The index of the first answer entry that lists files and would be the newest
        answer to its question, but whose files are not all complete in `.incoming`
        (len(entries) when there is none). An entry that will be refused anyway, or that
        is older than what the box holds, needs no files."""
        stored: dict[str, dict[tuple[str, str], int]] = {}
        for i, e in enumerate(entries):
            payload = e.get("payload")
            if e.get("kind") != "answer" or "unsent" in e or not isinstance(payload, dict):
                continue
            try:
                listing = _listing(payload.get("value"))
            except Refused:
                continue  # refused with its entry
            no, aseq = str(e.get("admission_no", "")), payload.get("aseq")
            w = writers.get((no, ip))
            if listing is None or w is None or w.state != "in_exam" or type(aseq) is not int:
                continue
            if no not in stored:
                stored[no] = {
                    (a.subject, a.question): a.seq
                    for a in Answer.select(Answer.subject, Answer.question, Answer.seq).where(
                        Answer.admission_no == no
                    )
                }
            key = (str(payload.get("subject")), str(payload.get("question")))
            if aseq <= stored[no].get(key, 0):
                continue
            stored[no][key] = aseq  # the entries after it compare with this one
            root = self.answer_root()
            if any(answer_files.received(root, no, f["sha256"], f["size"]) is None for f in listing):
                return i
        return len(entries)

    def _place_received(
        self, admission_no: str, given: list[dict[str, Any]], listings: dict[int, list[dict[str, Any]]]
    ) -> int:
        """The files of the newest listing answer to each question, from `.incoming`
        (`given`: the candidate's answer entries of the frame, `seq` being the aseq). A
        newer answer of no work at all (the app journals an empty collection as null)
        empties a question's folder that holds files."""
        if not listings and all(a.get("value") is not None for a in given):
            return 0  # the hot path: no operation answer in the frame
        newest: dict[tuple[str, str], dict[str, Any]] = {}
        for a in given:
            key = (str(a["subject"]), str(a["question"]))
            if key not in newest or a["seq"] > newest[key]["seq"]:
                newest[key] = a
        root, session = self.answer_root(), self.current_session().number
        groups: dict[tuple[str, str], tuple[int, list[answer_files.Received]]] = {}
        for key, a in newest.items():
            listing = _listing(a.get("value"))
            if listing is not None:
                folder = answer_files.incoming_folder(root, admission_no)
                groups[key] = (
                    a["seq"],
                    [answer_files.Received(*key, f["name"], folder / f["sha256"], f["size"], f["sha256"])
                     for f in listing],
                )  # fmt: skip
            elif a.get("value") is None:
                with contextlib.suppress(Refused):
                    if answer_files.question_folder(root, session, admission_no, *key).is_dir():
                        groups[key] = (a["seq"], [])
        return self._place_files(admission_no, session, groups) if groups else 0


def _listing(value: Any) -> list[dict[str, Any]] | None:
    """An operation task's answer value `{"files": [{name, size, sha256}, ...]}`: its
    listing, checked as the answer package's reader checks a file index; None for any
    other answer. A listing that is not valid is refused (bad_answers)."""
    if not isinstance(value, dict) or "files" not in value:
        return None
    listing, names = value["files"], set()
    if not isinstance(listing, list) or len(listing) > MAX_ANSWER_FILES:
        raise Refused("bad_answers", "作品文件清单无效", "the listing is not a list of at most 1000")
    for f in listing:
        ok = (
            isinstance(f, dict)
            and isinstance(f.get("name"), str)
            and valid_file_name(f["name"])
            and f["name"] not in names
            and type(f.get("size")) is int
            and 0 <= f["size"] <= MAX_FILE_BYTES
            and isinstance(f.get("sha256"), str)
            and _SHA256.fullmatch(f["sha256"]) is not None
        )
        if not ok:
            raise Refused("bad_answers", "作品文件清单无效", f"bad listing entry {f!r:.120}")
        names.add(f["name"])
    return listing
