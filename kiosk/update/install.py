"""Installing a verified update package under the app folder (settings.app_dir,
/data/app on the box):

    releases/<version>/    one complete release each (the frozen app folder)
    current -> releases/<version>    what the launcher starts (absent: the image's app)
    previous -> releases/<version>   what it falls back to when `current` fails to start
    boot-count             "<version> <starts>": starts of `current` not yet seen up

Nothing is written before the signature, the manifest, every byte of the payload, the
version order and the free space are checked. The files are unpacked into
`releases/<version>.new`, made durable, read back from the disk and compared with the
manifest, and only then renamed to `releases/<version>`; `previous` and then `current`
are switched by renaming a new symlink over the old one. At each step a crash leaves
`current` at a complete release (the old one until the last rename, the new one after).
At most two releases are kept: the current and the previous one. The room's data
(/data/room) is never touched."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from kiosk.common.errors import Refused
from kiosk.common.fsutil import fsync_dir
from kiosk.core.update import Manifest, check_installable, check_space, is_version
from kiosk.update.package import CHUNK, payload_chunks, read_header, verify_payload

STEPS = ("checked", "unpacked", "verified", "renamed", "previous", "switched", "pruned")
Hook = Callable[[str], None]


@dataclass(frozen=True)
class AppLayout:
    root: Path

    @property
    def releases(self) -> Path:
        return self.root / "releases"

    @property
    def current(self) -> Path:
        return self.root / "current"

    @property
    def previous(self) -> Path:
        return self.root / "previous"

    @property
    def boot_count(self) -> Path:
        return self.root / "boot-count"

    def release(self, version: str) -> Path:
        return self.releases / version

    def linked_version(self, link: Path) -> str | None:
        """The release a link names, when it is a complete one (its program is there)."""
        try:
            target = os.readlink(link)
        except OSError:
            return None
        version = os.path.basename(target)
        ok = target == f"releases/{version}" and is_version(version)
        return version if ok and (self.release(version) / "kiosk").is_file() else None


@dataclass(frozen=True)
class Installed:
    version: str
    previous: str | None  # the release kept for a fallback (None: the image's app)
    files: int
    bytes: int


def _refuse_io(exc: OSError, what: str) -> Refused:
    return Refused("install_failed", f"{what}失败：{exc.strerror or exc}", f"{what}: {exc}")


@contextlib.contextmanager
def _locked(layout: AppLayout) -> Iterator[None]:
    """One install at a time (two taps, or ctl beside the touch app)."""
    try:
        layout.releases.mkdir(parents=True, exist_ok=True)
        fd = os.open(layout.root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise _refuse_io(exc, f"写入程序目录 {layout.root} ") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise Refused("update_busy", "正在安装另一个升级包，请稍候", "another install runs") from exc
        yield
    finally:
        os.close(fd)


def _free_bytes(path: Path) -> int:
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def install(
    package: Path,
    layout: AppLayout,
    trusted: list[bytes],
    running_version: str,
    *,
    margin_bytes: int,
    hook: Hook | None = None,
) -> Installed:
    """Install the update package at `package` (see the module's docstring). A refusal
    before the unpacking leaves the app folder byte for byte as it was; one after it
    (the disk failed, the stick changed under the reader) removes what it unpacked."""
    step = hook or (lambda _name: None)
    try:  # O_NONBLOCK: a FIFO in the file's place must not hang the open
        fd = os.open(package, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise Refused("file_not_found", f"找不到升级包：{package}", f"no such file {package}") from exc
        raise Refused("read_failed", f"读取升级包失败：{exc.strerror or exc}", str(exc)) from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise Refused("package_invalid", "不是有效的升级包：不是普通文件", "not a regular file")
    with os.fdopen(fd, "rb") as f:
        try:
            manifest, offset = read_header(f, trusted)
            base = layout.linked_version(layout.current) or running_version
            check_installable(manifest, base)
            verify_payload(f, offset, manifest)
            needed = manifest.payload_size + margin_bytes + 4096 * (len(manifest.files) + len(manifest.links))
            check_space(needed, _free_bytes(layout.root))
        except OSError as exc:
            raise Refused("read_failed", f"读取升级包失败：{exc.strerror or exc}", str(exc)) from exc
        with _locked(layout):
            old = layout.linked_version(layout.current)
            check_installable(manifest, old or running_version)  # another install may have just ended
            step("checked")
            staging = layout.releases / f"{manifest.version}.new"
            try:
                _unpack(f, offset, manifest, staging)
                step("unpacked")
                _verify_on_disk(manifest, staging)
                step("verified")
            except BaseException as exc:
                shutil.rmtree(staging, ignore_errors=True)
                if isinstance(exc, OSError):
                    raise _refuse_io(exc, "写入升级程序") from exc
                raise
            try:
                final = layout.release(manifest.version)
                if os.path.lexists(final):  # a leftover (a crash, a release that failed): not current
                    _remove(final)
                os.rename(staging, final)
                fsync_dir(layout.releases)
                step("renamed")
                _link(layout, layout.previous, old)
                step("previous")
                _link(layout, layout.current, manifest.version)
                step("switched")
                layout.boot_count.unlink(missing_ok=True)
                _prune(layout, {manifest.version, old})
                step("pruned")
            except OSError as exc:
                raise _refuse_io(exc, "切换到新版本") from exc
    return Installed(manifest.version, old, len(manifest.files), manifest.payload_size)


def _unpack(f: BinaryIO, offset: int, m: Manifest, staging: Path) -> None:
    """The files into a fresh `staging` folder, each compared with its manifest entry as
    it is written and made durable; nothing is ever written through a link (the manifest
    puts no entry below a link, and files are opened with O_NOFOLLOW | O_EXCL)."""
    if os.path.lexists(staging):
        _remove(staging)
    staging.mkdir(mode=0o755)
    for folder in m.folders():
        (staging / folder).mkdir(mode=0o755)
    chunks = payload_chunks(f, offset, m.payload_size)
    pending = b""
    for entry in m.files:
        h = hashlib.sha256()
        left = entry.size
        fd = os.open(
            staging / entry.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, entry.mode & 0o755
        )
        try:
            while left > 0:
                if not pending:
                    pending = next(chunks, b"")
                    if not pending:
                        break
                piece, pending = pending[:left], pending[left:]
                h.update(piece)
                view = memoryview(piece)
                while view:
                    view = view[os.write(fd, view) :]
                left -= len(piece)
            os.fchmod(fd, entry.mode & 0o755)  # the umask may have narrowed it
            os.fsync(fd)
            if hasattr(os, "posix_fadvise"):  # the check below reads the disk, not the cache
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
        if left or h.hexdigest() != entry.sha256:
            raise Refused(
                "package_damaged",
                "升级包在读取时发生变化或已损坏，请重新复制",
                f"{entry.path} differs from the manifest while unpacking",
            )
    for link in m.links:
        os.symlink(link.target, staging / link.path)
    for folder in reversed(m.folders()):
        fsync_dir(staging / folder)
    fsync_dir(staging)
    fsync_dir(staging.parent)


def _verify_on_disk(m: Manifest, staging: Path) -> None:
    """Read every file back from the disk and compare it with the manifest."""
    for entry in m.files:
        h = hashlib.sha256()
        fd = os.open(staging / entry.path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise _verify_failed(entry.path)
            while chunk := os.read(fd, CHUNK):
                h.update(chunk)
        finally:
            os.close(fd)
        if h.hexdigest() != entry.sha256:
            raise _verify_failed(entry.path)
    for link in m.links:
        if os.readlink(staging / link.path) != link.target:
            raise _verify_failed(link.path)


def _verify_failed(path: str) -> Refused:
    return Refused("verify_failed", "写入的程序文件校验失败，请检查数据分区", f"{path} does not read back")


def _link(layout: AppLayout, link: Path, version: str | None) -> None:
    """Point `link` at releases/<version> (None: remove it) by renaming a new symlink over it."""
    if version is None:
        link.unlink(missing_ok=True)
    else:
        tmp = link.with_name(f".{link.name}.tmp")
        tmp.unlink(missing_ok=True)
        os.symlink(f"releases/{version}", tmp)
        os.replace(tmp, link)
    fsync_dir(layout.root)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _prune(layout: AppLayout, keep: set[str | None]) -> None:
    """Every release but the current and the previous one, and leftover staging folders."""
    for entry in os.scandir(layout.releases):
        if entry.name not in keep:
            _remove(Path(entry.path))
    fsync_dir(layout.releases)


def mark_started(layout: AppLayout) -> None:
    """The app is up: the launcher's count of failed starts begins again."""
    with contextlib.suppress(OSError):
        layout.boot_count.unlink()


def status(layout: AppLayout, running_version: str) -> dict[str, object]:
    try:
        releases = sorted(e.name for e in os.scandir(layout.releases) if is_version(e.name))
    except OSError:
        releases = []
    return {
        "running_version": running_version,
        "current_release": layout.linked_version(layout.current),  # None: the image's app
        "previous_release": layout.linked_version(layout.previous),
        "releases": releases,
        "app_dir": str(layout.root),
    }
