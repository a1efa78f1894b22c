"""The package readers under fuzzing (hypothesis): whatever bytes a USB stick or the
site hands over, a reader returns a package or refuses it with a Chinese reason; it
never raises anything else. A changed byte of a signed file is always refused; a body
its signer wrote with any value anywhere is read or refused. (What each refusal says
is in test_packages.py and test_signed.py.)"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.common import signed
from kiosk.common.crypto import make_identity, sign
from kiosk.common.packages import (
    AUTH_FORMAT,
    EXAM_FORMAT,
    AnswerFile,
    AnswerPackage,
    AuthorisationData,
    ExamData,
)  # fmt: skip
from kiosk.core.errors import Refused
from kiosk.site.mock import build_default_exam

START = 1_750_000_000.0
ROOM, CODE, KEY = "1999999001", "ABCDEFGH", bytes(range(32))
SITE, PC = make_identity("site"), make_identity("pc")
EXAM = build_default_exam(first_start=START, candidates_per_session=3)
ANSWER_HEAD, _, ANSWER_TAIL = signed.seal_answer_package(
    PC, KEY, room_code=ROOM, session=1, admission_no="190119999990011001", created_at=START,
    answers=[{"subject": "T01", "question": "q01", "value": "A", "seq": 1, "saved_at": START}],
    files=[AnswerFile("P01", "q01", "work.txt", b"a candidate's work")],
).partition(b"\n")  # fmt: skip
ANSWERS = signed.unverified_body(ANSWER_HEAD, "answer-package")
SHEET = signed.unverified_body(
    signed.write_room_sheet(
        SITE, CODE, {"site_code": ROOM[:7], "site_name": "考点", "site_ip": "10.0.0.2", "room_code": ROOM,
                     "sessions": [{"number": 1}], "issued_at": START},
    ),
    "room-sheet",
)  # fmt: skip


class Format(NamedTuple):
    """A signed format: how its signer writes a body, and the box's reader."""

    sign: Callable[[dict[str, Any]], bytes]
    read: Callable[[bytes], Any]
    body: dict[str, Any]
    kind: type


FORMATS = {
    "exam package": Format(
        lambda b: signed.seal(SITE, EXAM_FORMAT, b),
        lambda raw: signed.read_exam_package(raw, SITE.cert_pem),
        EXAM.package,
        ExamData,
    ),
    "authorisation": Format(
        lambda b: signed.seal(SITE, AUTH_FORMAT, b),
        lambda raw: signed.read_authorisation(raw, SITE.cert_pem),
        EXAM.authorisations[1],
        AuthorisationData,
    ),
    "answer package": Format(
        lambda b: signed.seal(PC, "answer-package", b) + b"\n" + ANSWER_TAIL,
        lambda raw: signed.open_answer_package(raw, KEY, ROOM, 1, {PC.fingerprint}),
        ANSWERS,
        AnswerPackage,
    ),
    "room sheet": Format(
        lambda b: signed.seal(SITE, "room-sheet", b),
        lambda raw: signed.read_room_sheet(raw, CODE, ROOM),
        SHEET,
        signed.RoomSheet,
    ),
}
# Signed once: ECDSA signatures vary in length, and hypothesis needs the same bytes each run.
SIGNED = {name: fmt.sign(fmt.body) for name, fmt in FORMATS.items()}
each_format = pytest.mark.parametrize("name", FORMATS)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def read_or_refuse(fmt: Format, raw: bytes) -> Any:
    """The reader's result, or None when it refused in Chinese; anything else fails."""
    try:
        result = fmt.read(raw)
    except Refused as exc:
        assert exc.zh and exc.en
        return None
    assert isinstance(result, fmt.kind)
    return result


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document that holds a value."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += paths(value, (*prefix, i))
    return found


def replaced(doc: dict[str, Any], where: tuple[Any, ...], value: Any) -> dict[str, Any]:
    copied = copy.deepcopy(doc)
    node = copied
    for part in where[:-1]:
        node = node[part]
    node[where[-1]] = value
    return copied


@each_format
def test_the_untouched_document_is_read(name):
    assert isinstance(FORMATS[name].read(SIGNED[name]), FORMATS[name].kind)


@each_format
@FUZZ
@given(raw=st.binary(max_size=2048))
def test_arbitrary_bytes_are_refused(name, raw):
    assert read_or_refuse(FORMATS[name], raw) is None


@each_format
@FUZZ
@given(data=st.data())
def test_any_value_anywhere_in_a_signed_body_is_read_or_refused(name, data):
    fmt = FORMATS[name]
    where = data.draw(st.sampled_from(paths(fmt.body)))
    value = data.draw(json_values)
    read_or_refuse(fmt, fmt.sign(replaced(fmt.body, where, value)))


@each_format
@FUZZ
@given(data=st.data())
def test_a_flipped_byte_anywhere_is_refused(name, data):
    raw = bytearray(SIGNED[name])
    at = data.draw(st.integers(0, len(raw) - 1))
    raw[at] ^= data.draw(st.integers(1, 255))
    assert read_or_refuse(FORMATS[name], bytes(raw)) is None


ENVELOPE_FORMATS = {"exam package": EXAM_FORMAT, "authorisation": AUTH_FORMAT,
                    "answer package": "answer-package", "room sheet": "room-sheet"}  # fmt: skip
DEEP = b"[" * 100_000 + b"]" * 100_000


def signed_bytes(name: str, body: bytes) -> bytes:
    """An envelope of format `name` whose signed body is `body`, whatever it holds."""
    signer = PC if name == "answer package" else SITE
    envelope = {
        "format": ENVELOPE_FORMATS[name],
        "version": 2,
        "signer": signer.fingerprint,
        "body": base64.b64encode(body).decode(),
        "sig": base64.b64encode(sign(signer, body)).decode(),
    }
    raw = json.dumps(envelope, separators=(",", ":")).encode()
    return raw + b"\n" + ANSWER_TAIL if name == "answer package" else raw


@each_format
@pytest.mark.parametrize("inside", ["envelope", "signed body"])
def test_json_nested_deeper_than_the_parser_goes_is_refused(name, inside):
    """A file of "[[[[…" made the JSON parser raise RecursionError, not a refusal."""
    raw = DEEP if inside == "envelope" else signed_bytes(name, DEEP)
    assert read_or_refuse(FORMATS[name], raw) is None
