"""The touch app attached to a `kiosk serve` already running on this box: the same
service operations, through the engine's local admin API (the token in its home
folder) instead of in-process calls. Live progress and events do not cross: the app
re-reads the room every second anyway."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiosk.core.errors import Refused
from kiosk.ctl import call as api_call
from kiosk.services.registry import OPERATIONS

_OPS = {op.method: op for op in OPERATIONS}


class RemoteEngine:
    def __init__(self, home: str | Path) -> None:
        self.home = Path(home)

    def subscribe(self, listener: Callable[[Any], None]) -> None:
        """No events cross the admin API: the app's once-a-second refresh stands in."""

    async def call(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        op = _OPS.get(name)
        if op is None or len(args) > len(op.params):
            raise Refused("not_remote", "该操作不能通过本机接口执行", f"{name} is not an API operation")
        kwargs.pop("progress", None)  # a callback does not cross HTTP
        params = {**dict(zip((p.name for p in op.params), args, strict=False)), **kwargs}
        try:
            answer = await asyncio.to_thread(api_call, self.home, op.verb, params)
        except ConnectionError as exc:
            raise Refused("engine_unreachable", f"无法连接监考引擎：{exc}", str(exc)) from exc
        if not answer.get("ok"):
            err = answer.get("error") or {}
            raise Refused(
                str(err.get("code", "refused")), str(err.get("zh", "操作失败")), str(err.get("en", ""))
            )
        return answer.get("result")
