"""The frozen apps (issue 7): both one-folder builds made once per session by
`bash build/build.sh`, then checked as a lab would use them — each passes its
`--self-test`; a frozen `kiosk serve` seats 20 PCs of `stu-client sim` run from the client
folder that the frozen `kiosk ctl client-bundle` copied into the bundle, and one mock
session is driven through to unified collection by the frozen `kiosk ctl`; the frozen box
app opens under Xvfb and draws its screen."""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import time
import tomllib
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.net.admin import PORT_FILE
from tests.conftest import author_room
from tests.e2e.cli_helpers import ROOM, ctl_ok, engine_env, load_exam, start_engine, stop_engine, wait_until
from tests.e2e.test_sim_cli import STAFF, acked_on_pcs, box_answers
from tests.liveroom import free_port
from tests.ui.conftest import start_xvfb

pytestmark = [pytest.mark.frozen, pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
# A scratch dist of its own (git-ignored), rebuilt only when a source or spec changed.
DIST = ROOT / "build" / "work" / "test-dist"
BUILD_TIMEOUT_S = 240
SELF_TEST_TIMEOUT_S = 60
PCS = 20
SCREEN = (1280, 800)


def frozen_env() -> dict[str, str]:
    """The tests' environment without anything that would let a frozen app lean on the
    development install: no Python paths, no virtual environment on PATH."""
    env = engine_env()
    for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
        env.pop(name, None)
    venv_bin = str(ROOT / ".venv" / "bin")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    return env


def loopback_ports() -> dict[str, str]:
    """The real room network on loopback, on ports no other test uses."""
    return {
        "KIOSK_CONTROL_HOST": "127.0.0.1",
        "KIOSK_CONTROL_PORT": str(free_port()),
        "KIOSK_SCAN_PORT": str(free_port(socket.SOCK_DGRAM)),
        "KIOSK_SCAN_BROADCAST": "127.255.255.255",
    }


@pytest.fixture(scope="session")
def dist() -> Path:
    """Both frozen apps, built (or found up to date) once per session."""
    proc = subprocess.run(
        ["bash", "build/build.sh", "--if-stale"],
        cwd=ROOT,
        env={**os.environ, "DIST": str(DIST)},
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    assert proc.returncode == 0, f"build failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return DIST


@pytest.fixture(scope="session")
def kiosk_exe(dist: Path) -> list[str]:
    return [str(dist / "kiosk" / "kiosk")]


def self_test(exe: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in (env or frozen_env()).items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    return subprocess.run(
        [str(exe), "--self-test"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=SELF_TEST_TIMEOUT_S,
        check=False,
    )


def project_version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


# -- self-test ------------------------------------------------------------------------


@pytest.mark.parametrize(("app", "zh"), [("kiosk", "监考机"), ("stu-client", "考试机客户端")])
def test_each_frozen_app_passes_its_self_test_without_a_display(dist: Path, app: str, zh: str) -> None:
    run = self_test(dist / app / app)
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}"
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 1, run.stdout
    assert lines[0].startswith(f"自检通过：{zh} {project_version()}，中文字体 "), lines[0]
    assert "界面文件 3 个" in lines[0] and "签名校验" in lines[0]
    assert ("数据库版本" in lines[0]) if app == "kiosk" else ("作答日志" in lines[0])


def test_a_frozen_self_test_fails_with_its_reason(dist: Path) -> None:
    run = self_test(dist / "kiosk" / "kiosk", {**frozen_env(), "KIOSK_FONT": "/nonexistent/font.ttc"})
    assert run.returncode == 1, f"{run.stdout}\n{run.stderr}"
    assert run.stdout == ""
    assert "自检失败：监考机：中文字体：" in run.stderr and "fonts-noto-cjk" in run.stderr, run.stderr


# -- a session on the frozen apps --------------------------------------------------------


def stop(proc: subprocess.Popen[bytes], deadline_s: float = 60) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(deadline_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        pytest.fail(f"{proc.args!r} ignored SIGTERM for {deadline_s} s")


def test_a_mock_session_runs_on_the_frozen_box_and_client(
    tmp_path: Path, dist: Path, kiosk_exe: list[str]
) -> None:
    env = {**frozen_env(), **loopback_ports()}
    engine = start_engine(tmp_path / "box", seats=None, env=env, exe=kiosk_exe)
    home = engine.home
    state = tmp_path / "pcs"
    sim = None
    try:
        ctl_ok(home, "config", "--room-code", ROOM, "--answer-dir", str(tmp_path / "answers"),
               "--box-ip", "127.0.0.1", exe=kiosk_exe)  # fmt: skip
        bundle = tmp_path / "bundle"
        written = ctl_ok(home, "client-bundle", "--dest", str(bundle), exe=kiosk_exe)
        # The frozen box copies the frozen client beside the box certificate.
        client = bundle / "stu-client" / "stu-client"
        assert written["client"] == str(bundle / "stu-client") and client.is_file(), written
        assert "已附带考试机程序" in written["client_note"], written
        inside = self_test(client)  # the client copied into the bundle checks the bundle too
        assert inside.returncode == 0, f"{inside.stdout}{inside.stderr}"
        assert "配置包（监考机证书" in inside.stdout, inside.stdout

        with open(tmp_path / "sim.log", "wb") as out:
            sim = subprocess.Popen(
                [str(client), "sim", "--count", str(PCS), "--bundle", str(bundle), "--state", str(state),
                 "--mock", "20"],
                env=frozen_env(), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        seated: set[int] = set()

        def scan() -> bool:
            seated.update(ctl_ok(home, "seats-scan", "--order", "ip", exe=kiosk_exe)["added"])
            return len(seated) == PCS

        wait_until(scan, 60, f"{PCS} PCs to answer the scan", poll_s=0.5)

        def seats_online() -> bool:
            return all(s["online"] for s in ctl_ok(home, "seats", exe=kiosk_exe))

        wait_until(seats_online, 30, "every seat online", 0.5)
        env_check = ctl_ok(home, "envcheck", exe=kiosk_exe)
        assert (env_check["passed"], env_check["failed"]) == (PCS, 0), env_check

        _, exam = author_room(tmp_path / "usb", time.time() - 60, PCS, mock=True,
                              countdown_s=0, earliest_submit_s=0, late_login_s=0)  # fmt: skip
        load_exam(home, exam, exe=kiosk_exe)
        assert ctl_ok(home, "seal-check", exe=kiosk_exe)["passed"]
        ctl_ok(home, "session-enter", "--session", "1", *STAFF, exe=kiosk_exe)
        ctl_ok(home, "authorise", "--path", str(exam.authorisations[1]), exe=kiosk_exe)
        ctl_ok(home, "allow-login", "--auto-login", exe=kiosk_exe)
        ctl_ok(home, "auto-answer", "--on", exe=kiosk_exe)
        ctl_ok(home, "allow-start", exe=kiosk_exe)

        def states() -> list[str]:
            return [c["state"] for c in ctl_ok(home, "status", exe=kiosk_exe)["session"]["candidates"]]

        wait_until(lambda: states().count("in_exam") == PCS, 60, f"{PCS} candidates writing", 0.5)
        wait_until(lambda: len(box_answers(home)) >= PCS * 10, 60, "answers from every PC", 0.5)
        assert len(ctl_ok(home, "collect-all", exe=kiosk_exe)["ok"]) == PCS
        wait_until(lambda: states().count("submitted") == PCS, 60, f"{PCS} submissions", 0.5)

        stored, held = box_answers(home), acked_on_pcs(state)
        assert len(held) >= PCS * 10
        assert held <= stored, f"{len(held - stored)} acknowledged answers missing on the box"
    finally:
        code = stop(sim) if sim is not None else 0
        assert stop_engine(engine) == 0, engine.log_text()
    assert code == 0, (tmp_path / "sim.log").read_text(errors="replace")[-3000:]


# -- the touch app on a screen ----------------------------------------------------------------


def xwd_rgb(data: bytes) -> tuple[int, int, bytes]:
    """(width, height, RGB bytes) of an `xwd -root` dump of a 24-bit TrueColor screen."""
    header = struct.unpack(">25I", data[:100])
    size, width, height = header[0], header[4], header[5]
    byte_order, bits_per_pixel, bytes_per_line = header[7], header[11], header[12]
    masks, colours = header[14:17], header[19]
    assert bits_per_pixel == 32 and masks == (0xFF0000, 0xFF00, 0xFF), header
    pixels = data[size + 12 * colours :]
    assert len(pixels) >= bytes_per_line * height, (len(pixels), bytes_per_line, height)
    red, green, blue = (2, 1, 0) if byte_order == 0 else (1, 2, 3)  # LSBFirst: B G R x
    rows = bytearray()
    for y in range(height):
        line = pixels[y * bytes_per_line : y * bytes_per_line + 4 * width]
        rgb = bytearray(3 * width)
        rgb[0::3], rgb[1::3], rgb[2::3] = line[red::4], line[green::4], line[blue::4]
        rows += rgb
    return width, height, bytes(rows)


def png(width: int, height: int, rgb: bytes) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    raw = b"".join(b"\0" + rgb[y * 3 * width : (y + 1) * 3 * width] for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def drawn(rgb: bytes) -> bool:
    """The screen shows something: many colours (anti-aliased text), none covering it all."""
    counts = Counter(rgb[i : i + 3] for i in range(0, len(rgb), 3 * 7))  # every 7th pixel
    return len(counts) >= 16 and counts.most_common(1)[0][1] < 0.98 * sum(counts.values())


@pytest.fixture
def xscreen() -> Iterator[str]:
    proc, display = start_xvfb(SCREEN)
    yield display
    proc.terminate()
    proc.wait(10)


def test_the_frozen_box_app_opens_on_an_x_screen(tmp_path: Path, dist: Path, xscreen: str) -> None:
    home = tmp_path / "home"
    env = {**frozen_env(), **loopback_ports(), "DISPLAY": xscreen, "SDL_VIDEODRIVER": "x11"}
    env["KIVY_HOME"] = str(tmp_path / "kivy")
    log = tmp_path / "run.log"
    window = f"{SCREEN[0]}x{SCREEN[1]}"
    with open(log, "wb") as out:
        app = subprocess.Popen(
            [str(dist / "kiosk" / "kiosk"), "run", "--window", window, "--home", str(home)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    shot = tmp_path / "box.png"
    try:

        def screen_drawn() -> bool:
            assert app.poll() is None, f"kiosk run exited with {app.returncode}:\n{log.read_text()[-3000:]}"
            dump = subprocess.run(
                ["xwd", "-root", "-silent", "-display", xscreen], capture_output=True, timeout=30, check=True
            ).stdout
            width, height, rgb = xwd_rgb(dump)
            shot.write_bytes(png(width, height, rgb))
            return drawn(rgb)

        wait_until(screen_drawn, 60, "the box app to draw its screen", poll_s=0.5)
        assert (home / PORT_FILE).exists(), "the engine inside the app is not serving"
        assert shot.read_bytes().startswith(b"\x89PNG")
        # The window refuses to close, but a supervisor's SIGTERM stops app and engine.
        app.terminate()
        assert app.wait(30) == 0, "kiosk run did not stop cleanly on SIGTERM"
    finally:
        if app.poll() is None:
            app.kill()
            app.wait(10)
