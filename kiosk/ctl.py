"""`kiosk ctl`: one verb per operation of SPEC.md, sent to the running engine's local
admin API; prints a Chinese summary (or JSON with --json); non-zero exit on refusal."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from kiosk.ctl_text import human, status_text
from kiosk.net.admin import PORT_FILE, TOKEN_FILE
from kiosk.services.registry import GROUPS, OPERATIONS, Op

EXIT_REFUSED, EXIT_UNREACHABLE = 1, 3


def build_parser() -> argparse.ArgumentParser:
    epilog = []
    for group in GROUPS:
        epilog.append(f"{group}:")
        epilog += [f"  {op.verb:<18} {op.title}" for op in OPERATIONS if op.group == group]
    parser = argparse.ArgumentParser(
        prog="kiosk ctl",
        description="监考机命令行：对运行中的监考引擎执行一项操作",
        epilog="\n".join(epilog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--home", help="监考机数据目录（默认 KIOSK_HOME）")
    parser.add_argument("--json", action="store_true", help="输出 JSON")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for op in OPERATIONS:
        p = sub.add_parser(op.verb, description=f"[{op.group}] {op.title}")
        for prm in op.params:
            flag = "--" + prm.name.replace("_", "-")
            if prm.kind == "bool":
                p.add_argument(flag, dest=prm.name, action="store_true", help=prm.help)
            elif prm.kind == "list":
                p.add_argument(flag, dest=prm.name, nargs="+", required=prm.required, help=prm.help)
            else:
                p.add_argument(
                    flag,
                    dest=prm.name,
                    type=int if prm.kind == "int" else str,
                    required=prm.required and not (op.password and prm.name == "password"),
                    default=prm.default,
                    help=prm.help,
                )
    return parser


def call(home: Path, verb: str, params: dict[str, Any], timeout: float = 120.0) -> dict[str, Any]:
    """POST one operation; returns the API's JSON answer (ok + result, or ok=false + error)."""
    try:
        addr = (home / PORT_FILE).read_text().strip()
        token = (home / TOKEN_FILE).read_text().strip()
    except OSError as exc:
        raise ConnectionError(f"监考引擎未运行（{home} 中没有 {PORT_FILE}）") from exc
    req = urllib.request.Request(
        f"http://{addr}/api/op/{verb}",
        data=json.dumps(params).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            body = exc.read()
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            answer = {
                "ok": False,
                "error": {
                    "code": f"http_{exc.code}",
                    "zh": f"监考引擎返回错误 {exc.code}",
                    "en": body[:200].decode(errors="replace"),
                },
            }
        return answer
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ConnectionError(f"无法连接监考引擎 {addr}：{exc}") from exc


def _params(op: Op, ns: argparse.Namespace) -> dict[str, Any]:
    out = {}
    for prm in op.params:
        value = getattr(ns, prm.name)
        if prm.kind == "bool" and not value:
            continue
        if value is None and op.password and prm.name in ("password", "old", "new"):
            value = getpass.getpass(f"{prm.name}: ")
        if value is not None:
            out[prm.name] = value
    return out


def main(argv: list[str] | None = None) -> int:
    from kiosk import settings

    ns = build_parser().parse_args(argv)
    home = Path(ns.home or settings.load().home)
    op = next(o for o in OPERATIONS if o.verb == ns.verb)
    try:
        answer = call(home, op.verb, _params(op, ns))
    except ConnectionError as exc:
        print(f"错误：{exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    if ns.json:
        print(json.dumps(answer, ensure_ascii=False, indent=1, default=str))
    elif answer.get("ok"):
        print(f"完成：{op.title}")
        result = answer.get("result")
        if op.verb in ("status", "refresh"):
            print(status_text(result))
        elif result not in (None, {}, []):
            print(human(result))
    else:
        err = answer.get("error", {})
        print(
            f"拒绝：{err.get('zh', '')}\n({err.get('code', '')}: {err.get('en', '')})",
            file=sys.stderr,
        )
    return 0 if answer.get("ok") else EXIT_REFUSED
