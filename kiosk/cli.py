"""The `kiosk` command: serve (headless engine), ctl (one operation), demo (a whole
demo room on this machine), site (the exam-site tools: mock exams, code calculator)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import threading
import time
from pathlib import Path

from kiosk import settings as settings_mod


def _settings(home: str | None) -> settings_mod.Settings:
    return settings_mod.load(home=home)


def cmd_serve(ns: argparse.Namespace) -> int:
    from kiosk.engine import serve

    asyncio.run(serve(_settings(ns.home), simulate_seats=ns.simulate_seats))
    return 0


def cmd_run(ns: argparse.Namespace) -> int:
    from kiosk.common.fonts import NoChineseFont
    from kiosk.ui.app import run

    size = None
    if ns.window:
        try:
            w, h = (int(v) for v in ns.window.lower().split("x"))
        except ValueError:
            print("--window 应为 宽x高，例如 1280x800", file=sys.stderr)
            return 2
        size = (w, h)
    up = None if ns.attach else _mark_up_later(_settings(ns.home))
    try:
        return run(ns.home, kiosk=size is None, size=size, attach=ns.attach)
    except NoChineseFont as exc:
        print(exc, file=sys.stderr)
        return 2
    finally:
        if up is not None:
            up.cancel()


def _mark_up_later(settings: settings_mod.Settings) -> threading.Timer:
    """Once the app has run for update_healthy_s, the launcher's count of failed starts
    of an updated release begins again (kiosk/update/install.py)."""
    from kiosk.update.install import AppLayout, mark_started

    timer = threading.Timer(settings.update_healthy_s, mark_started, (AppLayout(Path(settings.app_dir)),))
    timer.daemon = True
    timer.start()
    return timer


def cmd_demo(ns: argparse.Namespace) -> int:
    from kiosk.demo import run_demo

    logging.getLogger().setLevel(logging.WARNING)  # the demo prints the room itself
    ui = not ns.headless and bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if ui:
        from kiosk.common.kivyenv import configure_kivy

        configure_kivy(kiosk=False, size=(1280, 800))
    else:
        print("（无图形界面：演示以文字方式运行；有显示器时会打开监考机窗口）")
    return run_demo(home=ns.home, seats=ns.seats, speed=ns.speed, hold=ns.hold or ui, ui=ui)


def cmd_site_mock(ns: argparse.Namespace) -> int:
    from kiosk.core.errors import Refused
    from kiosk.site.inputs import read_candidate_list, read_question_bank
    from kiosk.site.mock import author_site, build_default_exam, build_exam_from, default_bank, split_rooms

    start = ns.start if ns.start is not None else time.time() + 3600
    rooms = [f"{int(ns.room) + i:010d}" for i in range(ns.rooms)]
    try:
        if ns.questions_file and not ns.candidates_file:
            raise Refused("bad_input", "使用自备题库时请同时提供考生名单（--candidates-file）", "no list")
        if not (ns.room.isdigit() and len(ns.room) == 10 and rooms and rooms[-1][:7] == ns.room[:7]):
            raise Refused("bad_room", "考场代码应为10位数字，且各考场属于同一考点", "bad room code")
        if ns.candidates_file:
            bank = read_question_bank(ns.questions_file) if ns.questions_file else default_bank()
            people = read_candidate_list(ns.candidates_file, {s.code for s in bank})
            groups = split_rooms(people, ns.candidates)
            rooms = [f"{int(ns.room) + i:010d}" for i in range(len(groups))]
            exams = [
                build_exam_from(
                    bank, group, room_code=room, site_code=room[:7], first_start=start, mock=not ns.formal
                )
                for room, group in zip(rooms, groups, strict=True)
            ]
        else:
            exams = [
                build_default_exam(
                    room_code=room,
                    site_code=room[:7],
                    first_start=start,
                    candidates_per_session=ns.candidates,
                    mock=not ns.formal,
                )
                for room in rooms
            ]
        plan = author_site(Path(ns.out), exams, site_ip=ns.site_ip)
    except Refused as exc:
        print(f"错误：{exc.zh}", file=sys.stderr)
        return 1
    print(f"考点：{plan.folder / 'site'}（考点密钥与 plan.json 仅供考点使用，勿拷入U盘）")
    for room in plan.rooms.values():
        print(f"考场 {room.room_code}  注册码 {room.registration_code}  U盘文件：{room.folder}")
    return 0


def cmd_site_code(ns: argparse.Namespace) -> int:
    import base64

    from kiosk.core.errors import Refused
    from kiosk.site.codes import calculate

    try:
        if ns.plan:
            plan = _site_plan(Path(ns.plan), ns.room)
            secret = base64.b64decode(plan["site_secret"])
        elif ns.secret_file:
            secret = base64.b64decode(Path(ns.secret_file).read_text().strip(), validate=True)
        else:
            secret = _secret_from_package(Path(ns.package))
        now = time.time()
        code = calculate(ns.purpose, ns.room, ns.session, ns.challenge, ns.seconds, secret, now)
    except Refused as exc:
        print(f"拒绝：{exc.zh}", file=sys.stderr)
        return 1
    if ns.plan:  # the site keeps every code it issues, to reconcile with the results
        from kiosk.core.codes import normalize_challenge
        from kiosk.site import store

        db = store.connect(ns.db or store.default_url(Path(ns.plan)))
        try:
            challenge = normalize_challenge(ns.challenge)
            store.record_issued_code(ns.room, ns.session, ns.purpose, challenge, ns.seconds, code, now)
        finally:
            db.close()
    print(code)
    return 0


def _site_plan(plan_dir: Path, room: str) -> dict:
    from kiosk.core.errors import Refused
    from kiosk.site.store import read_plan

    plan = read_plan(plan_dir)
    if room not in {r["room_code"] for r in plan["rooms"]}:
        raise Refused("unknown_room", f"考场 {room} 不在本考点计划中", f"room {room} is not in the plan")
    return plan


def cmd_site_serve(ns: argparse.Namespace) -> int:
    import contextlib
    import signal

    from kiosk.core.errors import Refused
    from kiosk.site.server import run

    def ready(url: str, fingerprint: str) -> None:
        print(f"考点服务器已启动：{url} 证书指纹 {fingerprint}", flush=True)

    async def serve() -> None:
        loop, task = asyncio.get_running_loop(), asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await run(Path(ns.plan), ns.db, ns.host, ns.port, ready=ready)

    try:
        asyncio.run(serve())
    except Refused as exc:
        print(f"错误：{exc.zh}", file=sys.stderr)
        return 1
    return 0


def _secret_from_package(path: Path) -> bytes:
    """The site administrator's own exam package: read without the room's pinned key."""
    from kiosk.common.packages import EXAM_FORMAT, parse_exam
    from kiosk.common.signed import unverified_body

    return parse_exam(unverified_body(path.read_bytes(), EXAM_FORMAT)).site_secret


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["ctl"]:  # ctl has its own parser with one sub-command per operation
        from kiosk.ctl import main as ctl_main

        return ctl_main(argv[1:])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="kiosk", description="监考机（考场监考管理系统）")
    parser.add_argument(
        "--self-test", action="store_true", help="自检（界面文件、数据库、文书模板、字体、加密）后退出"
    )
    sub = parser.add_subparsers(dest="cmd")
    p = sub.add_parser("serve", help="无界面运行监考引擎")
    p.add_argument("--home", help="数据目录（默认 KIOSK_HOME）")
    p.add_argument("--simulate-seats", type=int, default=0, help="在本进程模拟 N 台考试机（演示/测试）")
    p.set_defaults(fn=cmd_serve)
    p = sub.add_parser("run", help="运行监考机触屏程序（含监考引擎）")
    p.add_argument("--home", help="数据目录（默认 KIOSK_HOME）")
    p.add_argument("--window", default="", metavar="WxH", help="以窗口方式运行（调试用），例如 1280x800")
    p.add_argument("--attach", action="store_true", help="连接本机已运行的 kiosk serve（不另起引擎）")
    p.set_defaults(fn=cmd_run)
    sub.add_parser("ctl", help="执行一项监考操作（kiosk ctl --help）")
    p = sub.add_parser("demo", help="在本机运行一个演示考场")
    p.add_argument("--home", help="数据目录（默认临时目录）")
    p.add_argument("--seats", type=int, default=40)
    p.add_argument("--speed", type=float, default=60.0, help="演示时钟倍速")
    p.add_argument("--hold", action="store_true", help="演示结束后保持引擎运行（可用 kiosk ctl 查看）")
    p.add_argument("--headless", action="store_true", help="不打开监考机窗口（即使有显示器）")
    p.set_defaults(fn=cmd_demo)
    site = sub.add_parser("site", help="考点工具").add_subparsers(dest="site_cmd", required=True)
    p = site.add_parser("mock", help="生成模拟考试数据")
    p.add_argument("--out", required=True)
    p.add_argument("--room", default="1999999001", help="第一个考场的代码（其余考场依次加1）")
    p.add_argument("--rooms", type=int, default=2, help="考场数（使用考生名单时按 --candidates 分配）")
    p.add_argument("--candidates", type=int, default=40, help="每个考场每场次的考生数")
    p.add_argument("--site-ip", default="127.0.0.1", help="考点服务器地址（写入考点信息表）")
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
    g.add_argument("--plan", help="考点计划目录（取其中的考点密钥，并把授权码记入考点数据库）")
    p.add_argument("--db", help="考点数据库 URL（默认 计划目录/site/site.db）")
    p.set_defaults(fn=cmd_site_code)
    p = site.add_parser("serve", help="运行考点服务器")
    p.add_argument("--plan", required=True, help="考点计划目录（kiosk site mock 生成）")
    p.add_argument("--db", help="数据库 URL：sqlite:///路径 或 postgresql://…（默认 计划目录/site/site.db）")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=settings_mod.Settings.site_port)
    p.set_defaults(fn=cmd_site_serve)
    from kiosk.update.cli import add_parsers as add_update_parsers

    add_update_parsers(sub)  # update-keygen, update-pack
    ns = parser.parse_args(argv)
    if ns.self_test:
        from kiosk.selftest import main as self_test

        return self_test()
    if ns.cmd is None:
        parser.error("请指定子命令（kiosk --help）")
    return ns.fn(ns)


if __name__ == "__main__":
    sys.exit(main())
