"""The monitor (考中管理): the seat grid that shows each seat's candidate and state, the
stats bar, the toolbar of the session's operations, and a seat's long-press menu. A
tap ticks a seat for the batch actions; a long press opens its candidate's menu."""

from __future__ import annotations

import gc
from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.factory import Factory
from kivy.metrics import dp
from kivy.properties import BooleanProperty, ListProperty, ObjectProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.modalview import ModalView
from kivy.uix.scrollview import ScrollView

from kiosk.ui import viewmodels as vm

LONG_PRESS_S = 0.6


class KioskRoot(FloatLayout):
    """Login until the password is right, then the shell."""

    def on_kv_post(self, *_args: Any) -> None:
        app = App.get_running_app()
        app.bind(logged_in=self._logged_in, login_error=lambda *_a: self.focus_login())
        Clock.schedule_once(lambda _dt: self.focus_login())

    def _logged_in(self, _app: Any, on: bool) -> None:
        self.ids.top.current = "shell" if on else "login"
        if on:  # the hidden field would go on taking what a hardware keyboard types
            self.ids.login.ids.password.focus = False
        else:
            self.focus_login()

    def focus_login(self) -> None:
        """The password field takes the focus: typed on a hardware keyboard, then Enter."""
        if self.ids.top.current == "login":
            self.ids.login.ids.password.focus = True

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
        self.ids.area.bind(size=self._fit)

    def _fit(self, *_args: Any) -> None:
        """As many columns as fit the seats on the screen without scrolling; a scroll
        view around the grid only when they cannot fit."""
        grid, area = self.ids.grid, self.ids.area
        grid.cols = vm.grid_columns(len(grid.children), max(area.width, 1), max(area.height, 1))
        rows = -(-len(grid.children) // grid.cols)
        scrolls = rows * dp(64) > area.height + 1
        if scrolls == isinstance(grid.parent, ScrollView):
            return
        grid.parent.remove_widget(grid)
        if scrolls:
            area.clear_widgets()
            view = ScrollView(do_scroll_x=False)
            view.add_widget(grid)
            area.add_widget(view)
        else:
            area.clear_widgets()
            area.add_widget(grid)

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
        wanted = [(c, c.admission_no in app.selected) for c in cells]
        changed = vm.changed_at(getattr(grid, "_drawn", None), wanted)
        if changed is None:  # first draw, or seats added or deleted: tiles kept, added, removed
            for _ in range(len(grid.children) - len(cells)):
                grid.remove_widget(grid.children[0])
            added = len(cells) - len(grid.children)
            for _ in range(added):
                grid.add_widget(SeatTile())
            changed = list(range(len(cells)))  # all set: a property set to its value draws nothing
            self._fit()
            if added > 0:
                _keep_out_of_collections()
        tiles = list(reversed(grid.children))
        for i in changed:  # only the seats whose view changed: the others keep their textures
            (c, ticked), t = wanted[i], tiles[i]
            t.seat, t.name, t.admission_no, t.state_zh = c.seat, c.name, c.admission_no, c.state_zh
            t.flags, t.colour, t.dark, t.ticked = " ".join(c.flags), list(c.colour), c.dark, ticked
        grid._drawn = wanted
        if changed or self.view != getattr(self.ids.rows, "_view", None):
            self._draw_rows(wanted)

    def on_view(self, *_args: Any) -> None:
        self.redraw()

    def _draw_rows(self, wanted: list[tuple[vm.SeatCell, bool]]) -> None:
        """The list view's rows, only while it is shown (a RecycleView refreshes them all)."""
        rows = self.ids.rows
        rows._view = self.view
        if self.view != "list":
            return
        rows.data = [
            dict(seat=c.seat, admission_no=c.admission_no, name=c.name, state_zh=c.state_zh,
                 flags=" ".join(c.flags), ticked=ticked)
            for c, ticked in wanted
            if c.admission_no
        ]  # fmt: skip


def _keep_out_of_collections() -> None:
    """What exists once the seats have their tiles (Kivy, the screens, 150 tiles of five
    widgets, the engine) lives as long as the app: Python's full garbage collections leave
    it out from now on. Scanning it all took 0.15-0.45 s, in which every thread waited: a
    frame and the room service stalled (bench/ui_grid.py). Collected once first, so that no
    garbage of the moment is kept."""
    gc.collect()
    gc.freeze()


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
