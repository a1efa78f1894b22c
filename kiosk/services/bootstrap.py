"""The composition root: one place that opens the room database and wires the room
service to real or test adapters."""

from __future__ import annotations

from kiosk.common.clock import Clock, SystemClock
from kiosk.common.crypto import Identity, load_or_make_identity
from kiosk.services.ports import Ports
from kiosk.services.room import RoomService
from kiosk.settings import Settings
from kiosk.store.schema import open_room_db

DB_NAME = "room.db"


def box_identity(settings: Settings) -> Identity:
    """The box's key pair and self-signed certificate, made at first start."""
    return load_or_make_identity(settings.home_path / "keys", "box", "proctor-box")


def build(settings: Settings, ports: Ports, clock: Clock | None = None) -> RoomService:
    home = settings.home_path
    home.mkdir(parents=True, exist_ok=True)
    db = open_room_db(home / DB_NAME)
    service = RoomService(db, clock or SystemClock(), ports, settings)
    service.identity = box_identity(settings)
    service.ensure_admin()
    return service
