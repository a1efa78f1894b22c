"""Format v2: the site-signed envelope and the room sheet that pins the site's key to the
room's registration code. Round trips, and every tampering refused with its reason:
a byte flipped anywhere, a swapped signature, another key, another room, a wrong code."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.common.crypto import make_identity, sign
from kiosk.common.packages import AnswerFile
from kiosk.common.signed import (
    normalise_registration_code,
    open_answer_package,
    open_sealed,
    read_room_sheet,
    seal,
    seal_answer_package,
    write_room_sheet,
)
from kiosk.core.errors import Refused

SITE = make_identity("site-1999999")
OTHER = make_identity("site-other")
ROOM = "1999999001"
CODE = "QWERTYUP"
BODY = {
    "exam": "1+X 职业技能等级证书",
    "issued_at": 1_780_000_000.0,
    "candidates": [{"no": "1001", "name": "黄丽"}],
}
SHEET = {
    "site_code": "1999999",
    "site_name": "测试考点",
    "site_ip": "10.0.0.2",
    "room_code": ROOM,
    "sessions": [
        {"number": 1, "candidates": 40, "first": "190119999990011001", "last": "190119999990011040"}
    ],
    "issued_at": 1_780_000_000.0,
}


SEALED = seal(SITE, "exam-package", BODY)
ROOM_SHEET = write_room_sheet(SITE, CODE, SHEET)
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def flipped(raw: bytes, data: st.DataObject) -> bytes:
    """`raw` with one byte changed, where and how hypothesis chooses. The documents are made
    once at import: ECDSA signatures differ in length each time."""
    changed = bytearray(raw)
    changed[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
    return bytes(changed)


def refusal(fn, *args) -> Refused:
    with pytest.raises(Refused) as info:
        fn(*args)
    assert info.value.zh and info.value.en
    return info.value


def test_a_sealed_body_opens_with_the_signers_certificate():
    assert open_sealed(seal(SITE, "exam-package", BODY), "exam-package", SITE.cert_pem) == BODY


def test_another_signer_or_another_format_is_refused():
    raw = seal(OTHER, "exam-package", BODY)
    assert refusal(open_sealed, raw, "exam-package", SITE.cert_pem).code == "foreign_signer"
    raw = seal(SITE, "session-authorisation", BODY)
    assert refusal(open_sealed, raw, "exam-package", SITE.cert_pem).code == "package_invalid"


def test_a_signature_swapped_from_another_document_is_refused():
    a = json.loads(seal(SITE, "exam-package", BODY))
    b = json.loads(seal(SITE, "exam-package", {**BODY, "exam": "另一个考试"}))
    a["sig"] = b["sig"]
    assert refusal(open_sealed, json.dumps(a).encode(), "exam-package", SITE.cert_pem).code == "bad_signature"


def test_a_body_claiming_the_site_as_signer_but_signed_by_another_key_is_refused():
    doc = json.loads(seal(OTHER, "exam-package", BODY))
    doc["signer"] = SITE.fingerprint
    assert (
        refusal(open_sealed, json.dumps(doc).encode(), "exam-package", SITE.cert_pem).code == "bad_signature"
    )


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_a_byte_flipped_anywhere_in_an_envelope_is_refused(data):
    refusal(open_sealed, flipped(SEALED, data), "exam-package", SITE.cert_pem)


def test_a_non_canonical_base64_spelling_of_the_same_body_is_refused():
    doc = json.loads(seal(SITE, "exam-package", {"a": 12}))  # a body of 8 bytes: one "=" of padding
    body = doc["body"]
    assert body.endswith("=") and not body.endswith("==")
    doc["body"] = body[:-2] + B64[B64.index(body[-2]) ^ 1] + "="  # flips a bit the decoder drops
    assert base64.b64decode(doc["body"]) == base64.b64decode(body), "the same bytes, spelled otherwise"
    err = refusal(open_sealed, json.dumps(doc).encode(), "exam-package", SITE.cert_pem)
    assert err.code == "package_invalid"


# -- room sheet ----------------------------------------------------------------------------


def test_the_room_sheet_pins_the_site_certificate_for_the_right_code():
    sheet = read_room_sheet(write_room_sheet(SITE, CODE, SHEET), "qwer tyup", ROOM)
    assert sheet.site_fingerprint == SITE.fingerprint and sheet.site_cert_pem == SITE.cert_pem
    assert (sheet.site_code, sheet.site_ip, sheet.sessions[0]["candidates"]) == ("1999999", "10.0.0.2", 40)
    # What the sheet pins then opens the site's packages.
    assert open_sealed(seal(SITE, "exam-package", BODY), "exam-package", sheet.site_cert_pem) == BODY


def test_a_wrong_registration_code_or_another_room_is_refused():
    raw = write_room_sheet(SITE, CODE, SHEET)
    assert refusal(read_room_sheet, raw, "QWERTYUQ", ROOM).code == "registration_code_wrong"
    assert refusal(read_room_sheet, raw, CODE, "1999999002").code == "foreign_room"


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [("proof", "\x80é", "registration_code_wrong"), ("proof", "\ud800", "registration_code_wrong"),
     ("site_cert", "\ud800", "package_invalid")],
    ids=["non-ASCII proof", "lone surrogate proof", "lone surrogate certificate"],
)  # fmt: skip
def test_odd_text_in_a_sheet_is_refused_not_a_crash(field, value, code):
    """Found by fuzzing: any text JSON can carry, compared or encoded, is a refusal."""
    body = json.loads(base64.b64decode(json.loads(write_room_sheet(SITE, CODE, SHEET))["body"]))
    signed = json.dumps({**body, field: value}).encode()  # ASCII escapes carry any text
    raw = json.dumps({"format": "room-sheet", "version": 2, "signer": SITE.fingerprint,
                      "body": base64.b64encode(signed).decode(),
                      "sig": base64.b64encode(sign(SITE, signed)).decode()}).encode()  # fmt: skip
    assert refusal(read_room_sheet, raw, CODE, ROOM).code == code


def test_a_forger_who_does_not_know_the_code_cannot_substitute_its_key():
    """Re-signing the genuine sheet's body with another key and certificate: the proof in
    it is for the genuine site's fingerprint, so the typed code refuses it."""
    genuine = json.loads(write_room_sheet(SITE, CODE, SHEET))
    body = json.loads(base64.b64decode(genuine["body"]))
    body["site_cert"] = OTHER.cert_pem.decode()
    forged = seal(OTHER, "room-sheet", body)
    assert refusal(read_room_sheet, forged, CODE, ROOM).code == "registration_code_wrong"


def test_a_sheet_whose_signer_is_not_its_certificate_is_refused():
    genuine = json.loads(write_room_sheet(SITE, CODE, SHEET))
    other = json.loads(seal(OTHER, "room-sheet", json.loads(base64.b64decode(genuine["body"]))))
    assert refusal(read_room_sheet, json.dumps(other).encode(), CODE, ROOM).code == "bad_signature"


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_a_byte_flipped_anywhere_in_a_room_sheet_is_refused(data):
    refusal(read_room_sheet, flipped(ROOM_SHEET, data), CODE, ROOM)


def test_registration_codes_are_eight_letters_typed_loosely():
    assert normalise_registration_code(" ｑｗｅｒ-tyup ") == CODE
    assert refusal(write_room_sheet, SITE, "QWERTY1P", SHEET).code == "bad_registration_code"


# -- sealed answer package ------------------------------------------------------------------

PC = make_identity("KS-001")
ROOM_KEY = bytes(range(32))
ANSWERS = [
    {"subject": "T01", "question": "q01", "value": "A", "seq": 3, "saved_at": 1_780_000_100.0},
    {"subject": "T01", "question": "q02", "value": ["A", "C"], "seq": 7, "saved_at": 1_780_000_200.0},
]


WORK = AnswerFile("P01", "q01", "报表.xlsx", bytes(range(256)) * 40)


def answer_package(pc=PC, key=ROOM_KEY, room=ROOM, session=1, answers=ANSWERS, files=(WORK,)) -> bytes:
    return seal_answer_package(pc, key, room_code=room, session=session, admission_no="190119999990011001",
                               answers=answers, created_at=1_780_000_300.0, files=files)  # fmt: skip


ANSWER_PACKAGE = answer_package()


def test_an_answer_package_opens_for_its_room_with_the_room_key():
    pkg = open_answer_package(ANSWER_PACKAGE, ROOM_KEY, ROOM, 1, {PC.fingerprint})
    assert pkg.answers == tuple(ANSWERS) and pkg.seq_range == (3, 7)
    assert (pkg.admission_no, pkg.created_at, pkg.signer) == (
        "190119999990011001",
        1_780_000_300.0,
        PC.fingerprint,
    )
    assert pkg.files == (WORK,)
    assert ROOM_KEY not in ANSWER_PACKAGE and b"q02" not in ANSWER_PACKAGE, "the answers are encrypted"
    assert WORK.data[:64] not in ANSWER_PACKAGE, "so are the files"
    assert len(ANSWER_PACKAGE) < len(WORK.data) + 4096, "the files are carried raw, not base64'd"


@pytest.mark.parametrize(
    ("raw", "key", "room", "session", "seated", "code"),
    [
        (ANSWER_PACKAGE, ROOM_KEY, ROOM, 1, {OTHER.fingerprint}, "foreign_pc"),
        (ANSWER_PACKAGE, bytes(32), ROOM, 1, {PC.fingerprint}, "package_key_wrong"),
        (ANSWER_PACKAGE, ROOM_KEY, "1999999002", 1, {PC.fingerprint}, "foreign_room"),
        (ANSWER_PACKAGE, ROOM_KEY, ROOM, 2, {PC.fingerprint}, "wrong_session"),
        (ANSWER_PACKAGE[:-100], ROOM_KEY, ROOM, 1, {PC.fingerprint}, "bad_signature"),
        (ANSWER_PACKAGE.partition(b"\n")[0], ROOM_KEY, ROOM, 1, {PC.fingerprint}, "package_invalid"),
    ],
    ids=["stranger", "other key", "other room", "other session", "cut short", "no contents"],
)
def test_an_answer_package_for_elsewhere_from_a_stranger_or_cut_short_is_refused(
    raw, key, room, session, seated, code
):
    assert refusal(open_answer_package, raw, key, room, session, seated).code == code


def _parts(raw: bytes) -> tuple[dict, bytes]:
    head, _, ciphertext = raw.partition(b"\n")
    return json.loads(base64.b64decode(json.loads(head)["body"])), ciphertext


def test_a_manifest_changed_after_signing_is_refused():
    doc, (_, _, tail) = json.loads(ANSWER_PACKAGE.partition(b"\n")[0]), ANSWER_PACKAGE.partition(b"\n")
    body = json.loads(base64.b64decode(doc["body"]))
    body["manifest"]["seq_to"] = 99
    doc["body"] = base64.b64encode(json.dumps(body).encode()).decode()
    forged = json.dumps(doc).encode() + b"\n" + tail
    assert refusal(open_answer_package, forged, ROOM_KEY, ROOM, 1, {PC.fingerprint}).code == "bad_signature"


def _resealed(manifest_change: dict, plain: bytes) -> bytes:
    """What a seated PC could sign: its own manifest over contents of its choosing."""
    body, _ = _parts(ANSWER_PACKAGE)
    body["manifest"].update(manifest_change)
    nonce = base64.b64decode(body["nonce"])
    aad = json.dumps({"format": "answer-package", "version": 2, "manifest": body["manifest"]},
                     ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()  # fmt: skip
    ciphertext = AESGCM(ROOM_KEY).encrypt(nonce, plain, aad)
    header = plain[4 : 4 + int.from_bytes(plain[:4], "big")]
    body.update(header_sha256=hashlib.sha256(header).hexdigest(), ciphertext_size=len(ciphertext))
    return seal(PC, "answer-package", body) + b"\n" + ciphertext


def _reencrypted(change: Callable[[bytearray], None]) -> bytes:
    """What anyone holding the room key (every PC of the room has it) could make of PC's
    package: PC's signed envelope kept, the contents decrypted, changed, encrypted again."""
    head, _, ciphertext = ANSWER_PACKAGE.partition(b"\n")
    body, _ = _parts(ANSWER_PACKAGE)
    nonce = base64.b64decode(body["nonce"])
    aad = json.dumps({"format": "answer-package", "version": 2, "manifest": body["manifest"]},
                     ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()  # fmt: skip
    plain = bytearray(AESGCM(ROOM_KEY).decrypt(nonce, ciphertext, aad))
    change(plain)
    return head + b"\n" + AESGCM(ROOM_KEY).encrypt(nonce, bytes(plain), aad)


def test_another_holder_of_the_room_key_cannot_change_a_pcs_package():
    def answer(plain: bytearray) -> None:
        at = plain.find(b'"A"')
        assert at > 0, "the fixture's answer A"
        plain[at + 1 : at + 2] = b"C"

    def work(plain: bytearray) -> None:
        plain[-1] ^= 0x01  # the last byte of the work file; the header is unchanged

    assert refusal(open_answer_package, _reencrypted(answer), ROOM_KEY, ROOM, 1, {PC.fingerprint}).code == (
        "bad_signature"
    )
    assert refusal(open_answer_package, _reencrypted(work), ROOM_KEY, ROOM, 1, {PC.fingerprint}).code == (
        "manifest_mismatch"
    )
    same = _reencrypted(lambda _p: None)  # decrypted and encrypted again unchanged: still opens
    assert open_answer_package(same, ROOM_KEY, ROOM, 1, {PC.fingerprint}).files == (WORK,)


def test_a_package_of_the_earlier_layout_is_refused_with_a_reason():
    body, ciphertext = _parts(ANSWER_PACKAGE)
    del body["header_sha256"]
    body["ciphertext_sha256"] = hashlib.sha256(ciphertext).hexdigest()
    old = seal(PC, "answer-package", body) + b"\n" + ciphertext
    err = refusal(open_answer_package, old, ROOM_KEY, ROOM, 1, {PC.fingerprint})
    assert err.code == "package_invalid" and "重新导出" in err.zh


def _plain(answers: list, files: list, data: bytes = b"") -> bytes:
    header = json.dumps({"answers": answers, "files": files}).encode()
    return len(header).to_bytes(4, "big") + header + data


def test_a_pc_that_signs_a_manifest_not_matching_its_contents_is_refused():
    """Even a seated PC's own signature does not make a lying manifest true."""
    entry = {"subject": "P01", "question": "q01", "name": WORK.name, "size": len(WORK.data),
             "sha256": hashlib.sha256(WORK.data).hexdigest()}  # fmt: skip
    lies = {
        "count": _resealed({"count": 5}, _plain(ANSWERS, [entry], WORK.data)),
        "file count": _resealed({"files": 0}, _plain(ANSWERS, [entry], WORK.data)),
        "file hash": _resealed({}, _plain(ANSWERS, [{**entry, "sha256": "0" * 64}], WORK.data)),
        "trailing bytes": _resealed({}, _plain(ANSWERS, [entry], WORK.data + b"x")),
    }
    for lie, raw in lies.items():
        err = refusal(open_answer_package, raw, ROOM_KEY, ROOM, 1, {PC.fingerprint})
        assert err.code == "manifest_mismatch", lie
    for name in ("../x", "a/b", "", "."):
        raw = _resealed({}, _plain(ANSWERS, [{**entry, "name": name}], WORK.data))
        assert (
            refusal(open_answer_package, raw, ROOM_KEY, ROOM, 1, {PC.fingerprint}).code == "package_invalid"
        ), name


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_a_byte_flipped_anywhere_in_an_answer_package_is_refused(data):
    refusal(open_answer_package, flipped(ANSWER_PACKAGE, data), ROOM_KEY, ROOM, 1, {PC.fingerprint})
