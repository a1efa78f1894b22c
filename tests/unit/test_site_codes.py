"""The site's code calculator refuses a malformed request and issues codes the box's
verifier accepts for exactly the same request."""

from __future__ import annotations

import re
from typing import Any

import pytest

from kiosk.common.packages import parse_exam
from kiosk.core.codes import Purpose, verify_code
from kiosk.core.errors import Refused
from kiosk.site.codes import calculate
from kiosk.site.mock import build_default_exam

NOW = 1_750_000_000.0
ROOM = "1999999001"
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def secret() -> bytes:
    # The secret as the box reads it from the package, so both sides share it.
    exam = build_default_exam(first_start=NOW)
    return parse_exam(exam.package).site_secret


GOOD: dict[str, Any] = {
    "purpose": "late_start",
    "room": ROOM,
    "session": 1,
    "challenge": "042917",
    "seconds": 0,
}


@pytest.mark.parametrize(
    ("purpose", "seconds"),
    [("late_start", 0), ("late_candidate", 0), ("extra_time", 300), ("reexam", 0)],
)
def test_a_calculated_code_verifies_for_the_same_request(secret: bytes, purpose: str, seconds: int) -> None:
    code = calculate(purpose, ROOM, 2, "042917", seconds, secret, NOW)
    assert len(code) == 8
    verify_code(secret, code, purpose, ROOM, 2, "042917", seconds, NOW + 60)


@pytest.mark.parametrize(
    "change",
    [
        {"room": "1999999002"},
        {"session": 2},
        {"challenge": "042918"},
        {"purpose": Purpose.LATE_CANDIDATE},
    ],
    ids=["other room", "other session", "other challenge", "other purpose"],
)
def test_a_calculated_code_does_not_verify_for_another_request(secret: bytes, change: dict[str, Any]) -> None:
    code = calculate(GOOD["purpose"], ROOM, 1, "042917", 0, secret, NOW)
    request = {"purpose": GOOD["purpose"], "room": ROOM, "session": 1, "challenge": "042917"}
    request |= change
    with pytest.raises(Refused):
        verify_code(
            secret,
            code,
            request["purpose"],
            request["room"],
            request["session"],
            request["challenge"],
            0,
            NOW,
        )


def test_extra_time_is_bound_to_the_number_of_seconds(secret: bytes) -> None:
    code = calculate("extra_time", ROOM, 1, "042917", 300, secret, NOW)
    with pytest.raises(Refused):
        verify_code(secret, code, "extra_time", ROOM, 1, "042917", 600, NOW)


def test_a_challenge_typed_with_spaces_or_full_width_digits_gives_the_same_code(
    secret: bytes,
) -> None:
    plain = calculate("reexam", ROOM, 1, "042917", 0, secret, NOW)
    assert calculate("reexam", ROOM, 1, " 042 917 ", 0, secret, NOW) == plain
    assert calculate("reexam", ROOM, 1, "０４２９１７", 0, secret, NOW) == plain


BAD_REQUESTS: dict[str, dict[str, Any]] = {
    "unknown purpose": {"purpose": "unlock"},
    "purpose in Chinese": {"purpose": "延考"},
    "9-digit room": {"room": "199999900"},
    "11-digit room": {"room": "19999990011"},
    "letters in room": {"room": "19999990A1"},
    "full-width room": {"room": "１９９９９９９００１"},
    "room as number": {"room": 1999999001},
    "session 0": {"session": 0},
    "session as bool": {"session": True},
    "session as text": {"session": "1"},
    "5-digit challenge": {"challenge": "04291"},
    "7-digit challenge": {"challenge": "0429170"},
    "letters in challenge": {"challenge": "04291A"},
    "challenge as number": {"challenge": 42917},
    "negative seconds": {"purpose": "extra_time", "seconds": -60},
    "seconds for a late start": {"seconds": 300},
    "seconds for a re-exam": {"purpose": "reexam", "seconds": 1},
    "no seconds for extra time": {"purpose": "extra_time", "seconds": 0},
    "seconds as float": {"purpose": "extra_time", "seconds": 300.0},
    "seconds as bool": {"purpose": "extra_time", "seconds": True},
}


@pytest.mark.parametrize("change", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_a_malformed_request_is_refused_in_chinese_and_english(secret: bytes, change: dict[str, Any]) -> None:
    request = GOOD | change
    with pytest.raises(Refused) as info:
        calculate(
            request["purpose"],
            request["room"],
            request["session"],
            request["challenge"],
            request["seconds"],
            secret,
            NOW,
        )
    assert CJK.search(info.value.zh)
    assert info.value.en and not CJK.search(info.value.en)


def test_a_calculation_without_the_site_secret_is_refused() -> None:
    with pytest.raises(Refused) as info:
        calculate("late_start", ROOM, 1, "042917", 0, b"", NOW)
    assert info.value.code == "code_secret_missing"
