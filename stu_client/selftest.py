"""`stu-client --self-test`: the exam-PC client's installation checked without a window
or a box: version, Chinese font, every kv file of the answer app, the journal, signatures,
and, when the frozen client sits inside a client bundle, the bundle's pinned box key."""

from __future__ import annotations

from pathlib import Path

from kiosk.common import frozen
from kiosk.common.selftest import check_crypto, check_font, check_kv, check_version, run_self_test


def _kv(_tmp: Path) -> str:
    from stu_client.ui.app import UI_DIR, build_app_class

    return check_kv(build_app_class, UI_DIR)


def _journal(tmp: Path) -> str:
    from stu_client.localstore import Journal

    journal = Journal(tmp / "journal.db")
    journal.open()
    try:
        seq, _aseq = journal.save_answer("SELFTEST", "T01", "1", "A")
        pending = [e["seq"] for e in journal.unacked()]
        integrity = journal.db.execute_sql("PRAGMA integrity_check").fetchone()[0]
    finally:
        journal.close()
    if pending != [seq] or integrity != "ok":
        raise RuntimeError(f"journal holds {pending} (want [{seq}]), integrity {integrity}")
    return "作答日志"


def _bundle(_tmp: Path) -> str:
    """The bundle around a frozen client copied by `kiosk ctl client-bundle`: its box
    certificate must match the fingerprint it pins."""
    own = frozen.app_folder()
    if own is None or not (own.parent / "daemon.json").exists():
        return ""
    from stu_client.bundle import load_bundle

    return f"配置包（监考机证书 {load_bundle(own.parent).box_fingerprint[:12]}…）"


def main() -> int:
    return run_self_test(
        "考试机客户端",
        [
            ("版本", check_version),
            ("中文字体", check_font),
            ("界面文件", _kv),
            ("作答日志", _journal),
            ("加密签名", check_crypto),
            ("配置包", _bundle),
        ],
    )
