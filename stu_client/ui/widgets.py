"""The answer app's widgets: the root (screens, overlays, banners) and the answering
screen's question panel and grid. Layout is in the .kv files beside this module; these
classes only turn the app's state into widgets and touches into app calls."""

from __future__ import annotations

from typing import Any

from kivy.app import App
from kivy.factory import Factory
from kivy.properties import BooleanProperty, ListProperty, ObjectProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.modalview import ModalView
from kivy.uix.screenmanager import Screen

from stu_client import core


class AnswerRoot(FloatLayout):
    """The screens, the banners and the overlays (lock, seat number, warnings, dialogs)."""

    def redraw(self) -> None:
        app = App.get_running_app()
        if app is None:  # the app is stopping
            return
        sm = self.ids.screens
        if sm.current != app.step:
            sm.current = app.step
        if app.step == core.Step.ANSWERING.value:
            sm.get_screen("answering").redraw()
        self._overlay("lock", app.locked, LockOverlay)
        self._overlay("seat", bool(app.seat_shown) and not app.locked, SeatOverlay)

    def _overlay(self, name: str, wanted: bool, cls: type[ModalView]) -> None:
        view = getattr(self, f"_{name}_view", None)
        if wanted and view is None:
            view = cls()
            setattr(self, f"_{name}_view", view)
            view.open(animation=False)
        elif not wanted and view is not None:
            view.dismiss(animation=False)
            setattr(self, f"_{name}_view", None)

    def warn(self, text: str) -> None:
        NoticeDialog(text=text).open(animation=False)

    def confirm_submit(self) -> None:
        app = App.get_running_app()
        left = app.n_unanswered
        text = (
            f"你还有 {left} 道题未作答。" if left else "你已完成全部题目。"
        ) + "\n交卷后将不能再修改答案，确定交卷吗？"
        SubmitDialog(text=text).open(animation=False)


class OptionButton(Button):
    """One option of a choice or true/false question; `chosen` draws it selected."""

    letter = StringProperty("")
    chosen = BooleanProperty(False)
    multiple = BooleanProperty(False)


class GridCell(Button):
    """One question in the grid: its number, answered / unanswered / flagged, current."""

    key = ListProperty([])
    mark = StringProperty("unanswered")
    current = BooleanProperty(False)


class NoticeDialog(ModalView):
    """A notice the candidate closes with 知道了 (the 15- and 5-minute warnings)."""

    text = StringProperty("")


class SubmitDialog(ModalView):
    """交卷 asks once more, with the number of questions left unanswered."""

    text = StringProperty("")


class LockOverlay(ModalView):
    """The box locked this PC (考生锁屏): the notice until 我已知晓."""


class SeatOverlay(ModalView):
    """The box shows the seat numbers (显示机位号)."""


class QuestionPanel(BoxLayout):
    """The question on screen: its text and the controls for its type."""

    question = ObjectProperty(None, allownone=True)
    value = ObjectProperty(None, allownone=True)
    work_info = StringProperty("")

    def show(self, q: core.Question | None, value: Any) -> None:
        if q is self.question and value == self.value:
            return
        changed = q is not self.question
        self.question, self.value = q, value
        box = self.ids.controls
        if not changed and q is not None and q.type == "fill":
            return  # keep the text field (and its cursor) while the candidate types
        box.clear_widgets()
        if q is None:
            return
        if q.type in ("single", "multiple"):
            chosen = set(value or []) if q.type == "multiple" else {value}
            for letter, text in zip(core.LETTERS, q.options, strict=False):
                box.add_widget(
                    Factory.OptionButton(
                        letter=letter,
                        text=f"{letter}．{text}",
                        chosen=letter in chosen,
                        multiple=q.type == "multiple",
                    )
                )
        elif q.type == "judge":
            for v, text in ((True, "正确"), (False, "错误")):
                box.add_widget(Factory.OptionButton(letter="T" if v else "F", text=text, chosen=value is v))
        elif q.type == "fill":
            box.add_widget(Factory.FillInput(text=value or ""))
        else:
            box.add_widget(Factory.WorkPanel())

    def choose(self, letter: str) -> None:
        app, q = App.get_running_app(), self.question
        if q is None:
            return
        if q.type == "single":
            app.answer(letter)
        elif q.type == "multiple":
            app.answer(core.toggle(self.value or [], letter))
        elif q.type == "judge":
            app.answer(letter == "T")


class AnsweringScreen(Screen):
    def redraw(self) -> None:
        app = App.get_running_app()
        s = app.session
        q = s.question()
        self.ids.panel.show(q, s.answers.get(q.key) if q else None)
        grid = self.ids.grid
        marks = tuple(app.grid)
        current = s.current
        if getattr(grid, "_drawn", None) != (marks, current):
            grid._drawn = (marks, current)
            grid.clear_widgets()
            for n, (key, mark) in enumerate(marks, start=1):
                grid.add_widget(
                    Factory.GridCell(text=str(n), key=list(key), mark=mark, current=tuple(key) == current)
                )


Factory.register("AnswerRoot", cls=AnswerRoot)
Factory.register("OptionButton", cls=OptionButton)
Factory.register("GridCell", cls=GridCell)
Factory.register("NoticeDialog", cls=NoticeDialog)
Factory.register("SubmitDialog", cls=SubmitDialog)
Factory.register("LockOverlay", cls=LockOverlay)
Factory.register("SeatOverlay", cls=SeatOverlay)
Factory.register("QuestionPanel", cls=QuestionPanel)
Factory.register("AnsweringScreen", cls=AnsweringScreen)
