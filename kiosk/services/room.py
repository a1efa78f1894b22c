"""The room service: every operation of SPEC.md is one public method of RoomService.

The parts live in their own modules (before, admin, during, incidents, candidates,
after, reports, update); this class only puts them together."""

from __future__ import annotations

from kiosk.services.admin import SystemAdmin
from kiosk.services.before import BeforeExam
from kiosk.services.reports import Reports
from kiosk.services.update import AppUpdate


class RoomService(Reports, BeforeExam, SystemAdmin, AppUpdate):
    pass
