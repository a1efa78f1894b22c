"""The append-only, hash-chained event log: append inside the caller's transaction,
verify the whole chain."""

from __future__ import annotations

import hashlib
import json
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


def append(
    kind: str,
    *,
    ts: float,
    operator: str = "",
    ip: str = "",
    seat: int | None = None,
    admission_no: str = "",
    payload: dict[str, Any] | None = None,
) -> Event:
    """Append one event. Call inside the transaction that makes the state change, so
    the event and the change commit together (the transaction is IMMEDIATE, so no
    other writer can take the same predecessor)."""
    last = Event.select(Event.id, Event.hash).order_by(Event.id.desc()).first()
    prev_hash = last.hash if last else GENESIS
    ev_id = (last.id if last else 0) + 1
    body = canonical(payload or {})
    h = event_hash(prev_hash, ev_id, ts, operator, ip, seat, admission_no, kind, body)
    return Event.create(
        id=ev_id,
        ts=ts,
        operator=operator,
        ip=ip,
        seat=seat,
        admission_no=admission_no,
        kind=kind,
        payload=body,
        prev_hash=prev_hash,
        hash=h,
    )


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
