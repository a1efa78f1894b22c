"""System management (系统管理): the administrator, password and lock-out, remote
control of the exam PCs, initialisation of the PCs and of the box."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kiosk.common.crypto import check_password, hash_password
from kiosk.core.errors import Refused
from kiosk.core.lockout import LOCKOUT_S, MAX_FAILURES, check_password_policy, locked_until
from kiosk.services.base import ServiceBase, dumps, loads
from kiosk.services.seats import check_ip
from kiosk.store.models import (
    Absence,
    Answer,
    Candidate,
    Challenge,
    EnvResult,
    EnvRun,
    Exam,
    ExtraTime,
    ImportedPackage,
    OfflineInterval,
    Paper,
    RoomConfig,
    SealResult,
    Seat,
    Session,
    SessionAuthorisation,
    SiteTrust,
    StoredFile,
    Subject,
    UsedCode,
    User,
    Violation,
)
from kiosk.store.models import Resume as ResumeRecord

DEFAULT_PASSWORD = "888"
REMOTE_ACTIONS = {"reboot": "重启", "shutdown": "关机", "wake": "开机"}


class SystemAdmin(ServiceBase):
    def ensure_admin(self) -> None:
        """First start: the administrator with the default password, flagged until changed."""
        if User.get_or_none(User.username == "admin") is None:
            with self.tx():
                User.create(
                    username="admin",
                    password_hash=hash_password(DEFAULT_PASSWORD),
                    default_password=True,
                )
                self.event("admin_created")

    def user(self) -> dict[str, Any]:
        u = self.admin()
        return {
            "username": u.username,
            "name": u.name,
            "phone": u.phone,
            "default_password": u.default_password,
        }

    def user_set(self, name: str, phone: str) -> dict[str, Any]:
        name, phone = name.strip(), phone.strip()
        if not 1 <= len(name) <= 20:
            raise Refused("bad_name", "姓名应为1到20个字", "name must be 1-20 characters")
        if not (phone.isdigit() and 7 <= len(phone) <= 15):
            raise Refused("bad_phone", "电话应为7到15位数字", "phone must be 7-15 digits")
        with self.tx():
            User.update(name=name, phone=phone).where(User.username == "admin").execute()
            self.event("user_updated", name=name, phone=phone)
        return self.user()

    def login(self, password: str) -> dict[str, Any]:
        """Check the administrator password, with lock-out after repeated failures."""
        with self.tx():
            u = self.admin()
            failures = loads(u.failures) or []
            until = locked_until(failures, self.now())
            if until is not None:
                wait = int(until - self.now()) + 1
                raise Refused(
                    "locked_out",
                    f"密码错误次数过多，请 {wait} 秒后再试",
                    f"locked out for {wait} s",
                )
            if not check_password(password, u.password_hash):
                failures = [*failures, self.now()][-MAX_FAILURES:]
                User.update(failures=dumps(failures)).where(User.id == u.id).execute()
                self.event("login_failed", failures=len(failures))
                left = MAX_FAILURES - len(failures)
                hint = f"还可尝试 {left} 次" if left > 0 else f"已锁定 {LOCKOUT_S // 60} 分钟"
                raise_later = Refused("wrong_password", f"密码错误，{hint}", "wrong password")
            else:
                User.update(failures="[]").where(User.id == u.id).execute()
                self.event("login")
                raise_later = None
        if raise_later is not None:  # the failure count must commit before refusing
            raise raise_later
        return {
            "ok": True,
            "default_password": u.default_password,
            "warning": "仍在使用默认密码，请尽快修改" if u.default_password else "",
        }

    def verify_password(self, password: str) -> None:
        """Operations that need the administrator password (end exam, initialise box)."""
        self.login(password)

    def passwd(self, old: str, new: str) -> dict[str, Any]:
        check_password_policy(new)
        self.login(old)
        with self.tx():
            User.update(password_hash=hash_password(new), default_password=(new == DEFAULT_PASSWORD)).where(
                User.username == "admin"
            ).execute()
            self.event("password_changed")
        return {"ok": True}

    # -- remote control ---------------------------------------------------------------

    def _target_seats(self, ips: Sequence[str] | None) -> list[Seat]:
        seats = list(Seat.select().order_by(Seat.number))
        if not ips:
            return seats
        wanted = {check_ip(ip, "") for ip in ips}
        chosen = [s for s in seats if s.ip in wanted]
        unknown = wanted - {s.ip for s in chosen}
        if unknown:
            raise Refused(
                "unknown_ip",
                f"这些 IP 没有机位：{', '.join(sorted(unknown))}",
                f"no seat for {sorted(unknown)}",
            )
        return chosen

    def remote(self, action: str, ips: Sequence[str] | None = None) -> dict[str, Any]:
        if action not in REMOTE_ACTIONS:
            raise Refused("bad_action", "远程操作只能是开机、重启或关机", f"unknown action {action}")
        seats = self._target_seats(ips)
        if action == "wake":
            macs = [s.mac for s in seats if s.mac]
            self.ports.seats.wake(macs)
            result = {
                "ok": [s.ip for s in seats if s.mac],
                "failed": {s.ip: "没有 MAC 地址" for s in seats if not s.mac},
            }
        else:
            sent = self.ports.seats.send([s.ip for s in seats], action, {})
            result = {"ok": list(sent.ok), "failed": sent.failed}
        with self.tx():
            self.event("remote_" + action, targets=[s.ip for s in seats], **result)
        return result

    def init_pcs(
        self, uninstall: bool = False, ips: Sequence[str] | None = None, confirm: bool = False
    ) -> dict[str, Any]:
        if not confirm:
            raise Refused("confirm_needed", "初始化考试机会清除考生数据，需要确认", "needs confirmation")
        if Session.select().where(Session.actual_start.is_null(False), Session.ended_at.is_null()).exists():
            raise Refused("exam_running", "考试进行中，不能初始化考试机", "an exam is running")
        seats = self._target_seats(ips)
        sent = self.ports.seats.send([s.ip for s in seats], "init", {"uninstall": uninstall})
        with self.tx():
            self.event("pcs_initialised", uninstall=uninstall, ok=list(sent.ok), failed=sent.failed)
        return {"ok": list(sent.ok), "failed": sent.failed}

    def init_box(
        self, password: str, keep_params_and_seats: bool = True, confirm: bool = False
    ) -> dict[str, Any]:
        """Wipe exam data, authorisations and answers; the event log stays (it is the audit)."""
        if not confirm:
            raise Refused(
                "confirm_needed",
                "初始化监考机会清除考务数据、授权和作答，需要确认",
                "needs confirmation",
            )
        self.verify_password(password)
        cfg = self.config()
        with self.tx():
            for model in (
                Answer,
                StoredFile,
                Absence,
                ExtraTime,
                ResumeRecord,
                Violation,
                OfflineInterval,
                UsedCode,
                Challenge,
                SessionAuthorisation,
                Paper,
                Candidate,
                Session,
                Subject,
                Exam,
                ImportedPackage,
                SealResult,
                EnvResult,
                EnvRun,
            ):
                model.delete().execute()
            if not keep_params_and_seats:
                Seat.delete().execute()
                RoomConfig.delete().execute()
                SiteTrust.delete().execute()  # the pinned site goes with the parameters
            self.event("box_initialised", keep_params_and_seats=keep_params_and_seats)
        shutil.rmtree(self.home / "packages", ignore_errors=True)
        if cfg is not None:  # the work files of the sessions go with their answers
            for folder in Path(cfg.answer_dir).glob("session-*"):
                shutil.rmtree(folder, ignore_errors=True)
        return {"ok": True, "kept_params_and_seats": keep_params_and_seats}
