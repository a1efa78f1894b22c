"""An in-process room of simulated exam PCs behind the SeatNetwork port.

It stands in for the room network (UDP scan, TLS link, daemons) in the service tests
and the headless demo; it records every command so tests can assert on what the PCs
were told. The real network replaces it without the service noticing."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kiosk.common.crypto import Identity, make_identity
from kiosk.services.ports import ScanReply, SendResult


@functools.cache
def pc_identity(ip: str) -> Identity:
    """A simulated PC's key pair, made once per process (key generation is the slow part)."""
    return make_identity(f"exam-pc {ip}")


@dataclass
class SimPC:
    ip: str
    hostname: str
    mac: str
    powered: bool = True
    reachable: bool = True
    env: dict[str, Any] = field(default_factory=dict)
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    locked: bool = False
    seat_shown: str = ""

    @property
    def identity(self) -> Identity:
        return pc_identity(self.ip)

    @property
    def fingerprint(self) -> str:
        return self.identity.fingerprint

    @property
    def up(self) -> bool:
        return self.powered and self.reachable


def good_env() -> dict[str, Any]:
    return {
        "os": "Windows 10 专业版",
        "cpu_cores": 4,
        "memory_mb": 8192,
        "free_disk_mb": 60_000,
        "screen": "1920x1080",
        "software": ["Chrome", "WPS"],
        "daemon_version": "0.1.0",
        "clock_skew_s": 0.2,
        "rtt_ms": 3.0,
        "virtual_machine": False,
        "remote_control": [],
    }


class SimulatedSeats:
    def __init__(self, count: int, subnet: str = "127.0.10", first_host: int = 11) -> None:
        self.pcs: dict[str, SimPC] = {}
        for i in range(count):
            ip = f"{subnet}.{first_host + i}"
            self.pcs[ip] = SimPC(
                ip=ip,
                hostname=f"KS-{i + 1:03d}",
                mac=f"02:00:00:00:{i // 256:02x}:{i % 256:02x}",
                env=good_env(),
            )
        self.woken: list[str] = []

    def scan(self, timeout_s: float) -> Sequence[ScanReply]:
        # Replies arrive in an order unlike the IP order, as on a real LAN.
        order = sorted(self.pcs.values(), key=lambda p: hashlib.md5(p.ip.encode()).hexdigest())
        return [
            ScanReply(
                ip=p.ip,
                hostname=p.hostname,
                mac=p.mac,
                os=p.env.get("os", ""),
                daemon_version="0.1.0",
                fingerprint=p.fingerprint,
            )
            for p in order
            if p.up
        ]

    def send(self, ips: Sequence[str], command: str, args: dict[str, Any]) -> SendResult:
        ok, failed = [], {}
        for ip in ips:
            pc = self.pcs.get(ip)
            if pc is None or not pc.up:
                failed[ip] = "离线"
                continue
            pc.received.append((command, dict(args)))
            if command in ("lock", "unlock"):
                pc.locked = command == "lock"
            elif command in ("show_seat", "hide_seat"):
                pc.seat_shown = args.get("numbers", {}).get(ip, "") if command == "show_seat" else ""
            elif command == "shutdown":
                pc.powered = False
            ok.append(ip)
        return SendResult(ok=tuple(ok), failed=failed)

    def wake(self, macs: Sequence[str]) -> None:
        for pc in self.pcs.values():
            if pc.mac in macs:
                pc.powered = True
                self.woken.append(pc.ip)

    def env_check(self, ips: Sequence[str], software: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
        return {ip: dict(self.pcs[ip].env) for ip in ips if ip in self.pcs and self.pcs[ip].up}

    def commands(self, ip: str) -> list[str]:
        return [c for c, _ in self.pcs[ip].received]

    # -- keeping the box's view of the links true (what the real daemons' TLS links do) --

    LINK_EVENTS = frozenset(
        {
            "seats_scanned",
            "seat_added",
            "seat_edited",
            "seats_imported",
            "remote_shutdown",
            "remote_wake",
            "remote_reboot",
        }
    )

    def attach(self, service: Any) -> None:
        """Report link changes to the room service as the real room network will."""
        self._service = service
        service.subscribe(lambda ev: self.sync_links() if ev.kind in self.LINK_EVENTS else None)
        self.sync_links()

    def sync_links(self) -> None:
        service = getattr(self, "_service", None)
        if service is None:
            return
        for seat in service.seats():
            pc = self.pcs.get(seat["ip"])
            up = pc is not None and pc.up
            if seat["online"] != up:
                service.seat_link(seat["ip"], up)
