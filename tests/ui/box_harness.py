"""The proctor box's touch app in its real window, on the test's asyncio loop with a
real engine (room service, room network on loopback, USB folders) and a simulated
fleet of real exam-PC daemons."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from kiosk.settings import Settings, load
from kiosk.site.mock import author_site, build_default_exam
from stu_client.sim import SimFleet
from tests.liveroom import ROOM, free_port
from tests.ui.harness import press, until


def box_settings(tmp: Path, **extra: Any) -> Settings:
    """The box on loopback in `tmp`: its home, free ports, USB sticks as folders under
    `tmp/media`."""
    (tmp / "media").mkdir(parents=True, exist_ok=True)
    return load(
        home=str(tmp / "box"),
        min_free_bytes=1024**2,
        control_host="127.0.0.1",
        control_port=free_port(),
        scan_port=free_port(socket.SOCK_DGRAM),
        scan_broadcast="127.255.255.255",
        usb_mount_roots=str(tmp / "media"),
        usb_folders_as_sticks=True,
        **extra,
    )


@asynccontextmanager
async def site_box_engine(tmp: Path, site_port: int) -> AsyncIterator[Any]:
    """The box's engine for site mode, not configured yet (the officer does it by touch):
    its site client talks to `site_port` on loopback, the link probed every 2 s. The
    environment check's round trip allows 1 s: here it crosses one event loop shared
    with a software-rendered window and the PCs' daemons, not a LAN."""
    from kiosk.engine import Engine

    settings = box_settings(
        tmp, site_port=site_port, site_probe_s=2.0, site_probe_timeout_s=1.0, max_rtt_ms=1000.0
    )
    engine = Engine(settings)
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop()


@asynccontextmanager
async def fleet_from(bundle: Path, tmp: Path, pcs: int, scan_port: int) -> AsyncIterator[SimFleet]:
    """`pcs` real exam-PC daemons started from the client folder the box wrote."""
    fleet = SimFleet(bundle, tmp / "pcs", pcs, scan_port=scan_port)
    await fleet.start()
    try:
        yield fleet
    finally:
        await fleet.stop()


@asynccontextmanager
async def box_engine(tmp: Path, pcs: int, **extra: Any) -> AsyncIterator[tuple[Any, SimFleet]]:
    """The box configured in single-machine mode (`extra`: settings) and `pcs` daemons."""
    from kiosk.engine import Engine

    settings = box_settings(tmp, **extra)
    engine = Engine(settings)
    await engine.start()
    fleet: SimFleet | None = None
    try:
        await engine.call("configure", ROOM, str(tmp / "answers"), box_ip="127.0.0.1")
        await engine.call("client_bundle", str(tmp / "bundle"))
        fleet = SimFleet(tmp / "bundle", tmp / "pcs", pcs, scan_port=settings.scan_port)
        await fleet.start()
        yield engine, fleet
    finally:
        if fleet is not None:
            await fleet.stop()
        await engine.stop()


@asynccontextmanager
async def box_app(engine: Any) -> AsyncIterator[Any]:
    from kiosk.ui.app import build_app_class

    app = build_app_class()(engine)
    task = asyncio.create_task(app.run_async())
    try:
        await until(lambda: app.root is not None and app.status, what="the box app up")
        yield app
    finally:
        app.stop()
        await task


def stick_with_exam(tmp: Path, pcs: int, mock: bool = False) -> Any:
    """A USB stick folder with the room sheet, the exam data and session 1's authorisation."""
    exam = build_default_exam(
        room_code=ROOM, first_start=time.time() - 60, candidates_per_session=pcs, mock=mock
    )
    exam.package["exam"]["policy"].update(countdown_s=0, earliest_submit_s=0)
    files = author_site(tmp / "site", [exam]).rooms[ROOM]
    stick = tmp / "media" / "STICK"
    stick.mkdir(parents=True)
    for f in (files.sheet, files.package, files.authorisations[1]):
        (stick / f.name).write_bytes(f.read_bytes())
    return files


async def close_form(app: Any) -> None:
    await until(lambda: app.form is not None and (app.form.result or app.form.error), what="the answer")
    assert not app.form.error, app.form.error
    await press("关闭")


async def open_form(app: Any, button: str) -> Any:
    before = app.form
    await press(button)
    return await until(lambda: app.form is not before and app.form, what=f"the form of {button}")


async def operation(app: Any, button: str, *choices: str) -> None:
    """Open an operation, tap the one-tap choices, 确定 (when it has parameters), read the
    answer, close."""
    form = await open_form(app, button)
    for c in choices:
        await press(contains=c)
    if form.op.params:
        await press("确定")
    await close_form(app)
