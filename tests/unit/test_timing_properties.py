"""Properties of exam timing, extra time, offline time and codes over generated cases."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.core.codes import EXPIRY_STEP_S, VALIDITY_S, Purpose, issue_code, verify_code
from kiosk.core.errors import Refused
from kiosk.core.extratime import plan_extra_time
from kiosk.core.timeline import offline_seconds, remaining_seconds

# No example database: it would leave a .hypothesis folder in the working tree; and no
# per-example deadline: a slow CI machine must not turn into a flaky failure.
PROPERTY = settings(database=None, deadline=None)

# Realistic box times (2004-2038): within one binade, so the float arithmetic on them is
# exact for whole-second offsets; fractional starts are still generated.
starts = st.floats(min_value=2.0**30, max_value=2.0**31 - 400_000)
durations = st.integers(min_value=60, max_value=6 * 3600)
allowances = st.integers(min_value=0, max_value=3600)

# One step of an exam: ("advance", seconds) or ("grant", requested seconds).
steps = st.lists(
    st.one_of(
        st.tuples(st.just("advance"), st.floats(min_value=0, max_value=4000)),
        st.tuples(st.just("grant"), st.integers(min_value=1, max_value=8000)),
    ),
    max_size=30,
)


@PROPERTY
@given(
    start=starts,
    duration=durations,
    extra=st.integers(min_value=0, max_value=6 * 3600),
    a=st.floats(min_value=-20_000, max_value=60_000),
    b=st.floats(min_value=-20_000, max_value=60_000),
)
def test_remaining_never_increases_as_time_passes(start, duration, extra, a, b):
    t1, t2 = sorted((start + a, start + b))
    r1 = remaining_seconds(t1, start, duration, extra)
    r2 = remaining_seconds(t2, start, duration, extra)
    assert 0 <= r2 <= r1 <= duration + extra


@PROPERTY
@given(start=starts, duration=durations, free=allowances, plan=steps)
def test_remaining_grows_only_at_a_grant_and_by_at_most_the_grant(start, duration, free, plan):
    now, total = start - 120.0, 0
    remaining = remaining_seconds(now, start, duration, total)
    for kind, value in plan:
        if kind == "advance":
            now += value
            after = remaining_seconds(now, start, duration, total)
            assert after <= remaining
        else:
            try:
                p = plan_extra_time(total, value, duration, free)
            except Refused as refused:
                assert refused.code == "extra_time_cap"
                assert total == duration
                continue
            assert p.total_before_s == total
            total = p.total_after_s
            after = remaining_seconds(now, start, duration, total)
            assert remaining <= after <= remaining + p.granted_s
        remaining = after


@PROPERTY
@given(duration=durations, free=allowances, requests=st.lists(st.integers(1, 8000), max_size=30))
def test_cumulative_extra_time_never_exceeds_the_duration(duration, free, requests):
    total = 0
    for requested in requests:
        try:
            p = plan_extra_time(total, requested, duration, free)
        except Refused:
            assert total == duration
            continue
        assert 0 < p.granted_s <= requested
        assert p.needs_code == (p.total_after_s > free)
        total = p.total_after_s
        assert total <= duration


# "Remaining time never depends on when the box was restarted" is a property of the
# service, not of these pure rules: tests/integration/test_restart_property.py restarts a
# room on a real SQLite file at a generated moment and compares it with a run without.


def _disjoint_intervals(points: list[int], sides: list[bool]):
    ordered = sorted(set(points))
    pairs = list(zip(ordered[::2], ordered[1::2], strict=False))
    a = [iv for iv, side in zip(pairs, sides, strict=False) if side]
    b = [iv for iv, side in zip(pairs, sides, strict=False) if not side]
    return a, b


@PROPERTY
@given(
    points=st.lists(st.integers(0, 10_000), max_size=20),
    sides=st.lists(st.booleans(), min_size=10, max_size=10),
    since=st.one_of(st.none(), st.integers(0, 10_000)),
    span=st.integers(0, 10_000),
)
def test_offline_time_is_additive_over_disjoint_intervals(points, sides, since, span):
    a, b = _disjoint_intervals(points, sides)
    now = 10_000.0
    until = None if since is None else min(now, since + span)
    both = offline_seconds(a + b, now, since, until)
    assert both == offline_seconds(a, now, since, until) + offline_seconds(b, now, since, until)


@PROPERTY
@given(
    intervals=st.lists(
        st.tuples(st.floats(0, 10_000), st.one_of(st.none(), st.floats(0, 10_000))), max_size=20
    ),
    since=st.floats(0, 10_000),
    span=st.floats(0, 10_000),
)
def test_offline_time_never_exceeds_its_window_and_ignores_repeats(intervals, since, span):
    now = 10_000.0
    until = min(now, since + span)
    total = offline_seconds(intervals, now, since, until)
    assert 0 <= total <= until - since
    assert offline_seconds(intervals + intervals, now, since, until) == total


rooms = st.from_regex(r"\A[0-9]{10}\Z")
challenges = st.from_regex(r"\A[0-9]{6}\Z")
secrets = st.binary(min_size=16, max_size=32)


@PROPERTY
@given(
    secret=secrets,
    purpose=st.sampled_from(list(Purpose)),
    room=rooms,
    session=st.integers(1, 20),
    challenge=challenges,
    amount=st.integers(0, 20_000),
    issued=st.floats(min_value=2.0**30, max_value=2.0**31 - 400_000),
    wait=st.floats(min_value=0, max_value=1),
    late=st.floats(min_value=1, max_value=40 * 3600),
)
def test_an_issued_code_is_accepted_within_validity_and_refused_after_expiry(
    secret, purpose, room, session, challenge, amount, issued, wait, late
):
    code = issue_code(secret, purpose, room, session, challenge, amount, issued)
    verify_code(secret, code, purpose, room, session, challenge, amount, issued + wait * VALIDITY_S[purpose])
    too_late = issued + VALIDITY_S[purpose] + EXPIRY_STEP_S + late
    with pytest.raises(Refused) as info:
        verify_code(secret, code, purpose, room, session, challenge, amount, too_late)
    assert info.value.code == "code_expired"


@PROPERTY
@given(
    secret=secrets,
    purpose=st.sampled_from(list(Purpose)),
    room=rooms,
    session=st.integers(1, 20),
    challenge=challenges,
    amount=st.integers(0, 20_000),
    issued=st.floats(min_value=2.0**30, max_value=2.0**31 - 400_000),
    field=st.sampled_from(["room", "session", "challenge", "amount"]),
)
def test_a_code_for_another_room_session_challenge_or_amount_is_refused(
    secret, purpose, room, session, challenge, amount, issued, field
):
    code = issue_code(secret, purpose, room, session, challenge, amount, issued)
    fields = {"room": room, "session": session, "challenge": challenge, "amount": amount}
    if field == "room":
        fields["room"] = room[:-1] + str((int(room[-1]) + 1) % 10)
    elif field == "challenge":
        fields["challenge"] = challenge[:-1] + str((int(challenge[-1]) + 1) % 10)
    else:
        fields[field] += 1
    with pytest.raises(Refused) as info:
        verify_code(secret, code, purpose, **fields, now=issued + 1)  # type: ignore[arg-type]
    assert info.value.code == "code_wrong"
