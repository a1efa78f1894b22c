"""The outside world as the room service sees it: the exam PCs' daemons (kiosk.net.room),
the exam site (kiosk.net.site_client) and USB sticks (kiosk.usb.watch); the service
tests use in-process doubles."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class ScanReply:
    ip: str
    hostname: str
    mac: str = ""
    os: str = ""
    daemon_version: str = ""
    fingerprint: str = ""


@dataclass(frozen=True)
class SendResult:
    """Which exam PCs took a command and which did not (with the reason)."""

    ok: tuple[str, ...] = ()
    failed: dict[str, str] = field(default_factory=dict)


class SeatNetwork(Protocol):
    def scan(self, timeout_s: float) -> Sequence[ScanReply]:
        """Broadcast a signed scan; replies in the order they arrived."""
        ...

    def send(self, ips: Sequence[str], command: str, args: dict[str, Any]) -> SendResult:
        """Send one command to each listed exam PC (start_client, close_client, lock,
        unlock, message, show_seat, hide_seat, reboot, shutdown, init, force_logout,
        collect, auto_login, auto_answer, start_exam, deadline)."""
        ...

    def wake(self, macs: Sequence[str]) -> None:
        """Wake-on-LAN magic packets to the subnet's broadcast address."""
        ...

    def env_check(self, ips: Sequence[str], software: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
        """Ask each exam PC for its environment report (with which of `software` it has);
        a PC that does not answer is absent."""
        ...


class SiteLink(Protocol):
    def reachable(self) -> bool: ...

    def register(self, room_code: str, registration_code: str) -> bytes:
        """The room sheet the site answers with (the box checks it with the code)."""
        ...

    def download_exam(self, room_code: str) -> bytes: ...

    def fetch_authorisation(self, room_code: str, session: int) -> bytes: ...

    def report_seal(self, room_code: str, report: dict[str, Any]) -> None: ...

    def upload_results(
        self,
        room_code: str,
        path: Path,
        progress: Callable[[int, int], None],
        files: Sequence[tuple[Path, str]] = (),
    ) -> dict[str, Any]:
        """The results package, then the answer files it lists ((path, sha256)); resumable.
        The site's answer to the package (with its reconciliation of the codes used)."""
        ...


class UsbDrives(Protocol):
    def sticks(self) -> Sequence[Path]:
        """Mount points of the USB sticks plugged in now."""
        ...


class NoSite:
    """Offline room (site mode off, or no site link configured)."""

    def _offline(self) -> None:
        from kiosk.core.errors import Refused

        raise Refused(
            "site_offline",
            "无法连接考点服务器，请检查网络或使用U盘导入/导出",
            "the exam site is not reachable",
        )

    def reachable(self) -> bool:
        return False

    def register(self, room_code: str, registration_code: str) -> bytes:
        self._offline()
        return b""

    def download_exam(self, room_code: str) -> bytes:
        self._offline()
        return b""

    def fetch_authorisation(self, room_code: str, session: int) -> bytes:
        self._offline()
        return b""

    def report_seal(self, room_code: str, report: dict[str, Any]) -> None:
        self._offline()

    def upload_results(
        self,
        room_code: str,
        path: Path,
        progress: Callable[[int, int], None],
        files: Sequence[tuple[Path, str]] = (),
    ) -> dict[str, Any]:
        self._offline()
        return {}


class NoUsb:
    def sticks(self) -> Sequence[Path]:
        return ()


# The link to the site at an address, pinned to a site certificate (None before a room
# sheet pinned one: then only the registration works).
SiteFactory = Callable[[str, bytes | None], SiteLink]


def no_site(site_ip: str, site_cert_pem: bytes | None) -> SiteLink:
    return NoSite()


@dataclass
class Ports:
    seats: SeatNetwork
    site: SiteFactory = no_site
    usb: UsbDrives = field(default_factory=NoUsb)
