"""Administrator password policy and lock-out after repeated failures."""

from __future__ import annotations

import pytest

from kiosk.core.errors import Refused
from kiosk.core.lockout import (
    LOCKOUT_S,
    MAX_FAILURES,
    check_not_locked,
    check_password_policy,
    locked_until,
)

T = 1_750_000_000.0


@pytest.mark.parametrize("good", ["888", "a", "Abc!@#123x", "with space"])
def test_short_printable_ascii_passwords_are_accepted(good):
    check_password_policy(good)


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        ("", "password_empty"),
        ("12345678901", "password_too_long"),
        ("密码123", "password_charset"),
        ("tab\there", "password_charset"),
        ("ｐａｓｓ", "password_charset"),
    ],
)
def test_empty_long_or_non_ascii_passwords_are_refused(bad, code):
    with pytest.raises(Refused) as info:
        check_password_policy(bad)
    assert info.value.code == code
    assert info.value.zh


def test_fewer_failures_than_the_limit_do_not_lock():
    assert locked_until([T + i for i in range(MAX_FAILURES - 1)], T + 10) is None


def test_the_limit_of_failures_locks_until_lockout_after_the_last_one():
    failures = [T + i for i in range(MAX_FAILURES)]
    last = failures[-1]
    assert locked_until(failures, last) == last + LOCKOUT_S
    assert locked_until(failures, last + LOCKOUT_S - 0.001) == last + LOCKOUT_S
    assert locked_until(failures, last + LOCKOUT_S) is None


def test_another_failure_after_the_lock_ends_locks_again():
    failures = [T + i for i in range(MAX_FAILURES)] + [T + 1000]
    assert locked_until(failures, T + 1001) == T + 1000 + LOCKOUT_S


def test_a_locked_login_is_refused_with_the_wait_in_minutes():
    failures = [T] * MAX_FAILURES
    with pytest.raises(Refused) as info:
        check_not_locked(failures, T + 60)
    assert info.value.code == "locked_out"
    assert "4 分" in info.value.zh
    check_not_locked(failures, T + LOCKOUT_S)
