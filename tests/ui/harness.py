"""Driving the real answer app in its real window: find widgets by what the candidate
sees, tap them with simulated touches at their place in the window, and wait for the
screen to change. The app runs on the test's asyncio loop with the box and the daemons."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

T = 10.0  # every wait's timeout


def walk(widget: Any) -> Iterator[Any]:
    yield widget
    for child in widget.children:
        yield from walk(child)


def on_screen() -> Iterator[Any]:
    """Every widget in the window: the screens and any open overlay (ModalViews sit on
    the window itself, above the root)."""
    from kivy.core.window import Window

    for top in Window.children:
        yield from walk(top)


def find(text: str | None = None, cls: str | None = None, contains: str | None = None) -> list[Any]:
    found = []
    for w in on_screen():
        if cls is not None and type(w).__name__ != cls:
            continue
        label = getattr(w, "text", None)
        if text is not None and label != text:
            continue
        if contains is not None and (not isinstance(label, str) or contains not in label):
            continue
        found.append(w)
    return found


def one(text: str | None = None, cls: str | None = None, contains: str | None = None) -> Any:
    found = find(text, cls, contains)
    assert len(found) == 1, f"expected one widget {text or contains or cls!r} on screen, found {len(found)}"
    return found[0]


def tap(widget: Any) -> None:
    """A finger down and up at the widget's centre, through the window's touch dispatch."""
    from kivy.tests.common import UnitTestTouch

    assert not getattr(widget, "disabled", False), f"{getattr(widget, 'text', widget)!r} is disabled"
    x, y = widget.to_window(*widget.center)
    touch = UnitTestTouch(x, y)
    touch.touch_down()
    touch.touch_up()


async def until(condition: Callable[[], Any], timeout: float = T, what: str = "") -> Any:
    """Poll the condition while the app, the box and the daemons run on this loop."""
    end = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            shot = shoot(Path(tempfile.gettempdir()), "ui-timeout")  # what the screen showed
            raise AssertionError(f"timed out waiting for {what or condition} (screen: {shot})")
        await asyncio.sleep(0.03)


async def screen(app: Any, name: str, timeout: float = T) -> None:
    await until(lambda: app.step == name and app.root.ids.screens.current == name, timeout, f"screen {name}")


async def press(text: str | None = None, contains: str | None = None, timeout: float = T) -> Any:
    """Tap the one enabled button showing this text, once it is laid out in the window."""

    def ready() -> Any:
        found = [w for w in find(text, contains=contains) if hasattr(w, "trigger_action")]
        if len(found) != 1 or found[0].disabled:
            return None
        w = found[0]
        return w if w.width > 1 and w.get_root_window() is not None and _topmost(w) else None

    widget = await until(ready, timeout, f"button {text or contains!r}")
    tap(widget)
    return widget


def _topmost(widget: Any) -> bool:
    """No overlay covers the widget: it is under the window's last child, or is in it."""
    from kivy.core.window import Window

    return any(w is widget for w in walk(Window.children[0]))


def shoot(folder: Path, name: str) -> Path:
    """A screenshot of the window as `<folder>/<name>.png` (Kivy appends a number)."""
    from kivy.core.window import Window

    folder.mkdir(parents=True, exist_ok=True)
    written = Window.screenshot(name=str(folder / f"{name}.png"))
    target = folder / f"{name}.png"
    Path(written).replace(target)
    return target


def debug(text: str) -> list[Any]:
    from kivy.core.window import Window

    return [
        (
            type(w).__name__,
            w.disabled,
            w.width,
            w.get_root_window() is not None,
            _topmost(w),
            type(Window.children[0]).__name__,
        )
        for w in find(text)
    ]
