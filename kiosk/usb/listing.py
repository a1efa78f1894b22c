"""What is on a USB stick: the project's package files found near its top, each
classified by its first bytes, and the stick's free space. Never raises on a weird stick."""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
from collections import deque
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MAX_DEPTH = 3  # "a/b/c.json" is depth 3: files in the stick's top folder and two levels below
MAX_ENTRIES = 10_000  # directory entries looked at, files and folders together
HEAD_BYTES = 256

# Package kind -> the operation the box offers for it (None: nothing to do on the box).
OPERATIONS: dict[str, str | None] = {
    "room-sheet": "room_sheet_import",
    "exam-package": "exam_import",
    "session-authorisation": "authorise",
    "answer-package": "import_answers",  # the collect operation takes the same file
    "results-package": None,
    "app-update": "update_install",  # kiosk.core.update.UPDATE_FORMAT: the box app's update
}

# Every package is JSON whose first key is "format": compact (signed envelopes) or indented.
_FORMAT = re.compile(rb'\A\s*\{\s*"format"\s*:\s*"([a-z-]{1,40})"')


@dataclass(frozen=True)
class PackageFile:
    kind: str
    path: Path
    size: int
    mtime: float
    operation: str | None


@dataclass(frozen=True)
class StickContents:
    path: Path
    packages: tuple[PackageFile, ...]
    free_bytes: int
    total_bytes: int


def is_ignored(name: str) -> bool:
    """Hidden files and folders, and files still being written (``*.part``)."""
    return name.startswith(".") or name.endswith(".part")


def classify(head: bytes) -> str:
    """The package kind of a file from its first bytes; "other" when it is none of ours."""
    m = _FORMAT.match(head)
    kind = m.group(1).decode() if m else ""
    return kind if kind in OPERATIONS else "other"


def _package(path: str) -> PackageFile | None:
    """The package at `path` from its first bytes; None for other or unreadable files."""
    # O_NONBLOCK: a file swapped for a FIFO after its folder was listed must not hang the open.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        kind = classify(os.read(fd, HEAD_BYTES))
    except OSError:
        return None
    finally:
        os.close(fd)
    if kind == "other":
        return None
    return PackageFile(kind, Path(path), st.st_size, st.st_mtime, OPERATIONS[kind])


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes, kept by Python as lone surrogates
        return False
    return True


def list_stick(path: str | Path) -> StickContents:
    """The packages on the stick mounted at `path`, by path."""
    root = Path(path)
    packages: list[PackageFile] = []
    folders: deque[tuple[str, int]] = deque([(str(root), 1)])
    seen = 0
    while folders and seen < MAX_ENTRIES:
        folder, depth = folders.popleft()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    seen += 1
                    if seen > MAX_ENTRIES:
                        break
                    if is_ignored(entry.name) or not _utf8(entry.name):
                        continue
                    try:
                        is_dir = entry.is_dir(follow_symlinks=False)
                        is_file = entry.is_file(follow_symlinks=False)  # not symlinks, FIFOs, devices
                    except OSError:
                        continue
                    if is_dir and depth < MAX_DEPTH:
                        folders.append((entry.path, depth + 1))
                    elif is_file and (package := _package(entry.path)) is not None:
                        packages.append(package)
        except OSError as exc:
            log.info("cannot list %s: %s", folder, exc)
    try:
        usage = shutil.disk_usage(root)
        free, total = usage.free, usage.total
    except OSError:
        free = total = 0
    packages.sort(key=lambda p: str(p.path))
    return StickContents(root, tuple(packages), free, total)
