"""系统管理: the box app's offline update from a USB stick (kiosk/update). The new
release starts at the next start of the app; the room's data is not touched."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

from kiosk.common.frozen import project_version
from kiosk.core.errors import Refused
from kiosk.services.base import ServiceBase
from kiosk.update import install as installer
from kiosk.update.package import trusted_certs


def running_version() -> str:
    try:
        return project_version()
    except importlib.metadata.PackageNotFoundError:  # a source tree that was never installed
        return "0.0.0"


class AppUpdate(ServiceBase):
    def _app_layout(self) -> installer.AppLayout:
        return installer.AppLayout(Path(self.settings.app_dir))

    def update_install(self, path: str) -> dict[str, Any]:
        """Install the signed update package at `path` (a `.kup` file on a stick): refused
        with the reason, changing nothing, unless it is signed by a trusted update key,
        complete, for this product, newer than the installed version and fits, and no
        exam session is running."""
        try:
            self.current_session()
        except Refused:
            pass  # no session running
        else:  # a box restarted during the exam must come back as it was
            zh = "考试进行中不能安装升级，请在本场考试结束后安装"
            raise Refused("session_running", zh, "an exam session is running")
        trusted = trusted_certs(Path(self.settings.update_keys_dir))
        done = installer.install(
            Path(path),
            self._app_layout(),
            trusted,
            running_version(),
            margin_bytes=self.settings.update_margin_bytes,
        )
        with self.tx():
            self.event(
                "app_update_installed",
                version=done.version,
                previous=done.previous,
                files=done.files,
                bytes=done.bytes,
                package=Path(path).name,
            )
        return {
            "app_version": done.version,
            "previous_release": done.previous,
            "app_files": done.files,
            "message": f"监考机程序 {done.version} 已安装，重启监考机后生效",
        }

    def update_status(self) -> dict[str, Any]:
        """The version running, the release installed to start next and the one kept."""
        return installer.status(self._app_layout(), running_version())
