"""The `stu-client` command of the exam PC. The daemon and the answer app arrive with
the room-network and answer-app issues; today it inspects a journal file."""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stu-client", description="考试机客户端")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("journal", help="查看作答日志文件（答案数、未同步条数、完整性）")
    p.add_argument("path")
    ns = parser.parse_args(argv)
    from stu_client.journal import open_journal, summary

    db = open_journal(ns.path)
    info = {**summary(), "integrity": db.execute_sql("PRAGMA integrity_check").fetchone()[0]}
    db.close()
    print(json.dumps(info, ensure_ascii=False))
    return 0 if info["integrity"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
