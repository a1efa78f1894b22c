"""The proctor box's shared widgets: the on-screen keyboard (letters or digits), and the
operation form that every toolbar button and seat menu opens — one field per
parameter of the operation (kiosk.services.registry), presets for the usual phrases,
the result or the refusal shown in Chinese."""

from __future__ import annotations

from typing import Any

from kivy.app import App
from kivy.factory import Factory
from kivy.metrics import dp
from kivy.properties import BooleanProperty, NumericProperty, ObjectProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.modalview import ModalView

from kiosk.ctl_text import human
from kiosk.services.registry import BY_VERB, Op

LETTER_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm.-/")  # . - / for IPs, names, paths
DIGIT_ROWS = ("123", "456", "789", "0")
# One-tap phrases for the free-text fields (the system input method still works when a
# keyboard is attached).
PRESETS = {
    "description": ("携带纸条进入考场", "与他人交谈", "偷看他人答案", "考试机故障", "考试机断电", "网络中断"),
    "reason": ("考试机故障", "网络中断", "断电", "考生身体不适", "误操作"),
    "notice": ("请停止作答，等待监考员处理。", "请遵守考场纪律。"),
    "text": ("请注意考试时间。", "距离考试结束还有30分钟。", "请检查答案后再交卷。"),
    "handler": ("李四", "张三"),
}


HINTS = {  # parameters the registry leaves without a help text
    "path": "文件（可点选下方U盘上的文件）",
    "folder": "文件夹（可点选下方的U盘）",
    "dest": "目标文件夹（可点选下方的U盘）",
    "admission_no": "准考证号",
    "admission_nos": "准考证号（多个用逗号分隔；可在座位图中勾选）",
    "session": "场次",
    "admin_name": "系统管理员姓名",
    "admin_phone": "系统管理员电话",
    "invigilator_name": "监考员姓名",
    "invigilator_phone": "监考员电话",
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
    """One key of the on-screen keyboard."""


class Keyboard(BoxLayout):
    """Types into `target` (a TextInput); `digits` for codes and numbers."""

    target = ObjectProperty(None, allownone=True)
    digits = BooleanProperty(False)
    upper = BooleanProperty(False)

    def on_kv_post(self, *_args: Any) -> None:
        self.build()

    def on_digits(self, *_args: Any) -> None:
        self.build()

    def on_upper(self, *_args: Any) -> None:
        self.build()

    def build(self) -> None:
        self.clear_widgets()
        rows = [*DIGIT_ROWS] if self.digits else [*LETTER_ROWS]
        specials = (
            ("退格", "清除")
            if self.digits
            else ("大写" if not self.upper else "小写", "空格", "退格", "清除")
        )
        for keys in [*rows, None]:
            row = BoxLayout(spacing=dp(6))
            for k in specials if keys is None else keys:
                row.add_widget(Key(text=k.upper() if self.upper and keys is not None else k))
            self.add_widget(row)

    def press(self, key: str) -> None:
        if key in ("大写", "小写"):
            self.upper = not self.upper
            return
        t = self.target
        if t is None:
            return
        if key == "退格":
            t.text = t.text[:-1]
        elif key == "清除":
            t.text = ""
        elif key == "空格":
            t.text += " "
        else:
            t.text += key


class OpButton(Button):
    """A button that opens one operation's form (its title from the registry)."""

    verb = StringProperty("")

    def on_verb(self, _w: Any, verb: str) -> None:
        if not self.text:
            self.text = label(verb)


class KDialog(ModalView):
    """A dialog whose content is a KCard; closes only by its own buttons."""


class Toast(ModalView):
    """A short list or notice, closed by 知道了 or a tap outside."""

    text = StringProperty("")


class ReportView(KDialog):
    """A report (考场情况记录单, 环境检测报告) as text on the box's screen."""

    title = StringProperty("")
    text = StringProperty("")


class OpForm(KDialog):
    """One operation of the room service as a form: its parameters, 确定 and 取消, and
    what the service answered."""

    title = StringProperty("")
    result = StringProperty("")
    error = StringProperty("")
    running = BooleanProperty(False)
    progress = NumericProperty(0)  # 0..100 for the operations that report it
    progress_text = StringProperty("")

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
        self.fields: dict[str, Any] = {}
        box = self.ids.fields
        for p in op.params:
            value = (prefill or {}).get(p.name, p.default)
            hint = p.help or HINTS.get(p.name, p.name)
            if p.kind == "bool":
                w = Factory.KToggle(text=hint, state="down" if value else "normal")
            else:
                w = FormInput(
                    hint_text=hint + ("（必填）" if p.required else ""),
                    text=""
                    if value is None
                    else (",".join(value) if isinstance(value, list) else str(value)),
                    digits=p.kind == "int",
                    upper=p.name == "code",  # authorisation codes: capitals and digits
                    password=p.name in ("password", "old", "new"),
                    presets=[*(choices or {}).get(p.name, ()), *((x, x) for x in PRESETS.get(p.name, ()))],
                )
            self.fields[p.name] = w
            box.add_widget(w)
        first = next((w for w in self.fields.values() if isinstance(w, FormInput)), None)
        self.ids.keyboard.target = first.ids.input if first is not None else None
        if first is not None:
            self.ids.keyboard.digits, self.ids.keyboard.upper = first.digits, first.upper
        self.ids.keyboard.opacity = 1 if first is not None else 0

    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for p in self.op.params:
            w = self.fields[p.name]
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
                out[p.name] = [x.strip() for x in text.replace("，", ",").split(",") if x.strip()]
            else:
                out[p.name] = text
        return out

    def submit(self) -> None:
        App.get_running_app().run_op(self.op, self.values(), self)

    def done(self, result: Any) -> None:
        self.error = ""
        self.result = human(result) if result not in (None, {}, []) else "完成"

    def show_progress(self, done: int, total: int) -> None:
        self.progress = 100 * done / total if total else 100
        self.progress_text = f"{done} / {total}"

    def refused(self, zh: str) -> None:
        self.result, self.error = "", zh


class FormInput(BoxLayout):
    """A text field of an OpForm, with its presets; focusing it points the keyboard at it."""

    hint_text = StringProperty("")
    text = StringProperty("")
    digits = BooleanProperty(False)
    upper = BooleanProperty(False)
    password = BooleanProperty(False)

    def __init__(self, presets: list[tuple[str, str]] | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        for text, value in presets or ():
            self.ids.presets.add_widget(Factory.Preset(text=text, on_release=lambda _b, v=value: self.put(v)))
        self.ids.presets.height = dp(48) if presets else 0

    def put(self, phrase: str) -> None:
        self.ids.input.text = phrase

    def focus_keyboard(self) -> None:
        form = self.parent
        while form is not None and not isinstance(form, OpForm):
            form = form.parent
        if isinstance(form, OpForm):
            form.ids.keyboard.target = self.ids.input
            form.ids.keyboard.digits = self.digits
            form.ids.keyboard.upper = self.upper


for cls in (Key, Keyboard, OpButton, KDialog, Toast, ReportView, OpForm, FormInput):
    Factory.register(cls.__name__, cls=cls)
