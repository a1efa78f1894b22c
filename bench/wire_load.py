"""The box's own capacity, measured without the simulated daemons' cost.

The simulated fleet runs every exam PC's real daemon in one Python process: its journal
commits, frames and timers saturate one core near 1,000 answers a second, well below
what the box can take, and its command handling (a durable state file per lock) is in
every command latency. This phase measures the box instead: after the fleet's daemons
stop, one light client per seated PC opens the same pinned TLS link with that PC's own
key and address (so the box sees the same seated PCs and candidates), acknowledges
commands at once, and sends journal frames of one answer each at a fixed rate, the
worst case for the box (one frame, one validation, one acknowledgement per answer).
An answer's latency runs from its frame's write to the acknowledgement covering it; the
box's group commit, synchronous=FULL and ack-after-commit are the product's, unchanged."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass, field
from typing import Any

from kiosk.common import wire
from kiosk.common.crypto import client_context
from stu_client.daemon import Daemon, daemon_version

SEQ_BASE = 10_000_000  # above anything the daemon's own journal used


@dataclass
class Load:
    window: tuple[float, float]
    sent: int = 0
    acked_in_window: int = 0
    latencies: list[float] = field(default_factory=list)


class LightPC:
    """One exam PC's link without its daemon: hello, heartbeats, instant command acks,
    journal frames on demand."""

    def __init__(self, d: Daemon, admission_no: str) -> None:
        self.d = d
        self.no = admission_no
        self.writer: asyncio.StreamWriter | None = None
        self.sent_at: dict[int, float] = {}  # journal seq -> when its frame was written
        self.load: Load | None = None
        self.commands: dict[str, float] = {}  # command -> when it last arrived
        self.refused = 0
        self.tasks: list[asyncio.Task[None]] = []

    async def connect(self) -> None:
        d = self.d
        reader, self.writer = await asyncio.open_connection(
            d.bundle.box_addr,
            d.control_port,
            ssl=client_context(d.identity, d.bundle.box_cert_pem),
            server_hostname="",
            local_addr=(d.bind_ip, 0) if d.bind_ip else None,
        )
        self.send({"t": wire.HELLO, "fingerprint": d.fingerprint, "hostname": d.hostname,
                   "version": daemon_version(), "last_cmd_seq": d.state.last_cmd_seq, "pc_time": time.time(),
                   "locked": False, "app_running": True, "admission_no": self.no})  # fmt: skip
        welcome = await asyncio.wait_for(wire.read_frame(reader), 60)
        if welcome["t"] != wire.WELCOME:
            raise ConnectionError(f"expected welcome, got {welcome['t']!r}")
        self.tasks = [asyncio.create_task(self._read(reader)), asyncio.create_task(self._beat())]

    def send(self, msg: dict[str, Any]) -> None:
        assert self.writer is not None
        wire.write_frame(self.writer, msg)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            msg = await wire.read_frame(reader)
            t = time.monotonic()
            if msg["t"] == wire.JOURNAL_ACK:
                upto = msg.get("upto", 0)
                self.refused += len(msg.get("refused") or ())
                for seq in [s for s in self.sent_at if s <= upto]:
                    sent = self.sent_at.pop(seq)
                    if self.load is not None:
                        self.load.latencies.append(t - sent)
                        self.load.acked_in_window += self.load.window[0] <= t <= self.load.window[1]
            elif msg["t"] == wire.COMMAND:
                self.commands[str(msg.get("cmd"))] = t
                self.send({"t": wire.COMMAND_ACK, "seq": msg.get("seq"), "ok": True})

    async def _beat(self) -> None:
        while True:  # the box drops a link silent for 3 s
            self.send({"t": wire.HEARTBEAT, "pc_time": time.time()})
            await asyncio.sleep(1.0)

    async def write(self, load: Load, subject: str, rate: float, rng: random.Random) -> None:
        self.load = load
        period = 1.0 / rate
        start, end = load.window
        at = start + rng.random() * period
        seq = SEQ_BASE
        while at < end:
            if (delay := at - time.monotonic()) > 0:
                await asyncio.sleep(delay)
            seq += 1
            payload = {"subject": subject, "question": f"{seq % 45 + 1:02d}", "value": rng.choice("ABCD"),
                       "aseq": seq}  # fmt: skip
            entry = {"seq": seq, "admission_no": self.no, "kind": "answer", "payload": payload,
                     "created_at": time.time()}  # fmt: skip
            self.sent_at[seq] = time.monotonic()
            self.send({"t": wire.JOURNAL, "entries": [entry]})
            load.sent += 1
            at = max(at + period, time.monotonic() - 1.0)  # a late loop catches up, not in a burst

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.writer is not None:
            self.writer.transport.abort()


class LightFleet:
    def __init__(self, daemons: list[Daemon], writers: list[tuple[int, str]]) -> None:
        self.daemons = [daemons[i] for i, _ in writers]
        self.pcs = [LightPC(daemons[i], no) for i, no in writers]

    async def connect(self) -> None:
        """Stop the writers' daemons, then link every PC again without them."""
        await asyncio.gather(*(d.stop() for d in self.daemons))
        await asyncio.gather(*(pc.connect() for pc in self.pcs))

    async def drain(self, timeout: float = 30.0) -> int:
        """Wait for the acknowledgements still due; returns how many never came."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while any(pc.sent_at for pc in self.pcs):
                    await asyncio.sleep(0.05)
        return sum(len(pc.sent_at) for pc in self.pcs)

    async def sync(self, subject: str, rate: float, seconds: float) -> dict[str, Any]:
        start = time.monotonic() + 1.0
        load = Load(window=(start, start + seconds))
        rng = random.Random(20261126)
        await asyncio.gather(*(pc.write(load, subject, rate, rng) for pc in self.pcs))
        unacked = await self.drain()
        return {
            "rate_per_pc": rate,
            "pcs": len(self.pcs),
            "seconds": seconds,
            "offered_per_s": round(rate * len(self.pcs), 1),
            "sent_per_s": round(load.sent / seconds, 1),
            "acked_per_s": round(load.acked_in_window / seconds, 1),
            "unacked": unacked,
            "refused": sum(pc.refused for pc in self.pcs),
            "latencies": load.latencies,
        }

    async def close(self) -> None:
        await asyncio.gather(*(pc.close() for pc in self.pcs))
