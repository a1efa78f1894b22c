"""The site's database on SQLite and on PostgreSQL: importing the plan, registration
kept across imports, issued codes, bytes kept byte for byte."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from peewee import Database

from kiosk.core.errors import Refused
from kiosk.site import store
from tests.site.plan import CODES, LATER_ROOM, OPEN_ROOM, Plan


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = store.connect(db_url)
    yield database
    database.close()


def _dump() -> dict[str, list[tuple]]:
    """Every row of every table, bytes as bytes, in a stable order."""
    out = {}
    for model in store.MODELS:
        rows = []
        for row in model.select().order_by(*model._meta.get_primary_keys()).tuples():
            rows.append(tuple(bytes(v) if isinstance(v, memoryview) else v for v in row))
        out[model._meta.table_name] = rows
    return out


def test_importing_the_plan_loads_rooms_and_authorisations_byte_for_byte(db: Database, plan: Plan):
    store.import_plan(plan.folder)
    room = store.room(OPEN_ROOM)
    assert room is not None and room.registration_code == CODES[OPEN_ROOM]
    assert store.blob(room.exam) == plan.exam(OPEN_ROOM)
    assert store.blob(room.sheet) == (plan.folder / "rooms" / OPEN_ROOM / "room-sheet.json").read_bytes()
    assert room.box_cert is None
    auth = store.authorisation(LATER_ROOM, 2)
    assert auth is not None and store.blob(auth.data) == plan.authorisation(LATER_ROOM, 2)
    assert auth.valid_from == plan.now + 100  # a double, not a 4-byte real
    assert store.authorisation(OPEN_ROOM, 3) is None


def test_importing_the_same_plan_again_changes_nothing_and_keeps_the_registered_box(db: Database, plan: Plan):
    store.import_plan(plan.folder)
    store.register_box(OPEN_ROOM, "PEM", "f" * 64, plan.now)
    before = _dump()
    store.import_plan(plan.folder)
    assert _dump() == before
    assert store.room(OPEN_ROOM).box_fingerprint == "f" * 64


def test_a_changed_plan_updates_its_rooms_and_keeps_the_registered_box(db: Database, plan: Plan):
    store.import_plan(plan.folder)
    store.register_box(OPEN_ROOM, "PEM", "f" * 64, plan.now)
    path = plan.folder / "site" / "plan.json"
    doc = json.loads(path.read_text())
    doc["rooms"][0]["download_until"] = plan.now + 7200
    path.write_text(json.dumps(doc))
    store.import_plan(plan.folder)
    room = store.room(OPEN_ROOM)
    assert room.download_until == plan.now + 7200 and room.box_fingerprint == "f" * 64


@pytest.mark.parametrize(
    "damage",
    [
        lambda doc: doc.update(version=1),
        lambda doc: doc.pop("site_secret"),
        lambda doc: doc["rooms"][0].update(room_code="19999"),
        lambda doc: doc["rooms"][0].update(publish_at="soon"),
        lambda doc: doc["rooms"][0]["sessions"][0].update(number=True),
        lambda doc: doc["rooms"][0].update(exam="rooms/missing.json"),
    ],
)
def test_a_damaged_plan_is_refused_and_imports_nothing(db: Database, plan: Plan, damage):
    path = plan.folder / "site" / "plan.json"
    doc = json.loads(path.read_text())
    damage(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(Refused) as caught:
        store.import_plan(plan.folder)
    assert caught.value.code == "plan_invalid"
    assert store.Room.select().count() == 0


def test_issued_codes_are_kept_per_room_and_session(db: Database, plan: Plan):
    store.record_issued_code(OPEN_ROOM, 1, "extra_time", "123456", 300, "AAAAAAAA", plan.now)
    store.record_issued_code(OPEN_ROOM, 2, "late_start", "222222", 0, "BBBBBBBB", plan.now)
    store.record_issued_code(LATER_ROOM, 1, "reexam", "333333", 0, "CCCCCCCC", plan.now)
    assert store.issued_codes(OPEN_ROOM, 1) == [
        {
            "purpose": "extra_time",
            "challenge": "123456",
            "amount": 300,
            "code": "AAAAAAAA",
            "issued_at": plan.now,
        }
    ]
    assert [c["code"] for c in store.issued_codes(LATER_ROOM, 1)] == ["CCCCCCCC"]


def test_an_upload_row_is_created_updated_and_completed(db: Database, plan: Plan, tmp_path: Path):
    store.import_plan(plan.folder)
    sha = "a" * 64
    store.save_upload(OPEN_ROOM, sha, 10, 4, plan.now)
    store.save_upload(OPEN_ROOM, sha, 10, 8, plan.now + 1)
    row = store.upload(OPEN_ROOM, sha)
    assert (row.received, row.complete, row.started_at, row.updated_at) == (8, False, plan.now, plan.now + 1)
    store.save_upload(OPEN_ROOM, sha, 10, 10, plan.now + 2, tmp_path / "r.json", {"matched": []})
    row = store.upload(OPEN_ROOM, sha)
    assert row.complete and row.stored_path == str(tmp_path / "r.json")
    assert json.loads(row.reconciliation) == {"matched": []} and row.completed_at == plan.now + 2
    store.drop_upload(OPEN_ROOM, sha)
    assert store.upload(OPEN_ROOM, sha) is None
