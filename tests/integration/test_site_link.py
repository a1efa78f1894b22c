"""The site link's state in the room status: every call the service makes to the site
says whether it reached it (a refusal by the site itself did reach it), and the
engine's probe reports through `site_seen`."""

from __future__ import annotations

from kiosk.core.errors import Refused
from tests.integration.test_exam_session import refused
from tests.integration.test_site_mode import configure, site, site_room  # noqa: F401  (fixtures)


def link(room) -> str:
    return room.status()["site_link"]["state"]


def test_the_link_state_follows_what_the_site_calls_saw(site_room, site) -> None:  # noqa: F811
    room = site_room
    assert room.status()["site_link"] == {
        "site_mode": False, "site_ip": "", "state": "off", "state_zh": "单机模式",
    }  # fmt: skip
    configure(room)  # the registration reached the site
    assert link(room) == "connected"
    room.seats_scan("ip")
    room.envcheck()
    site.up = False
    refused("site_offline", room.exam_download)
    assert room.status()["site_link"]["state_zh"] == "无法连接"
    site.up = True
    room.exam_download()
    assert link(room) == "connected"


def test_a_refusal_by_the_site_itself_still_reached_it(site_room, site, monkeypatch) -> None:  # noqa: F811
    configure(site_room)
    site_room.site_seen("127.0.0.5", False)
    assert link(site_room) == "unreachable"

    def no(room_code: str) -> bytes:
        raise Refused("outside_window", "不在下载时间内", "outside the download window")

    monkeypatch.setattr(site, "download_exam", no)
    refused("outside_window", site_room.exam_download)
    assert link(site_room) == "connected"


def test_the_probe_target_and_staleness(site_room, site) -> None:  # noqa: F811
    room = site_room
    assert room.site_probe_target() is None  # not configured: nothing to probe
    configure(room)
    ip, cert = room.site_probe_target()
    assert ip == "127.0.0.5" and cert is not None and b"CERTIFICATE" in cert  # pinned at registration
    room._site_seen = room._site_seen._replace(at=room._site_seen.at - room.settings.site_link_stale_s - 1)
    assert link(room) == "unknown"
    room.site_seen("127.0.0.5", True)
    assert link(room) == "connected"
