"""`kiosk --self-test` and `stu-client --self-test` of the source install (the frozen
apps' are in tests/frozen): one Chinese line and exit 0 without a display; a failure
names its check and exits 1; the sub-commands still parse around the new flag."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.cli_helpers import engine_env

BIN = Path(sys.executable).parent


def run(app: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in engine_env().items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    return subprocess.run(
        [str(BIN / app), *args],
        env={**base, **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(("app", "zh", "store"), [("kiosk", "监考机", "数据库版本 4"),
                                                  ("stu-client", "考试机客户端", "作答日志")])  # fmt: skip
def test_the_source_install_passes_its_self_test(app: str, zh: str, store: str) -> None:
    done = run(app, "--self-test")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"自检通过：{zh} ") and done.stdout.count("\n") == 1, done.stdout
    assert store in done.stdout and "界面文件 3 个" in done.stdout and "签名校验" in done.stdout


def test_a_missing_font_fails_the_self_test_with_its_reason(tmp_path: Path) -> None:
    done = run("stu-client", "--self-test", KIOSK_FONT=str(tmp_path / "none.ttc"))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("自检失败：考试机客户端：中文字体："), done.stderr
    # The kv check uses the same font and fails too; the others still ran and passed.
    assert "作答日志" not in done.stderr and "加密签名" not in done.stderr


@pytest.mark.parametrize("app", ["kiosk", "stu-client"])
def test_a_sub_command_is_still_required(app: str) -> None:
    done = run(app)
    assert done.returncode == 2 and "请指定子命令" in done.stderr
    assert os.path.basename(app) in run(app, "--help").stdout
