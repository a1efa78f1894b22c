"""Extra time: free allowance, codes and the duration cap."""

from __future__ import annotations

import pytest

from kiosk.core.errors import Refused
from kiosk.core.extratime import ExtraTimePlan, plan_extra_time

DURATION = 5400
FREE = 600


def test_a_grant_within_the_free_allowance_needs_no_code():
    assert plan_extra_time(0, 200, DURATION, FREE) == ExtraTimePlan(
        requested_s=200, granted_s=200, total_before_s=0, total_after_s=200, needs_code=False
    )


def test_a_grant_reaching_exactly_the_allowance_is_still_free():
    assert plan_extra_time(400, 200, DURATION, FREE).needs_code is False


def test_the_manuals_example_200_then_700_needs_a_code_for_900_in_total():
    plan = plan_extra_time(200, 700, DURATION, FREE)
    assert (plan.granted_s, plan.total_after_s, plan.needs_code) == (700, 900, True)


def test_a_request_beyond_the_duration_is_granted_only_up_to_it():
    plan = plan_extra_time(5000, 1000, DURATION, FREE)
    assert (plan.requested_s, plan.granted_s, plan.total_after_s) == (1000, 400, DURATION)


def test_a_cut_down_grant_inside_the_allowance_needs_no_code():
    plan = plan_extra_time(0, 900, 500, 600)
    assert (plan.granted_s, plan.needs_code) == (500, False)


def test_no_more_extra_time_once_the_total_equals_the_duration():
    with pytest.raises(Refused) as info:
        plan_extra_time(DURATION, 1, DURATION, FREE)
    assert info.value.code == "extra_time_cap"
    assert "5400" in info.value.zh


@pytest.mark.parametrize("amount", [0, -5, True, 1.5])
def test_a_zero_negative_boolean_or_fractional_request_is_refused(amount):
    with pytest.raises(Refused) as info:
        plan_extra_time(0, amount, DURATION, FREE)
    assert info.value.code == "bad_amount"
