"""The exam-package and session-authorisation readers refuse malformed input with a
Chinese message, and a paper opens only with its own session key. Each document is
signed by the site as it would be, so every refusal here is of the signed body."""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from kiosk.common import signed
from kiosk.common.crypto import make_identity
from kiosk.common.packages import AUTH_FORMAT, EXAM_FORMAT, open_paper
from kiosk.core.errors import Refused
from kiosk.site.mock import MockExam, build_default_exam

START = 1_750_000_000.0  # any fixed instant; the readers do not look at the clock
CJK = re.compile(r"[\u4e00-\u9fff]")

Change = Callable[[dict[str, Any]], None]
SITE = make_identity("test site")


def signed_exam(body: dict[str, Any]) -> bytes:
    return signed.seal(SITE, EXAM_FORMAT, body)


def signed_auth(body: dict[str, Any]) -> bytes:
    return signed.seal(SITE, AUTH_FORMAT, body)


def read_exam_package(raw: bytes) -> Any:
    return signed.read_exam_package(raw, SITE.cert_pem)


def read_authorisation(raw: bytes) -> Any:
    return signed.read_authorisation(raw, SITE.cert_pem)


@pytest.fixture(scope="module")
def exam() -> MockExam:
    return build_default_exam(first_start=START)


def set_at(path: str, value: Any) -> Change:
    """A change that sets a dotted path ("candidates.0.session") to value."""

    def change(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


def delete_at(path: str) -> Change:
    def change(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        del node[last]

    return change


def mutated(doc: dict[str, Any], change: Change) -> dict[str, Any]:
    copied = copy.deepcopy(doc)
    change(copied)
    return copied


def refusal(reader: Callable[[bytes], Any], raw: bytes) -> Refused:
    with pytest.raises(Refused) as info:
        reader(raw)
    return info.value


def assert_explained_in_chinese(err: Refused) -> None:
    assert CJK.search(err.zh), f"no Chinese in {err.zh!r}"
    assert err.en and not CJK.search(err.en)


def test_the_untouched_mock_documents_are_accepted(exam: MockExam) -> None:
    # Every refusal below is a one-field change of these documents.
    data = read_exam_package(signed_exam(exam.package))
    auth = read_authorisation(signed_auth(exam.authorisations[1]))
    assert len(data.candidates) == 80
    assert auth.session == 1


# --- exam package -----------------------------------------------------------------

_SECOND_ADMISSION = "candidates.1.admission_no"


def _duplicate_admission(doc: dict[str, Any]) -> None:
    doc["candidates"][1]["admission_no"] = doc["candidates"][0]["admission_no"]


def _duplicate_subject(doc: dict[str, Any]) -> None:
    doc["subjects"][1]["code"] = doc["subjects"][0]["code"]


def _duplicate_session(doc: dict[str, Any]) -> None:
    doc["sessions"][1]["number"] = 1


PACKAGE_REFUSALS: dict[str, Change] = {
    # missing fields
    "no exam": delete_at("exam"),
    "no subjects": delete_at("subjects"),
    "no sessions": delete_at("sessions"),
    "no candidates": delete_at("candidates"),
    "no exam name": delete_at("exam.name"),
    "no room code": delete_at("exam.room_code"),
    "no policy": delete_at("exam.policy"),
    "no site secret": delete_at("exam.site_secret"),
    "no violation codes": delete_at("exam.violation_codes"),
    "no situation types": delete_at("exam.situation_types"),
    "no subject duration": delete_at("subjects.0.duration_s"),
    "no session start": delete_at("sessions.0.start"),
    "no papers": delete_at("sessions.0.papers"),
    "no paper nonce": delete_at("sessions.0.papers.0.nonce"),
    "no admission number": delete_at("candidates.0.admission_no"),
    "no candidate session": delete_at("candidates.0.session"),
    "no candidate subjects": delete_at("candidates.0.subjects"),
    # wrong types
    "exam is a list": set_at("exam", []),
    "exam name is a number": set_at("exam.name", 5),
    "policy is a list": set_at("exam.policy", []),
    "subjects is an object": set_at("subjects", {}),
    "duration as text": set_at("subjects.0.duration_s", "5400"),
    "duration as bool": set_at("subjects.0.duration_s", True),
    "duration as float": set_at("subjects.0.duration_s", 5400.0),
    "session number as bool": set_at("sessions.0.number", True),
    "session start as text": set_at("sessions.0.start", "08:30"),
    "session start as bool": set_at("sessions.0.start", True),
    "candidate session as bool": set_at("candidates.0.session", True),
    "candidate subjects as text": set_at("candidates.0.subjects", "T01"),
    "candidate subject as number": set_at("candidates.0.subjects", [1]),
    "admission number as number": set_at("candidates.0.admission_no", 190119999990011001),
    # content rules
    "duplicate admission numbers": _duplicate_admission,
    "duplicate subject codes": _duplicate_subject,
    "duplicate session numbers": _duplicate_session,
    "empty subjects": set_at("subjects", []),
    "empty sessions": set_at("sessions", []),
    "candidate in unknown session": set_at("candidates.0.session", 9),
    "candidate with unknown subject": set_at("candidates.0.subjects", ["X99"]),
    "candidate with no subject": set_at("candidates.0.subjects", []),
    "paper for unknown subject": set_at("sessions.0.papers.0.subject", "X99"),
    "letter in admission number": set_at(_SECOND_ADMISSION, "19011999999001100A"),
    "empty admission number": set_at(_SECOND_ADMISSION, ""),
    "33-digit admission number": set_at(_SECOND_ADMISSION, "1" * 33),
    "zero duration": set_at("subjects.0.duration_s", 0),
    "negative duration": set_at("subjects.1.duration_s", -60),
    "site secret not base64": set_at("exam.site_secret", "not base64!"),
    "nonce not base64": set_at("sessions.0.papers.0.nonce", "%%%"),
}


@pytest.mark.parametrize("change", PACKAGE_REFUSALS.values(), ids=PACKAGE_REFUSALS.keys())
def test_the_package_reader_refuses_a_malformed_package_in_chinese(exam: MockExam, change: Change) -> None:
    err = refusal(read_exam_package, signed_exam(mutated(exam.package, change)))
    assert err.code == "package_invalid"
    assert_explained_in_chinese(err)


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"\xff\xfe\x00", b"", b"[]", b'"exam-package"'],
    ids=["broken JSON", "not UTF-8", "empty file", "a list", "a string"],
)
def test_the_package_reader_refuses_what_is_not_a_json_object(raw: bytes) -> None:
    err = refusal(read_exam_package, raw)
    assert err.code == "package_invalid"
    assert_explained_in_chinese(err)


def test_the_package_reader_names_the_duplicated_problem(exam: MockExam) -> None:
    err = refusal(read_exam_package, signed_exam(mutated(exam.package, _duplicate_admission)))
    assert "准考证号重复" in err.zh


def test_the_package_reader_names_the_bad_admission_number(exam: MockExam) -> None:
    err = refusal(read_exam_package, signed_exam(mutated(exam.package, set_at(_SECOND_ADMISSION, "12AB"))))
    assert "12AB" in err.zh


MORE_REFUSALS: dict[str, Change] = {
    "full-width digits are not digits": set_at(_SECOND_ADMISSION, "１９０１１９９９９９９００１１００２"),
    "short violation entry": set_at("exam.violation_codes", [["A101"]]),
    "staff as text": set_at("exam.staff", "张三"),
    "requirements as a list": set_at("exam.requirements", [1]),
    "subject without a paper in the session": set_at("candidates.0.subjects", ["P01"]),
    "unknown subject kind": set_at("subjects.0.kind", "essay"),
    "gender as a number": set_at("candidates.0.gender", 1),
    "session number zero": set_at("sessions.0.number", 0),
    "short site secret": set_at("exam.site_secret", "AAAA"),
    "no package key": delete_at("exam.package_key"),
    "short package key": set_at("exam.package_key", base64.b64encode(bytes(16)).decode()),
}


@pytest.mark.parametrize("change", MORE_REFUSALS.values(), ids=MORE_REFUSALS.keys())
def test_the_package_reader_also_refuses(exam: MockExam, change: Change) -> None:
    refusal(read_exam_package, signed_exam(mutated(exam.package, change)))


# --- session authorisation --------------------------------------------------------

AUTH_REFUSALS: dict[str, Change] = {
    "no key": delete_at("key"),
    "no room code": delete_at("room_code"),
    "no session": delete_at("session"),
    "no valid_from": delete_at("valid_from"),
    "no valid_until": delete_at("valid_until"),
    "session as bool": set_at("session", True),
    "session as text": set_at("session", "1"),
    "valid_until as text": set_at("valid_until", "tomorrow"),
    "key as number": set_at("key", 5),
    "key not base64": set_at("key", "not a key"),
    "16-byte key": set_at("key", base64.b64encode(bytes(16)).decode()),
    "33-byte key": set_at("key", base64.b64encode(bytes(33)).decode()),
    "empty key": set_at("key", ""),
}


@pytest.mark.parametrize("change", AUTH_REFUSALS.values(), ids=AUTH_REFUSALS.keys())
def test_the_authorisation_reader_refuses_a_malformed_authorisation_in_chinese(
    exam: MockExam, change: Change
) -> None:
    err = refusal(read_authorisation, signed_auth(mutated(exam.authorisations[1], change)))
    assert err.code == "package_invalid"
    assert_explained_in_chinese(err)


def test_the_authorisation_reader_refuses_broken_json() -> None:
    assert_explained_in_chinese(refusal(read_authorisation, b'{"format": '))


def test_the_authorisation_reader_refuses_an_exam_package(exam: MockExam) -> None:
    assert refusal(read_authorisation, signed_exam(exam.package)).code == "package_invalid"


def test_a_wrong_length_key_is_named_in_the_refusal(exam: MockExam) -> None:
    raw = signed_auth(mutated(exam.authorisations[1], set_at("key", base64.b64encode(bytes(16)).decode())))
    assert "密钥长度" in refusal(read_authorisation, raw).zh


# --- papers -----------------------------------------------------------------------


def _paper_refusal(call: Callable[[], Any]) -> Refused:
    with pytest.raises(Refused) as info:
        call()
    return info.value


def test_a_paper_opened_with_a_random_key_is_refused_as_the_wrong_key(exam: MockExam) -> None:
    data = read_exam_package(signed_exam(exam.package))
    paper = data.sessions[0].papers[0]
    err = _paper_refusal(lambda: open_paper(bytes(32), data.room_code, 1, paper))
    assert err.code == "authorisation_key_wrong"
    assert_explained_in_chinese(err)


def test_a_paper_opened_with_the_other_sessions_key_is_refused(exam: MockExam) -> None:
    data = read_exam_package(signed_exam(exam.package))
    other_key = read_authorisation(signed_auth(exam.authorisations[2])).key
    paper = data.sessions[0].papers[0]
    err = _paper_refusal(lambda: open_paper(other_key, data.room_code, 1, paper))
    assert err.code == "authorisation_key_wrong"


def test_a_paper_claimed_for_another_room_or_session_is_refused(exam: MockExam) -> None:
    # The room and session are bound into the ciphertext, so a package copied to the
    # wrong room or a paper moved to another session does not open even with its key.
    data = read_exam_package(signed_exam(exam.package))
    key = read_authorisation(signed_auth(exam.authorisations[1])).key
    paper = data.sessions[0].papers[0]
    assert open_paper(key, data.room_code, 1, paper)  # the right claim opens
    wrong_room = _paper_refusal(lambda: open_paper(key, "1999999002", 1, paper))
    wrong_session = _paper_refusal(lambda: open_paper(key, data.room_code, 2, paper))
    relabelled = _paper_refusal(lambda: open_paper(key, data.room_code, 1, replace(paper, subject="P01")))
    assert {wrong_room.code, wrong_session.code, relabelled.code} == {"authorisation_key_wrong"}


@pytest.mark.parametrize("position", [0, 100, -1], ids=["first", "middle", "tag"])
def test_a_tampered_ciphertext_is_refused(exam: MockExam, position: int) -> None:
    data = read_exam_package(signed_exam(exam.package))
    key = read_authorisation(signed_auth(exam.authorisations[1])).key
    paper = data.sessions[0].papers[0]
    flipped = bytearray(paper.ciphertext)
    flipped[position] ^= 0x01
    err = _paper_refusal(
        lambda: open_paper(key, data.room_code, 1, replace(paper, ciphertext=bytes(flipped)))
    )
    assert err.code == "authorisation_key_wrong"
    assert_explained_in_chinese(err)


def test_a_tampered_ciphertext_in_the_file_is_refused_after_reading(exam: MockExam) -> None:
    paper_doc = exam.package["sessions"][0]["papers"][0]
    raw = bytearray(base64.b64decode(paper_doc["ciphertext"]))
    raw[10] ^= 0x80
    tampered = base64.b64encode(bytes(raw)).decode()
    data = read_exam_package(
        signed_exam(mutated(exam.package, set_at("sessions.0.papers.0.ciphertext", tampered)))
    )
    key = read_authorisation(signed_auth(exam.authorisations[1])).key
    err = _paper_refusal(lambda: open_paper(key, data.room_code, 1, data.sessions[0].papers[0]))
    assert err.code == "authorisation_key_wrong"


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def test_a_candidate_photo_is_read_when_it_is_a_small_jpeg_or_png(exam: MockExam) -> None:
    doc = copy.deepcopy(exam.package)
    doc["candidates"][0]["photo"] = base64.b64encode(PNG).decode()
    data = read_exam_package(signed_exam(doc))
    assert data.candidates[0].photo == PNG and data.candidates[1].photo == b""


@pytest.mark.parametrize(
    "photo",
    [
        base64.b64encode(b"GIF89a" + b"\x00" * 10).decode(),  # not a JPEG or PNG
        base64.b64encode(PNG + b"\x00" * 300 * 1024).decode(),  # too large
        "not base64!",
        12345,
    ],
)
def test_a_photo_that_is_not_a_small_image_is_refused(exam: MockExam, photo: Any) -> None:
    doc = copy.deepcopy(exam.package)
    doc["candidates"][0]["photo"] = photo
    err = refusal(read_exam_package, signed_exam(doc))
    assert err.code == "package_invalid" and "照片" in err.zh
