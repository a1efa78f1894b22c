"""Test helpers for the box app's offline updates (kiosk/update): a small app folder
shaped like build/build.sh's dist/kiosk (a `kiosk` program, its metadata, libraries and
a relative link as PyInstaller makes them), an update key pair of the tests' own, and
the signed package of such a folder."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from kiosk.common.crypto import Identity, make_identity
from kiosk.update.package import pack

_KEY: Identity | None = None


def vendor_key() -> Identity:
    """The tests' update key (made once per process)."""
    global _KEY
    if _KEY is None:
        _KEY = make_identity("test update key")
    return _KEY


def trust(keys_dir: Path, key: Identity | None = None, name: str = "vendor.crt") -> Path:
    """Put the certificate of `key` (default: the tests' key) in a box's update keys folder."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    path = keys_dir / name
    path.write_bytes((key or vendor_key()).cert_pem)
    return path


def fake_dist(folder: Path, version: str, program: str = "") -> Path:
    """An app folder of `version`: `kiosk` is a shell script that prints its version and
    arguments, then runs `program` (shell), e.g. ``exit 3`` for a release that fails."""
    folder.mkdir(parents=True)
    exe = folder / "kiosk"
    exe.write_text(f'#!/bin/sh\necho "kiosk {version} $*"\n{program}\n', encoding="utf-8")
    exe.chmod(0o755)
    internal = folder / "_internal"
    (internal / f"proctor_box-{version}.dist-info").mkdir(parents=True)
    (internal / f"proctor_box-{version}.dist-info" / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: proctor-box\nVersion: {version}\n", encoding="utf-8"
    )
    (internal / "Kivy.libs").mkdir()
    lib = internal / "Kivy.libs" / "libSDL2-test.so.0"
    lib.write_bytes(hashlib.sha256(version.encode()).digest() * 4096)  # 128 KiB
    lib.chmod(0o755)
    os.symlink("Kivy.libs/libSDL2-test.so.0", internal / "libSDL2-test.so.0")
    (internal / "base_library.zip").write_bytes(os.urandom(50_000))
    (internal / "empty.txt").write_bytes(b"")
    (internal / "中文.kv").write_text("# 界面\n", encoding="utf-8")
    return folder


def make_package(
    work: Path, version: str, *, key: Identity | None = None, program: str = "", min_from: str | None = None
) -> Path:
    """The signed update package of a fake app folder of `version`, in work/out/."""
    dist = fake_dist(work / f"dist-{version}", version, program)
    return pack(dist, key or vendor_key(), work / "out", min_from=min_from, now=1_780_000_000.0)


def tree(folder: Path) -> dict[str, tuple[str, str]]:
    """Every entry under `folder` (links not followed): kind and content hash or target,
    with its mode; compares folders byte for byte."""
    out: dict[str, tuple[str, str]] = {}
    if not os.path.lexists(folder):
        return out
    for dirpath, dirs, files in os.walk(folder):
        for name in dirs + files:
            p = Path(dirpath, name)
            rel = p.relative_to(folder).as_posix()
            st = p.lstat()
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                out[rel] = ("dir", oct(st.st_mode))
            else:
                out[rel] = ("file", f"{oct(st.st_mode)} {hashlib.sha256(p.read_bytes()).hexdigest()}")
    return out
