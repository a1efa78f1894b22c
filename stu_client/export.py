"""导出作答包: the logged-in candidate's answers as an answer package on a USB stick,
sealed with the room's package key and signed by this PC's key (docs/formats.md), with
the operation tasks' work files.

It reads only the daemon's state folder (state.json, the journal, the PC key, the
snapshots of the collected work files under `files/`), so it works from the answer
app, from the daemon, and from `stu-client export` while the daemon is dead."""

from __future__ import annotations

import base64
import binascii
import time
from pathlib import Path
from typing import Any

from kiosk.common.crypto import CERT_FILE, KEY_FILE, Identity
from kiosk.common.errors import Refused
from kiosk.common.packages import AnswerFile
from kiosk.common.signed import MAX_ANSWER_FILES, MAX_ENVELOPE_BYTES, seal_answer_package, valid_file_name
from kiosk.common.verified import write_verified
from stu_client.localstore import DaemonState, Journal
from stu_client.workfiles import listing_of, read_snapshot

WORK_DIR = "work"  # <state>/work/<admission_no>/<subject>/<question>/<name>: the work itself
MAX_PACKAGE_BYTES = MAX_ENVELOPE_BYTES  # what the box reads at most


def export_answer_package(state_dir: Path, dest: Path, now: float | None = None) -> Path:
    """Write the package into `dest` (free space checked first, written as a `.part`
    file, read back from the device and compared, then renamed); its path."""
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
    files = work_files(state_dir, answers)
    raw = seal_answer_package(
        Identity(key_path.read_bytes(), cert_path.read_bytes()),
        key,
        room_code=state.room_code,
        session=state.session,
        admission_no=state.admission_no,
        answers=answers,
        created_at=time.time() if now is None else now,
        files=files,
    )
    if len(raw) > MAX_PACKAGE_BYTES:
        raise Refused(
            "package_too_large",
            f"作答包 {len(raw) // 1024**2} MB，超过监考机可读取的 {MAX_PACKAGE_BYTES // 1024**2} MB",
            f"the package is {len(raw)} bytes",
        )
    last = max((a["seq"] for a in answers), default=0)
    name = f"answer-{state.admission_no}-s{state.session}-{last}.json"
    try:
        return write_verified(dest, name, raw).path  # refuses a stick too small before writing
    except Refused as exc:
        if exc.code == "verify_failed":
            raise Refused("verify_failed", "作答包写入后校验失败，请更换U盘重试", exc.en) from exc
        raise


def work_files(state_dir: Path, answers: list[dict[str, Any]]) -> list[AnswerFile]:
    """The files that the candidate's answers list (`{"files": [{name, size, sha256}]}`),
    read from the snapshots taken when the answer app collected them
    (`<state>/files/<sha256>`, stu_client.workfiles) and each checked against its
    listing: a snapshot missing or damaged is refused, not exported. The work folder,
    which the candidate may have changed since, is not read."""
    files: list[AnswerFile] = []
    for a in answers:
        value, subject, question = a["value"], a["subject"], a["question"]
        try:
            listing = listing_of(value)
            if listing is not None and not (_plain_part(subject) and _plain_part(question)):
                raise ValueError("unsafe subject or question")
        except ValueError as exc:
            raise Refused(
                "work_listing_invalid",
                f"科目 {subject} 第 {question} 题的作答文件清单无效，无法导出；请在答题程序中重新保存该题",
                f"bad file listing for {subject}/{question}: {exc}",
            ) from exc
        for entry in listing or ():
            data = read_snapshot(state_dir, subject, question, entry)
            files.append(AnswerFile(subject, question, entry["name"], data))
    if len(files) > MAX_ANSWER_FILES:
        raise Refused(
            "too_many_files",
            f"作答文件共 {len(files)} 个，超过作答包允许的 {MAX_ANSWER_FILES} 个",
            "too many files",
        )
    return files


def _plain_part(part: Any) -> bool:
    """A folder name that stays inside its parent."""
    return isinstance(part, str) and valid_file_name(part)
