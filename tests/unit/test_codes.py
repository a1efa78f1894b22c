"""Authorisation codes: issue on the site, verify on the box."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from kiosk.core.codes import (
    ALPHABET,
    CODE_LEN,
    EXPIRY_STEP_S,
    PURPOSE_ZH,
    VALIDITY_S,
    Purpose,
    compute_code,
    expiry_for,
    issue_code,
    new_challenge,
    normalize_challenge,
    normalize_code,
    verify_code,
)
from kiosk.core.errors import Refused

SECRET = b"site-secret-from-the-exam-package"
ROOM = "1999999003"
NOW = 1_750_000_123.0


def issue(purpose=Purpose.EXTRA_TIME, amount=300, now=NOW, challenge="042137") -> str:
    return issue_code(SECRET, purpose, ROOM, 1, challenge, amount, now)


def refusal(code_text, purpose=Purpose.EXTRA_TIME, amount=300, now=NOW, **kw) -> Refused:
    args = {"room": ROOM, "session": 1, "challenge": "042137"} | kw
    with pytest.raises(Refused) as info:
        verify_code(SECRET, code_text, purpose, args["room"], args["session"],
                    args["challenge"], amount, now)  # fmt: skip
    return info.value


def test_the_alphabet_has_32_symbols_without_look_alikes():
    assert len(ALPHABET) == len(set(ALPHABET)) == 32
    assert not set("01OI") & set(ALPHABET)


def test_every_purpose_has_a_chinese_name_and_reexam_codes_last_one_hour():
    assert set(PURPOSE_ZH) == set(Purpose)
    assert VALIDITY_S[Purpose.REEXAM] == 3600
    assert {VALIDITY_S[p] for p in Purpose if p is not Purpose.REEXAM} == {4 * 3600}


def test_a_challenge_is_six_digits_derived_from_the_given_bytes():
    a = new_challenge(bytes(range(8)))
    assert len(a) == 6 and a.isdigit()
    assert new_challenge(bytes(range(8))) == a
    assert new_challenge(bytes(range(1, 9))) != a


def test_a_challenge_keeps_its_leading_zeros():
    assert new_challenge(bytes(8)) == "000000"


def test_too_few_random_bytes_for_a_challenge_is_a_programming_error():
    with pytest.raises(ValueError):
        new_challenge(b"1234")


def test_a_typed_challenge_is_normalised_or_refused():
    assert normalize_challenge(" 042 137 ") == "042137"
    assert normalize_challenge("０４２１３７") == "042137"
    with pytest.raises(Refused) as info:
        normalize_challenge("42137")
    assert info.value.code == "challenge_malformed"


def test_a_code_is_eight_symbols_of_the_alphabet():
    code = issue()
    assert len(code) == CODE_LEN
    assert set(code) <= set(ALPHABET)


def test_a_code_is_the_truncated_hmac_of_a_json_list_of_its_fields():
    message = json.dumps(
        [1, "extra_time", ROOM, 1, "042137", 300, 1_750_014_600], separators=(",", ":")
    ).encode()
    value = int.from_bytes(hmac.new(SECRET, message, hashlib.sha256).digest()[:5], "big")
    expected = "".join(ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(8)))
    assert compute_code(SECRET, "extra_time", ROOM, 1, "042137", 300, 1_750_014_600) == expected


def test_fields_that_concatenate_alike_give_different_codes():
    a = compute_code(SECRET, Purpose.REEXAM, "19999990031", 2, "123456", 0, 600)
    b = compute_code(SECRET, Purpose.REEXAM, "1999999003", 12, "123456", 0, 600)
    assert a != b


def test_the_expiry_is_rounded_up_to_the_step():
    e = expiry_for(Purpose.EXTRA_TIME, NOW)
    assert e % EXPIRY_STEP_S == 0
    assert NOW + 4 * 3600 <= e < NOW + 4 * 3600 + EXPIRY_STEP_S


def test_a_code_is_accepted_however_it_is_typed():
    code = issue()
    pretty = f" {code[:4].lower()}-{code[4:]} "
    verify_code(SECRET, pretty, Purpose.EXTRA_TIME, ROOM, 1, "042137", 300, NOW + 60)


def test_a_code_typed_in_full_width_characters_is_accepted():
    code = issue()
    full_width = "".join(chr(ord(ch) + 0xFEE0) for ch in code)
    verify_code(SECRET, full_width, Purpose.EXTRA_TIME, ROOM, 1, "042137", 300, NOW)


@pytest.mark.parametrize("purpose", list(Purpose))
def test_a_code_is_accepted_until_its_validity_ends(purpose):
    code = issue(purpose=purpose, amount=0)
    verify_code(SECRET, code, purpose, ROOM, 1, "042137", 0, NOW + VALIDITY_S[purpose])


@pytest.mark.parametrize("purpose", list(Purpose))
def test_a_code_is_refused_as_expired_one_step_after_its_validity(purpose):
    code = issue(purpose=purpose, amount=0)
    late = NOW + VALIDITY_S[purpose] + EXPIRY_STEP_S + 1
    err = refusal(code, purpose=purpose, amount=0, now=late)
    assert err.code == "code_expired"
    assert "过期" in err.zh


def test_a_code_for_another_purpose_is_refused_and_names_that_purpose():
    code = issue(purpose=Purpose.EXTRA_TIME, amount=0)
    err = refusal(code, purpose=Purpose.REEXAM, amount=0)
    assert err.code == "code_wrong_purpose"
    assert "补时" in err.zh


@pytest.mark.parametrize(
    "other",
    [{"room": "1999999004"}, {"session": 2}, {"challenge": "042138"}],
)
def test_a_code_for_another_room_session_or_challenge_is_wrong(other):
    err = refusal(issue(), **other)
    assert err.code == "code_wrong"
    assert err.zh == "授权码不正确（请核对考场、场次、申请码与授权码）"


def test_a_code_for_another_amount_is_wrong():
    assert refusal(issue(amount=300), amount=600).code == "code_wrong"


def test_a_code_under_another_secret_is_wrong():
    code = issue_code(b"another-site", Purpose.EXTRA_TIME, ROOM, 1, "042137", 300, NOW)
    assert refusal(code).code == "code_wrong"


def test_a_code_of_the_wrong_length_is_malformed_and_says_so():
    err = refusal("ABCD234")
    assert err.code == "code_malformed"
    assert "8 位" in err.zh and "7 位" in err.zh


def test_a_code_with_a_look_alike_symbol_is_malformed_and_names_it():
    with pytest.raises(Refused) as info:
        normalize_code("ABCD23O5")
    assert info.value.code == "code_malformed"
    assert "O" in info.value.zh


def test_a_code_cannot_be_computed_without_a_secret():
    with pytest.raises(Refused) as info:
        compute_code(b"", Purpose.REEXAM, ROOM, 1, "042137", 0, 600)
    assert info.value.code == "code_secret_missing"
