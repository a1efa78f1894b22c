"""Storing answers: the newest sequence number wins, per candidate, subject and question."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from peewee import EXCLUDED

from kiosk.common.models import Answer


def upsert_newest(rows: Sequence[dict[str, Any]], count: bool = True) -> int:
    """Insert or update answers, keeping an existing one whose seq is not lower.

    Returns how many rows were new or newer than what was stored (0 when `count` is
    off: the journal sync, a hot path, does not need it)."""
    if not rows:
        return 0
    if not count:
        _upsert(rows)
        return 0
    admission = {r["admission_no"] for r in rows}
    before = {
        (a.admission_no, a.subject, a.question): a.seq
        for a in Answer.select(Answer.admission_no, Answer.subject, Answer.question, Answer.seq).where(
            Answer.admission_no.in_(list(admission))
        )
    }
    _upsert(rows)
    return sum(1 for r in rows if r["seq"] > before.get((r["admission_no"], r["subject"], r["question"]), 0))


def _upsert(rows: Sequence[dict[str, Any]]) -> None:
    Answer.insert_many(rows).on_conflict(
        conflict_target=[Answer.admission_no, Answer.subject, Answer.question],
        update={Answer.value: EXCLUDED.value, Answer.seq: EXCLUDED.seq, Answer.saved_at: EXCLUDED.saved_at},
        where=(EXCLUDED.seq > Answer.seq),
    ).execute()
