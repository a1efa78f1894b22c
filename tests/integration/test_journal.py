"""The exam PC's journal uses the same models as the box, with the same pragmas."""

from __future__ import annotations

import json
import subprocess
import sys


def test_stu_client_reports_a_new_journal_and_its_pragmas(tmp_path):
    path = tmp_path / "journal.db"
    out = subprocess.run(
        [sys.executable, "-m", "stu_client.cli", "journal", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == {
        "answers": 0,
        "entries": 0,
        "unacked": 0,
        "last_seq": 0,
        "integrity": "ok",
    }
    import sqlite3

    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        con.close()
    assert {"answer", "journal_entry"} <= tables
