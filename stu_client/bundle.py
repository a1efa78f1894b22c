"""The client bundle (docs/network.md): the folder copied from the box to every exam PC,
with the box certificate the daemon pins and where to reach the box."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from kiosk.common.crypto import cert_fingerprint

BUNDLE_VERSION = 1


class BundleError(Exception):
    """The client bundle is missing, malformed or does not pin its own box certificate."""


@dataclass(frozen=True)
class Bundle:
    """The folder copied from the box to every exam PC."""

    folder: Path
    box_cert_pem: bytes
    box_fingerprint: str
    box_addr: str
    control_port: int
    scan_port: int
    heartbeat_s: float


def load_bundle(folder: str | Path) -> Bundle:
    folder = Path(folder)
    try:
        cert = (folder / "box.crt").read_bytes()
        conf = json.loads((folder / "daemon.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BundleError(f"client bundle {folder} is unreadable: {exc}") from exc
    if not isinstance(conf, dict) or conf.get("version") != BUNDLE_VERSION:
        raise BundleError(f"client bundle {folder}: daemon.json is not version {BUNDLE_VERSION}")
    try:
        actual = cert_fingerprint(cert)
    except ValueError as exc:
        raise BundleError(f"client bundle {folder}: box.crt is not a certificate") from exc
    pinned = str(conf.get("box_fingerprint", "")).lower()
    if pinned != actual:
        raise BundleError(
            f"client bundle {folder}: box_fingerprint {pinned[:16] or '(none)'}… does not match "
            f"box.crt ({actual[:16]}…); copy the bundle from the box again"
        )
    try:
        return Bundle(
            folder=folder,
            box_cert_pem=cert,
            box_fingerprint=actual,
            box_addr=str(conf["box_addr"]),
            control_port=int(conf["control_port"]),
            scan_port=int(conf["scan_port"]),
            heartbeat_s=float(conf.get("heartbeat_s", 1.0)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"client bundle {folder}: daemon.json lacks {exc}") from exc
