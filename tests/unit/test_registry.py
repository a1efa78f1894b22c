"""The table of operations matches the room service: every verb calls a real method
with parameters the method takes, and every public method of the service that an
officer uses has a verb."""

from __future__ import annotations

import inspect

import pytest

from kiosk.core.errors import Refused
from kiosk.services.registry import BY_VERB, GROUPS, OPERATIONS, coerce
from kiosk.services.room import RoomService

# Methods that are not officer operations: the exam PCs' side (room network), the
# engine's timer, building blocks and lookups other operations use.
NOT_VERBS = {
    "seat_link", "seat_links", "pc_welcome", "sync_journals", "reset_links", "candidate_login", "client_view",
    "client_event", "candidate_begin", "save_answers", "receive_file",
    "candidate_submit", "raise_hand", "tick", "subscribe", "tx", "event", "now", "operator", "config",
    "box_ip", "require_config", "exam", "require_exam", "policy", "admin", "current_session",
    "session_of", "get_session", "get_candidate", "get_candidates", "get_seat", "seat_by_ip", "phase",
    "view", "views", "marked", "apply",
    "duration_s", "candidate_dict", "candidate_dicts", "candidate_rows", "check_code", "spend_code",
    "ensure_admin", "verify_password", "requirements", "session_state_zh", "import_seat_rows",
    "exam_package_path", "site_cert", "site", "answer_root", "results", "situation", "candidate_deadline",
    "site_link", "site_seen", "site_probe_target",
}  # fmt: skip


def test_every_verb_calls_a_method_that_takes_its_parameters():
    for op in OPERATIONS:
        method = getattr(RoomService, op.method)
        accepted = set(inspect.signature(method).parameters) - {"self"}
        assert {p.name for p in op.params} <= accepted, op.verb
        required = {
            n
            for n, p in inspect.signature(method).parameters.items()
            if n != "self" and p.default is inspect.Parameter.empty
        }
        assert required <= {p.name for p in op.params if p.required or p.kind == "bool"}, op.verb
        assert op.group in GROUPS


def test_every_officer_operation_of_the_service_has_a_verb():
    public = {n for n, _ in inspect.getmembers(RoomService, callable) if not n.startswith("_")}
    with_verb = {op.method for op in OPERATIONS}
    assert public - with_verb - NOT_VERBS == set()


def test_verbs_are_unique_kebab_case():
    assert len(BY_VERB) == len(OPERATIONS)
    assert all(v == v.lower() and "_" not in v for v in BY_VERB)


@pytest.mark.parametrize("raw, code", [
    ({"seconds": "60", "admission_no": "1"}, "bad_params"),
    ({"seconds": True, "admission_no": "1"}, "bad_params"),
    ({"admission_no": "1"}, "bad_params"),
    ({"admission_no": "1", "seconds": 60, "colour": "red"}, "bad_params"),
])  # fmt: skip
def test_api_parameters_are_checked_before_any_call(raw, code):
    with pytest.raises(Refused) as err:
        coerce(BY_VERB["extra-time"], raw)
    assert err.value.code == code


def test_a_flag_left_out_is_off():
    assert coerce(BY_VERB["seats-show"], {}) == {"show": False}


def test_good_parameters_pass_through():
    assert coerce(BY_VERB["extra-time"], {"admission_no": "1", "seconds": 60}) == {
        "admission_no": "1",
        "seconds": 60,
    }
