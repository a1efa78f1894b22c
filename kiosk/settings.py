"""Ports, paths and timings in one place; every value can be overridden by an
environment variable of the same name prefixed with ``KIOSK_`` so that tests run
many rooms side by side."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path


def _default_home() -> str:
    return os.path.join(os.path.expanduser("~"), ".local", "share", "proctor-box")


@dataclass(frozen=True)
class Settings:
    home: str = _default_home()
    admin_host: str = "127.0.0.1"
    admin_port: int = 0  # 0: pick a free port, written to the home folder
    control_host: str = "0.0.0.0"  # where the box listens for exam-PC daemons
    control_port: int = 47210  # TLS link from exam-PC daemons (room network)
    scan_port: int = 47211  # UDP seat scan (daemons listen here)
    scan_broadcast: str = ""  # comma-separated broadcast addresses; "" = every interface's
    scan_quiet_s: float = 0.5  # a scan ends this long after the last new reply
    command_timeout_s: float = 3.0
    heartbeat_s: float = 1.0
    offline_after_s: float = 3.0
    min_free_bytes: int = 5 * 1024**3  # answer folder needs 5 GB free
    max_clock_skew_s: float = 5.0
    max_rtt_ms: float = 200.0  # environment check: the room network's round trip (unless the exam sets it)
    request_timeout_s: float = 10.0
    # The exam site (kiosk site serve, and the box's site client).
    site_port: int = 47280  # HTTPS of the reference exam-site server
    site_timeout_s: float = 10.0  # every site call: connect and each read
    site_retries: int = 3  # a failed upload chunk is retried this often before giving up
    site_chunk_bytes: int = 1024**2  # results upload: one resumable chunk
    site_probe_s: float = 5.0  # in site mode the engine checks the site this often (status strip)
    site_probe_timeout_s: float = 2.0  # one probe's connect and read
    site_link_stale_s: float = 15.0  # an older check shows the link as unknown (检测中)
    # USB sticks: mount points under these roots are sticks; in folder mode every folder
    # under a root is one (tests, and machines where mounting is not allowed).
    usb_mount_roots: str = "/media,/run/media,/mnt"
    usb_poll_s: float = 0.2  # how often the mount table is read
    usb_settle_s: float = 0.3  # a file is complete once its size has not changed this long
    usb_folders_as_sticks: bool = False
    # Offline updates of the box app (kiosk/update, docs/formats.md "Update package").
    app_dir: str = "/data/app"  # releases/, current and previous links, boot-count
    update_keys_dir: str = "/etc/kiosk/update-keys"  # the trusted update certificates (*.crt)
    update_margin_bytes: int = 64 * 1024**2  # free space left on the data partition after a release
    update_max_tries: int = 3  # starts of a new release not seen up before the launcher falls back
    update_healthy_s: float = 20.0  # the app counts as up after running this long

    @property
    def home_path(self) -> Path:
        return Path(self.home)


def load(**overrides: object) -> Settings:
    """Defaults, then ``KIOSK_<NAME>`` environment variables, then explicit overrides."""
    values: dict[str, object] = {}
    for f in fields(Settings):
        env = os.environ.get("KIOSK_" + f.name.upper())
        if env is not None:
            kind = type(getattr(Settings, f.name))
            values[f.name] = env.lower() in ("1", "true", "yes") if kind is bool else kind(env)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)  # type: ignore[arg-type]
