"""A small site plan written directly (not with kiosk.site.mock): two rooms, the first
with its exam package and session 1 open now, the second with its windows a little
ahead so that a test can move the server clock into and past them."""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path

from kiosk.common.crypto import Identity, load_or_make_identity
from kiosk.common.signed import seal, write_room_sheet

SITE_CODE, SITE_NAME = "1999999", "测试考点"
OPEN_ROOM, LATER_ROOM = "1999999001", "1999999002"
CODES = {OPEN_ROOM: "ABCDEFGH", LATER_ROOM: "HGFEDCBA"}
# The later room's exam package and every room's session 2 can be downloaded between
# these offsets from the plan's `now`: inside the 300 s the server allows for clock skew.
LATER_FROM_S, LATER_UNTIL_S = 100.0, 200.0


@dataclass(frozen=True)
class Plan:
    folder: Path
    site: Identity
    secret: bytes
    now: float

    def exam(self, room: str) -> bytes:
        return (self.folder / "rooms" / room / "exam-package.json").read_bytes()

    def authorisation(self, room: str, session: int) -> bytes:
        return (self.folder / "rooms" / room / f"authorisation-{session}.json").read_bytes()


def write_plan(folder: Path, now: float) -> Plan:
    site = load_or_make_identity(folder / "site", "site", f"exam site {SITE_CODE}")
    secret = os.urandom(32)
    later = (now + LATER_FROM_S, now + LATER_UNTIL_S)
    rooms = []
    for room, window in ((OPEN_ROOM, (now - 3600, now + 3600)), (LATER_ROOM, later)):
        out = folder / "rooms" / room
        out.mkdir(parents=True)
        sessions = [{"number": 1, "candidates": 2, "first_admission": "A1", "last_admission": "A2"}]
        sheet = {
            "room_code": room,
            "site_code": SITE_CODE,
            "site_name": SITE_NAME,
            "site_ip": "127.0.0.1",
            "sessions": sessions,
            "issued_at": now,
        }
        (out / "room-sheet.json").write_bytes(write_room_sheet(site, CODES[room], sheet))
        (out / "exam-package.json").write_bytes(
            seal(site, "exam-package", {"room_code": room, "exam": "drill"})
        )
        auth_windows = {1: (now - 3600, now + 3600), 2: later}
        for n in auth_windows:
            body = {"room_code": room, "session": n, "paper_key": base64.b64encode(os.urandom(16)).decode()}
            (out / f"authorisation-{n}.json").write_bytes(seal(site, "session-authorisation", body))
        rooms.append(
            {
                "room_code": room,
                "registration_code": CODES[room],
                "sheet": f"rooms/{room}/room-sheet.json",
                "exam": f"rooms/{room}/exam-package.json",
                "publish_at": window[0],
                "download_until": window[1],
                "sessions": [
                    {
                        "number": n,
                        "authorisation": f"rooms/{room}/authorisation-{n}.json",
                        "valid_from": start,
                        "valid_until": end,
                    }
                    for n, (start, end) in auth_windows.items()
                ],
            }
        )
    plan = {
        "format": "site-plan",
        "version": 2,
        "site_code": SITE_CODE,
        "site_name": SITE_NAME,
        "site_ip": "127.0.0.1",
        "site_secret": base64.b64encode(secret).decode(),
        "rooms": rooms,
    }
    (folder / "site" / "plan.json").write_text(json.dumps(plan, ensure_ascii=False), encoding="utf-8")
    return Plan(folder, site, secret, now)
