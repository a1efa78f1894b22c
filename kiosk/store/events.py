"""The append-only, hash-chained event log: append inside the caller's transaction,
verify the whole chain."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kiosk.store.models import Event

GENESIS = "0" * 64


def canonical(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def event_hash(
    prev_hash: str,
    ev_id: int,
    ts: float,
    operator: str,
    ip: str,
    seat: int | None,
    admission_no: str,
    kind: str,
    payload: str,
) -> str:
    body = canonical([ev_id, repr(float(ts)), operator, ip, seat, admission_no, kind, payload])
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


@dataclass(frozen=True)
class NewEvent:
    """An event not yet written: its id and hashes are given when it is appended."""

    kind: str
    ts: float
    operator: str = ""
    ip: str = ""
    seat: int | None = None
    admission_no: str = ""
    payload: dict[str, Any] | None = None


_COLUMNS = ("id", "ts", "operator", "ip", "seat", "admission_no", "kind", "payload", "prev_hash", "hash")


def append_many(new: Sequence[NewEvent]) -> list[Event]:
    """Append events in order, in one statement. Call inside the transaction that makes
    the state change, so the events and the change commit together (the transaction is
    IMMEDIATE, so no other writer can take the same predecessor)."""
    if not new:
        return []
    last = Event.select(Event.id, Event.hash).order_by(Event.id.desc()).first()
    prev_hash = last.hash if last else GENESIS
    ev_id = last.id if last else 0
    rows = []
    for n in new:
        ev_id += 1
        body = canonical(n.payload or {})
        h = event_hash(prev_hash, ev_id, n.ts, n.operator, n.ip, n.seat, n.admission_no, n.kind, body)
        rows.append((ev_id, n.ts, n.operator, n.ip, n.seat, n.admission_no, n.kind, body, prev_hash, h))
        prev_hash = h
    sql = 'INSERT INTO "{}" ({}) VALUES ({})'.format(
        Event._meta.table_name, ", ".join(f'"{c}"' for c in _COLUMNS), ", ".join("?" * len(_COLUMNS))
    )
    Event._meta.database.cursor().executemany(sql, rows)
    return [Event(**dict(zip(_COLUMNS, row, strict=True))) for row in rows]


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    count: int
    first_bad_id: int | None = None
    reason: str = ""


def verify_chain() -> ChainReport:
    """Walk the log in order; name the first event whose link or content does not hold."""
    prev_hash = GENESIS
    expected_id = 1
    count = 0
    for ev in Event.select().order_by(Event.id).iterator():
        if ev.id != expected_id:
            return ChainReport(False, count, expected_id, f"event {expected_id} is missing")
        if ev.prev_hash != prev_hash:
            return ChainReport(False, count, ev.id, "link to the previous event is broken")
        h = event_hash(
            prev_hash,
            ev.id,
            ev.ts,
            ev.operator,
            ev.ip,
            ev.seat,
            ev.admission_no,
            ev.kind,
            ev.payload,
        )
        if h != ev.hash:
            return ChainReport(False, count, ev.id, "content does not match its hash")
        prev_hash = ev.hash
        expected_id += 1
        count += 1
    return ChainReport(True, count)
