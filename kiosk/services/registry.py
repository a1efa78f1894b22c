"""Every operation of SPEC.md as one entry: its command-line verb, the service method
it calls, its group (考前 / 系统管理 / 考中 / 考后 / 模考) and its parameters. The
`kiosk ctl` parser and the local admin API are both built from this table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kiosk.core.errors import Refused


@dataclass(frozen=True)
class Param:
    name: str
    kind: str = "str"  # str | int | bool | list
    help: str = ""
    required: bool = False
    default: Any = None


@dataclass(frozen=True)
class Op:
    verb: str
    method: str
    group: str
    title: str
    params: tuple[Param, ...] = ()
    password: bool = False  # the parameter "password" is read without echo by ctl


P = Param
GROUPS = ("考前", "系统管理", "考中", "考后", "模考", "查看")

OPERATIONS: tuple[Op, ...] = (
    # 考前 — the wizard
    Op("interfaces", "interfaces", "考前", "列出本机网卡与 IP"),
    Op(
        "config",
        "configure",
        "考前",
        "参数配置",
        (
            P("room_code", help="考场代码（10位数字）", required=True),
            P("answer_dir", help="答案文件夹（绝对路径）", required=True),
            P("box_ip", help="监考机 IP（多网卡时必选）"),
            P("site_mode", "bool", "考点模式"),
            P("site_ip", help="考点机 IP"),
            P("registration_code", help="注册码（8个字母）"),
        ),
    ),
    Op("seats", "seats", "考前", "列出机位"),
    Op(
        "seats-scan",
        "seats_scan",
        "考前",
        "自动扫描机位",
        (
            P("order", help="排序：ip / name / reply", default="ip"),
            P("timeout_s", "int", "等待应答秒数", default=2),
        ),
    ),
    Op(
        "seats-add",
        "seats_add",
        "考前",
        "新建机位",
        (
            P("ip", required=True, help="考试机 IP"),
            P("hostname", help="计算机名"),
            P("note", help="备注"),
        ),
    ),
    Op(
        "seats-edit",
        "seats_edit",
        "考前",
        "修改机位",
        (P("number", "int", "机位号", required=True), P("ip"), P("hostname"), P("note")),
    ),
    Op(
        "seats-move",
        "seats_move",
        "考前",
        "机位上移/下移",
        (
            P("number", "int", "机位号", required=True),
            P("direction", help="up / down", required=True),
        ),
    ),
    Op(
        "seats-delete",
        "seats_delete",
        "考前",
        "删除机位",
        (P("number", "int", "机位号", required=True), P("confirm", "bool", "确认删除")),
    ),
    Op("seats-import", "seats_import", "考前", "导入机位（CSV/XLSX）", (P("path", required=True),)),
    Op(
        "client-bundle",
        "client_bundle",
        "考前",
        "生成考试机客户端目录（证书、地址、启动脚本）",
        (P("dest", required=True, help="目标文件夹（绝对路径）"),),
    ),
    Op(
        "seats-show",
        "seats_show",
        "考前",
        "在考试机上显示/隐藏机位号",
        (P("show", "bool", "显示（不加则隐藏）"),),
    ),
    Op(
        "envcheck",
        "envcheck",
        "考前",
        "环境检测（--retest-failed 补测）",
        (P("retest_failed", "bool", "只补测未通过的考试机"),),
    ),
    Op("envcheck-result", "envcheck_result", "考前", "查看上次检测结果"),
    Op(
        "envcheck-report",
        "envcheck_report",
        "考前",
        "导出环境检测报告（HTML）",
        (P("path", required=True),),
    ),
    Op("site-register", "site_register", "考前", "向考点注册（取得考点信息表）"),
    Op("usb", "usb_sticks", "考前", "查看已插入的U盘及其中的数据包"),
    Op("exam-download", "exam_download", "考前", "从考点下载考务数据"),
    Op(
        "room-sheet-import",
        "room_sheet_import",
        "考前",
        "导入考点信息表（固定考点证书）",
        (P("path", required=True), P("registration_code", help="考场注册码（默认用参数中的）")),
    ),
    Op("exam-import", "exam_import", "考前", "从U盘导入考务数据", (P("path", required=True),)),
    Op("exam", "exam_summary", "考前", "查看考务数据与场次"),
    Op("seal-check", "seal_check", "考前", "封场检测"),
    Op("wizard", "wizard", "考前", "考前步骤完成情况"),
    # 系统管理
    Op("user", "user", "系统管理", "查看管理员信息"),
    Op(
        "user-set",
        "user_set",
        "系统管理",
        "设置管理员姓名与电话",
        (P("name", required=True), P("phone", required=True)),
    ),
    Op(
        "login",
        "login",
        "系统管理",
        "管理员登录（校验密码）",
        (P("password", required=True),),
        password=True,
    ),
    Op(
        "passwd",
        "passwd",
        "系统管理",
        "修改密码",
        (P("old", required=True), P("new", required=True)),
        password=True,
    ),
    Op(
        "remote",
        "remote",
        "系统管理",
        "远程开机/重启/关机",
        (
            P("action", required=True, help="wake / reboot / shutdown"),
            P("ips", "list", "只对这些 IP"),
        ),
    ),
    Op(
        "init-pcs",
        "init_pcs",
        "系统管理",
        "初始化考试机",
        (
            P("uninstall", "bool", "同时卸载考生端"),
            P("ips", "list", "只对这些 IP"),
            P("confirm", "bool", "确认"),
        ),
    ),
    Op(
        "init-box",
        "init_box",
        "系统管理",
        "初始化监考机",
        (
            P("password", required=True),
            P("keep_params_and_seats", "bool", "保留参数与机位"),
            P("confirm", "bool", "确认"),
        ),
        password=True,
    ),
    Op(
        "update-install",
        "update_install",
        "系统管理",
        "安装监考机升级包（U盘）",
        (P("path", required=True, help="升级包 kiosk-update-<版本>.kup"),),
    ),
    Op("update-status", "update_status", "系统管理", "查看监考机程序版本"),
    # 考中
    Op(
        "session-enter",
        "session_enter",
        "考中",
        "选择场次并进入监考",
        (
            P("session", "int", "场次", required=True),
            P("admin_name", required=True),
            P("admin_phone", required=True),
            P("invigilator_name", required=True),
            P("invigilator_phone", required=True),
        ),
    ),
    Op("start-clients", "start_clients", "考中", "启动考生端"),
    Op("close-clients", "close_clients", "考中", "关闭考生端"),
    Op(
        "authorise",
        "authorise",
        "考中",
        "考试授权（下载或从文件导入）",
        (P("path", help="授权文件"),),
    ),
    Op("allow-login", "allow_login", "考中", "允许登录", (P("auto_login", "bool", "模考自动登录"),)),
    Op(
        "challenge",
        "challenge",
        "考中",
        "获取申请码",
        (
            P("purpose", required=True, help="late_start / late_candidate / extra_time / reexam"),
            P("admission_no", help="准考证号（补时、重考）"),
        ),
    ),
    Op(
        "allow-start",
        "allow_start",
        "考中",
        "允许开考（超时需延考授权码）",
        (P("code", help="延考授权码"),),
    ),
    Op("countdown", "countdown", "考中", "开考倒计时"),
    Op("violation-codes", "violation_codes", "考中", "违纪代码表"),
    Op(
        "violation-add",
        "violation_add",
        "考中",
        "登记违纪",
        (P("admission_no", required=True), P("code", required=True), P("description")),
    ),
    Op("violations", "violations", "考中", "查看违纪"),
    Op(
        "violation-cancel",
        "violation_cancel",
        "考中",
        "取消违纪",
        (P("violation_id", "int", required=True), P("confirm", "bool", "确认")),
    ),
    Op("situation-types", "situation_types", "考中", "异常情况类型"),
    Op(
        "resume",
        "resume",
        "考中",
        "断点续考",
        (
            P("admission_nos", "list", "准考证号", required=True),
            P("situation", required=True),
            P("description", required=True),
            P("handler", required=True),
            P("code", help="考生迟到延考授权码"),
            P("confirm_online", "bool", "确认强制退出在线考生"),
        ),
    ),
    Op("resumes", "resumes", "考中", "查看断点续考记录"),
    Op(
        "extra-time",
        "extra_time",
        "考中",
        "补时",
        (
            P("admission_no", required=True),
            P("seconds", "int", required=True),
            P("reason"),
            P("code", help="补时授权码"),
        ),
    ),
    Op("extra-times", "extra_times", "考中", "查看补时记录"),
    Op("collect", "collect", "考中", "单机收卷（作答包）", (P("path", required=True),)),
    Op("import-answers", "import_answers", "考中", "导入作答包", (P("path", required=True),)),
    Op(
        "import-answers-all",
        "import_answers_all",
        "考中",
        "导入U盘上的全部作答包",
        (P("folder", help="文件夹（默认已插入的U盘）"),),
    ),
    Op("find", "find", "考中", "查找考生", (P("query", required=True),)),
    Op(
        "lock",
        "lock",
        "考中",
        "考生锁屏 / 解锁",
        (P("admission_nos", "list", required=True), P("notice"), P("unlock", "bool", "解除锁屏")),
    ),
    Op(
        "message",
        "message",
        "考中",
        "向考生发送消息",
        (P("text", required=True), P("admission_nos", "list", "只发给这些考生")),
    ),
    Op("hand-answer", "hand_answer", "考中", "处理举手", (P("admission_no", required=True),)),
    Op("refresh", "status", "考中", "刷新考生状态"),
    Op(
        "situation",
        "situation_record",
        "考中",
        "考场情况记录单（HTML）",
        (P("path", required=True), P("session_no", "int", "场次")),
    ),
    Op(
        "candidate-log",
        "candidate_log",
        "考中",
        "查看考生日志",
        (P("admission_no", required=True),),
    ),
    Op(
        "reexam",
        "reexam",
        "考中",
        "考生初始化（重考）",
        (
            P("admission_no", required=True),
            P("subjects", "list", required=True),
            P("reason", required=True),
            P("code", help="重考授权码"),
            P("understood", "bool", "我知道了"),
            P("confirm", "bool", "最终确认"),
        ),
    ),
    Op(
        "absent",
        "absent",
        "考中",
        "缺考登记",
        (P("admission_nos", "list", required=True), P("confirm", "bool", "确认")),
    ),
    Op(
        "end",
        "end",
        "考中",
        "结束考试（需管理员密码）",
        (P("password", required=True),),
        password=True,
    ),
    # 考后
    Op("verify", "verify", "考后", "核对考后数据", (P("session", "int", "场次"),)),
    Op(
        "backup",
        "backup",
        "考后",
        "上报第一步：备份到外部存储",
        (P("dest", help="目标文件夹"), P("session", "int")),
    ),
    Op("upload", "upload", "考后", "上报第二步：上报考点", (P("session", "int"),)),
    Op("export", "export", "考后", "导出考试结果", (P("dest", required=True), P("session", "int"))),
    Op(
        "export-list",
        "export_list",
        "考后",
        "导出明细（XLSX/CSV）",
        (
            P(
                "kind",
                required=True,
                help="violations / resumes / extra-time / candidate-log / verification / seats",
            ),
            P("path", required=True),
            P("admission_no", help="准考证号（考生日志）"),
            P("session", "int", "场次（默认当前或最近结束的场次）"),
        ),
    ),
    # 模考
    Op(
        "auto-login",
        "auto_login",
        "模考",
        "自动登录 开/关",
        (P("on", "bool", "开启（不加则取消）"),),
    ),
    Op(
        "auto-answer",
        "auto_answer",
        "模考",
        "自动作答 开/关",
        (P("on", "bool", "开启（不加则取消）"),),
    ),
    Op("collect-all", "collect_all", "模考", "统一收卷"),
    # 查看
    Op("status", "status", "查看", "整个考场的状态"),
    Op("log-verify", "log_verify", "查看", "校验事件日志的哈希链"),
)

BY_VERB = {op.verb: op for op in OPERATIONS}


def coerce(op: Op, raw: dict[str, Any]) -> dict[str, Any]:
    """Check and convert parameters that arrive over the admin API (untrusted JSON)."""
    known = {p.name: p for p in op.params}
    unknown = set(raw) - set(known)
    if unknown:
        raise Refused(
            "bad_params",
            f"未知参数：{', '.join(sorted(unknown))}",
            f"unknown params {sorted(unknown)}",
        )
    out: dict[str, Any] = {}
    for p in op.params:
        if p.name not in raw or raw[p.name] is None:
            if p.kind == "bool":  # a flag left out is off, whatever the method's default
                out[p.name] = False
                continue
            if p.required:
                raise Refused("bad_params", f"缺少参数：{p.name}", f"missing param {p.name}")
            continue
        v = raw[p.name]
        ok = {
            "str": isinstance(v, str),
            "int": isinstance(v, int) and not isinstance(v, bool),
            "bool": isinstance(v, bool),
            "list": isinstance(v, list) and all(isinstance(x, str) for x in v),
        }[p.kind]
        if not ok:
            raise Refused("bad_params", f"参数 {p.name} 类型错误", f"param {p.name} must be {p.kind}")
        out[p.name] = v
    return out
