"""A live room in one process and one asyncio loop: the real box (room service, room
network on loopback) and a SimFleet of real exam-PC daemons on 127.0.10.x.

Service operations run on the service's worker thread through `room.op(...)`, as the
engine runs them; the fleet's candidates act through the daemons' app-facing API."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kiosk.net.room import RoomNetwork
from kiosk.services.bootstrap import box_identity, build
from kiosk.services.ports import Ports
from kiosk.settings import load
from kiosk.site.mock import author_site, build_default_exam
from stu_client.sim import SimFleet

ROOM = "1999999001"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveRoom:
    def __init__(self, folder: Path, pcs: int, clock: Any = None, **settings: Any) -> None:
        self.folder = folder
        self.clock = clock  # None: the wall clock
        self.count = pcs
        self.settings = load(
            home=str(folder / "box"),
            min_free_bytes=1024**2,
            control_host="127.0.0.1",
            control_port=free_port(),
            scan_port=free_port(socket.SOCK_DGRAM),
            scan_broadcast="127.255.255.255",
            **settings,
        )
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="room-service")
        self.service: Any = None
        self.network: RoomNetwork | None = None
        self.fleet: SimFleet | None = None

    async def op(self, name: str, *args: Any, **kwargs: Any) -> Any:
        fn = getattr(self.service, name)
        return await asyncio.get_running_loop().run_in_executor(self.executor, lambda: fn(*args, **kwargs))

    async def __aenter__(self) -> LiveRoom:
        loop = asyncio.get_running_loop()
        identity = await loop.run_in_executor(self.executor, box_identity, self.settings)
        self.network = RoomNetwork(self.settings, identity, self.executor)
        self.service = await loop.run_in_executor(
            self.executor, build, self.settings, Ports(seats=self.network), self.clock
        )
        await self.network.start(self.service)
        await self.op("configure", ROOM, str(self.folder / "answers"), box_ip="127.0.0.1")
        await self.op("client_bundle", str(self.folder / "bundle"))
        self.fleet = SimFleet(self.folder / "bundle", self.folder / "pcs", self.count)
        await self.fleet.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.fleet is not None:
            await self.fleet.stop()
        if self.network is not None:
            await self.network.stop()
        await asyncio.get_running_loop().run_in_executor(self.executor, self.service.db.close)
        self.executor.shutdown(wait=True)

    async def seat_all(self) -> dict[str, Any]:
        scan = await self.op("seats_scan", "ip")
        assert self.fleet is not None
        await self.fleet.wait_all_online(30)
        await self.wait_all_seats_online(10)
        return scan

    async def wait_all_seats_online(self, timeout: float) -> None:
        """The box records links in batches, just after it welcomes the daemons."""
        await self.wait_seats(lambda seats: all(s["online"] for s in seats), timeout)

    async def wait_seats(self, predicate: Any, timeout: float) -> float:
        """Poll the box's seat list until `predicate(seats)` holds; the time it took."""
        start = time.monotonic()
        async with asyncio.timeout(timeout):
            while not predicate(await self.op("seats")):
                await asyncio.sleep(0.05)
        return time.monotonic() - start

    async def start_exam(self) -> list[dict[str, Any]]:
        """Exam data for the room, seal check, session 1 entered and started at once."""
        exam = build_default_exam(
            room_code=ROOM, first_start=time.time() - 60, candidates_per_session=self.count, mock=False
        )
        exam.package["exam"]["policy"].update(countdown_s=0, earliest_submit_s=0)
        files = author_site(self.folder / "usb", [exam]).rooms[ROOM]
        env = await self.op("envcheck")
        for _ in range(3):  # as an officer would: re-test the PCs that a loaded test machine slowed
            if not env["failed"]:
                break
            env = await self.op("envcheck", retest_failed=True)
        await self.op("room_sheet_import", str(files.sheet), files.registration_code)
        await self.op("exam_import", str(files.package))
        seal = await self.op("seal_check")
        assert seal["passed"], json.dumps(seal, ensure_ascii=False)
        await self.op("session_enter", 1, "张三", "15000000001", "李四", "15000000002")
        await self.op("authorise", str(files.authorisations[1]))
        await self.op("allow_login")
        await self.op("allow_start")
        return (await self.op("status"))["session"]["candidates"]
