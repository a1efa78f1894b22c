"""The answer app as its own process for the crash test: it answers question after
question by touch and prints, as JSON lines, each answer once the screen shows it saved
and each question it moves to. The test kills it with SIGKILL at a random moment.

    python -m tests.ui.crash_app STATE_DIR"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from tests.ui import conftest  # Kivy's environment, before Kivy is imported
from tests.ui import harness as h


async def main(state_dir: Path) -> None:
    async with h.answer_app(state_dir) as app:
        await h.screen(app, "answering", timeout=30)
        n = 0
        while True:
            q = app.session.question()
            await h.showing(app, q.key)
            value = "ABCD"[n % 4] if q.type == "single" else None
            if value is None:
                await h.press("下一题")
                await h.until(lambda q=q: app.session.current != q.key)
                continue
            await h.press(contains=f"{value}．")
            await h.until(lambda q=q, v=value: app.session.answers.get(q.key) == v)
            await h.until(lambda: not app.session.pending)
            await h.until(lambda: app.save_line in ("已保存", "已同步"))
            print(json.dumps({"saved": list(q.key), "value": value}), flush=True)
            await h.press("下一题")
            await h.until(lambda q=q: app.session.current != q.key)
            print(json.dumps({"at": list(app.session.current)}), flush=True)
            n += 1


if __name__ == "__main__":
    from kivy.config import Config

    Config.set("graphics", "width", str(conftest.SCREEN[0]))
    Config.set("graphics", "height", str(conftest.SCREEN[1]))
    asyncio.run(main(Path(sys.argv[1])))
