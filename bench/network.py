"""Benchmark of the room network: one box (`kiosk serve`, a separate process) against N
simulated exam PCs (a SimFleet of real daemons in this process, on 127.0.10.x).

Figures, for N PCs:

1. seating: from the seats-scan call (admin API) until every daemon is online; scans
   are repeated (`--max-scans`) until every PC is seated, and the first scan's replies
   are reported against what the fleet had sent;
2. command latency: per PC, the daemon's "command" event for `lock` minus the moment just
   before the admin API `lock` call (one clock: both ends are in this process), over
   `--rounds` lock/unlock rounds; and the API call's own duration (it returns on all acks);
3. sync: every candidate saves one answer per second (the save-to-acknowledgement
   latency: save_answer called -> the "acked" event covering its seq), then `--rate`
   answers per second, each for `--seconds`: answers acknowledged per second;
4. the box process's CPU (psutil cpu_percent, and cpu_times delta / wall) per phase, with
   every PC linked and idle as the baseline, and its RSS (sampled every 0.2 s; peak).

The fleet process's own CPU and event-loop lag are reported next to every load figure:
when the simulator cannot keep up, the latencies include its delay (a note says so).

The box's home (its SQLite database, synchronous=FULL) is on a real disk (a temporary
folder); the fleet's state folders are on /dev/shm when it exists (`--fleet-dir`), so
the PCs' own FULL commits, all made in this one process, cost as little as possible.

Run: .venv/bin/python -m bench.network --pcs 150 [--seconds 60] [--rate 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bench.wire_load import LightFleet
from kiosk.ctl import call
from kiosk.net.admin import PORT_FILE
from kiosk.site.mock import author_site, build_default_exam
from stu_client.sim import SimFleet, raise_fd_limit

ROOM = "1999999001"
SUBJECT = "T01"
MAX_CANDIDATES = 999  # the mock exam's limit per session
LOGIN_BATCH = 50
MB = 1024 * 1024

# From the issue.
TARGET_SEATED_150_S = 2.0
TARGET_P99_CMD_MS = {150: 100.0, 1000: 250.0}
TARGET_ACKED_PER_S = 5000.0
TARGET_P99_ACK_MS = 50.0
TARGET_RSS_MB = 200.0


def now() -> float:
    return time.perf_counter()


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def udp_rcvbuf_errors() -> int | None:
    """Linux: datagrams dropped so far because a socket's receive buffer was full."""
    try:
        lines = [
            ln.split() for ln in Path("/proc/net/snmp").read_text().splitlines() if ln.startswith("Udp:")
        ]
        return int(dict(zip(lines[0], lines[1], strict=True))["RcvbufErrors"])
    except (OSError, IndexError, KeyError, ValueError):
        return None


def pct(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def spread(values: list[float]) -> dict[str, Any]:
    """Count, min, p50, p99 and max in milliseconds."""
    return {
        "n": len(values),
        "min_ms": ms(min(values) if values else None),
        "p50_ms": ms(pct(values, 50)),
        "p99_ms": ms(pct(values, 99)),
        "max_ms": ms(max(values) if values else None),
    }


# -- the box process -------------------------------------------------------------------


class Box:
    """`kiosk serve` in a fresh home, as its own process, on loopback ports."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.log_path = root / "engine.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, deadline_s: float = 30.0) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
        env.update(
            KIOSK_HOME=str(self.home),
            KIOSK_CONTROL_HOST="127.0.0.1",
            KIOSK_CONTROL_PORT=str(free_port()),
            KIOSK_SCAN_PORT=str(free_port(socket.SOCK_DGRAM)),
            KIOSK_SCAN_BROADCAST="127.255.255.255",
            KIOSK_MIN_FREE_BYTES=str(MB),
            KIOSK_ADMIN_PORT="0",
            PYTHONIOENCODING="utf-8",
        )
        script = Path(sys.executable).with_name("kiosk")
        command = [str(script)] if script.exists() else [sys.executable, "-m", "kiosk.cli"]
        with open(self.log_path, "wb") as out:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [*command, "serve"],
                cwd=self.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        end = time.monotonic() + deadline_s
        while not (self.home / PORT_FILE).exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"kiosk serve exited with {self.proc.returncode}:\n{self.log_tail()}")
            if time.monotonic() > end:
                raise RuntimeError(f"kiosk serve not ready after {deadline_s} s:\n{self.log_tail()}")
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, deadline_s: float = 20.0) -> int | None:
        """SIGTERM, then wait; killed when it ignores the signal."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(deadline_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(deadline_s)

    async def op(self, verb: str, timeout: float = 300.0, **params: Any) -> Any:
        """One admin API operation (off the loop: the fleet keeps running); its result."""
        answer = await asyncio.to_thread(call, self.home, verb, params, timeout)
        if not answer.get("ok"):
            raise RuntimeError(f"{verb} refused: {answer.get('error')}")
        return answer.get("result")


class Watch:
    """A process's CPU over a phase and its RSS, sampled by a thread every 0.2 s."""

    def __init__(self, pid: int, limit_mb: float | None = None) -> None:
        self.proc = psutil.Process(pid)
        self.limit = limit_mb * MB if limit_mb else None
        self.exceeded = ""
        self.peak_rss = 0
        self.phase_peak_rss = 0
        self.mark_peak_rss = 0
        self._phase: tuple[float, Any] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch {pid}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self._sample()

    def _sample(self) -> None:
        with contextlib.suppress(psutil.Error):
            rss = self.proc.memory_info().rss
            self.peak_rss = max(self.peak_rss, rss)
            self.phase_peak_rss = max(self.phase_peak_rss, rss)
            self.mark_peak_rss = max(self.mark_peak_rss, rss)
            if self.limit and rss > self.limit and not self.exceeded:
                # A runaway box must not take the (shared) machine down with it.
                self.exceeded = f"box RSS {rss / MB:.0f} MB passed the --max-box-rss-mb guard: stopped"
                self.proc.send_signal(signal.SIGTERM)

    def mark(self) -> dict[str, float]:
        """RSS now and its peak since the last mark, in MB."""
        self._sample()
        try:
            rss = self.proc.memory_info().rss
        except psutil.Error:
            rss = 0
        peak, self.mark_peak_rss = self.mark_peak_rss, rss
        return {"rss_mb": round(rss / MB, 1), "peak_mb": round(peak / MB, 1)}

    def begin(self) -> None:
        self.phase_peak_rss = 0
        self._sample()
        self.proc.cpu_percent(None)  # the baseline of the next call
        self._phase = (now(), self.proc.cpu_times())

    def end(self) -> dict[str, Any]:
        assert self._phase is not None
        self._sample()
        percent = self.proc.cpu_percent(None)
        t0, times0 = self._phase
        wall = now() - t0
        times1 = self.proc.cpu_times()
        busy = (times1.user - times0.user) + (times1.system - times0.system)
        return {
            "cpu_percent": round(percent, 1),
            "cpu_time_over_wall_percent": round(100 * busy / wall, 1) if wall > 0 else None,
            "rss_peak_mb": round(self.phase_peak_rss / MB, 1),
            "wall_s": round(wall, 2),
        }

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)


async def loop_lag(until: float, every: float = 0.05) -> dict[str, Any]:
    """How late this loop wakes a sleeper (the fleet's own delay, not the box's)."""
    late: list[float] = []
    while (t := now()) < until:
        await asyncio.sleep(every)
        late.append(now() - t - every)
    return spread(late)


# -- the bench -------------------------------------------------------------------------


class Aborted(Exception):
    """The room cannot go on (PCs do not come back, the box ran away): report what was
    measured up to here."""


@dataclass
class LoadPhase:
    """One sustained-answer run: what was saved, acknowledged and how long it took."""

    window: tuple[float, float] = (0.0, 0.0)
    saved: int = 0
    acked_in_window: int = 0
    jacks_in_window: int = 0  # journal frames acknowledged
    latencies: list[float] = field(default_factory=list)


class Bench:
    """The phases, in order, against one box and one fleet; `results` is the report."""

    def __init__(self, args: argparse.Namespace, root: Path, fleet_root: Path) -> None:
        self.args = args
        self.root = root
        self.fleet_root = fleet_root
        self.box = Box(root)
        self.fleet: SimFleet | None = None
        self.box_watch: Watch | None = None
        self.self_watch = Watch(os.getpid())
        self.results: dict[str, Any] = {"pcs": args.pcs, "notes": []}
        # What the daemons' listeners fill in.
        self.online_at: dict[int, float] = {}
        self.command_at: dict[str, dict[int, float]] = {"lock": {}, "unlock": {}}
        self.offline_events = 0
        self.pending: list[deque[tuple[int, float, LoadPhase]]] = []
        self.seated: list[int] = []  # fleet indexes of the PCs the box seated
        self.current: LoadPhase | None = None

    def note(self, text: str) -> None:
        self.results["notes"].append(text)
        print(f"  note: {text}", flush=True)

    # -- listeners -----------------------------------------------------------------------

    def on_event(self, i: int, event: str, data: dict[str, Any]) -> None:
        t = now()
        if event == "acked":
            upto = data.get("upto", 0)
            if self.current is not None and self.current.window[0] <= t <= self.current.window[1]:
                self.current.jacks_in_window += 1
            queue = self.pending[i]
            while queue and queue[0][0] <= upto:
                _, saved_at, phase = queue.popleft()
                phase.latencies.append(t - saved_at)
                if phase.window[0] <= t <= phase.window[1]:
                    phase.acked_in_window += 1
        elif event == "command":
            marks = self.command_at.get(data.get("cmd", ""))
            if marks is not None and i not in marks:
                marks[i] = t
        elif event == "online":
            self.online_at.setdefault(i, t)
        elif event == "offline":
            self.offline_events += 1

    # -- phases --------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        args = self.args
        raise_fd_limit()  # the box inherits it: one link per PC
        t = now()
        self.box.start()
        self.box_watch = Watch(self.box.pid, args.max_box_rss_mb)
        print(f"box: pid {self.box.pid}, home {self.box.home}", flush=True)
        await self.box.op("config", room_code=ROOM, answer_dir=str(self.root / "answers"), box_ip="127.0.0.1")
        await self.box.op("client-bundle", dest=str(self.root / "bundle"))
        self.fleet = SimFleet(self.root / "bundle", self.fleet_root, args.pcs)
        self.pending = [deque() for _ in range(args.pcs)]
        for i, d in enumerate(self.fleet.daemons):
            d.add_listener(lambda event, data, i=i: self.on_event(i, event, data))
        await self.fleet.start()
        self.results["setup_s"] = round(now() - t, 2)
        print(f"fleet: {args.pcs} daemons started in {now() - t:.1f} s", flush=True)

        self.mark("setup")
        await self.seat()
        self.mark("seating")
        writers = await self.start_exam()
        await self.login(writers)
        self.mark("wizard_and_login")
        await self.idle(writers)
        await self.commands(writers)
        self.mark("commands")
        # One answer per second first (the latency figure, on a quiet room), then the rate.
        if args.rate != 1:
            await self.sustained("sync_rate1", writers, 1.0, args.latency_seconds or args.seconds)
            self.mark("sync_rate1")
        await self.sustained("sync", writers, args.rate, args.seconds)
        self.mark("sync")
        if args.light:
            await self.light(writers)
            self.mark("light")
        return self.results

    def finish(self) -> None:
        """The run's totals, also after an aborted one."""
        if self.box_watch is not None:
            self.results["box_rss_peak_mb"] = round(self.box_watch.peak_rss / MB, 1)
            if self.box_watch.exceeded:
                self.note(self.box_watch.exceeded)
        self.results["fleet_rss_peak_mb"] = round(self.self_watch.peak_rss / MB, 1)
        self.results["offline_events"] = self.offline_events
        try:
            lines = self.box.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            lines = []
        self.results["engine_log"] = {
            "links_closed": sum(" closed: " in ln for ln in lines),
            "links_refused": sum("refused link" in ln for ln in lines),
            "errors": sum(" ERROR " in ln for ln in lines),
        }

    def mark(self, phase: str) -> None:
        """Both processes' memory at the end of a phase (and its peak during it)."""
        assert self.box_watch is not None
        memory = self.results.setdefault("memory_by_phase", {})
        memory[phase] = {"box": self.box_watch.mark(), "fleet_process": self.self_watch.mark()}

    async def settle(self, writers: list[tuple[int, str]], seconds: float = 2.0) -> None:
        """Before a load phase: every writer's PC online again, then a quiet moment."""
        assert self.fleet is not None
        fleet = self.fleet
        try:
            await asyncio.gather(*(fleet[i].wait_online(60) for i, _ in writers))
        except TimeoutError as exc:
            offline = sum(not fleet[i].online for i, _ in writers)
            raise Aborted(f"{offline} writers' PCs still offline 60 s after the previous phase") from exc
        await asyncio.sleep(seconds)

    async def seat(self) -> None:
        """Scan (the product's default 2 s window), then until every seated daemon is
        online. Replies lost in the first scan are made up by more scans, so that the
        rest of the bench has its PCs; how many it took is part of the figure."""
        assert self.fleet is not None
        fleet, n = self.fleet, len(self.fleet)
        self.online_at.clear()
        drops0 = udp_rcvbuf_errors()
        before = [d.scans_answered for d in fleet.daemons]
        sent: dict[str, float] = {"count": 0}

        async def count_answers() -> None:
            # The simulator's side of the scan: how many daemons had sent their reply, when.
            while True:
                sent["count"] = sum(d.scans_answered > b for d, b in zip(fleet.daemons, before, strict=True))
                if sent["count"] == n:
                    sent["all_s"] = now() - t0
                    return
                await asyncio.sleep(0.02)

        t0 = now()
        counter = asyncio.create_task(count_answers())
        scan = await self.box.op("seats-scan")
        scan_s = now() - t0
        counter.cancel()
        all_sent = sent.get("all_s")
        first = {
            "replies": scan["replies"],
            "call_s": round(scan_s, 3),
            "fleet_replies_sent": int(sent["count"]),
            "fleet_all_sent_s": round(all_sent, 3) if all_sent is not None else None,
        }
        if drops0 is not None:
            first["udp_rcvbuf_errors"] = (udp_rcvbuf_errors() or 0) - drops0
        seated, scans, misses = len(scan["added"]), 1, 0
        while seated < n and scans < self.args.max_scans and misses < 3:
            scan = await self.box.op("seats-scan", timeout_s=self.args.rescan_timeout)
            seated, scans = seated + len(scan["added"]), scans + 1
            misses = 0 if scan["added"] else misses + 1
        seated_s = now() - t0
        if scans > 1:
            self.note(
                f"the first scan seated {first['replies']} of {n} PCs; {scans} scans "
                f"(later ones with timeout_s={self.args.rescan_timeout}) seated {seated} in {seated_s:.1f} s"
            )
        by_ip = {d.bind_ip: i for i, d in enumerate(fleet.daemons)}
        self.seated = sorted(by_ip[s["ip"]] for s in await self.box.op("seats") if s["ip"] in by_ip)
        try:
            await asyncio.gather(*(fleet[i].wait_online(60) for i in self.seated))
        except TimeoutError:
            self.note(
                f"only {sum(d.online for d in fleet.daemons)} of {len(self.seated)} seated PCs online "
                f"60 s after they were seated"
            )
        online = [self.online_at[i] - t0 for i in self.seated if i in self.online_at]
        self.results["seating"] = {
            "first_scan": first,
            "scans": scans,
            "seated": len(self.seated),
            "seated_s": round(seated_s, 3),
            "all_online_s": round(max(online), 3) if online and len(online) == n else None,
            "online_p50_s": round(pct(online, 50) or 0, 3),
        }
        print(f"seated: {self.results['seating']}", flush=True)
        if len(online) < len(self.seated):
            self.mark("seating")
            raise Aborted("not every seated PC came online")

    async def start_exam(self) -> list[tuple[int, str]]:
        """The wizard and session start through the admin API; (PC, admission number)
        for every candidate, in seat order."""
        n = self.args.pcs
        exam = build_default_exam(
            room_code=ROOM,
            first_start=time.time() - 60,
            candidates_per_session=min(n, MAX_CANDIDATES),
            mock=False,
        )
        exam.package["exam"]["policy"].update(countdown_s=0, earliest_submit_s=0)
        files = author_site(self.root / "usb", [exam]).rooms[ROOM]
        t = now()
        env = await self.box.op("envcheck")
        if env.get("failed"):
            self.note(f"envcheck: {env['failed']} PCs failed")
        await self.box.op(
            "room-sheet-import", path=str(files.sheet), registration_code=files.registration_code
        )
        await self.box.op("exam-import", path=str(files.package))
        seal = await self.box.op("seal-check")
        if not seal["passed"]:
            raise RuntimeError(f"seal check failed: {[i for i in seal['items'] if not i['ok']]}")
        await self.box.op(
            "session-enter",
            session=1,
            admin_name="张三",
            admin_phone="15000000001",
            invigilator_name="李四",
            invigilator_phone="15000000002",
        )
        await self.box.op("authorise", path=str(files.authorisations[1]))
        await self.box.op("allow-login")
        await self.box.op("allow-start")
        status = await self.box.op("status")
        people = [c["admission_no"] for c in status["session"]["candidates"]]
        self.results["wizard_s"] = round(now() - t, 2)
        writers = list(zip(self.seated, people, strict=False))
        idle = [self.fleet[i].hostname for i in self.seated[len(writers) :]]  # type: ignore[index]
        if idle:
            self.note(
                f"the mock exam has {len(people)} candidates: {len(idle)} PC(s) ({', '.join(idle)}) "
                "have no candidate (seated and online; no lock, no answers)"
            )
        self.results["writers"] = len(writers)
        return writers

    async def login(self, writers: list[tuple[int, str]]) -> None:
        assert self.fleet is not None
        fleet = self.fleet
        t = now()
        failed: list[str] = []

        async def one(i: int, no: str) -> None:
            try:
                await fleet.login(i, no)
                await fleet.begin(i)
            except Exception as exc:
                failed.append(f"{fleet[i].hostname}: {exc}")

        for k in range(0, len(writers), LOGIN_BATCH):
            await asyncio.gather(*(one(i, no) for i, no in writers[k : k + LOGIN_BATCH]))
        self.results["login_begin_s"] = round(now() - t, 2)
        if failed:
            self.note(f"{len(failed)} logins failed, e.g. {failed[:3]}")
            raise RuntimeError("candidates could not log in")
        print(f"{len(writers)} candidates logged in and writing in {now() - t:.1f} s", flush=True)

    async def idle(self, writers: list[tuple[int, str]], seconds: float = 5.0) -> None:
        """The box's CPU with every PC linked and nothing happening (heartbeats, ticks):
        the baseline under the other figures."""
        assert self.box_watch is not None
        await self.settle(writers, 1.0)
        print(f"idle: {seconds:g} s", flush=True)
        self.box_watch.begin()
        self.self_watch.begin()
        await asyncio.sleep(seconds)
        self.results["idle"] = {"box": self.box_watch.end(), "fleet_process": self.self_watch.end()}
        print(f"idle: {self.results['idle']}", flush=True)

    async def commands(self, writers: list[tuple[int, str]]) -> None:
        """Lock / unlock rounds: per-PC latency and the API call's duration."""
        assert self.fleet is not None
        expected = len(writers)
        people = [no for _, no in writers]
        latency: dict[str, list[float]] = {"lock": [], "unlock": []}
        calls: dict[str, list[float]] = {"lock": [], "unlock": []}
        failed = 0
        for _ in range(self.args.rounds):
            for cmd in ("lock", "unlock"):
                marks = self.command_at[cmd]
                marks.clear()
                t0 = now()
                result = await self.box.op("lock", admission_nos=people, unlock=cmd == "unlock")
                calls[cmd].append(now() - t0)
                failed += len(result["failed"])
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5):
                        while len(marks) < expected:
                            await asyncio.sleep(0.01)
                latency[cmd] += [t - t0 for t in marks.values()]
                await asyncio.sleep(0.3)
        self.results["commands"] = {
            "pcs": expected,
            "rounds": self.args.rounds,
            "failed": failed,
            "lock": spread(latency["lock"]),
            "unlock": spread(latency["unlock"]),
            "lock_call": spread(calls["lock"]),
            "unlock_call": spread(calls["unlock"]),
        }
        print(f"commands: {self.results['commands']}", flush=True)

    async def sustained(self, name: str, writers: list[tuple[int, str]], rate: float, seconds: float) -> None:
        """Every candidate saves `rate` answers per second for `seconds`."""
        assert self.fleet is not None and self.box_watch is not None
        fleet = self.fleet
        await self.settle(writers)
        phase = LoadPhase()
        rng = random.Random(name)
        period = 1.0 / rate
        start = now() + 0.5
        end = start + seconds
        phase.window = (start, end)
        self.current = phase
        offline_before = self.offline_events
        print(f"{name}: {len(writers)} writers x {rate:g}/s for {seconds:g} s", flush=True)

        async def candidate(i: int, no: str) -> None:
            d, queue = fleet[i], self.pending[i]
            at = start + rng.random() * period
            k = 0
            while True:
                delay = at - now()
                if delay > 0:
                    await asyncio.sleep(delay)
                if now() >= end:
                    return
                k += 1
                t = now()
                try:
                    seq = d.save_answer(no, SUBJECT, f"{k % 45 + 1:02d}", rng.choice("ABCD"))
                except Exception as exc:  # a journal that fails is a finding, not a crash
                    self.note(f"{d.hostname}: save failed: {exc}")
                    return
                queue.append((seq, t, phase))
                phase.saved += 1
                # On schedule: a late loop catches up (the offered rate stays the target)
                # but never by more than a second's worth in one burst.
                at = max(at + period, now() - 1.0)

        self.box_watch.begin()
        self.self_watch.begin()
        lag = asyncio.create_task(loop_lag(end))
        await asyncio.gather(*(candidate(i, no) for i, no in writers))
        box = self.box_watch.end()
        me = self.self_watch.end()
        me["loop_lag"] = await lag
        drain_t = now()
        drained = True
        try:
            async with asyncio.timeout(60):
                while any(q for q in self.pending):
                    await asyncio.sleep(0.05)
        except TimeoutError:
            drained = False
        left = sum(len(q) for q in self.pending)
        for q in self.pending:
            q.clear()
        self.results[name] = {
            "rate_per_pc": rate,
            "writers": len(writers),
            "seconds": seconds,
            "target_saves_per_s": round(rate * len(writers), 1),
            "saved_per_s": round(phase.saved / seconds, 1),
            "acked_per_s": round(phase.acked_in_window / seconds, 1),
            "frames_acked_per_s": round(phase.jacks_in_window / seconds, 1),
            "answers_per_frame": round(phase.acked_in_window / phase.jacks_in_window, 2)
            if phase.jacks_in_window
            else None,
            "box_cpu_ms_per_acked_answer": round(
                10 * box["cpu_time_over_wall_percent"] * box["wall_s"] / phase.acked_in_window, 3
            )
            if phase.acked_in_window and box["cpu_time_over_wall_percent"] is not None
            else None,
            "save_to_ack": spread(phase.latencies),
            "drain_s": round(now() - drain_t, 2),
            "unacked_after_drain": left if not drained else 0,
            "offline_events": self.offline_events - offline_before,
            "box": box,
            "fleet_process": me,
        }
        lag_p99 = me["loop_lag"]["p99_ms"] or 0
        offline = self.offline_events - offline_before
        if lag_p99 > 250 or offline:
            self.results[name]["fleet_bound"] = True
            self.note(
                f"{name}: the fleet process could not keep up (its loop lag p99 {lag_p99:.0f} ms, "
                f"CPU {me['cpu_percent']}%, {offline} links dropped): these figures include the "
                "simulator's own delay"
            )
        print(f"{name}: {self.results[name]}", flush=True)

    async def light(self, writers: list[tuple[int, str]]) -> None:
        """The box's own capacity (bench/wire_load.py): the same PCs' links without the
        daemons' cost; lock rounds, then sync at one answer a second and at `--light-rate`."""
        assert self.fleet is not None and self.box_watch is not None
        fleet = LightFleet(self.fleet.daemons, writers)
        t = now()
        try:
            await fleet.connect()
            people = [no for _, no in writers]
            async with asyncio.timeout(60):  # the box records links in batches after their welcome
                while True:
                    status = await self.box.op("status")
                    online = {c["admission_no"] for c in status["session"]["candidates"] if c["online"]}
                    if online.issuperset(people):
                        break
                    await asyncio.sleep(0.2)
            self.results["light_connect_s"] = round(now() - t, 2)
            print(f"light: {len(writers)} light links in {now() - t:.1f} s", flush=True)
            latency: dict[str, list[float]] = {"lock": [], "unlock": []}
            for _ in range(self.args.rounds):
                for cmd in ("lock", "unlock"):
                    t0 = time.monotonic()
                    result = await self.box.op("lock", admission_nos=people, unlock=cmd == "unlock")
                    if result["failed"]:
                        self.note(f"light {cmd}: {len(result['failed'])} PCs failed")
                    arrived = [pc.commands.get(cmd, 0.0) - t0 for pc in fleet.pcs]
                    latency[cmd] += [x for x in arrived if x > 0]
                    await asyncio.sleep(0.3)
            self.results["light_commands"] = {cmd: spread(v) for cmd, v in latency.items()}
            for name, rate in (("light_rate1", 1.0), ("light", self.args.light_rate)):
                self.box_watch.begin()
                self.self_watch.begin()
                lag = asyncio.create_task(loop_lag(now() + 1.0 + self.args.seconds))
                r = await fleet.sync(SUBJECT, rate, self.args.seconds)
                r["box"] = self.box_watch.end()
                r["fleet_process"] = {**self.self_watch.end(), "loop_lag": await lag}
                r["save_to_ack"] = spread(r.pop("latencies"))
                self.results[name] = r
                print(f"{name}: {r}", flush=True)
        finally:
            await fleet.close()

    async def close(self) -> None:
        if self.fleet is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.fleet.stop(), 60)
        code = await asyncio.to_thread(self.box.stop)
        self.results["box_exit_code"] = code
        if self.box_watch is not None:
            self.box_watch.close()
        self.self_watch.close()


# -- report ----------------------------------------------------------------------------


def verdict(value: float | None, target: float, below: bool = True) -> str:
    if value is None:
        return "n/a"
    return "ok" if (value < target if below else value >= target) else "MISSED"


def table(r: dict[str, Any]) -> str:
    n = r["pcs"]
    rows: list[tuple[str, str, str, str]] = []
    seating = r.get("seating")
    if seating:
        first = seating["first_scan"]
        seated_target = TARGET_SEATED_150_S if n <= 150 else None
        rows.append(
            (
                "scan -> all seated and online",
                f"{seating['all_online_s']} s ({seating['scans']} scan(s); all seated after "
                f"{seating['seated_s']} s)",
                f"< {seated_target:g} s (150 PCs)" if seated_target else "(target given for 150 PCs)",
                verdict(seating["all_online_s"], seated_target) if seated_target else "",
            )
        )
        rows.append(
            (
                "first scan (default 2 s window)",
                f"{first['replies']} of {n} replies (the fleet had sent {first['fleet_replies_sent']}), "
                f"call {first['call_s']} s, UDP receive-buffer drops {first.get('udp_rcvbuf_errors')}",
                "",
                "",
            )
        )
    cmd = r.get("commands")
    if cmd:
        cmd_target = TARGET_P99_CMD_MS[150] if n <= 150 else TARGET_P99_CMD_MS[1000]
        for kind in ("lock", "unlock"):
            lat = cmd[kind]
            rows.append(
                (
                    f"{kind} latency per PC ({cmd['pcs']} PCs x {cmd['rounds']})",
                    f"first {lat['min_ms']} / p50 {lat['p50_ms']} / p99 {lat['p99_ms']} / "
                    f"max {lat['max_ms']} ms",
                    f"p99 < {cmd_target:.0f} ms" if kind == "lock" else "",
                    verdict(lat["p99_ms"], cmd_target) if kind == "lock" else "",
                )
            )
        for kind in ("lock_call", "unlock_call"):
            rows.append(
                (
                    f"{kind.replace('_', ' ')} (API, returns on all acks)",
                    f"p50 {cmd[kind]['p50_ms']} / max {cmd[kind]['max_ms']} ms; failed PCs {cmd['failed']}",
                    "",
                    "",
                )
            )
    idle = r.get("idle")
    if idle:
        rows.append(
            (
                "box CPU, all linked, idle",
                f"{idle['box']['cpu_percent']}%; fleet process {idle['fleet_process']['cpu_percent']}%",
                "",
                "",
            )
        )
    for key in ("sync_rate1", "sync"):
        s = r.get(key)
        if not s:
            continue
        label = f"{s['writers']} writers x {s['rate_per_pc']:g}/s"
        rows.append(
            (
                f"acked answers/s ({label})",
                f"{s['acked_per_s']} (saved {s['saved_per_s']}/s of {s['target_saves_per_s']}; "
                f"{s['frames_acked_per_s']} frames/s, {s['answers_per_frame']} answers/frame)",
                f">= {TARGET_ACKED_PER_S:.0f}/s (1000 x 5/s)",
                verdict(s["acked_per_s"], TARGET_ACKED_PER_S, below=False)
                if s["target_saves_per_s"] >= TARGET_ACKED_PER_S
                else "",
            )
        )
        lat = s["save_to_ack"]
        rows.append(
            (
                f"save -> ack ({label})",
                f"p50 {lat['p50_ms']} / p99 {lat['p99_ms']} / max {lat['max_ms']} ms",
                f"p99 < {TARGET_P99_ACK_MS:.0f} ms (1000 x 1/s)" if s["rate_per_pc"] == 1 else "",
                verdict(lat["p99_ms"], TARGET_P99_ACK_MS) if s["rate_per_pc"] == 1 and n >= 1000 else "",
            )
        )
        box, me = s["box"], s["fleet_process"]
        rows.append(
            (
                f"box CPU ({label})",
                f"{box['cpu_percent']}% (cpu_times/wall {box['cpu_time_over_wall_percent']}%, "
                f"{s['box_cpu_ms_per_acked_answer']} CPU-ms per acked answer); "
                f"fleet process {me['cpu_percent']}%, its loop lag p99 {me['loop_lag']['p99_ms']} ms",
                "",
                "",
            )
        )
    light_cmd = r.get("light_commands")
    if light_cmd:
        cmd_target = TARGET_P99_CMD_MS[150] if n <= 150 else TARGET_P99_CMD_MS[1000]
        lat = light_cmd["lock"]
        rows.append(
            (
                "light links: lock latency per PC",
                f"first {lat['min_ms']} / p50 {lat['p50_ms']} / p99 {lat['p99_ms']} / max {lat['max_ms']} ms",
                f"p99 < {cmd_target:.0f} ms",
                verdict(lat["p99_ms"], cmd_target),
            )
        )
    for key in ("light_rate1", "light"):
        s = r.get(key)
        if not s:
            continue
        label = f"light links: {s['pcs']} PCs x {s['rate_per_pc']:g}/s, 1 answer/frame"
        box, me = s["box"], s["fleet_process"]
        cpu_s = (box["cpu_time_over_wall_percent"] or 0) * box["wall_s"] / 100
        per_answer = round(1000 * cpu_s / (s["acked_per_s"] * s["seconds"]), 3) if s["acked_per_s"] else None
        lat = s["save_to_ack"]
        rows += [
            (
                f"acked answers/s ({label})",
                f"{s['acked_per_s']} (sent {s['sent_per_s']}/s of {s['offered_per_s']}; "
                f"unacked {s['unacked']}, refused {s['refused']})",
                f">= {TARGET_ACKED_PER_S:.0f}/s" if s["offered_per_s"] >= TARGET_ACKED_PER_S else "",
                verdict(s["acked_per_s"], TARGET_ACKED_PER_S, below=False)
                if s["offered_per_s"] >= TARGET_ACKED_PER_S
                else "",
            ),
            (
                f"write -> ack ({label})",
                f"p50 {lat['p50_ms']} / p99 {lat['p99_ms']} / max {lat['max_ms']} ms",
                f"p99 < {TARGET_P99_ACK_MS:.0f} ms" if s["rate_per_pc"] == 1 else "",
                verdict(lat["p99_ms"], TARGET_P99_ACK_MS) if s["rate_per_pc"] == 1 else "",
            ),
            (
                f"box CPU ({label})",
                f"{box['cpu_percent']}% ({per_answer} CPU-ms per acked answer); fleet process "
                f"{me['cpu_percent']}%, its loop lag p99 {me['loop_lag']['p99_ms']} ms",
                "",
                "",
            ),
        ]
    rows.append(
        (
            "box RSS peak",
            f"{r.get('box_rss_peak_mb')} MB (fleet process {r.get('fleet_rss_peak_mb')} MB)",
            f"< {TARGET_RSS_MB:.0f} MB",
            verdict(r.get("box_rss_peak_mb"), TARGET_RSS_MB),
        )
    )
    widths = [max(len(row[k]) for row in rows) for k in range(4)]
    lines = [f"room network, {n} PCs"]
    for row in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    lines += [f"note: {text}" for text in r.get("notes", [])]
    if r.get("aborted"):
        lines.append(f"ABORTED: {r['aborted']}")
    lines.append(f"box engine log: {r.get('engine_log')}")
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.network",
        description="Room network benchmark: one box against N simulated exam PCs.",
    )
    p.add_argument("--pcs", type=int, default=150, help="simulated exam PCs (default 150)")
    p.add_argument("--seconds", type=float, default=60.0, help="sustained phase length (default 60)")
    p.add_argument("--rate", type=float, default=5.0, help="answers per second per candidate (default 5)")
    p.add_argument(
        "--latency-seconds", type=float, default=None, help="length of the 1/s phase (default --seconds)"
    )
    p.add_argument("--rounds", type=int, default=5, help="lock/unlock rounds (default 5)")
    p.add_argument("--max-scans", type=int, default=20, help="scans at most to seat every PC (default 20)")
    p.add_argument(
        "--rescan-timeout", type=int, default=5, help="timeout_s of the scans after the first (default 5)"
    )
    p.add_argument(
        "--light-rate",
        type=float,
        default=6.0,
        help="answers per second per PC in the box-capacity phase (default 6: above 5,000/s for 999 PCs)",
    )
    p.add_argument(
        "--no-light",
        dest="light",
        action="store_false",
        help="skip the box-capacity phase with light links instead of daemons (bench/wire_load.py)",
    )
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument(
        "--fleet-dir",
        type=Path,
        default=Path("/dev/shm") if Path("/dev/shm").is_dir() else None,
        help="where the fleet's state folders go (default /dev/shm, else the box's temp folder)",
    )
    p.add_argument(
        "--max-box-rss-mb",
        type=float,
        default=3000.0,
        help="stop the box (and report) when its RSS passes this (default 3000)",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary folders (box home, logs)")
    return p.parse_args(argv)


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="bench-network-"))
    fleet_root = Path(tempfile.mkdtemp(prefix="bench-fleet-", dir=args.fleet_dir))
    bench = Bench(args, root, fleet_root)
    try:
        await bench.run()
    except Aborted as exc:
        bench.results["aborted"] = str(exc)
        print(f"aborted: {exc}", flush=True)
    except Exception as exc:  # reported with what was measured so far
        bench.results["aborted"] = f"{type(exc).__name__}: {exc}"
        print(f"failed: {exc!r}\nengine log (tail):\n{bench.box.log_tail()}", file=sys.stderr)
    finally:
        bench.finish()
        await bench.close()
        if args.keep:
            print(f"kept {root} and {fleet_root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
            shutil.rmtree(fleet_root, ignore_errors=True)
    return bench.results


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    results = asyncio.run(amain(args))
    results["args"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    print()
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1))
    return 1 if results.get("aborted") else 0


if __name__ == "__main__":
    sys.exit(main())
