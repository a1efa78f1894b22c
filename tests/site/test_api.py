"""The site API through the box's real SiteClient against the server on loopback, on
SQLite and on PostgreSQL: hello, registration, signed room calls, windows, seal reports."""

from __future__ import annotations

import json
import socket
import time

import pytest

from kiosk.common.crypto import Identity, make_identity
from kiosk.common.signed import read_room_sheet
from kiosk.core.errors import Refused
from kiosk.net.site_client import SiteClient, signed_headers
from kiosk.site import store
from tests.site.plan import (
    CODES,
    LATER_FROM_S,
    LATER_ROOM,
    LATER_UNTIL_S,
    OPEN_ROOM,
    SITE_CODE,
    SITE_NAME,
    Plan,
)
from tests.site.serving import LoopThread, ShiftedClock, client, raw_request, signed_request, site_server

ROOM = OPEN_ROOM


def refused(call, *args) -> Refused:
    with pytest.raises(Refused) as caught:
        call(*args)
    return caught.value


@pytest.fixture
def site(server: LoopThread, box: Identity, plan: Plan) -> SiteClient:
    """The box's client with the site pinned, registered for both rooms."""
    link = client(server.port, box, plan.site.cert_pem)
    for room in (OPEN_ROOM, LATER_ROOM):
        link.register(room, CODES[room])
    return link


def test_hello_names_the_site_and_its_time(
    server: LoopThread, box: Identity, plan: Plan, clock: ShiftedClock
):
    assert client(server.port, box, None).reachable()
    assert client(server.port, box, plan.site.cert_pem).reachable()
    status, doc = raw_request(server.port, "GET", "/api/v2/hello")
    assert status == 200 and (doc["site_code"], doc["site_name"]) == (SITE_CODE, SITE_NAME)
    assert abs(doc["time"] - clock()) < 60


def test_a_wrong_registration_code_is_refused_and_records_nothing(server: LoopThread, box: Identity):
    link = client(server.port, box, None)
    assert refused(link.register, ROOM, "ABCDEFGX").code == "registration_code_wrong"
    assert refused(link.register, ROOM, CODES[LATER_ROOM]).code == "registration_code_wrong"
    room = store.room(ROOM)
    assert room.box_cert is None and room.box_fingerprint is None and room.registered_at is None


def test_an_unknown_room_is_refused(server: LoopThread, box: Identity):
    assert refused(client(server.port, box, None).register, "1999999099", "ABCDEFGH").code == "unknown_room"


def test_the_right_code_registers_the_box_and_returns_the_sheet_the_box_accepts(
    server: LoopThread, box: Identity, plan: Plan
):
    raw = client(server.port, box, None).register(ROOM, "abcd efgh")  # as typed: case and spaces
    sheet = read_room_sheet(raw, CODES[ROOM], ROOM)
    assert sheet.site_fingerprint == plan.site.fingerprint and sheet.site_code == SITE_CODE
    room = store.room(ROOM)
    assert room.box_fingerprint == box.fingerprint and room.box_cert == box.cert_pem.decode()


def test_a_new_registration_replaces_the_box(server: LoopThread, box: Identity, plan: Plan):
    old = client(server.port, box, plan.site.cert_pem)
    old.register(ROOM, CODES[ROOM])
    assert old.download_exam(ROOM) == plan.exam(ROOM)
    new = client(server.port, make_identity("replacement box"), plan.site.cert_pem)
    new.register(ROOM, CODES[ROOM])
    assert new.download_exam(ROOM) == plan.exam(ROOM)
    assert refused(old.download_exam, ROOM).code == "bad_signature"


def test_calls_before_registration_are_refused(server: LoopThread, box: Identity, plan: Plan):
    unpinned = client(server.port, box, None)
    for call, args in [
        (unpinned.download_exam, (ROOM,)),
        (unpinned.fetch_authorisation, (ROOM, 1)),
        (unpinned.report_seal, (ROOM, {"passed": True})),
    ]:
        assert refused(call, *args).code == "site_not_registered"
    unregistered = client(server.port, box, plan.site.cert_pem)
    assert refused(unregistered.download_exam, ROOM).code == "not_registered"
    assert refused(unregistered.report_seal, ROOM, {"passed": True}).code == "not_registered"
    assert store.SealReport.select().count() == 0


def test_unsigned_wrongly_signed_and_stale_requests_are_refused(
    site: SiteClient, server: LoopThread, box: Identity
):
    path = f"/api/v2/rooms/{ROOM}/exam-package"
    good = signed_headers(box, "GET", path, b"", time.time())
    seal = f"/api/v2/rooms/{ROOM}/seal-report"
    signed_for_another_body = signed_headers(box, "POST", seal, b'{"passed": false}', time.time())
    for status, doc in [
        raw_request(server.port, "GET", path),
        raw_request(server.port, "GET", path, headers={"X-Time": good["X-Time"]}),
        signed_request(server.port, make_identity("stranger"), "GET", path),
        raw_request(server.port, "POST", seal, b'{"passed": true}', headers=signed_for_another_body),
        raw_request(server.port, "GET", f"/api/v2/rooms/{ROOM}/sessions/1/authorisation", headers=good),
    ]:
        assert (status, doc["code"]) == (401, "bad_signature")
    status, doc = signed_request(server.port, box, "GET", path, now=time.time() - 400)
    assert (status, doc["code"]) == (401, "clock_skew")
    assert raw_request(server.port, "GET", path, headers=good)[0] == 200


def test_a_box_whose_clock_is_off_is_told_so(site: SiteClient, clock: ShiftedClock):
    clock.shift = 400
    problem = refused(site.download_exam, ROOM)
    assert problem.code == "clock_skew" and "校准监考机时间" in problem.zh


def test_the_exam_package_is_handed_out_only_inside_its_window(
    site: SiteClient, plan: Plan, clock: ShiftedClock
):
    assert site.download_exam(ROOM) == plan.exam(ROOM)
    early = refused(site.download_exam, LATER_ROOM)
    assert early.code == "outside_window" and early.zh.startswith("考务数据下载时间为 ")
    clock.shift = (LATER_FROM_S + LATER_UNTIL_S) / 2
    assert site.download_exam(LATER_ROOM) == plan.exam(LATER_ROOM)
    clock.shift = LATER_UNTIL_S + 50
    assert refused(site.download_exam, LATER_ROOM).code == "outside_window"


def test_a_session_authorisation_is_handed_out_only_inside_its_window(
    site: SiteClient, plan: Plan, clock: ShiftedClock
):
    assert site.fetch_authorisation(ROOM, 1) == plan.authorisation(ROOM, 1)
    early = refused(site.fetch_authorisation, ROOM, 2)
    assert early.code == "outside_window" and early.zh.startswith("第2场考试授权下载时间为 ")
    clock.shift = (LATER_FROM_S + LATER_UNTIL_S) / 2
    assert site.fetch_authorisation(ROOM, 2) == plan.authorisation(ROOM, 2)
    clock.shift = LATER_UNTIL_S + 50
    assert refused(site.fetch_authorisation, ROOM, 2).code == "outside_window"
    assert refused(site.fetch_authorisation, ROOM, 7).code == "unknown_session"


def test_a_seal_report_is_stored(site: SiteClient):
    report = {"passed": False, "items": [{"name": "考试机在线", "ok": False, "detail": "3 台离线"}]}
    site.report_seal(ROOM, report)
    rows = list(store.SealReport.select())
    assert len(rows) == 1 and rows[0].room_id == ROOM and rows[0].passed is False
    assert json.loads(rows[0].body) == report


@pytest.mark.parametrize(
    "body", [b"[]", b"{}", b'{"passed": "yes"}', b'{"passed": NaN}', b"\xff", b'{"passed": true']
)
def test_a_malformed_seal_report_is_refused_and_not_stored(
    site: SiteClient, server: LoopThread, box: Identity, body: bytes
):
    status, doc = signed_request(server.port, box, "POST", f"/api/v2/rooms/{ROOM}/seal-report", body)
    assert (status, doc["code"]) == (400, "bad_request")
    assert store.SealReport.select().count() == 0


def test_a_malformed_registration_is_refused(server: LoopThread):
    path = f"/api/v2/rooms/{ROOM}/register"
    for body in [b"[]", b'{"box_cert": 1, "proof": "x"}', b'{"box_cert": "not a cert", "proof": "x"}']:
        status, doc = raw_request(server.port, "POST", path, body)
        assert (status, doc["code"]) == (400, "bad_request")
    status, doc = raw_request(server.port, "POST", path, b"{" + b" " * 70_000 + b"}")
    assert (status, doc["code"]) == (413, "too_large")
    cert = json.dumps(make_identity("box").cert_pem.decode())
    for proof in ('"\\u00e9\\u00e9"', '"\\ud800"'):  # not ASCII; a lone surrogate
        body = f'{{"box_cert": {cert}, "proof": {proof}}}'.encode()
        status, doc = raw_request(server.port, "POST", path, body)
        assert (status, doc["code"]) == (403, "registration_code_wrong"), proof
    assert store.room(ROOM).box_cert is None


def test_unknown_paths_and_methods_answer_in_json(server: LoopThread):
    status, doc = raw_request(server.port, "GET", "/api/v2/nothing")
    assert status == 404 and doc["code"] == "not_found"
    status, doc = raw_request(server.port, "DELETE", f"/api/v2/rooms/{ROOM}/exam-package")
    assert status == 405 and doc["code"] == "bad_request"


def test_a_pinned_client_refuses_another_server(server: LoopThread, box: Identity):
    impostor = client(server.port, box, make_identity("another site").cert_pem)
    assert not impostor.reachable()
    assert refused(impostor.download_exam, ROOM).code == "site_cert_mismatch"


def test_registration_refuses_a_sheet_not_signed_by_the_servers_certificate(
    plan: Plan, db_url: str, clock: ShiftedClock, box: Identity
):
    other = make_identity("a server with another key")
    (plan.folder / "site" / "site.key").write_bytes(other.key_pem)
    (plan.folder / "site" / "site.crt").write_bytes(other.cert_pem)
    running = site_server(plan.folder, db_url, clock)
    try:
        assert (
            refused(client(running.port, box, None).register, ROOM, CODES[ROOM]).code == "site_cert_mismatch"
        )
    finally:
        running.stop()


def test_a_site_that_is_not_there_is_offline(box: Identity, plan: Plan):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    link = client(port, box, plan.site.cert_pem)
    assert not link.reachable()
    problem = refused(link.download_exam, ROOM)
    assert problem.code == "site_offline" and f"127.0.0.1:{port}" in problem.zh


def test_a_site_that_never_answers_times_out(box: Identity, plan: Plan):
    with socket.socket() as silent:  # accepts connections (the backlog) but never speaks TLS
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        link = client(silent.getsockname()[1], box, plan.site.cert_pem, timeout_s=0.5)
        assert refused(link.download_exam, ROOM).code == "site_offline"
