"""系统管理 by touch: the box app's update package on a USB stick is offered with one tap,
installed, and the answer says it takes effect at the next start; the real window under
Xvfb, the real engine, a real signed package in a stick folder."""

from __future__ import annotations

import os
from pathlib import Path

from tests.ui.box_harness import box_app, box_settings, open_form
from tests.ui.harness import press, run_test, type_keys, until
from tests.update_kit import make_package, trust


def test_the_officer_installs_an_update_from_a_stick_by_touch(tmp_path: Path, xdisplay: str) -> None:
    from kiosk.engine import Engine
    from kiosk.services.update import running_version

    keys, app_dir = tmp_path / "update-keys", tmp_path / "app"
    trust(keys)
    newer = f"{int(running_version().split('.')[0]) + 1}.0.0"
    stick = tmp_path / "media" / "STICK"
    (tmp_path / "media").mkdir()
    make_package(stick, newer)  # stick/out/kiosk-update-<newer>.kup, two folders down

    async def body() -> None:
        engine = Engine(box_settings(tmp_path, app_dir=str(app_dir), update_keys_dir=str(keys)))
        await engine.start()
        try:
            async with box_app(engine) as app:
                await type_keys("888")
                await press("登 录")
                await until(lambda: app.logged_in, what="logged in")
                await press("系统管理")
                form = await open_form(app, "安装监考机升级包（U盘）")
                await press(contains="监考机升级包：")  # the one-tap choice of the stick's package
                assert form.fields["path"].ids.input.text.endswith(f"kiosk-update-{newer}.kup")
                await press("确定")
                await until(lambda: form.result or form.error, what="the answer")
                assert not form.error, form.error
                assert "重启监考机后生效" in form.result and newer in form.result
                await press("关闭")
                assert os.readlink(app_dir / "current") == f"releases/{newer}"
                form = await open_form(app, "查看监考机程序版本")
                await until(lambda: form.result, what="the versions")
                assert newer in form.result and running_version() in form.result
        finally:
            await engine.stop()

    run_test(body())
