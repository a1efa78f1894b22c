"""Schema versions of the room database and the path from each to the next.

The version lives in SQLite's ``user_version``. Release 1 creates every table; a
later release appends a function to MIGRATIONS that takes version N to N+1 with
``playhouse.migrate`` and a stored database file of release N gets an upgrade test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from peewee import SqliteDatabase
from playhouse.migrate import SqliteMigrator
from playhouse.migrate import migrate as run_migrations

from kiosk.common.models import open_sqlite
from kiosk.core.errors import Refused
from kiosk.store.models import BOX_MODELS, Exam, SiteTrust, StoredFile

SCHEMA_VERSION = 4


def _create_v1(db: SqliteDatabase) -> None:
    db.create_tables(BOX_MODELS)


def _v2_site_trust(db: SqliteDatabase) -> None:
    """The pinned exam-site certificate (a new table: a fresh database has it already)."""
    db.create_tables([SiteTrust], safe=True)


def _v3_package_key(db: SqliteDatabase) -> None:
    """The room's answer-package key from the exam package (a fresh database has it)."""
    if "package_key" not in {c.name for c in db.get_columns("exam")}:
        run_migrations(SqliteMigrator(db).add_column("exam", "package_key", Exam.package_key))


def _v4_stored_files(db: SqliteDatabase) -> None:
    """The operation tasks' files with their hashes (a new table)."""
    db.create_tables([StoredFile], safe=True)


# MIGRATIONS[n] takes a database at version n to n + 1.
MIGRATIONS: dict[int, Callable[[SqliteDatabase], None]] = {
    0: _create_v1,
    1: _v2_site_trust,
    2: _v3_package_key,
    3: _v4_stored_files,
}


def user_version(db: SqliteDatabase) -> int:
    return int(db.execute_sql("PRAGMA user_version").fetchone()[0])


def migrate(db: SqliteDatabase) -> int:
    """Bring the database to SCHEMA_VERSION; each step commits with its version."""
    version = user_version(db)
    if version > SCHEMA_VERSION:
        raise Refused(
            "schema_too_new",
            f"数据库版本 {version} 高于本程序支持的版本 {SCHEMA_VERSION}，请升级监考程序",
            f"database schema {version} is newer than supported {SCHEMA_VERSION}",
        )
    while version < SCHEMA_VERSION:
        with db.atomic():
            MIGRATIONS[version](db)
            version += 1
            db.execute_sql(f"PRAGMA user_version = {version}")
    return version


def open_room_db(path: str | Path) -> SqliteDatabase:
    db = open_sqlite(path)
    migrate(db)
    return db
