"""The daemon's local API for the answer app, against a real box room on loopback: the
token file, the hello, state pushes, requests forwarded to the box, the local
acknowledgements, journal rows written by another Journal (as the app process does),
reconnection across daemon restarts, refusals, and the app's supervision."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import re
import signal
import stat
import struct
import sys
from collections.abc import AsyncIterator
from typing import Any

import psutil
import pytest

from kiosk.common import wire
from kiosk.services.candidates import CLIENT_EVENTS
from stu_client import appapi
from stu_client.appapi import APP_EVENTS, STATE_FIELDS, AppApiError, AppLink
from stu_client.cli import split_command
from stu_client.daemon import Daemon
from stu_client.localstore import DaemonState, Journal
from stu_client.platform import RecordingBackend, SystemBackend, default_app_command
from tests.integration.test_daemon import Room, run
from tests.integration.test_room_network import box_answers
from tests.liveroom import LiveRoom

pytestmark = pytest.mark.timeout(120)

T = 10.0  # every wait's timeout


@contextlib.asynccontextmanager
async def app_link(daemon: Daemon, states: list[dict[str, Any]] | None = None) -> AsyncIterator[AppLink]:
    """An AppLink to the daemon's state folder, with its first state in."""
    link = AppLink(daemon.state_dir, on_state=states.append if states is not None else None)
    await link.start()
    try:
        await link.wait_state(bool, T)
        yield link
    finally:
        await link.stop()


async def raw_connection(daemon: Daemon) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", daemon.app_api.port)


async def closed_without_a_frame(reader: asyncio.StreamReader) -> bool:
    """The daemon closed the connection and sent nothing before."""
    try:
        async with asyncio.timeout(T):
            return await reader.read() == b""
    except ConnectionResetError:  # closed with our bytes unread: a reset, still nothing sent
        return True


def raw_frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


async def raw_request(daemon: Daemon, op: str, **args: Any) -> list[dict[str, Any]]:
    """The frames one request gets on a connection of its own, its answer last (the
    first state push left out)."""
    reader, writer = await raw_connection(daemon)
    try:
        wire.write_frame(writer, {"t": "app_hello", "token": daemon.app_api.token})
        await asyncio.wait_for(wire.read_frame(reader), T)
        wire.write_frame(writer, {"t": "req", "id": 7, "op": op, "args": args})
        frames = [await asyncio.wait_for(wire.read_frame(reader), T)]
        while frames[-1]["t"] != "res":
            frames.append(await asyncio.wait_for(wire.read_frame(reader), T))
        return frames
    finally:
        writer.close()


async def refused(link: AppLink, op: str, **args: Any) -> AppApiError:
    with pytest.raises(AppApiError) as info:
        await link.request(op, **args)
    return info.value


def log_kinds(log: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in log["log"] if e["kind"] == kind]


async def logged_in(room: LiveRoom, link: AppLink) -> tuple[str, dict[str, Any]]:
    """Session 1 running; the first candidate logged in and writing at PC 0 through the app."""
    people = await room.start_exam()
    no = people[0]["admission_no"]
    view = await link.request("login", admission_no=no)
    await link.request("begin")
    return no, view


# -- the token file and the hello ---------------------------------------------------------


def test_an_app_with_the_token_gets_the_state_at_once(tmp_path):
    async def story() -> None:
        async with LiveRoom(tmp_path, 1) as room:
            await room.seat_all()
            d = room.fleet[0]
            path = d.state_dir / "app-api.json"
            info = json.loads(path.read_text())
            assert info == {"port": d.app_api.port, "token": d.app_api.token, "pid": os.getpid()}
            assert re.fullmatch(r"[0-9a-f]{64}", info["token"])
            assert stat.S_IMODE(path.stat().st_mode) == 0o600

            reader, writer = await raw_connection(d)
            try:
                wire.write_frame(writer, {"t": "app_hello", "token": info["token"]})
                first = await asyncio.wait_for(wire.read_frame(reader), T)
            finally:
                writer.close()
            assert first["t"] == "state" and first["v"] == wire.WIRE_VERSION
            assert tuple(first["state"]) == STATE_FIELDS

            states: list[dict[str, Any]] = []
            async with app_link(d, states) as link:
                state = link.state
                assert link.connected and states == [state]
                assert tuple(state) == STATE_FIELDS
                assert state["online"] is True and state["seat"] == "001"
                assert (state["locked"], state["message_id"], state["admission_no"]) == (False, 0, "")
                assert state["acked_upto"] == d.acked_upto()
                assert abs(state["box_offset"] - d.clock_offset) <= appapi.OFFSET_SLACK_S

    asyncio.run(story())


def test_a_wrong_token_or_a_malformed_frame_gets_nothing_and_is_closed(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(appapi, "HELLO_TIMEOUT_S", 0.5)
    caplog.set_level(logging.DEBUG, logger="stu_client.appapi")
    attempts = [
        wire.encode({"t": "app_hello", "token": "0" * 64}),
        wire.encode({"t": "app_hello"}),
        wire.encode({"t": "app_hello", "token": 12345}),
        raw_frame(b'{"v":1,"t":"app_hello","token":"\\ud800"}'),  # a lone surrogate
        wire.encode({"t": "req", "id": 1, "op": "login", "args": {"admission_no": "1"}}),
        raw_frame(b"\xff not JSON"),
        struct.pack(">I", 2 * 1024 * 1024) + b"{" * 1000,  # over 1 MiB: refused unread
        b"",  # nothing at all: closed after the hello timeout
    ]

    async def story() -> None:
        async with LiveRoom(tmp_path, 1) as room:
            d = room.fleet[0]
            for data in attempts:
                reader, writer = await raw_connection(d)
                try:
                    writer.write(data)
                    assert await closed_without_a_frame(reader), data[:40]
                finally:
                    writer.close()
            # A good hello, then a request that is not one: the state, then closed.
            reader, writer = await raw_connection(d)
            try:
                wire.write_frame(writer, {"t": "app_hello", "token": d.app_api.token})
                assert (await asyncio.wait_for(wire.read_frame(reader), T))["t"] == "state"
                wire.write_frame(writer, {"t": "req", "id": "one", "op": "wake"})
                assert await closed_without_a_frame(reader)
            finally:
                writer.close()
            assert d.app_api.refusals == len(attempts) + 1
            async with app_link(d) as link:  # the daemon serves on
                assert await link.request("wake") == {}

    asyncio.run(story())
    lines = [r for r in caplog.records if "refused answer-app connection" in r.getMessage()]
    assert len(lines) == len(attempts) + 1, "one line per refused connection"
    assert any(r.levelno == logging.WARNING for r in lines)


def test_at_most_four_app_connections_at_once(tmp_path):
    async def hello(d: Daemon) -> tuple[asyncio.StreamWriter, bool]:
        reader, writer = await raw_connection(d)
        wire.write_frame(writer, {"t": "app_hello", "token": d.app_api.token})
        try:
            async with asyncio.timeout(T):
                return writer, (await wire.read_frame(reader))["t"] == "state"
        except (asyncio.IncompleteReadError, ConnectionResetError):
            return writer, False

    async def story() -> None:
        async with LiveRoom(tmp_path, 1) as room:
            d = room.fleet[0]
            opened = [await hello(d) for _ in range(appapi.MAX_CLIENTS)]
            try:
                assert all(ok for _, ok in opened)
                extra, ok = await hello(d)
                extra.close()
                assert not ok and d.app_api.refusals == 1
                opened.pop()[0].close()
                # The daemon sees the close when it reads: poll with a deadline.
                async with asyncio.timeout(T):
                    while True:
                        writer, ok = await hello(d)
                        opened.append((writer, ok))
                        if ok:
                            break
                        opened.pop()[0].close()
                        await asyncio.sleep(0.05)
            finally:
                for writer, _ in opened:
                    writer.close()

    asyncio.run(story())


# -- state pushes and the local acknowledgements -------------------------------------------


def test_a_lock_reaches_the_app_and_its_acknowledgement_survives_a_daemon_restart(tmp_path):
    async def story() -> None:
        async with LiveRoom(tmp_path, 1) as room:
            await room.seat_all()
            states: list[dict[str, Any]] = []
            async with app_link(room.fleet[0], states) as link:
                no, _ = await logged_in(room, link)
                d = room.fleet[0]
                await room.op("lock", [no])
                s = await link.wait_state(lambda s: s["locked"], T)
                assert s["notice"] == d.state.notice and "锁定" in s["notice"]
                assert s["lock_acknowledged"] is False
                *pushed, res = await raw_request(d, "ack_lock")
                assert res["ok"] and res["result"] == {"lock_acknowledged": True}
                assert pushed and pushed[-1]["state"]["lock_acknowledged"] is True, (
                    "the state before the answer"
                )
                await link.wait_state(lambda s: s["lock_acknowledged"], T)
                assert await link.request("ack_lock") == {"lock_acknowledged": True}  # a second tap
                last = d.journal.last_seq()
                await link.wait_state(lambda s: s["acked_upto"] >= last, T)
                assert len(log_kinds(await room.op("candidate_log", no), "lock_acknowledged")) == 1

                again = await room.fleet.restart(0)
                await link.wait_state(lambda s: link.connections == 2 and s.get("online") is True, T)
                assert link.state["lock_acknowledged"] is True
                assert DaemonState.load(again.state_path).lock_acknowledged is True
                assert {} in states, "the app was told the daemon went away"

                await room.op("lock", [no])  # a new lock is confirmed anew
                s = await link.wait_state(lambda s: s["locked"] and not s["lock_acknowledged"], T)
                await link.request("ack_lock")
                await room.op("lock", [no], unlock=True)
                await link.wait_state(lambda s: not s["locked"], T)
                assert (await refused(link, "ack_lock")).code == "not_locked"
                await again.wait_synced(T)
                assert len(log_kinds(await room.op("candidate_log", no), "lock_acknowledged")) == 2

    asyncio.run(story())


def test_a_welcome_keeps_the_confirmation_of_the_same_lock_and_drops_it_for_another(tmp_path):
    """What the box holds at welcome decides: the same lock and notice keep the
    candidate's confirmation, another notice (or a lock missed offline) needs a new one."""

    async def main() -> None:
        room = Room(tmp_path)
        held = DaemonState(locked=True, notice="请停止作答", lock_acknowledged=True)
        held.save(room.state_dir / "state.json")
        room.fake.welcome = {"seat": "01", "locked": True, "notice": "请停止作答"}
        await room.start_box()
        d = room.daemon()
        await d.start()
        try:
            await d.wait_online(T)
            assert d.state.lock_acknowledged is True
            room.fake.welcome = {"seat": "01", "locked": True, "notice": "请举手示意监考员"}
            room.fake.drop()
            await d.wait_until(lambda: d.sessions == 2 and d.online, T)
            assert (d.state.notice, d.state.lock_acknowledged) == ("请举手示意监考员", False)
            d.acknowledge_lock()
            assert (await room.fake.command(1, "lock", notice="请举手示意监考员"))["ok"]
            assert d.state.lock_acknowledged is False, "a lock command is confirmed anew"
            assert DaemonState.load(d.state_path).lock_acknowledged is False
        finally:
            await d.stop()
            await room.fake.stop()

    run(main)


def test_an_initialisation_forgets_the_message_but_never_reuses_its_number(tmp_path):
    async def main() -> None:
        room = Room(tmp_path)
        await room.start_box()
        d = room.daemon()
        await d.start()
        try:
            await d.wait_online(T)
            assert (await room.fake.command(1, "message", text="请保持安静"))["ok"]
            d.acknowledge_message(1)
            assert (d.state.message_id, d.state.message_acknowledged) == (1, True)
            assert (await room.fake.command(2, "message", text="请检查答题卡"))["ok"]
            assert (d.state.message_id, d.state.message_acknowledged) == (2, False), "a new one, unread"
            d.acknowledge_message(2)
            assert (await room.fake.command(3, "init"))["ok"]
            assert (d.state.message, d.state.message_id, d.state.message_acknowledged) == ("", 2, False)
            assert (await room.fake.command(4, "message", text="考试开始"))["ok"]
            saved = DaemonState.load(d.state_path)
            assert (saved.message, saved.message_id, saved.message_acknowledged) == ("考试开始", 3, False)
        finally:
            await d.stop()
            await room.fake.stop()

    run(main)


def test_messages_are_numbered_and_acknowledged_once(tmp_path):
    async def story() -> None:
        async with LiveRoom(tmp_path, 1) as room:
            await room.seat_all()
            async with app_link(room.fleet[0]) as link:
                no, _ = await logged_in(room, link)
                d = room.fleet[0]
                assert (await refused(link, "ack_message")).code == "no_message"
                await room.op("message", "请检查答题卡")
                s = await link.wait_state(lambda s: s["message_id"] == 1, T)
                assert (s["message"], s["message_acknowledged"]) == ("请检查答题卡", False)
                await room.op("message", "还有十五分钟")
                s = await link.wait_state(lambda s: s["message_id"] == 2, T)
                assert s["message"] == "还有十五分钟"
                stale = await refused(link, "ack_message", message_id=1)
                assert stale.code == "stale_message" and stale.zh
                assert not link.state["message_acknowledged"]
                done = await link.request("ack_message", message_id=2)
                assert done == {"message_acknowledged": True, "message_id": 2}
                assert link.state["message_acknowledged"] is True
                await link.request("ack_message")  # again: nothing more recorded
                await d.wait_synced(T)
                acks = log_kinds(await room.op("candidate_log", no), "message_acknowledged")
                assert len(acks) == 1
                assert DaemonState.load(d.state_path).message_id == 2

    asyncio.run(story())


# -- requests to the box ---------------------------------------------------------------------


def test_login_through_the_app_returns_the_box_view_and_the_state_names_the_candidate(tmp_path):
    async def story() -> None:
        async with LiveRoom(tmp_path, 1) as room:
            await room.seat_all()
            async with app_link(room.fleet[0]) as link:
                people = await room.start_exam()
                no = people[0]["admission_no"]
                view = await link.request("login", admission_no=no)
                assert view["admission_no"] == no and view["state"] == "logged_in"
                assert view["papers"] and view["deadline"] > view["start"] and view["seat"] == "001"
                assert link.state["admission_no"] == no
                assert link.state["deadline"] == view["deadline"] and link.state["deadline_for"] == no
                begun = await link.request("begin")  # the candidate logged in is the default
                assert begun["state"] == "in_exam"
                seq = (await link.request("event", kind="rules_read", detail={"page": 2}))["seq"]
                await link.wait_state(lambda s: s["acked_upto"] >= seq, T)
                [read] = log_kinds(await room.op("candidate_log", no), "rules_read")
                assert read["ip"] == "127.0.10.11"
                usb = tmp_path / "stick"
                usb.mkdir()
                exported = await link.request("export", to=str(usb))
                assert exported["path"].startswith(str(usb / f"answer-{no}-s1-"))
                assert (usb / exported["path"]).is_file()
                stranger = await refused(link, "login", admission_no="0000000000")
                assert stranger.code not in ("offline", "internal") and stranger.zh, "the box's own refusal"

    asyncio.run(story())


def test_requests_fail_with_offline_while_the_box_is_unreachable(tmp_path):
    async def story() -> None:
        async with LiveRoom(tmp_path, 1) as room:
            await room.seat_all()
            d = room.fleet[0]
            async with app_link(d) as link:
                d.go_offline()
                await link.wait_state(lambda s: s["online"] is False, T)
                for op, args in (("login", {"admission_no": "1001"}), ("submit", {}), ("raise_hand", {})):
                    err = await refused(link, op, **args)
                    assert (err.code, err.zh) == ("offline", appapi.OFFLINE_ZH), op
                d.go_online()
                await link.wait_state(lambda s: s["online"] is True, T)

    asyncio.run(story())


def test_a_journal_row_written_by_another_journal_reaches_the_box_on_wake(tmp_path):
    async def story() -> None:
        async with LiveRoom(tmp_path, 1) as room:
            room.fleet[0].journal_poll_s = 600.0  # only the wake can send the row in time
            await room.seat_all()
            async with app_link(room.fleet[0]) as link:
                no, _ = await logged_in(room, link)
                d = room.fleet[0]
                app_journal = Journal(d.state_dir / "journal.db")  # what the app process holds
                app_journal.open()
                try:
                    seq, aseq = app_journal.save_answer(no, "T01", "q1", "B")
                finally:
                    app_journal.close()
                assert await link.request("wake") == {}
                s = await link.wait_state(lambda s: s["acked_upto"] >= seq, T)
                assert s["acked_upto"] == d.acked_upto() >= seq
                assert box_answers(room)[(no, "q1")] == '"B"'
                assert aseq == 1

    asyncio.run(story())


def test_the_app_link_follows_the_daemon_through_a_restart(tmp_path):
    async def story() -> None:
        async with LiveRoom(tmp_path, 1) as room:
            await room.seat_all()
            d = room.fleet[0]
            states: list[dict[str, Any]] = []
            async with app_link(d, states) as link:
                old_token = d.app_api.token
                await d.stop()
                await link.wait_state(lambda s: not link.connected, T)
                assert states[-1] == {} and link.state == {}
                assert not (d.state_dir / "app-api.json").exists(), "a clean stop takes its token away"
                down = await refused(link, "wake")
                assert (down.code, down.zh) == ("daemon_down", appapi.DAEMON_DOWN_ZH)

                again = await room.fleet.restart(0)
                await link.wait_state(lambda s: link.connected and s.get("online") is True, T)
                assert again.app_api.token != old_token and link.connections == 2
                assert await link.request("wake") == {}

    asyncio.run(story())


def test_bad_arguments_and_unknown_ops_are_refused_and_change_nothing(tmp_path):
    cases = [
        ("login", {}, "bad_args"),
        ("login", {"admission_no": 5}, "bad_args"),
        ("login", {"admission_no": "1001", "seat": "1"}, "bad_args"),
        ("login", {"admission_no": "9" * 65}, "bad_args"),
        ("begin", {"admission_no": None}, "bad_args"),
        ("wake", {"now": True}, "bad_args"),
        ("ack_message", {"message_id": "1"}, "bad_args"),
        ("ack_message", {"message_id": True}, "bad_args"),
        ("export", {}, "bad_args"),
        ("export", {"to": ""}, "bad_args"),
        ("export", {"to": ["/media"]}, "bad_args"),
        ("event", {"kind": "lock_acknowledged"}, "bad_event"),
        ("event", {"kind": "answers_saved"}, "bad_event"),
        ("event", {"kind": 7}, "bad_args"),
        ("event", {"kind": "rules_read", "detail": "page 2"}, "bad_args"),
        ("event", {"kind": "rules_read", "detail": {"page": {"n": 2}}}, "bad_args"),
        ("drop_tables", {}, "unknown_op"),
        ("export", {"to": "/"}, "no_candidate"),  # the export's own refusal
        ("ack_lock", {}, "not_locked"),
    ]

    async def story() -> None:
        async with LiveRoom(tmp_path, 1) as room:
            d = room.fleet[0]
            async with app_link(d) as link:
                before = (d.journal.last_seq(), dataclasses.asdict(d.state), link.state)
                for op, args, code in cases:
                    err = await refused(link, op, **args)
                    assert err.code == code and err.zh, (op, args, err)
                assert (d.journal.last_seq(), dataclasses.asdict(d.state), link.state) == before
                assert not d.state_path.exists(), "nothing was saved"
                assert link.connected and link.connections == 1, "a refusal keeps the connection"

    asyncio.run(story())


def test_the_app_may_journal_exactly_the_box_client_events_without_their_own_op():
    assert APP_EVENTS < CLIENT_EVENTS
    with_own_op = CLIENT_EVENTS - APP_EVENTS
    assert with_own_op == {"lock_acknowledged", "message_acknowledged"}


# -- supervision ---------------------------------------------------------------------------


def test_the_daemon_restarts_the_app_that_died_until_the_box_closes_it(tmp_path):
    sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
    backend = SystemBackend(app_command=sleeper, disk_path=tmp_path)

    async def story() -> None:
        async with LiveRoom(tmp_path, 2) as room:
            await room.seat_all()
            await room.start_exam()  # the environment check runs on the recording backends' report
            d = await room.fleet.restart(0, platform=backend)  # the same PC, now starting real processes
            await d.wait_online(T)
            await room.wait_all_seats_online(T)
            recording = room.fleet[1].platform
            assert isinstance(recording, RecordingBackend)
            assert len((await room.op("start_clients"))["ok"]) == 2
            await d.wait_until(lambda: backend.app_pid is not None, T)
            first = backend.app_pid
            assert first is not None and d.app_restarts == 0
            async with app_link(d) as link:
                assert link.state["app_running"] is True

            os.kill(first, signal.SIGKILL)
            await d.wait_until(lambda: backend.app_pid not in (None, first), T)
            second = backend.app_pid
            assert d.app_restarts == 1 and not psutil.pid_exists(first), "the dead child was reaped"

            recording.app_died()
            await room.fleet[1].wait_until(lambda: room.fleet[1].app_restarts == 1, T)
            assert recording.app_running and recording.calls.count("start_app") == 2

            await room.op("close_clients")
            await d.wait_until(lambda: not d.state.app_running, T)
            assert backend.app_pid is None and second is not None and not psutil.pid_exists(second)
            checks = d.app_checks
            await d.wait_until(lambda: d.app_checks >= checks + 2, T)  # two rounds that did nothing
            assert d.app_restarts == 1 and backend.app_pid is None

    try:
        asyncio.run(story())
    finally:
        backend.close_app()


def test_a_daemon_that_comes_back_starts_the_app_the_box_wanted(tmp_path):
    async def story() -> None:
        async with LiveRoom(tmp_path, 1) as room:
            await room.seat_all()
            await room.start_exam()
            await room.op("start_clients")
            await room.fleet[0].wait_until(lambda: room.fleet[0].state.app_running, T)
            fresh = RecordingBackend()  # the PC rebooted: no app runs
            again = await room.fleet.restart(0, platform=fresh)
            await again.wait_until(lambda: again.app_restarts == 1, T)
            assert fresh.calls == ["start_app"] and fresh.app_running

    asyncio.run(story())


def test_the_app_command_is_this_installation_unless_given_as_shell_words(tmp_path, monkeypatch):
    state = tmp_path / "考试机 状态"
    module = [sys.executable, "-m", "stu_client.cli"]
    assert default_app_command(state) == [*module, "app", "--state", str(state)]
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert default_app_command(state) == [sys.executable, "app", "--state", str(state)]
    given = split_command("/opt/exam/app --state '/srv/exam pc' --full-screen")
    assert given == ["/opt/exam/app", "--state", "/srv/exam pc", "--full-screen"]
