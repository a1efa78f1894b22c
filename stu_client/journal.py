"""The exam PC's answer journal: the shared peewee models in a local SQLite file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from peewee import fn

from kiosk.common.models import SHARED_MODELS, Answer, JournalEntry, open_sqlite


def open_journal(path: str | Path) -> Any:
    db = open_sqlite(path)
    db.create_tables(SHARED_MODELS)
    return db


def summary() -> dict[str, Any]:
    """What the journal holds: answers, entries not yet acknowledged by the box."""
    return {
        "answers": Answer.select().count(),
        "entries": JournalEntry.select().count(),
        "unacked": JournalEntry.select().where(~JournalEntry.acked).count(),
        "last_seq": JournalEntry.select(fn.MAX(JournalEntry.seq)).scalar() or 0,
    }
