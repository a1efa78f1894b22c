"""The appliance disk booted in qemu (issue 7, item 3): `image/disk.sh` makes a raw GPT disk
of the session's root (tests/image/conftest.py), its layout is checked without mounting
anything, and a copy of it, with a test-only report unit written in (tests/image/probe/),
is booted in qemu-system-x86_64 with a USB stick on an xHCI controller and a VGA screen, by
the BIOS (syslinux) and, from a fresh copy, by UEFI (OVMF, systemd-boot).
What the booted box runs is read from its serial console: the root read-only, /data from
box-data, the first-boot keys, kiosk.service running cage and the frozen app as proctor,
the stick mounted by the udev rule, no getty anywhere, no failed unit, and the engine
brought back by systemd after a SIGKILL. The VGA screen is taken through QMP and must be
drawn; it is kept as build/work/image-boot.png (copied by hand to
docs/screens/box/image-boot.png when the boot screen changes). KVM when it works, else TCG (the
test output says which). Needs root (the root's files keep their owners in mkfs.ext4 -d)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cli_helpers import poll_until, wait_until
from tests.frozen.test_frozen import drawn, png
from tests.image.conftest import ROOT, Built

pytestmark = [pytest.mark.image, pytest.mark.slow, pytest.mark.timeout(900)]

PROBE = Path(__file__).resolve().parent / "probe"
QEMU = "qemu-system-x86_64"
DISK_TIMEOUT_S = 300  # measured: 4-13 s for a 1.1 GB root
KVM_PROBE_S = 10  # a kernel under KVM prints its banner in well under a second
BOOT_TIMEOUT_S = 480  # measured under TCG on 2 busy cores: see image/README.md
SCREEN_TIMEOUT_S = 120
SCREEN = (1280, 800)
STICK_LABEL = "BOXSTICK"
STICK_TEXT = "考场 1999999001 的座位表"
SHOT = ROOT / "build" / "work" / "image-boot.png"  # not in docs/: a test run leaves the tree clean
SERIAL_COPY = ROOT / "build" / "work" / "image-boot-serial.log"
OVMF = Path("/usr/share/ovmf/OVMF.fd")

TOOLS = ("sfdisk", "mkfs.ext4", "mkfs.fat", "syslinux", "mcopy", "debugfs", QEMU)
if os.geteuid() != 0 or any(shutil.which(t) is None for t in TOOLS):
    pytest.skip(f"the disk image needs root and {', '.join(TOOLS)} (scripts/setup.sh)",
                allow_module_level=True)  # fmt: skip


@dataclass(frozen=True)
class Disk:
    path: Path
    seconds: float
    partitions: dict[str, dict[str, Any]]  # by GPT name: sfdisk --json's entries


def offset(part: dict[str, Any]) -> int:
    return int(part["start"]) * 512


@pytest.fixture(scope="module")
def disk(rootfs: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Disk]:
    out = tmp_path_factory.mktemp("disk") / "box.img"
    start = time.monotonic()
    run = subprocess.run(
        ["bash", "image/disk.sh", str(rootfs.path), str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=DISK_TIMEOUT_S, check=False,
    )  # fmt: skip
    seconds = time.monotonic() - start
    assert run.returncode == 0, f"disk.sh failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    table = json.loads(subprocess.run(["sfdisk", "--json", str(out)], capture_output=True, check=True).stdout)
    parts = {p.get("name", ""): p for p in table["partitiontable"]["partitions"]}
    assert table["partitiontable"]["label"] == "gpt"
    yield Disk(out, seconds, parts)
    out.unlink()


def blkid(image: Path, at: int) -> dict[str, str]:
    out = subprocess.run(
        ["blkid", "-p", "-o", "export", "-O", str(at), str(image)], capture_output=True, text=True, check=True
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def debugfs(image: Path, at: int, *requests: str, write: bool = False) -> str:
    """debugfs on the ext4 file system at byte `at` of the disk image: no mount, no loop."""
    run = subprocess.run(
        ["debugfs", *(["-w"] if write else []), "-f", "-", f"{image}?offset={at}"],
        input="\n".join(requests) + "\n", capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return run.stdout


def fat_file(image: Path, at: int, path: str) -> bytes:
    return subprocess.run(
        ["mtype", "-i", f"{image}@@{at}", f"::{path}"],
        env={**os.environ, "MTOOLS_SKIP_CHECK": "1"}, capture_output=True, check=True,
    ).stdout  # fmt: skip


# -- the disk, as built ------------------------------------------------------------------


def test_the_disk_has_boot_root_and_data_partitions(disk: Disk, rootfs: Built) -> None:
    assert list(disk.partitions) == ["box-boot", "box-root", "box-data"]
    boot, root, data = (disk.partitions[n] for n in ("box-boot", "box-root", "box-data"))
    assert boot["type"] == "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"  # EFI system partition
    assert "LegacyBIOSBootable" in boot.get("attrs", "")  # what gptmbr.bin boots
    assert root["type"] == "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"  # Linux root (x86-64)
    with disk.path.open("rb") as f:
        mbr = f.read(440)
    assert mbr == Path("/usr/lib/syslinux/mbr/gptmbr.bin").read_bytes()[:440]
    assert blkid(disk.path, offset(boot))["TYPE"] == "vfat"
    root_fs, data_fs = blkid(disk.path, offset(root)), blkid(disk.path, offset(data))
    assert (root_fs["TYPE"], root_fs["LABEL"]) == ("ext4", "box-root")
    assert (data_fs["TYPE"], data_fs["LABEL"]) == ("ext4", "box-data")
    # The root holds the frozen app as built; the data partition is empty.
    stat = debugfs(disk.path, offset(root), "stat /opt/kiosk/kiosk")
    assert f"Size: {(rootfs.path / 'opt/kiosk/kiosk').stat().st_size}" in stat
    listing = debugfs(disk.path, offset(data), "ls -p /")
    assert sorted(f.split("/")[5] for f in listing.split() if f.count("/") >= 6) == [".", "..", "lost+found"]
    # The boot partition: syslinux, the root's own kernel and initrd, the command line.
    kernel = sorted((rootfs.path / "boot").glob("vmlinuz-*"))[-1]
    assert fat_file(disk.path, offset(boot), "/vmlinuz") == kernel.read_bytes()
    assert fat_file(disk.path, offset(boot), "/ldlinux.sys")
    config = fat_file(disk.path, offset(boot), "/syslinux.cfg").decode()
    append = next(line.split(None, 1)[1] for line in config.splitlines() if line.strip().startswith("APPEND"))
    assert append.split() == ["root=LABEL=box-root", "ro", "quiet", "console=tty1", "console=ttyS0,115200n8"]
    # UEFI: systemd-boot at the fallback path, one entry with the same command line.
    loader = Path("/usr/lib/systemd/boot/efi/systemd-bootx64.efi").read_bytes()
    assert fat_file(disk.path, offset(boot), "/EFI/BOOT/BOOTX64.EFI") == loader
    assert "timeout 0" in fat_file(disk.path, offset(boot), "/loader/loader.conf").decode()
    entry = dict(
        line.split(None, 1)
        for line in fat_file(disk.path, offset(boot), "/loader/entries/box.conf").decode().splitlines()
    )
    assert (entry["linux"], entry["initrd"], entry["options"]) == ("/vmlinuz", "/initrd.img", append)
    size = disk.path.stat().st_size
    used = disk.path.stat().st_blocks * 512
    print(f"disk.sh: {disk.seconds:.0f} s, image {size / 2**20:.0f} MiB ({used / 2**20:.0f} MiB allocated)")


# -- booted in qemu ---------------------------------------------------------------------------


class Qmp:
    """QEMU's machine protocol on a unix socket: one command at a time, events skipped."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(60)
        self.sock.connect(str(path))
        self.file = self.sock.makefile("rwb")
        json.loads(self.file.readline())  # the greeting
        self.execute("qmp_capabilities")

    def execute(self, command: str, **arguments: Any) -> Any:
        self.file.write(json.dumps({"execute": command, "arguments": arguments}).encode() + b"\n")
        self.file.flush()
        while True:
            reply = json.loads(self.file.readline())
            if "return" in reply:
                return reply["return"]
            if "error" in reply:
                raise RuntimeError(f"qmp {command}: {reply['error']}")

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def qemu_accel(kernel: Path, tmp: Path) -> tuple[str, str]:
    """KVM if a kernel really runs under it here, else TCG; and why."""
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
    except OSError as e:
        return "tcg", f"/dev/kvm: {e.strerror}"
    log = tmp / "kvm-probe.log"
    proc = subprocess.Popen(
        [QEMU, "-accel", "kvm", "-m", "256", "-display", "none", "-no-reboot", "-monitor", "none",
         "-serial", f"file:{log}", "-kernel", str(kernel), "-append", "console=ttyS0 panic=-1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        exited_or_ran = poll_until(
            lambda: proc.poll() is not None or (log.exists() and b"Linux version" in log.read_bytes()),
            KVM_PROBE_S, 0.2,
        )  # fmt: skip
        ran = log.exists() and b"Linux version" in log.read_bytes()
    finally:
        if proc.poll() is None:
            proc.kill()
        err = proc.communicate(timeout=30)[1].decode(errors="replace").strip()
    if ran:
        return "kvm", "a kernel ran under KVM"
    if exited_or_ran:
        return "tcg", f"KVM unusable: qemu exited ({err.splitlines()[-1] if err else 'no message'})"
    return "tcg", f"KVM unusable: a guest kernel printed nothing in {KVM_PROBE_S} s"


def ppm_rgb(data: bytes) -> tuple[int, int, bytes]:
    """(width, height, RGB bytes) of a binary PPM (P6, maxval 255) as qemu's screendump writes."""
    fields: list[bytes] = []
    pos = 0
    while len(fields) < 4:
        while data[pos : pos + 1].isspace():
            pos += 1
        end = pos
        while not data[end : end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    assert fields[0] == b"P6" and fields[3] == b"255", fields
    width, height = int(fields[1]), int(fields[2])
    rgb = data[pos + 1 : pos + 1 + width * height * 3]
    assert len(rgb) == width * height * 3
    return width, height, rgb


@dataclass(frozen=True)
class Boot:
    accel: str
    why: str
    serial: str
    report: dict[str, str]  # the probe's `PROBE key: value` lines
    screen: tuple[int, int, bytes]
    seconds_to_app: float  # from starting qemu to the app's window (Xwayland started)


def inject_probe(image: Path, root_at: int) -> None:
    """The test-only report unit, written into the copy's root partition and enabled."""
    debugfs(
        image, root_at,
        "cd /usr/local/lib/kiosk",
        f"write {PROBE / 'boot-probe'} boot-probe",
        "sif boot-probe mode 0100755",
        "sif boot-probe uid 0",
        "sif boot-probe gid 0",
        "cd /etc/systemd/system",
        f"write {PROBE / 'kiosk-boot-probe.service'} kiosk-boot-probe.service",
        "sif kiosk-boot-probe.service mode 0100644",
        "sif kiosk-boot-probe.service uid 0",
        "sif kiosk-boot-probe.service gid 0",
        "cd multi-user.target.wants",
        "symlink kiosk-boot-probe.service /etc/systemd/system/kiosk-boot-probe.service",
        write=True,
    )  # fmt: skip
    listing = debugfs(image, root_at, "ls /etc/systemd/system/multi-user.target.wants")
    assert "kiosk-boot-probe.service" in listing, listing


def make_stick(path: Path) -> None:
    """A 64 MiB vfat stick labelled BOXSTICK with a room sheet under a Chinese name."""
    with open(path, "wb") as f:
        f.truncate(64 * 2**20)
    subprocess.run(["mkfs.fat", "-n", STICK_LABEL, str(path)], capture_output=True, check=True)
    sheet = path.parent / "sheet.txt"
    sheet.write_text(STICK_TEXT + "\n", encoding="utf-8")
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    for name in ("room.txt", "考场座位表.txt"):
        subprocess.run(["mcopy", "-i", str(path), str(sheet), f"::/{name}"], env=env, check=True)


def report_of(serial: str) -> dict[str, str]:
    report = {}
    for line in serial.splitlines():
        if line.startswith("PROBE ") and ": " in line:
            key, _, value = line[len("PROBE ") :].partition(": ")
            report.setdefault(key, value.strip())
    return report


@dataclass(frozen=True)
class Accel:
    name: str  # kvm or tcg
    why: str


@pytest.fixture(scope="module")
def accel(rootfs: Built, tmp_path_factory: pytest.TempPathFactory) -> Accel:
    kernel = sorted((rootfs.path / "boot").glob("vmlinuz-*"))[-1]
    return Accel(*qemu_accel(kernel, tmp_path_factory.mktemp("kvm")))


@contextmanager
def boot(
    disk: Disk, accel: Accel, tmp: Path, firmware: list[str], until: str, screen: bool
) -> Iterator[Boot]:
    """A copy of the disk with the report unit booted until the report line `until`, and
    (`screen`) the screen taken once drawn; qemu stopped on leaving."""
    image = tmp / "box-probe.img"
    subprocess.run(["cp", "--sparse=always", str(disk.path), str(image)], check=True, timeout=300)
    inject_probe(image, offset(disk.partitions["box-root"]))
    stick = tmp / "stick.img"
    make_stick(stick)
    serial, qmp_path, shot = tmp / "serial.log", tmp / "qmp.sock", tmp / "screen.ppm"
    cmd = [
        QEMU, "-machine", "q35", *firmware,
        "-accel", "kvm" if accel.name == "kvm" else "tcg,thread=multi",
        *(["-cpu", "host"] if accel.name == "kvm" else []),
        "-smp", "2", "-m", "2048", "-no-reboot", "-display", "none",
        "-drive", f"file={image},format=raw,if=ide",  # AHCI on q35: a SATA disk
        "-device", "qemu-xhci",
        "-drive", f"if=none,id=stick,file={stick},format=raw", "-device", "usb-storage,drive=stick",
        # virtio-gpu: cage's wlroots 0.15 needs a DRM device with PRIME import (bochs-drm has none)
        "-vga", "none", "-device", f"virtio-vga,xres={SCREEN[0]},yres={SCREEN[1]}",
        "-nic", "user,model=virtio-net-pci,restrict=on",  # a NIC, but no way out
        "-serial", f"file:{serial}",
        "-qmp", f"unix:{qmp_path},server=on,wait=off",
    ]  # fmt: skip
    started = time.monotonic()
    errors = tmp / "qemu.err"
    with open(errors, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
    qmp: Qmp | None = None

    def text() -> str:
        if not serial.exists():
            return ""
        return serial.read_bytes().decode("utf-8", errors="replace").replace("\r", "")

    def seen(marker: str) -> bool:
        if proc.poll() is not None:
            pytest.fail(f"qemu exited ({proc.returncode}): {errors.read_text(errors='replace')[-2000:]}")
        return f"PROBE {marker}: " in text() or "PROBE done: " in text()

    try:
        if not poll_until(lambda: seen("window-up"), BOOT_TIMEOUT_S, 0.5):
            pytest.fail(f"no app window on the box in {BOOT_TIMEOUT_S} s ({accel.name}):\n{text()[-6000:]}")
        seconds_to_app = time.monotonic() - started
        if not poll_until(lambda: seen(until), BOOT_TIMEOUT_S, 0.5):
            pytest.fail(f"no report from the box in {BOOT_TIMEOUT_S} s ({accel.name}):\n{text()[-6000:]}")
        wait_until(lambda: qmp_path.exists(), 10, "the QMP socket")
        qmp = Qmp(qmp_path)

        def screen_drawn() -> bool:
            qmp.execute("screendump", filename=str(shot))  # type: ignore[union-attr]
            return drawn(ppm_rgb(shot.read_bytes())[2])

        taken = (0, 0, b"")
        if screen:
            poll_until(screen_drawn, SCREEN_TIMEOUT_S, 1.0)
            taken = ppm_rgb(shot.read_bytes())
        yield Boot(accel.name, accel.why, text(), report_of(text()), taken, seconds_to_app)
    finally:
        if qmp is not None:
            with contextlib.suppress(OSError, RuntimeError, json.JSONDecodeError):
                qmp.execute("quit")
            qmp.close()
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        image.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def booted(
    disk: Disk,
    rootfs: Built,
    accel: Accel,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[Boot]:
    """Booted by BIOS (syslinux), the whole report: the kill and the restart included."""
    with boot(disk, accel, tmp_path_factory.mktemp("boot"), [], until="done", screen=True) as booted:
        SHOT.parent.mkdir(parents=True, exist_ok=True)
        SHOT.write_bytes(png(*booted.screen))
        SERIAL_COPY.parent.mkdir(parents=True, exist_ok=True)
        SERIAL_COPY.write_text(booted.serial, encoding="utf-8")
        report = booted.report
        size, allocated = disk.path.stat().st_size, disk.path.stat().st_blocks * 512
        summary = (
            f"image: root built in {rootfs.seconds:.0f} s, disk.sh {disk.seconds:.0f} s, "
            f"{size / 2**20:.0f} MiB disk ({allocated / 2**20:.0f} MiB allocated); "
            f"boot: {accel.name.upper()} ({accel.why}); kernel uptime {report.get('system')} system up, "
            f"{report.get('app-up')} engine listening, {report.get('window-up')} app window; "
            f"{booted.seconds_to_app:.0f} s from starting qemu to the window; "
            f"engine back {report.get('restarted', '?')}; "
            f"serial log {SERIAL_COPY.relative_to(ROOT)}, screen {SHOT.relative_to(ROOT)}"
        )
        say(request, summary)
        yield booted


def say(request: pytest.FixtureRequest, line: str) -> None:
    """A line in the test output even when output is captured (which accelerator ran)."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)
    print(line)


def test_the_root_is_read_only_and_data_is_the_data_partition(booted: Boot) -> None:
    r = booted.report
    assert r["firmware"] == "bios"  # syslinux booted it
    _, fstype, options = r["root"].split()
    assert fstype == "ext4" and "ro" in options.split(","), r["root"]
    assert r["root-label"] == "box-root"
    _, fstype, options = r["data"].split()
    assert fstype == "ext4" and "rw" in options.split(","), r["data"]
    assert r["data-label"] == "box-data"


def test_first_boot_made_the_keys_as_proctor(booted: Boot) -> None:
    r = booted.report
    assert {"box.key", "box.crt"} <= set(r["keys"].split()), r["keys"]
    assert r["keys-owner"] == "proctor 600"
    assert r["firstboot"] == "success 0"


def test_kiosk_service_runs_cage_with_the_frozen_app_on_tty1(booted: Boot) -> None:
    r = booted.report
    assert r["kiosk"] == "active user=proctor"
    assert r["kiosk-main"] == "/usr/bin/cage"
    procs = set(r["kiosk-procs"].split())  # executable(user)
    want = {"/usr/bin/cage(proctor)", "/usr/bin/Xwayland(proctor)", "/opt/kiosk/kiosk(proctor)"}
    assert want <= procs, procs
    assert "proctor tty1" in r["session"], r["session"]  # logind's seat session


def test_nothing_failed_and_no_login_prompt_anywhere(booted: Boot) -> None:
    r = booted.report
    assert r["system"].startswith("running"), f"{r['system']}; failed: {r['failed']}"
    assert r["failed"] == ""
    assert r["getty-units"] == "" and r["agetty"] == "0", (r["getty-units"], r["agetty"])
    assert r["tty1"] == "masked"
    assert r["timesyncd"] == "masked"
    assert "login:" not in booted.serial


def test_the_usb_stick_is_mounted_by_its_label(booted: Boot) -> None:
    r = booted.report
    assert "usb" in r, f"the stick was not mounted at /media/{STICK_LABEL}: {r.get('timeout')}"
    _, fstype, options, unit = r["usb"].split()
    assert fstype == "vfat" and {"rw", "nosuid", "nodev", "noexec"} <= set(options.split(","))
    assert unit == f"unit=media-{STICK_LABEL}.mount"
    assert set(r["usb-files"].split()) == {"room.txt", "考场座位表.txt"}
    assert r["usb-text"] == STICK_TEXT


def test_systemd_brings_the_engine_back_after_a_kill(booted: Boot) -> None:
    r = booted.report
    assert "restarted" in r, f"kiosk.service did not come back: {r.get('timeout')}"
    _, _, restarts, engine, was, state = r["restarted"].split()
    assert int(restarts.split("=")[1]) >= 1
    assert engine != f"engine={was.split('=')[1]}"
    assert state == "active"
    assert {"/usr/bin/cage(proctor)", "/opt/kiosk/kiosk(proctor)"} <= set(r["kiosk-procs-after"].split())


def test_the_screen_shows_the_box_app(booted: Boot) -> None:
    width, height, rgb = booted.screen
    assert (width, height) == SCREEN
    assert drawn(rgb), f"the VGA screen is not drawn; see {SHOT}"
    # The app's window covers the screen: no black left around it (a window kept at the
    # size it opened with leaves most of the screen black).
    pixels = [rgb[i : i + 3] for i in range(0, len(rgb), 3 * 7)]
    black = sum(1 for p in pixels if p == b"\0\0\0") / len(pixels)
    assert black < 0.05, f"{black:.0%} of the screen is black; see {SHOT}"


# -- booted by UEFI ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def booted_uefi(
    disk: Disk, accel: Accel, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Boot]:
    """A fresh copy booted by OVMF's UEFI (systemd-boot), up to the app's processes (the
    screen is checked on the BIOS boot: TCG is slow enough)."""
    if not OVMF.exists():
        pytest.skip(f"no UEFI firmware for qemu at {OVMF} (ovmf, scripts/setup.sh)")
    with boot(
        disk, accel, tmp_path_factory.mktemp("uefi"), ["-bios", str(OVMF)], until="kiosk-procs", screen=False
    ) as booted:
        window = booted.report.get("window-up")
        say(request, f"image UEFI boot: {accel.name.upper()}; app window at {window} s of kernel uptime, "
                     f"{booted.seconds_to_app:.0f} s from starting qemu")  # fmt: skip
        yield booted


def test_the_disk_boots_by_uefi_too(booted_uefi: Boot) -> None:
    r = booted_uefi.report
    assert r["firmware"] == "uefi"
    assert r["failed"] == "", r["failed"]
    assert "ro" in r["root"].split()[2].split(",") and r["root-label"] == "box-root"
    assert {"box.key", "box.crt"} <= set(r["keys"].split())
    want = {"/usr/bin/cage(proctor)", "/usr/bin/Xwayland(proctor)", "/opt/kiosk/kiosk(proctor)"}
    assert want <= set(r["kiosk-procs"].split()), r["kiosk-procs"]  # cage got the DRM device
