"""The exam PC's platform backends with fakes: a recording runner that never runs
anything, fake win32 functions, a fake process list, a monkeypatched sys.platform."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path, PureWindowsPath

import pytest

from stu_client import candidate, platform
from stu_client.platform import (
    DRIVE_REMOVABLE,
    RUN_KEY,
    SM_CXSCREEN,
    SM_CYSCREEN,
    LinuxBackend,
    SystemBackend,
    Win32Api,
    WindowsBackend,
    describe_os,
    parse_computer_system,
    system_backend,
    windows_os_name,
)

DRIVE_FIXED, DRIVE_CDROM = 3, 5


class FakeRunner:
    """Records every command; answers from a table (program name → stdout, returncode);
    an unknown program is "not installed" (127), as the real runner reports it."""

    def __init__(self, answers: dict[str, tuple[str, int]] | None = None) -> None:
        self.answers = answers or {}
        self.calls: list[list[str]] = []

    def __call__(self, cmd: Sequence[str]) -> subprocess.CompletedProcess[str]:
        assert all(isinstance(w, str) for w in cmd), cmd
        self.calls.append(list(cmd))
        out, rc = self.answers.get(cmd[0], ("", 127))
        return subprocess.CompletedProcess(list(cmd), rc, out, "")


@pytest.fixture(autouse=True)
def nothing_real_runs(monkeypatch):
    """A test that reaches the real runner or subprocess fails instead of running it."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a real command was run: {args}")

    monkeypatch.setattr(platform, "run_command", refuse)
    monkeypatch.setattr(platform, "spawn_process", refuse)
    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)


def fake_win32(
    screen: tuple[int, int] = (1920, 1080), drives: dict[str, int] | None = None
) -> tuple[Win32Api, list[str]]:
    drives = (
        {"C": DRIVE_FIXED, "D": DRIVE_CDROM, "E": DRIVE_REMOVABLE, "G": DRIVE_REMOVABLE}
        if drives is None
        else drives
    )
    asked: list[str] = []
    mask = sum(1 << (ord(letter) - ord("A")) for letter in drives)

    def drive_type(root: str) -> int:
        asked.append(root)
        return drives[root[0]]

    metrics = {SM_CXSCREEN: screen[0], SM_CYSCREEN: screen[1]}
    return Win32Api(lambda i: metrics[i], lambda: mask, drive_type), asked


CIM_VMWARE = "\r\n\r\nManufacturer : VMware, Inc.\r\nModel        : VMware Virtual Platform\r\n\r\n"
CIM_REAL = "\r\nManufacturer : LENOVO\r\nModel        : 10FLA0G7CW\r\n"
WMIC_HYPERV = "\r\n\r\nManufacturer=Microsoft Corporation\r\nModel=Virtual Machine\r\n\r\n"


def windows(run: FakeRunner | None = None, **kw) -> WindowsBackend:
    win32 = kw.pop("win32", None) or fake_win32()[0]
    return WindowsBackend(
        run=run or FakeRunner(),
        win32=win32,
        win32_ver=kw.pop("win32_ver", lambda: ("10", "10.0.19045", "SP0", "Multiprocessor Free")),
        win32_edition=kw.pop("win32_edition", lambda: "Professional"),
        processes=kw.pop("processes", lambda: ["explorer.exe", "svchost.exe"]),
        which=kw.pop("which", lambda name: None),
        **kw,
    )


# -- power ---------------------------------------------------------------------------------


def test_windows_power_commands_are_shutdown_exe_through_the_runner():
    run = FakeRunner()
    backend = windows(run)
    backend.reboot()
    backend.shutdown()
    assert run.calls == [["shutdown", "/r", "/t", "0"], ["shutdown", "/s", "/t", "0"]]


def test_linux_power_commands_are_systemctl_through_the_runner():
    run = FakeRunner()
    backend = LinuxBackend(run=run)
    backend.reboot()
    backend.shutdown()
    assert run.calls == [["systemctl", "reboot"], ["systemctl", "poweroff"]]


def test_uninstall_runs_the_configured_command_only():
    run = FakeRunner()
    windows(run).uninstall()
    assert run.calls == []
    windows(run, uninstall_command=["C:\\stu-client\\uninstall.cmd"]).uninstall()
    assert run.calls == [["C:\\stu-client\\uninstall.cmd"]]


# -- the probe -----------------------------------------------------------------------------


def test_the_windows_probe_reports_the_fakes(tmp_path):
    run = FakeRunner({"powershell": (CIM_REAL, 0)})
    backend = windows(
        run,
        win32=fake_win32(screen=(1366, 768))[0],
        processes=lambda: ["explorer.exe", "TeamViewer.exe", "AnyDesk.exe", "teamviewer.exe"],
        which=lambda name: f"C:\\Windows\\{name}.exe" if name == "notepad" else None,
        software=["notepad", "Word"],
        disk_path=tmp_path,
    )
    report = backend.probe()
    assert set(report) == {
        "os", "cpu_cores", "memory_mb", "free_disk_mb", "screen", "software",
        "daemon_version", "virtual_machine", "remote_control", "pc_time",
    }  # fmt: skip
    assert report["os"] == "Windows 10 Professional"
    assert report["screen"] == "1366x768"
    assert report["software"] == ["notepad"]
    assert report["remote_control"] == ["AnyDesk.exe", "TeamViewer.exe", "teamviewer.exe"]
    assert report["virtual_machine"] is False
    assert run.calls == [list(platform.CIM_COMMAND)]
    assert isinstance(report["cpu_cores"], int) and report["cpu_cores"] >= 1


@pytest.mark.parametrize(
    ("answers", "virtual", "asked"),
    [
        ({"powershell": (CIM_VMWARE, 0)}, True, 1),
        ({"powershell": (CIM_REAL, 0)}, False, 1),
        # No PowerShell answer: wmic's list format decides (Hyper-V's guest).
        ({"powershell": ("", 1), "wmic": (WMIC_HYPERV, 0)}, True, 2),
        ({}, False, 2),  # neither tool: not reported as a VM
    ],
)
def test_the_windows_vm_check_reads_the_computer_system(answers, virtual, asked):
    run = FakeRunner(answers)
    assert windows(run).virtual_machine() is virtual
    assert len(run.calls) == asked
    assert run.calls[0][0] == "powershell" and "Win32_ComputerSystem" in run.calls[0][-1]


def test_computer_system_output_is_parsed_in_both_formats():
    assert parse_computer_system(CIM_VMWARE) == {
        "manufacturer": "VMware, Inc.",
        "model": "VMware Virtual Platform",
    }
    assert parse_computer_system(WMIC_HYPERV) == {
        "manufacturer": "Microsoft Corporation",
        "model": "Virtual Machine",
    }
    assert parse_computer_system("garbage") == {}


def test_windows_os_names():
    assert windows_os_name(("10", "10.0.19045", "", ""), "Enterprise") == "Windows 10 Enterprise"
    # Python 3.11 says "10" on Windows 11: the build number tells.
    assert windows_os_name(("10", "10.0.22631", "", ""), "Professional") == "Windows 11 Professional"
    assert windows_os_name(("10", "10.0.19045", "", ""), None) == "Windows 10"


def test_a_screen_the_api_cannot_measure_is_empty():
    assert windows(win32=fake_win32(screen=(0, 0))[0]).screen() == ""

    def broken(index: int) -> int:
        raise OSError("no user32")

    assert windows(win32=Win32Api(broken, lambda: 0, lambda r: 0)).screen() == ""


def test_the_linux_probe_parses_xrandr_and_detect_virt(tmp_path):
    xrandr = "Screen 0: minimum 8 x 8, current 1920 x 1200, maximum 32767 x 32767\n"
    run = FakeRunner({"xrandr": (xrandr, 0), "systemd-detect-virt": ("none\n", 1)})
    backend = LinuxBackend(run=run, processes=lambda: ["bash", "x11vnc"], disk_path=tmp_path)
    report = backend.probe()
    assert report["screen"] == "1920x1200"
    assert report["virtual_machine"] is False
    assert report["remote_control"] == ["x11vnc"]
    assert report["os"].startswith("Linux")
    assert ["xrandr", "--current"] in run.calls and ["systemd-detect-virt", "--vm"] in run.calls
    assert LinuxBackend(run=FakeRunner({"systemd-detect-virt": ("kvm\n", 0)})).virtual_machine() is True


def test_without_detect_virt_the_dmi_product_name_decides(tmp_path):
    dmi = tmp_path / "product_name"
    dmi.write_text("VirtualBox\n")
    assert LinuxBackend(run=FakeRunner(), dmi_path=dmi).virtual_machine() is True
    dmi.write_text("ThinkCentre M720q\n")
    assert LinuxBackend(run=FakeRunner(), dmi_path=dmi).virtual_machine() is False
    assert LinuxBackend(run=FakeRunner(), dmi_path=tmp_path / "missing").virtual_machine() is False
    assert LinuxBackend(run=FakeRunner()).screen() == ""  # no xrandr


# -- the answer app's process --------------------------------------------------------------


class FakeProcess:
    def __init__(self) -> None:
        self.pid, self.code, self.terminated = 4242, None, False

    def poll(self):
        return self.code

    def terminate(self) -> None:
        self.terminated, self.code = True, 0

    def wait(self, timeout=None):
        return self.code

    def kill(self) -> None:
        self.code = -9


def test_the_app_is_spawned_once_and_closed():
    started: list[list[str]] = []
    proc = FakeProcess()

    def spawn(cmd):
        started.append(list(cmd))
        return proc

    backend = windows(app_command=["C:\\stu-client\\stu-clientw.exe", "app"], spawn=spawn)
    backend.start_app()
    backend.start_app()
    assert started == [["C:\\stu-client\\stu-clientw.exe", "app"]] and backend.app_pid == 4242
    backend.close_app()
    assert proc.terminated and not backend.app_alive() and backend.app_pid is None


# -- autostart -----------------------------------------------------------------------------


def test_windows_autostart_is_the_run_key_with_the_windowed_exe_kept_alive(monkeypatch):
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", "C:\\Program Files\\stu-client\\stu-client.exe")
    plan = windows().autostart("D:\\room bundle", "C:\\ProgramData\\stu-client")
    add, grant = plan.commands
    assert add[:8] == ["reg", "add", RUN_KEY, "/v", "stu-client", "/t", "REG_SZ", "/d"] and add[-1] == "/f"
    assert add[8] == (
        '"C:\\Program Files\\stu-client\\stu-clientw.exe" daemon --bundle "D:\\room bundle"'
        " --state C:\\ProgramData\\stu-client --keep-alive"
    )
    assert grant == ["icacls", "C:\\ProgramData\\stu-client", "/grant", "*S-1-5-32-545:(OI)(CI)M"]
    assert plan.remove == [["reg", "delete", RUN_KEY, "/v", "stu-client", "/f"]]
    assert plan.files == {} and list(plan.folders) == ["C:\\ProgramData\\stu-client"]


def test_linux_autostart_is_a_systemd_unit_that_restarts_the_daemon(monkeypatch):
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", "/opt/stu-client/stu-client")
    plan = LinuxBackend(run=FakeRunner()).autostart("/opt/room bundle", "/var/lib/stu-client")
    unit = plan.files["/etc/systemd/system/stu-client.service"]
    assert (
        'ExecStart=/opt/stu-client/stu-client daemon --bundle "/opt/room bundle"'
        " --state /var/lib/stu-client\n" in unit
    )
    assert "Restart=always\n" in unit and "WantedBy=graphical.target" in unit
    assert plan.commands == [
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", "--now", "stu-client.service"],
    ]
    assert plan.remove == [["systemctl", "disable", "--now", "stu-client.service"]]


# -- paths ---------------------------------------------------------------------------------


def test_state_folder_defaults():
    assert windows(environ={"ProgramData": "D:\\ProgramData"}).state_dir == PureWindowsPath(
        "D:\\ProgramData\\stu-client"
    )
    assert str(windows(environ={}).state_dir) == "C:\\ProgramData\\stu-client"
    assert LinuxBackend().state_dir == Path("/var/lib/stu-client")


def test_windows_usb_roots_are_the_removable_drive_letters():
    win32, asked = fake_win32()
    backend = windows(win32=win32, writable=lambda p: str(p) != "G:\\")
    assert [str(r) for r in backend.usb_roots()] == ["E:\\", "G:\\"]
    assert asked == ["C:\\", "D:\\", "E:\\", "G:\\"]  # only the letters in the mask
    assert [str(r) for r in backend.usb_sticks()] == ["E:\\"]  # G: is write-protected


def test_linux_usb_sticks_are_the_mount_points_under_the_roots(tmp_path):
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
        "40 22 8:17 / /media/exam/U\\040DISK rw - vfat /dev/sdb1 rw\n"
        "41 22 8:33 / /mnt/backup rw - ext4 /dev/sdc1 rw\n"
        "42 22 8:49 / /srv/data rw - ext4 /dev/sdd1 rw\n"
    )
    backend = LinuxBackend(mountinfo_path=mountinfo, writable=lambda p: p != Path("/mnt/backup"))
    assert backend.usb_roots() == [Path("/media"), Path("/run/media"), Path("/mnt")]
    assert backend.usb_sticks() == [Path("/media/exam/U DISK")]
    assert backend.usb_sticks([Path("/srv")]) == [Path("/srv/data")]


def test_find_sticks_on_windows_asks_the_backend(monkeypatch):
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.delenv("STU_USB_ROOTS", raising=False)
    monkeypatch.delenv("STU_USB_FOLDERS", raising=False)
    win32 = fake_win32(drives={"C": DRIVE_FIXED, "F": DRIVE_REMOVABLE})[0]
    monkeypatch.setattr(platform, "real_win32", lambda: win32)
    monkeypatch.setattr(WindowsBackend, "usb_sticks", lambda self, roots=None: self.usb_roots())
    assert [str(p) for p in candidate.find_sticks()] == ["F:\\"]


def test_find_sticks_folder_mode_still_works(tmp_path, monkeypatch):
    (tmp_path / "media" / "U1").mkdir(parents=True)
    monkeypatch.setenv("STU_USB_ROOTS", str(tmp_path / "media"))
    monkeypatch.setenv("STU_USB_FOLDERS", "1")
    assert candidate.find_sticks() == [tmp_path / "media" / "U1"]


# -- the kiosk window ---------------------------------------------------------------------


def test_the_windows_window_does_not_minimise_on_focus_loss():
    assert windows().kiosk_window_env() == {"SDL_VIDEO_MINIMIZE_ON_FOCUS_LOSS": "0"}
    assert LinuxBackend().kiosk_window_env() == {}


# -- the factory ---------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "kind"), [("win32", WindowsBackend), ("linux", LinuxBackend)])
def test_the_factory_picks_the_backend_of_sys_platform(monkeypatch, name, kind):
    monkeypatch.setattr(sys, "platform", name)
    backend = system_backend(app_command=["app"], disk_path="/tmp")
    assert type(backend) is kind and backend.app_command == ["app"]
    assert type(SystemBackend()) is kind  # the old name still works
    assert type(system_backend(platform="win32" if kind is LinuxBackend else "linux")) is not kind


def test_describe_os_on_windows_uses_win32_ver(monkeypatch):
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(platform.pyplatform, "win32_ver", lambda: ("10", "10.0.19045", "", ""))
    monkeypatch.setattr(platform.pyplatform, "win32_edition", lambda: "Education")
    assert describe_os() == "Windows 10 Education"


# -- stu-client autostart ------------------------------------------------------------------


def test_autostart_print_shows_the_plan_and_runs_nothing(tmp_path, capsys, monkeypatch):
    from stu_client.cli import main

    monkeypatch.setattr(sys, "platform", "linux")
    assert (
        main(["autostart", "--bundle", str(tmp_path / "b"), "--state", str(tmp_path / "s"), "--print"]) == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("# /etc/systemd/system/stu-client.service\n[Unit]")
    assert f"--state {tmp_path / 's'}" in out
    assert out.rstrip().endswith("systemctl enable --now stu-client.service")
    assert not (tmp_path / "s").exists()  # --print makes nothing


def test_autostart_stops_at_the_first_command_that_fails(tmp_path, capsys, monkeypatch):
    from stu_client.cli import main

    run = FakeRunner({"reg": ("", 1)})
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(platform, "run_command", run)
    state = tmp_path / "state"
    assert main(["autostart", "--bundle", str(tmp_path), "--state", str(state)]) == 1
    assert [c[0] for c in run.calls] == ["reg"]  # icacls never ran
    assert state.is_dir()
    assert "请以管理员身份运行" in capsys.readouterr().err
