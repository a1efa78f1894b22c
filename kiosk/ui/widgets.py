"""The proctor box's shared widgets: the on-screen keyboard (letters, digits or the
authorisation-code pad), and the operation form that every toolbar button and seat menu
opens — one field per parameter of the operation (kiosk.services.registry), presets for
the usual phrases, the result or the refusal shown in Chinese. Where the manual's dialog
has more steps (a challenge to read to the site and its code, a 是/否 confirmation), the
form follows the operation's flow (kiosk.ui.viewmodels.FLOWS): the service's refusal
says which step comes next, and the form calls the registry's ops for it."""

from __future__ import annotations

from typing import Any

from kivy.app import App
from kivy.factory import Factory
from kivy.metrics import dp
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, ObjectProperty, StringProperty
from kivy.uix.behaviors import FocusBehavior
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.modalview import ModalView
from kivy.uix.textinput import TextInput

from kiosk.core.codes import ALPHABET
from kiosk.ctl_text import human
from kiosk.services.registry import BY_VERB, Op
from kiosk.ui import viewmodels as vm

LETTER_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm,.-/")  # , . - / for lists, IPs, names, paths
DIGIT_ROWS = ("123", "456", "789", "0")
CODE_ROWS = tuple(ALPHABET[i : i + 8] for i in range(0, len(ALPHABET), 8))  # authorisation codes only
# One-tap phrases for the free-text fields (the system input method still works when a
# keyboard is attached).
PRESETS = {
    "description": ("携带纸条进入考场", "与他人交谈", "偷看他人答案", "考试机故障", "考试机断电", "网络中断"),
    "reason": ("考试机故障", "网络中断", "断电", "考生身体不适", "误操作"),
    "notice": ("请停止作答，等待监考员处理。", "请遵守考场纪律。"),
    "text": ("请注意考试时间。", "距离考试结束还有30分钟。", "请检查答案后再交卷。"),
    "handler": ("李四", "张三"),
}
VERB_PRESETS = {  # where the same field of another operation takes other phrases
    ("reexam", "reason"): ("作答包损坏，作答数据无法恢复", "考试机故障，作答数据无法恢复"),
    ("resume", "description"): ("考试机故障，无法继续作答", "考试机断电", "网络中断", "考生端异常退出"),
}


# Touch labels where the registry's title is written for the command line.
LABELS = {
    "envcheck": "环境检测（可只补测未通过的）",
    "authorise": "考试授权",
    "allow-start": "允许开考",
    "refresh": "刷新考生状态",
    "situation": "查看考场情况记录单",
    "envcheck-report": "查看环境检测报告",
}


def label(verb: str) -> str:
    return LABELS.get(verb) or BY_VERB[verb].title


class Key(Button):
    """One key of the on-screen keyboard. A tap on it leaves the field it types into
    focused, so that a hardware keyboard and the system input method go on typing there."""

    def on_touch_down(self, touch: Any) -> bool:
        if self.collide_point(*touch.pos) and touch not in FocusBehavior.ignored_touch:
            FocusBehavior.ignored_touch.append(touch)  # not a touch that unfocuses the field
        return bool(super().on_touch_down(touch))


class Keyboard(BoxLayout):
    """Types into `target` (a TextInput); `digits` for codes and numbers."""

    target = ObjectProperty(None, allownone=True)
    digits = BooleanProperty(False)
    upper = BooleanProperty(False)
    code = BooleanProperty(False)  # the authorisation-code pad: its 32 symbols only

    def on_kv_post(self, *_args: Any) -> None:
        self.build()

    def on_digits(self, *_args: Any) -> None:
        self.build()

    def on_code(self, *_args: Any) -> None:
        self.build()

    def on_upper(self, *_args: Any) -> None:
        self.build()

    def build(self) -> None:
        self.clear_widgets()
        rows = [*CODE_ROWS] if self.code else [*DIGIT_ROWS] if self.digits else [*LETTER_ROWS]
        specials = (
            ("退格", "清除")
            if self.digits or self.code
            else ("大写" if not self.upper else "小写", "空格", "退格", "清除")
        )
        for keys in [*rows, None]:
            row = BoxLayout(spacing=dp(6))
            for k in specials if keys is None else keys:
                row.add_widget(Key(text=k.upper() if self.upper and keys is not None else k))
            self.add_widget(row)

    def aim(self, field: FormInput | None) -> None:
        """Type into this field, with the pad its kind needs (hidden with no field)."""
        self.target = field.ids.input if field is not None else None
        if field is not None:
            self.digits, self.upper, self.code = field.digits, field.upper, field.code
        self.opacity = 1 if field is not None else 0

    def press(self, key: str) -> None:
        if key in ("大写", "小写"):
            self.upper = not self.upper
            return
        t = self.target
        if t is None:
            return
        if not t.focus:  # typing goes on at the end of what the field holds
            t.focus = True
            t.cursor = t.get_cursor_from_index(len(t.text))
        if key == "退格":
            t.do_backspace()
        elif key == "清除":
            t.text = ""
        else:  # at the cursor, as a hardware keyboard types (and through the field's filter)
            t.insert_text(" " if key == "空格" else key)


class OpButton(Button):
    """A button that opens one operation's form (its title from the registry)."""

    verb = StringProperty("")

    def on_verb(self, _w: Any, verb: str) -> None:
        if not self.text:
            self.text = label(verb)


class KDialog(ModalView):
    """A dialog whose content is a KCard; closes only by its own buttons. Its first text
    field takes the focus when it opens (a hardware keyboard types there at once, the
    system input method too), and its fields let go of it when it closes."""

    def on_open(self) -> None:
        first = next((w for w in self.walk(restrict=True) if isinstance(w, TextInput)), None)
        if first is not None:
            first.focus = True

    def on_pre_dismiss(self) -> None:
        for w in self.walk(restrict=True):
            if isinstance(w, TextInput):
                w.focus = False


class Toast(ModalView):
    """A short list or notice, closed by 知道了 or a tap outside."""

    text = StringProperty("")


class ReportView(KDialog):
    """A report (考场情况记录单, 环境检测报告) as text on the box's screen."""

    title = StringProperty("")
    text = StringProperty("")


class OpForm(KDialog):
    """One operation of the room service as a form: its parameters, 确定 and 取消, and
    what the service answered. Its flow adds, when the service asks for them, the
    challenge with the code's field (挑战码 / 申请码 in large type, the code pad) and 是 / 否
    confirmations that state what will be erased."""

    title = StringProperty("")
    notice = StringProperty("")  # the manual's 信息提示 at the top
    result = StringProperty("")
    error = StringProperty("")
    running = BooleanProperty(False)
    progress = NumericProperty(0)  # 0..100 for the operations that report it
    progress_text = StringProperty("")
    challenge_title = StringProperty("")  # shown with the challenge once the service asks for a code
    challenge_note = StringProperty("")
    challenge_rows = ListProperty([])  # (label, value) to read to the site
    question = StringProperty("")  # the 是 / 否 confirmation on screen (empty: the fields)

    def __init__(
        self,
        op: Op,
        prefill: dict[str, Any] | None = None,
        choices: dict[str, list[tuple[str, str]]] | None = None,
        **kw: Any,
    ) -> None:
        """`choices`: per parameter, one-tap (label, value) pairs (the packages on the
        sticks for a path, the sticks for a folder) before the usual phrases."""
        super().__init__(**kw)
        self.op = op
        self.title = label(op.verb)
        self.flow = vm.flow(op.verb, [p.name for p in op.params])
        self.notice = self.flow.notice
        self.flags: dict[str, bool] = {}  # the flags the flow's steps set (confirm, …)
        self.confirming: vm.ConfirmStep | None = None
        self._round = 0
        self._said = ""
        self.fields: dict[str, Any] = {}
        given = {**dict(self.flow.defaults), **(prefill or {})}
        for p in op.params:
            if p.kind == "bool" and p.name in self.flow.later:
                continue  # set by a confirmation, never a tick the officer could leave on
            value = given.get(p.name, p.default)
            hint = vm.field_hint(op.verb, p.name, p.help)
            phrases = VERB_PRESETS.get((op.verb, p.name), PRESETS.get(p.name, ()))
            if p.kind == "bool":
                w = Factory.KToggle(text=hint, state="down" if value else "normal")
            else:
                w = FormInput(
                    hint_text=hint + ("（必填）" if p.required else ""),
                    text=""
                    if value is None
                    else (",".join(value) if isinstance(value, list) else str(value)),
                    digits=p.kind == "int",
                    upper=p.name == "code",  # codes: capitals and digits
                    code=p.name == "code" and self.flow.code is not None,
                    multi=p.kind == "list",
                    password=p.name in ("password", "old", "new"),
                    presets=[*(choices or {}).get(p.name, ()), *((x, x) for x in phrases)],
                )
            self.fields[p.name] = w
            if p.name not in self.flow.later:
                self.ids.fields.add_widget(w)
        self.ids.keyboard.aim(self._first_input())

    def on_challenge_rows(self, _w: Any, rows: list[tuple[str, str]]) -> None:
        box = self.ids.challenge_rows
        box.clear_widgets()
        for key, value in rows:
            row = Factory.ChallengeRow()  # a kv class: its properties are set after it is made
            row.key, row.value, row.big = key, value, key == "申请码"
            box.add_widget(row)

    def _first_input(self) -> FormInput | None:
        return next((w for w in self.ids.fields.children[::-1] if isinstance(w, FormInput)), None)

    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for p in self.op.params:
            if p.name in self.flags:
                out[p.name] = self.flags[p.name]
                continue
            w = self.fields.get(p.name)
            if w is None:
                continue
            if p.kind == "bool":
                out[p.name] = w.state == "down"
                continue
            text = w.ids.input.text.strip()
            if not text:
                continue
            if p.kind == "int":
                try:
                    out[p.name] = int(text)
                except ValueError:
                    out[p.name] = text  # the service refuses it with its reason
            elif p.kind == "list":
                out[p.name] = vm.list_items(text)
            else:
                out[p.name] = text
        return out

    def submit(self) -> None:
        values = self.values()
        missing = vm.missing_fields(self.op, values)
        if missing:  # said with the field's own name, before the service is asked
            self.result, self.error = "", "请填写：" + "、".join(missing)
            return
        App.get_running_app().run_op(self.op, values, self)

    def done(self, result: Any) -> None:
        self.error, self.question, self.confirming = "", "", None
        self.challenge_rows, self.challenge_title, self.challenge_note = [], "", ""
        self.result = vm.answer_text(result, human)
        self.ids.keyboard.aim(None)

    def show_progress(self, done: int, total: int) -> None:
        self.progress = 100 * done / total if total else 100
        self.progress_text = f"{done} / {total}"

    def refused(self, zh: str, code: str = "") -> None:
        """The service said no: a step of the flow when the refusal asks for one (the
        code, a confirmation), else the reason; a confirmation given is asked again."""
        self.result, self.question, self.confirming = "", "", None
        step = vm.step_for(self.flow, code)
        if isinstance(step, vm.CodeStep):
            self.error = ""
            self._ask_code(step)
            return
        if isinstance(step, vm.ConfirmStep):
            self.error = ""
            self.confirming, self._round, self._said = step, 1, zh.rstrip("。")
            self.question = vm.confirm_text(self.op.verb, self.values(), self._said, 1, step.times)
            return
        for c in self.flow.confirms:
            self.flags.pop(c.flag, None)
        self.error = zh
        if self.flow.code is not None and code in ("challenge_spent", "no_challenge") and self.challenge_rows:
            self._ask_code(self.flow.code)  # a new challenge to read to the site

    def _ask_code(self, step: vm.CodeStep) -> None:
        self.challenge_title, self.challenge_note = step.title, step.note
        field = self.fields["code"]
        if field.parent is None:  # first, right under the challenge: seen while typed on the pad
            self.ids.fields.add_widget(field, index=len(self.ids.fields.children))
        self.ids.fields.parent.scroll_y = 1
        field.ids.input.text = ""
        self.ids.keyboard.aim(field)
        values = self.values()
        ask = {"purpose": step.purpose}
        if step.per_candidate:
            ask["admission_no"] = str(values.get("admission_no", ""))
        App.get_running_app().run_op(BY_VERB["challenge"], ask, _ChallengeShown(self, values))

    def answer(self, yes: bool) -> None:
        """是 / 否 on the confirmation: 否 goes back to the form with nothing done; the last
        是 sends the operation again with the flag set."""
        step = self.confirming
        if step is None:
            return
        if not yes:
            self.question, self.confirming = "", None
            self.error = "已取消，未做任何更改"
            return
        if self._round < step.times:
            self._round += 1
            self.question = vm.confirm_text(self.op.verb, self.values(), self._said, self._round, step.times)
            return
        self.question, self.confirming = "", None
        self.flags[step.flag] = True
        self.submit()


class _ChallengeShown:
    """Where the challenge op's answer goes: the form's challenge block."""

    def __init__(self, form: OpForm, values: dict[str, Any]) -> None:
        self.form, self.values, self.running = form, values, False

    def done(self, result: Any) -> None:
        self.form.challenge_rows = vm.challenge_rows(result, self.values)

    def refused(self, zh: str, code: str = "") -> None:
        self.form.error = zh

    def show_progress(self, done: int, total: int) -> None:
        """The challenge reports no progress."""


class FormInput(BoxLayout):
    """A text field of an OpForm, with its presets; focusing it points the keyboard at it.
    In a list field (`multi`) a preset adds or removes its value, ticked while chosen."""

    hint_text = StringProperty("")
    text = StringProperty("")
    digits = BooleanProperty(False)
    upper = BooleanProperty(False)
    code = BooleanProperty(False)
    multi = BooleanProperty(False)
    password = BooleanProperty(False)

    def __init__(self, presets: list[tuple[str, str]] | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self._presets: list[tuple[str, str, Any]] = []
        for text, value in presets or ():
            b = Factory.Preset(text=text, on_release=lambda _b, v=value: self.put(v))
            self._presets.append((text, value, b))
            self.ids.presets.add_widget(b)
        if self.multi:
            self.ids.input.bind(text=lambda *_a: self._tick())
            self._tick()

    def put(self, phrase: str) -> None:
        field = self.ids.input
        field.text = vm.toggle_item(field.text, phrase) if self.multi else phrase

    def _tick(self) -> None:
        chosen = set(vm.list_items(self.ids.input.text))
        for text, value, b in self._presets:
            b.text = ("✓ " if value in chosen else "") + text

    def focus_keyboard(self) -> None:
        form = self._form()
        if form is not None:
            form.ids.keyboard.aim(self)

    def enter(self) -> None:
        """Enter in the field (a hardware keyboard's) does what 确定 does, when it can."""
        form = self._form()
        if form is None:
            return
        ok = [w for w in form.walk(restrict=True) if isinstance(w, Button) and w.text == "确定"]
        if len(ok) == 1 and not ok[0].disabled and ok[0].get_root_window() is not None:
            ok[0].trigger_action(duration=0)

    def _form(self) -> OpForm | None:
        form = self.parent
        while form is not None and not isinstance(form, OpForm):
            form = form.parent
        return form


for cls in (Key, Keyboard, OpButton, KDialog, Toast, ReportView, OpForm, FormInput):
    Factory.register(cls.__name__, cls=cls)
