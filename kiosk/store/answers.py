"""Storing answers: the newest sequence number wins, per candidate, subject and question."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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


_FIELDS = ("admission_no", "subject", "question", "value", "seq", "saved_at")


def _upsert(rows: Sequence[dict[str, Any]]) -> None:
    table = Answer._meta.table_name
    sql = (
        f'INSERT INTO "{table}" ({", ".join(_FIELDS)}) VALUES ({", ".join("?" * len(_FIELDS))}) '
        "ON CONFLICT (admission_no, subject, question) DO UPDATE SET "
        f"value = excluded.value, seq = excluded.seq, saved_at = excluded.saved_at "
        f'WHERE excluded.seq > "{table}".seq'
    )
    Answer._meta.database.cursor().executemany(sql, [tuple(r[f] for f in _FIELDS) for r in rows])
