"""The screenshot tour runs (every screen of the journey is reachable by touch) and
writes a real picture of each."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import pytest

from tests.ui.conftest import SCREEN
from tests.ui.screens import SHOTS, tour


@pytest.mark.slow
def test_the_tour_shoots_every_screen_of_the_answer_app(tmp_path: Path, xdisplay: str) -> None:
    out = tmp_path / "shots"
    written = asyncio.run(asyncio.wait_for(tour(out, tmp_path / "room"), 180))
    assert [p.stem for p in written] == list(SHOTS)
    for p in written:
        raw = p.read_bytes()
        assert raw.startswith(b"\x89PNG")
        assert struct.unpack(">II", raw[16:24]) == SCREEN
    # Different screens give different pictures (nothing blank or stuck).
    assert len({p.read_bytes() for p in written}) == len(written)
