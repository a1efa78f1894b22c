"""Seats (机位管理, wizard step 2): scan, add, edit, move, delete, import, show numbers.

Seat numbers and IPs stay unique; a seat keeps its number when scanned again."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kiosk.common import frozen
from kiosk.common.fsutil import write_atomic
from kiosk.core.errors import Refused
from kiosk.services.base import ServiceBase
from kiosk.services.ports import ScanReply
from kiosk.store.models import Candidate, Seat

SCAN_ORDERS = ("ip", "name", "reply")


def check_ip(ip: str, what: str) -> str:
    try:
        return str(ipaddress.IPv4Address(ip.strip()))
    except ValueError as exc:
        raise Refused("bad_ip", f"{what}不是有效的 IPv4 地址：{ip}", f"bad {what} address {ip!r}") from exc


BUNDLE_VERSION = 1
# The start scripts run the frozen client in stu-client/ when the box put one there,
# else an installed stu-client.
START_SH = """#!/bin/sh
# Start the exam-PC daemon with this bundle (copy the folder to every exam PC).
cd "$(dirname "$0")" || exit 1
client=stu-client
[ -x stu-client/stu-client ] && client=./stu-client/stu-client
exec "$client" daemon --bundle . --state "${STU_STATE:-$HOME/.stu-client}"
"""
START_BAT = (
    "@echo off\r\ncd /d %~dp0\r\nset CLIENT=stu-client.exe\r\n"
    "if exist stu-client\\stu-client.exe set CLIENT=stu-client\\stu-client.exe\r\n"
    '%CLIENT% daemon --bundle . --state "%LOCALAPPDATA%\\stu-client"\r\n'
)


def copy_client(source: Path, folder: Path) -> Path:
    """The frozen client folder copied into the bundle as stu-client/ (symbolic links kept:
    PyInstaller's folders use them); an older copy is replaced only once the new one is
    complete, so a half-copied client is never the one the start scripts run."""
    target = folder / frozen.CLIENT_FOLDER
    partial, old = folder / f".{frozen.CLIENT_FOLDER}.partial", folder / f".{frozen.CLIENT_FOLDER}.old"
    for leftover in (partial, old):
        shutil.rmtree(leftover, ignore_errors=True)
    shutil.copytree(source, partial, symlinks=True)
    if target.exists():
        target.rename(old)
    partial.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    if hasattr(os, "sync"):  # the bundle is often written straight to a stick
        os.sync()
    return target


class Seats(ServiceBase):
    def client_bundle(self, dest: str) -> dict[str, Any]:
        """The folder copied to every exam PC: box certificate and address, daemon settings,
        start scripts (docs/network.md), and the frozen client itself when the box runs
        frozen with the client folder beside its own."""
        cfg = self.require_config()
        folder = Path(dest)
        if not folder.is_absolute():
            raise Refused("bad_folder", "请选择绝对路径的文件夹", "bundle folder must be absolute")
        folder.mkdir(parents=True, exist_ok=True)
        settings = {
            "version": BUNDLE_VERSION,
            "box_addr": cfg.box_ip,
            "control_port": self.settings.control_port,
            "scan_port": self.settings.scan_port,
            "box_fingerprint": self.identity.fingerprint,
            "heartbeat_s": self.settings.heartbeat_s,
        }
        write_atomic(folder / "box.crt", self.identity.cert_pem)
        write_atomic(folder / "daemon.json", json.dumps(settings, indent=1).encode())
        write_atomic(folder / "start-daemon.sh", START_SH.encode())
        (folder / "start-daemon.sh").chmod(0o755)
        write_atomic(folder / "start-daemon.bat", START_BAT.encode())
        client, note = self._bundled_client(folder)
        with self.tx():
            self.event(
                "client_bundle_written",
                path=str(folder),
                box_fingerprint=self.identity.fingerprint,
                client=client,
            )
        return {"path": str(folder), **settings, "client": client, "client_note": note}

    @staticmethod
    def _bundled_client(folder: Path) -> tuple[str, str]:
        """(the client folder copied into the bundle or "", a note for the officer)."""
        source = frozen.client_folder()
        if source is not None:
            target = copy_client(source, folder)
            note = f"已附带考试机程序（{frozen.CLIENT_FOLDER} 文件夹）：整个目录拷贝到每台考试机即可"
            return str(target), note
        own = frozen.app_folder()
        if own is None:
            return "", "从源码运行：未附带考试机程序，每台考试机需另行安装 stu-client"
        return "", f"未找到考试机程序文件夹 {own.parent / frozen.CLIENT_FOLDER}：未附带考试机程序"

    def seats(self) -> list[dict[str, Any]]:
        return [self._seat_dict(s) for s in Seat.select().order_by(Seat.number)]

    @staticmethod
    def _seat_dict(s: Seat) -> dict[str, Any]:
        return dict(
            number=s.number,
            seat=f"{s.number:03d}",
            ip=s.ip,
            hostname=s.hostname,
            mac=s.mac,
            os=s.os,
            fingerprint=s.fingerprint,
            version=s.daemon_version,
            note=s.note,
            online=s.online,
        )

    def _next_number(self) -> int:
        top = Seat.select(Seat.number).order_by(Seat.number.desc()).first()
        return (top.number if top else 0) + 1

    def seats_scan(self, order: str = "ip", timeout_s: float = 2.0) -> dict[str, Any]:
        """Add the exam PCs that answered the scan; existing seats keep their numbers."""
        if order not in SCAN_ORDERS:
            raise Refused(
                "bad_order",
                "排序方式应为：按IP、按计算机名或按应答顺序",
                f"order must be one of {SCAN_ORDERS}",
            )
        replies = list(self.ports.seats.scan(timeout_s))
        unique: dict[str, ScanReply] = {}
        for r in replies:
            unique.setdefault(r.ip, r)
        fresh = [r for r in unique.values() if self.seat_by_ip(r.ip) is None]
        if order == "ip":
            fresh.sort(key=lambda r: ipaddress.IPv4Address(r.ip))
        elif order == "name":
            fresh.sort(key=lambda r: (r.hostname, ipaddress.IPv4Address(r.ip)))
        added, conflicts = [], []
        with self.tx():
            number = self._next_number()
            for r in unique.values():
                seat = self.seat_by_ip(r.ip)
                if seat is not None and seat.fingerprint and r.fingerprint != seat.fingerprint:
                    conflicts.append(seat.number)
                elif seat is not None:
                    Seat.update(
                        hostname=r.hostname,
                        mac=r.mac,
                        os=r.os,
                        daemon_version=r.daemon_version,
                        fingerprint=r.fingerprint or seat.fingerprint,
                    ).where(Seat.id == seat.id).execute()
            for r in fresh:
                Seat.create(
                    number=number,
                    ip=r.ip,
                    hostname=r.hostname,
                    mac=r.mac,
                    os=r.os,
                    daemon_version=r.daemon_version,
                    fingerprint=r.fingerprint,
                )
                added.append(number)
                number += 1
            self.event(
                "seats_scanned",
                order=order,
                replies=len(unique),
                added=added,
                fingerprint_conflicts=conflicts,
            )
        return {"replies": len(unique), "added": added, "fingerprint_conflicts": conflicts}

    def seats_add(
        self, ip: str, hostname: str = "", note: str = "", mac: str = "", fingerprint: str = ""
    ) -> dict[str, Any]:
        ip = check_ip(ip, "考试机 ")
        with self.tx():
            if self.seat_by_ip(ip) is not None:
                raise Refused("duplicate_ip", f"IP {ip} 已有机位", f"a seat already has IP {ip}")
            seat = Seat.create(
                number=self._next_number(),
                ip=ip,
                hostname=hostname.strip()[:64],
                note=note.strip()[:200],
                mac=mac,
                fingerprint=fingerprint,
            )
            self.event("seat_added", seat=seat.number, seat_ip=ip)
        return self._seat_dict(seat)

    def seats_edit(
        self,
        number: int,
        ip: str | None = None,
        hostname: str | None = None,
        note: str | None = None,
    ) -> dict[str, Any]:
        with self.tx():
            seat = self.get_seat(number)
            if ip is not None:
                ip = check_ip(ip, "考试机 ")
                other = self.seat_by_ip(ip)
                if other is not None and other.id != seat.id:
                    raise Refused(
                        "duplicate_ip",
                        f"IP {ip} 已被机位 {other.number:03d} 使用",
                        f"IP {ip} belongs to seat {other.number}",
                    )
                if ip != seat.ip:
                    seat.fingerprint = ""  # a new PC must be scanned again before it is trusted
                seat.ip = ip
            if hostname is not None:
                seat.hostname = hostname.strip()[:64]
            if note is not None:
                seat.note = note.strip()[:200]
            seat.save()
            self.event("seat_edited", seat=number, seat_ip=seat.ip, hostname=seat.hostname, note=seat.note)
        return self._seat_dict(seat)

    def seats_move(self, number: int, direction: str) -> list[dict[str, Any]]:
        if direction not in ("up", "down"):
            raise Refused("bad_direction", "只能上移或下移", "direction must be up or down")
        with self.tx():
            seat = self.get_seat(number)
            q = Seat.select()
            neighbour = (
                q.where(Seat.number < number).order_by(Seat.number.desc())
                if direction == "up"
                else q.where(Seat.number > number).order_by(Seat.number)
            ).first()
            if neighbour is None:
                raise Refused(
                    "cannot_move",
                    "已经在最" + ("前" if direction == "up" else "后"),
                    f"seat {number} cannot move {direction}",
                )
            a, b = seat.number, neighbour.number
            Seat.update(number=-1).where(Seat.id == seat.id).execute()  # unique numbers
            Seat.update(number=a).where(Seat.id == neighbour.id).execute()
            Seat.update(number=b).where(Seat.id == seat.id).execute()
            self.event("seat_moved", seat=b, previous=a, direction=direction)
        return self.seats()

    def seats_delete(self, number: int, confirm: bool = False) -> dict[str, Any]:
        if not confirm:
            raise Refused("confirm_needed", "删除机位需要确认", "deleting a seat needs confirmation")
        with self.tx():
            seat = self.get_seat(number)
            busy = (
                Candidate.select()
                .where(Candidate.seat_number == number, Candidate.state.in_(["logged_in", "in_exam"]))
                .exists()
            )
            if busy:
                raise Refused(
                    "seat_in_use",
                    f"机位 {number:03d} 上有考生正在考试，不能删除",
                    f"seat {number} has a candidate",
                )
            seat.delete_instance()
            self.event("seat_deleted", seat=number, seat_ip=seat.ip)
        return {"deleted": number}

    def seats_show(self, show: bool = True) -> dict[str, Any]:
        ips = [s.ip for s in Seat.select()]
        numbers = {s.ip: f"{s.number:03d}" for s in Seat.select()}
        result = self.ports.seats.send(ips, "show_seat" if show else "hide_seat", {"numbers": numbers})
        with self.tx():
            self.event(
                "seat_numbers_shown" if show else "seat_numbers_hidden",
                ok=len(result.ok),
                failed=result.failed,
            )
        return {"ok": list(result.ok), "failed": result.failed}

    def import_seat_rows(self, rows: Sequence[dict[str, str]]) -> dict[str, Any]:
        """Seats from an imported list (seat, ip, name, note); checked whole before writing."""
        parsed, seen_n, seen_ip = [], set(), set()
        for i, row in enumerate(rows, 1):
            try:
                number = int(str(row.get("seat", "")).strip())
            except ValueError as exc:
                raise Refused("bad_seat_list", f"第 {i} 行机位号无效", f"row {i}: bad seat number") from exc
            ip = check_ip(str(row.get("ip", "")), f"第 {i} 行")
            if number <= 0 or number in seen_n or ip in seen_ip:
                raise Refused("bad_seat_list", f"第 {i} 行机位号或 IP 重复", f"row {i}: duplicate")
            seen_n.add(number)
            seen_ip.add(ip)
            parsed.append(
                (
                    number,
                    ip,
                    str(row.get("name", "")).strip()[:64],
                    str(row.get("note", "")).strip()[:200],
                )
            )
        with self.tx():
            for number, ip, _name, _note in parsed:
                clash = Seat.get_or_none((Seat.number == number) | (Seat.ip == ip))
                if clash is not None and (clash.number != number or clash.ip != ip):
                    raise Refused(
                        "bad_seat_list",
                        f"机位 {number:03d} / {ip} 与已有机位冲突",
                        f"seat {number}/{ip} clashes with an existing seat",
                    )
            for number, ip, name, note in parsed:
                Seat.insert(number=number, ip=ip, hostname=name, note=note).on_conflict(
                    conflict_target=[Seat.number], update={Seat.hostname: name, Seat.note: note}
                ).execute()
            self.event("seats_imported", count=len(parsed))
        return {"imported": len(parsed)}
