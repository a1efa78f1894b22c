"""The site's results reader under fuzzing (hypothesis): whatever bytes arrive as a
results upload, and whatever JSON the box signed, the site reads the package or refuses
it with a reason in Chinese (Denied 422); it never raises anything else, and a refused
upload leaves nothing stored: no upload row, no expected file, no file on disk. On
SQLite and on PostgreSQL, through the upload's last chunk as the server runs it."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from peewee import Database

from kiosk.common.crypto import make_identity, sign
from kiosk.common.signed import seal
from kiosk.site import store
from kiosk.site.server import Denied, Results, read_results, upload_chunk
from tests.site.plan import OPEN_ROOM, Plan

BOX = make_identity("proctor box")
NOW = 1_780_272_000.0
BODY: dict[str, Any] = {
    "room_code": OPEN_ROOM,
    "session": 1,
    "created_at": NOW,
    "codes_used": [
        {"code": "23456789", "purpose": "extra_time", "challenge": "042917", "amount": 300,
         "admission_no": "190119999990011001", "time": NOW},
    ],
    "files": [{"path": "answer-files-1999999001/session-1/190119999990011001/P01/q01/表格.xlsx",
               "size": 10, "sha256": "0" * 64}],
    "answers": [{"admission_no": "190119999990011001", "subject": "T01", "question": "q01", "value": "A"}],
}  # fmt: skip
SIGNED = seal(BOX, "results-package", BODY)  # once: ECDSA signatures vary in length


def signed(body: dict[str, Any]) -> bytes:
    """A results package the box signed with its body in ASCII JSON: escapes can spell
    any text, lone surrogates and NUL too, and NaN and Infinity are written as Python does."""
    raw = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    doc = {
        "format": "results-package",
        "version": 2,
        "signer": BOX.fingerprint,
        "body": base64.b64encode(raw).decode(),
        "sig": base64.b64encode(sign(BOX, raw)).decode(),
    }
    return json.dumps(doc, separators=(",", ":")).encode()


any_text = st.text(st.characters(blacklist_categories=()), max_size=20)  # surrogates included
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=12,
)


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


def replaced(where: tuple[Any, ...], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(BODY)
    node = doc
    for part in where[:-1]:
        node = node[part]
    node[where[-1]] = value
    return doc


def read_or_refuse(raw: bytes) -> Results | None:
    try:
        results = read_results(raw, BOX.cert_pem, OPEN_ROOM)
    except Denied as exc:
        assert exc.status == 422 and exc.refused.zh and exc.refused.en
        return None
    assert isinstance(results, Results) and type(results.session) is int
    return results


# -- the reader alone ---------------------------------------------------------------------------

FUZZ = settings(max_examples=200, deadline=None)


def test_the_untouched_package_is_read():
    results = read_or_refuse(SIGNED)
    assert results is not None and (results.session, results.made_at) == (1, NOW)
    assert results.codes_used == BODY["codes_used"] and results.files == BODY["files"]


@FUZZ
@given(raw=st.binary(max_size=2048))
def test_arbitrary_bytes_are_refused(raw):
    assert read_or_refuse(raw) is None


@FUZZ
@given(data=st.data())
def test_a_flipped_byte_anywhere_is_refused(data):
    raw = bytearray(SIGNED)
    raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
    assert read_or_refuse(bytes(raw)) is None


@FUZZ
@given(data=st.data())
def test_any_value_anywhere_in_a_body_the_box_signed_is_read_or_refused(data):
    where = data.draw(st.sampled_from(paths(BODY)))
    read_or_refuse(signed(replaced(where, data.draw(json_values))))


@pytest.mark.parametrize(
    "text",
    ["[" * 100_000, '{"a":' * 100_000, '{"format":"results-package","version":2,"body":' + "[" * 50_000],
    ids=["deep list", "deep object", "deep envelope"],
)
def test_nesting_deeper_than_the_parser_goes_is_refused(text):
    assert read_or_refuse(text.encode()) is None


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (("session",), 10**30),
        (("session",), 0),
        (("created_at",), 10**400),
        (("created_at",), float("nan")),
        (("created_at",), float("inf")),
        (("codes_used", 0, "admission_no"), "\ud800"),
        (("codes_used", 0, "amount"), float("inf")),
        (("files", 0, "path"), "a\x00b"),
        (("files", 0, "path"), "\udfff.xlsx"),
    ],
    ids=["huge session", "session 0", "huge time", "NaN time", "infinite time", "lone surrogate",
         "infinite amount", "NUL in a path", "surrogate in a path"],
)  # fmt: skip
def test_values_the_site_could_not_store_are_refused_as_invalid(where, value):
    with pytest.raises(Denied) as caught:
        read_results(signed(replaced(where, value)), BOX.cert_pem, OPEN_ROOM)
    assert caught.value.refused.code == "package_invalid"


# -- through the upload, on both databases ----------------------------------------------------


@pytest.fixture
def db(db_url: str, plan: Plan) -> Iterator[Database]:
    database = store.connect(db_url)
    store.import_plan(plan.folder)
    store.register_box(OPEN_ROOM, BOX.cert_pem.decode(), BOX.fingerprint, NOW)
    yield database
    database.close()


def _stored(folder: Path) -> tuple[int, int, list[str]]:
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    return store.Upload.select().count(), store.ExpectedFile.select().count(), files


def upload(folder: Path, raw: bytes) -> dict[str, Any] | None:
    """The whole package as one chunk: the server's last-chunk path. None when refused
    (then nothing may be stored); the answer when taken (then it is cleared again, so
    that every example starts from an empty site)."""
    row = store.room(OPEN_ROOM)
    sha = hashlib.sha256(raw).hexdigest()
    try:
        answer = upload_chunk(folder, row, sha, {"offset": "0", "total": str(len(raw))}, raw, NOW)
    except Denied as exc:
        assert exc.refused.zh and exc.refused.en and exc.status in (400, 409, 413, 422)
        assert _stored(folder) == (0, 0, []), "a refused upload leaves nothing"
        return None
    assert answer["complete"] is True and _stored(folder)[0] == 1
    store.Upload.delete().execute()
    store.ExpectedFile.delete().execute()
    shutil.rmtree(folder, ignore_errors=True)
    return answer


SITE_FUZZ = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def test_the_untouched_package_is_taken(db, tmp_path):
    answer = upload(tmp_path / "uploads", SIGNED)
    assert answer is not None and answer["reconciliation"]["files"] == 1
    assert answer["reconciliation"]["not_issued"] == BODY["codes_used"]


@SITE_FUZZ
@given(raw=st.binary(max_size=1024))
def test_arbitrary_bytes_uploaded_are_refused_and_nothing_is_stored(db, tmp_path, raw):
    assert upload(tmp_path / "uploads", raw) is None


@SITE_FUZZ
@given(data=st.data())
def test_a_flipped_byte_uploaded_is_refused_and_nothing_is_stored(db, tmp_path, data):
    raw = bytearray(SIGNED)
    raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
    assert upload(tmp_path / "uploads", bytes(raw)) is None


@SITE_FUZZ
@given(data=st.data())
def test_any_json_the_box_signed_is_taken_or_refused_with_nothing_stored(db, tmp_path, data):
    where = data.draw(st.sampled_from(paths(BODY)))
    upload(tmp_path / "uploads", signed(replaced(where, data.draw(json_values))))
