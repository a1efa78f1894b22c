"""The operation tasks' work files as collected: a content-addressed store in the PC's
state folder, `<state>/files/<sha256>` (docs/formats.md).

When the answer app collects a work folder (`CandidateSession.collect_work`) it copies
each file here before the answer that lists it is journalled, so the listing names
bytes that no later edit of the work folder can change. The export (导出作答包) and the
daemon's upload to the box read the files from here, never from the work folder."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
from pathlib import Path
from typing import Any

from kiosk.common.errors import Refused
from kiosk.common.fsutil import fsync_dir
from kiosk.common.signed import valid_file_name

FILES_DIR = "files"  # <state dir>/files/<sha256>
CHUNK = 1024 * 1024
SHA256 = re.compile(r"[0-9a-f]{64}")


def snapshot_path(state_dir: Path, sha256: str) -> Path:
    if not SHA256.fullmatch(sha256):
        raise ValueError(f"not a SHA-256: {sha256!r:.80}")
    return Path(state_dir) / FILES_DIR / sha256


def snapshot(state_dir: Path, src: Path) -> tuple[int, str]:
    """Copy `src` into the store (temporary name, fsync, rename, fsync of the folder);
    its (size, sha256) as copied. A snapshot already present with that size is kept."""
    folder = Path(state_dir) / FILES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{secrets.token_hex(8)}.tmp"
    digest, size = hashlib.sha256(), 0
    try:
        with src.open("rb") as f, tmp.open("wb") as out:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        sha256 = digest.hexdigest()
        dest = folder / sha256
        if dest.is_file() and dest.stat().st_size == size:
            tmp.unlink()
        else:
            os.replace(tmp, dest)
            fsync_dir(folder)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return size, sha256


def _where(subject: str, question: str) -> str:
    return f"科目 {subject} 第 {question} 题"


def read_snapshot(state_dir: Path, subject: str, question: str, entry: dict[str, Any]) -> bytes:
    """The bytes of one listed file, checked against its listing's size and SHA-256:
    a snapshot missing or damaged is refused in Chinese."""
    name, size, sha256 = entry["name"], entry["size"], entry["sha256"]
    path = snapshot_path(state_dir, sha256)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise Refused(
            "work_file_missing",
            f"{_where(subject, question)}的作答文件「{name}」在本机的保存副本已不存在，无法导出；"
            "请在答题程序中重新提交该题的作品",
            f"snapshot {path} is gone",
        ) from exc
    except OSError as exc:
        raise Refused(
            "read_failed",
            f"读取作答文件「{name}」失败：{exc.strerror or exc}",
            f"cannot read {path}: {exc}",
        ) from exc
    if len(data) != size or hashlib.sha256(data).hexdigest() != sha256:
        raise Refused(
            "work_file_damaged",
            f"{_where(subject, question)}的作答文件「{name}」在本机的保存副本已损坏，无法导出；"
            "请在答题程序中重新提交该题的作品",
            f"snapshot {path} is {len(data)} bytes, not the listed {size} with sha256 {sha256}",
        )
    return data


def snapshot_intact(state_dir: Path, sha256: str, size: int) -> bool:
    """The snapshot exists with this size and hash (read whole: call it off the loop)."""
    try:
        path = snapshot_path(state_dir, sha256)
        if path.stat().st_size != size:
            return False
        digest = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
    except (OSError, ValueError):
        return False
    return digest.hexdigest() == sha256


def listing_of(value: Any) -> list[dict[str, Any]] | None:
    """The file listing of an operation task's answer value (`{"files": [...]}`), or None
    when the value is no listing at all; ValueError when it is one but cannot be trusted
    (not a list of `{name, size, sha256}` with valid, distinct names)."""
    if not isinstance(value, dict) or "files" not in value:
        return None
    listing = value["files"]
    if not isinstance(listing, list):
        raise ValueError("the listing is not a list")
    names = set()
    for entry in listing:
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("name"), str)
            and valid_file_name(entry["name"])
            and type(entry.get("size")) is int
            and entry["size"] >= 0
            and isinstance(entry.get("sha256"), str)
            and SHA256.fullmatch(entry["sha256"])
        ) or entry["name"] in names:
            raise ValueError(f"bad listing entry {entry!r:.120}")
        names.add(entry["name"])
    return listing
