"""Atomic file writes: a reader sees the old file or the whole new one, after a crash
or a power cut too (temporary file, fsync, rename, fsync of the folder)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def fsync_dir(folder: Path) -> None:
    """Make a rename durable; some file systems (vfat on a USB stick) refuse, harmlessly."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


CHUNK = 1024 * 1024


def _open_new(tmp: Path, mode: int | None) -> BinaryIO:
    if mode is None:
        return open(tmp, "wb")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), mode)
    try:
        if hasattr(os, "fchmod"):  # a stale temporary file of the same name keeps its old mode
            os.fchmod(fd, mode)
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


def write_atomic(
    path: str | Path,
    data: bytes,
    progress: Callable[[int, int], None] | None = None,
    sync: bool = True,
    mode: int | None = None,
    writeback: bool = False,
) -> Path:
    """Write `data` to `path` atomically, reporting bytes written per 1 MiB to `progress`.

    `sync=False` leaves the flush to the caller, who writes many files and then makes
    them durable at once (``os.sync()``); with `writeback=True` the file starts going to
    disk at once, so that the caller's sync has less left to wait for. `mode` (e.g. 0o600
    for a secret) is set on the temporary file before any byte is written, so no reader
    ever sees the data with a wider mode."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with _open_new(tmp, mode) as f:
            for start in range(0, len(data), CHUNK):
                f.write(data[start : start + CHUNK])
                if progress is not None:
                    progress(min(start + CHUNK, len(data)), len(data))
            f.flush()
            if sync:
                os.fsync(f.fileno())
            elif writeback and hasattr(os, "posix_fadvise"):
                # On dirty pages (Linux): start writing them back, and keep them cached.
                os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if sync:
        fsync_dir(path.parent)
    return path
