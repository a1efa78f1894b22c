"""Verified copies onto external storage (backup, export): the implementation is
kiosk.common.verified, which the exam PC's answer-package export uses too."""

from __future__ import annotations

from kiosk.common.verified import (
    CHUNK,
    CopyResult,
    MiB,
    Progress,
    check_space,
    copy_files_verified,
    write_verified,
)

__all__ = ["CHUNK", "CopyResult", "MiB", "Progress", "check_space", "copy_files_verified", "write_verified"]
