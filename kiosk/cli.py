"""The `kiosk` command: serve (headless engine), ctl (one operation), demo (a whole
demo room on this machine), site (the exam-site tools: mock exams, code calculator)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path

from kiosk import settings as settings_mod


def _settings(home: str | None) -> settings_mod.Settings:
    return settings_mod.load(home=home)


def cmd_serve(ns: argparse.Namespace) -> int:
    from kiosk.engine import serve

    asyncio.run(serve(_settings(ns.home), simulate_seats=ns.simulate_seats))
    return 0


def cmd_demo(ns: argparse.Namespace) -> int:
    from kiosk.demo import run_demo

    logging.getLogger().setLevel(logging.WARNING)  # the demo prints the room itself
    return run_demo(home=ns.home, seats=ns.seats, speed=ns.speed, hold=ns.hold)


def cmd_site_mock(ns: argparse.Namespace) -> int:
    from kiosk.core.errors import Refused
    from kiosk.site.inputs import read_candidate_list, read_question_bank
    from kiosk.site.mock import build_default_exam, build_exam_from, default_bank, write_mock_exam

    start = ns.start if ns.start is not None else time.time() + 3600
    try:
        if ns.questions_file and not ns.candidates_file:
            raise Refused("bad_input", "使用自备题库时请同时提供考生名单（--candidates-file）", "no list")
        if ns.candidates_file:
            bank = read_question_bank(ns.questions_file) if ns.questions_file else default_bank()
            people = read_candidate_list(ns.candidates_file, {s.code for s in bank})
            exam = build_exam_from(
                bank, people, room_code=ns.room, site_code=ns.room[:7], first_start=start, mock=not ns.formal
            )
        else:
            exam = build_default_exam(
                room_code=ns.room,
                site_code=ns.room[:7],
                first_start=start,
                candidates_per_session=ns.candidates,
                mock=not ns.formal,
            )
    except Refused as exc:
        print(f"错误：{exc.zh}", file=sys.stderr)
        return 1
    paths = write_mock_exam(exam, Path(ns.out))
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def cmd_site_code(ns: argparse.Namespace) -> int:
    import base64

    from kiosk.core.errors import Refused
    from kiosk.site.codes import calculate

    try:
        secret = (
            base64.b64decode(Path(ns.secret_file).read_text().strip(), validate=True)
            if ns.secret_file
            else _secret_from_package(Path(ns.package))
        )
        code = calculate(ns.purpose, ns.room, ns.session, ns.challenge, ns.seconds, secret, time.time())
    except Refused as exc:
        print(f"拒绝：{exc.zh}", file=sys.stderr)
        return 1
    print(code)
    return 0


def _secret_from_package(path: Path) -> bytes:
    from kiosk.common.packages import read_exam_package

    return read_exam_package(path.read_bytes()).site_secret


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["ctl"]:  # ctl has its own parser with one sub-command per operation
        from kiosk.ctl import main as ctl_main

        return ctl_main(argv[1:])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="kiosk", description="监考机（考场监考管理系统）")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("serve", help="无界面运行监考引擎")
    p.add_argument("--home", help="数据目录（默认 KIOSK_HOME）")
    p.add_argument("--simulate-seats", type=int, default=0, help="在本进程模拟 N 台考试机（演示/测试）")
    p.set_defaults(fn=cmd_serve)
    sub.add_parser("ctl", help="执行一项监考操作（kiosk ctl --help）")
    p = sub.add_parser("demo", help="在本机运行一个演示考场")
    p.add_argument("--home", help="数据目录（默认临时目录）")
    p.add_argument("--seats", type=int, default=40)
    p.add_argument("--speed", type=float, default=60.0, help="演示时钟倍速")
    p.add_argument("--hold", action="store_true", help="演示结束后保持引擎运行（可用 kiosk ctl 查看）")
    p.set_defaults(fn=cmd_demo)
    site = sub.add_parser("site", help="考点工具").add_subparsers(dest="site_cmd", required=True)
    p = site.add_parser("mock", help="生成模拟考试数据")
    p.add_argument("--out", required=True)
    p.add_argument("--room", default="1999999001")
    p.add_argument("--candidates", type=int, default=40)
    p.add_argument("--start", type=float, help="第一场开考时间（epoch 秒，默认一小时后）")
    p.add_argument("--formal", action="store_true", help="正考（默认模考）")
    columns = "准考证号、姓名、性别、证件类型、证件号码、科目、场次"
    p.add_argument("--candidates-file", help=f"考生名单 .csv/.xlsx（{columns}）")
    p.add_argument("--questions-file", help="题库 .json/.xlsx（默认内置题库：理论 T01、实操 P01）")
    p.set_defaults(fn=cmd_site_mock)
    p = site.add_parser("code", help="计算授权码")
    p.add_argument("purpose", choices=["late_start", "late_candidate", "extra_time", "reexam"])
    p.add_argument("--room", required=True)
    p.add_argument("--session", type=int, required=True)
    p.add_argument("--challenge", required=True)
    p.add_argument("--seconds", type=int, default=0)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--package", help="考务数据包（取其中的考点密钥）")
    g.add_argument("--secret-file", help="考点密钥文件（base64）")
    p.set_defaults(fn=cmd_site_code)
    ns = parser.parse_args(argv)
    return ns.fn(ns)


if __name__ == "__main__":
    sys.exit(main())
