"""USB fixtures: a stick on a real file system under a temporary mount root: ext4 on a
loop device, vfat through FUSE (fusefat), or a plain folder (folder mode). Where
mounting is not possible the ext4 and vfat sticks fall back to a folder, and the end
of the run says which backends really ran."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kiosk.settings import Settings, load
from kiosk.usb.mounts import stick_mounts
from tests.polling import poll_until

BACKENDS = ("ext4", "vfat", "folder")
LABELS = {"ext4": "ext4 (loop)", "vfat": "vfat (fusefat)", "folder": "folder"}
STICK_NAME = "U盘 1"  # a space and a non-ASCII letter, as the kernel escapes and keeps them

# What really ran, and how soon a plugged stick was noticed, for the end of the run.
ran: dict[str, str] = {}
latencies: dict[str, float] = {}


def envelope(fmt: str) -> bytes:
    """A signed envelope's start, as kiosk.common.signed writes it (compact)."""
    return json.dumps(
        {"format": fmt, "version": 2, "signer": "ab", "body": "", "sig": ""}, separators=(",", ":")
    ).encode()


def indented(fmt: str) -> bytes:
    """An older package, as kiosk.common.packages.dump writes it (indent=1)."""
    return json.dumps({"format": fmt, "version": 1, "room_code": "1999999001"}, indent=1).encode()


def _run(*cmd: str | Path) -> None:
    subprocess.run([str(c) for c in cmd], check=True, capture_output=True, timeout=30)


def _make_image(backend: str, image: Path, size_mb: int) -> None:
    with open(image, "wb") as f:
        f.truncate(size_mb * 1024 * 1024)
    if backend == "ext4":
        _run("mkfs.ext4", "-q", "-F", image)
    else:
        _run("mkfs.vfat", image)


@functools.cache
def why_not(backend: str) -> str | None:
    """Why this backend cannot be mounted here (None: it can), found by mounting one."""
    if backend == "folder":
        return None
    if os.geteuid() != 0:
        return "not root"
    tools = ("mkfs.ext4", "mount", "umount", "losetup") if backend == "ext4" else ("mkfs.vfat", "fusefat")
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        return "missing " + ", ".join(missing)
    if backend == "ext4" and not Path("/dev/loop-control").exists():
        return "no loop device"
    if backend == "vfat" and not Path("/dev/fuse").exists():
        return "no /dev/fuse"
    with tempfile.TemporaryDirectory() as tmp:
        stick = Stick(backend, Path(tmp) / "media", Path(tmp), 8)
        try:
            stick.plug()
        except (OSError, subprocess.SubprocessError) as exc:
            stderr = getattr(exc, "stderr", b"") or b""
            return f"mount failed: {stderr.decode(errors='replace').strip() or exc}"
        finally:
            stick.cleanup()
    return None


class Stick:
    """One stick under the mount root `root`; `plug()` mounts it, `unplug()` takes it out."""

    def __init__(self, backend: str, root: Path, work: Path, size_mb: int, wanted: str = "") -> None:
        self.backend = backend
        self.wanted = wanted or backend  # the backend the test asked for
        self.root = root
        self.path = root / STICK_NAME
        self.image = work / f"{backend}.img"
        self.away = work / "unplugged"  # a folder stick's contents while unplugged
        self.mounted = False
        self.fuse: subprocess.Popen[bytes] | None = None
        self.fuse_log = work / f"{backend}.log"  # fusefat talks a lot: a pipe left unread would stall it
        root.mkdir(parents=True, exist_ok=True)
        if backend == "folder":
            self.away.mkdir()
        else:
            _make_image(backend, self.image, size_mb)

    @property
    def folder_mode(self) -> bool:
        return self.backend == "folder"

    def settings(self) -> Settings:
        return load(usb_mount_roots=str(self.root), usb_folders_as_sticks=self.folder_mode)

    def plug(self) -> None:
        if self.folder_mode:
            self.away.rename(self.path)
            return
        self.path.mkdir(exist_ok=True)
        self._end_fuse()  # the daemon of a stick pulled out, if any
        if self.backend == "ext4":
            _run("mount", "-o", "loop", self.image, self.path)
        else:
            # In the foreground, so that the daemon can be waited for after an unmount.
            with open(self.fuse_log, "wb") as log:
                self.fuse = subprocess.Popen(
                    ["fusefat", "-f", "-o", "rw+", str(self.image), str(self.path)], stdout=log, stderr=log
                )
            fuse = self.fuse
            if not poll_until(lambda: self.path in stick_mounts([self.root]) or fuse.poll() is not None, 10):
                raise OSError("fusefat did not mount in 10 s")
            if fuse.poll() is not None:
                self.fuse = None
                raise subprocess.CalledProcessError(
                    fuse.returncode, "fusefat", stderr=self.fuse_log.read_bytes()
                )
        self.mounted = True

    def unplug(self, lazy: bool = False) -> None:
        """Take the stick out; `lazy`: as if pulled out, files still open on it or not."""
        if self.folder_mode:
            self.path.rename(self.away)
            return
        if lazy:
            _run("umount", "-l", self.path)  # fusefat ends once the last file on it is closed
        else:
            _run("umount", self.path)
            self._end_fuse()
        self.mounted = False

    def _end_fuse(self) -> None:
        if self.fuse is None:
            return
        try:
            self.fuse.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.fuse.kill()
            self.fuse.wait()
        self.fuse = None

    def cleanup(self) -> None:
        """Unmount and free the loop device, whatever state a failed test left."""
        if self.mounted:
            try:
                _run("umount", self.path)
            except subprocess.CalledProcessError:
                _run("umount", "-l", self.path)
            self.mounted = False
        self._end_fuse()
        if self.backend == "ext4" and self.image.exists() and shutil.which("losetup"):
            out = subprocess.run(
                ["losetup", "-j", str(self.image)], capture_output=True, text=True, timeout=30
            ).stdout
            for line in out.splitlines():
                subprocess.run(["losetup", "-d", line.split(":", 1)[0]], capture_output=True, timeout=30)


StickMaker = Callable[..., Stick]


@pytest.fixture(params=BACKENDS)
def make_stick(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StickMaker]:
    """Makes an unplugged stick of the backend (`size_mb` for images; one per test, as
    they share a mount point); unmounts it and frees its loop device after the test."""
    wanted = request.param
    reason = why_not(wanted)
    backend = wanted if reason is None else "folder"
    ran[wanted] = LABELS[backend] if reason is None else f"{wanted} → folder ({reason})"
    made: list[Stick] = []

    def make(size_mb: int = 32) -> Stick:
        work = tmp_path / f"stick{len(made)}"
        work.mkdir()
        made.append(Stick(backend, (tmp_path / "media root").resolve(), work, size_mb, wanted))
        return made[-1]

    try:
        yield make
    finally:
        for stick in made:
            stick.cleanup()


@pytest.fixture
def stick(make_stick: StickMaker) -> Stick:
    """A plugged 32 MB stick."""
    s = make_stick()
    s.plug()
    return s


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not ran:
        return
    terminalreporter.write_line("USB tests ran on: " + ", ".join(ran[b] for b in BACKENDS if b in ran))
    if latencies:
        names = {b: b if ran.get(b) == LABELS[b] else f"{b}→folder" for b in latencies}
        noticed = ", ".join(f"{names[b]} {latencies[b] * 1000:.0f} ms" for b in BACKENDS if b in latencies)
        terminalreporter.write_line(f"USB stick noticed after: {noticed}")
