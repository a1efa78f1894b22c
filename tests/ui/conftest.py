"""The UI tier: a real Kivy window on an Xvfb screen that the tests start themselves.

Kivy reads its environment when it is first imported, so it is set here, before any
test module imports it (they import Kivy inside fixtures and tests only)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

SCREEN = (1366, 768)

os.environ["KIVY_NO_ARGS"] = "1"
os.environ["KIVY_LOG_MODE"] = "PYTHON"
os.environ["KIVY_NO_CONSOLELOG"] = "1"
os.environ.setdefault("KIVY_HOME", tempfile.mkdtemp(prefix="kivy-home-"))
os.environ["SDL_VIDEODRIVER"] = "x11"  # never Kivy's silent offscreen fallback


def start_xvfb(size: tuple[int, int]) -> tuple[subprocess.Popen[bytes], str]:
    """An Xvfb server on a free display number (it tells us which on a pipe)."""
    read, write = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", f"{size[0]}x{size[1]}x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as f:
        number = f.readline().strip()
    if not number:
        proc.kill()
        raise RuntimeError("Xvfb did not start")
    return proc, f":{number}"


@pytest.fixture(scope="session")
def xdisplay() -> Iterator[str]:
    proc, display = start_xvfb(SCREEN)
    os.environ["DISPLAY"] = display
    from kivy.config import Config

    Config.set("graphics", "width", str(SCREEN[0]))
    Config.set("graphics", "height", str(SCREEN[1]))
    yield display
    proc.terminate()
    proc.wait(timeout=10)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/ui/" in str(item.fspath):
            item.add_marker(pytest.mark.ui)
