"""The `stu-client` command of the exam PC: the daemon, a simulated fleet of daemons,
the answer-package export, and inspection of a journal file."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shlex
import sys
import tempfile
from pathlib import Path


def _journal(path: str) -> int:
    from stu_client.journal import open_journal, summary

    db = open_journal(path)
    info = {**summary(), "integrity": db.execute_sql("PRAGMA integrity_check").fetchone()[0]}
    db.close()
    print(json.dumps(info, ensure_ascii=False))
    return 0 if info["integrity"] == "ok" else 1


def _export(state: str, dest: str) -> int:
    from kiosk.common.errors import Refused
    from stu_client.export import export_answer_package

    try:
        path = export_answer_package(Path(state), Path(dest))
    except Refused as exc:
        print(f"导出失败：{exc.zh}", file=sys.stderr)
        return 1
    print(f"作答包已导出：{path}")
    return 0


def split_command(text: str) -> list[str]:
    """`--app-command` as an argument list: shell words; on Windows backslashes are path
    separators, not escapes, and quotes only group."""
    if os.name != "nt":
        return shlex.split(text)
    return [w[1:-1] if len(w) > 1 and w[0] == w[-1] == '"' else w for w in shlex.split(text, posix=False)]


def _daemon(bundle: str, state: str, bind_ip: str | None, app_command: str | None) -> int:
    from stu_client.daemon import BundleError, Daemon
    from stu_client.platform import default_app_command, system_backend
    from stu_client.sim import run_until_signalled

    command = split_command(app_command) if app_command else default_app_command(Path(state))
    platform = system_backend(app_command=command, disk_path=Path(state))
    try:
        daemon = Daemon(Path(bundle), Path(state), bind_ip=bind_ip, platform=platform)
    except BundleError as exc:
        print(f"客户端配置包无效 / bad client bundle: {exc}", file=sys.stderr)
        return 2
    asyncio.run(run_until_signalled(daemon))
    return 0


def _sim(count: int, bundle: str, state: str | None, mock_rate: float | None) -> int:
    from stu_client.daemon import BundleError
    from stu_client.sim import SimFleet, raise_fd_limit, run_until_signalled

    root = Path(state) if state else Path(tempfile.mkdtemp(prefix="stu-sim-"))
    raise_fd_limit()
    try:
        fleet = SimFleet(Path(bundle), root, count)
    except BundleError as exc:
        print(f"客户端配置包无效 / bad client bundle: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"count": count, "state": str(root)}, ensure_ascii=False), flush=True)

    async def run() -> None:
        if mock_rate:
            fleet.play_mock(mock_rate)
        await run_until_signalled(fleet)

    asyncio.run(run())
    return 0


def _app(state: str, window: str) -> int:
    from kiosk.common.fonts import NoChineseFont
    from stu_client.ui.app import run

    size = None
    if window:
        try:
            w, h = (int(v) for v in window.lower().split("x"))
        except ValueError:
            print("--window 应为 宽x高，例如 1366x768", file=sys.stderr)
            return 2
        size = (w, h)
    else:
        from stu_client.platform import system_backend

        for name, value in system_backend().kiosk_window_env().items():
            os.environ.setdefault(name, value)
    try:
        return run(Path(state), kiosk=size is None, size=size)
    except NoChineseFont as exc:
        print(exc, file=sys.stderr)
        return 2


def _autostart(bundle: str, state: str, remove: bool, show: bool) -> int:
    """Install (or remove) the daemon's start with the PC; run as root / administrator."""
    import subprocess

    from stu_client.platform import run_command, system_backend

    plan = system_backend().autostart(Path(bundle).resolve(), Path(state).resolve())
    if show:
        for path, text in plan.files.items():
            print(f"# {path}\n{text}")
        for cmd in plan.remove if remove else plan.commands:
            print(subprocess.list2cmdline(list(cmd)) if os.name == "nt" else shlex.join(cmd))
        return 0
    if not remove:
        for folder in plan.folders:
            Path(folder).mkdir(parents=True, exist_ok=True)
        for path, text in plan.files.items():
            Path(path).write_text(text, encoding="utf-8")
    for cmd in plan.remove if remove else plan.commands:
        done = run_command(cmd)
        if done.returncode != 0:
            print(f"命令失败（请以管理员身份运行）：{' '.join(cmd)}\n{done.stderr or ''}", file=sys.stderr)
            return 1
    print("已取消开机自启动" if remove else "已设置开机自启动")
    return 0


def _keep_alive(bundle: str, state: str, bind_ip: str | None, app_command: str | None) -> int:
    """The daemon as a child process, started again whenever it dies (stu_client.supervise);
    each writes its log in `<state>/logs/`."""
    import signal
    import threading

    from stu_client.platform import daemon_command
    from stu_client.supervise import log_to_file, supervise

    logs = Path(state) / "logs"
    log_to_file(logs / "supervisor.log")
    command = daemon_command(bundle, state)
    command += ["--log-file", str(logs / "daemon.log")]
    command += ["--bind-ip", bind_ip] if bind_ip else []
    command += ["--app-command", app_command] if app_command else []
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_a: stop.set())
    timings = {"first_s": RESTART_FIRST_S, "most_s": RESTART_MOST_S, "stable_s": STABLE_S}
    return supervise(command, Path(state), stop, **timings)


def _state(state: str | None) -> str:
    if state:
        return state
    from stu_client.platform import default_state_dir

    return str(default_state_dir())


# --keep-alive: a daemon that dies within STABLE_S of its start waits RESTART_FIRST_S,
# doubling up to RESTART_MOST_S, before it is started again; one that ran longer, none.
RESTART_FIRST_S = 1.0
RESTART_MOST_S = 30.0
STABLE_S = 60.0

STATE_HELP = "本机状态文件夹（默认：Linux /var/lib/stu-client，Windows %%ProgramData%%\\stu-client）"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stu-client", description="考试机客户端")
    logs = argparse.ArgumentParser(add_help=False)
    logs.add_argument("--log-level", default="INFO", help="日志级别（DEBUG、INFO、WARNING）")
    parser.add_argument(
        "--self-test", action="store_true", help="自检本程序（界面文件、作答日志、中文字体、加密）后退出"
    )
    sub = parser.add_subparsers(dest="cmd")
    p = sub.add_parser("journal", help="查看作答日志文件（答案数、未同步条数、完整性）")
    p.add_argument("path")
    p = sub.add_parser("daemon", parents=[logs], help="运行考试机守护进程（连接监考机、执行指令、同步答案）")
    p.add_argument("--bundle", required=True, help="监考机导出的客户端配置包文件夹")
    p.add_argument("--state", default=None, help=STATE_HELP + "（密钥、作答日志、state.json）")
    p.add_argument("--bind-ip", default=None, help="从此地址连接监考机（默认由系统选择）")
    p.add_argument(
        "--app-command",
        default=None,
        help="启动考生作答程序的命令（按 shell 规则拆分；默认：本程序的 app 子命令）",
    )
    p.add_argument(
        "--keep-alive",
        action="store_true",
        help="守护进程意外退出后自动重新启动（Windows 开机自启动用；Linux 由 systemd 负责）",
    )
    p.add_argument("--log-file", default=None, help="日志同时写入此文件（自动轮换）")
    p = sub.add_parser("app", parents=[logs], help="运行考生作答程序（全屏；由守护进程启动）")
    p.add_argument("--state", default=None, help=STATE_HELP + "（与守护进程相同）")
    p.add_argument("--window", default="", metavar="WxH", help="以窗口方式运行（调试用），例如 1366x768")
    p = sub.add_parser("export", help="导出本机考生的作答包到U盘（守护进程未运行时也可用）")
    p.add_argument("--state", default=None, help=STATE_HELP + "（与守护进程相同）")
    p.add_argument("--to", required=True, help="导出位置（U盘上的文件夹）")
    p = sub.add_parser("autostart", help="设置开机自动运行守护进程（需管理员/root 权限）")
    p.add_argument("--bundle", required=True, help="监考机导出的客户端配置包文件夹")
    p.add_argument("--state", default=None, help=STATE_HELP)
    p.add_argument("--remove", action="store_true", help="取消开机自启动")
    p.add_argument("--print", dest="show", action="store_true", help="只显示将写入的文件和将执行的命令")
    p = sub.add_parser("sim", parents=[logs], help="在本进程中模拟多台考试机（127.0.10.x）")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--bundle", required=True)
    p.add_argument("--state", default=None, help="模拟考试机的状态根目录（默认新建临时目录）")
    p.add_argument(
        "--mock",
        type=float,
        default=None,
        metavar="RATE",
        help="模考：每台机按机位自动登录、开考后以每秒 RATE 题自动作答客观题、统一收卷时交卷",
    )
    ns = parser.parse_args(argv)
    if ns.self_test:
        from stu_client.selftest import main as self_test

        return self_test()
    if ns.cmd is None:
        parser.error("请指定子命令（stu-client --help）")
    if ns.cmd == "journal":
        return _journal(ns.path)
    if ns.cmd == "export":
        return _export(_state(ns.state), ns.to)
    if ns.cmd == "autostart":
        return _autostart(ns.bundle, _state(ns.state), ns.remove, ns.show)
    logging.basicConfig(
        level=getattr(logging, str(ns.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if ns.cmd == "app":
        return _app(_state(ns.state), ns.window)
    if ns.cmd == "daemon" and ns.keep_alive:
        return _keep_alive(ns.bundle, _state(ns.state), ns.bind_ip, ns.app_command)
    if getattr(ns, "log_file", None):
        from stu_client.supervise import log_to_file

        log_to_file(Path(ns.log_file))
    if ns.cmd == "daemon":
        return _daemon(ns.bundle, _state(ns.state), ns.bind_ip, ns.app_command)
    if ns.mock is not None and not 0 < ns.mock <= 100:
        parser.error("--mock RATE: 每秒 0–100 题")
    return _sim(ns.count, ns.bundle, ns.state, ns.mock)


if __name__ == "__main__":
    sys.exit(main())
