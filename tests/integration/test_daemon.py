"""The exam-PC daemon against a small stand-in for the box: pinned TLS both ways, signed
scans, commands applied once, the lock kept across restarts, the journal synced without
losing an entry, the box clock. Loopback only; every wait is on an event with a timeout."""

from __future__ import annotations

import asyncio
import datetime
import json
import socket
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kiosk.common import wire
from kiosk.common.crypto import (
    Identity,
    cert_fingerprint,
    load_or_make_identity,
    make_identity,
    peer_fingerprint,
    server_context,
    sign,
)
from stu_client.daemon import JOURNAL_BATCH, BoxRefused, BundleError, Daemon
from stu_client.localstore import DaemonState
from stu_client.platform import RecordingBackend, SystemBackend
from stu_client.sim import SimFleet

T = 5.0  # every wait's timeout
PC_IP = "127.0.10.11"


def run(coro_fn: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        async with asyncio.timeout(60) as limit:
            await coro_fn()
        # A body that swallowed the cancellation would otherwise end "successfully".
        assert not limit.expired(), "the test body hung"

    asyncio.run(main())


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def write_bundle(
    folder: Path, box: Identity, port: int, scan_port: int, fingerprint: str | None = None
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "box.crt").write_bytes(box.cert_pem)
    conf = {
        "version": 1,
        "box_addr": "127.0.0.1",
        "control_port": port,
        "scan_port": scan_port,
        "box_fingerprint": fingerprint or box.fingerprint,
        "heartbeat_s": 0.2,
    }
    (folder / "daemon.json").write_text(json.dumps(conf))
    return folder


def issued_by(box: Identity) -> Identity:
    """A certificate that box.crt signed: the TLS trust store accepts it, the pin must not."""
    key = ec.generate_private_key(ec.SECP256R1())
    issuer = x509.load_pem_x509_certificate(box.cert_pem)
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "impostor")]))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(box.private_key(), hashes.SHA256())
    )
    return Identity(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        cert.public_bytes(serialization.Encoding.PEM),
    )


class FakeBox:
    """The box's side of the link, just enough to drive a daemon: welcome, hb echo,
    frames sorted by type into queues, and `send` / `drop` on the current connection."""

    def __init__(self, identity: Identity, pc_certs: list[bytes]) -> None:
        self.ctx = server_context(identity, pc_certs)
        self.welcome: dict[str, Any] = {"seat": "01", "locked": False, "notice": ""}
        self.clock_offset = 0.0
        self.auto_jack = False
        self.hellos: list[dict[str, Any]] = []
        self.peers: list[tuple[str, str]] = []  # (fingerprint, ip) of each welcomed link
        self.frames: dict[str, asyncio.Queue[dict[str, Any]]] = defaultdict(asyncio.Queue)
        self.writers: list[asyncio.StreamWriter] = []
        self.connections = 0
        self.connected = asyncio.Event()
        self._handlers: set[asyncio.Task[None]] = set()
        self.server: asyncio.Server | None = None

    async def start(self, port: int = 0) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", port, ssl=self.ctx)
        return self.server.sockets[0].getsockname()[1]

    def trust(self, pc_cert: bytes) -> None:
        self.ctx.load_verify_locations(cadata=pc_cert.decode())

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for w in self.writers:
            w.transport.abort()
        await self.server.wait_closed()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.writers.append(writer)
        try:
            hello = await wire.read_frame(reader)
            assert hello["t"] == wire.HELLO
            self.hellos.append(hello)
            self.peers.append(
                (peer_fingerprint(writer.get_extra_info("ssl_object")), writer.get_extra_info("peername")[0])
            )
            wire.write_frame(
                writer, {"t": wire.WELCOME, "box_time": time.time() + self.clock_offset, **self.welcome}
            )
            self.connections += 1
            self.connected.set()
            while True:
                msg = await wire.read_frame(reader)
                if msg["t"] == wire.HEARTBEAT:
                    wire.write_frame(
                        writer, {"t": wire.HEARTBEAT, "box_time": time.time() + self.clock_offset}
                    )
                    continue
                if msg["t"] == wire.JOURNAL and self.auto_jack:
                    wire.write_frame(
                        writer, {"t": wire.JOURNAL_ACK, "upto": msg["entries"][-1]["seq"], "refused": []}
                    )
                self.frames[msg["t"]].put_nowait(msg)
        except (asyncio.IncompleteReadError, ConnectionError, OSError, wire.WireError):
            pass
        finally:
            writer.transport.abort()
            self.writers.remove(writer)
            self._handlers.discard(task)

    async def expect(self, t: str) -> dict[str, Any]:
        return await asyncio.wait_for(self.frames[t].get(), T)

    def send(self, msg: dict[str, Any]) -> None:
        wire.write_frame(self.writers[-1], msg)

    def drop(self) -> None:
        for w in list(self.writers):
            w.transport.abort()

    async def command(self, seq: int, cmd: str, **args: Any) -> dict[str, Any]:
        self.send({"t": wire.COMMAND, "seq": seq, "cmd": cmd, "args": args})
        ack = await self.expect(wire.COMMAND_ACK)
        assert ack["seq"] == seq
        return ack


class Room:
    """A box identity, a bundle, a PC state folder and a FakeBox for one test."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.box = make_identity("box")
        self.state_dir = tmp / "pc"
        self.pc = load_or_make_identity(self.state_dir, "pc", "KS-001")
        self.scan_port = free_udp_port()
        self.fake = FakeBox(self.box, [self.pc.cert_pem])
        self.bundle = tmp / "bundle"
        self.backend = RecordingBackend()

    async def start_box(self, identity: Identity | None = None) -> None:
        if identity is not None:
            self.fake = FakeBox(identity, [self.pc.cert_pem])
        port = await self.fake.start()
        write_bundle(self.bundle, self.box, port, self.scan_port)

    def daemon(self) -> Daemon:
        return Daemon(self.bundle, self.state_dir, bind_ip=PC_IP, hostname="KS-001", platform=self.backend)


def with_room(
    tmp_path: Path,
    body: Callable[[Room, Daemon], Awaitable[None]],
    box: Identity | Callable[[Room], Identity] | None = None,
) -> None:
    """Run `body` against a started fake box (its identity, or one made from the room's)."""

    async def main() -> None:
        room = Room(tmp_path)
        await room.start_box(box(room) if callable(box) else box)
        daemon = room.daemon()
        await daemon.start()
        try:
            await body(room, daemon)
        finally:
            await daemon.stop()
            await room.fake.stop()

    run(main)


# -- the bundle --------------------------------------------------------------------------


def test_the_daemon_refuses_a_bundle_whose_fingerprint_is_not_its_box_certificate(tmp_path):
    box = make_identity("box")
    bundle = write_bundle(tmp_path / "b", box, 1, 2, fingerprint=make_identity("other").fingerprint)
    with pytest.raises(BundleError, match=r"does not match box\.crt"):
        Daemon(bundle, tmp_path / "pc", platform=RecordingBackend())
    assert not (tmp_path / "pc" / "journal.db").exists()


# -- the seat scan -----------------------------------------------------------------------


def _scan(nonce: str, key: Identity) -> bytes:
    return wire.signed_datagram({"t": wire.SCAN, "nonce": nonce, "ts": time.time()}, lambda b: sign(key, b))


def test_a_signed_scan_is_answered_from_the_pc_address_and_forged_ones_are_ignored(tmp_path):
    async def body(room: Room, daemon: Daemon) -> None:
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as box_sock:
            box_sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            box_sock.bind(("127.0.0.1", 0))
            box_sock.setblocking(False)
            target = ("127.255.255.255", room.scan_port)
            box_sock.sendto(wire.plain_datagram({"t": wire.SCAN, "nonce": "0" * 16}), target)
            box_sock.sendto(_scan("1" * 16, make_identity("foreign box")), target)
            box_sock.sendto(b"\x00garbage", target)
            box_sock.sendto(_scan("2" * 16, room.box), target)
            data, source = await asyncio.wait_for(loop.sock_recvfrom(box_sock, 9000), T)
            reply = wire.open_plain_datagram(data)
            # The forged scans came first: a reply to them would be here before this one.
            with pytest.raises(BlockingIOError):
                box_sock.recvfrom(9000)
        assert source[0] == PC_IP
        assert reply["t"] == wire.SCAN_REPLY and reply["nonce"] == "2" * 16
        assert reply["fingerprint"] == room.pc.fingerprint == cert_fingerprint(reply["cert"].encode())
        assert reply["hostname"] == "KS-001" and reply["ips"] == [PC_IP]
        assert reply["mac"].startswith("02:") and len(reply["mac"]) == 17
        assert reply["mac"] == daemon.mac()  # stable: derived from the key
        assert daemon.scans_answered == 1 and daemon.scans_ignored == 3

    with_room(tmp_path, body)


# -- the link ------------------------------------------------------------------------------


def test_the_daemon_connects_and_says_hello_with_its_state(tmp_path):
    async def body(room: Room, daemon: Daemon) -> None:
        await daemon.wait_online(T)
        hello = room.fake.hellos[0]
        assert hello["fingerprint"] == room.pc.fingerprint and hello["hostname"] == "KS-001"
        assert hello["last_cmd_seq"] == 0 and hello["locked"] is False and hello["admission_no"] == ""
        assert room.fake.peers == [(room.pc.fingerprint, PC_IP)]  # from its bind_ip
        assert daemon.state.seat == "01"

    with_room(tmp_path, body)


@pytest.mark.parametrize("impostor", ["self-signed", "signed by the box key"])
def test_the_daemon_connects_only_to_the_pinned_box(tmp_path, impostor):
    other = make_identity("impostor") if impostor == "self-signed" else None

    async def body(room: Room, daemon: Daemon) -> None:
        await daemon.wait_until(lambda: daemon.connect_failures >= 2, T)
        assert not daemon.online and room.fake.hellos == []
        if impostor != "self-signed":
            assert "pinned" in daemon.last_error  # TLS accepted it; the fingerprint did not

    with_room(tmp_path, body, box=lambda room: other or issued_by(room.box))


def test_the_daemon_reconnects_after_the_box_drops_the_link(tmp_path):
    async def body(room: Room, daemon: Daemon) -> None:
        await daemon.wait_online(T)
        room.fake.drop()
        await daemon.wait_until(lambda: daemon.sessions >= 2 and daemon.online, T)
        assert room.fake.connections == 2

    with_room(tmp_path, body)


def test_go_offline_holds_the_link_down_until_go_online(tmp_path):
    async def body(room: Room, daemon: Daemon) -> None:
        await daemon.wait_online(T)
        daemon.go_offline()
        await daemon.wait_offline(T)
        with pytest.raises(ConnectionError):
            await daemon.request("login", admission_no="1001")
        daemon.go_online()
        await daemon.wait_online(T)
        assert daemon.sessions == 2

    with_room(tmp_path, body)


def test_the_box_view_of_the_candidate_at_the_seat_wins_at_welcome(tmp_path):
    async def main() -> None:
        room = Room(tmp_path)
        DaemonState(admission_no="1001", locked=True, notice="x").save(room.state_dir / "state.json")
        room.fake.welcome = {"seat": "07", "locked": False, "notice": "", "admission_no": ""}
        await room.start_box()
        daemon = room.daemon()
        await daemon.start()
        try:
            await daemon.wait_online(T)
            assert room.fake.hellos[0]["admission_no"] == "1001"
            assert (daemon.state.admission_no, daemon.state.locked, daemon.state.seat) == ("", False, "07")
            assert DaemonState.load(room.state_dir / "state.json") == daemon.state
        finally:
            await daemon.stop()
            await room.fake.stop()

    run(main)


def test_the_box_time_offset_comes_from_welcome_and_heartbeats(tmp_path):
    async def body(room: Room, daemon: Daemon) -> None:
        await daemon.wait_online(T)
        assert abs(daemon.box_time() - (time.time() + 1000)) < 1.0
        room.fake.send({"t": wire.HEARTBEAT, "box_time": time.time() - 50})
        await daemon.wait_until(lambda: daemon.clock_offset < 0, T)
        assert abs(daemon.box_time() - (time.time() - 50)) < 1.0

    async def main() -> None:
        room = Room(tmp_path)
        room.fake.clock_offset = 1000.0
        await room.start_box()
        daemon = room.daemon()
        await daemon.start()
        try:
            await body(room, daemon)
        finally:
            await daemon.stop()
            await room.fake.stop()

    run(main)


# -- commands ------------------------------------------------------------------------------


def test_a_command_is_applied_once_and_a_replay_does_nothing(tmp_path):
    async def body(room: Room, daemon: Daemon) -> None:
        await daemon.wait_online(T)
        ack = await room.fake.command(5, "message", text="请保持安静")
        assert ack["ok"] is True
        assert (await room.fake.command(5, "message", text="again"))["error"] == "replayed"
        assert (await room.fake.command(3, "start_client"))["error"] == "replayed"
        assert daemon.seen == [("message", {"text": "请保持安静"})]
        assert daemon.state.message == "请保持安静" and daemon.state.last_cmd_seq == 5
        assert room.backend.calls == []
        assert (await room.fake.command(6, "no_such_command"))["error"] == "unknown_command"
        assert daemon.state.last_cmd_seq == 6

    with_room(tmp_path, body)


def test_the_last_command_seq_survives_a_restart(tmp_path):
    async def main() -> None:
        room = Room(tmp_path)
        await room.start_box()
        daemon = room.daemon()
        await daemon.start()
        try:
            await daemon.wait_online(T)
            assert (await room.fake.command(7, "start_client"))["ok"]
        finally:
            await daemon.stop()
        again = room.daemon()
        await again.start()
        try:
            await again.wait_online(T)
            assert room.fake.hellos[-1]["last_cmd_seq"] == 7
            assert room.fake.hellos[-1]["app_running"] is True
            assert (await room.fake.command(7, "start_client"))["error"] == "replayed"
            assert room.backend.calls == ["start_app"]
        finally:
            await again.stop()
            await room.fake.stop()

    run(main)


def test_the_lock_survives_a_restart_and_the_box_view_wins_at_welcome(tmp_path):
    async def main() -> None:
        room = Room(tmp_path)
        await room.start_box()
        daemon = room.daemon()
        await daemon.start()
        try:
            await daemon.wait_online(T)
            assert (await room.fake.command(1, "lock", notice="请举手示意"))["ok"]
            assert daemon.state.locked and daemon.state.notice == "请举手示意"
        finally:
            await daemon.stop()
            await room.fake.stop()

        # Restarted with no box reachable: the lock is re-applied from state.json.
        room.fake = FakeBox(room.box, [room.pc.cert_pem])
        again = room.daemon()
        seen: list[tuple[str, dict[str, Any]]] = []
        again.add_listener(lambda event, data: seen.append((event, data)))
        await again.start()
        try:
            assert seen[0] == ("lock", {"locked": True, "notice": "请举手示意"})
            # The box comes back and has lifted the lock meanwhile: its view wins.
            room.fake.welcome = {"seat": "01", "locked": False, "notice": ""}
            port = json.loads((room.bundle / "daemon.json").read_text())["control_port"]
            await room.fake.start(port)
            await again.wait_online(15)
            assert room.fake.hellos[0]["locked"] is True
            assert not again.state.locked
            assert seen[-2:] == [("lock", {"locked": False, "notice": ""}), ("online", {})]
        finally:
            await again.stop()
            await room.fake.stop()

    run(main)


def test_power_commands_go_to_the_platform_after_the_ack(tmp_path):
    async def body(room: Room, daemon: Daemon) -> None:
        await daemon.wait_online(T)
        assert (await room.fake.command(1, "reboot"))["ok"]
        assert (await room.fake.command(2, "shutdown"))["ok"]
        await daemon.wait_until(lambda: room.backend.calls == ["reboot", "shutdown"], T)

    with_room(tmp_path, body)


def test_envcheck_answers_with_the_platform_probe(tmp_path):
    async def body(room: Room, daemon: Daemon) -> None:
        await daemon.wait_online(T)
        ack = await room.fake.command(1, "envcheck")
        report = ack["result"]
        assert ack["ok"] and room.backend.calls == ["probe"]
        assert {"os", "cpu_cores", "memory_mb", "free_disk_mb", "screen", "software"} <= set(report)
        assert {"daemon_version", "virtual_machine", "remote_control", "pc_time"} <= set(report)
        assert abs(report["pc_time"] - time.time()) < 5
        assert report["software"] == []  # nothing asked about
        room.backend.lacks = {"WPS"}
        asked = ["Chrome", "WPS", "../../bin/sh", "C:\\x.exe", 7, "x" * 65]
        ack = await room.fake.command(2, "envcheck", software=asked)
        assert ack["result"]["software"] == ["Chrome"], "the names it has; paths and junk are not asked about"

    with_room(tmp_path, body)


def test_init_wipes_the_journal_and_the_candidate_but_never_reuses_a_seq(tmp_path):
    async def body(room: Room, daemon: Daemon) -> None:
        await daemon.wait_online(T)
        daemon.state.admission_no = "1001"
        for q in ("1", "2"):
            daemon.save_answer("1001", "1", q, "A")
        await room.fake.expect(wire.JOURNAL)  # sent, never acknowledged
        work = daemon.state_dir / "work" / "1001" / "P01" / "q01"
        work.mkdir(parents=True)
        (work / "index.html").write_text("作品")
        (daemon.state_dir / "app-state.json").write_text("{}")
        assert (await room.fake.command(1, "lock", notice="x"))["ok"]
        ack = await room.fake.command(2, "init", uninstall=True)
        assert ack["ok"]
        await daemon.wait_until(lambda: room.backend.uninstalled, T)
        assert daemon.state.admission_no == "" and daemon.state.locked  # the room's state stays
        assert daemon.journal.answers("1001") == {}
        assert daemon.journal.unacked() == []
        assert not (daemon.state_dir / "work").exists() and not (daemon.state_dir / "app-state.json").exists()
        assert daemon.save_answer("1002", "1", "1", "B") == 3
        assert (room.bundle / "box.crt").exists()

    with_room(tmp_path, body)


def test_force_logout_clears_the_candidate(tmp_path):
    async def body(room: Room, daemon: Daemon) -> None:
        await daemon.wait_online(T)
        daemon.state.admission_no = "1001"
        assert (await room.fake.command(1, "force_logout", reason="断点续考"))["ok"]
        assert daemon.state.admission_no == "" and daemon.state.logout_reason == "断点续考"

    with_room(tmp_path, body)


# -- the journal ---------------------------------------------------------------------------


def test_a_journal_entry_is_marked_acked_only_after_the_jack(tmp_path):
    async def body(room: Room, daemon: Daemon) -> None:
        await daemon.wait_online(T)
        seq = daemon.save_answer("1001", "1", "1", ["A", "C"])
        frame = await room.fake.expect(wire.JOURNAL)
        [entry] = frame["entries"]
        assert entry["seq"] == seq and entry["kind"] == "answer" and entry["admission_no"] == "1001"
        assert entry["payload"] == {"subject": "1", "question": "1", "value": ["A", "C"], "aseq": 1}
        assert daemon.acked_upto() == 0
        room.fake.send({"t": wire.JOURNAL_ACK, "upto": seq, "refused": []})
        await daemon.wait_until(lambda: daemon.acked_upto() == seq, T)

    with_room(tmp_path, body)


def test_one_frame_in_flight_of_at_most_journal_batch_entries(tmp_path):
    n = JOURNAL_BATCH

    async def body(room: Room, daemon: Daemon) -> None:
        for q in range(n + 20):
            daemon.save_answer("1001", "1", str(q), "A")
        await daemon.wait_online(T)
        first = await room.fake.expect(wire.JOURNAL)
        assert [e["seq"] for e in first["entries"]] == list(range(1, n + 1))
        assert room.fake.frames[wire.JOURNAL].empty()
        room.fake.send({"t": wire.JOURNAL_ACK, "upto": n, "refused": [{"seq": 7, "code": "not_in_exam"}]})
        second = await room.fake.expect(wire.JOURNAL)
        assert [e["seq"] for e in second["entries"]] == list(range(n + 1, n + 21))
        room.fake.send({"t": wire.JOURNAL_ACK, "upto": n + 20, "refused": []})
        await daemon.wait_synced(T)
        assert daemon.refused == [{"seq": 7, "code": "not_in_exam"}]

    with_room(tmp_path, body)


def test_unacked_entries_are_sent_again_after_the_link_drops(tmp_path):
    async def body(room: Room, daemon: Daemon) -> None:
        await daemon.wait_online(T)
        seqs = [daemon.save_answer("1001", "1", str(q), "B") for q in range(3)]
        seqs.append(daemon.record_event("1001", "rules_read", {"page": 2}))
        first = await room.fake.expect(wire.JOURNAL)
        assert [e["seq"] for e in first["entries"]] == seqs
        # The box commits the first two (group commit), then the link drops.
        room.fake.send({"t": wire.JOURNAL_ACK, "upto": seqs[1], "refused": []})
        await daemon.wait_until(lambda: daemon.acked_upto() == seqs[1], T)
        room.fake.drop()
        again = await room.fake.expect(wire.JOURNAL)
        assert [e["seq"] for e in again["entries"]] == seqs[2:]
        assert again["entries"][-1]["payload"] == {"kind": "rules_read", "detail": {"page": 2}}
        room.fake.send({"t": wire.JOURNAL_ACK, "upto": seqs[-1], "refused": []})
        await daemon.wait_synced(T)
        assert room.fake.connections == 2

    with_room(tmp_path, body)


def test_an_entry_saved_locally_survives_a_daemon_restart_and_reaches_the_box(tmp_path):
    async def main() -> None:
        room = Room(tmp_path)
        await room.start_box()
        daemon = room.daemon()
        await daemon.start()
        try:
            await daemon.wait_online(T)
            seq = daemon.save_answer("1001", "2", "7", "D")
            await room.fake.expect(wire.JOURNAL)  # the box never acknowledges it
        finally:
            await daemon.stop()
        room.fake.auto_jack = True
        again = room.daemon()
        await again.start()
        try:
            frame = await room.fake.expect(wire.JOURNAL)
            assert [e["seq"] for e in frame["entries"]] == [seq]
            await again.wait_synced(T)
            assert again.acked_upto() == seq
        finally:
            await again.stop()
            await room.fake.stop()

    run(main)


def test_a_jack_beyond_what_was_sent_marks_only_what_was_sent(tmp_path):
    async def body(room: Room, daemon: Daemon) -> None:
        await daemon.wait_online(T)
        seq = daemon.save_answer("1001", "1", "1", "A")
        await room.fake.expect(wire.JOURNAL)
        room.fake.send({"t": wire.JOURNAL_ACK, "upto": seq + 100, "refused": []})
        await daemon.wait_until(lambda: daemon.acked_upto() == seq, T)
        later = daemon.save_answer("1001", "1", "2", "A")
        assert daemon.acked_upto() == seq < later

    with_room(tmp_path, body)


# -- requests ------------------------------------------------------------------------------


def test_login_stores_the_box_answers_and_aseq_continues_above_them(tmp_path):
    async def body(room: Room, daemon: Daemon) -> None:
        await daemon.wait_online(T)
        task = asyncio.create_task(daemon.request("login", admission_no="1001"))
        req = await room.fake.expect(wire.REQUEST)
        assert req["op"] == "login" and req["args"] == {"admission_no": "1001"}
        answers = [{"subject": "1", "question": "3", "value": "C", "seq": 41}]
        room.fake.send({"t": wire.RESPONSE, "id": req["id"], "ok": True, "result": {"answers": answers}})
        assert (await asyncio.wait_for(task, T))["answers"] == answers
        assert daemon.state.admission_no == "1001"
        assert daemon.journal.answers("1001") == {("1", "3"): ("C", 41)}
        daemon.save_answer("1001", "1", "4", "A")
        frame = await room.fake.expect(wire.JOURNAL)
        assert frame["entries"][0]["payload"]["aseq"] == 42

    with_room(tmp_path, body)


def test_a_refused_request_raises_box_refused(tmp_path):
    async def body(room: Room, daemon: Daemon) -> None:
        await daemon.wait_online(T)
        task = asyncio.create_task(daemon.request("raise_hand", admission_no="1001"))
        req = await room.fake.expect(wire.REQUEST)
        err = {"code": "not_logged_in", "zh": "考生未登录", "en": "not logged in"}
        room.fake.send({"t": wire.RESPONSE, "id": req["id"], "ok": False, "error": err})
        with pytest.raises(BoxRefused) as info:
            await asyncio.wait_for(task, T)
        assert (info.value.code, info.value.zh, info.value.en) == (
            "not_logged_in",
            "考生未登录",
            "not logged in",
        )

    with_room(tmp_path, body)


def test_a_request_fails_with_connection_error_when_the_link_drops(tmp_path):
    async def body(room: Room, daemon: Daemon) -> None:
        await daemon.wait_online(T)
        task = asyncio.create_task(daemon.request("begin", admission_no="1001"))
        await room.fake.expect(wire.REQUEST)
        room.fake.drop()
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(task, T)

    with_room(tmp_path, body)


# -- the simulated fleet ---------------------------------------------------------------------


def test_a_simulated_fleet_answers_the_scan_comes_online_and_syncs(tmp_path):
    count = 3
    ips = ["127.0.10.11", "127.0.10.12", "127.0.10.13"]

    async def main() -> None:
        box = make_identity("box")
        scan_port = free_udp_port()
        fake = FakeBox(box, [])
        fake.auto_jack = True
        port = await fake.start()
        fleet = SimFleet(write_bundle(tmp_path / "bundle", box, port, scan_port), tmp_path / "fleet", count)
        for d in fleet.daemons:  # what the box does with each scan reply
            fake.trust(d.identity.cert_pem)
        await fleet.start()
        try:
            await fleet.wait_all_online(T)
            assert sorted(ip for _, ip in fake.peers) == ips
            assert [d.hostname for d in fleet.daemons] == ["KS-001", "KS-002", "KS-003"]
            loop = asyncio.get_running_loop()
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                s.bind(("127.0.0.1", 0))
                s.setblocking(False)
                s.sendto(_scan("ab" * 8, box), ("127.255.255.255", scan_port))
                replies = [await asyncio.wait_for(loop.sock_recvfrom(s, 9000), T) for _ in range(count)]
            assert sorted(src[0] for _, src in replies) == ips
            assert len({wire.open_plain_datagram(d)["mac"] for d, _ in replies}) == count

            fleet[1].state.admission_no = "1002"
            fleet.go_offline(1)
            await fleet[1].wait_offline(T)
            seqs = await fleet.answer(1, 5, rate=0)
            fleet.go_online(1)
            await fleet[1].wait_synced(T)
            assert fleet[1].acked_upto() == seqs[-1] == 5
            assert fleet[0].acked_upto() == 0
        finally:
            await fleet.stop()
            await fake.stop()

    run(main)


def test_the_system_probe_reports_every_envcheck_field(tmp_path):
    assert SystemBackend(disk_path=tmp_path).probe(["sh", "no-such-program-here"])["software"] == ["sh"]
    report = SystemBackend(disk_path=tmp_path, software=["sh"]).probe()
    assert set(report) == {
        "os",
        "cpu_cores",
        "memory_mb",
        "free_disk_mb",
        "screen",
        "software",
        "daemon_version",
        "virtual_machine",
        "remote_control",
        "pc_time",
    }
    assert report["cpu_cores"] >= 1 and report["memory_mb"] > 0 and report["free_disk_mb"] >= 0
    assert report["software"] == ["sh"] and isinstance(report["virtual_machine"], bool)
    assert isinstance(report["remote_control"], list) and isinstance(report["screen"], str)
