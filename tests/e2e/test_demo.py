"""The main job: `kiosk demo` runs a whole room headless and ends with a verified report."""

from __future__ import annotations

import pytest

from kiosk.common.signed import open_sealed
from kiosk.demo import run_demo

pytestmark = pytest.mark.slow


@pytest.mark.timeout(180)
def test_the_demo_room_runs_a_whole_session_and_backs_up_the_results(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KIOSK_MIN_FREE_BYTES", str(1024**2))
    assert run_demo(home=str(tmp_path), seats=40, speed=1e7) == 0
    out = capsys.readouterr().out
    assert "封场检测：通过，已上报考点" in out and "哈希链完整" in out
    assert "上报完成：考点已收到并核对结果" in out
    assert "核对：总人数40 已考38 缺考2 已回收40 未回收0 补时1 违纪1" in out
    raw = (tmp_path / "usb-backup" / "results-1999999001-1.json").read_bytes()
    results = open_sealed(raw, "results-package", (tmp_path / "keys" / "box.crt").read_bytes())
    assert len(results["candidates"]) == 40 and results["answers"]
    assert "考场情况记录单" in (tmp_path / "situation.html").read_text(encoding="utf-8")
