"""`kiosk serve`: the engine without a screen — the room service, its admin API and
(until the room network lands) the seat-network adapter, on one asyncio loop."""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kiosk.net.admin import start_admin
from kiosk.services.bootstrap import build
from kiosk.services.ports import Ports, ScanReply, SendResult
from kiosk.settings import Settings

log = logging.getLogger(__name__)


class NoSeatNetwork:
    """No room network: scans find nobody and commands reach nobody (said clearly)."""

    def scan(self, timeout_s: float) -> list[ScanReply]:
        return []

    def send(self, ips: Any, command: str, args: dict[str, Any]) -> SendResult:
        return SendResult(ok=(), failed={ip: "考场网络未启用" for ip in ips})

    def wake(self, macs: Any) -> None:
        return None

    def env_check(self, ips: Any) -> dict[str, dict[str, Any]]:
        return {}


def make_ports(simulate_seats: int) -> tuple[Ports, Any]:
    if simulate_seats:
        from kiosk.services.simulated import SimulatedSeats

        sim = SimulatedSeats(simulate_seats)
        return Ports(seats=sim), sim
    return Ports(seats=NoSeatNetwork()), None


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
    ports, sim = make_ports(simulate_seats)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="room-service")
    service = await asyncio.get_running_loop().run_in_executor(executor, build, settings, ports)
    if sim is not None:  # simulated PCs report their links as the real network will
        await asyncio.get_running_loop().run_in_executor(executor, sim.attach, service)
    runner = await start_admin(
        service, settings.home_path, settings.admin_host, settings.admin_port, executor
    )
    ticker = asyncio.create_task(_tick_forever(service, executor, settings.heartbeat_s))
    log.info("engine ready, home %s", settings.home)
    print(f"监考引擎已启动：{settings.home}", flush=True)
    await stop.wait()
    ticker.cancel()
    await runner.cleanup()
    executor.shutdown(wait=True)
