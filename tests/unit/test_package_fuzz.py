"""The package readers under fuzzing (hypothesis): whatever bytes a USB stick or the
site hands over, a reader returns a package or refuses it with a Chinese reason; it
never raises anything else. (What each refusal says is in test_packages.py.)"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.common.packages import (
    AnswerPackage,
    AuthorisationData,
    ExamData,
    dump,
    read_answer_package,
    read_authorisation,
    read_exam_package,
)
from kiosk.core.errors import Refused
from kiosk.site.mock import build_default_exam

START = 1_750_000_000.0
EXAM = build_default_exam(first_start=START, candidates_per_session=3)
ANSWERS = {
    "format": "answer-package",
    "version": 1,
    "room_code": "1999999001",
    "session": 1,
    "admission_no": "190119999990011001",
    "created_at": START,
    "answers": [{"subject": "T01", "question": "q01", "value": "A", "seq": 1, "saved_at": START}],
}
READERS: list[tuple[str, Callable[[bytes], Any], dict[str, Any], type]] = [
    ("exam package", read_exam_package, EXAM.package, ExamData),
    ("authorisation", read_authorisation, EXAM.authorisations[1], AuthorisationData),
    ("answer package", read_answer_package, ANSWERS, AnswerPackage),
]
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def read_or_refuse(reader: Callable[[bytes], Any], raw: bytes, kind: type) -> Any:
    """The reader's result, or None when it refused in Chinese; anything else fails."""
    try:
        result = reader(raw)
    except Refused as exc:
        assert exc.zh and exc.en
        return None
    assert isinstance(result, kind)
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


@pytest.mark.parametrize(("name", "reader", "doc", "kind"), READERS, ids=[r[0] for r in READERS])
def test_the_untouched_document_is_read(name, reader, doc, kind):
    assert isinstance(reader(dump(doc)), kind)


@pytest.mark.parametrize(("name", "reader", "doc", "kind"), READERS, ids=[r[0] for r in READERS])
@FUZZ
@given(raw=st.binary(max_size=2048))
def test_arbitrary_bytes_are_read_or_refused(name, reader, doc, kind, raw):
    read_or_refuse(reader, raw, kind)


@pytest.mark.parametrize(("name", "reader", "doc", "kind"), READERS, ids=[r[0] for r in READERS])
@FUZZ
@given(data=st.data())
def test_any_value_anywhere_is_read_or_refused(name, reader, doc, kind, data):
    where = data.draw(st.sampled_from(paths(doc)))
    value = data.draw(json_values)
    read_or_refuse(reader, dump(replaced(doc, where, value)), kind)


@pytest.mark.parametrize(("name", "reader", "doc", "kind"), READERS, ids=[r[0] for r in READERS])
@FUZZ
@given(data=st.data())
def test_a_flipped_byte_anywhere_is_read_or_refused(name, reader, doc, kind, data):
    raw = bytearray(dump(doc))
    at = data.draw(st.integers(0, len(raw) - 1))
    raw[at] ^= data.draw(st.integers(1, 255))
    read_or_refuse(reader, bytes(raw), kind)
