"""Documents and exports from the room service, so the command line and the touch app
write the same files: situation record and environment report (HTML), lists as
XLSX or CSV, the seat list in and out, and the whole room status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kiosk.common.fsutil import write_atomic
from kiosk.core.candidate import CandidateState
from kiosk.core.errors import Refused
from kiosk.services import documents
from kiosk.services.after import AfterExam
from kiosk.services.base import loads
from kiosk.store.models import Absence, Candidate, Session

EXPORT_KINDS = ("violations", "resumes", "extra-time", "candidate-log", "verification", "seats")
SEAT_COLUMNS = {
    "seat": ["机位号", "机位", "seat"],
    "ip": ["IP", "IP地址", "ip"],
    "name": ["计算机名", "名称", "name"],
    "note": ["备注", "note"],
}


class Reports(AfterExam):
    def situation(self, session_no: int | None = None) -> dict[str, Any]:
        s = self.session_of(session_no)
        exam = self.require_exam()
        cands = self.candidate_rows(s)
        states = [c.state for c in cands]
        violations = self.violations(s.number)
        extra = self.extra_times(s.number)
        resumes = self.resumes(s.number)
        end = (
            max((self.candidate_deadline(c, s) or 0 for c in cands), default=None) if s.actual_start else None
        )
        absences = [
            dict(
                name=a.candidate.name,
                admission_no=a.candidate.admission_no,
                subjects=",".join(loads(a.subjects) or []),
            )
            for a in Absence.select().join(Candidate).where(Candidate.session == s)
        ]
        return {
            "exam_name": exam.name,
            "site_code": exam.site_code,
            "site_name": exam.site_name,
            "room_code": exam.room_code,
            "session_number": s.number,
            "session_name": s.name,
            "start": s.actual_start,
            "end": s.ended_at or end,
            "state_zh": self.session_state_zh(s),
            "admin": {"name": s.admin_name, "phone": s.admin_phone},
            "invigilator": {"name": s.invigilator_name, "phone": s.invigilator_phone},
            "totals": {
                "expected": len(cands),
                "sat": sum(st in ("logged_in", "in_exam", "submitted") for st in states),
                "absent": states.count("absent"),
                "violations": len({v["admission_no"] for v in violations}),
                "extra_time": len({e["admission_no"] for e in extra}),
                "resumes": len({r["admission_no"] for r in resumes}),
            },
            "absences": absences,
            "violations": violations,
            "extra_time": extra,
            "resumes": resumes,
            "generated_at": self.now(),
        }

    def candidate_deadline(self, c: Candidate, s: Session) -> float | None:
        if s.actual_start is None:
            return None
        return s.actual_start + self.duration_s(c) + c.extra_s

    def situation_record(self, path: str, session_no: int | None = None) -> dict[str, Any]:
        html = documents.render_situation_record(self.situation(session_no))
        target = self._html_target(path)
        write_atomic(target, html.encode("utf-8"))
        return {"path": str(target)}

    def envcheck_report(self, path: str) -> dict[str, Any]:
        data = {
            **self.envcheck_result(),
            "room_code": self.require_config().room_code,
            "generated_at": self.now(),
        }
        if data["run"] is None:
            raise Refused("no_previous_check", "还没有检测结果，请先检测", "no environment check yet")
        target = self._html_target(path)
        write_atomic(target, documents.render_envcheck_report(data).encode("utf-8"))
        return {"path": str(target)}

    @staticmethod
    def _html_target(path: str) -> Path:
        target = Path(path)
        if target.suffix.lower() not in (".html", ".htm") or not target.parent.is_dir():
            raise Refused("bad_path", "请选择已存在文件夹中的 .html 文件", f"bad HTML target {path}")
        return target

    # -- lists as XLSX / CSV ----------------------------------------------------------

    def export_list(
        self, kind: str, path: str, admission_no: str = "", session: int | None = None
    ) -> dict[str, Any]:
        """One list as .xlsx or .csv (by the file's suffix); the lists of a session are
        those of the session named, else the one being run, else the one ended last."""
        if kind not in EXPORT_KINDS:
            raise Refused("bad_export_kind", f"未知的导出类型：{kind}", f"unknown export {kind}")
        fmt = documents.fmt_time
        number = self.session_of(session).number if kind in ("violations", "resumes", "extra-time") else None
        if kind == "violations":
            headers = ["准考证号", "姓名", "违纪代码", "违纪类型", "违纪情况描述", "处理时间"]
            rows = [
                [
                    v["admission_no"],
                    v["name"],
                    v["code"],
                    v["text"],
                    v["description"],
                    fmt(v["time"]),
                ]
                for v in self.violations(number)
            ]
        elif kind == "resumes":
            headers = ["准考证号", "姓名", "处理时间", "IP地址", "异常情况", "异常描述", "处理人员"]
            rows = [
                [
                    r["admission_no"],
                    r["name"],
                    fmt(r["time"]),
                    r["ip"],
                    r["situation"],
                    r["description"],
                    r["handler"],
                ]
                for r in self.resumes(number)
            ]
        elif kind == "extra-time":
            headers = [
                "准考证号",
                "姓名",
                "补时(秒)",
                "实际补时(秒)",
                "累计补时(秒)",
                "补时原因",
                "处理时间",
            ]
            rows = [
                [
                    e["admission_no"],
                    e["name"],
                    e["requested_s"],
                    e["granted_s"],
                    e["total_s"],
                    e["reason"],
                    fmt(e["time"]),
                ]
                for e in self.extra_times(number)
            ]
        elif kind == "candidate-log":
            log = self.candidate_log(admission_no)
            headers = ["序号", "时间", "IP", "操作"]
            rows = [[x["n"], fmt(x["time"]), x["ip"], x["text"]] for x in log["log"]]
        elif kind == "verification":
            table = self.verify(session)  # an ended session
            headers = [
                "序号",
                "准考证号",
                "姓名",
                "考试状态",
                "答题进度",
                "作答包状态",
                "回收状态",
                "违纪",
                "问题",
            ]
            rows = [
                [
                    r["seq"],
                    r["admission_no"],
                    r["name"],
                    r["state_zh"],
                    "" if r["progress_pct"] is None else f"{r['progress_pct']}%",
                    r["package_zh"],
                    "✓" if r["collected"] else "",
                    "Y" if r["violation"] else "",
                    r["problem_zh"],
                ]
                for r in table["rows"]
            ]
        else:  # "seats"
            headers = ["机位号", "IP", "计算机名", "备注"]
            rows = [[s["seat"], s["ip"], s["hostname"], s["note"]] for s in self.seats()]
        target = documents.write_table(path, headers, rows)
        return {"path": str(target), "rows": len(rows)}

    def seats_import(self, path: str) -> dict[str, Any]:
        return self.import_seat_rows(documents.read_table(path, SEAT_COLUMNS))

    # -- the whole room ------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The room at a glance: parameters, wizard, seats, the current session and its candidates."""
        cfg = self.config()
        out: dict[str, Any] = {
            "box_time": self.now(),
            "config": None
            if cfg is None
            else dict(
                room_code=cfg.room_code,
                site_mode=cfg.site_mode,
                site_ip=cfg.site_ip,
                box_ip=cfg.box_ip,
                answer_dir=cfg.answer_dir,
            ),
            "site_link": self.site_link(),
            "wizard": self.wizard(),
            "user": self.user(),
            "seats": self.seats(),
            "exam": self.exam_summary(),
            "session": None,
        }
        try:
            s = self.current_session()
        except Refused:
            return out
        cands = self.candidate_dicts(self.candidate_rows(s))
        states = [c["state"] for c in cands]
        out["session"] = {
            "number": s.number,
            "name": s.name,
            "state_zh": self.session_state_zh(s),
            "scheduled_start": s.scheduled_start,
            "login_allowed": s.login_allowed_at is not None,
            "actual_start": s.actual_start,
            "countdown": self.countdown(),
            "counts": {
                "expected": len(cands),
                "logged_in": states.count(CandidateState.LOGGED_IN.value),
                "in_exam": states.count(CandidateState.IN_EXAM.value),
                "submitted": states.count(CandidateState.SUBMITTED.value),
                "absent": states.count(CandidateState.ABSENT.value),
                "violations": sum(c["violation"] for c in cands),
                "resumes": sum(c["resumed"] for c in cands),
                "extra_time": sum(c["extra_s"] > 0 for c in cands),
                "offline": sum(
                    1 for c in cands if c["state"] in ("logged_in", "in_exam") and not c["online"]
                ),
                "hands": sum(c["hand_raised"] for c in cands),
            },
            "remaining_s": max((c["remaining_s"] for c in cands), default=0),
            "candidates": cands,
        }
        return out

    def log_verify(self) -> dict[str, Any]:
        from dataclasses import asdict

        from kiosk.store.events import verify_chain

        return asdict(verify_chain())
