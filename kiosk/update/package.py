"""The update package `kiosk-update-<version>.kup`: one line, the signed envelope
(kiosk.common.signed, format `app-update`) whose body is the manifest, then a line break
and the release's files, raw, one after the other in manifest order (the answer
package's layout: nothing to parse but the signed manifest).

The vendor signs with its update key (an ECDSA P-256 key and self-signed certificate,
like every other signer of the project); the box trusts the certificates in its update
keys folder (settings.update_keys_dir, in the read-only image)."""

from __future__ import annotations

import hashlib
import os
import re
import stat
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from kiosk.common.crypto import Identity, cert_fingerprint, make_identity
from kiosk.common.errors import Refused
from kiosk.common.fsutil import fsync_dir, write_atomic
from kiosk.common.signed import open_sealed, seal
from kiosk.core.update import EXECUTABLE, PRODUCT, UPDATE_FORMAT, Manifest, is_version, read_manifest

CHUNK = 1024 * 1024
MAX_HEADER_BYTES = 16 * 1024 * 1024  # the signed manifest line
MAX_CERT_BYTES = 64 * 1024
KEY_NAME, CERT_NAME = "update.key", "update.crt"
_METADATA = re.compile(r"proctor_box-(.+)\.dist-info")


def package_name(version: str) -> str:
    return f"kiosk-update-{version}.kup"


# -- the vendor's side ------------------------------------------------------------------


def keygen(folder: Path) -> tuple[Path, Path]:
    """A new update key pair in `folder` (update.key 0600, update.crt); an existing one is
    never overwritten (the boxes in the field trust it)."""
    key, cert = folder / KEY_NAME, folder / CERT_NAME
    if key.exists() or cert.exists():
        raise Refused(
            "key_exists", f"{folder} 中已有升级密钥，不会覆盖", f"{folder} already holds an update key"
        )
    folder.mkdir(parents=True, exist_ok=True)
    ident = make_identity("proctor-box update key")
    write_atomic(key, ident.key_pem, mode=0o600)
    write_atomic(cert, ident.cert_pem)
    return key, cert


def load_key(key_path: Path) -> Identity:
    """The update key at `key_path` with its certificate beside it (same name, `.crt`)."""
    cert_path = key_path.with_suffix(".crt")
    try:
        return Identity(key_path.read_bytes(), cert_path.read_bytes())
    except OSError as exc:
        raise Refused("bad_key", f"读取升级密钥失败：{exc}", f"cannot read the key: {exc}") from exc


def dist_version(dist: Path) -> str | None:
    """The version of the frozen app in `dist`, from the project metadata it carries."""
    internal = dist / "_internal"
    try:
        names = os.listdir(internal)
    except OSError:
        return None
    found = [m[1] for n in names if (m := _METADATA.fullmatch(n))]
    return found[0] if len(found) == 1 else None


def _walk(dist: Path) -> tuple[list[tuple[str, Path, os.stat_result]], list[tuple[str, str]]]:
    files, links = [], []
    for folder, dirs, names in os.walk(dist):
        dirs.sort()
        for name in sorted(names + [d for d in dirs if os.path.islink(os.path.join(folder, d))]):
            full = Path(folder, name)
            rel = full.relative_to(dist).as_posix()
            st = full.lstat()
            if stat.S_ISLNK(st.st_mode):
                links.append((rel, os.readlink(full)))
            elif stat.S_ISREG(st.st_mode):
                files.append((rel, full, st))
            else:
                raise Refused(
                    "bad_dist", f"程序目录中有不支持的文件类型：{rel}", f"{rel} is not a file or link"
                )
    return files, links


def pack(
    dist: Path,
    key: Identity,
    out_dir: Path,
    *,
    version: str | None = None,
    min_from: str | None = None,
    product: str = PRODUCT,
    now: float | None = None,
) -> Path:
    """The update package of the frozen app folder `dist` (build/build.sh's dist/kiosk),
    signed with the update key, written atomically as out_dir/kiosk-update-<version>.kup.
    The version is the one the app carries (its metadata); `version` may only repeat it,
    or name it for a folder without metadata."""
    dist = Path(dist)
    if not (dist / EXECUTABLE).is_file():
        raise Refused("bad_dist", f"{dist} 中没有程序 {EXECUTABLE}", f"no {EXECUTABLE} in {dist}")
    carried = dist_version(dist)
    if version is None:
        version = carried
    if version is None or not is_version(version) or (carried is not None and carried != version):
        raise Refused(
            "bad_version",
            f"版本号无效或与程序不符（程序为 {carried}，指定 {version}）",
            f"version {version!r} (the app carries {carried!r})",
        )
    files, links = _walk(dist)
    entries, payload = [], hashlib.sha256()
    for rel, full, st in files:  # the payload hash: the files' bytes one after the other
        h = hashlib.sha256()
        with open(full, "rb") as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
                payload.update(chunk)
        mode = stat.S_IMODE(st.st_mode) & 0o777
        entries.append({"path": rel, "size": st.st_size, "sha256": h.hexdigest(), "mode": mode})
    body: dict[str, Any] = {
        "product": product,
        "version": version,
        "built_at": time.time() if now is None else now,
        "min_from": min_from,
        "files": entries,
        "links": [{"path": rel, "target": target} for rel, target in links],
        "payload_size": sum(e["size"] for e in entries),
        "payload_sha256": payload.hexdigest(),
    }
    read_manifest(body)  # the box's own rules, before anything is written
    header = seal(key, UPDATE_FORMAT, body)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / package_name(version)
    tmp = target.with_name(f".{target.name}.part")
    try:
        with open(tmp, "wb") as out:
            out.write(header + b"\n")
            for (rel, full, _), entry in zip(files, entries, strict=True):
                h = hashlib.sha256()
                with open(full, "rb") as f:
                    while chunk := f.read(CHUNK):
                        h.update(chunk)
                        out.write(chunk)
                if h.hexdigest() != entry["sha256"]:
                    raise Refused("bad_dist", f"打包时文件被修改：{rel}", f"{rel} changed while packing")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(out_dir)
    return target


# -- the box's side ---------------------------------------------------------------------


def trusted_certs(folder: Path) -> list[bytes]:
    """The update certificates the box trusts: every `*.crt` in its update keys folder."""
    try:
        paths = sorted(p for p in folder.iterdir() if p.suffix == ".crt" and p.is_file())
        certs = [p.read_bytes()[:MAX_CERT_BYTES] for p in paths]
    except OSError:
        certs = []
    if not certs:
        raise Refused(
            "update_keys_missing",
            "本机未配置升级公钥，不能安装升级包",
            f"no update certificate (*.crt) in {folder}",
        )
    return certs


def read_header(f: BinaryIO, trusted: Sequence[bytes]) -> tuple[Manifest, int]:
    """The manifest of the package open in `f`, signed by a trusted update key, and the
    offset of its files. Refusals: ``package_invalid``, ``foreign_signer``,
    ``bad_signature`` (and the manifest's own, kiosk.core.update.read_manifest)."""
    f.seek(0)
    line = f.readline(MAX_HEADER_BYTES + 1)
    if not line.endswith(b"\n"):
        raise Refused("package_invalid", "不是有效的升级包：缺少签名清单", "no signed manifest line")
    raw = line[:-1]
    fingerprints = {cert_fingerprint(c): c for c in trusted}
    for cert in fingerprints.values():
        try:
            body = open_sealed(raw, UPDATE_FORMAT, cert)
        except Refused as exc:
            if exc.code == "foreign_signer":
                continue
            if exc.code == "bad_signature":
                raise Refused("bad_signature", "升级包签名无效（已被修改或损坏）", exc.en) from exc
            raise Refused("package_invalid", f"不是有效的升级包：{exc.zh}", exc.en) from exc
        return read_manifest(body), len(line)
    try:  # say what is wrong with a file that is no update package at all, before "foreign key"
        open_sealed(raw, UPDATE_FORMAT, trusted[0])
    except Refused as exc:
        if exc.code != "foreign_signer":
            raise Refused("package_invalid", f"不是有效的升级包：{exc.zh}", exc.en) from exc
    raise Refused("foreign_signer", "升级包不是由本机信任的升级密钥签发的", "signed by an untrusted key")


def payload_chunks(f: BinaryIO, offset: int, size: int) -> Iterator[bytes]:
    """The `size` bytes of files from `offset`, in chunks; short when the file is."""
    f.seek(offset)
    left = size
    while left > 0 and (chunk := f.read(min(CHUNK, left))):
        left -= len(chunk)
        yield chunk


def verify_payload(f: BinaryIO, offset: int, m: Manifest) -> None:
    """Every byte after the manifest is the signed one: the size and SHA-256 of the
    payload, and nothing after it (``package_damaged``: truncated, changed, appended)."""
    h = hashlib.sha256()
    got = 0
    for chunk in payload_chunks(f, offset, m.payload_size):
        h.update(chunk)
        got += len(chunk)
    trailing = f.read(1)
    if got != m.payload_size or trailing or h.hexdigest() != m.payload_sha256:
        raise Refused(
            "package_damaged",
            "升级包内容不完整或已损坏，请重新复制",
            f"payload {got} bytes (+{len(trailing)} more), want {m.payload_size} with the signed hash",
        )
