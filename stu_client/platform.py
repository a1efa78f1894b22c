"""The exam PC's operating-system adapter: power, uninstall, the answer app's process,
the environment probe (环境检测), autostart, default paths, USB sticks and the kiosk
window's OS settings, behind one Protocol with a Linux, a Windows and a recording backend.

`system_backend()` picks the backend of `sys.platform`. Every command of a real backend
goes through one runner (`run(cmd) -> CompletedProcess`-like, `run_command` by default:
the machine's own environment from `kiosk.common.frozen.system_env`, never raising), and
every Windows API through an injectable `Win32Api`, so both backends are tested here
with fakes and nothing real runs."""

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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath, PureWindowsPath
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

_VM_PRODUCTS = (
    "virtualbox",
    "vmware",
    "kvm",
    "qemu",
    "virtual machine",  # Hyper-V: "Microsoft Corporation" / "Virtual Machine"
    "hvm domu",
    "xen",
    "bochs",
    "parallels",
)

SERVICE_NAME = "stu-client"  # the systemd unit, the Run-key value


def daemon_version() -> str:
    """The installed project's version; a frozen or source run without metadata says so."""
    try:
        return importlib.metadata.version("proctor-box")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0+unknown"


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

    def probe(self, software: Sequence[str] = ()) -> dict[str, Any]:
        """The envcheck fields: os, cpu_cores, memory_mb, free_disk_mb, screen, software
        (which of the names asked for, the exam's required software, this PC has),
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


# -- the real machines ----------------------------------------------------------------


class Completed(Protocol):
    """What a runner returns: subprocess.CompletedProcess or a test's stand-in."""

    returncode: int
    stdout: str


Runner = Callable[[Sequence[str]], Completed]
Spawn = Callable[[Sequence[str]], "subprocess.Popen[bytes]"]


def run_command(cmd: Sequence[str], timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
    """The real runner: the machine's own program with the machine's environment; a
    missing or hung program is returncode 127 (never an exception: a probe never raises)."""
    try:
        return subprocess.run(
            list(cmd), capture_output=True, text=True, timeout=timeout, check=False, env=system_env()
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return subprocess.CompletedProcess(list(cmd), 127, "", str(exc))


def spawn_process(cmd: Sequence[str]) -> subprocess.Popen[bytes]:
    """The real way the answer app is started: a long-running child, not a command."""
    return subprocess.Popen(list(cmd), env=system_env())


def process_names() -> list[str]:
    """The names of this machine's processes (psutil), for the remote-control probe."""
    return [proc.info.get("name") or "" for proc in psutil.process_iter(["name"])]


def probe_remote_control(
    names: Sequence[str] = REMOTE_CONTROL_NAMES, processes: Iterable[str] | None = None
) -> list[str]:
    found: set[str] = set()
    for name in process_names() if processes is None else processes:
        if any(wanted in name.lower() for wanted in names):
            found.add(name)
    return sorted(found)


def probe_software(names: Sequence[str], which: Callable[[str], str | None] = shutil.which) -> list[str]:
    """The names given that this machine has: an executable of that name on PATH
    (PATHEXT on Windows: `python` finds python.exe)."""
    return [n for n in names if which(n) or which(n.lower())]


def looks_virtual(*texts: str) -> bool:
    """A hardware vendor or product name is a known hypervisor's."""
    joined = " ".join(texts).lower()
    return any(p in joined for p in _VM_PRODUCTS)


@dataclass(frozen=True)
class Autostart:
    """How the daemon starts when the exam PC does: files to write, then commands to run
    (as root / administrator), and the commands that undo it."""

    files: Mapping[str, str] = field(default_factory=dict)
    folders: Sequence[str] = ()
    commands: Sequence[Sequence[str]] = ()
    remove: Sequence[Sequence[str]] = ()


def stop_process(proc: subprocess.Popen[Any], timeout_s: float) -> None:
    """Ask a child process to stop (SIGTERM; TerminateProcess on Windows), killed when it
    has not stopped within `timeout_s`."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def daemon_command(bundle: str | PurePath, state: str | PurePath, *, windowed: bool = False) -> list[str]:
    """`stu-client daemon --bundle B --state S` of this very installation; `windowed`:
    the frozen Windows build's console-less `stu-clientw.exe` (no console window on
    the candidate's desktop)."""
    if getattr(sys, "frozen", False):
        exe = sys.executable
        if windowed:
            exe = str(PureWindowsPath(exe).with_name("stu-clientw.exe"))
        base = [exe]
    else:
        base = [sys.executable, "-m", "stu_client.cli"]
    return [*base, "daemon", "--bundle", str(bundle), "--state", str(state)]


class _Machine:
    """What both real backends share: the runner, the answer app's process, uninstall and
    the probe's OS-independent fields. Subclasses give the power commands and the rest."""

    REBOOT: tuple[str, ...] = ()
    POWEROFF: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        app_command: Sequence[str] | None = None,
        software: Sequence[str] = (),
        disk_path: str | Path | None = None,
        uninstall_command: Sequence[str] | None = None,
        run: Runner | None = None,
        spawn: Spawn | None = None,
        processes: Callable[[], Iterable[str]] | None = None,
        which: Callable[[str], str | None] = shutil.which,
    ) -> None:
        self.app_command = list(app_command) if app_command else None
        self.software = tuple(software)
        self.disk_path = str(disk_path) if disk_path else os.path.abspath(os.sep)
        self.uninstall_command = list(uninstall_command) if uninstall_command else None
        self.run: Runner = run or run_command
        self.spawn: Spawn = spawn or spawn_process
        self.processes = processes or process_names
        self.which = which
        self._app: subprocess.Popen[bytes] | None = None

    def _output(self, cmd: Sequence[str]) -> str:
        """stdout of a helper tool, or "" when it is missing or fails."""
        out = self.run(cmd)
        return (out.stdout or "") if out.returncode == 0 else ""

    def _power(self, cmd: Sequence[str]) -> None:
        log.warning("power command: %s", " ".join(cmd))
        self.run(list(cmd))

    def reboot(self) -> None:
        self._power(self.REBOOT)

    def shutdown(self) -> None:
        self._power(self.POWEROFF)

    def uninstall(self) -> None:
        # What uninstalling means belongs to the installer (image or package); the daemon
        # runs the command it was given and never deletes its own bundle.
        if not self.uninstall_command:
            log.warning("uninstall requested but no uninstall command is configured")
            return
        self.run(self.uninstall_command)

    def start_app(self) -> None:
        if self._app is not None and self._app.poll() is None:
            return
        if not self.app_command:
            log.warning("start_client: no answer-app command is configured")
            return
        self._app = self.spawn(self.app_command)

    def close_app(self) -> None:
        # On Windows terminate() is TerminateProcess: the app gets no SIGTERM and cannot
        # stop in order (answers still in their debounce are not written).
        app, self._app = self._app, None
        if app is None or app.poll() is not None:
            return
        stop_process(app, 5)

    def app_alive(self) -> bool:
        # poll() also reaps a child that died, so a crashed app leaves no zombie behind.
        return self._app is not None and self._app.poll() is None

    @property
    def app_pid(self) -> int | None:
        """The running answer app's process id, for logs and tests."""
        return self._app.pid if self.app_alive() and self._app is not None else None

    # What each OS answers differently.
    def describe_os(self) -> str:
        raise NotImplementedError

    def screen(self) -> str:
        raise NotImplementedError

    def virtual_machine(self) -> bool:
        raise NotImplementedError

    def probe(self, software: Sequence[str] = ()) -> dict[str, Any]:
        return {
            "os": self.describe_os(),
            "cpu_cores": psutil.cpu_count(logical=True) or os.cpu_count() or 0,
            "memory_mb": psutil.virtual_memory().total // 2**20,
            "free_disk_mb": shutil.disk_usage(self.disk_path).free // 2**20,
            "screen": self.screen(),
            "software": probe_software(list(dict.fromkeys([*self.software, *software])), self.which),
            "daemon_version": daemon_version(),
            "virtual_machine": self.virtual_machine(),
            "remote_control": probe_remote_control(processes=self.processes()),
            "pc_time": time.time(),
        }


_XRANDR_CURRENT = re.compile(r"current\s+(\d+)\s*x\s*(\d+)")
LINUX_USB_ROOTS = ("/media", "/run/media", "/mnt")


class LinuxBackend(_Machine):
    """A Linux exam PC: systemd for power and autostart, xrandr for the screen,
    systemd-detect-virt (else the DMI product name) for virtualisation, sticks mounted
    under the mount roots."""

    REBOOT = ("systemctl", "reboot")
    POWEROFF = ("systemctl", "poweroff")
    UNIT_PATH = f"/etc/systemd/system/{SERVICE_NAME}.service"

    def __init__(
        self,
        *,
        dmi_path: str | Path = "/sys/class/dmi/id/product_name",
        mountinfo_path: str | Path = "/proc/self/mountinfo",
        writable: Callable[[Path], bool] | None = None,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.dmi_path = Path(dmi_path)
        self.mountinfo_path = Path(mountinfo_path)
        self.writable = writable or (lambda p: os.access(p, os.W_OK))

    def describe_os(self) -> str:
        return f"{pyplatform.system() or 'Linux'} {pyplatform.release()}".strip()

    def screen(self) -> str:
        m = _XRANDR_CURRENT.search(self._output(["xrandr", "--current"]))
        return f"{m.group(1)}x{m.group(2)}" if m else ""

    def virtual_machine(self) -> bool:
        # A name and status 0 when virtualised; "none" with status 1 otherwise; nothing
        # when the tool is missing (then the DMI product name decides).
        answer = (self.run(["systemd-detect-virt", "--vm"]).stdout or "").strip()
        if answer:
            return answer != "none"
        with contextlib.suppress(OSError):
            return looks_virtual(self.dmi_path.read_text())
        return False

    # Paths.
    @property
    def state_dir(self) -> PurePath:
        return Path("/var/lib/stu-client")

    def usb_roots(self) -> list[Path]:
        return [Path(r) for r in LINUX_USB_ROOTS]

    def usb_sticks(self, roots: Sequence[Path] | None = None) -> list[Path]:
        """Writable mount points under the mount roots (the mount table, not the folders:
        an empty /media/usb folder is no stick)."""
        bases = list(roots) if roots is not None else self.usb_roots()
        try:
            lines = self.mountinfo_path.read_text().splitlines()
        except OSError:
            return []
        found = []
        for line in lines:
            parts = line.split()
            if len(parts) > 4:
                point = Path(parts[4].replace("\\040", " "))
                if any(b in point.parents for b in bases) and self.writable(point):
                    found.append(point)
        return sorted(found)

    # Autostart: a systemd unit that restarts the daemon whenever it dies.
    def unit_text(self, bundle: str | PurePath, state: str | PurePath) -> str:
        exec_start = " ".join(_systemd_quote(w) for w in daemon_command(bundle, state))
        return (
            "[Unit]\n"
            "Description=stu-client exam-PC daemon\n"
            "After=network-online.target graphical.target\n"
            "Wants=network-online.target\n\n"
            "[Service]\n"
            f"ExecStart={exec_start}\n"
            "Restart=always\n"
            "RestartSec=2\n"
            # The answer app the daemon starts opens its window on the kiosk session's display.
            "Environment=DISPLAY=:0\n\n"
            "[Install]\n"
            "WantedBy=graphical.target\n"
        )

    def autostart(self, bundle: str | PurePath, state: str | PurePath) -> Autostart:
        unit = f"{SERVICE_NAME}.service"
        return Autostart(
            files={self.UNIT_PATH: self.unit_text(bundle, state)},
            folders=[str(state)],
            commands=[["systemctl", "daemon-reload"], ["systemctl", "enable", "--now", unit]],
            remove=[["systemctl", "disable", "--now", unit]],
        )

    def kiosk_window_env(self) -> dict[str, str]:
        # Full screen, borderless and on top come from Kivy's Config on both OSes
        # (kiosk.common.kivyenv.configure_kivy, which also picks SDL's x11 driver here).
        return {}


def _systemd_quote(word: str) -> str:
    if word and not re.search(r'[\s"\'\\$%;]', word):
        return word
    escaped = word.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{escaped}"'


# -- Windows ----------------------------------------------------------------------------

SM_CXSCREEN, SM_CYSCREEN = 0, 1
DRIVE_REMOVABLE = 2
RUN_KEY = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Run"
USERS_SID = "*S-1-5-32-545"  # BUILTIN\Users by SID: its name is localised on a Chinese Windows


@dataclass(frozen=True)
class Win32Api:
    """The few Windows API calls the backend makes (user32 / kernel32 through ctypes),
    injectable so that tests give fakes."""

    get_system_metrics: Callable[[int], int]
    get_logical_drives: Callable[[], int]
    get_drive_type: Callable[[str], int]


def real_win32() -> Win32Api:
    """ctypes.windll's functions; only callable on Windows."""
    import ctypes

    windll = ctypes.windll  # type: ignore[attr-defined]
    user32, kernel32 = windll.user32, windll.kernel32
    with contextlib.suppress(AttributeError, OSError):
        # Real pixels, not the ones scaled by the display's DPI setting (125 % would
        # report 1536x864 for a 1920x1080 screen).
        user32.SetProcessDPIAware()
    return Win32Api(
        get_system_metrics=lambda index: int(user32.GetSystemMetrics(index)),
        get_logical_drives=lambda: int(kernel32.GetLogicalDrives()),
        get_drive_type=lambda root: int(kernel32.GetDriveTypeW(ctypes.c_wchar_p(root))),
    )


def windows_os_name(win32_ver: tuple[str, str, str, str], edition: str | None) -> str:
    """`Windows 10 Professional`: Python 3.11 calls Windows 11 "10" (its build number,
    22000 and later, tells them apart)."""
    release, version = win32_ver[0], win32_ver[1]
    build = version.split(".")[2] if version.count(".") >= 2 else ""
    if release == "10" and build.isdigit() and int(build) >= 22000:
        release = "11"
    return " ".join(p for p in ("Windows", release, edition or "") if p)


_CIM_FIELD = re.compile(r"^\s*(Manufacturer|Model)\s*[:=]\s*(.*?)\s*$", re.IGNORECASE | re.MULTILINE)

# The hardware's vendor and model: PowerShell's CIM first (on every Windows 10), wmic as a
# fallback (deprecated, missing from newer builds). HypervisorPresent is not used: it is
# also true on a real PC with Hyper-V or virtualisation-based security turned on.
CIM_COMMAND = (
    "powershell",
    "-NoProfile",
    "-NonInteractive",
    "-Command",
    "Get-CimInstance Win32_ComputerSystem | Format-List Manufacturer,Model",
)
WMIC_COMMAND = ("wmic", "computersystem", "get", "manufacturer,model", "/format:list")


def parse_computer_system(text: str) -> dict[str, str]:
    """Manufacturer and Model from `Format-List` (`Model : X`) or wmic (`Model=X`) output."""
    return {m.group(1).lower(): m.group(2) for m in _CIM_FIELD.finditer(text)}


class WindowsBackend(_Machine):
    """A Windows 10 exam PC: shutdown.exe, GetSystemMetrics for the screen, CIM / wmic
    for virtualisation, removable drive letters for sticks, a Run key for autostart."""

    REBOOT = ("shutdown", "/r", "/t", "0")
    POWEROFF = ("shutdown", "/s", "/t", "0")

    def __init__(
        self,
        *,
        win32: Win32Api | None = None,
        win32_ver: Callable[[], tuple[str, str, str, str]] | None = None,
        win32_edition: Callable[[], str | None] | None = None,
        environ: Mapping[str, str] | None = None,
        writable: Callable[[Path], bool] | None = None,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self._win32 = win32
        self.win32_ver = win32_ver
        self.win32_edition = win32_edition
        self.environ = os.environ if environ is None else environ
        self.writable = writable or (lambda p: os.access(p, os.W_OK))

    @property
    def win32(self) -> Win32Api:
        if self._win32 is None:  # ctypes.windll only exists on Windows: made when first used
            self._win32 = real_win32()
        return self._win32

    def describe_os(self) -> str:
        win32_ver = self.win32_ver or pyplatform.win32_ver
        win32_edition = self.win32_edition or pyplatform.win32_edition
        return windows_os_name(win32_ver(), win32_edition())

    def screen(self) -> str:
        try:
            w = self.win32.get_system_metrics(SM_CXSCREEN)
            h = self.win32.get_system_metrics(SM_CYSCREEN)
        except (OSError, AttributeError, ImportError):
            return ""
        return f"{w}x{h}" if w > 0 and h > 0 else ""

    def virtual_machine(self) -> bool:
        for cmd in (CIM_COMMAND, WMIC_COMMAND):
            fields = parse_computer_system(self._output(cmd))
            if fields:
                return looks_virtual(fields.get("manufacturer", ""), fields.get("model", ""))
        return False

    # Paths.
    @property
    def state_dir(self) -> PurePath:
        return PureWindowsPath(self.environ.get("ProgramData") or r"C:\ProgramData") / "stu-client"

    def usb_roots(self) -> list[Path]:
        """The roots (`E:\\`) of the removable drives: GetLogicalDrives' bit mask, each
        letter's GetDriveTypeW. Fixed USB disks (DRIVE_FIXED) are not sticks."""
        try:
            mask = self.win32.get_logical_drives()
        except (OSError, AttributeError, ImportError):
            return []
        roots = []
        for i in range(26):
            if mask & (1 << i):
                root = f"{chr(ord('A') + i)}:\\"
                if self.win32.get_drive_type(root) == DRIVE_REMOVABLE:
                    roots.append(Path(root))
        return roots

    def usb_sticks(self, roots: Sequence[Path] | None = None) -> list[Path]:
        """The writable removable drives (or the writable roots given)."""
        return [r for r in (list(roots) if roots is not None else self.usb_roots()) if self.writable(r)]

    # Autostart. Not a Task Scheduler task at ONSTART as SYSTEM: such a task runs in
    # session 0, where no window is ever shown (session-0 isolation), so the answer app
    # the daemon starts would be invisible, and GetSystemMetrics would measure session 0's
    # screen. The machine-wide Run key starts the daemon in the session of whoever logs
    # on (the exam account, with automatic logon), with no password stored, undone by one
    # `reg delete`. What the Run key lacks, a restart of a daemon that dies, `--keep-alive`
    # gives (stu_client.supervise), with the logs in the state folder.
    def autostart(self, bundle: str | PurePath, state: str | PurePath) -> Autostart:
        value = subprocess.list2cmdline([*daemon_command(bundle, state, windowed=True), "--keep-alive"])
        return Autostart(
            folders=[str(state)],
            commands=[
                ["reg", "add", RUN_KEY, "/v", SERVICE_NAME, "/t", "REG_SZ", "/d", value, "/f"],
                # The daemon runs as the exam account: it must write the state folder the
                # administrator made (ProgramData lets users read, not change, others' files).
                ["icacls", str(state), "/grant", f"{USERS_SID}:(OI)(CI)M"],
            ],
            remove=[["reg", "delete", RUN_KEY, "/v", SERVICE_NAME, "/f"]],
        )

    def kiosk_window_env(self) -> dict[str, str]:
        # Full screen, borderless and on top come from Kivy's Config as on Linux. SDL must
        # not minimise the full-screen window when it loses focus (a notification, a UAC
        # prompt). Disabling Task Manager, Alt-Tab, the Windows key or Ctrl-Alt-Del (group
        # policy, Shell Launcher, a keyboard hook) is out of scope: the lab's image does it.
        return {"SDL_VIDEO_MINIMIZE_ON_FOCUS_LOSS": "0"}


RealBackend = LinuxBackend | WindowsBackend


def system_backend(*, platform: str | None = None, **kwargs: Any) -> RealBackend:
    """The backend of this machine (`platform`: a `sys.platform` value, for tests)."""
    name = sys.platform if platform is None else platform
    if name.startswith("win"):
        return WindowsBackend(**kwargs)
    return LinuxBackend(**kwargs)


# Existing callers construct `SystemBackend(...)`: the same factory.
SystemBackend = system_backend


def describe_os() -> str:
    """The OS as the scan reply and envcheck report it, e.g. `Windows 10 Professional`
    or `Linux 6.1.0`."""
    return system_backend().describe_os()


def default_state_dir() -> PurePath:
    """The state folder when none is given: /var/lib/stu-client, %ProgramData%\\stu-client."""
    return system_backend().state_dir


# -- tests and the simulated fleet ----------------------------------------------------


class RecordingBackend:
    """Does nothing but remember what it was asked; the probe is a healthy fixed report,
    with every piece of software asked for but those in `lacks`."""

    def __init__(self, report: dict[str, Any] | None = None, lacks: Sequence[str] = ()) -> None:
        self.calls: list[str] = []
        self.lacks = set(lacks)
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

    def probe(self, software: Sequence[str] = ()) -> dict[str, Any]:
        self.calls.append("probe")
        has = [*self.report.get("software", []), *(s for s in software if s not in self.lacks)]
        return {**self.report, "software": list(dict.fromkeys(has)), "pc_time": time.time()}
