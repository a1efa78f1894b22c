"""What the journal sync reads, in plain SQL: it runs for every frame of every exam PC,
where building the query with peewee would cost more than SQLite answering it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from kiosk.store.models import Candidate, Seat, Session


@dataclass(frozen=True)
class Writer:
    """A candidate of the entered session, logged in at an IP."""

    admission_no: str
    ip: str
    state: str
    subjects: frozenset[str]
    seat_number: int | None


def seats_and_writers(ips: Sequence[str]) -> tuple[dict[str, int], dict[tuple[str, str], Writer]]:
    """The seat number of each IP, and the candidates of the entered session at these IPs
    keyed by (admission number, IP)."""
    if not ips:
        return {}, {}
    db = Seat._meta.database
    marks = ", ".join("?" * len(ips))
    seats = dict(
        db.execute_sql(f'SELECT ip, number FROM "{Seat._meta.table_name}" WHERE ip IN ({marks})', list(ips))
    )
    session = Session._meta.table_name
    rows = db.execute_sql(
        f'SELECT admission_no, ip, state, subjects, seat_number FROM "{Candidate._meta.table_name}" '
        f'WHERE ip IN ({marks}) AND session_id = (SELECT id FROM "{session}" '
        "WHERE entered_at IS NOT NULL AND ended_at IS NULL ORDER BY entered_at DESC LIMIT 1)",
        list(ips),
    )
    writers = {
        (no, ip): Writer(no, ip, state, frozenset(json.loads(subjects or "[]")), seat)
        for no, ip, state, subjects, seat in rows
    }
    return seats, writers
