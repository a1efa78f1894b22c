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


async def probe_site_forever(
    service: Any, executor: ThreadPoolExecutor, settings: Settings, identity: Any
) -> None:
    """In site mode, whether the site answers, every `site_probe_s` (the status strip's
    link state): a short request on a thread of its own, so a silent site never holds
    the room service's worker (stopping waits for a probe in flight: at most its timeout)."""
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="site-probe") as probes:
        while True:
            try:
                target = await loop.run_in_executor(executor, service.site_probe_target)
                if target is not None:
                    site_ip, cert = target
                    client = SiteClient(
                        site_ip, settings.site_port, identity, cert,
                        timeout_s=settings.site_probe_timeout_s, retries=0,
                    )  # fmt: skip
                    service.site_seen(site_ip, await loop.run_in_executor(probes, client.reachable))
            except Exception:  # logged, tried again on the next round
                log.exception("site probe failed")
            await asyncio.sleep(settings.site_probe_s)


class Engine:
    """The room service with its ports (room network, site link, USB), the admin API and
    the ticker, on the running asyncio loop; service calls run on its one worker thread."""

    def __init__(self, settings: Settings, simulate_seats: int = 0) -> None:
        self.settings = settings
        self.simulate_seats = simulate_seats
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="room-service")
        self.service: Any = None
        self._network: RoomNetwork | None = None
        self._usb: UsbWatcher | None = None
        self._runner: Any = None
        self._ticker: asyncio.Task[None] | None = None
        self._probe: asyncio.Task[None] | None = None

    @property
    def home(self) -> Any:
        return self.settings.home_path

    def subscribe(self, listener: Any) -> None:
        """Told of every event after its commit (on the worker thread)."""
        self.service.subscribe(listener)

    async def call(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """One room-service operation on the worker thread (Refused propagates)."""
        fn = getattr(self.service, name)
        return await asyncio.get_running_loop().run_in_executor(self.executor, lambda: fn(*args, **kwargs))

    async def start(self) -> None:
        settings, executor = self.settings, self.executor
        loop = asyncio.get_running_loop()
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

        self._usb = UsbWatcher(settings)
        self._usb.start()
        if self.simulate_seats:  # an in-process stand-in, for demos without any exam-PC daemons
            sim = SimulatedSeats(self.simulate_seats)
            ports = Ports(seats=sim, site=site, usb=self._usb)
            self.service = await loop.run_in_executor(executor, build, settings, ports)
            await loop.run_in_executor(executor, sim.attach, self.service)
        else:
            self._network = RoomNetwork(settings, identity, executor)
            ports = Ports(seats=self._network, site=site, usb=self._usb)
            self.service = await loop.run_in_executor(executor, build, settings, ports)
            await self._network.start(self.service)
        self._runner = await start_admin(
            self.service, settings.home_path, settings.admin_host, settings.admin_port, executor
        )
        self._ticker = asyncio.create_task(_tick_forever(self.service, executor, settings.heartbeat_s))
        self._probe = asyncio.create_task(probe_site_forever(self.service, executor, settings, identity))
        log.info("engine ready, home %s", settings.home)

    async def stop(self) -> None:
        for task in (self._ticker, self._probe):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self._network is not None:
            await self._network.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._usb is not None:
            self._usb.stop()
        if self.service is not None:
            await asyncio.get_running_loop().run_in_executor(self.executor, self.service.db.close)
        self.executor.shutdown(wait=True)


async def serve(settings: Settings, simulate_seats: int = 0) -> None:
    # Signals first: a supervisor may stop us the moment the port file appears.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    engine = Engine(settings, simulate_seats)
    await engine.start()
    print(f"监考引擎已启动：{settings.home}", flush=True)
    await stop.wait()
    await engine.stop()
