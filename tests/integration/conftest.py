"""Fixtures of the room-service tests: session 1 running with 38 of 40 candidates in."""

from __future__ import annotations

import pytest

from tests.conftest import T0, enter
from tests.integration.test_exam_session import candidates, seat_ips

START = T0 + 3600


@pytest.fixture
def started(ready_room, clock, exam_files):
    """Session 1 entered, authorised, login allowed, 38 of 40 logged in, exam running."""
    room = ready_room
    enter(room)
    room.authorise(str(exam_files.auth[1]))
    clock.set(START - 1700)
    room.allow_login()
    ips = seat_ips(room)
    for c, ip in zip(candidates(room)[:38], ips, strict=False):
        room.candidate_login(c["admission_no"], ip)
    clock.set(START - 1200)
    room.allow_start()
    clock.set(START)
    for c in candidates(room)[:38]:
        room.candidate_begin(c["admission_no"], c["ip"])
    return room
