"""What both PyInstaller specs share: the project root and version, Kivy's minimal
dependencies, and the package data the code loads from beside its modules.

Imported by the specs (run by PyInstaller with SPECPATH set), never by the apps."""

from __future__ import annotations

import importlib.metadata
import os
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIST_NAME = "proctor-box"
# pyproject.toml's [tool.setuptools.package-data]: what the code reads beside its modules
# (kv files, Jinja2 templates).
DATA_PATTERNS = ("*.kv", "*.html", "*.j2", "*.sql")


def project_version() -> str:
    """pyproject's version, which must be the installed metadata's: the frozen apps carry
    that metadata (copy_metadata) and read their version from it."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    installed = importlib.metadata.version(DIST_NAME)
    if installed != declared:
        raise SystemExit(
            f"installed {DIST_NAME} {installed} != pyproject.toml {declared}: run scripts/setup.sh first"
        )
    return declared


def package_data(*packages: str) -> list[tuple[str, str]]:
    """(source file, folder in the bundle) for every data file under the packages."""
    found = []
    for package in packages:
        base = ROOT / package.replace(".", "/")
        for pattern in DATA_PATTERNS:
            for path in sorted(base.rglob(pattern)):
                if "__pycache__" not in path.parts:
                    found.append((str(path), str(path.parent.relative_to(ROOT))))
    return found


def kivy_deps() -> dict[str, list]:
    """PLATFORM-NOTES: Kivy's minimal dependencies without video, audio, camera and
    spelling (PyInstaller's own Kivy hook does the rest)."""
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
    os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
    from kivy.tools.packaging.pyinstaller_hooks import get_deps_minimal

    return get_deps_minimal(video=None, audio=None, camera=None, spelling=None)


# Never needed by either app; some are pulled in by optional imports of their libraries.
EXCLUDES = ["tkinter", "_tkinter", "pytest", "hypothesis", "IPython", "numpy", "docutils"]
