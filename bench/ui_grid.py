"""How fast and how smoothly the box's seat grid follows a full room: the real touch app
at 1920x1080 on an Xvfb screen with a real engine in this process (the box), and N real
exam-PC daemons in a child process (the fleet, on 127.0.10.x, sharing the machine's
cores as the PCs of a real room do not).

Figures:

1. one change: the time from a service call (a lock of one candidate, acknowledged by
   its PC) to the seat showing it, `--rounds` times, in a quiet room and again while
   every PC streams answers;
2. storms: all N candidates logging in at once, then all N locked by one room-wide
   command: the time until every seat shows it, and the frames meanwhile;
3. answer stream: every PC saving `--rate` answers a second for `--seconds`;
4. frames: the intervals between frames (a callback the Kivy clock runs every frame):
   frames a second, the longest frame, p95, frames over 100 ms; and where the UI
   thread's time went (status reads, applying them to the screen).

`--fleet-in-process` runs the daemons on the app's own event loop instead (the figures
before this benchmark moved them out): every frame then waits for 150 daemons' work.

Run: .venv/bin/python -m bench.ui_grid [--pcs 150] [--rounds 20] [--seconds 20] [--rate 2]"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SUBJECT = "T01"


# -- the fleet: a child process driven by JSON lines on its stdin/stdout --------------------


async def fleet_child(bundle: Path, state: Path, count: int, scan_port: int) -> None:
    from stu_client.sim import SimFleet, raise_fd_limit

    raise_fd_limit()
    fleet = SimFleet(bundle, state, count, scan_port=scan_port)
    await fleet.start()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    streams: list[asyncio.Task[Any]] = []

    def reply(**kw: Any) -> None:
        sys.stdout.write(json.dumps(kw) + "\n")
        sys.stdout.flush()

    reply(ok=True)
    try:
        while line := await reader.readline():
            cmd = json.loads(line)
            op, t0 = cmd["op"], time.perf_counter()
            if op == "online":
                await fleet.wait_all_online(cmd.get("timeout", 60))
            elif op in ("login", "begin"):
                people = cmd.get("nos") or [d.state.admission_no for d in fleet.daemons]
                await asyncio.gather(
                    *(d.request(op, admission_no=no) for d, no in zip(fleet.daemons, people, strict=True))
                )
            elif op == "stream":  # every PC answers at `rate` a second until "quiet"
                n = max(1, int(cmd["rate"] * cmd["seconds"]))
                streams = [
                    asyncio.ensure_future(fleet.answer(i, n, cmd["rate"], SUBJECT)) for i in range(count)
                ]
            elif op == "quiet":
                for t in streams:
                    t.cancel()
                await asyncio.gather(*streams, return_exceptions=True)
                streams = []
            elif op == "locked":
                await asyncio.gather(
                    *(d.wait_until(lambda d=d: d.state.locked, cmd.get("timeout", 30)) for d in fleet.daemons)
                )
            reply(ok=True, s=time.perf_counter() - t0)
    finally:
        for t in streams:
            t.cancel()
        await fleet.stop()


class FleetProcess:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, bundle: Path, state: Path, count: int, scan_port: int) -> FleetProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.ui_grid", "--fleet-child", str(bundle), str(state),
            str(count), str(scan_port),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        fleet = cls(proc)
        await fleet._answer()
        return fleet

    async def _answer(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the fleet process ended (exit {await self.proc.wait()})")
        return json.loads(line)

    async def do(self, op: str, **kw: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"op": op, **kw}) + "\n").encode())
        await self.proc.stdin.drain()
        return await self._answer()

    async def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 60)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


class InProcessFleet:
    """The same commands on a SimFleet in this process (`--fleet-in-process`)."""

    def __init__(self, fleet: Any) -> None:
        self.fleet = fleet
        self.streams: list[asyncio.Task[Any]] = []

    async def do(self, op: str, **kw: Any) -> dict[str, Any]:
        f = self.fleet
        if op == "online":
            await f.wait_all_online(60)
        elif op in ("login", "begin"):
            people = kw.get("nos") or [d.state.admission_no for d in f.daemons]
            await asyncio.gather(
                *(d.request(op, admission_no=no) for d, no in zip(f.daemons, people, strict=True))
            )
        elif op == "stream":
            n = max(1, int(kw["rate"] * kw["seconds"]))
            self.streams = [asyncio.ensure_future(f.answer(i, n, kw["rate"], SUBJECT)) for i in range(len(f))]
        elif op == "quiet":
            for t in self.streams:
                t.cancel()
            await asyncio.gather(*self.streams, return_exceptions=True)
        elif op == "locked":
            await asyncio.gather(*(d.wait_until(lambda d=d: d.state.locked, 30) for d in f.daemons))
        return {"ok": True}

    async def stop(self) -> None:
        return None


# -- what the UI thread does --------------------------------------------------------------


class Frames:
    """Every frame's start (a callback the Kivy clock runs once a frame), and the time the
    app's reload and redraw took on the UI thread."""

    def __init__(self) -> None:
        from kivy.clock import Clock

        self.stamps: list[float] = []
        self.busy: dict[str, list[float]] = {"status": [], "apply": [], "redraw": [], "flip": [], "gc": []}
        self._event = Clock.schedule_interval(lambda _dt: self.stamps.append(time.perf_counter()), 0)
        self._gc_start = 0.0
        gc.callbacks.append(self._gc)

    def _gc(self, phase: str, _info: dict[str, Any]) -> None:
        """Python's garbage collections, in any thread: every thread waits for them."""
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            self.busy["gc"].append(time.perf_counter() - self._gc_start)

    def stop(self) -> None:
        self._event.cancel()
        gc.callbacks.remove(self._gc)

    @contextmanager
    def window(self) -> Iterator[dict[str, Any]]:
        """Frame figures for what runs inside the `with`, filled in on leaving it."""
        start, busy = time.perf_counter(), {k: len(v) for k, v in self.busy.items()}
        out: dict[str, Any] = {}
        yield out
        end = time.perf_counter()
        stamps = [t for t in self.stamps if start <= t <= end]
        gaps = sorted(b - a for a, b in zip([start, *stamps], [*stamps, end], strict=True))
        out.update(
            seconds=end - start,
            fps=len(stamps) / (end - start),
            longest_ms=gaps[-1] * 1000,
            p95_ms=gaps[int(0.95 * (len(gaps) - 1))] * 1000,
            over_100ms=sum(g > 0.1 for g in gaps),
        )
        for k, v in self.busy.items():
            new = v[busy[k] :]
            out[f"{k}_n"], out[f"{k}_ms"] = len(new), (max(new) * 1000 if new else 0.0)
            out[f"{k}_total_ms"] = sum(new) * 1000

    def wrap(self, app: Any) -> None:
        """Time the app's status reads (the await: the worker thread) and what follows on
        the UI thread, and the monitor's redraw."""
        engine_call = app.engine.call

        async def call(method: str, *a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await engine_call(method, *a, **kw)
            finally:
                if method == "status":
                    self.busy["status"].append(time.perf_counter() - t0)

        app.engine.call = call
        monitor = app.root.ids.shell.ids.monitor
        redraw = monitor.redraw

        def timed_redraw(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return redraw(*a, **kw)
            finally:
                self.busy["redraw"].append(time.perf_counter() - t0)

        monitor.redraw = timed_redraw
        from kivy.core.window import Window

        flip = Window.flip

        def timed_flip() -> None:  # the frame drawn by the GL driver and put on the X screen
            t0 = time.perf_counter()
            try:
                flip()
            finally:
                self.busy["flip"].append(time.perf_counter() - t0)

        Window.flip = timed_flip
        apply = app.apply_status

        def timed_apply(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return apply(*a, **kw)
            finally:
                self.busy["apply"].append(time.perf_counter() - t0)

        app.apply_status = timed_apply


def line(what: str, f: dict[str, Any]) -> str:
    return (
        f"{what}: {f['seconds']:.2f} s, {f['fps']:.0f} frames/s, longest frame {f['longest_ms']:.0f} ms, "
        f"p95 {f['p95_ms']:.0f} ms, {f['over_100ms']} over 100 ms; UI thread: {f['apply_n']} status "
        f"applied (longest {f['apply_ms']:.0f} ms, {f['apply_total_ms']:.0f} ms in all), "
        f"status read longest {f['status_ms']:.0f} ms; {f['flip_n']} frames drawn, their buffer swap "
        f"longest {f['flip_ms']:.0f} ms, {f['flip_total_ms']:.0f} ms in all; {f['gc_n']} garbage "
        f"collections, longest {f['gc_ms']:.0f} ms, {f['gc_total_ms']:.0f} ms in all"
    )


async def one_change(
    engine: Any, people: list[str], tiles: Callable[[], list[Any]], calls: list[float] | None = None
) -> list[float]:
    """Per lock: from the service call to the frame drawn after the seat's tile has it
    (`calls`: the service call's own share, until the PC acknowledged)."""
    from kivy.clock import Clock

    from tests.ui import harness as h

    took: list[float] = []
    for no in people:
        start = time.perf_counter()
        await engine.call("lock", [no], "请停止作答")
        if calls is not None:
            calls.append(time.perf_counter() - start)
        await h.until(lambda no=no: any(t.admission_no == no and "锁屏" in t.flags for t in tiles()))
        drawn = Clock.frames_displayed
        await h.until(lambda drawn=drawn: Clock.frames_displayed > drawn, what="the next frame")
        took.append(time.perf_counter() - start)
        await engine.call("lock", [no], "", unlock=True)
        await h.until(lambda no=no: any(t.admission_no == no and "锁屏" not in t.flags for t in tiles()))
    return took


async def full_frames(frames: Frames, n: int) -> list[float]:
    """The buffer swap of `n` frames that redraw the whole window (each asked for)."""
    from kivy.clock import Clock
    from kivy.core.window import Window

    from tests.ui import harness as h

    took = []
    for _ in range(n):
        before, drawn = len(frames.busy["flip"]), Clock.frames_displayed
        Window.canvas.ask_update()
        await h.until(lambda drawn=drawn: Clock.frames_displayed > drawn, what="a frame")
        took.extend(t * 1000 for t in frames.busy["flip"][before:])
    return took


def ms(values: list[float]) -> str:
    return f"p50 {statistics.median(values) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms"


async def measure(tmp: Path, fleet_dir: Path, ns: argparse.Namespace) -> dict[str, Any]:
    from tests.ui import box_harness as b
    from tests.ui import harness as h

    pcs, results = ns.pcs, {}
    files = b.stick_with_exam(tmp, pcs)
    async with b.box_engine(tmp, pcs if ns.fleet_in_process else 0) as (engine, local):
        fleet: Any = (
            InProcessFleet(local)
            if ns.fleet_in_process
            else await FleetProcess.start(tmp / "bundle", fleet_dir, pcs, engine.settings.scan_port)
        )
        try:
            async with b.box_app(engine) as app:
                await engine.call("room_sheet_import", str(files.sheet), files.registration_code)
                await engine.call("seats_scan", "ip")
                await fleet.do("online")
                env = await engine.call("envcheck")
                for _ in range(4):  # a loaded machine slows some PCs: re-test those, as an officer would
                    if not env["failed"]:
                        break
                    env = await engine.call("envcheck", True)
                await engine.call("exam_import", str(files.package))
                await engine.call("seal_check")
                await engine.call("session_enter", 1, "张三", "13807710001", "王芳", "15977120003")
                await engine.call("authorise", str(files.authorisations[1]))
                await engine.call("allow_login")
                await engine.call("allow_start")
                app.logged_in = True
                app.area = "during"

                def tiles() -> list[Any]:
                    return list(app.root.ids.shell.ids.monitor.ids.grid.children)

                await h.until(lambda: len(tiles()) == pcs, timeout=30)
                people = [c["admission_no"] for c in (await engine.call("status"))["session"]["candidates"]]
                frames = Frames()
                frames.wrap(app)
                await h.settle(10)

                with frames.window() as quiet:
                    await asyncio.sleep(3)  # nothing happens: the clock's tick every second
                results["idle"] = quiet
                print(line("idle room", quiet))
                results["full_frame_ms"] = await full_frames(frames, 20)
                print(f"a full frame of the monitor (150 seats) drawn and swapped: "
                      f"{ms([t / 1000 for t in results['full_frame_ms']])} (20 frames)")  # fmt: skip

                with frames.window() as storm:
                    t0 = time.perf_counter()
                    login = asyncio.ensure_future(fleet.do("login", nos=people))
                    await h.until(lambda: sum(bool(t.name) for t in tiles()) == pcs, timeout=60)
                    storm["shown_s"] = time.perf_counter() - t0
                    await login
                results["login_storm"] = storm
                print(f"{pcs} logging in at once, all on the grid after {storm['shown_s']:.2f} s")
                print(line("  meanwhile", storm))
                await fleet.do("begin", nos=people)

                calls: list[float] = []
                quiet_one = await one_change(engine, people[: ns.rounds], tiles, calls)
                results["one_change_quiet_s"], results["lock_call_quiet_s"] = quiet_one, calls
                print(f"one change drawn, quiet room: {ms(quiet_one)} ({ns.rounds} locks; the lock call "
                      f"itself, to the PC's acknowledgement: {ms(calls)})")  # fmt: skip

                await fleet.do("stream", rate=ns.rate, seconds=ns.seconds + 60)
                with frames.window() as stream:
                    t0 = time.perf_counter()
                    calls = []
                    busy_one = await one_change(engine, people[: ns.rounds], tiles, calls)
                    await asyncio.sleep(max(0.0, ns.seconds - (time.perf_counter() - t0)))
                results["stream"] = stream
                results["one_change_streaming_s"], results["lock_call_streaming_s"] = busy_one, calls
                print(f"one change drawn, {pcs} PCs answering {ns.rate:g}/s each: {ms(busy_one)} "
                      f"(the lock call: {ms(calls)})")  # fmt: skip
                print(line(f"  {pcs * ns.rate:g} answers/s streaming", stream))

                with frames.window() as lock_all:
                    t0 = time.perf_counter()
                    await engine.call("lock", people, "请停止作答")
                    await h.until(
                        lambda: all("锁屏" in t.flags for t in tiles() if t.admission_no), timeout=30
                    )
                    lock_all["shown_s"] = time.perf_counter() - t0
                results["lock_storm"] = lock_all
                print(f"all {pcs} locked by one command, on the grid after {lock_all['shown_s']:.2f} s "
                      "(answers still streaming)")  # fmt: skip
                print(line("  meanwhile", lock_all))
                await fleet.do("quiet")
                frames.stop()
        finally:
            await fleet.stop()
    return results


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--fleet-child":
        bundle, state, count, port = sys.argv[2:6]
        asyncio.run(fleet_child(Path(bundle), Path(state), int(count), int(port)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pcs", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the answer stream is timed")
    parser.add_argument("--rate", type=float, default=2.0, help="answers a second per PC while streaming")
    parser.add_argument("--fleet-in-process", action="store_true", help="the daemons on the app's loop")
    parser.add_argument("--json", type=Path, help="write every figure here")
    ns = parser.parse_args()
    from tests.ui import conftest  # Kivy's environment before Kivy is imported

    proc, display = conftest.start_xvfb((1920, 1080))
    os.environ["DISPLAY"] = display
    try:
        from kiosk.common.kivyenv import configure_kivy

        configure_kivy(kiosk=False, size=(1920, 1080))  # the box app's own settings
        shm = Path("/dev/shm")
        with (
            tempfile.TemporaryDirectory() as tmp,
            tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as fleet_dir,
        ):
            results = asyncio.run(measure(Path(tmp), Path(fleet_dir), ns))
        if ns.json:
            ns.json.write_text(json.dumps(results, indent=1))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
