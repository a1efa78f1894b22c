"""The rules refuse with the one error type that both apps share (kiosk.common.errors)."""

from __future__ import annotations

from kiosk.common.errors import Refused

__all__ = ["Refused"]
