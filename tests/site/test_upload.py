"""The results upload through the box's SiteClient, on SQLite and on PostgreSQL:
progress, resuming after a cut connection or an interrupted run, idempotence, tampered
packages, and the reconciliation of the authorisation codes the box used."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from kiosk.common.crypto import Identity, make_identity, sign
from kiosk.common.signed import seal
from kiosk.core.errors import Refused
from kiosk.net.site_client import SiteClient
from kiosk.site import store
from kiosk.site.codes import calculate
from tests.site.plan import CODES, LATER_ROOM, OPEN_ROOM, Plan
from tests.site.serving import CuttingProxy, LoopThread, client, signed_request

ROOM = OPEN_ROOM
CHUNK = 4096


def results(
    signer: Identity,
    folder: Path,
    codes_used: list[dict],
    *,
    room: str = ROOM,
    pad: int = 20_000,
    made_at: float = 1000.0,
) -> Path:
    """A sealed results package of about `pad` bytes more than its codes."""
    body = {
        "room_code": room,
        "session": 1,
        "created_at": made_at,
        "codes_used": codes_used,
        "events": "e" * pad,
    }
    path = folder / f"results-{hashlib.sha256(json.dumps(codes_used).encode()).hexdigest()[:8]}-{pad}.json"
    path.write_bytes(seal(signer, "results-package", body))
    return path


@pytest.fixture
def site(server: LoopThread, box: Identity, plan: Plan) -> SiteClient:
    link = client(server.port, box, plan.site.cert_pem, chunk_bytes=CHUNK)
    link.register(ROOM, CODES[ROOM])
    return link


def _row(path: Path) -> store.Upload | None:
    return store.upload(ROOM, hashlib.sha256(path.read_bytes()).hexdigest())


def _stored_files(plan: Plan) -> list[str]:
    folder = plan.folder / "site" / "uploads" / ROOM
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_an_upload_reports_monotone_progress_to_the_total_and_is_stored(
    site: SiteClient, box: Identity, plan: Plan, tmp_path: Path
):
    path = results(box, tmp_path, [])
    seen: list[tuple[int, int]] = []
    answer = site.upload_results(ROOM, path, lambda done, total: seen.append((done, total)))
    size = path.stat().st_size
    assert answer["complete"] is True and answer["received"] == size
    assert answer["reconciliation"] == {"matched": [], "not_issued": [], "issued_unused": [], "files": 0}
    assert [d for d, _ in seen] == [min(CHUNK * i, size) for i in range(1, len(seen) + 1)]
    assert seen[-1] == (size, size) and all(t == size for _, t in seen)
    row = _row(path)
    assert row.complete and Path(row.stored_path).read_bytes() == path.read_bytes()
    assert _stored_files(plan) == [f"{row.sha256}.json"]


def test_an_upload_cut_mid_chunk_resumes_from_the_servers_count(
    server: LoopThread, box: Identity, plan: Plan, tmp_path: Path
):
    path = results(box, tmp_path, [], pad=40_000)
    proxy = CuttingProxy(server.port, cut_after=int(3.5 * CHUNK))
    cutting = LoopThread(proxy.main).start()
    try:
        link = client(cutting.port, box, plan.site.cert_pem, chunk_bytes=CHUNK)
        link.register(ROOM, CODES[ROOM])
        seen: list[int] = []
        answer = link.upload_results(ROOM, path, lambda done, total: seen.append(done))
    finally:
        cutting.stop()
    assert proxy.cut, "the proxy never cut the connection"
    assert answer["complete"] is True
    # Every chunk was acknowledged once: nothing was sent again from the start.
    assert seen == sorted(set(seen)) and seen[-1] == path.stat().st_size
    assert seen == [min(CHUNK * i, seen[-1]) for i in range(1, len(seen) + 1)]


def test_an_interrupted_upload_sends_only_the_rest_next_time(site: SiteClient, box: Identity, tmp_path: Path):
    path = results(box, tmp_path, [])

    def stop_after_two(done: int, total: int) -> None:
        if done >= 2 * CHUNK:
            raise KeyboardInterrupt  # the box was switched off

    with pytest.raises(KeyboardInterrupt):
        site.upload_results(ROOM, path, stop_after_two)
    assert _row(path).received == 2 * CHUNK and not _row(path).complete
    seen: list[int] = []
    answer = site.upload_results(ROOM, path, lambda done, total: seen.append(done))
    assert answer["complete"] is True
    assert seen[0] == 3 * CHUNK and seen[-1] == path.stat().st_size


def test_uploading_the_same_results_again_changes_nothing(site: SiteClient, box: Identity, tmp_path: Path):
    path = results(box, tmp_path, [])
    first = site.upload_results(ROOM, path, lambda done, total: None)
    before = store.Upload.select().dicts()[:]
    seen: list[int] = []
    again = site.upload_results(ROOM, path, lambda done, total: seen.append(done))
    assert again == first and seen == [path.stat().st_size], "nothing sent; the bar shows it done"
    assert store.Upload.select().dicts()[:] == before


def test_a_chunk_at_the_wrong_offset_is_refused_with_the_servers_count(
    site: SiteClient, server: LoopThread, box: Identity, tmp_path: Path
):
    path = results(box, tmp_path, [])
    raw = path.read_bytes()
    sha, total = hashlib.sha256(raw).hexdigest(), len(raw)
    url = f"/api/v2/rooms/{ROOM}/results/{sha}"
    assert signed_request(server.port, box, "PUT", f"{url}?offset=0&total={total}", raw[:CHUNK])[0] == 200
    status, doc = signed_request(server.port, box, "PUT", f"{url}?offset=0&total={total}", raw[:CHUNK])
    assert (status, doc["code"], doc["received"]) == (409, "offset_mismatch", CHUNK)
    for query in (f"offset={CHUNK}&total={total + 1}", f"offset={CHUNK}", f"offset=-1&total={total}"):
        status, doc = signed_request(server.port, box, "PUT", f"{url}?{query}", raw[CHUNK : 2 * CHUNK])
        assert (status, doc["code"]) == (400, "bad_request")
    status, doc = signed_request(server.port, box, "PUT", f"{url}?offset={CHUNK}&total={600 * 1024**2}", b"x")
    assert (status, doc["code"]) == (413, "too_large")
    status, doc = signed_request(server.port, box, "GET", url)
    assert (status, doc) == (200, {"received": CHUNK, "complete": False, "reconciliation": None})


def test_a_chunk_over_8_mib_is_refused(site: SiteClient, server: LoopThread, box: Identity):
    url = f"/api/v2/rooms/{ROOM}/results/{'0' * 64}?offset=0&total={9 * 1024**2}"
    status, doc = signed_request(server.port, box, "PUT", url, b"\0" * (8 * 1024**2 + 1))
    assert (status, doc["code"]) == (413, "too_large")
    assert store.Upload.select().count() == 0


def test_results_whose_hash_does_not_match_are_refused_and_dropped(
    site: SiteClient, server: LoopThread, box: Identity, plan: Plan, tmp_path: Path
):
    raw = results(box, tmp_path, []).read_bytes()
    url = f"/api/v2/rooms/{ROOM}/results/{hashlib.sha256(b'other').hexdigest()}"
    status, doc = signed_request(server.port, box, "PUT", f"{url}?offset=0&total={len(raw)}", raw)
    assert (status, doc["code"]) == (422, "hash_mismatch")
    assert signed_request(server.port, box, "GET", url)[1]["received"] == 0
    assert store.Upload.select().count() == 0 and _stored_files(plan) == []


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda box, tmp: results(make_identity("another box"), tmp, []), "foreign_signer"),
        (lambda box, tmp: results(box, tmp, [], room=LATER_ROOM), "foreign_room"),
        (lambda box, tmp: _flip_a_body_byte(results(box, tmp, [])), "bad_signature"),
        (lambda box, tmp: _resigned(results(box, tmp, []), claim=False), "foreign_signer"),
        (lambda box, tmp: _resigned(results(box, tmp, []), claim=True), "bad_signature"),
        (lambda box, tmp: _signature_moved(box, tmp), "bad_signature"),
        (
            lambda box, tmp: _sealed(box, tmp, {"room_code": ROOM, "session": "1", "codes_used": []}),
            "package_invalid",
        ),
        (
            lambda box, tmp: _sealed(box, tmp, {"room_code": ROOM, "session": 1, "codes_used": [{}]}),
            "package_invalid",
        ),
    ],
)
def test_a_tampered_or_foreign_results_package_is_refused_and_nothing_is_complete(
    site: SiteClient, box: Identity, plan: Plan, tmp_path: Path, make, code: str
):
    path = make(box, tmp_path)
    with pytest.raises(Refused) as caught:
        site.upload_results(ROOM, path, lambda done, total: None)
    assert caught.value.code == code
    assert store.Upload.select().count() == 0 and _stored_files(plan) == []


def _sealed(box: Identity, folder: Path, body: dict) -> Path:
    path = folder / "odd-results.json"
    path.write_bytes(seal(box, "results-package", body))
    return path


def _resigned(path: Path, claim: bool) -> Path:
    """The body of a real results package signed by another key, which names itself
    (`claim=False`) or claims to be the registered box."""
    forger = make_identity("forger")
    doc = json.loads(path.read_bytes())
    doc["sig"] = base64.b64encode(sign(forger, base64.b64decode(doc["body"]))).decode()
    if not claim:
        doc["signer"] = forger.fingerprint
    path.write_text(json.dumps(doc, separators=(",", ":")))
    return path


def _signature_moved(box: Identity, folder: Path) -> Path:
    """The box's real signature over another body (of another package it signed)."""
    real, other = results(box, folder, [], pad=100), results(box, folder, [], pad=200)
    doc = json.loads(other.read_bytes())
    doc["sig"] = json.loads(real.read_bytes())["sig"]
    other.write_text(json.dumps(doc, separators=(",", ":")))
    return other


def _flip_a_body_byte(path: Path) -> Path:
    doc = json.loads(path.read_bytes())
    body = bytearray(doc["body"].encode())
    body[40] = ord("A") if body[40] != ord("A") else ord("B")
    doc["body"] = body.decode()
    path.write_text(json.dumps(doc, separators=(",", ":")))
    return path


def test_the_codes_the_box_used_are_reconciled_with_the_codes_the_site_issued(
    site: SiteClient, box: Identity, plan: Plan, tmp_path: Path
):
    def issue(purpose: str, challenge: str, seconds: int = 0, session: int = 1, room: str = ROOM) -> dict:
        code = calculate(purpose, room, session, challenge, seconds, plan.secret, plan.now)
        store.record_issued_code(room, session, purpose, challenge, seconds, code, plan.now)
        return {"code": code, "purpose": purpose, "challenge": challenge, "amount": seconds}

    late = issue("late_start", "111111")
    extra = issue("extra_time", "222222", 300)
    unused = issue("reexam", "333333")
    issue("reexam", "444444", session=2)  # another session: not this upload's business
    issue("late_candidate", "555555", room=LATER_ROOM)  # another room
    forged = {"code": "23456789", "purpose": "extra_time", "challenge": "666666", "amount": 600}
    used = [
        {**late, "admission_no": "", "time": plan.now + 10},
        {**extra, "admission_no": "A1", "time": plan.now + 20},
        {**forged, "admission_no": "A2", "time": plan.now + 30},
    ]
    answer = site.upload_results(ROOM, results(box, tmp_path, used), lambda done, total: None)
    result = answer["reconciliation"]
    assert result["matched"] == used[:2]
    assert result["not_issued"] == [used[2]]
    assert [(c["purpose"], c["challenge"], c["code"]) for c in result["issued_unused"]] == [
        ("reexam", "333333", unused["code"])
    ]
    stored = store.Upload.get()
    assert json.loads(stored.reconciliation) == result


def test_the_answer_files_a_results_package_lists_follow_it_and_nothing_else_is_taken(
    site: SiteClient, box: Identity, plan: Plan, tmp_path: Path
):
    work = tmp_path / "work.xlsx"
    work.write_bytes(bytes(range(256)) * 50)
    sha = hashlib.sha256(work.read_bytes()).hexdigest()
    body = {"room_code": ROOM, "session": 1, "created_at": 1000.0, "codes_used": [],
            "files": [{"path": "answer-files/session-1/190119999990011001/P01/q01/work.xlsx",
                       "size": work.stat().st_size, "sha256": sha}]}  # fmt: skip
    path = tmp_path / "results.json"
    path.write_bytes(seal(box, "results-package", body))
    stranger = tmp_path / "stranger.bin"
    stranger.write_bytes(b"not listed")
    seen: list[tuple[int, int]] = []
    answer = site.upload_results(ROOM, path, lambda d, t: seen.append((d, t)), files=[(work, sha)])
    assert answer["reconciliation"]["files"] == 1
    grand = path.stat().st_size + work.stat().st_size
    assert seen[-1] == (grand, grand) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    stored = store.upload(ROOM, sha)
    assert stored.complete and Path(stored.stored_path).read_bytes() == work.read_bytes()
    unlisted = hashlib.sha256(stranger.read_bytes()).hexdigest()
    with pytest.raises(Refused) as info:
        site.upload_results(ROOM, path, lambda d, t: None, files=[(stranger, unlisted)])
    assert info.value.code == "unexpected_file" and store.upload(ROOM, unlisted) is None


def test_an_older_results_package_of_a_session_is_refused_after_a_newer_one(
    site: SiteClient, box: Identity, tmp_path: Path
):
    """Replaying the results the box made before (an earlier backup) cannot replace the
    ones it made last."""
    newer = results(box, tmp_path, [], pad=1000, made_at=2000.0)
    older = results(box, tmp_path, [], pad=1001, made_at=1500.0)
    site.upload_results(ROOM, newer, lambda done, total: None)
    with pytest.raises(Refused) as info:
        site.upload_results(ROOM, older, lambda done, total: None)
    assert info.value.code == "stale_results" and "更新的考试结果" in info.value.zh
    assert _row(older) is None, "the refused upload left nothing"
    latest = results(box, tmp_path, [], pad=1002, made_at=2500.0)
    assert site.upload_results(ROOM, latest, lambda done, total: None)["complete"] is True
