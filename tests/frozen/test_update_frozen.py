"""The offline update of the real frozen box app: the frozen `kiosk update-keygen` and
`kiosk update-pack` make a signed package of the frozen dist (build/work/test-dist, built
once per session by test_frozen's fixture), the box's installer puts it into a temporary
app folder, and the image's launcher starts the installed release, whose self-test passes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from kiosk.update.install import AppLayout, install
from kiosk.update.package import trusted_certs
from tests.frozen.test_frozen import dist, frozen_env, project_version  # noqa: F401 - `dist` is a fixture
from tests.update_kit import tree

pytestmark = [pytest.mark.frozen, pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = ROOT / "image" / "files" / "usr" / "local" / "lib" / "kiosk" / "launch"


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in frozen_env().items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    return subprocess.run(
        cmd,
        env={**env, **kw.pop("env", {})},  # type: ignore[dict-item]
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
        **kw,  # type: ignore[arg-type]
    )


def test_the_frozen_dist_packs_installs_and_the_launcher_starts_it(dist: Path, tmp_path: Path) -> None:  # noqa: F811
    exe = str(dist / "kiosk" / "kiosk")
    keys, out = tmp_path / "vendor", tmp_path / "stick"
    made = run([exe, "update-keygen", "--out", str(keys)])
    assert made.returncode == 0, made.stderr
    assert oct((keys / "update.key").stat().st_mode & 0o777) == "0o600"
    key = str(keys / "update.key")
    packed = run([exe, "update-pack", str(dist / "kiosk"), "--key", key, "--out", str(out)])
    assert packed.returncode == 0, packed.stderr
    version = project_version()
    pkg = out / f"kiosk-update-{version}.kup"
    assert f"升级包：{pkg}" in packed.stdout

    # The box trusts the vendor's certificate only; the private key stays with the vendor.
    box_keys = tmp_path / "box" / "update-keys"
    box_keys.mkdir(parents=True)
    (box_keys / "vendor.crt").write_bytes((keys / "update.crt").read_bytes())
    layout = AppLayout(tmp_path / "data" / "app")
    # The dist can only be built at the project's version, so the box here "runs" an older
    # one (0.0.1) for the package to count as newer.
    done = install(pkg, layout, trusted_certs(box_keys), "0.0.1", margin_bytes=64 * 1024**2)
    assert (done.version, done.previous) == (version, None)
    release = layout.release(version)
    assert {k: v for k, v in tree(release).items() if v[0] != "dir"} == {
        k: v for k, v in tree(dist / "kiosk").items() if v[0] != "dir"
    }, "the release is the frozen dist, file for file, link for link, mode for mode"

    started = run(
        ["/bin/sh", str(LAUNCH), "--self-test"],
        env={"KIOSK_APP_DIR": str(layout.root), "KIOSK_IMAGE_APP": "/nonexistent/kiosk"},
    )
    assert started.returncode == 0, f"{started.stdout}\n{started.stderr}"
    assert started.stdout.startswith(f"自检通过：监考机 {version}，"), started.stdout
    assert layout.boot_count.read_text(encoding="utf-8") == f"{version} 1\n", "the launcher chose the release"
    assert os.readlink(layout.current) == f"releases/{version}"
