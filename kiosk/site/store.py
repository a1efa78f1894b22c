"""The exam site's own database (peewee, SQLite or PostgreSQL): the rooms of the site plan
with their packages and registered boxes, session authorisations, seal reports, results
uploads and the authorisation codes the calculator issued. Every query of the site
server lives here; the plan on disk is the source the rooms are imported from."""

from __future__ import annotations

import base64
import binascii
import json
import re
from pathlib import Path
from typing import Any

from peewee import (
    BigIntegerField,
    BlobField,
    BooleanField,
    CharField,
    Database,
    DatabaseProxy,
    DoubleField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)
from playhouse import db_url

from kiosk.core.errors import Refused

PLAN_FILE = "plan.json"
PLAN_FORMAT, PLAN_VERSION = "site-plan", 2
# As on the box: an acknowledged write survives power loss; read-then-write transactions
# of two processes (the server and the code calculator) need BEGIN IMMEDIATE.
SQLITE_PRAGMAS = {"journal_mode": "wal", "synchronous": "full", "foreign_keys": 1, "busy_timeout": 10_000}

database = DatabaseProxy()


class BaseModel(Model):
    class Meta:
        database = database


class Room(BaseModel):
    code = CharField(primary_key=True, max_length=10)
    registration_code = CharField(max_length=16)
    sheet = BlobField()
    exam = BlobField()
    publish_at = DoubleField()
    download_until = DoubleField()
    box_cert = TextField(null=True)  # PEM of the registered box
    box_fingerprint = CharField(null=True, max_length=64)
    registered_at = DoubleField(null=True)

    class Meta:
        table_name = "rooms"


class Authorisation(BaseModel):
    room = ForeignKeyField(Room)
    session = IntegerField()
    data = BlobField()
    valid_from = DoubleField()
    valid_until = DoubleField()

    class Meta:
        table_name = "authorisations"
        indexes = ((("room", "session"), True),)


class SealReport(BaseModel):
    room = ForeignKeyField(Room)
    received_at = DoubleField()
    passed = BooleanField()
    body = TextField()  # JSON, as the box sent it

    class Meta:
        table_name = "seal_reports"


class Upload(BaseModel):
    room = ForeignKeyField(Room)
    sha256 = CharField(max_length=64)
    total = BigIntegerField()
    received = BigIntegerField(default=0)
    complete = BooleanField(default=False)
    stored_path = TextField(null=True)
    reconciliation = TextField(null=True)  # JSON
    session = IntegerField(null=True)  # a results package: its session and when the box made it
    made_at = DoubleField(null=True)
    started_at = DoubleField()
    updated_at = DoubleField()
    completed_at = DoubleField(null=True)

    class Meta:
        table_name = "uploads"
        indexes = ((("room", "sha256"), True),)


class IssuedCode(BaseModel):
    # A room code, not a foreign key: the calculator works without the plan imported.
    room = CharField(max_length=10)
    session = IntegerField()
    purpose = CharField(max_length=16)
    challenge = CharField(max_length=6)
    amount = IntegerField()
    code = CharField(max_length=8)
    issued_at = DoubleField()

    class Meta:
        table_name = "issued_codes"
        indexes = ((("room", "session"), False),)


class ExpectedFile(BaseModel):
    """An answer file a complete results package lists: the box uploads it next."""

    room = ForeignKeyField(Room)
    sha256 = CharField(max_length=64)
    size = BigIntegerField()
    path = TextField()  # as the results package names it

    class Meta:
        table_name = "expected_files"
        indexes = ((("room", "sha256"), True),)


MODELS = (Room, Authorisation, SealReport, Upload, IssuedCode, ExpectedFile)


def default_url(plan_dir: Path) -> str:
    return f"sqlite:///{(plan_dir / 'site' / 'site.db').resolve()}"


def connect(url: str) -> Database:
    """Open the database at `url` (``sqlite:///path`` or ``postgresql://…``), bind the
    models to it and create the tables that are missing."""
    if url.startswith("sqlite"):
        db = db_url.connect(url, pragmas=SQLITE_PRAGMAS, timeout=10, lock_type="IMMEDIATE")
    else:
        db = db_url.connect(url)
    database.initialize(db)
    db.connect(reuse_if_open=True)
    db.create_tables(MODELS)
    return db


def blob(value: bytes | memoryview) -> bytes:
    """A BlobField's value as bytes (psycopg2 reads bytea as a memoryview)."""
    return bytes(value)


# -- the site plan -------------------------------------------------------------------------


def _plan_error(en: str) -> Refused:
    return Refused("plan_invalid", f"考点计划文件有误：{en}", f"bad site plan: {en}")


def _need(doc: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = doc.get(key)
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise _plan_error(f"{where}{key}")
    return value


def read_plan(plan_dir: Path) -> dict[str, Any]:
    """``DIR/site/plan.json``, checked field by field (refusal: ``plan_invalid``)."""
    try:
        plan = json.loads((plan_dir / "site" / PLAN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _plan_error(f"cannot read {PLAN_FILE}: {exc}") from exc
    if not isinstance(plan, dict) or (plan.get("format"), plan.get("version")) != (PLAN_FORMAT, PLAN_VERSION):
        raise _plan_error(f"not a {PLAN_FORMAT} version {PLAN_VERSION}")
    for key in ("site_code", "site_name", "site_ip", "site_secret"):
        _need(plan, key, str, "")
    try:
        base64.b64decode(plan["site_secret"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _plan_error("site_secret is not base64") from exc
    number = (int, float)
    for i, room in enumerate(_need(plan, "rooms", list, "")):
        where = f"rooms[{i}]."
        if not isinstance(room, dict):
            raise _plan_error(where)
        if not re.fullmatch(r"\d{10}", _need(room, "room_code", str, where)):
            raise _plan_error(f"{where}room_code")
        for key in ("registration_code", "sheet", "exam"):
            _need(room, key, str, where)
        for key in ("publish_at", "download_until"):
            _need(room, key, number, where)
        for j, session in enumerate(_need(room, "sessions", list, where)):
            inner = f"{where}sessions[{j}]."
            if not isinstance(session, dict):
                raise _plan_error(inner)
            _need(session, "number", int, inner)
            _need(session, "authorisation", str, inner)
            for key in ("valid_from", "valid_until"):
                _need(session, key, number, inner)
    return plan


def _file(plan_dir: Path, relative: str) -> bytes:
    try:
        return (plan_dir / relative).read_bytes()
    except OSError as exc:
        raise _plan_error(f"cannot read {relative}: {exc.strerror}") from exc


def import_plan(plan_dir: Path) -> dict[str, Any]:
    """Load the plan's rooms and authorisations into the database, idempotently: the same
    plan again changes nothing, and a registered box stays registered. Returns the plan."""
    plan = read_plan(plan_dir)
    with database.atomic():
        for r in plan["rooms"]:
            values = dict(
                registration_code=r["registration_code"],
                sheet=_file(plan_dir, r["sheet"]),
                exam=_file(plan_dir, r["exam"]),
                publish_at=float(r["publish_at"]),
                download_until=float(r["download_until"]),
            )
            if Room.get_or_none(Room.code == r["room_code"]) is None:
                Room.create(code=r["room_code"], **values)
            else:
                Room.update(**values).where(Room.code == r["room_code"]).execute()
            for s in r["sessions"]:
                values = dict(
                    data=_file(plan_dir, s["authorisation"]),
                    valid_from=float(s["valid_from"]),
                    valid_until=float(s["valid_until"]),
                )
                key = (Authorisation.room == r["room_code"]) & (Authorisation.session == s["number"])
                if Authorisation.get_or_none(key) is None:
                    Authorisation.create(room=r["room_code"], session=s["number"], **values)
                else:
                    Authorisation.update(**values).where(key).execute()
    return plan


# -- queries ---------------------------------------------------------------------------------


def room(code: str) -> Room | None:
    return Room.get_or_none(Room.code == code)


def register_box(code: str, cert_pem: str, fingerprint: str, now: float) -> None:
    Room.update(box_cert=cert_pem, box_fingerprint=fingerprint, registered_at=now).where(
        Room.code == code
    ).execute()


def authorisation(code: str, session: int) -> Authorisation | None:
    return Authorisation.get_or_none((Authorisation.room == code) & (Authorisation.session == session))


def add_seal_report(code: str, report: dict[str, Any], now: float) -> None:
    body = json.dumps(report, ensure_ascii=False, sort_keys=True)
    SealReport.create(room=code, received_at=now, passed=report["passed"], body=body)


def upload(code: str, sha256: str) -> Upload | None:
    return Upload.get_or_none((Upload.room == code) & (Upload.sha256 == sha256))


def save_upload(
    code: str,
    sha256: str,
    total: int,
    received: int,
    now: float,
    path: Path | None = None,
    reconciliation: dict[str, Any] | None = None,
    results_of: tuple[int, float] | None = None,
) -> Upload:
    """The upload's bytes on disk up to `received` (after they were fsynced); complete
    once it has its stored `path` and `reconciliation`."""
    with database.atomic():
        row = upload(code, sha256) or Upload(room=code, sha256=sha256, total=total, started_at=now)
        row.received, row.updated_at = received, now
        if path is not None:
            row.complete, row.stored_path, row.completed_at = True, str(path), now
            row.reconciliation = json.dumps(reconciliation, ensure_ascii=False)
            if results_of is not None:
                row.session, row.made_at = results_of
        row.save()
        return row


def newest_results(code: str, session: int) -> Upload | None:
    """The complete results package of the session that the box made last."""
    return (
        Upload.select()
        .where(Upload.room == code, Upload.session == session, Upload.complete)
        .order_by(Upload.made_at.desc())
        .first()
    )


def expect_files(code: str, files: list[dict[str, Any]]) -> None:
    with database.atomic():
        for f in files:
            if expected_file(code, f["sha256"]) is None:
                ExpectedFile.create(room=code, sha256=f["sha256"], size=f["size"], path=f["path"])


def expected_file(code: str, sha256: str) -> ExpectedFile | None:
    return ExpectedFile.get_or_none((ExpectedFile.room == code) & (ExpectedFile.sha256 == sha256))


def drop_upload(code: str, sha256: str) -> None:
    Upload.delete().where((Upload.room == code) & (Upload.sha256 == sha256)).execute()


def record_issued_code(
    room_code: str, session: int, purpose: str, challenge: str, amount: int, code: str, issued_at: float
) -> None:
    """A code the calculator issued; `challenge` as normalised (6 ASCII digits)."""
    IssuedCode.create(
        room=room_code,
        session=session,
        purpose=purpose,
        challenge=challenge,
        amount=amount,
        code=code,
        issued_at=issued_at,
    )


def issued_codes(room_code: str, session: int) -> list[dict[str, Any]]:
    rows = (
        IssuedCode.select()
        .where((IssuedCode.room == room_code) & (IssuedCode.session == session))
        .order_by(IssuedCode.issued_at, IssuedCode.id)
    )
    return [
        dict(purpose=c.purpose, challenge=c.challenge, amount=c.amount, code=c.code, issued_at=c.issued_at)
        for c in rows
    ]
