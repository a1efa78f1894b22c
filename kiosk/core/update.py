"""The rules of an offline update of the box app (docs/formats.md, "Update package"):
the manifest a package carries, read strictly (every path relative and inside the release,
every link to a file of the release), and whether this box may install it (product,
version order, the oldest version it updates from). Pure: no files, no signatures."""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kiosk.core.errors import Refused

UPDATE_FORMAT = "app-update"
PRODUCT = "proctor-box"
EXECUTABLE = "kiosk"  # the release's program, at its top
MAX_ENTRIES = 20_000
MAX_PATH_BYTES = 1024
MAX_NAME_BYTES = 255
MAX_FILE_BYTES = 2 * 1024**3
_VERSION = re.compile(r"(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f\\]")


def _invalid(zh: str, en: str) -> Refused:
    return Refused("package_invalid", f"不是有效的升级包：{zh}", f"invalid update package: {en}")


def parse_version(text: object) -> tuple[int, int, int]:
    """``MAJOR.MINOR.PATCH``, digits only, no leading zeros; anything else is refused."""
    m = _VERSION.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise Refused(
            "bad_version", f"版本号应为 主.次.修订 三段数字：{text!r:.40}", f"bad version {text!r:.40}"
        )
    return int(m[1]), int(m[2]), int(m[3])


def is_version(text: object) -> bool:
    try:
        parse_version(text)
    except Refused:
        return False
    return True


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative, "/"-separated
    size: int
    sha256: str
    mode: int  # permission bits 0..0o777; the installer keeps only rwxr-xr-x of them


@dataclass(frozen=True)
class LinkEntry:
    path: str
    target: str  # relative to the link's folder; resolves to a file entry


@dataclass(frozen=True)
class Manifest:
    product: str
    version: str
    built_at: float
    min_from: str | None  # the oldest version this package updates; None: any older one
    files: tuple[FileEntry, ...]  # in payload order
    links: tuple[LinkEntry, ...]
    payload_size: int
    payload_sha256: str

    def folders(self) -> list[str]:
        """Every folder the release holds, parents before children."""
        found = {posixpath.dirname(e.path) for e in (*self.files, *self.links)}
        every = set()
        for folder in found:
            while folder:
                every.add(folder)
                folder = posixpath.dirname(folder)
        return sorted(every, key=lambda f: (f.count("/"), f))


def check_path(path: object) -> str:
    """A path inside the release: relative, "/"-separated, no empty, "." or ".." part, no
    control character or backslash, valid UTF-8, of bounded length."""
    if not isinstance(path, str) or not path:
        raise _invalid("文件路径为空或不是文字", "path must be a non-empty string")
    try:
        raw = path.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _invalid("文件路径编码错误", "path is not UTF-8") from exc
    if len(raw) > MAX_PATH_BYTES or _BAD_CHARS.search(path):
        raise _invalid(f"文件路径无效：{path!r:.80}", f"bad path {path!r:.80}")
    if path.startswith("/"):
        raise _invalid(f"包含绝对路径：{path!r:.80}", f"absolute path {path!r:.80}")
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise _invalid(f"包含越出程序目录的路径：{path!r:.80}", f"path escapes the release: {path!r:.80}")
        if len(part.encode("utf-8")) > MAX_NAME_BYTES:
            raise _invalid(f"文件名过长：{path!r:.80}", "name too long")
    return path


def _int(d: Mapping[str, Any], key: str, where: str, low: int = 0, high: int | None = None) -> int:
    v = d.get(key)
    if type(v) is not int or v < low or (high is not None and v > high):
        raise _invalid(f"{where} 的 {key} 无效", f"{where}.{key} must be an integer in range")
    return v


def _sha(d: Mapping[str, Any], key: str, where: str) -> str:
    v = d.get(key)
    if not isinstance(v, str) or not _SHA256.fullmatch(v):
        raise _invalid(f"{where} 的 {key} 无效", f"{where}.{key} must be 64 lowercase hex digits")
    return v


def read_manifest(body: object) -> Manifest:
    """The signed body of an update package as a Manifest; anything malformed is refused
    as ``package_invalid`` (or ``bad_version``) with the reason, never another exception."""
    if not isinstance(body, dict):
        raise _invalid("清单不是对象", "manifest must be an object")
    product = body.get("product")
    if not isinstance(product, str) or not 0 < len(product) <= 64:
        raise _invalid("缺少产品名", "product must be a short string")
    version = body.get("version")
    parse_version(version)
    min_from = body.get("min_from")
    if min_from is not None:
        parse_version(min_from)
    built = body.get("built_at")
    if isinstance(built, bool) or not isinstance(built, int | float) or not math.isfinite(built):
        raise _invalid("缺少打包时间", "built_at must be a finite number")
    files_raw, links_raw = body.get("files"), body.get("links", [])
    if not isinstance(files_raw, list) or not isinstance(links_raw, list):
        raise _invalid("文件清单不是列表", "files and links must be lists")
    if not files_raw or len(files_raw) + len(links_raw) > MAX_ENTRIES:
        raise _invalid("文件清单为空或过长", f"1 to {MAX_ENTRIES} entries")
    files = []
    for i, e in enumerate(files_raw):
        if not isinstance(e, dict):
            raise _invalid(f"第 {i + 1} 个文件条目不是对象", "file entry must be an object")
        where = f"文件 {i + 1}"
        files.append(
            FileEntry(
                check_path(e.get("path")),
                _int(e, "size", where, 0, MAX_FILE_BYTES),
                _sha(e, "sha256", where),
                _int(e, "mode", where, 0, 0o777),
            )
        )
    links = []
    for i, e in enumerate(links_raw):
        if not isinstance(e, dict) or not isinstance(e.get("target"), str):
            raise _invalid(f"第 {i + 1} 个链接条目无效", "link entry must be an object with a target")
        links.append(LinkEntry(check_path(e.get("path")), e["target"]))
    payload_size = body.get("payload_size")
    if type(payload_size) is not int or payload_size != sum(f.size for f in files):
        raise _invalid("内容长度与文件清单不符", "payload_size must be the sum of the file sizes")
    manifest = Manifest(
        product,
        str(version),
        float(built),
        None if min_from is None else str(min_from),
        tuple(files),
        tuple(links),
        payload_size,
        _sha(body, "payload_sha256", "清单"),
    )
    _check_tree(manifest)
    return manifest


def _check_tree(m: Manifest) -> None:
    """The entries form one tree: no path twice, none below a file or a link (nothing is
    ever written through a link), every link to a file of the release."""
    file_paths = {f.path for f in m.files}
    link_paths = {link.path for link in m.links}
    if len(file_paths) != len(m.files) or len(link_paths) != len(m.links) or file_paths & link_paths:
        raise _invalid("文件清单中有重复的路径", "a path is listed twice")
    leaves = file_paths | link_paths
    for path in leaves:
        parent = posixpath.dirname(path)
        while parent:
            if parent in leaves:
                raise _invalid(f"路径位于文件或链接之下：{path!r:.80}", f"{path!r:.80} lies below a leaf")
            parent = posixpath.dirname(parent)
    for link in m.links:
        target = link.target
        parts = target.split("/")
        up = next((i for i, part in enumerate(parts) if part != ".."), len(parts))
        names = parts[up:]  # "../" only in front, then plain names: resolved as written
        if not names or any(n in ("", ".", "..") for n in names) or _BAD_CHARS.search(target):
            raise _invalid(f"链接指向本程序目录以外：{link.path!r:.80}", "link target must be relative")
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(link.path), target))
        if resolved.startswith("../") or resolved == ".." or resolved not in file_paths:
            raise _invalid(
                f"链接指向本程序目录以外或不存在的文件：{link.path!r:.80}",
                f"link {link.path!r:.80} does not point at a file of the release",
            )


def check_installable(m: Manifest, installed: str) -> None:
    """May a box whose app is `installed` (the version it runs, or the release it will
    start next) install this package? Refusals: ``foreign_product``,
    ``already_installed``, ``downgrade``, ``too_old_to_update``."""
    if m.product != PRODUCT:
        raise Refused(
            "foreign_product", f"这是“{m.product:.40}”的升级包，不是监考机的", f"product is {m.product!r:.40}"
        )
    exe = next((f for f in m.files if f.path == EXECUTABLE), None)
    if exe is None or not exe.mode & 0o100:
        raise _invalid("缺少监考机程序", f"no executable {EXECUTABLE!r} at the top")
    new, have = parse_version(m.version), parse_version(installed)
    if new == have:
        raise Refused("already_installed", f"本机已是版本 {installed}，无需安装", "same version")
    if new < have:
        raise Refused(
            "downgrade",
            f"升级包版本 {m.version} 低于本机版本 {installed}，不能降级安装",
            f"{m.version} is older than {installed}",
        )
    if m.min_from is not None and have < parse_version(m.min_from):
        raise Refused(
            "too_old_to_update",
            f"本机版本 {installed} 过旧：此升级包只能从版本 {m.min_from} 或更新的版本升级",
            f"needs at least {m.min_from}",
        )


def check_space(needed: int, free: int) -> None:
    """The data partition must hold the new release (and a margin, in `needed`)."""
    if free < needed:
        mb = 1024**2
        raise Refused(
            "no_space",
            f"数据分区空间不足：需要 {math.ceil(needed / mb)} MB，仅剩 {free // mb} MB",
            f"needs {needed} bytes, {free} free",
        )
