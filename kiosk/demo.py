"""`kiosk demo`: a whole demo room on this machine — the engine on an embedded SQLite
database in a temporary home, the reference exam-site server with a default mock exam,
a simulated fleet of exam PCs and scripted candidates — printed live as the room
changes. The box registers with the site, downloads the exam data, reports the seal
check, fetches the authorisation and uploads the results. The box clock runs `speed`
times faster than the wall clock so a 90-minute session takes a couple of minutes.

While it runs, `kiosk ctl --home <home> status` works against it."""

from __future__ import annotations

import asyncio
import random
import socket
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kiosk import settings as settings_mod
from kiosk.common.clock import ManualClock
from kiosk.core.errors import Refused
from kiosk.engine import probe_site_forever
from kiosk.net.admin import start_admin
from kiosk.net.room import RoomNetwork
from kiosk.net.site_client import SiteClient
from kiosk.services.bootstrap import box_identity, build
from kiosk.services.incidents import EVENT_ZH
from kiosk.services.ports import Ports
from kiosk.site import server as site_server
from kiosk.site.mock import author_site, build_default_exam
from stu_client.sim import SimFleet

ROOM = "1999999001"
QUIET = {
    "answers_saved",
    "link_back",
    "link_lost",
    "login",
    "begin",
    "submitted",
    "code_used",
    "challenge_issued",
    "login_failed",
}
OFFICER_ZH = {
    "config_saved": "参数配置已保存",
    "client_bundle_written": "考试机客户端目录已生成",
    "seats_scanned": "扫描机位完成",
    "envcheck_done": "环境检测完成",
    "exam_loaded": "考务数据已载入",
    "seal_checked": "封场检测完成",
    "session_entered": "进入监考",
    "clients_started": "已启动考生端",
    "session_authorised": "考试授权完成",
    "login_allowed": "允许登录",
    "start_allowed": "允许开考，倒计时开始",
    "exam_ended": "考试结束",
    "results_backed_up": "结果已备份",
}


def _hm(ts: float) -> str:
    return time.strftime("%H:%M", time.localtime(ts))


def _clock_text(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Demo:
    def __init__(
        self,
        home: Path,
        seats: int,
        speed: float,
        out: Callable[[str], None] = print,
        ui: bool = False,
        hold: bool = False,
    ) -> None:
        self.home = home
        self.ui = ui  # open the box's touch app on the room while the demo plays
        self.hold = hold
        self.speed = speed
        self.out = out
        self.rng = random.Random(7)
        # The box clock starts at the wall clock (the PCs' clocks are checked against it)
        # and then runs `speed` times faster.
        self.clock = ManualClock(time.time())
        self.seats = seats
        self.fleet: Any = None
        self.settings = settings_mod.load(
            home=str(home),
            control_host="127.0.0.1",
            control_port=_free_port(),
            scan_port=_free_port(socket.SOCK_DGRAM),
            scan_broadcast="127.255.255.255",
            site_port=_free_port(),
        )
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="room-service")
        self.service: Any = None
        self.network: RoomNetwork | None = None
        self.site_task: asyncio.Task[None] | None = None
        self.probe_task: asyncio.Task[None] | None = None  # the site link on the app's strip

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, lambda: fn(*args, **kwargs))

    def on_event(self, ev: Any) -> None:
        if ev.kind in QUIET:
            return
        text = OFFICER_ZH.get(ev.kind) or EVENT_ZH.get(ev.kind, ev.kind)
        who = f" 考生 {ev.admission_no}" if ev.admission_no else ""
        self.out(f"[{time.strftime('%H:%M:%S', time.localtime(ev.ts))}] {text}{who}")

    async def status_line(self) -> None:
        st = await self.call(self.service.status)
        s = st["session"]
        if s is None:
            return
        c = s["counts"]
        self.out(
            f"  {_hm(st['box_time'])} {s['state_zh']} | 应到{c['expected']} 已登录{c['logged_in']} "
            f"考试中{c['in_exam']} 已交卷{c['submitted']} 缺考{c['absent']} 违纪{c['violations']} "
            f"续考{c['resumes']} 补时{c['extra_time']} 离线{c['offline']} "
            f"| 剩余 {_clock_text(s['remaining_s'])}"
        )

    async def advance(self, box_seconds: int, every: Callable[[], Any] | None = None) -> None:
        """Let box time pass in one-minute steps, acting and printing along the way."""
        for _ in range(0, box_seconds, 60):
            await asyncio.sleep(60 / self.speed)
            self.clock.advance(60)
            if every is not None:
                await every()
            await self.status_line()

    async def start_site(self) -> str:
        """The reference site, serving a plan authored now; the room's registration code."""
        first_start = self.clock.now() + 40 * 60
        mock = build_default_exam(
            room_code=ROOM, first_start=first_start, candidates_per_session=self.seats, mock=False
        )
        plan = await self.call(author_site, self.home / "site", [mock])
        ready = asyncio.Event()
        port = self.settings.site_port
        self.site_task = asyncio.create_task(
            site_server.run(plan.folder, None, "127.0.0.1", port, ready=lambda url, fp: ready.set())
        )
        await asyncio.wait_for(ready.wait(), 30)
        self.out(f"考点服务器：https://127.0.0.1:{port}（考点信息表与考务数据已发布）")
        return plan.rooms[ROOM].registration_code

    async def run(self) -> None:
        identity = await self.call(box_identity, self.settings)
        self.network = RoomNetwork(self.settings, identity, self.executor)

        def site(site_ip: str, site_cert_pem: bytes | None) -> SiteClient:
            return SiteClient(site_ip, self.settings.site_port, identity, site_cert_pem)

        ports = Ports(seats=self.network, site=site)
        svc = self.service = await self.call(build, self.settings, ports, self.clock)
        svc.subscribe(self.on_event)
        await self.network.start(svc)
        self.probe_task = asyncio.create_task(probe_site_forever(svc, self.executor, self.settings, identity))
        self.runner = await start_admin(svc, self.home, "127.0.0.1", 0, self.executor)
        self.out(f"演示考场数据目录：{self.home}\n查看状态：kiosk ctl --home {self.home} status")
        app_task = self._open_app() if self.ui else None
        await self.before_exam()
        await self.during_exam()
        await self.after_exam()
        if app_task is not None:
            if self.hold:
                self.out("演示完成；关闭监考机窗口即退出。")
            else:
                self.app.stop()
            await app_task

    def _open_app(self) -> asyncio.Task[None]:
        """The touch app on this room, logged in, on this loop."""
        from kiosk.ui.app import build_app_class

        demo = self

        class Engine:  # what the app needs of an engine: calls on the worker thread, events
            home = demo.home

            def subscribe(self, listener: Callable[[Any], None]) -> None:
                demo.service.subscribe(listener)

            async def call(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
                return await demo.call(getattr(demo.service, name), *args, **kwargs)

        app = self.app = build_app_class()(Engine(), closable=True)
        app.bind(on_start=lambda *_a: app.login("888"))
        return asyncio.create_task(app.run_async())

    async def before_exam(self) -> None:
        svc = self.service
        code = await self.start_site()
        await self.call(
            svc.configure, ROOM, str(self.home / "answers"), box_ip="127.0.0.1",
            site_mode=True, site_ip="127.0.0.1", registration_code=code,
        )  # fmt: skip
        self.out(f"已向考点注册（注册码 {code}），考点证书已固定")
        await self.call(svc.client_bundle, str(self.home / "bundle"))
        # The exam PCs: real daemons with their own keys and journals, on 127.0.10.x.
        self.fleet = SimFleet(self.home / "bundle", self.home / "pcs", self.seats)
        await self.fleet.start()
        await self.call(svc.seats_scan, "ip")
        await self.fleet.wait_all_online(30)
        self.out(f"考试机：{self.seats} 台已扫描入座并在线（TLS 1.3 双向证书）")
        await self.call(svc.envcheck)
        await self.call(svc.exam_download)
        seal = await self.call(svc.seal_check)
        self.out(
            "封场检测："
            + ("通过" if seal["passed"] else "未通过")
            + ("，已上报考点" if seal["reported"] else "")
        )

    async def during_exam(self) -> None:
        svc = self.service
        await self.call(svc.session_enter, 1, "张三", "15000000001", "李四", "15000000002")
        await self.call(svc.start_clients)
        await self.call(svc.authorise)  # from the site
        await self.advance(11 * 60)  # the login window opens 30 min before
        await self.call(svc.allow_login)
        status = await self.call(svc.status)
        people = status["session"]["candidates"]
        present = people[:-2]  # two candidates never come
        # candidate i sits at PC i; the candidates act through their PC's daemon
        self.where = {c["admission_no"]: i for i, c in enumerate(present)}
        waiting = list(self.where.items())
        fleet = self.fleet

        async def arrive() -> None:
            for _ in range(min(len(waiting), 8)):
                no, i = waiting.pop(0)
                await fleet.login(i, no)

        await self.advance(8 * 60, arrive)
        await self.call(svc.allow_start)
        await self.advance(21 * 60)
        await asyncio.gather(*(fleet.begin(i) for i in self.where.values()))

        async def answer() -> None:
            for no in self.rng.sample(list(self.where), k=min(12, len(self.where))):
                question = f"q{self.rng.randint(1, 45):02d}"
                fleet[self.where[no]].save_answer(no, "T01", question, self.rng.choice("ABCD"))

        await self.advance(10 * 60, answer)
        first, second, third = (
            present[2]["admission_no"],
            present[5]["admission_no"],
            present[9]["admission_no"],
        )
        await self.call(svc.violation_add, first, "A101", "携带手机进入考场")
        await self.advance(5 * 60, answer)
        await self.call(svc.extra_time, second, 300, "鼠标故障，更换耽误作答时间")
        await self.advance(5 * 60, answer)
        situation = (await self.call(svc.situation_types))[0]
        await fleet[self.where[third]].wait_synced(10)
        await self.call(
            svc.resume, [third], situation, "考试机死机，更换到备用机", "张三", confirm_online=True
        )
        spare = len(fleet.daemons) - 1  # the last PC has nobody on it
        await fleet.login(spare, third)
        self.where[third] = spare
        await self.advance(11 * 60, answer)
        await self.call(svc.absent, [c["admission_no"] for c in people[-2:]], confirm=True)
        await self.advance(40 * 60, answer)

        async def submit() -> None:
            for no in self.rng.sample(list(self.where), k=min(6, len(self.where))):
                await fleet.submit(self.where.pop(no))

        while self.where:
            await self.advance(60, submit)

    async def after_exam(self) -> None:
        svc = self.service
        await self.call(svc.end, "888")
        table = await self.call(svc.verify)
        t = table["totals"]
        self.out(
            f"核对：总人数{t['total']} 已考{t['sat']} 缺考{t['absent']} 已回收{t['collected']} "
            f"未回收{t['not_collected']} 补时{t['extra_time']} 违纪{t['violations']}"
        )
        usb = self.home / "usb-backup"
        usb.mkdir(exist_ok=True)
        backup = await self.call(svc.backup, str(usb))
        self.out(f"结果备份（已校验）：{backup['path']}")
        uploaded = await self.call(svc.upload)
        self.out(f"{uploaded['message']}：考点已收到并核对结果（{backup['bytes']} 字节）")
        record = await self.call(svc.situation_record, str(self.home / "situation.html"), 1)
        chain = await self.call(svc.log_verify)
        self.out(
            f"考场情况记录单：{record['path']}\n"
            f"事件日志：{chain['count']} 条，哈希链{'完整' if chain['ok'] else '已损坏'}"
        )

    async def close(self) -> None:
        for task in (self.probe_task, self.site_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self.fleet is not None:
            await self.fleet.stop()
        if self.network is not None:
            await self.network.stop()
        if getattr(self, "runner", None) is not None:
            await self.runner.cleanup()
        self.executor.shutdown(wait=True)


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_demo(
    home: str | None = None, seats: int = 40, speed: float = 60.0, hold: bool = False, ui: bool = False
) -> int:
    if not 12 <= seats <= 150:
        print("演示考场的机位数应在 12 到 150 之间")
        return 2
    folder = Path(home) if home else Path(tempfile.mkdtemp(prefix="kiosk-demo-"))
    folder.mkdir(parents=True, exist_ok=True)

    async def main() -> None:
        demo = Demo(folder, seats, speed, ui=ui, hold=hold)
        try:
            await demo.run()
            if hold and not ui:
                print("演示完成，引擎继续运行；按 Ctrl-C 退出。", flush=True)
                await asyncio.Event().wait()
        finally:
            await demo.close()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    except Refused as exc:
        print(f"演示中止：{exc.zh}")
        return 1
    return 0
