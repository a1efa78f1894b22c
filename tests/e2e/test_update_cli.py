"""The update operation through real processes: `kiosk update-keygen` and `kiosk
update-pack` as the vendor runs them, a `kiosk serve` whose app folder and trusted keys
come from KIOSK_APP_DIR / KIOSK_UPDATE_KEYS_DIR (as kiosk.env sets them on the box, and
the launcher reads the same variable), and `kiosk ctl update-install` / `update-status`."""

from __future__ import annotations

import os
from pathlib import Path

from kiosk.services.update import running_version
from tests.e2e.cli_helpers import ctl, ctl_ok, ctl_refused, run_kiosk, start_engine, stop_engine
from tests.update_kit import fake_dist, tree


def test_the_vendor_packs_and_the_officer_installs_by_ctl(tmp_path: Path) -> None:
    newer = f"{int(running_version().split('.')[0]) + 1}.0.0"
    vendor, stick = tmp_path / "vendor", tmp_path / "stick"
    made = run_kiosk("update-keygen", "--out", str(vendor), cwd=tmp_path)
    assert made.code == 0 and "update.key" in made.out, str(made)
    again = run_kiosk("update-keygen", "--out", str(vendor), cwd=tmp_path)
    assert again.code == 1 and "不会覆盖" in again.err, "an existing vendor key is never overwritten"
    dist = fake_dist(tmp_path / "dist", newer)
    wrong = run_kiosk("update-pack", str(dist), "--key", str(vendor / "update.key"), "--out", str(stick),
                      "--version", "9.9.9", cwd=tmp_path)  # fmt: skip
    assert wrong.code == 1 and "版本号" in wrong.err and not stick.exists(), str(wrong)
    packed = run_kiosk("update-pack", str(dist), "--key", str(vendor / "update.key"), "--out", str(stick),
                       cwd=tmp_path)  # fmt: skip
    assert packed.code == 0, str(packed)
    pkg = stick / f"kiosk-update-{newer}.kup"

    keys, app = tmp_path / "box-keys", tmp_path / "data" / "app"
    keys.mkdir()
    env = {"KIOSK_APP_DIR": str(app), "KIOSK_UPDATE_KEYS_DIR": str(keys)}
    engine = start_engine(tmp_path / "box", env=env)
    try:
        ctl_refused(engine.home, "update-install", "--path", str(pkg), code="update_keys_missing")
        (keys / "vendor.crt").write_bytes((vendor / "update.crt").read_bytes())
        damaged = tmp_path / "damaged.kup"
        damaged.write_bytes(pkg.read_bytes()[:-10])
        before = tree(tmp_path / "data")
        err = ctl_refused(engine.home, "update-install", "--path", str(damaged), code="package_damaged")
        assert "损坏" in err["zh"] and tree(tmp_path / "data") == before
        text = ctl(engine.home, "update-install", "--path", str(pkg))
        assert text.code == 0 and f"程序版本: {newer}" in text.out, str(text)
        assert "重启监考机后生效" in text.out
        assert os.readlink(app / "current") == f"releases/{newer}"
        status = ctl_ok(engine.home, "update-status")
        assert (status["current_release"], status["app_dir"]) == (newer, str(app))
        ctl_refused(engine.home, "update-install", "--path", str(pkg), code="already_installed")
        assert ctl_ok(engine.home, "log-verify")["ok"]
    finally:
        stop_engine(engine)
