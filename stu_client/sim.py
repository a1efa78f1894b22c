"""A simulated room: many real exam-PC daemons in one process, each on its own loopback
address (127.0.10.x), with its own key, journal and state, and simulated candidates
that log in, answer and submit through the daemon's app-facing API."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
from pathlib import Path
from typing import Any

from stu_client.daemon import BoxRefused, Daemon
from stu_client.platform import PlatformBackend, RecordingBackend

log = logging.getLogger(__name__)

_MOCK_VALUES: dict[str, Any] = {"single": "A", "multiple": ["A", "B"], "judge": True}  # auto-answer


class SimFleet:
    def __init__(
        self,
        bundle_dir: Path,
        state_root: Path,
        count: int,
        first_ip: str = "127.0.10.11",
        *,
        scan_port: int | None = None,
        control_port: int | None = None,
        submit_on_collect: bool = True,
    ) -> None:
        self._base = ipaddress.IPv4Address(first_ip)
        self.bundle_dir = Path(bundle_dir)
        self.state_root = Path(state_root)
        self._ports = (scan_port, control_port)
        self.daemons = [self._daemon(i, RecordingBackend()) for i in range(count)]
        self.submit_on_collect = submit_on_collect
        self._rng = random.Random(20260601)
        self._tasks: set[asyncio.Task[Any]] = set()

    def _daemon(self, i: int, platform: PlatformBackend) -> Daemon:
        hostname = f"KS-{i + 1:03d}"
        d = Daemon(
            self.bundle_dir,
            self.state_root / hostname,
            bind_ip=str(self._base + i),
            hostname=hostname,
            platform=platform,
            scan_port=self._ports[0],
            control_port=self._ports[1],
        )
        d.add_listener(lambda event, data: self._on_event(i, event, data))
        return d

    def __len__(self) -> int:
        return len(self.daemons)

    def __getitem__(self, i: int) -> Daemon:
        return self.daemons[i]

    async def start(self) -> None:
        for d in self.daemons:
            await d.start()

    async def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(d.stop() for d in self.daemons))

    async def restart(self, i: int, platform: PlatformBackend | None = None) -> Daemon:
        """PC i's daemon stopped (if it runs) and a new one started on the same state
        folder, as after a crash: same key and journal, a new app API port and token.
        `platform` replaces the PC's backend (default: the same one)."""
        old = self.daemons[i]
        await old.stop()
        self.daemons[i] = self._daemon(i, platform or old.platform)
        await self.daemons[i].start()
        return self.daemons[i]

    async def wait_all_online(self, timeout: float = 30.0) -> None:
        await asyncio.gather(*(d.wait_online(timeout) for d in self.daemons))

    # -- candidates ---------------------------------------------------------------------

    def _candidate(self, i: int) -> str:
        admission_no = self.daemons[i].state.admission_no
        if not admission_no:
            raise RuntimeError(f"no candidate is logged in on {self.daemons[i].hostname}")
        return admission_no

    async def login(self, i: int, admission_no: str) -> dict[str, Any]:
        return await self.daemons[i].request("login", admission_no=admission_no)

    async def begin(self, i: int) -> dict[str, Any]:
        return await self.daemons[i].request("begin", admission_no=self._candidate(i))

    async def raise_hand(self, i: int) -> dict[str, Any]:
        return await self.daemons[i].request("raise_hand", admission_no=self._candidate(i))

    async def answer(self, i: int, n: int, rate: float = 5.0, subject: str = "1") -> list[int]:
        """`n` answers to questions 1…n at `rate` answers per second; their journal seqs."""
        d, admission_no = self.daemons[i], self._candidate(i)
        seqs = []
        for k in range(n):
            seqs.append(d.save_answer(admission_no, subject, str(k + 1), self._rng.choice("ABCD")))
            if rate > 0 and k + 1 < n:
                await asyncio.sleep(1.0 / rate)
        return seqs

    async def submit(self, i: int) -> dict[str, Any]:
        return await self.daemons[i].request("submit", admission_no=self._candidate(i))

    def play_mock(self, rate: float = 0.5) -> None:
        """Every PC plays a mock-exam candidate (模考) by itself: see `mock_candidate`."""
        for i in range(len(self.daemons)):
            task = asyncio.get_running_loop().create_task(self._quietly(self.mock_candidate(i, rate)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def mock_candidate(self, i: int, rate: float) -> None:
        """One PC in mock mode as the answer app plays it: log in by seat once the box
        allows auto-login, begin at the box's start time, answer the objective questions
        at `rate` a second while auto-answer is on; unified collection submits
        (`_on_event`). Returns when the candidate is gone (submitted, logged out)."""
        d, s = self.daemons[i], self.daemons[i].state
        await d.wait_until(lambda: d.online and s.login_allowed and s.auto_login and not s.admission_no, None)
        view = await d.request("login", admission_no="")
        admission_no = view["admission_no"]
        await d.wait_until(lambda: s.exam_start is not None, None)
        await asyncio.sleep(max(0.0, (s.exam_start or 0) - d.box_time()))
        await d.request("begin", admission_no=admission_no)
        objective = [
            (subject, q["id"], _MOCK_VALUES[q["type"]])
            for subject, questions in view["papers"].items()
            for q in questions
            if q.get("type") in _MOCK_VALUES
        ]
        for subject, question, value in objective:
            await d.wait_until(lambda: s.auto_answer or s.collect_requested or not s.admission_no, None)
            if s.collect_requested or s.admission_no != admission_no:
                return
            d.save_answer(admission_no, subject, question, value)
            await asyncio.sleep(1.0 / rate)

    async def _quietly(self, coro: Any) -> None:
        try:
            await coro
        except (ConnectionError, TimeoutError, BoxRefused) as exc:  # the box said no, or is away
            log.info("simulated candidate stopped: %s", exc)
        except Exception:  # a bug: in the log, the rest of the fleet goes on
            log.exception("simulated candidate failed")

    def go_offline(self, i: int) -> None:
        self.daemons[i].go_offline()

    def go_online(self, i: int) -> None:
        self.daemons[i].go_online()

    def _on_event(self, i: int, event: str, data: dict[str, Any]) -> None:
        # Unified collection (统一收卷): every logged-in candidate submits on command.
        collect = event == "command" and data["cmd"] == "collect"
        if collect and self.submit_on_collect and self.daemons[i].state.admission_no:
            task = asyncio.get_running_loop().create_task(self._submit_quietly(i))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _submit_quietly(self, i: int) -> None:
        await self._quietly(self.submit(i))


def raise_fd_limit() -> None:
    """Each daemon holds a few descriptors (UDP, TLS, SQLite and its WAL): 150 of them
    pass the usual soft limit of 1024."""
    try:
        import resource
    except ImportError:  # Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(
                resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard)
            )


async def run_until_signalled(*runners: Any) -> None:
    """start() every runner, wait for SIGINT/SIGTERM, stop() them again."""
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows: KeyboardInterrupt instead
            loop.add_signal_handler(sig, stop.set)
    started = []
    try:
        for r in runners:
            await r.start()
            started.append(r)
        await stop.wait()
    finally:
        for r in reversed(started):
            await r.stop()
