"""The site server's rules as plain functions: download windows, request signatures,
reconciliation of the authorisation codes."""

from __future__ import annotations

import base64
import time

import pytest

from kiosk.common.crypto import make_identity
from kiosk.net.site_client import request_payload, signed_headers
from kiosk.site.server import Denied, check_request, check_window, reconcile

NOW = 1780272000.0  # 2026-06-01 08:00 +08:00


def test_a_window_admits_its_own_bounds_and_nothing_outside():
    check_window("考务数据", "exam", NOW, NOW + 60, NOW)
    check_window("考务数据", "exam", NOW, NOW + 60, NOW + 60)
    for t in (NOW - 1, NOW + 61):
        with pytest.raises(Denied) as caught:
            check_window("考务数据", "exam", NOW, NOW + 60, t)
        assert caught.value.status == 403 and caught.value.refused.code == "outside_window"


def test_the_window_refusal_names_the_window_in_local_time():
    with pytest.raises(Denied) as caught:
        check_window("考务数据", "exam", NOW, NOW + 3600, NOW - 1)
    start = time.strftime("%Y-%m-%d %H:%M", time.localtime(NOW))
    end = time.strftime("%Y-%m-%d %H:%M", time.localtime(NOW + 3600))
    assert caught.value.refused.zh.startswith(f"考务数据下载时间为 {start} 至 {end}")


def test_a_request_signed_by_the_box_within_the_skew_passes_and_anything_else_is_refused():
    box, other = make_identity("box"), make_identity("other")
    path, body = "/api/v2/rooms/1999999001/seal-report", b'{"passed":true}'
    good = signed_headers(box, "POST", path, body, NOW)
    check_request(box.cert_pem, "POST", path, good["X-Time"], good["X-Signature"], body, NOW + 300)

    def refusal(cert: bytes, method: str, p: str, headers: dict[str, str], b: bytes, now: float) -> str:
        with pytest.raises(Denied) as caught:
            check_request(cert, method, p, headers.get("X-Time", ""), headers.get("X-Signature", ""), b, now)
        assert caught.value.status == 401
        return caught.value.refused.code

    assert refusal(box.cert_pem, "POST", path, {}, body, NOW) == "bad_signature"
    assert refusal(box.cert_pem, "POST", path, good, body + b" ", NOW) == "bad_signature"
    assert refusal(box.cert_pem, "PUT", path, good, body, NOW) == "bad_signature"
    assert refusal(box.cert_pem, "POST", path + "?x=1", good, body, NOW) == "bad_signature"
    assert refusal(other.cert_pem, "POST", path, good, body, NOW) == "bad_signature"
    assert (
        refusal(box.cert_pem, "POST", path, {**good, "X-Time": str(int(NOW) + 1)}, body, NOW)
        == "bad_signature"
    )
    assert (
        refusal(box.cert_pem, "POST", path, {**good, "X-Signature": "not base64!"}, body, NOW)
        == "bad_signature"
    )
    junk = base64.b64encode(b"\x30\x02\x01\x01").decode()
    assert refusal(box.cert_pem, "POST", path, {**good, "X-Signature": junk}, body, NOW) == "bad_signature"
    assert refusal(box.cert_pem, "POST", path, good, body, NOW + 301) == "clock_skew"
    assert refusal(box.cert_pem, "POST", path, good, body, NOW - 301) == "clock_skew"


def test_the_signed_text_has_method_path_time_and_body_hash():
    payload = request_payload("GET", "/a?b=1", "17", b"")
    assert payload == b"GET\n/a?b=1\n17\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def _code(code: str, purpose: str = "extra_time", challenge: str = "123456") -> dict:
    return {"code": code, "purpose": purpose, "challenge": challenge}


def test_reconciliation_sorts_codes_into_matched_not_issued_and_issued_unused():
    issued = [
        {**_code("AAAAAAAA"), "amount": 300, "issued_at": NOW},
        {**_code("BBBBBBBB", "late_start", "222222"), "amount": 0, "issued_at": NOW},
        {**_code("CCCCCCCC", "reexam", "333333"), "amount": 0, "issued_at": NOW},
    ]
    used = [
        {**_code("AAAAAAAA"), "amount": 300, "admission_no": "A1", "time": NOW},
        {**_code("BBBBBBBB", "late_start", "999999"), "amount": 0, "admission_no": "", "time": NOW},
        {**_code("DDDDDDDD"), "amount": 60, "admission_no": "A2", "time": NOW},
    ]
    result = reconcile(used, issued)
    assert result["matched"] == [used[0]]
    assert result["not_issued"] == [used[1], used[2]]  # a code counts only with its challenge
    assert result["issued_unused"] == [issued[1], issued[2]]


def test_reconciling_nothing_against_nothing_is_empty():
    assert reconcile([], []) == {"matched": [], "not_issued": [], "issued_unused": []}
