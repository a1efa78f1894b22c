"""The monitor (考中管理): the seat grid that shows each seat's candidate and state, the
stats bar, the toolbar of the session's operations, and a seat's long-press menu. A
tap ticks a seat for the batch actions; a long press opens its candidate's menu."""

from __future__ import annotations

from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.factory import Factory
from kivy.properties import BooleanProperty, ListProperty, ObjectProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.modalview import ModalView

from kiosk.ui import viewmodels as vm

LONG_PRESS_S = 0.6


class KioskRoot(FloatLayout):
    """Login until the password is right, then the shell."""

    def on_kv_post(self, *_args: Any) -> None:
        app = App.get_running_app()
        app.bind(logged_in=lambda _a, on: setattr(self.ids.top, "current", "shell" if on else "login"))

    def redraw(self) -> None:
        self.ids.shell.ids.monitor.redraw()


class SeatTile(BoxLayout):
    """One seat: number, candidate, state, marks; ticked when selected."""

    seat = StringProperty("")
    name = StringProperty("")
    admission_no = StringProperty("")
    state_zh = StringProperty("")
    flags = StringProperty("")
    colour = ListProperty([1, 1, 1, 1])
    dark = BooleanProperty(False)
    ticked = BooleanProperty(False)

    def on_touch_down(self, touch: Any) -> bool:
        if not self.collide_point(*touch.pos):
            return False
        touch.grab(self)
        touch.ud["long"] = Clock.schedule_once(lambda _dt: self.long_press(touch), LONG_PRESS_S)
        return True

    def on_touch_up(self, touch: Any) -> bool:
        if touch.grab_current is not self:
            return False
        touch.ungrab(self)
        event = touch.ud.pop("long", None)
        if event is not None and not touch.ud.get("was_long"):
            event.cancel()
            self.tap()
        return True

    def long_press(self, touch: Any) -> None:
        touch.ud["was_long"] = True
        if self.admission_no:
            SeatMenu(tile=self).open(animation=False)

    def tap(self) -> None:
        if not self.admission_no:
            return
        app = App.get_running_app()
        app.selected.symmetric_difference_update({self.admission_no})
        app.selection_changed()


class CandidateRow(BoxLayout):
    """One candidate in the list view, with its check box for the batch actions."""

    seat = StringProperty("")
    admission_no = StringProperty("")
    name = StringProperty("")
    state_zh = StringProperty("")
    flags = StringProperty("")
    ticked = BooleanProperty(False)

    def tap(self) -> None:
        if self.admission_no:
            app = App.get_running_app()
            app.selected.symmetric_difference_update({self.admission_no})
            app.selection_changed()


class MenuOp(Button):
    verb = StringProperty("")
    menu = ObjectProperty(None)


class StatButton(Button):
    key = StringProperty("")


class SeatMenu(ModalView):
    """What the proctor can do for one candidate (long press on the seat)."""

    def __init__(self, tile: SeatTile, **kw: Any) -> None:
        super().__init__(**kw)
        self.tile = tile
        self.ids.title.text = f"机位 {tile.seat}  {tile.name}  {tile.admission_no}  {tile.state_zh}"
        from kiosk.ui.app import SEAT_MENU

        for verb in SEAT_MENU:
            self.ids.ops.add_widget(Factory.MenuOp(verb=verb, menu=self))

    def choose(self, verb: str) -> None:
        self.dismiss(animation=False)
        no = self.tile.admission_no
        App.get_running_app().open_op(verb, {"admission_no": no, "admission_nos": [no], "query": no})


class Monitor(BoxLayout):
    view = StringProperty("grid")  # or "list": the candidates with check boxes

    def toggle_all(self) -> None:
        app = App.get_running_app()
        if app.selected:
            app.selected.clear()
        else:
            app.selected.update(c.admission_no for c in vm.seat_cells(app.status) if c.admission_no)
        app.selection_changed()

    def on_kv_post(self, *_args: Any) -> None:
        from kiosk.ui.app import TOOLBAR

        for verb, label in TOOLBAR.items():
            self.ids.toolbar.add_widget(Factory.OpButton(verb=verb, text=label))

    def show_stat(self, key: str, title: str) -> None:
        """A stat's detail: who is counted in it."""
        app = App.get_running_app()
        session = app.status.get("session") or {}
        rows = [c for c in session.get("candidates", []) if _counted(key, c)]
        text = "\n".join(
            f"{c['seat'] or '—'}  {c['name']}  {c['admission_no']}  {c['state_zh']}" for c in rows
        )
        Factory.Toast(text=f"{title}（{len(rows)} 人）\n" + (text or "无")).open(animation=False)

    def redraw(self) -> None:
        app = App.get_running_app()
        stats = self.ids.stats
        if getattr(stats, "_drawn", None) != app.stats:
            stats._drawn = list(app.stats)
            stats.clear_widgets()
            for key, zh, n in app.stats:
                stats.add_widget(
                    Factory.StatButton(
                        text=f"{zh} {n}", key=key, on_release=lambda b, k=key, z=zh: self.show_stat(k, z)
                    )
                )
        cells = vm.seat_cells(app.status)
        grid = self.ids.grid
        drawn = getattr(grid, "_cells", None)
        if drawn == (cells, frozenset(app.selected), grid.width, grid.height):
            return
        grid._cells = (cells, frozenset(app.selected), grid.width, grid.height)
        grid.cols = vm.grid_columns(len(cells), max(grid.width, 1), max(self.ids.scroll.height, 1))
        tiles = list(reversed(grid.children))
        if len(tiles) != len(cells):
            grid.clear_widgets()
            tiles = [SeatTile() for _ in cells]
            for t in tiles:
                grid.add_widget(t)
        for t, c in zip(tiles, cells, strict=True):
            t.seat, t.name, t.admission_no, t.state_zh = c.seat, c.name, c.admission_no, c.state_zh
            t.flags, t.colour, t.dark = " ".join(c.flags), list(c.colour), c.dark
            t.ticked = c.admission_no in app.selected
        self.ids.rows.data = [
            dict(seat=c.seat, admission_no=c.admission_no, name=c.name, state_zh=c.state_zh,
                 flags=" ".join(c.flags), ticked=c.admission_no in app.selected)
            for c in cells
            if c.admission_no
        ]  # fmt: skip


def _counted(key: str, c: dict[str, Any]) -> bool:
    return {
        "expected": True,
        "logged_in": c["state"] == "logged_in",
        "in_exam": c["state"] == "in_exam",
        "submitted": c["state"] == "submitted",
        "absent": c["state"] == "absent",
        "violations": c.get("violation"),
        "resumes": c.get("resumed"),
        "extra_time": c.get("extra_s", 0) > 0,
        "offline": c["state"] in ("logged_in", "in_exam") and not c.get("online"),
        "hands": c.get("hand_raised"),
    }.get(key, False)


for cls in (KioskRoot, SeatTile, CandidateRow, MenuOp, StatButton, SeatMenu, Monitor):
    Factory.register(cls.__name__, cls=cls)
