"""The local admin API: `kiosk ctl` and other local tools call room-service operations
over HTTP on 127.0.0.1 with a bearer token kept in the home folder.

Operations run one at a time on a single worker thread: the service is synchronous
and SQLite has one writer anyway."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aiohttp import web

from kiosk.common.crypto import random_token, tokens_equal
from kiosk.core.errors import Refused
from kiosk.services.registry import BY_VERB, coerce

log = logging.getLogger(__name__)

TOKEN_FILE = "admin.token"
PORT_FILE = "admin.port"
MAX_BODY = 1024 * 1024


def load_or_make_token(home: Path) -> str:
    path = home / TOKEN_FILE
    if path.exists():
        return path.read_text().strip()
    token = random_token()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token)
    return token


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        content_type="application/json",
        text=json.dumps(data, ensure_ascii=False, default=str),
    )


def make_app(service: Any, token: str, executor: ThreadPoolExecutor) -> web.Application:
    async def op(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        if not tokens_equal(auth, f"Bearer {token}"):
            return _json(
                {"ok": False, "error": {"code": "unauthorised", "zh": "未授权", "en": "bad token"}},
                401,
            )
        verb = request.match_info["verb"]
        spec = BY_VERB.get(verb)
        if spec is None:
            return _json(
                {
                    "ok": False,
                    "error": {
                        "code": "unknown_verb",
                        "zh": f"未知操作 {verb}",
                        "en": f"unknown verb {verb}",
                    },
                },
                404,
            )
        try:
            body = await request.json() if request.can_read_body else {}
            if not isinstance(body, dict):
                raise ValueError("body must be an object")
            params = coerce(spec, body)
            fn = getattr(service, spec.method)
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(executor, lambda: fn(**params))
        except Refused as exc:
            log.info("refused %s: %s", verb, exc.en)
            return _json({"ok": False, "error": exc.to_dict()}, 409)
        except (ValueError, json.JSONDecodeError) as exc:
            return _json(
                {
                    "ok": False,
                    "error": {"code": "bad_request", "zh": "请求格式错误", "en": str(exc)},
                },
                400,
            )
        return _json({"ok": True, "result": result})

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post("/api/op/{verb}", op)
    return app


async def start_admin(
    service: Any, home: Path, host: str, port: int, executor: ThreadPoolExecutor
) -> web.AppRunner:
    token = load_or_make_token(home)
    runner = web.AppRunner(make_app(service, token, executor), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    tmp = home / (PORT_FILE + ".tmp")
    tmp.write_text(f"{host}:{bound}\n")
    os.replace(tmp, home / PORT_FILE)
    log.info("admin API on %s:%s", host, bound)
    return runner
