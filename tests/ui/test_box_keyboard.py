"""A hardware keyboard on the proctor box: keys sent to the real window on the Xvfb screen
by `xdotool` (XTEST, as a keyboard plugged into the box types), beside the on-screen
keyboard. The password is typed and sent with Enter, a form's fields are typed into, Tab
moves on, Enter is 确定; the on-screen keys type at the same cursor.

The system input method itself (Fcitx or IBus composing Chinese) cannot be run here: no
input-method daemon and D-Bus session on the test's X screen. What it needs from the app
is checked instead: SDL's text input (through which the input method's composition and
text reach Kivy's TextInput) is on while a field has the focus and off when none has."""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
from pathlib import Path
from typing import Any

import pytest

from tests.ui.box_harness import box_app, box_engine, open_form
from tests.ui.harness import find, one, press, run_test, settle, tap, until


async def xdotool(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        "xdotool", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, f"xdotool {' '.join(args)}: {err.decode().strip()}"
    return out.decode()


async def focus_window() -> None:
    """Give the app's window the X input focus (there is no window manager to do it)."""
    found = (await xdotool("search", "--pid", str(os.getpid()))).split()
    assert found, "the app's window was not found on the X screen"
    for window in found:  # SDL's window and its helper windows: the mapped one takes it
        proc = await asyncio.create_subprocess_exec("xdotool", "windowfocus", window)
        await proc.wait()


async def type_on_keyboard(text: str) -> None:
    await xdotool("type", "--delay", "30", text)


async def key(name: str) -> None:
    await xdotool("key", name)


def text_input_on() -> bool:
    """SDL's text input (SDL_IsTextInputActive): on, the input method composes into the app."""
    from kivy.core.window import Window

    return bool(Window._win.is_keyboard_shown())  # Kivy's SDL window has no public call for it


async def presented(x: int, y: int) -> tuple[int, int, int]:
    """The pixel that the X screen shows (`xwd -root`): what the app's buffer swap put
    there, not what the app's GL buffer holds."""
    proc = await asyncio.create_subprocess_exec(
        "xwd", "-root", "-silent", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    data, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    header = struct.unpack(">25I", data[:100])
    size, byte_order, bits, per_line, colours = header[0], header[7], header[11], header[12], header[19]
    assert bits == 32, header
    at = size + 12 * colours + y * per_line + 4 * x
    px = data[at : at + 4]
    return (px[2], px[1], px[0]) if byte_order == 0 else (px[1], px[2], px[3])


def near(rgb: tuple[int, int, int], want: tuple[float, float, float]) -> bool:
    return all(abs(c - round(w * 255)) <= 3 for c, w in zip(rgb, want, strict=True))


def focused() -> list[Any]:
    from kivy.uix.textinput import TextInput

    return [w for w in find() if isinstance(w, TextInput) and w.focus]


def test_a_hardware_keyboard_types_into_every_field_and_enter_confirms(tmp_path: Path, xdisplay: str) -> None:
    if shutil.which("xdotool") is None:
        pytest.fail("xdotool is missing: scripts/setup.sh installs it")

    async def body() -> None:
        async with box_engine(tmp_path, 0) as (engine, _fleet), box_app(engine) as app:
            password = app.root.ids.login.ids.password
            await until(lambda: password.focus, what="the password field focused at start")
            assert text_input_on()
            await focus_window()

            await type_on_keyboard("123")  # a wrong password, then Enter
            await until(lambda: password.text == "123", what="the typed password in the field")
            await key("Return")
            await until(lambda: app.login_error, what="the refusal")
            assert not app.logged_in and password.text == "" and password.focus  # type again at once

            await type_on_keyboard("8")  # the keyboard and the on-screen keys, at one cursor
            await until(lambda: password.text == "8")
            await press("8")
            await until(lambda: password.text == "88", what="the on-screen key typed")
            assert password.focus  # a tap on a key leaves the field focused
            await type_on_keyboard("8")
            await until(lambda: password.text == "888", what="typing on after the on-screen key")
            await key("Return")
            await until(lambda: app.logged_in, what="logged in by the typed password and Enter")
            assert not password.focus  # the hidden login field takes no more keys
            strip = (0.10, 0.22, 0.42)  # the status strip's blue (shell.kv), where the login was grey
            for _ in range(100):  # the frames reach the screen (the app swaps them itself)
                if near(await presented(300, 10), strip):
                    break
                await settle()
            assert near(await presented(300, 10), strip), await presented(300, 10)

            # A form: its first field has the focus; Tab moves on; Enter is 确定.
            await press("系统管理")
            form = await open_form(app, "设置管理员姓名与电话")
            name, phone = form.fields["name"].ids.input, form.fields["phone"].ids.input
            await until(lambda: name.focus, what="the form's first field focused")
            await type_on_keyboard("Li Si")
            await until(lambda: name.text == "Li Si", what="the name typed")
            await key("Tab")
            await until(lambda: phone.focus, what="Tab to the next field")
            await type_on_keyboard("1380771")
            tap(one(text="0"))  # the on-screen keyboard follows the focused field
            await type_on_keyboard("001")
            await until(lambda: phone.text == "13807710001", what="the phone typed")
            await key("Return")
            await until(lambda: form.result or form.error, what="the service's answer")
            assert not form.error, form.error
            user = (await engine.call("status"))["user"]
            assert (user["name"], user["phone"]) == ("Li Si", "13807710001")

            await press("关闭")
            await until(lambda: not find(cls="OpForm"), what="the form closed")
            assert not focused()
            await until(lambda: not text_input_on(), what="text input off with no field focused")

    run_test(body(), 120)
