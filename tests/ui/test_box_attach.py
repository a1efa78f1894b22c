"""`kiosk run --attach`: the touch app on a `kiosk serve` that runs as its own process,
through the engine's local admin API."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kiosk.ui.remote import RemoteEngine
from tests.e2e.cli_helpers import ctl_ok, make_exam, run_wizard, start_engine, stop_engine
from tests.ui.box_harness import box_app, close_form, open_form
from tests.ui.harness import find, press, run_test, type_keys, until


@pytest.mark.slow
def test_the_app_attached_to_a_running_engine_shows_and_drives_its_room(
    tmp_path: Path, xdisplay: str
) -> None:
    engine = start_engine(tmp_path / "room")
    try:
        files = make_exam(tmp_path / "site", time.time() + 600)
        assert run_wizard(engine.home, files)["passed"]

        async def body() -> None:
            async with box_app(RemoteEngine(engine.home)) as app:
                await type_keys("888")
                await press("登 录")
                await until(lambda: app.logged_in, what="logged in through the API")
                await until(lambda: find(text="✓ 封场检测") and "1999999001" in app.strip_room)
                await press("考中管理")
                await open_form(app, "进入场次")
                for choice in ("第 1 场", "张三", "张三 13807710001", "王芳", "王芳 15977120003"):
                    await press(choice)
                await press("确定")
                await close_form(app)

        run_test(body())
        status = ctl_ok(engine.home, "status")
        assert status["session"]["number"] == 1  # entered by touch, seen by ctl
    finally:
        stop_engine(engine)
