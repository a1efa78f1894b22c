"""Schema versions: a room database of every released schema opens with today's code.

tests/data/room-v1.sqlite is a room of release 1 after a whole demo session (20 seats,
two sessions of 20, session 1 run to the end): never regenerate it, add a file per
release instead."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from kiosk.common.clock import ManualClock
from kiosk.core.errors import Refused
from kiosk.services.bootstrap import build
from kiosk.services.ports import Ports
from kiosk.services.simulated import SimulatedSeats
from kiosk.settings import load
from kiosk.store.schema import SCHEMA_VERSION, open_room_db

DATA = Path(__file__).parent.parent / "data"
V1_LAST_HASH = "17b239d165506ca9ba3d029850a5b9efaf6437307b11719fe067dffeb8834731"


def test_a_release_1_room_opens_upgraded_with_its_data_and_chain_intact(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(DATA / "room-v1.sqlite", home / "room.db")
    room = build(
        load(home=str(home), min_free_bytes=1024**2), Ports(seats=SimulatedSeats(20)), ManualClock(2e9)
    )
    assert room.db.execute_sql("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert room.db.execute_sql("PRAGMA integrity_check").fetchone()[0] == "ok"
    chain = room.log_verify()
    assert chain["ok"] and chain["count"] == 946
    table = room.verify(1)
    assert table["totals"]["total"] == 20 and table["ok"]
    assert len(room.seats()) == 20 and room.exam_summary()["sessions"][0]["state"] == "已结束"
    tables = {r[0] for r in room.db.execute_sql("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "site_trust" in tables, "release 2 adds the pinned exam-site certificate"
    room.user_set("张三", "15000000001")  # still writable, and the chain goes on from release 1
    con = sqlite3.connect(home / "room.db")
    try:
        assert con.execute("SELECT prev_hash FROM event WHERE id = 947").fetchone()[0] == V1_LAST_HASH
    finally:
        con.close()
    room.db.close()


def test_a_database_from_a_newer_release_is_refused_untouched(tmp_path):
    path = tmp_path / "room.db"
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.close()
    with pytest.raises(Refused) as err:
        open_room_db(path)
    assert err.value.code == "schema_too_new" and "升级" in err.value.zh
    con = sqlite3.connect(path)
    try:
        assert con.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    finally:
        con.close()
