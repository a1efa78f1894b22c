"""`--self-test` of both apps (STYLE 13), shared: the checks each app lists, run in
order, and a one-line Chinese verdict. Each check returns a short note for the summary
or raises; the test needs no window, display, home folder or network."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from kiosk.common import frozen

Check = tuple[str, Callable[[Path], str]]


def run_self_test(app_zh: str, checks: Iterable[Check]) -> int:
    """Run every check in a fresh temporary folder; 0 when all passed, else 1 with one
    line per failure on stderr."""
    _quiet_kivy()
    notes: list[str] = []
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="self-test-") as tmp:
        _headless_kivy(Path(tmp) / "kivy")
        for name, check in checks:
            try:
                notes.append(check(Path(tmp)))
            except Exception as exc:  # every failure is reported, then the next check runs
                failures.append(f"{name}：{type(exc).__name__}: {exc}")
    if failures:
        for line in failures:
            print(f"自检失败：{app_zh}：{line}", file=sys.stderr)
        return 1
    print(f"自检通过：{app_zh} " + "，".join(n for n in notes if n), flush=True)
    return 0


def _quiet_kivy() -> None:
    # Kivy logs through Python logging (KIVY_LOG_MODE=PYTHON); its provider messages are
    # not the self-test's output (a failure surfaces as the check's exception).
    logger = logging.getLogger("kivy")
    logger.propagate = False
    logger.addHandler(logging.NullHandler())


def _headless_kivy(home: Path) -> None:
    """Kivy as imported for the kv check: no argument parsing, settings in the temporary
    folder, and no window provider allowed, so loading a kv file (whose `#:import Window`
    imports kivy.core.window) never opens a window."""
    os.environ["KIVY_NO_ARGS"] = "1"
    os.environ["KIVY_LOG_MODE"] = "PYTHON"
    os.environ["KIVY_NO_CONSOLELOG"] = "1"
    os.environ["KIVY_HOME"] = str(home)
    os.environ["KIVY_WINDOW"] = "none"  # not a provider's name: every provider is skipped


def check_version(_tmp: Path) -> str:
    return frozen.project_version()


def check_font(_tmp: Path) -> str:
    from kiosk.common.fonts import chinese_font

    return f"中文字体 {chinese_font().name}"


def check_kv(build_app_class: Callable[[], type], ui_dir: Path) -> str:
    """The app's own kv loading (its App class is made, no widget and no window); every
    kv file of its folder must be loaded."""
    build_app_class()
    from kivy.core.window import Window
    from kivy.lang import Builder

    if Window is not None:
        raise RuntimeError("a window was created")
    wanted = {str(p) for p in ui_dir.glob("*.kv")}
    if not wanted:
        raise FileNotFoundError(f"no kv file in {ui_dir}")
    missing = wanted - set(Builder.files)
    if missing:
        raise RuntimeError(f"not loaded: {sorted(missing)}")
    return f"界面文件 {len(wanted)} 个"


def check_crypto(_tmp: Path) -> str:
    """A key and certificate made, a signature made and verified, a forgery refused."""
    from kiosk.common.crypto import make_identity, sign, verify_signature

    ident = make_identity("self-test")
    data = "自检".encode()
    signature = sign(ident, data)
    if not verify_signature(ident.cert_pem, data, signature):
        raise RuntimeError("a good signature was refused")
    if verify_signature(ident.cert_pem, data + b"!", signature):
        raise RuntimeError("a forged signature was accepted")
    return "签名校验"
