"""The appliance image (issue 7, item 3): `image/build.sh` builds the box's Debian root file
system into a temporary folder once per session (debootstrap with the machine's package
registry, then the numbered steps), and the root is checked as the box would boot it:
the units and files in place, the root read-only with a data partition, no login prompt
and no password, and the frozen box app run inside it with chroot — its self-test, the
first-boot key creation as the user `proctor`, and the touch app drawing on an Xvfb screen
of the host through the bind-mounted X socket. Needs root (chroot, mounts)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.cli_helpers import wait_until
from tests.frozen.test_frozen import drawn, loopback_ports, png, xwd_rgb
from tests.image.conftest import BUILD_TIMEOUT_S, ROOT, Built, build_image, mounts_under
from tests.ui.conftest import start_xvfb

pytestmark = [pytest.mark.image, pytest.mark.slow, pytest.mark.timeout(900)]

APP_TIMEOUT_S = 60
SCREEN = (1280, 800)

CHROOT = shutil.which("chroot") or "chroot"  # the host's, found on the host's PATH

if os.geteuid() != 0 or shutil.which("debootstrap") is None or shutil.which("chroot") is None:
    pytest.skip("the image build needs root and debootstrap (scripts/setup.sh)", allow_module_level=True)


def unit(path: Path) -> dict[str, list[str]]:
    """A systemd unit file as `Section.Key` → every value given (keys repeat)."""
    values: dict[str, list[str]] = {}
    section = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        values.setdefault(f"{section}.{key}", []).append(value)
    return values


def proctor_ids(root: Path) -> tuple[int, int]:
    for line in (root / "etc/passwd").read_text(encoding="utf-8").splitlines():
        fields = line.split(":")
        if fields[0] == "proctor":
            return int(fields[2]), int(fields[3])
    pytest.fail("no user proctor in the root's /etc/passwd")


@contextmanager
def mounted(root: Path, data: Path, x11: bool = False) -> Iterator[None]:
    """What the box has at run time, for a chroot: /proc, /dev, a tmpfs /tmp, the data
    partition (a host folder) at /data and, for a screen, the host's X socket folder."""
    done: list[Path] = []

    def mount(*args: str, target: Path) -> None:
        target.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", *args, str(target)], check=True, timeout=30)
        done.append(target)

    try:
        mount("-t", "proc", "proc", target=root / "proc")
        mount("--bind", "/dev", target=root / "dev")
        mount("-t", "tmpfs", "-o", "mode=1777", "tmpfs", target=root / "tmp")
        mount("--bind", str(data), target=root / "data")
        if x11:
            mount("--bind", "/tmp/.X11-unix", target=root / "tmp" / ".X11-unix")
        yield
    finally:
        for target in reversed(done):
            subprocess.run(["umount", str(target)], check=True, timeout=30)


def in_root(
    root: Path, *cmd: str, env: dict[str, str] | None = None, timeout: float = APP_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    uid, gid = proctor_ids(root)
    return subprocess.run(
        [CHROOT, f"--userspec={uid}:{gid}", str(root), *cmd],
        env=box_env(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        check=False,
    )


def box_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """An environment like kiosk.service's: nothing from the host's Python or venv."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": "/data/room",
        "KIVY_HOME": "/tmp/kivy",
        **loopback_ports(),
        **(extra or {}),
    }


@pytest.fixture
def data(tmp_path: Path, rootfs: Built) -> Path:
    """An empty data partition owned by proctor, as tmpfiles.d leaves it."""
    folder = tmp_path / "data"
    (folder / "room").mkdir(parents=True)
    uid, gid = proctor_ids(rootfs.path)
    for p in (folder, folder / "room"):
        os.chown(p, uid, gid)
    return folder


# -- the build --------------------------------------------------------------------------


def test_the_build_is_quick_and_a_second_run_changes_nothing(rootfs: Built) -> None:
    service = rootfs.path / "etc/systemd/system/kiosk.service"
    before = service.read_bytes()
    start = time.monotonic()
    again = build_image(rootfs.path)
    assert again.returncode == 0, f"{again.stdout[-3000:]}\n{again.stderr[-3000:]}"
    assert "debootstrap in" not in again.stdout, "a second run bootstrapped again"
    assert time.monotonic() - start < 60, "the steps are not idempotent no-ops on a built root"
    assert service.read_bytes() == before
    assert rootfs.seconds < BUILD_TIMEOUT_S
    assert not (rootfs.path / "usr/sbin/policy-rc.d").exists(), "the build-time service guard was left in"
    assert mounts_under(rootfs.path) == []


def test_the_box_app_and_its_session_are_installed(rootfs: Built) -> None:
    r = rootfs.path
    assert os.access(r / "opt/kiosk/kiosk", os.X_OK)
    for binary in ("usr/bin/cage", "usr/bin/Xwayland", "usr/sbin/hwclock", "usr/bin/systemd-mount"):
        assert (r / binary).exists(), binary
    assert (r / "usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc").exists()
    kiosk = unit(r / "etc/systemd/system/kiosk.service")
    launch = "/usr/local/lib/kiosk/launch"  # the release an update installed, else /opt/kiosk/kiosk
    assert kiosk["Service.ExecStart"] == [f"/usr/bin/cage -- {launch} run --home /data/room"]
    assert os.access(r / launch.lstrip("/"), os.X_OK)
    assert kiosk["Service.User"] == ["proctor"]
    assert kiosk["Service.Restart"] == ["always"]
    assert kiosk["Service.KillSignal"] == ["SIGTERM"]
    assert int(kiosk["Service.TimeoutStopSec"][0]) >= 10
    assert kiosk["Install.WantedBy"] == ["graphical.target"]
    assert (r / "etc/systemd/system/graphical.target.wants/kiosk.service").is_symlink()
    assert os.readlink(r / "etc/systemd/system/default.target").endswith("graphical.target")
    first = unit(r / "etc/systemd/system/kiosk-firstboot.service")
    assert first["Unit.ConditionPathExists"] == ["!/data/room/keys/box.key"]
    assert first["Unit.Before"] == ["kiosk.service"]
    assert (r / "etc/systemd/system/multi-user.target.wants/kiosk-firstboot.service").is_symlink()
    # USB sticks: the udev rule's helper is there and runnable.
    rule = (r / "etc/udev/rules.d/80-kiosk-usb.rules").read_text(encoding="utf-8")
    assert "/usr/local/lib/kiosk/usb-mount" in rule
    assert os.access(r / "usr/local/lib/kiosk/usb-mount", os.X_OK)
    assert "KIOSK_USB_MOUNT_ROOTS=/media" in (r / "etc/kiosk/kiosk.env").read_text(encoding="utf-8")


def test_the_root_is_read_only_with_a_data_partition(rootfs: Built) -> None:
    table = {}
    for line in (rootfs.path / "etc/fstab").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            spec, where, kind, options = line.split()[:4]
            table[where] = (spec, kind, options.split(","))
    assert "ro" in table["/"][2]
    assert table["/data"][1] == "ext4" and "rw" in table["/data"][2]
    for scratch in ("/tmp", "/var/log", "/media"):
        assert table[scratch][1] == "tmpfs", scratch
    journald = (rootfs.path / "etc/systemd/journald.conf.d/volatile.conf").read_text(encoding="utf-8")
    assert "Storage=volatile" in journald
    assert (rootfs.path / "etc/machine-id").read_text() == ""  # made afresh at each boot


def test_no_login_prompt_no_password_and_no_network_time(rootfs: Built) -> None:
    r = rootfs.path / "etc"
    assert os.readlink(r / "systemd/system/getty@tty1.service") == "/dev/null"
    assert "NAutoVTs=0" in (r / "systemd/logind.conf.d/kiosk.conf").read_text(encoding="utf-8")
    for line in (r / "shadow").read_text(encoding="utf-8").splitlines():
        user, password = line.split(":")[:2]
        assert password.startswith(("*", "!")), f"{user} can log in with a password ({password[:3]}…)"
    assert os.readlink(r / "systemd/system/systemd-timesyncd.service") == "/dev/null"
    assert (r / "adjtime").read_text(encoding="utf-8").splitlines()[2] == "UTC"


# -- the frozen app inside the root --------------------------------------------------------------


def test_the_frozen_app_passes_its_self_test_inside_the_root(rootfs: Built, data: Path) -> None:
    with mounted(rootfs.path, data):
        run = in_root(rootfs.path, "/opt/kiosk/kiosk", "--self-test")
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}"
    assert run.stdout.startswith("自检通过：监考机 "), run.stdout
    assert "中文字体 NotoSansCJK" in run.stdout  # the root's font, not the host's


def test_first_boot_makes_the_keys_once(rootfs: Built, data: Path) -> None:
    keys = data / "room" / "keys"
    with mounted(rootfs.path, data):
        first = in_root(rootfs.path, "/usr/local/lib/kiosk/firstboot", "/data/room")
        assert first.returncode == 0, f"{first.stdout}\n{first.stderr}"
        made = {p.name: p.read_bytes() for p in keys.iterdir()}
        again = in_root(rootfs.path, "/usr/local/lib/kiosk/firstboot", "/data/room")
    assert again.returncode == 0, f"{again.stdout}\n{again.stderr}"
    assert {"box.key", "box.crt"} <= set(made)
    assert (keys / "box.key").stat().st_mode & 0o077 == 0
    assert (keys / "box.key").stat().st_uid == proctor_ids(rootfs.path)[0]
    assert {p.name: p.read_bytes() for p in keys.iterdir()} == made, "a second boot replaced the keys"


def screenshot(display: str, shot: Path) -> bool:
    """The X screen written to `shot` as PNG; whether something is drawn on it."""
    dump = subprocess.run(
        ["xwd", "-root", "-silent", "-display", display], capture_output=True, timeout=30, check=True
    ).stdout
    width, height, rgb = xwd_rgb(dump)
    shot.write_bytes(png(width, height, rgb))
    return drawn(rgb)


@pytest.fixture
def xscreen() -> Iterator[str]:
    proc, display = start_xvfb(SCREEN)
    yield display
    proc.terminate()
    proc.wait(10)


def test_the_touch_app_draws_from_inside_the_root(
    rootfs: Built, data: Path, xscreen: str, tmp_path: Path
) -> None:
    shot = tmp_path / "box-in-rootfs.png"
    uid, gid = proctor_ids(rootfs.path)
    env = box_env({"DISPLAY": xscreen, "SDL_VIDEODRIVER": "x11"})
    log = tmp_path / "run.log"
    window = f"{SCREEN[0]}x{SCREEN[1]}"
    with mounted(rootfs.path, data, x11=True), open(log, "wb") as out:
        app = subprocess.Popen(
            [CHROOT, f"--userspec={uid}:{gid}", str(rootfs.path),
             "/opt/kiosk/kiosk", "run", "--window", window, "--home", "/data/room"],
            env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:

            def screen_drawn() -> bool:
                assert app.poll() is None, f"kiosk run exited ({app.returncode}):\n{log.read_text()[-3000:]}"
                return screenshot(xscreen, shot)

            wait_until(screen_drawn, APP_TIMEOUT_S, "the box app in the root to draw its screen", poll_s=0.5)
            assert (data / "room" / "keys" / "box.crt").exists(), "the engine inside the app made no keys"
            app.terminate()  # what systemd's KillSignal=SIGTERM does to kiosk.service
            assert app.wait(30) == 0, f"kiosk run did not stop cleanly on SIGTERM:\n{log.read_text()[-3000:]}"
        finally:
            if app.poll() is None:
                app.kill()
                app.wait(10)
    keep = ROOT / "build" / "work" / "image-screenshot.png"
    shutil.copyfile(shot, keep)  # for a person to look at (git-ignored)
