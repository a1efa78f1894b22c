"""The seal check passes only when every condition for running the exam holds."""

from __future__ import annotations

from dataclasses import replace

import pytest

from kiosk.core.sealcheck import SealFacts, seal_check

GB = 1024**3
GOOD = SealFacts(
    params_ok=True,
    seats=40,
    largest_session=38,
    env_checked=40,
    env_failed=0,
    exam_loaded=True,
    free_disk_bytes=20 * GB,
    min_free_bytes=5 * GB,
    clock_skew_s=0.8,
    max_skew_s=5.0,
    daemons_online=40,
)


def failed_keys(f: SealFacts) -> set[str]:
    return {i.key for i in seal_check(f).items if not i.ok}


def test_a_ready_room_passes_with_every_item_ticked():
    verdict = seal_check(GOOD)
    assert verdict.passed
    assert [i.key for i in verdict.items] == [
        "params",
        "seats",
        "environment",
        "exam",
        "disk",
        "clock",
        "daemons",
    ]
    assert all(i.ok and i.label_zh and i.detail_zh for i in verdict.items)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"params_ok": False}, "params"),
        ({"largest_session": 41}, "seats"),
        ({"env_checked": 39}, "environment"),
        ({"env_failed": 1}, "environment"),
        ({"exam_loaded": False}, "exam"),
        ({"free_disk_bytes": 5 * GB - 1}, "disk"),
        ({"clock_skew_s": -5.5}, "clock"),
        ({"clock_skew_s": float("nan")}, "clock"),
        ({"daemons_online": 39}, "daemons"),
    ],
)
def test_each_unmet_condition_fails_exactly_its_own_item(change, key):
    f = replace(GOOD, **change)
    assert failed_keys(f) == {key}
    assert not seal_check(f).passed


def test_seats_exactly_equal_to_the_largest_session_are_enough():
    assert seal_check(replace(GOOD, largest_session=40)).passed


def test_a_room_without_seats_fails_seats_environment_and_daemons():
    f = replace(GOOD, seats=0, largest_session=0, env_checked=0, daemons_online=0)
    assert failed_keys(f) == {"seats", "environment", "daemons"}


def test_the_details_say_what_is_short():
    verdict = seal_check(replace(GOOD, env_checked=37, env_failed=2, largest_session=45))
    details = {i.key: i.detail_zh for i in verdict.items}
    assert "3 台未检测" in details["environment"]
    assert "2 台未通过" in details["environment"]
    assert "机位不足" in details["seats"]
    assert "45" in details["seats"]
