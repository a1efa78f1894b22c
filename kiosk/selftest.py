"""`kiosk --self-test`: the box app's installation checked without a window or a home:
version, Chinese font, every kv file, the room database's migrations, a document
template, signatures."""

from __future__ import annotations

from pathlib import Path

from kiosk.common.selftest import check_crypto, check_font, check_kv, check_version, run_self_test


def _kv(_tmp: Path) -> str:
    from kiosk.ui.app import UI_DIR, build_app_class

    return check_kv(build_app_class, UI_DIR)


def _database(tmp: Path) -> str:
    from kiosk.store.schema import SCHEMA_VERSION, open_room_db, user_version

    db = open_room_db(tmp / "room.db")
    try:
        version = user_version(db)
        integrity = db.execute_sql("PRAGMA integrity_check").fetchone()[0]
    finally:
        db.close()
    if version != SCHEMA_VERSION or integrity != "ok":
        raise RuntimeError(f"schema {version} (want {SCHEMA_VERSION}), integrity {integrity}")
    return f"数据库版本 {version}"


def _template(_tmp: Path) -> str:
    from kiosk.services.documents import render_envcheck_report

    if "<h1>环境检测报告</h1>" not in render_envcheck_report({}):
        raise RuntimeError("the envcheck report template rendered no title")
    return "文书模板"


def main() -> int:
    return run_self_test(
        "监考机",
        [
            ("版本", check_version),
            ("中文字体", check_font),
            ("界面文件", _kv),
            ("数据库", _database),
            ("文书模板", _template),
            ("加密签名", check_crypto),
        ],
    )
