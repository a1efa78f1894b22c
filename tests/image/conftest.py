"""The appliance root, built once per session for both image test modules
(test_image.py checks it in chroot, test_boot.py makes a disk of it and boots it)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "build" / "work" / "test-dist"  # the frozen tests' scratch dist, shared
BUILD_TIMEOUT_S = 600  # measured: debootstrap 25 s + packages 75 s on 2 cores


@dataclass(frozen=True)
class Built:
    path: Path
    seconds: float


def mounts_under(path: Path) -> list[str]:
    prefix = str(path) + "/"
    with open("/proc/self/mounts", encoding="utf-8") as f:
        return [line.split()[1] for line in f if line.split()[1].startswith(prefix)]


def build_image(rootfs: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "image/build.sh", str(rootfs)],
        cwd=ROOT,
        env={**os.environ, "DIST": str(DIST)},
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )


@pytest.fixture(scope="session")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """The root file system, built from nothing (no cache: the whole build is quick)."""
    frozen = subprocess.run(
        ["bash", "build/build.sh", "--if-stale"],
        cwd=ROOT,
        env={**os.environ, "DIST": str(DIST)},
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    assert frozen.returncode == 0, f"frozen build failed:\n{frozen.stdout[-3000:]}\n{frozen.stderr[-3000:]}"
    path = tmp_path_factory.mktemp("image") / "rootfs"
    start = time.monotonic()
    run = build_image(path)
    seconds = time.monotonic() - start
    assert run.returncode == 0, f"image build failed:\n{run.stdout[-5000:]}\n{run.stderr[-5000:]}"
    yield Built(path, seconds)
    # Never delete through a mount (a bound /dev is the host's own).
    assert mounts_under(path) == [], f"still mounted under the root: {mounts_under(path)}"
    subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=True, timeout=300)
