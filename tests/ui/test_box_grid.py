"""The monitor's seat grid in the real window: a status read that changes nothing keeps
every tile and every label texture (only the seats whose view changed are set), seats
deleted take their tiles away and leave the others, and the grid sits in a ScrollView
only while its seats cannot fit the screen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.ui.box_harness import box_app, box_engine
from tests.ui.harness import run_test, settle, until


def test_the_grid_keeps_its_tiles_and_scrolls_only_when_the_seats_do_not_fit(
    tmp_path: Path, xdisplay: str
) -> None:
    async def body() -> None:
        from kivy.uix.scrollview import ScrollView

        async with box_engine(tmp_path, 0) as (engine, _fleet), box_app(engine) as app:
            for n in range(150):
                await engine.call("seats_add", f"127.0.20.{n + 1}")
            app.logged_in, app.area = True, "during"
            monitor = app.root.ids.shell.ids.monitor
            grid = monitor.ids.grid

            def tiles() -> list[Any]:
                return list(reversed(grid.children))

            await until(lambda: len(tiles()) == 150, what="150 seats on the grid")
            await settle()
            assert isinstance(grid.parent, ScrollView)  # 150 seats do not fit 1366x768
            drawn = [(t, [label.texture for label in t.children]) for t in tiles()]
            assert all(all(textures) for _t, textures in drawn)

            for _ in range(2):  # two more status reads (the clock's, every second)
                read = app.status
                await until(lambda read=read: app.status is not read, what="another status read")
            await settle()
            assert [(t, [label.texture for label in t.children]) for t in tiles()] == drawn

            for n in range(150, 40, -1):
                await engine.call("seats_delete", n, True)
            await until(lambda: len(tiles()) == 40, what="40 seats left")
            await settle()
            assert tiles() == [t for t, _textures in drawn[:40]]  # the same tiles, the rest removed
            assert type(grid.parent).__name__ == "BoxLayout"  # the area itself, no ScrollView
            area = monitor.ids.area
            for t in tiles():  # every seat on the screen, none under the edge
                y = t.to_window(t.x, t.y)[1]
                ay = area.to_window(area.x, area.y)[1]
                assert ay - 1 <= y and y + t.height <= ay + area.height + 1, (t.seat, y, ay)
            assert [t.seat for t in tiles()] == [f"{n:03d}" for n in range(1, 41)]

    run_test(body(), 120)
