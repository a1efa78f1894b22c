"""The Chinese font is found through fontconfig, and its absence is a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.common.fonts import NoChineseFont, chinese_font


def test_a_font_covering_chinese_is_found_by_fontconfig(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KIOSK_FONT", raising=False)
    path = chinese_font()
    assert path.is_file() and "CJK" in path.name  # scripts/setup.sh installs fonts-noto-cjk


def test_no_font_is_a_clear_error_in_chinese(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KIOSK_FONT", str(tmp_path / "missing.ttf"))
    with pytest.raises(NoChineseFont, match="找不到中文字体"):
        chinese_font()
    monkeypatch.delenv("KIOSK_FONT")
    monkeypatch.setenv("PATH", str(tmp_path))  # no fc-list at all
    with pytest.raises(NoChineseFont):
        chinese_font()
