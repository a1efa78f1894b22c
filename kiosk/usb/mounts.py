"""Which USB sticks are mounted: the mount points under the configured roots, read
from the kernel's mount table (/proc/self/mountinfo)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")

# The kernel writes space, tab, newline and backslash in paths as three octal digits.
_OCTAL = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mount_points(text: str) -> list[Path]:
    """The mount points of a mountinfo text, in table order (field 5 of each line)."""
    points = []
    for line in text.splitlines():
        fields = line.split(" ")
        if len(fields) >= 5:
            points.append(Path(_unescape(fields[4])))
    return points


def under_roots(points: Iterable[Path], roots: Iterable[Path]) -> set[Path]:
    """The points lying strictly under one of the roots (a root itself is not a stick)."""
    roots = list(roots)
    return {p for p in points if any(p != r and p.is_relative_to(r) for r in roots)}


def read_mountinfo() -> str:
    # Paths are bytes to the kernel; surrogateescape keeps non-UTF-8 names as Python does.
    return MOUNTINFO.read_text(encoding="utf-8", errors="surrogateescape")


def stick_mounts(roots: Iterable[Path]) -> set[Path]:
    """The mount points under `roots` now."""
    return under_roots(parse_mount_points(read_mountinfo()), roots)
