"""`kiosk serve`: the engine without a screen — the room service, its admin API and the
room network (or an in-process simulated room), on one asyncio loop."""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kiosk.net.admin import start_admin
from kiosk.net.room import RoomNetwork
from kiosk.net.site_client import SiteClient
from kiosk.services.bootstrap import box_identity, build
from kiosk.services.ports import Ports
from kiosk.services.simulated import SimulatedSeats
from kiosk.settings import Settings
from kiosk.usb.watch import UsbWatcher

log = logging.getLogger(__name__)


async def _tick_forever(service: Any, executor: ThreadPoolExecutor, every_s: float) -> None:
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(every_s)
        try:
            await loop.run_in_executor(executor, service.tick)
        except Exception:  # a failed tick is logged and tried again on the next one
            log.exception("tick failed")


async def serve(settings: Settings, simulate_seats: int = 0) -> None:
    # Signals first: a supervisor may stop us the moment the port file appears.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="room-service")
    identity = await loop.run_in_executor(executor, box_identity, settings)

    def site(site_ip: str, site_cert_pem: bytes | None) -> SiteClient:
        return SiteClient(
            site_ip,
            settings.site_port,
            identity,
            site_cert_pem,
            timeout_s=settings.site_timeout_s,
            retries=settings.site_retries,
            chunk_bytes=settings.site_chunk_bytes,
        )

    usb = UsbWatcher(settings)
    usb.start()
    network: RoomNetwork | None = None
    if simulate_seats:  # an in-process stand-in, for demos without any exam-PC daemons
        sim = SimulatedSeats(simulate_seats)
        ports = Ports(seats=sim, site=site, usb=usb)
        service = await loop.run_in_executor(executor, build, settings, ports)
        await loop.run_in_executor(executor, sim.attach, service)
    else:
        network = RoomNetwork(settings, identity, executor)
        ports = Ports(seats=network, site=site, usb=usb)
        service = await loop.run_in_executor(executor, build, settings, ports)
        await network.start(service)
    runner = await start_admin(
        service, settings.home_path, settings.admin_host, settings.admin_port, executor
    )
    ticker = asyncio.create_task(_tick_forever(service, executor, settings.heartbeat_s))
    log.info("engine ready, home %s", settings.home)
    print(f"监考引擎已启动：{settings.home}", flush=True)
    await stop.wait()
    ticker.cancel()
    if network is not None:
        await network.stop()
    await runner.cleanup()
    usb.stop()
    executor.shutdown(wait=True)
