"""Before the exam (考前管理): the 1-2-3-4-5 wizard — parameters, environment check,
exam data, seal check, and which steps are done (the seats are in seats.py)."""

from __future__ import annotations

import hashlib
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from kiosk.common.fsutil import write_atomic
from kiosk.common.signed import RoomSheet, read_exam_package, read_room_sheet
from kiosk.core.envcheck import Requirements, env_passed, judge_env
from kiosk.core.errors import Refused
from kiosk.core.policy import Policy
from kiosk.core.sealcheck import SealFacts, seal_check
from kiosk.platform.netif import ipv4_interfaces
from kiosk.services.base import dumps, loads
from kiosk.services.seats import Seats, check_ip
from kiosk.store.models import (
    Candidate,
    EnvResult,
    EnvRun,
    Exam,
    ImportedPackage,
    Paper,
    RoomConfig,
    SealResult,
    Seat,
    Session,
    SiteTrust,
    Subject,
)

ROOM_CODE = re.compile(r"^\d{10}$")
REGISTRATION_CODE = re.compile(r"^[A-Z]{8}$")


def _local(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def read_package_file(path: str, limit: int, what_zh: str) -> bytes:
    """A package file from a stick or a folder: missing, too large or unreadable (a
    stick pulled out) is refused with the reason, before anything is parsed."""
    p = Path(path)
    try:
        if not p.is_file():
            raise Refused("file_not_found", f"找不到{what_zh}文件：{path}", f"no such file {path}")
        if p.stat().st_size > limit:
            raise Refused("file_too_large", f"文件过大，不是{what_zh}", f"{path} is over {limit} bytes")
        return p.read_bytes()
    except OSError as exc:
        raise Refused(
            "read_failed", f"读取{what_zh}失败：{exc.strerror or exc}", f"cannot read {path}: {exc}"
        ) from exc


class BeforeExam(Seats):
    # -- 1 parameters ---------------------------------------------------------------

    def interfaces(self) -> list[dict[str, str]]:
        return [asdict(i) for i in ipv4_interfaces(include_loopback=True)]

    def configure(
        self,
        room_code: str,
        answer_dir: str,
        box_ip: str = "",
        site_mode: bool = False,
        site_ip: str = "",
        registration_code: str = "",
    ) -> dict[str, Any]:
        room_code = room_code.strip()
        if not ROOM_CODE.match(room_code):
            raise Refused(
                "bad_room_code",
                "考场代码应为10位数字（考点代码7位+3位）",
                "room code must be 10 digits",
            )
        if site_mode:
            site_ip = check_ip(site_ip, "考点机 IP ")
            registration_code = registration_code.strip().upper()
            if not REGISTRATION_CODE.match(registration_code):
                raise Refused(
                    "bad_registration_code",
                    "注册码应为8个英文字母",
                    "registration code must be 8 letters",
                )
        ips = [i["ip"] for i in self.interfaces()]
        if not box_ip:
            usable = [ip for ip in ips if not ip.startswith("127.")]
            if len(usable) != 1:
                raise Refused(
                    "choose_box_ip",
                    "本机有多个网卡，请选择监考机 IP",
                    f"several interfaces, choose the box IP among {usable}",
                )
            box_ip = usable[0]
        if check_ip(box_ip, "监考机 ") not in ips:
            raise Refused(
                "box_ip_not_local",
                f"{box_ip} 不是本机的 IP 地址",
                f"{box_ip} is not an address of this box",
            )
        folder = Path(answer_dir).expanduser()
        if not folder.is_absolute():
            raise Refused("bad_answer_dir", "答案文件夹必须是绝对路径", "answer folder must be absolute")
        existing = next((p for p in [folder, *folder.parents] if p.exists()), Path("/"))
        free = shutil.disk_usage(existing).free
        if free < self.settings.min_free_bytes:
            raise Refused(
                "disk_too_small",
                f"答案文件夹所在磁盘剩余空间 {free / 1024**3:.1f} GB，不足 "
                f"{self.settings.min_free_bytes / 1024**3:.0f} GB，不能保存",
                f"only {free} bytes free under {folder}",
            )
        # In site mode the site answers the registration with the room sheet: checked
        # before anything is saved, pinned with the parameters.
        sheet = None
        if site_mode:
            raw = self.site(site_ip).register(room_code, registration_code)
            sheet = read_room_sheet(raw, registration_code, room_code)
        folder.mkdir(parents=True, exist_ok=True)
        values = dict(
            room_code=room_code,
            site_mode=site_mode,
            site_ip=site_ip if site_mode else "",
            registration_code=registration_code if site_mode else "",
            box_ip=box_ip,
            answer_dir=str(folder),
            saved_at=self.now(),
        )
        with self.tx():
            RoomConfig.insert(id=1, **values).on_conflict_replace().execute()
            self.event("config_saved", **{k: v for k, v in values.items() if k != "saved_at"})
            if sheet is not None:
                self._pin(sheet, "site")
        return values

    # -- 3 environment check ----------------------------------------------------------

    def requirements(self) -> Requirements:
        exam = self.exam()
        overrides = loads(exam.requirements) if exam else {}
        fields = {
            k: tuple(v) if isinstance(v, list) else v
            for k, v in (overrides or {}).items()
            if k in Requirements.__dataclass_fields__
        }
        fields.setdefault("max_clock_skew_s", self.settings.max_clock_skew_s)
        fields.setdefault("max_rtt_ms", self.settings.max_rtt_ms)
        return Requirements(**fields)

    def envcheck(
        self, retest_failed: bool = False, progress: Callable[[int, int], None] | None = None
    ) -> dict[str, Any]:
        seats = list(Seat.select().order_by(Seat.number))
        if not seats:
            raise Refused("no_seats", "请先添加机位", "no seats to check")
        last = self._last_env_run()
        req = self.requirements()
        passed_before: set[int] = set()
        if retest_failed:
            if last is None:
                raise Refused("no_previous_check", "还没有检测结果，请先检测", "no previous check")
            passed_before = {r.seat_number for r in last.results if self._passes(r, req)}
            seats = [s for s in seats if s.number not in passed_before]
        started = self.now()
        reports: dict[str, dict[str, Any]] = {}
        for i in range(0, len(seats), 10):  # progress in steps of ten PCs
            batch = seats[i : i + 10]
            reports.update(self.ports.seats.env_check([s.ip for s in batch], req.required_software))
            if progress:
                progress(min(i + 10, len(seats)), len(seats))
        with self.tx():
            run = EnvRun.create(
                started_at=started,
                finished_at=self.now(),
                retest=retest_failed,
                requirements=dumps(asdict(req)),
            )
            if retest_failed and last is not None:  # carry the passed PCs over
                for r in last.results:
                    if r.seat_number in passed_before:
                        EnvResult.create(
                            run=run,
                            seat_number=r.seat_number,
                            ip=r.ip,
                            checked_at=r.checked_at,
                            report=r.report,
                            items=r.items,
                            passed=True,
                        )
            passed = failed_n = 0
            for s in seats:
                report = reports.get(s.ip)
                items = judge_env(report if isinstance(report, dict) else {}, req)
                ok = report is not None and env_passed(items)
                passed += ok
                failed_n += not ok
                EnvResult.create(
                    run=run,
                    seat_number=s.number,
                    ip=s.ip,
                    checked_at=self.now(),
                    report=dumps(report),
                    items=dumps([asdict(x) for x in items]),
                    passed=ok,
                )
            self.event(
                "envcheck_done",
                run=run.id,
                retest=retest_failed,
                checked=len(seats),
                passed=passed,
                failed=failed_n,
            )
        return self.envcheck_result()

    @staticmethod
    def _last_env_run() -> EnvRun | None:
        return EnvRun.select().order_by(EnvRun.id.desc()).first()

    @staticmethod
    def _passes(result: EnvResult, req: Requirements) -> bool:
        """A PC's report judged against the requirements of now: a check made before the
        exam data was loaded did not know the exam's (its required software, say)."""
        report = loads(result.report)
        return isinstance(report, dict) and env_passed(judge_env(report, req))

    def envcheck_result(self) -> dict[str, Any]:
        run = self._last_env_run()
        if run is None:
            return {
                "run": None,
                "checked_at": None,
                "total": 0,
                "passed": 0,
                "failed": 0,
                "pcs": [],
            }
        pcs = [
            dict(
                seat=f"{r.seat_number:03d}",
                ip=r.ip,
                passed=r.passed,
                checked_at=r.checked_at,
                items=loads(r.items),
            )
            for r in run.results.order_by(EnvResult.seat_number)
        ]
        passed = sum(p["passed"] for p in pcs)
        return {
            "run": run.id,
            "checked_at": run.finished_at,
            "total": len(pcs),
            "passed": passed,
            "failed": len(pcs) - passed,
            "requirements": loads(run.requirements),
            "pcs": pcs,
        }

    # -- 4 exam data ------------------------------------------------------------------

    def exam_download(self) -> dict[str, Any]:
        cfg = self.require_config()
        if not cfg.site_mode:
            raise Refused("not_site_mode", "未开启考点模式，请从U盘导入考务数据", "site mode is off")
        if SiteTrust.get_or_none() is None:
            self.site_register()
        return self._load_exam(self.site().download_exam(cfg.room_code), "site")

    def site_register(self) -> dict[str, Any]:
        """向考点注册: the site answers with the room sheet, pinned like one from USB."""
        cfg = self.require_config()
        if not cfg.site_mode:
            raise Refused("not_site_mode", "未开启考点模式，请从U盘导入考点信息表", "site mode is off")
        if not cfg.registration_code:
            raise Refused("registration_code_missing", "请在参数配置中填写考场注册码", "no registration code")
        raw = self.site().register(cfg.room_code, cfg.registration_code)
        sheet = read_room_sheet(raw, cfg.registration_code, cfg.room_code)
        with self.tx():
            return self._pin(sheet, "site")

    def room_sheet_import(self, path: str, registration_code: str = "") -> dict[str, Any]:
        """The room sheet (考点信息表) from USB: its proof must hold for the registration
        code (typed here, else the one in the parameters); the site certificate it
        carries is then pinned. Another site key later is refused: only initialising the
        box forgets a pinned site."""
        cfg = self.require_config()
        code = registration_code or cfg.registration_code
        if not code:
            raise Refused("registration_code_missing", "请输入考场注册码", "no registration code")
        raw = read_package_file(path, 1024**2, "考点信息表")
        sheet = read_room_sheet(raw, code, cfg.room_code)  # refuses before any write
        with self.tx():
            return self._pin(sheet, Path(path).name)

    def _pin(self, sheet: RoomSheet, source: str) -> dict[str, Any]:
        """Pin the sheet's site certificate (inside the caller's transaction)."""
        pinned = SiteTrust.get_or_none()
        if pinned is not None and pinned.fingerprint != sheet.site_fingerprint:
            raise Refused(
                "site_key_changed",
                "考点信息表的考点证书与已导入的不同，请核实来源（如确需更换，请先初始化监考机）",
                "the sheet carries another site key than the pinned one",
            )
        if pinned is not None and sheet.issued_at < pinned.issued_at:
            raise Refused("stale_sheet", "该考点信息表比已导入的旧", "the sheet is older than the pinned one")
        if pinned is None or sheet.issued_at > pinned.issued_at:
            SiteTrust.delete().execute()
            SiteTrust.create(
                site_code=sheet.site_code,
                site_name=sheet.site_name,
                site_ip=sheet.site_ip,
                fingerprint=sheet.site_fingerprint,
                cert_pem=sheet.site_cert_pem.decode(),
                issued_at=sheet.issued_at,
                loaded_at=self.now(),
            )
            self.event(
                "room_sheet_loaded",
                source=source,
                site_code=sheet.site_code,
                fingerprint=sheet.site_fingerprint,
            )
        return {
            "site_code": sheet.site_code,
            "site_name": sheet.site_name,
            "site_ip": sheet.site_ip,
            "fingerprint": sheet.site_fingerprint,
            "sessions": list(sheet.sessions),
        }

    def exam_import(self, path: str) -> dict[str, Any]:
        self.require_config()
        return self._load_exam(read_package_file(path, 512 * 1024**2, "考务数据"), Path(path).name)

    def _load_exam(self, raw: bytes, source: str) -> dict[str, Any]:
        cfg = self.require_config()
        data = read_exam_package(raw, self.site_cert())  # refuses before anything is written
        if data.room_code != cfg.room_code:
            raise Refused(
                "foreign_room",
                f"考务数据属于考场 {data.room_code}，不是本考场 {cfg.room_code}",
                f"package is for room {data.room_code}",
            )
        policy = Policy.from_dict(data.policy)
        digest = hashlib.sha256(raw).hexdigest()
        existing = self.exam()
        if existing is not None:
            if existing.package_sha256 == digest:
                return {"already_loaded": True, **self.exam_summary()}
            loaded_at = self._loaded_issued_at(existing.package_sha256)
            if loaded_at is not None and data.issued_at < loaded_at:
                raise Refused(
                    "stale_exam",
                    f"该考务数据（签发于 {_local(data.issued_at)}）比已载入的（签发于 "
                    f"{_local(loaded_at)}）旧，不能导入",
                    f"issued at {data.issued_at:.0f}, before the loaded one ({loaded_at:.0f})",
                )
            raise Refused(
                "exam_already_loaded",
                "考务数据已载入；如需更换请先初始化监考机",
                "exam data already loaded",
            )
        # The papers stay sealed in the package file until their session is authorised;
        # the file is durable before the row that names it commits.
        self.exam_package_path(digest).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.exam_package_path(digest), raw)
        with self.tx():
            Exam.create(
                name=data.name,
                site_code=data.site_code,
                site_name=data.site_name,
                room_code=data.room_code,
                policy=dumps(policy.to_dict()),
                site_secret=data.site_secret,
                package_key=data.package_key,
                violation_codes=dumps([list(v) for v in data.violation_codes]),
                situation_types=dumps(list(data.situation_types)),
                staff=dumps(list(data.staff)),
                requirements=dumps(data.requirements),
                package_sha256=digest,
                loaded_at=self.now(),
            )
            for s in data.subjects:
                Subject.create(code=s.code, name=s.name, duration_s=s.duration_s, kind=s.kind)
            sessions = {}
            for s in data.sessions:
                sessions[s.number] = Session.create(number=s.number, name=s.name, scheduled_start=s.start)
            for i, c in enumerate(data.candidates, 1):
                Candidate.create(
                    admission_no=c.admission_no,
                    session=sessions[c.session],
                    seq=i,
                    name=c.name,
                    gender=c.gender,
                    id_type=c.id_type,
                    id_number=c.id_number,
                    subjects=dumps(list(c.subjects)),
                    photo=c.photo or None,
                )
            ImportedPackage.create(kind="exam", sha256=digest, name=source, imported_at=self.now())
            self.event(
                "exam_loaded",
                source=source,
                sha256=digest,
                exam=data.name,
                sessions=len(data.sessions),
                candidates=len(data.candidates),
            )
        return self.exam_summary()

    def _loaded_issued_at(self, sha256: str) -> float | None:
        """When the site signed the loaded package (read again from its kept file)."""
        try:
            raw = self.exam_package_path(sha256).read_bytes()
            return read_exam_package(raw, self.site_cert()).issued_at
        except (OSError, Refused):  # the kept file is gone or the site key changed
            return None

    def exam_summary(self) -> dict[str, Any]:
        exam = self.exam()
        if exam is None:
            return {"loaded": False, "sessions": []}
        rows = []
        for s in Session.select().order_by(Session.number):
            rows.append(
                dict(
                    number=s.number,
                    name=s.name,
                    start=s.scheduled_start,
                    candidates=s.candidates.count(),
                    state=self.session_state_zh(s),
                    authorised=s.authorised_at is not None,
                    papers=Paper.select().where(Paper.session == s).count(),
                )
            )
        return {
            "loaded": True,
            "name": exam.name,
            "site_code": exam.site_code,
            "site_name": exam.site_name,
            "policy": loads(exam.policy),
            "staff": loads(exam.staff) or [],  # for the session-entry dialog
            "subjects": {s.code: s.name for s in Subject.select()},  # the re-exam dialog's ticks
            "violation_codes": loads(exam.violation_codes) or [],  # (code, text): 违纪登记's choices
            "situation_types": loads(exam.situation_types) or [],  # 断点续考's choices
            "sessions": rows,
        }

    @staticmethod
    def session_state_zh(s: Session) -> str:
        if s.ended_at:
            return "已结束"
        if s.actual_start:
            return "考试中"
        if s.login_allowed_at:
            return "允许登录"
        return "未开考"

    # -- 5 seal check -----------------------------------------------------------------

    def seal_check(self) -> dict[str, Any]:
        cfg = self.config()
        seats = Seat.select().count()
        largest = max((s.candidates.count() for s in Session.select()), default=0)
        last = self._last_env_run()
        required_now = loads(dumps(asdict(self.requirements())))
        if seats and last is not None and loads(last.requirements) != required_now:
            # Step 3 ran before the exam data came with its requirements (the software the
            # PCs must have was not asked about then): the PCs are checked again, and
            # step 3's result is then this one.
            self.envcheck()
        env = self.envcheck_result()
        seat_numbers = {s.number for s in Seat.select()}
        env_seats = {int(p["seat"]) for p in env["pcs"]}
        folder = Path(cfg.answer_dir) if cfg else self.home
        free = shutil.disk_usage(folder if folder.exists() else self.home).free
        facts = SealFacts(
            params_ok=cfg is not None,
            seats=seats,
            largest_session=largest,
            env_checked=len(seat_numbers & env_seats),
            env_failed=env["failed"] + len(seat_numbers - env_seats),
            exam_loaded=self.exam() is not None,
            free_disk_bytes=free,
            min_free_bytes=self.settings.min_free_bytes,
            clock_skew_s=self._max_clock_skew(env),
            max_skew_s=self.settings.max_clock_skew_s,
            daemons_online=Seat.select().where(Seat.online).count(),
        )
        verdict = seal_check(facts)
        items = [asdict(i) for i in verdict.items]
        reported_at = None
        report_error = ""
        if cfg is not None and cfg.site_mode:
            try:
                self.site().report_seal(cfg.room_code, {"passed": verdict.passed, "items": items})
                reported_at = self.now()
            except Refused as exc:
                report_error = exc.zh
        with self.tx():
            SealResult.create(
                checked_at=self.now(),
                passed=verdict.passed,
                items=dumps(items),
                reported_at=reported_at,
            )
            self.event(
                "seal_checked",
                passed=verdict.passed,
                failed=[i["key"] for i in items if not i["ok"]],
                reported=reported_at is not None,
            )
        return {
            "passed": verdict.passed,
            "items": items,
            "reported": reported_at is not None,
            "report_error": report_error,
        }

    @staticmethod
    def _max_clock_skew(env: dict[str, Any]) -> float:
        skews = []
        for pc in env["pcs"]:
            for item in pc["items"] or []:
                if item["key"] == "clock_skew":
                    try:
                        skews.append(abs(float(item["value"].rstrip("s"))))
                    except ValueError:
                        skews.append(float("inf"))
        return max(skews, default=0.0)

    def wizard(self) -> dict[str, bool]:
        """Which of the five steps are done; a step counts only when the ones before it do."""
        env = self.envcheck_result()
        seats = Seat.select().count()
        seal = SealResult.select().order_by(SealResult.id.desc()).first()
        raw = [
            self.config() is not None,
            seats > 0,
            env["total"] > 0 and env["failed"] == 0 and env["total"] >= seats,
            self.exam() is not None,
            seal is not None and seal.passed,
        ]
        done, ok = {}, True
        for name, value in zip(("params", "seats", "envcheck", "exam", "seal"), raw, strict=True):
            ok = ok and value
            done[name] = ok
        return done
