"""`client_bundle` with and without a frozen exam-PC client beside the box's frozen
folder (the frozen process stood in for by `sys.frozen` and `sys.executable`), the start
script that picks the bundled client, and the environment for the machine's programs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.common import frozen
from kiosk.services.room import RoomService
from stu_client.bundle import load_bundle
from tests.conftest import ROOM

FAKE_CLIENT = """#!/bin/sh
# Stands in for the frozen stu-client: records how the start script called it.
echo "$0 $*" > "$RECORD"
"""


def configured(room: RoomService) -> RoomService:
    room.configure(ROOM, str(Path(room.settings.home) / "answers"), box_ip="127.0.0.1")
    return room


def fake_dist(root: Path, marker: str) -> Path:
    """dist/kiosk/kiosk and dist/stu-client/ with an executable, a library and a link."""
    (root / "kiosk").mkdir(parents=True, exist_ok=True)
    (root / "kiosk" / "kiosk").write_text("box")
    client = root / "stu-client"
    (client / "_internal").mkdir(parents=True, exist_ok=True)
    (client / "stu-client").write_text(FAKE_CLIENT)
    (client / "stu-client").chmod(0o755)
    (client / "_internal" / "libfake.so.1").write_text(marker)
    link = client / "_internal" / "libfake.so"
    if not link.is_symlink():
        link.symlink_to("libfake.so.1")
    return root / "kiosk" / "kiosk"


@pytest.fixture
def as_frozen(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """This process seen as the frozen box app dist/kiosk/kiosk; returns dist/."""
    dist = tmp_path / "dist"
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(fake_dist(dist, "v1")))
    return dist


def test_from_source_the_bundle_has_no_client_and_says_so(room: RoomService, tmp_path: Path) -> None:
    result = configured(room).client_bundle(str(tmp_path / "bundle"))
    assert result["client"] == "" and "从源码运行" in result["client_note"]
    assert not (tmp_path / "bundle" / "stu-client").exists()
    assert load_bundle(tmp_path / "bundle").box_fingerprint == room.identity.fingerprint


def test_a_frozen_box_copies_the_client_beside_its_certificate(
    room: RoomService, tmp_path: Path, as_frozen: Path
) -> None:
    bundle = tmp_path / "bundle"
    result = configured(room).client_bundle(str(bundle))
    assert result["client"] == str(bundle / "stu-client") and "已附带考试机程序" in result["client_note"]
    copied = bundle / "stu-client" / "_internal"
    assert (copied / "libfake.so").is_symlink() and (copied / "libfake.so").read_text() == "v1"
    assert os.access(bundle / "stu-client" / "stu-client", os.X_OK)
    assert (bundle / "box.crt").exists() and load_bundle(bundle).box_fingerprint == room.identity.fingerprint

    fake_dist(as_frozen, "v2")  # a newer client build replaces the copy, leaving nothing behind
    room.client_bundle(str(bundle))
    assert (copied / "libfake.so").read_text() == "v2"
    assert sorted(p.name for p in bundle.iterdir() if p.name.startswith(".")) == []


def test_the_start_script_runs_the_bundled_client(room: RoomService, tmp_path: Path, as_frozen: Path) -> None:
    bundle = tmp_path / "bundle"
    configured(room).client_bundle(str(bundle))
    record = tmp_path / "called"
    env = {**os.environ, "RECORD": str(record), "STU_STATE": str(tmp_path / "state")}
    script = bundle / "start-daemon.sh"
    subprocess.run(["/bin/sh", str(script)], cwd=tmp_path, env=env, check=True, timeout=10)
    assert record.read_text().split() == [
        "./stu-client/stu-client", "daemon", "--bundle", ".", "--state", str(tmp_path / "state"),
    ]  # fmt: skip
    assert "if exist stu-client\\stu-client.exe" in (bundle / "start-daemon.bat").read_text()


def test_a_frozen_box_without_the_client_folder_says_where_it_looked(
    room: RoomService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    (tmp_path / "alone" / "kiosk").mkdir(parents=True)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "alone" / "kiosk" / "kiosk"))
    result = configured(room).client_bundle(str(tmp_path / "bundle"))
    assert result["client"] == ""
    assert str(tmp_path / "alone" / "stu-client") in result["client_note"]


def test_system_programs_get_the_machines_library_path(monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = {"LD_LIBRARY_PATH": "/opt/kiosk/_internal", "PATH": "/usr/bin"}
    assert frozen.system_env(bundle) == bundle  # from source nothing is changed
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert frozen.system_env(bundle) == {"PATH": "/usr/bin"}
    restored = frozen.system_env({**bundle, "LD_LIBRARY_PATH_ORIG": "/usr/local/lib"})
    assert restored == {"LD_LIBRARY_PATH": "/usr/local/lib", "PATH": "/usr/bin"}
