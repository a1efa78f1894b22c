"""The peewee base both apps share: one deferred database, the pragmas every file is
opened with, and the tables that live on the box and on the exam PC alike."""

from __future__ import annotations

from pathlib import Path

from peewee import (
    BooleanField,
    CharField,
    DatabaseProxy,
    FloatField,
    IntegerField,
    Model,
    SqliteDatabase,
    TextField,
)

# synchronous=FULL: an answer shown as saved or acknowledged must survive power loss.
PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "full",
    "foreign_keys": 1,
    "busy_timeout": 10_000,
}

database = DatabaseProxy()


def open_sqlite(path: str | Path) -> SqliteDatabase:
    """Open (creating) a SQLite file with the project's pragmas and bind the proxy to it.

    Write transactions begin IMMEDIATE: read-then-write transactions from two
    processes otherwise fail with 'database is locked' (PLATFORM-NOTES)."""
    db = SqliteDatabase(str(path), pragmas=PRAGMAS, timeout=10, lock_type="IMMEDIATE")
    db.connect(reuse_if_open=True)
    database.initialize(db)
    return db


class BaseModel(Model):
    class Meta:
        database = database
        legacy_table_names = False


class Answer(BaseModel):
    """The latest answer of a candidate to one question; ``seq`` orders the writes.

    Keyed by admission number (not a foreign key) so that the exam PC's journal and
    the box's room database hold the same rows."""

    admission_no = CharField(max_length=32)
    subject = CharField(max_length=32)
    question = CharField(max_length=64)
    value = TextField()  # JSON
    seq = IntegerField()
    saved_at = FloatField()

    class Meta:
        indexes = ((("admission_no", "subject", "question"), True),)


class JournalEntry(BaseModel):
    """Exam-PC side: every answer and client event, in order, until the box acknowledges it."""

    seq = IntegerField(primary_key=True)
    admission_no = CharField(max_length=32, default="")
    kind = CharField(max_length=32)
    payload = TextField()  # JSON
    created_at = FloatField()
    acked = BooleanField(default=False, index=True)


SHARED_MODELS: tuple[type[BaseModel], ...] = (Answer, JournalEntry)
