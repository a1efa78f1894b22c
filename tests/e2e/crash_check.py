"""Read-only checks of a room database after a crash, against the crash driver's witness
file: integrity, the event hash chain, and every witnessed commit still being there.

Plain sqlite3 with ``mode=ro``: the test process never binds kiosk's peewee proxy."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiosk.store.events import GENESIS, event_hash

AnswerKey = tuple[str, str, str]

# What a witnessed setup step leaves behind for good: a query that must return a row.
SETUP_FACTS = {
    "configure": "SELECT 1 FROM room_config WHERE id = 1",
    "seats": "SELECT 1 WHERE (SELECT count(*) FROM seat) = 40",
    "envcheck": "SELECT 1 FROM env_run",
    "exam": "SELECT 1 FROM exam",
    "seal": "SELECT 1 FROM seal_result WHERE passed",
    "enter": "SELECT 1 FROM session WHERE number = 1 AND entered_at IS NOT NULL",
    "authorise": "SELECT 1 FROM session WHERE number = 1 AND authorised_at IS NOT NULL",
    "allow_login": "SELECT 1 FROM session WHERE number = 1 AND login_allowed_at IS NOT NULL",
    "allow_start": "SELECT 1 FROM session WHERE number = 1 AND start_allowed_at IS NOT NULL",
}


@dataclass
class Snapshot:
    """What one check saw, so that the next one can insist nothing went backwards."""

    events: int = 0
    tip_hash: str = GENESIS
    answer_seqs: dict[AnswerKey, int] = field(default_factory=dict)


def trim_torn_tail(path: Path) -> int:
    """Cut a last line that a kill left half-written; returns how many bytes were cut."""
    if not path.exists():
        return 0
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1
    if keep < len(data):
        with path.open("r+b") as f:
            f.truncate(keep)
    return len(data) - keep


def complete_lines(path: Path) -> int:
    """How many whole (newline-terminated) lines the witness file holds."""
    return path.read_bytes().count(b"\n") if path.exists() else 0


def read_witness(path: Path) -> list[dict[str, Any]]:
    """Every whole line of the witness file; a torn last line is not a witness."""
    data = path.read_bytes() if path.exists() else b""
    return [json.loads(line) for line in data.split(b"\n")[:-1]]


def verify_chain(conn: sqlite3.Connection) -> tuple[int, str, list[str]]:
    """Walk the event log like kiosk.store.events.verify_chain; returns count, tip, problems."""
    prev, count = GENESIS, 0
    rows = conn.execute(
        "SELECT id, ts, operator, ip, seat, admission_no, kind, payload, prev_hash, hash "
        "FROM event ORDER BY id"
    )
    for ev_id, ts, operator, ip, seat, adm, kind, payload, prev_hash, h in rows:
        if ev_id != count + 1:
            return count, prev, [f"event {count + 1} is missing"]
        if prev_hash != prev:
            return count, prev, [f"event {ev_id}: link to the previous event is broken"]
        if event_hash(prev, ev_id, ts, operator, ip, seat, adm, kind, payload) != h:
            return count, prev, [f"event {ev_id}: content does not match its hash"]
        prev, count = h, count + 1
    return count, prev, []


def _check_facts(conn: sqlite3.Connection, w: dict[str, Any]) -> list[str]:
    """The row-level facts one witness line promises; empty when all hold."""
    op, adm = w["op"], w.get("adm")
    one = conn.execute
    if op == "setup" and one(SETUP_FACTS[w["step"]]).fetchone() is None:
        return [f"setup step {w['step']!r} was witnessed but is not in the database"]
    if "refused" in w:
        return []
    if op == "login":
        row = one("SELECT logged_in_at FROM candidate WHERE admission_no = ?", (adm,)).fetchone()
        if row is None or row[0] is None:
            return [f"login of {adm} was witnessed but is lost"]
    elif op == "begin":
        row = one("SELECT began_at FROM candidate WHERE admission_no = ?", (adm,)).fetchone()
        if row is None or row[0] is None:
            return [f"begin of {adm} was witnessed but is lost"]
    elif op == "extra_time":
        row = one("SELECT extra_s FROM candidate WHERE admission_no = ?", (adm,)).fetchone()
        if row is None or row[0] < w["extra_s"]:
            return [f"extra time of {adm}: witnessed {w['extra_s']} s, database has {row}"]
    elif op == "violation":
        row = one(
            "SELECT c.admission_no FROM violation v JOIN candidate c ON c.id = v.candidate_id WHERE v.id = ?",
            (w["violation"],),
        ).fetchone()
        if row is None or row[0] != adm:
            return [f"violation {w['violation']} of {adm} was witnessed but is lost"]
    elif op == "violation_cancel":
        row = one("SELECT cancelled_at FROM violation WHERE id = ?", (w["violation"],)).fetchone()
        if row is None or row[0] is None:
            return [f"cancelling violation {w['violation']} was witnessed but is lost"]
    elif op == "resume":
        row = one(
            "SELECT 1 FROM resume r JOIN candidate c ON c.id = r.candidate_id WHERE c.admission_no = ?",
            (adm,),
        ).fetchone()
        if row is None:
            return [f"break-resume of {adm} was witnessed but is lost"]
    return []


def check_database(db: Path, witnessed: list[dict[str, Any]], before: Snapshot) -> tuple[Snapshot, list[str]]:
    """Everything the crash test requires of the database after a kill; returns what was
    seen and a list of problems (empty when the database is intact)."""
    problems: list[str] = []
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        integrity = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        if integrity != ["ok"]:
            problems.append(f"integrity_check: {integrity[:5]}")
        fk = conn.execute("PRAGMA foreign_key_check").fetchall()
        if fk:
            problems.append(f"foreign_key_check: {fk[:5]}")
        count, tip, chain_problems = verify_chain(conn)
        problems += chain_problems
        hashes = dict(conn.execute("SELECT id, hash FROM event"))
        answers = {
            (a, s, q): (seq, value)
            for a, s, q, seq, value in conn.execute(
                "SELECT admission_no, subject, question, seq, value FROM answer"
            )
        }
        if count < before.events:
            problems.append(f"the event log shrank from {before.events} to {count}")
        elif before.events and hashes.get(before.events) != before.tip_hash:
            problems.append(f"event {before.events} changed since the last kill")
        for key, seq in before.answer_seqs.items():
            if key not in answers or answers[key][0] < seq:
                problems.append(f"answer {key} went back from seq {seq} to {answers.get(key)}")
        for w in witnessed:
            ev_id, ev_hash = w["event"]
            if ev_id and hashes.get(ev_id) != ev_hash:
                problems.append(f"witnessed event {ev_id} ({w['op']}) is lost or changed")
            for subject, question, seq, value in w.get("answers", []):
                got = answers.get((w["adm"], subject, question))
                if got is None or got[0] < seq:
                    problems.append(f"witnessed answer {w['adm']}/{question} seq {seq}: {got}")
                elif got[0] == seq and json.loads(got[1]) != value:
                    problems.append(f"witnessed answer {w['adm']}/{question} has another value")
            problems += _check_facts(conn, w)
    seen = Snapshot(count, tip, {k: v[0] for k, v in answers.items()})
    return seen, problems
