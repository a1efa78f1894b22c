"""`kiosk demo` with a display: the demo room plays with the box's touch app open on it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kiosk.demo import run_demo
from kiosk.services.bootstrap import DB_NAME


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_demo_room_plays_with_the_touch_app_open(
    tmp_path: Path, xdisplay: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KIOSK_MIN_FREE_BYTES", str(1024**2))
    assert run_demo(home=str(tmp_path), seats=12, speed=2000, ui=True) == 0
    out = capsys.readouterr().out
    assert "上报完成：考点已收到并核对结果" in out and "核对：总人数12" in out
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        logins = db.execute(
            "SELECT COUNT(*) FROM event WHERE kind = 'login' AND admission_no = ''"
        ).fetchone()[0]
    assert logins == 2  # the app's, and the password check of 结束考试 (headless: only the latter)
