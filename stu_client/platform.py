"""The exam PC's operating-system adapter: power, uninstall, the answer app's process and
the environment probe (环境检测), behind one Protocol with a real and a recording backend."""

from __future__ import annotations

import contextlib
import importlib.metadata
import ipaddress
import logging
import os
import platform as pyplatform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import netifaces
import psutil

from kiosk.common.frozen import system_env

log = logging.getLogger(__name__)

# Process names (lower case, substring match) of remote-control tools that an exam PC
# must not run: a candidate could be helped from outside the room.
REMOTE_CONTROL_NAMES = (
    "teamviewer",
    "anydesk",
    "sunlogin",
    "todesk",
    "rustdesk",
    "vnc",
    "radmin",
    "ammyy",
    "parsec",
    "splashtop",
    "oray",
)

_VM_PRODUCTS = ("virtualbox", "vmware", "kvm", "qemu", "virtual machine", "hvm domu", "bochs", "parallels")


def daemon_version() -> str:
    """The installed project's version; a frozen or source run without metadata says so."""
    try:
        return importlib.metadata.version("proctor-box")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0+unknown"


def describe_os() -> str:
    """The OS as the scan reply and envcheck report it, e.g. `Windows 10` or `Linux 6.1.0`."""
    system = pyplatform.system() or sys.platform
    if system == "Windows":
        return f"Windows {pyplatform.release()} {pyplatform.win32_edition() or ''}".strip()
    return f"{system} {pyplatform.release()}".strip()


def local_ipv4s() -> list[str]:
    """This machine's IPv4 addresses, loopback left out (the scan reply's `ips`)."""
    found = []
    for name in netifaces.interfaces():
        for a in netifaces.ifaddresses(name).get(netifaces.AF_INET, []):
            ip = a.get("addr", "")
            if ip and not ip.startswith("127."):
                found.append(ip)
    return found


def mac_towards(peer_ip: str) -> str:
    """The MAC of the interface on the peer's subnet (the one wake-on-LAN must reach),
    else of the first interface that has one; "" when none is known."""
    peer = ipaddress.IPv4Address(peer_ip) if _is_ipv4(peer_ip) else None
    fallback = ""
    for name in netifaces.interfaces():
        addrs = netifaces.ifaddresses(name)
        links = [a.get("addr", "") for a in addrs.get(netifaces.AF_LINK, [])]
        mac = next((m for m in links if m and m != "00:00:00:00:00:00"), "")
        if not mac:
            continue
        for a in addrs.get(netifaces.AF_INET, []):
            with contextlib.suppress(ValueError, KeyError):
                net = ipaddress.IPv4Network(f"{a['addr']}/{a['netmask']}", strict=False)
                if peer is not None and peer in net:
                    return mac.lower()
        fallback = fallback or mac.lower()
    return fallback


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


class PlatformBackend(Protocol):
    """What the daemon asks of the machine it runs on."""

    def reboot(self) -> None: ...

    def shutdown(self) -> None: ...

    def uninstall(self) -> None: ...

    def probe(self) -> dict[str, Any]:
        """The envcheck fields: os, cpu_cores, memory_mb, free_disk_mb, screen, software,
        daemon_version, virtual_machine, remote_control, pc_time."""
        ...

    def start_app(self) -> None: ...

    def close_app(self) -> None: ...

    def app_alive(self) -> bool:
        """The answer app started by `start_app` is still running (the daemon restarts it
        when the box wants it running and it is not)."""
        ...


def default_app_command(state_dir: str | Path) -> list[str]:
    """How the daemon starts the answer app: `stu-client app --state DIR` of this very
    installation (the frozen executable is `stu-client` itself)."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "app", "--state", str(state_dir)]
    return [sys.executable, "-m", "stu_client.cli", "app", "--state", str(state_dir)]


# -- the real machine -----------------------------------------------------------------


def _run(cmd: Sequence[str], timeout: float = 5.0) -> str:
    """stdout of a helper tool, or "" when it is missing or fails: a probe never raises."""
    try:
        out = subprocess.run(
            list(cmd), capture_output=True, text=True, timeout=timeout, check=False, env=system_env()
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout if out.returncode == 0 else ""


_XRANDR_CURRENT = re.compile(r"current\s+(\d+)\s*x\s*(\d+)")


def probe_screen() -> str:
    if not shutil.which("xrandr"):
        return ""
    m = _XRANDR_CURRENT.search(_run(["xrandr", "--current"]))
    return f"{m.group(1)}x{m.group(2)}" if m else ""


def probe_virtual_machine() -> bool:
    if shutil.which("systemd-detect-virt"):
        # Exit status 0 and a name when virtualised; "none" with status 1 otherwise.
        return _run(["systemd-detect-virt", "--vm"]).strip() not in ("", "none")
    with contextlib.suppress(OSError):
        product = Path("/sys/class/dmi/id/product_name").read_text().strip().lower()
        return any(p in product for p in _VM_PRODUCTS)
    return False


def probe_remote_control(names: Sequence[str] = REMOTE_CONTROL_NAMES) -> list[str]:
    found: set[str] = set()
    for proc in psutil.process_iter(["name"]):
        name = (proc.info.get("name") or "").lower()
        for wanted in names:
            if wanted in name:
                found.add(proc.info["name"])
    return sorted(found)


def probe_software(names: Sequence[str]) -> list[str]:
    """The names given that this machine has: an executable of that name on PATH."""
    return [n for n in names if shutil.which(n) or shutil.which(n.lower())]


class SystemBackend:
    """The machine itself: systemd (Linux) or shutdown.exe (Windows), psutil for the probe.

    `app_command` starts the answer app (`start_client`); `software` are the names the
    envcheck reports as present when found; `disk_path` is where free space counts."""

    def __init__(
        self,
        *,
        app_command: Sequence[str] | None = None,
        software: Sequence[str] = (),
        disk_path: str | Path | None = None,
        uninstall_command: Sequence[str] | None = None,
    ) -> None:
        self.app_command = list(app_command) if app_command else None
        self.software = tuple(software)
        self.disk_path = str(disk_path) if disk_path else os.path.abspath(os.sep)
        self.uninstall_command = list(uninstall_command) if uninstall_command else None
        self._app: subprocess.Popen[bytes] | None = None

    @staticmethod
    def _windows() -> bool:
        return sys.platform.startswith("win")

    def _power(self, linux: list[str], windows: list[str]) -> None:
        cmd = windows if self._windows() else linux
        log.warning("power command: %s", " ".join(cmd))
        subprocess.run(cmd, check=False, env=system_env())

    def reboot(self) -> None:
        self._power(["systemctl", "reboot"], ["shutdown", "/r", "/t", "0"])

    def shutdown(self) -> None:
        self._power(["systemctl", "poweroff"], ["shutdown", "/s", "/t", "0"])

    def uninstall(self) -> None:
        # What uninstalling means belongs to the installer (image or package); the daemon
        # runs the command it was given and never deletes its own bundle.
        if not self.uninstall_command:
            log.warning("uninstall requested but no uninstall command is configured")
            return
        subprocess.run(self.uninstall_command, check=False, env=system_env())

    def start_app(self) -> None:
        if self._app is not None and self._app.poll() is None:
            return
        if not self.app_command:
            log.warning("start_client: no answer-app command is configured")
            return
        self._app = subprocess.Popen(self.app_command, env=system_env())

    def close_app(self) -> None:
        app, self._app = self._app, None
        if app is None or app.poll() is not None:
            return
        app.terminate()
        try:
            app.wait(timeout=5)
        except subprocess.TimeoutExpired:
            app.kill()
            app.wait()

    def app_alive(self) -> bool:
        # poll() also reaps a child that died, so a crashed app leaves no zombie behind.
        return self._app is not None and self._app.poll() is None

    @property
    def app_pid(self) -> int | None:
        """The running answer app's process id, for logs and tests."""
        return self._app.pid if self.app_alive() and self._app is not None else None

    def probe(self) -> dict[str, Any]:
        return {
            "os": describe_os(),
            "cpu_cores": psutil.cpu_count(logical=True) or os.cpu_count() or 0,
            "memory_mb": psutil.virtual_memory().total // 2**20,
            "free_disk_mb": shutil.disk_usage(self.disk_path).free // 2**20,
            "screen": probe_screen(),
            "software": probe_software(self.software),
            "daemon_version": daemon_version(),
            "virtual_machine": probe_virtual_machine(),
            "remote_control": probe_remote_control(),
            "pc_time": time.time(),
        }


# -- tests and the simulated fleet ----------------------------------------------------


class RecordingBackend:
    """Does nothing but remember what it was asked; the probe is a healthy fixed report."""

    def __init__(self, report: dict[str, Any] | None = None) -> None:
        self.calls: list[str] = []
        self.app_running = False
        self.uninstalled = False
        self.report = report or {
            "os": "Windows 10 专业版",
            "cpu_cores": 4,
            "memory_mb": 8192,
            "free_disk_mb": 60_000,
            "screen": "1920x1080",
            "software": [],
            "daemon_version": daemon_version(),
            "virtual_machine": False,
            "remote_control": [],
        }

    def reboot(self) -> None:
        self.calls.append("reboot")

    def shutdown(self) -> None:
        self.calls.append("shutdown")

    def uninstall(self) -> None:
        self.calls.append("uninstall")
        self.uninstalled = True

    def start_app(self) -> None:
        self.calls.append("start_app")
        self.app_running = True

    def close_app(self) -> None:
        self.calls.append("close_app")
        self.app_running = False

    def app_alive(self) -> bool:
        return self.app_running

    def app_died(self) -> None:
        """Tests: the answer app crashes (nothing is recorded in `calls`: the daemon did
        not ask for it)."""
        self.app_running = False

    def probe(self) -> dict[str, Any]:
        self.calls.append("probe")
        return {**self.report, "pc_time": time.time()}
