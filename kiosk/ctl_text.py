"""Chinese rendering of operation results for `kiosk ctl`: field names in Chinese,
box times as local clock times, yes/no for flags, and a one-screen room status."""

from __future__ import annotations

import time
from typing import Any

KEY_ZH = {
    "room_code": "考场代码",
    "site_mode": "考点模式",
    "site_ip": "考点机IP",
    "registration_code": "注册码",
    "box_ip": "监考机IP",
    "answer_dir": "答案文件夹",
    "saved_at": "保存时间",
    "replies": "应答台数",
    "added": "新增机位",
    "fingerprint_conflicts": "指纹不符的机位",
    "run": "检测批次",
    "checked_at": "检测时间",
    "total": "总数",
    "passed": "通过",
    "failed": "未通过",
    "requirements": "环境要求",
    "pcs": "考试机",
    "seat": "机位号",
    "ip": "IP",
    "items": "检测项",
    "label_zh": "项目",
    "value": "实测",
    "required": "要求",
    "ok": "合格",
    "number": "机位",
    "hostname": "计算机名",
    "mac": "MAC",
    "os": "操作系统",
    "fingerprint": "证书指纹",
    "version": "守护进程版本",
    "note": "备注",
    "online": "在线",
    "loaded": "已载入",
    "name": "名称",
    "site_code": "考点代码",
    "site_name": "考点",
    "sessions": "场次",
    "start": "开考时间",
    "candidates": "考生数",
    "state": "状态",
    "authorised": "已授权",
    "papers": "试卷数",
    "reported": "已上报考点",
    "report_error": "上报错误",
    "admission_no": "准考证号",
    "requested_s": "补时(秒)",
    "granted_s": "实际补时(秒)",
    "total_s": "累计补时(秒)",
    "deadline": "结束时间",
    "message": "提示",
    "challenge": "申请码",
    "purpose_zh": "用途",
    "session": "场次",
    "countdown_s": "倒计时(秒)",
    "late": "延考",
    "path": "文件",
    "rows": "行数",
    "bytes": "字节",
    "sha256": "SHA-256",
    "count": "事件数",
    "first_bad_id": "首个异常事件",
    "reason": "原因",
    "resumed": "续考考生",
    "forced_out": "已强制退出",
    "absent": "缺考考生",
    "answers": "答案数",
    "newer": "更新的答案",
    "free_bytes": "可用空间(字节)",
    "total_bytes": "总空间(字节)",
    "packages": "数据包",
    "kind": "格式",
    "kind_zh": "类型",
    "size": "大小(字节)",
    "operation": "可执行的操作",
    "files": "作答文件数",
    "seconds": "用时(秒)",
    "imported": "已导入",
    "refused": "未导入",
    "file": "文件名",
    "zh": "原因",
    "site": "考点应答",
    "complete": "已完成",
    "received": "已收到(字节)",
    "reconciliation": "授权码核对",
    "matched": "考点签发且已使用",
    "not_issued": "非考点签发",
    "issued_unused": "签发未使用",
    "answers_wiped": "清除的答案",
    "login_allowed_at": "允许登录时间",
    "ended_at": "结束时间",
    "uploaded": "已上报",
    "default_password": "仍为默认密码",
    "policy": "考务策略",
    "login_before_s": "开考前允许登录(秒)",
    "start_grace_s": "最晚开考(秒)",
    "late_login_s": "迟到限制(秒)",
    "free_extra_s": "免授权补时(秒)",
    "earliest_submit_s": "最早交卷(秒)",
    "mock": "模考",
    "key": "代码",
    "detail_zh": "说明",
    "already": "此前已完成",
    "already_loaded": "此前已载入",
    "state_zh": "状态",
    "sat": "已考",
    "collected": "已回收",
    "not_collected": "未回收",
    "extra_time": "补时人数",
    "violations": "违纪",
    "problems": "问题",
    "problem_zh": "问题",
    "progress_pct": "答题进度%",
    "package_zh": "作答包",
    "violation": "违纪",
    "seq": "序号",
    "totals": "统计",
    "text": "内容",
    "description": "描述",
    "code": "代码",
    "id": "编号",
    "situation": "异常情况",
    "handler": "处理人员",
    "warning": "警告",
    "phone": "电话",
    "username": "用户名",
    "app_version": "程序版本",
    "previous_release": "保留的上一版本",
    "app_files": "程序文件数",
    "running_version": "正在运行的版本",
    "current_release": "下次启动的版本",
    "releases": "已安装的版本",
    "app_dir": "程序目录",
}
TIME_KEYS = {
    "saved_at",
    "checked_at",
    "start",
    "deadline",
    "login_allowed_at",
    "ended_at",
    "box_time",
    "time",
    "scheduled_start",
    "actual_start",
    "generated_at",
    "created_at",
}


def fmt_time(ts: float | None) -> str:
    return "" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _scalar(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "是" if value else "否"
    if key in TIME_KEYS and isinstance(value, int | float):
        return fmt_time(value)
    return "" if value is None else str(value)


def human(value: Any, indent: int = 0, key: str = "") -> str:
    """Nested results as indented Chinese lines; lists of plain values on one line."""
    pad = "  " * indent
    if isinstance(value, dict):
        lines = []
        for k, v in value.items():
            label = KEY_ZH.get(k, k)
            if isinstance(v, dict | list) and v:
                lines.append(f"{pad}{label}:")
                lines.append(human(v, indent + 1, k))
            else:
                lines.append(f"{pad}{label}: {_scalar(k, v) if not isinstance(v, list | dict) else '无'}")
        return "\n".join(lines)
    if isinstance(value, list):
        if all(not isinstance(x, dict | list) for x in value):
            return pad + ", ".join(_scalar(key, x) for x in value)
        return "\n".join(f"{pad}- " + human(x, indent + 1).lstrip() for x in value)
    return pad + _scalar(key, value)


def _hms(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def status_text(st: dict[str, Any]) -> str:
    """The room on one screen: parameters, wizard, seats, session counts and candidates."""
    cfg = st.get("config") or {}
    steps = "  ".join(
        f"{'✓' if done else '·'}{label}"
        for label, done in zip(
            ("1参数", "2机位", "3环境", "4考务", "5封场"), st["wizard"].values(), strict=False
        )
    )
    online = sum(s["online"] for s in st["seats"])
    lines = [
        f"监考机时间 {fmt_time(st['box_time'])}   考场代码 {cfg.get('room_code', '未配置')}   "
        f"监考机IP {cfg.get('box_ip', '')}",
        f"考前步骤  {steps}",
        f"机位 {len(st['seats'])} 台，在线 {online} 台",
    ]
    link = st.get("site_link") or {}
    if link.get("site_mode"):
        lines.insert(1, f"考点模式  考点 {link['site_ip']} {link['state_zh']}")
    if st["user"]["default_password"]:
        lines.append("警告：仍在使用默认密码，请尽快修改")
    s = st.get("session")
    if s is None:
        lines.append("当前没有进入考试的场次")
        return "\n".join(lines)
    c = s["counts"]
    lines += [
        f"场次 {s['number']}（{s['name']}） {s['state_zh']}   计划开考 {fmt_time(s['scheduled_start'])}   "
        f"剩余 {_hms(s['remaining_s'])}",
        f"应到{c['expected']} 已登录{c['logged_in']} 考试中{c['in_exam']} 已交卷{c['submitted']} "
        f"缺考{c['absent']} 违纪{c['violations']} 断点续考{c['resumes']} 补时{c['extra_time']} "
        f"离线{c['offline']} 举手{c['hands']}",
        "序号 准考证号            姓名     机位 状态   在线 剩余     离线(秒) 标记",
    ]
    for x in s["candidates"]:
        marks = "".join(
            m
            for m, on in (
                ("违", x["violation"]),
                ("续", x["resumed"]),
                ("补", x["extra_s"] > 0),
                ("锁", x["locked"]),
                ("举", x["hand_raised"]),
            )
            if on
        )
        lines.append(
            f"{x['seq']:>4} {x['admission_no']:<19} {x['name']:<6} {x['seat'] or '---':>4} "
            f"{x['state_zh']:<5} {'是' if x['online'] else '否'}   {_hms(x['remaining_s'])} "
            f"{x['offline_s']:>7}  {marks}"
        )
    return "\n".join(lines)
