"""The box's screenshot tour runs (every screen, every operation's form and the manual's
dialogs in each state are reachable by touch) and writes a real, distinct picture of each."""

from __future__ import annotations

import asyncio
import struct
import zlib
from pathlib import Path

import pytest

from tests.ui.box_screens import FIXED, NOT_RUN, tour
from tests.ui.conftest import SCREEN


def colours(png: bytes) -> int:
    """How many different pixels a picture holds (a few rows of it): blank or undrawn is 1 or 2."""
    width, height = struct.unpack(">II", png[16:24])
    start = png.index(b"IDAT") + 4
    rows = zlib.decompress(png[start : png.index(b"IEND") - 8])
    seen: set[bytes] = set()
    for y in range(0, height, max(1, height // 24)):
        row = rows[y * (width * 3 + 1) + 1 : (y + 1) * (width * 3 + 1)]
        seen.update(row[x : x + 3] for x in range(0, len(row), 3 * 7))
    return len(seen)


@pytest.mark.slow
@pytest.mark.timeout(480)
def test_the_tour_shoots_every_screen_form_and_dialog_of_the_box(tmp_path: Path, xdisplay: str) -> None:
    from kiosk.ui.app import SEAT_MENU, TOOLBAR
    from kiosk.ui.viewmodels import STATS

    out = tmp_path / "shots"
    written = asyncio.run(asyncio.wait_for(tour(out, tmp_path / "room", pcs=24), 450))
    names = [p.stem.split("-", 1)[1] for p in written]
    assert [p.stem.split("-", 1)[0] for p in written] == [f"{n:03d}" for n in range(1, len(written) + 1)]
    assert [n for n in names if n in FIXED] == list(FIXED)
    forms = {n.removeprefix("form-") for n in names if n.startswith("form-")}
    assert set(TOOLBAR) - set(NOT_RUN) <= forms, set(TOOLBAR) - forms
    assert {"config", "seats-scan", "envcheck", "exam-import", "user-set", "init-box", "backup"} <= forms
    assert {n.removeprefix("seat-form-") for n in names if n.startswith("seat-form-")} == set(SEAT_MENU)
    assert {f"stats-{key}" for key, _zh in STATS} <= set(names)
    for p in written:
        raw = p.read_bytes()
        assert raw.startswith(b"\x89PNG") and struct.unpack(">II", raw[16:24]) == SCREEN
        assert colours(raw) > 8, f"{p.name} looks blank"
    # Different screens give different pictures (nothing blank or stuck).
    assert len({p.read_bytes() for p in written}) == len(written)
