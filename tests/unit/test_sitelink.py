"""The site link's state on the status strip, from the last attempt to reach the site."""

from __future__ import annotations

from kiosk.core.sitelink import CONNECTED, OFF, UNKNOWN, UNREACHABLE, Seen, link_state


def test_single_machine_mode_has_no_link() -> None:
    assert link_state(False, "", Seen(True, 10.0, ""), 10.0, 15.0) == OFF


def test_the_last_attempt_decides_while_it_is_fresh() -> None:
    assert link_state(True, "10.0.0.5", Seen(True, 10.0, "10.0.0.5"), 20.0, 15.0) == CONNECTED
    assert link_state(True, "10.0.0.5", Seen(False, 10.0, "10.0.0.5"), 25.0, 15.0) == UNREACHABLE


def test_unknown_before_any_attempt_when_stale_or_for_another_address() -> None:
    assert link_state(True, "10.0.0.5", None, 0.0, 15.0) == UNKNOWN
    assert link_state(True, "10.0.0.5", Seen(True, 10.0, "10.0.0.5"), 25.1, 15.0) == UNKNOWN
    assert link_state(True, "10.0.0.6", Seen(True, 10.0, "10.0.0.5"), 11.0, 15.0) == UNKNOWN
