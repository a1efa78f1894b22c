"""The proctor box's touch app in its real window, on the test's asyncio loop with a
real engine (room service, room network on loopback, USB folders) and a simulated
fleet of real exam-PC daemons."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from kiosk.settings import load
from stu_client.sim import SimFleet
from tests.liveroom import ROOM, free_port
from tests.ui.harness import until


@asynccontextmanager
async def box_engine(tmp: Path, pcs: int) -> AsyncIterator[tuple[Any, SimFleet]]:
    from kiosk.engine import Engine

    (tmp / "media").mkdir(parents=True, exist_ok=True)
    settings = load(
        home=str(tmp / "box"),
        min_free_bytes=1024**2,
        control_host="127.0.0.1",
        control_port=free_port(),
        scan_port=free_port(socket.SOCK_DGRAM),
        scan_broadcast="127.255.255.255",
        usb_mount_roots=str(tmp / "media"),
        usb_folders_as_sticks=True,
    )
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
