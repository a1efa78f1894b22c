"""Verified copies onto external storage: each file is written as `.<name>.part`, made
durable, its pages dropped from the cache, read back from the device and compared, and
only then renamed, so that a file under its final name is always complete; a stick
pulled out mid-write leaves at worst a `.part` file.

Shared by the box (backup, export: kiosk.usb.copy) and the exam PC (导出作答包), so it
needs nothing beyond the standard library and kiosk.common; on Windows, which has no
posix_fadvise, the read-back may come from the cache."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from kiosk.common.errors import Refused
from kiosk.common.fsutil import fsync_dir

CHUNK = 1024 * 1024
MiB = 1024 * 1024

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class CopyResult:
    path: Path  # the file written; the target folder for copy_files_verified
    bytes: int
    sha256: str  # of the file; for many files, of their manifest (`sha256  name` lines, sorted)
    seconds: float
    files: dict[str, str] = field(default_factory=dict)  # relative name -> sha256


class _Counter:
    def __init__(self, total: int, progress: Progress | None) -> None:
        self.done = 0
        self.total = total
        self.progress = progress

    def add(self, n: int) -> None:
        self.done += n
        if self.progress is not None:
            self.progress(self.done, self.total)


def write_verified(
    folder: str | Path, name: str, data: bytes | Path, progress: Progress | None = None
) -> CopyResult:
    """Write `data` (bytes, or the contents of a source file) to `folder/name`, verified."""
    started = time.monotonic()
    folder = _check_folder(folder)
    target = _target(folder, name)
    total = len(data) if isinstance(data, bytes) else _size(data)
    check_space(folder, total)
    counter = _Counter(total, progress)
    [digest] = _copy(folder, [(data, target)], counter)
    return CopyResult(target, counter.done, digest, time.monotonic() - started)


def copy_files_verified(
    folder: str | Path, files: Sequence[tuple[Path, str]], progress: Progress | None = None
) -> CopyResult:
    """Copy each (source file, relative name) into `folder`, sub-folders included, verified;
    `progress` counts the bytes of all files together."""
    started = time.monotonic()
    folder = _check_folder(folder)
    items: list[tuple[bytes | Path, Path]] = [(Path(src), _target(folder, rel)) for src, rel in files]
    total = sum(_size(Path(src)) for src, _ in files)
    check_space(folder, total)
    counter = _Counter(total, progress)
    hashes = dict(zip((rel for _, rel in files), _copy(folder, items, counter), strict=True))
    manifest = "".join(f"{digest}  {rel}\n" for rel, digest in sorted(hashes.items()))
    digest = hashlib.sha256(manifest.encode("utf-8", "surrogateescape")).hexdigest()
    return CopyResult(folder, counter.done, digest, time.monotonic() - started, hashes)


def _check_folder(folder: str | Path) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise Refused("bad_folder", f"目标文件夹不存在：{folder}", f"no folder {folder}")
    return folder


def _target(folder: Path, name: str) -> Path:
    rel = PurePosixPath(name)
    if not name or rel.is_absolute() or ".." in rel.parts or rel.name in ("", "."):
        raise Refused("bad_name", f"文件名不合法：{name}", f"bad file name {name!r}")
    return folder.joinpath(*rel.parts)


def _size(src: Path) -> int:
    try:
        return os.stat(src).st_size
    except OSError as exc:
        raise Refused("bad_source", f"找不到要复制的文件：{src}", f"cannot read {src}: {exc}") from exc


def check_space(folder: Path, total: int) -> None:
    """Refuses (usb_full) when `total` bytes and a margin do not fit in `folder`."""
    need = total + MiB + total // 100
    try:
        free = shutil.disk_usage(folder).free
    except OSError as exc:
        raise _write_failed(exc) from exc
    if free < need:
        raise Refused(
            "usb_full",
            f"U盘空间不足：需要 {-(-need // MiB)} MB，可用 {free // MiB} MB",
            f"not enough space in {folder}: need {need} bytes, {free} free",
        )


def _write_failed(exc: OSError) -> Refused:
    return Refused("write_failed", f"写入外部存储失败：{exc.strerror or exc}", f"write failed: {exc}")


def _part(target: Path) -> Path:
    return target.with_name(f".{target.name}.part")


def _copy(folder: Path, items: Sequence[tuple[bytes | Path, Path]], counter: _Counter) -> list[str]:
    """Write each item to its `.part` file (hashed as it is written), then verify and
    rename it. A second thread verifies one file while the next is written and hashed,
    so the two cores share the work. On any failure every `.part` file of the job is
    removed."""
    digests: list[str] = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="usb-verify") as verifier:
        finishing: Future[None] | None = None
        try:
            for src, target in items:
                _make_folders(folder, target.parent)
                digest = _write(src, _part(target), counter)
                if finishing is not None:
                    finishing.result()
                finishing = verifier.submit(_finish, target, src)
                digests.append(digest)
            if finishing is not None:
                finishing.result()
        except BaseException as exc:
            if finishing is not None:
                wait([finishing])
            for _, target in items:
                with contextlib.suppress(OSError):
                    _part(target).unlink()
            if isinstance(exc, OSError):
                raise _write_failed(exc) from exc
            raise
    return digests


def _finish(target: Path, src: bytes | Path) -> None:
    """Re-read the written file and compare it with its source byte for byte (cheaper
    than hashing it again: the source was hashed as it was written); only a file that
    verifies gets its final name."""
    tmp = _part(target)
    buf = memoryview(bytearray(CHUNK))
    with open(tmp, "rb", buffering=0) as f:
        for chunk in _chunks(src):
            n = f.readinto(buf)
            while n < len(chunk) and (more := f.readinto(buf[n:])):
                n += more
            if buf[:n].tobytes() != chunk.tobytes():  # memcmp; a memoryview compares item by item
                raise _verify_failed(target)
        if f.read(1):
            raise _verify_failed(target)
    os.replace(tmp, target)
    fsync_dir(target.parent)


def _verify_failed(target: Path) -> Refused:
    return Refused("verify_failed", "备份校验失败，请更换U盘重试", f"{target} does not read back as written")


def _write(src: bytes | Path, tmp: Path, counter: _Counter) -> str:
    """Write `src` to `tmp` in chunks, hashing what is written, and make it durable."""
    h = hashlib.sha256()
    offset = 0
    with open(tmp, "wb", buffering=0) as out:
        for chunk in _chunks(src):
            h.update(chunk)
            done = 0
            while done < len(chunk):
                done += out.write(chunk[done:]) or 0
            # Start writing this chunk to the device now rather than at the fsync, so the
            # device works while the next chunk is hashed (DONTNEED on dirty pages only
            # queues their writeback).
            _drop_cache(out.fileno(), offset, len(chunk))
            offset += len(chunk)
            counter.add(len(chunk))
        os.fsync(out.fileno())
        # The written pages are clean now: drop them, so that the verifying read comes
        # from the device (where the kernel allows it).
        _drop_cache(out.fileno(), 0, 0)
    return h.hexdigest()


def _drop_cache(fd: int, offset: int, length: int) -> None:
    if not hasattr(os, "posix_fadvise"):  # Windows
        return
    with contextlib.suppress(OSError):  # only advice: a file system may ignore or refuse it
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)


def _chunks(src: bytes | Path) -> Iterator[memoryview]:
    if isinstance(src, bytes):
        data = memoryview(src)
        for start in range(0, len(data), CHUNK):
            yield data[start : start + CHUNK]
        return
    buf = memoryview(bytearray(CHUNK))
    with open(src, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            yield buf[:n]


def _make_folders(folder: Path, parent: Path) -> None:
    """Create the sub-folders down to `parent`, each made durable in its own parent."""
    missing = []
    while parent != folder and not parent.is_dir():
        missing.append(parent)
        parent = parent.parent
    for sub in reversed(missing):
        sub.mkdir()
        fsync_dir(sub.parent)
