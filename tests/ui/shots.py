"""The one way both screenshot tours run: for each size a child process with its own
Xvfb screen of that size (Kivy's window size is fixed per process) runs the tour into
`<out>/<WxH>/`."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

Tour = Callable[[Path, Path], Awaitable[list[Path]]]  # (out, scratch folder) -> pictures


def main(module: str, default_out: str, sizes: tuple[tuple[int, int], ...], tour: Tour) -> int:
    parser = argparse.ArgumentParser(description=f"Screenshots ({module})")
    parser.add_argument("--out", default=default_out)
    parser.add_argument("--size", default="", help="one size WxH (the child process)")
    ns = parser.parse_args()
    if ns.size:
        w, h = (int(v) for v in ns.size.split("x"))
        return _child(Path(ns.out) / ns.size, (w, h), tour)
    for w, h in sizes:
        cmd = [sys.executable, "-m", module, "--out", ns.out, "--size", f"{w}x{h}"]
        if subprocess.run(cmd, check=False).returncode:
            return 1
    return 0


def _child(out: Path, size: tuple[int, int], tour: Tour) -> int:
    from tests.ui import conftest  # sets Kivy's environment before Kivy is imported

    proc, display = conftest.start_xvfb(size)
    os.environ["DISPLAY"] = display
    try:
        from kivy.config import Config

        Config.set("graphics", "width", str(size[0]))
        Config.set("graphics", "height", str(size[1]))
        with tempfile.TemporaryDirectory() as tmp:
            written = asyncio.run(tour(out, Path(tmp)))
        print(f"{size[0]}x{size[1]}: {len(written)} screenshots in {out}")
        return 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
