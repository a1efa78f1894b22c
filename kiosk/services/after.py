"""Collection, the end of the exam and after it (考后管理): single-machine collection,
answer-package import, unified collection, end exam, verification table, the
results package, backup to USB, upload, export, the room status."""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

from kiosk.common.fsutil import write_atomic
from kiosk.common.packages import AnswerPackage
from kiosk.common.signed import open_answer_package, open_sealed, seal
from kiosk.core import candidate as rules
from kiosk.core import timeline
from kiosk.core.candidate import CandidateState
from kiosk.core.errors import Refused
from kiosk.core.verification import CandidateFacts, PackageState, verification_table
from kiosk.services.base import loads
from kiosk.services.candidates import CandidateLink
from kiosk.store import answer_files, answers, events
from kiosk.store.models import (
    Absence,
    Answer,
    Candidate,
    Event,
    Paper,
    Seat,
    Session,
    UsedCode,
)
from kiosk.usb.copy import check_space, copy_files_verified
from kiosk.usb.listing import list_stick

Progress = Callable[[int, int], None]
RESULTS_FORMAT = "results-package"  # signed by the box's key (docs/formats.md)
MAX_PACKAGE_BYTES = 256 * 1024**2  # an answer package larger is refused unread
OPEN_AHEAD = 3  # answer packages opened (in memory) ahead of the one being stored


_KIND_ZH = {
    "room-sheet": "考点信息表",
    "exam-package": "考务数据",
    "session-authorisation": "考试授权",
    "answer-package": "作答包",
    "results-package": "考试结果",
    "app-update": "监考机升级包",
}


class AfterExam(CandidateLink):
    # -- USB sticks --------------------------------------------------------------------

    def usb_sticks(self) -> list[dict[str, Any]]:
        """The sticks plugged in now and the packages on each, with the operation the box
        offers for each package (导入考务数据, 考试授权, 导入作答包 / 单机收卷 …)."""
        sticks = []
        for path in self.ports.usb.sticks():
            found = list_stick(path)
            sticks.append(
                {
                    "path": str(found.path),
                    "free_bytes": found.free_bytes,
                    "total_bytes": found.total_bytes,
                    "packages": [
                        {
                            "kind": p.kind,
                            "kind_zh": _KIND_ZH[p.kind],
                            "path": str(p.path),
                            "size": p.size,
                            "operation": p.operation,
                        }
                        for p in found.packages
                    ],
                }
            )
        return sticks

    # -- answer packages ---------------------------------------------------------------

    def _answer_keys(self) -> tuple[bytes, str, int, dict[str, Seat]]:
        """What opening an answer package takes: the room key, room, session, seats."""
        seats = {s.fingerprint: s for s in Seat.select() if s.fingerprint}
        key = bytes(self.require_exam().package_key)
        return key, self.require_config().room_code, self.current_session().number, seats

    @staticmethod
    def _open_answer_file(
        path: Path, key: bytes, room: str, session: int, seated: set[str], into: bytearray | None = None
    ) -> AnswerPackage:
        """Read and open one package (no database: runs on a worker thread in bulk),
        decrypted `into` a reused buffer when given."""
        try:
            if not path.is_file():
                raise Refused("file_not_found", f"找不到作答包：{path}", f"no such file {path}")
            if path.stat().st_size > MAX_PACKAGE_BYTES:
                raise Refused("file_too_large", "文件过大，不是作答包", "file too large")
            raw = path.read_bytes()
        except OSError as exc:  # a stick pulled out, an unreadable file
            raise Refused(
                "read_failed", f"读取作答包失败：{exc.strerror or exc}", f"cannot read {path}: {exc}"
            ) from exc
        return open_answer_package(raw, key, room, session, seated, into)

    def _read_answer_file(self, path: str) -> AnswerPackage:
        """An answer package exported on a seated exam PC, for this room and session."""
        key, room, session, seats = self._answer_keys()
        pkg = self._open_answer_file(Path(path), key, room, session, set(seats))
        self._check_signer(pkg, seats)
        return pkg

    @staticmethod
    def _check_signer(
        pkg: AnswerPackage, seats: dict[str, Seat], seen: set[tuple[str, str]] | None = None
    ) -> None:
        """Signed by a seated PC is not enough: the candidate must have logged in there
        (`seen`: the (candidate, IP) pairs of the event log, when many are checked)."""
        signer = seats[pkg.signer]
        if seen is not None:
            been_there = (pkg.admission_no, signer.ip) in seen
        else:
            query = Event.select().where(Event.admission_no == pkg.admission_no, Event.ip == signer.ip)
            been_there = query.exists()
        if not been_there:
            raise Refused(
                "foreign_candidate",
                f"考生 {pkg.admission_no} 没有在导出该作答包的考试机（机位 {signer.number:03d}）上登录过",
                "the candidate never logged in at the PC that signed the package",
            )

    def _merge_answers(self, c: Candidate, pkg: AnswerPackage, sync: bool = True) -> int:
        """Newest sequence wins; an operation task's files go with its answer (as when they
        come over the room network: `_place_files`). The files are durable before the
        answers that name them commit (`sync=False`: the caller makes them durable before
        its commit)."""
        rows = self._validate_answers(c.admission_no, loads(c.subjects) or [], list(pkg.answers))
        seqs = {(r["subject"], r["question"]): r["seq"] for r in rows}
        if any((f.subject, f.question) not in seqs for f in pkg.files):
            raise Refused("bad_answers", "作答包中有不属于任何答案的文件", "a file without its answer")
        # A question answered by a file listing holds exactly the files the package has
        # for it (none: the folder is emptied).
        listed = {
            (a["subject"], a["question"])
            for a in pkg.answers
            if isinstance(a["value"], dict) and "files" in a["value"]
        }
        groups = {
            key: (seq, [f for f in pkg.files if (f.subject, f.question) == key])
            for key, seq in seqs.items()
            if key in listed or any((f.subject, f.question) == key for f in pkg.files)
        }
        self._place_files(c.admission_no, c.session.number, groups, sync)
        return answers.upsert_newest(rows)

    def _import_one(self, pkg: AnswerPackage, c: Candidate, sync: bool = True) -> dict[str, Any]:
        """Inside the caller's transaction. A package with nothing newer than what the box
        holds (the same package again, or an older export) changes nothing, not even the
        event log: the answer says so."""
        newer = self._merge_answers(c, pkg, sync)
        if newer == 0:
            return {
                "admission_no": c.admission_no,
                "answers": len(pkg.answers),
                "newer": 0,
                "message": "作答包中没有比监考机上更新的作答，未做任何更改",
            }
        self.event(
            "answers_imported",
            admission_no=c.admission_no,
            signer=pkg.signer,
            created_at=pkg.created_at,
            newer=newer,
            seq_range=list(pkg.seq_range),
        )
        return {"admission_no": c.admission_no, "answers": len(pkg.answers), "newer": newer}

    def import_answers(self, path: str) -> dict[str, Any]:
        """导入作答包: the newer answers win; the candidate is then resumed elsewhere."""
        pkg = self._read_answer_file(path)
        with self.tx():
            return self._import_one(pkg, self.get_candidate(pkg.admission_no, self.current_session()))

    def import_answers_all(self, folder: str = "") -> dict[str, Any]:
        """导入作答包 for every answer package on a stick (or in a folder): two worker
        threads open the next packages while one is stored; a refused package is named
        with its reason and changes nothing, the others go in. The files of all are made
        durable with one sync, before the one commit."""
        found = [p for p in list_stick(self._stick(folder)).packages if p.kind == "answer-package"]
        key, room, session, seats = self._answer_keys()
        query = Candidate.select(Candidate, Session).join(Session)  # storing reads c.session
        people = {c.admission_no: c for c in query.where(Candidate.session == self.current_session())}
        seen = set(
            Event.select(Event.admission_no, Event.ip).where(Event.admission_no != "").distinct().tuples()
        )
        imported: list[dict[str, Any]] = []
        refused: list[dict[str, str]] = []
        waiting = deque(enumerate(found))
        # Package n is decrypted into buffer n % len(buffers): one for the package being
        # stored and one for each being opened (memory filled again costs less than fresh).
        buffers = [bytearray() for _ in range(OPEN_AHEAD + 1)]
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="answer-open") as pool, self.tx():
            ahead: deque[tuple[Path, Future[AnswerPackage]]] = deque()

            def open_next() -> None:
                if waiting:
                    n, p = waiting.popleft()
                    slot = n % len(buffers)
                    if len(buffers[slot]) < p.size <= MAX_PACKAGE_BYTES:
                        buffers[slot] = bytearray(p.size)
                    args = (p.path, key, room, session, set(seats), buffers[slot])
                    ahead.append((p.path, pool.submit(self._open_answer_file, *args)))

            for _ in range(OPEN_AHEAD):
                open_next()
            while ahead:
                path, opening = ahead.popleft()
                open_next()
                try:
                    pkg = opening.result()
                    self._check_signer(pkg, seats, seen)
                    c = people.get(pkg.admission_no) or self.get_candidate(
                        pkg.admission_no, self.current_session()
                    )
                    with self.tx():  # a savepoint: a package refused here leaves no trace
                        imported.append({"file": path.name, **self._import_one(pkg, c, sync=False)})
                except Refused as exc:
                    refused.append({"file": path.name, "code": exc.code, "zh": exc.zh})
            os.sync()
        return {
            "imported": imported,
            "refused": refused,
            "newer": sum(i["newer"] for i in imported),
        }

    def collect(self, path: str) -> dict[str, Any]:
        """单机收卷: take the answers from a package and mark the candidate submitted."""
        pkg = self._read_answer_file(path)
        session = self.current_session()
        timeline.check_collect(self.now(), session.actual_start, self.policy())
        with self.tx():
            c = self.get_candidate(pkg.admission_no, session)
            if c.state == CandidateState.SUBMITTED and c.collected:
                return {"admission_no": c.admission_no, "already": True}
            if c.state not in (
                CandidateState.LOGGED_IN,
                CandidateState.IN_EXAM,
                CandidateState.SUBMITTED,
            ):
                raise Refused(
                    "not_in_exam",
                    f"该考生状态为「{rules.STATE_ZH[CandidateState(c.state)]}」，不能收卷",
                    "candidate did not sit the exam",
                )
            newer = self._merge_answers(c, pkg)
            Candidate.update(
                state=CandidateState.SUBMITTED.value,
                submitted_at=self.now(),
                collected=True,
                package_state="valid",
                locked=False,
                resume_pending=False,
            ).where(Candidate.id == c.id).execute()
            self.event("collected", admission_no=c.admission_no, signer=pkg.signer, newer=newer)
        return {
            "admission_no": c.admission_no,
            "answers": len(pkg.answers),
            "newer": newer,
            "already": False,
        }

    def collect_all(self) -> dict[str, Any]:
        """统一收卷 (mock mode): every answer app submits on command."""
        if not self.policy().mock:
            raise Refused("mock_only", "统一收卷只在模考模式下可用", "unified collection is mock mode only")
        session = self.current_session()
        ips = [
            c.ip
            for c in Candidate.select().where(
                Candidate.session == session, Candidate.state == "in_exam", Candidate.ip != ""
            )
        ]
        sent = self.ports.seats.send(ips, "collect", {})
        with self.tx():
            self.event("collect_all", ok=len(sent.ok), failed=sent.failed)
        return {"ok": list(sent.ok), "failed": sent.failed}

    # -- end ---------------------------------------------------------------------------

    def end(self, password: str) -> dict[str, Any]:
        session = self.current_session()
        if session.actual_start is None:
            raise Refused("not_started", "考试尚未开始", "the exam has not started")
        timeline.check_end_exam(CandidateState(c.state) for c in self.candidate_rows(session))
        self.verify_password(password)
        with self.tx():
            Session.update(ended_at=self.now()).where(Session.id == session.id).execute()
            self.event("exam_ended", session=session.number)
        self.ports.seats.send([s.ip for s in Seat.select()], "close_client", {})
        return {"session": session.number, "ended_at": self.now()}

    def _after_session(self, number: int | None) -> Session:
        if number is not None:
            s = self.get_session(number)
        else:
            s = (
                Session.select()
                .where(Session.ended_at.is_null(False))
                .order_by(Session.ended_at.desc())
                .first()
            )
            if s is None:
                raise Refused("not_ended", "还没有已结束的场次", "no ended session")
        if s.ended_at is None:
            raise Refused("not_ended", f"第 {s.number} 场次尚未结束考试", f"session {s.number} not ended")
        return s

    # -- verification table ---------------------------------------------------------------

    def verify(self, session: int | None = None) -> dict[str, Any]:
        s = self._after_session(session)
        questions = {p.subject.code: p.question_count for p in Paper.select().where(Paper.session == s)}
        facts = []
        for c in self.candidate_rows(s):
            subjects = loads(c.subjects) or []
            answered = Answer.select().where(Answer.admission_no == c.admission_no).count()
            facts.append(
                CandidateFacts(
                    seq=c.seq,
                    admission_no=c.admission_no,
                    name=c.name,
                    state=CandidateState(c.state),
                    answered=answered,
                    questions=sum(questions.get(x, 0) for x in subjects),
                    package=PackageState(c.package_state),
                    collected=c.collected,
                    violation=self.view(c).flags.violation,
                    extra_time=c.extra_s > 0,
                )
            )
        table = verification_table(facts)
        return {
            "session": s.number,
            "rows": [asdict(r) for r in table.rows],
            "totals": asdict(table.totals),
            "ok": table.ok,
        }

    def results(self, session: int | None = None) -> dict[str, Any]:
        """Everything the site needs after the exam, as one document."""
        s = self._after_session(session)
        cands = self.candidate_rows(s)
        nos = [c.admission_no for c in cands]
        return {
            "room_code": self.require_config().room_code,
            "session": s.number,
            "created_at": self.now(),
            "candidates": self.candidate_dicts(cands),
            "answers": [
                dict(
                    admission_no=a.admission_no,
                    subject=a.subject,
                    question=a.question,
                    value=loads(a.value),
                    seq=a.seq,
                    saved_at=a.saved_at,
                )
                for a in Answer.select()
                .where(Answer.admission_no.in_(nos))
                .order_by(Answer.admission_no, Answer.subject, Answer.question)
            ],
            "events": [
                dict(
                    id=e.id,
                    ts=e.ts,
                    operator=e.operator,
                    ip=e.ip,
                    seat=e.seat,
                    admission_no=e.admission_no,
                    kind=e.kind,
                    payload=loads(e.payload),
                    hash=e.hash,
                )
                for e in Event.select().order_by(Event.id)
            ],
            "violations": self.violations(s.number),
            "resumes": self.resumes(s.number),
            "extra_time": self.extra_times(s.number),
            "absences": [
                dict(
                    admission_no=a.candidate.admission_no,
                    subjects=loads(a.subjects),
                    time=a.created_at,
                )
                for a in Absence.select().join(Candidate).where(Candidate.session == s)
            ],
            "codes_used": [
                dict(
                    code=u.code,
                    purpose=u.purpose,
                    challenge=u.challenge,
                    amount=u.amount,
                    admission_no=u.admission_no,
                    time=u.used_at,
                )
                for u in UsedCode.select().where(UsedCode.session_number == s.number)
            ],
            "situation": self.situation(s.number),
            "verification": self.verify(s.number),
            "event_chain": asdict(events.verify_chain()),
        }

    def _results_file(self, s: Session, path: Path) -> list[tuple[Path, str]]:
        """The signed results package, written to `path` on the box's disk, and the
        session's answer files that go with it (source, name on the stick)."""
        root, room = self.answer_root(), self.require_config().room_code
        stored = list(answer_files.session_files(root, s.number))
        files = [(src, f"answer-files-{room}/{src.relative_to(root)}") for src, _ in stored]
        doc = self.results(s.number)
        doc["files"] = [
            {"path": rel, "size": row.size, "sha256": row.sha256}
            for (_, rel), (_, row) in zip(files, stored, strict=True)
        ]
        assert self.identity is not None, "bootstrap gives the service the box's identity"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, seal(self.identity, RESULTS_FORMAT, doc))
        return files

    def _outbox(self, s: Session) -> Path:
        return self.home / "outbox" / f"results-{self.require_config().room_code}-{s.number}.json"

    def _copy_out(self, folder: Path, s: Session, progress: Progress | None, path: Path) -> dict[str, Any]:
        """The results package (made at `path`) and the answer files, as one verified
        copy: a stick with too little room is refused before anything is written."""
        stored = list(answer_files.session_files(self.answer_root(), s.number))
        # The work files alone must fit before anything is made; the copy checks again
        # with the package counted.
        check_space(folder, sum(row.size for _, row in stored))
        files = self._results_file(s, path)
        done = copy_files_verified(folder, [(path, path.name), *files], progress)
        return {
            "path": str(folder / path.name),
            "bytes": done.bytes,
            "files": len(files),
            "sha256": done.files[path.name],
            "seconds": round(done.seconds, 3),
        }

    def _stick(self, dest: str) -> Path:
        folder = Path(dest) if dest else next(iter(self.ports.usb.sticks()), None)
        if folder is None:
            raise Refused("no_usb", "请接入外部存储设备（U盘、移动硬盘）", "no USB stick")
        if not folder.is_dir():
            raise Refused("bad_folder", f"目标文件夹不存在：{folder}", f"no folder {folder}")
        return folder

    def backup(
        self, dest: str = "", session: int | None = None, progress: Progress | None = None
    ) -> dict[str, Any]:
        """Step one of the report: a verified copy of the results and the answer files on
        external storage (the first stick when no folder is given)."""
        folder = self._stick(dest)
        s = self._after_session(session)
        copied = self._copy_out(folder, s, progress, self._outbox(s))  # what the upload sends
        with self.tx():
            Session.update(backed_up_at=self.now()).where(Session.id == s.id).execute()
            self.event("results_backed_up", session=s.number, **copied)
        return copied

    def upload(self, session: int | None = None, progress: Progress | None = None) -> dict[str, Any]:
        """Step two: the very package that step one backed up goes to the site (resumable;
        again after a success, the site answers as before)."""
        s = self._after_session(session)
        cfg = self.require_config()
        path = self._outbox(s)
        if s.backed_up_at is None or not path.is_file():
            raise Refused("backup_first", "上报前请先将考试结果备份到外部存储（第一步）", "back up first")
        if not cfg.site_mode:
            raise Refused("not_site_mode", "未开启考点模式，请将U盘中的结果交考点上报", "site mode is off")
        assert self.identity is not None, "bootstrap gives the service the box's identity"
        listed = open_sealed(path.read_bytes(), RESULTS_FORMAT, self.identity.cert_pem)["files"]
        # Each listed file under the answer folder: "answer-files-<room>/<path under it>".
        files = [(self.answer_root() / f["path"].split("/", 1)[1], f["sha256"]) for f in listed]
        answer = self.site().upload_results(
            cfg.room_code, path, progress or (lambda done, total: None), files
        )
        with self.tx():
            Session.update(uploaded_at=self.now()).where(Session.id == s.id).execute()
            self.event("results_uploaded", session=s.number, sha256=_sha256_file(path))
        return {"uploaded": True, "message": "上报完成", "site": answer}

    def export(
        self, dest: str, session: int | None = None, progress: Progress | None = None
    ) -> dict[str, Any]:
        folder = self._stick(dest)
        s = self._after_session(session)
        copied = self._copy_out(folder, s, progress, self.home / "outbox" / "export" / self._outbox(s).name)
        with self.tx():
            self.event("results_exported", session=s.number, **copied)
        return {**copied, "message": "导出完成"}


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()
