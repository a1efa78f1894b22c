"""Journal sync on the box: frames from many PCs commit together; each frame's answers
and events land, newest answer wins, a bad frame is refused alone."""

from __future__ import annotations

from kiosk.store.models import Event
from tests.integration.test_exam_session import candidates


def answer(seq, no, q, value, aseq):
    return {
        "seq": seq,
        "admission_no": no,
        "kind": "answer",
        "created_at": 0.0,
        "payload": {"subject": "T01", "question": q, "value": value, "aseq": aseq},
    }


def test_frames_from_several_pcs_commit_in_one_batch(started):
    room = started
    a, b = candidates(room)[0], candidates(room)[1]
    before = Event.select().count()
    results = room.sync_journals([
        (a["ip"], [answer(1, a["admission_no"], "q01", "A", 1), answer(2, a["admission_no"], "q01", "B", 2),
                   {"seq": 3, "admission_no": a["admission_no"], "kind": "event", "created_at": 0.0,
                    "payload": {"kind": "rules_read", "detail": {}}}]),
        (b["ip"], [answer(7, b["admission_no"], "q02", "C", 4)]),
        (b["ip"], [{"seq": "x"}]),
    ])  # fmt: skip
    assert results[0] == {"upto": 3, "refused": []}
    assert results[1] == {"upto": 7, "refused": []}
    assert results[2]["error"] == "bad_frame" and results[2]["upto"] == 0
    answers = {
        (x["question"], x["value"])
        for x in room.client_view(room.get_candidate(a["admission_no"]))["answers"]
    }
    assert answers == {("q01", "B")}
    kinds = [e.kind for e in Event.select().where(Event.id > before).order_by(Event.id)]
    assert kinds.count("answers_saved") == 2 and "rules_read" in kinds
    assert room.log_verify()["ok"]


def test_a_pc_cannot_write_for_a_candidate_on_another_pc(started):
    room = started
    a, b = candidates(room)[2], candidates(room)[3]
    result = room.sync_journals(
        [
            (
                a["ip"],
                [answer(1, b["admission_no"], "q01", "A", 1), answer(2, a["admission_no"], "q01", "D", 1)],
            )
        ]
    )[0]
    assert result["upto"] == 2 and result["refused"] == [{"seq": 1, "code": "not_your_candidate"}]
    assert room.client_view(room.get_candidate(b["admission_no"]))["answers"] == []


def test_unknown_entries_are_refused_and_acknowledged(started):
    room = started
    a = candidates(room)[4]
    result = room.sync_journals([(a["ip"], [
        {"seq": 5, "admission_no": a["admission_no"], "kind": "format", "payload": {}},
        {"seq": 6, "admission_no": a["admission_no"], "kind": "event", "payload": {"kind": "rm -rf"}},
        {"seq": 7, "admission_no": a["admission_no"], "kind": "answer", "payload": "not a dict"},
    ])])[0]  # fmt: skip
    assert result["upto"] == 7
    assert [r["code"] for r in result["refused"]] == ["bad_entry", "bad_event", "bad_entry"]


def test_the_pc_welcome_names_the_seat_and_its_lock_only_for_the_seated_key(started):
    room = started
    c = candidates(room)[5]
    seat = room.seat_by_ip(c["ip"])
    assert room.pc_welcome(c["ip"], "0" * 64) is None
    assert room.pc_welcome("127.9.9.9", seat.fingerprint) is None
    room.lock([c["admission_no"]])
    welcome = room.pc_welcome(c["ip"], seat.fingerprint)
    assert welcome["seat"] == c["seat"] and welcome["locked"] and welcome["admission_no"] == c["admission_no"]


def test_a_box_that_starts_again_marks_every_seat_offline(started):
    room = started
    c = candidates(room)[6]
    assert room.seat_by_ip(c["ip"]).online
    room.reset_links()
    assert not any(s["online"] for s in room.seats())
    assert not room.candidate_dict(room.get_candidate(c["admission_no"]))["online"]
