"""The frozen (PyInstaller one-folder) apps as the code sees them: whether this process
runs from a frozen folder, the exam-PC client folder beside the box's, the project's
version, and the environment for the machine's own programs.

The bootloader points LD_LIBRARY_PATH at the bundle's libraries (and keeps the original
in LD_LIBRARY_PATH_ORIG); a system program (fc-list, systemctl, /bin/sh) started with it
may load the bundle's libreadline or libssl instead of its own and fail."""

from __future__ import annotations

import importlib.metadata
import os
import sys
from pathlib import Path

DIST_NAME = "proctor-box"
CLIENT_FOLDER = "stu-client"  # the exam-PC client's one-folder app, beside the box's


def is_frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


def app_folder() -> Path | None:
    """The frozen app's folder (the one holding its executable); None from source."""
    return Path(sys.executable).resolve().parent if is_frozen() else None


def client_executable(folder: Path) -> Path:
    return folder / ("stu-client.exe" if sys.platform.startswith("win") else "stu-client")


def client_folder() -> Path | None:
    """The frozen exam-PC client folder beside this frozen app's folder (`dist/stu-client`
    for `dist/kiosk`), when there is one."""
    own = app_folder()
    if own is None:
        return None
    folder = own.parent / CLIENT_FOLDER
    return folder if client_executable(folder).is_file() else None


def project_version() -> str:
    """The installed project's version (frozen apps carry its metadata); raises
    importlib.metadata.PackageNotFoundError when neither installed nor frozen with it."""
    return importlib.metadata.version(DIST_NAME)


def system_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """`env` (default: this process's) as the machine's own programs must see it."""
    out = dict(os.environ if env is None else env)
    if is_frozen() and sys.platform.startswith("linux"):
        original = out.pop("LD_LIBRARY_PATH_ORIG", None)
        if original is not None:
            out["LD_LIBRARY_PATH"] = original
        else:
            out.pop("LD_LIBRARY_PATH", None)
    return out
