"""导出作答包: the logged-in candidate's answers as an answer package on a USB stick,
sealed with the room's package key and signed by this PC's key (docs/formats.md).

It reads only the daemon's state folder (state.json, the journal, the PC key), so it
works from the answer app, from the daemon, and from `stu-client export` while the
daemon is dead."""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from pathlib import Path

from kiosk.common.crypto import CERT_FILE, KEY_FILE, Identity
from kiosk.common.errors import Refused
from kiosk.common.fsutil import write_atomic
from kiosk.common.signed import seal_answer_package
from stu_client.localstore import DaemonState, Journal


def export_answer_package(state_dir: Path, dest: Path, now: float | None = None) -> Path:
    """Write the package into `dest` (atomic, read back and compared); its path."""
    state_dir, dest = Path(state_dir), Path(dest)
    state = DaemonState.load(state_dir / "state.json")
    if not state.admission_no:
        raise Refused("no_candidate", "本机没有已登录的考生，无需导出作答包", "no candidate is logged in")
    try:
        key = base64.b64decode(state.package_key, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32 or not state.room_code or not isinstance(state.session, int):
        raise Refused(
            "no_package_key", "本机尚未从监考机取得作答包密钥（考生登录后方可导出）", "no package key"
        )
    key_path, cert_path = state_dir / KEY_FILE.format("pc"), state_dir / CERT_FILE.format("pc")
    if not key_path.is_file() or not cert_path.is_file():
        raise Refused("no_pc_key", "找不到本机密钥，无法签名作答包", "the PC key is missing")
    if not dest.is_dir():
        raise Refused("bad_folder", f"找不到导出位置：{dest}（请插入U盘）", f"no folder {dest}")
    journal = Journal(state_dir / "journal.db")
    journal.open()
    try:
        answers = journal.answer_rows(state.admission_no)
    finally:
        journal.close()
    raw = seal_answer_package(
        Identity(key_path.read_bytes(), cert_path.read_bytes()),
        key,
        room_code=state.room_code,
        session=state.session,
        admission_no=state.admission_no,
        answers=answers,
        created_at=time.time() if now is None else now,
    )
    last = max((a["seq"] for a in answers), default=0)
    target = dest / f"answer-{state.admission_no}-s{state.session}-{last}.json"
    try:
        write_atomic(target, raw)
        written = target.read_bytes()
    except OSError as exc:
        raise Refused("write_failed", f"写入U盘失败：{exc.strerror or exc}", "write failed") from exc
    if hashlib.sha256(written).digest() != hashlib.sha256(raw).digest():
        target.unlink(missing_ok=True)
        raise Refused("verify_failed", "作答包写入后校验失败，请更换U盘重试", "package does not read back")
    return target
