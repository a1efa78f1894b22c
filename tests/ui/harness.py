"""Driving the real answer app in its real window: find widgets by what the candidate
sees, tap them with simulated touches at their place in the window, and wait for the
screen to change. The app runs on the test's asyncio loop with the box and the daemons."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import tempfile
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from kiosk.common.clock import ManualClock
from kiosk.site.inputs import CandidateSpec
from kiosk.site.mock import author_site, build_default_exam, build_exam_from, default_bank
from tests.liveroom import ROOM, LiveRoom

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
    """Tap the one enabled button showing this text, once it is laid out in the window
    (its place is the same over two drawn frames: a screen just switched to has its
    widgets at the origin until its first layout)."""
    from kivy.clock import Clock

    seen: dict[int, tuple[float, float, int]] = {}

    def ready() -> Any:
        found = [w for w in find(text, contains=contains) if hasattr(w, "trigger_action") and _topmost(w)]
        if len(found) != 1 or found[0].disabled or found[0].width <= 1 or found[0].get_root_window() is None:
            return None
        w = found[0]
        x, y = w.to_window(*w.center)
        before = seen.get(id(w))
        seen[id(w)] = (x, y, Clock.frames_displayed)
        stable = before is not None and before[:2] == (x, y) and before[2] < Clock.frames_displayed
        return w if stable else None

    def visible() -> Any:  # a button inside a scrolled list is scrolled into view first
        w = ready()
        if w is None:
            return None
        for view in (p for p in ancestors(w) if type(p).__name__ == "ScrollView"):
            vx, vy = view.parent.to_window(*view.pos)
            x, y = w.to_window(*w.center)
            if not (vx <= x <= vx + view.width and vy <= y <= vy + view.height):
                view.scroll_to(w, padding=10, animate=False)
                seen.clear()
                return None
        return w

    widget = await until(visible, timeout, f"button {text or contains!r}")
    tap(widget)
    return widget


def ancestors(widget: Any) -> Iterator[Any]:
    p = widget.parent
    while p is not None and p is not p.parent:
        yield p
        p = p.parent


def _topmost(widget: Any) -> bool:
    """No overlay covers the widget: it is under the window's last child, or is in it."""
    from kivy.core.window import Window

    return any(w is widget for w in walk(Window.children[0]))


def shoot(folder: Path, name: str) -> Path:
    """A screenshot of the window as `<folder>/<name>.png`. Rows are read with a pack
    alignment of 1: Kivy's own screenshot shears widths that are not a multiple of 4
    (1366)."""
    from kivy.core.window import Window
    from kivy.graphics.opengl import GL_PACK_ALIGNMENT, GL_RGB, GL_UNSIGNED_BYTE, glPixelStorei, glReadPixels

    folder.mkdir(parents=True, exist_ok=True)
    width, height = (int(v) for v in Window.size)
    glPixelStorei(GL_PACK_ALIGNMENT, 1)
    data = glReadPixels(0, 0, width, height, GL_RGB, GL_UNSIGNED_BYTE)
    row = width * 3
    rows = b"".join(b"\x00" + data[y * row : (y + 1) * row] for y in range(height - 1, -1, -1))
    target = folder / f"{name}.png"
    target.write_bytes(_png(width, height, rows))
    return target


def _png(width: int, height: int, filtered_rows: bytes) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(filtered_rows, 6))
        + chunk(b"IEND", b"")
    )


@asynccontextmanager
async def exam_room(tmp: Path, mock: bool = False, both: bool = False) -> AsyncIterator[tuple[LiveRoom, Any]]:
    """A box with two seated PCs and session 1 entered and authorised (login not yet
    allowed); `both`: each candidate sits the theory and the operation subject."""
    t0 = time.time()  # the box clock starts at the PCs' time (the environment check compares them)
    clock = ManualClock(t0)
    async with LiveRoom(tmp, 2, clock=clock) as room:
        room.t0 = t0  # type: ignore[attr-defined]
        await room.seat_all()
        if both:
            people = [
                CandidateSpec(
                    f"19011999999001100{n}",
                    name,
                    sex,
                    "身份证",
                    id_number(f"11010520030{n}1{n}123"),
                    ("T01", "P01"),
                    1,
                )
                for n, name, sex in ((1, "林晓雯", "女"), (2, "周子航", "男"))
            ]
            exam = build_exam_from(default_bank(), people, room_code=ROOM, first_start=t0 + 3600, mock=mock)
            exam.package["candidates"][0]["photo"] = base64.b64encode(portrait_png()).decode()
        else:
            exam = build_default_exam(
                room_code=ROOM, first_start=t0 + 3600, candidates_per_session=2, mock=mock
            )
        exam.package["exam"]["policy"].update(countdown_s=30)
        files = author_site(tmp / "site", [exam]).rooms[ROOM]
        env = await room.op("envcheck")
        assert not env["failed"], env
        await room.op("room_sheet_import", str(files.sheet), files.registration_code)
        await room.op("exam_import", str(files.package))
        assert (await room.op("seal_check"))["passed"]
        await room.op("session_enter", 1, "张三", "15000000001", "李四", "15000000002")
        clock.set(t0 + 3600 - 1200)  # the authorisation's window
        await room.op("authorise", str(files.authorisations[1]))
        yield room, clock


@asynccontextmanager
async def answer_app(state_dir: Path) -> AsyncIterator[Any]:
    from stu_client.ui.app import build_app_class

    app = build_app_class()(state_dir)
    task = asyncio.create_task(app.run_async())
    try:
        await until(lambda: app.root is not None and app.link.connected, what="the app linked to its daemon")
        yield app
    finally:
        app.stop()
        await task


def chosen() -> list[str]:
    return sorted(b.letter for b in find(cls="OptionButton") if b.chosen)


async def showing(app: Any, key: tuple[str, str]) -> None:
    panel = app.root.ids.screens.get_screen("answering").ids.panel
    await until(lambda: panel.question is not None and panel.question.key == key, what=f"question {key}")


def candidates(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["admission_no"]: c for c in status["session"]["candidates"]}


async def log_in(app: Any, admission_no: str) -> None:
    await screen(app, "login")
    field = one(cls="TextInput")
    for digit in admission_no:  # by the on-screen number pad, as on a touch screen
        await press(digit)
    assert field.text == admission_no
    await press("登 录")
    await screen(app, "confirm")


def stored_on_box(room: LiveRoom, admission_no: str) -> dict[tuple[str, str], Any]:
    from kiosk.common.models import Answer

    def read() -> dict[tuple[str, str], Any]:
        rows = Answer.select().where(Answer.admission_no == admission_no)
        return {(a.subject, a.question): json.loads(a.value) for a in rows}

    return room.executor.submit(read).result()


def box_status(room: LiveRoom) -> dict[str, Any]:
    """The room status read on the service thread from a synchronous predicate."""
    return room.executor.submit(room.service.status).result()


async def settle(frames: int = 3) -> None:
    """Until the window has drawn a few more frames: what changed is on screen."""
    from kivy.clock import Clock

    target = Clock.frames_displayed + frames
    await until(lambda: Clock.frames_displayed >= target, what="frames drawn")


def portrait_png(width: int = 150, height: int = 200) -> bytes:
    """A stand-in ID photo: a grey head and shoulders on a light blue ground."""
    rows = bytearray()
    for y in range(height):
        rows.append(0)
        for x in range(width):
            head = (x - width / 2) ** 2 + (y - height * 0.38) ** 2 < (width * 0.22) ** 2
            body = y > height * 0.62 and abs(x - width / 2) < width * 0.42 - (height - y) * 0.3
            rows += bytes((96, 104, 118) if head or body else (214, 228, 245))
    return _png(width, height, bytes(rows))


def id_number(first17: str) -> str:
    """A resident ID number with its GB 11643 check digit."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(d) * w for d, w in zip(first17, weights, strict=True))
    return first17 + "10X98765432"[total % 11]


async def long_press(widget: Any, opened: Callable[[], Any]) -> None:
    """A finger held on the widget until `opened()` (its menu) shows, then lifted."""
    from kivy.clock import Clock
    from kivy.tests.common import UnitTestTouch

    last: list[Any] = []

    def settled() -> Any:  # the same place over two drawn frames
        here = (widget.to_window(*widget.center), Clock.frames_displayed)
        done = bool(last) and last[0][0] == here[0] and last[0][1] < here[1]
        last[:] = [here]
        return here[0] if done else None

    x, y = await until(settled, what="the widget laid out")
    touch = UnitTestTouch(x, y)
    touch.touch_down()
    try:
        await until(opened, what="the long-press menu")
    finally:
        touch.touch_up()


async def type_keys(text: str) -> None:
    """Type on the on-screen keyboard, key by key."""
    for ch in text:
        await press(ch)


async def through_to_the_paper(app: Any, room: LiveRoom, clock: ManualClock) -> None:
    """From the identity check to the paper: confirm, agree, draw, read the rules, and
    the box starts the exam (its countdown of 30 s run on the box clock)."""
    for button in ("信息无误", "同意并继续", "抽 卷", "我已阅读"):
        await press(button)
    await screen(app, "countdown")
    clock.set(room.t0 + 3600 - 10)  # type: ignore[attr-defined]
    await room.op("allow_start")
    clock.advance(31)
    await screen(app, "answering")


def run_test(coro: Any, limit_s: float = 150) -> None:
    """Run an async test body on a fresh loop, failing (not hanging) after limit_s."""

    async def main() -> None:
        async with asyncio.timeout(limit_s):
            await coro

    asyncio.run(main())
