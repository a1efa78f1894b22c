"""The before-exam wizard against a real SQLite file and the simulated fleet."""

from __future__ import annotations

import pytest

from kiosk.core.errors import Refused
from kiosk.site.mock import author_site, build_default_exam
from kiosk.store.models import EnvRun
from tests.conftest import ROOM, T0, pin_site, prepare


def test_the_wizard_steps_tick_in_order(room, fleet, exam_files):
    assert room.wizard() == dict.fromkeys(("params", "seats", "envcheck", "exam", "seal"), False)
    prepare(room, fleet, exam_files)
    assert all(room.wizard().values())


def test_scan_orders_new_seats_by_ip_and_keeps_existing_numbers(room, fleet):
    room.configure(ROOM, "/tmp/answers-test", box_ip="127.0.0.1")
    room.seats_add("127.0.10.30", hostname="manual")
    result = room.seats_scan("ip")
    seats = room.seats()
    assert seats[0]["ip"] == "127.0.10.30" and seats[0]["number"] == 1
    others = [s["ip"] for s in seats[1:]]
    assert others == sorted(others, key=lambda ip: tuple(map(int, ip.split("."))))
    assert len(result["added"]) == 39
    again = room.seats_scan("name")
    assert again["added"] == [] and [s["ip"] for s in room.seats()] == [s["ip"] for s in seats]


def test_scan_by_reply_order_follows_the_answers(room, fleet):
    room.configure(ROOM, "/tmp/answers-test", box_ip="127.0.0.1")
    room.seats_scan("reply")
    assert [s["ip"] for s in room.seats()] == [r.ip for r in fleet.scan(1)]


def test_bad_parameters_are_refused_and_change_nothing(room):
    for kwargs, code in [
        (dict(room_code="123", answer_dir="/tmp/a", box_ip="127.0.0.1"), "bad_room_code"),
        (dict(room_code=ROOM, answer_dir="relative", box_ip="127.0.0.1"), "bad_answer_dir"),
        (dict(room_code=ROOM, answer_dir="/tmp/a", box_ip="10.9.9.9"), "box_ip_not_local"),
        (
            dict(
                room_code=ROOM,
                answer_dir="/tmp/a",
                box_ip="127.0.0.1",
                site_mode=True,
                site_ip="1.2.3",
                registration_code="ABCDEFGH",
            ),
            "bad_ip",
        ),
        (
            dict(
                room_code=ROOM,
                answer_dir="/tmp/a",
                box_ip="127.0.0.1",
                site_mode=True,
                site_ip="127.0.0.5",
                registration_code="abc",
            ),
            "bad_registration_code",
        ),
    ]:
        with pytest.raises(Refused) as err:
            room.configure(**kwargs)
        assert err.value.code == code and err.value.zh
    assert room.config() is None


def test_answer_folder_on_a_small_disk_is_refused(room):
    room.settings = type(room.settings)(**{**room.settings.__dict__, "min_free_bytes": 1 << 60})
    with pytest.raises(Refused) as err:
        room.configure(ROOM, "/tmp/answers-x", box_ip="127.0.0.1")
    assert err.value.code == "disk_too_small" and "GB" in err.value.zh


def test_seat_edit_move_delete_keep_numbers_and_ips_unique(room):
    room.configure(ROOM, "/tmp/answers-test", box_ip="127.0.0.1")
    for i in range(3):
        room.seats_add(f"127.0.10.{11 + i}")
    with pytest.raises(Refused) as err:
        room.seats_add("127.0.10.11")
    assert err.value.code == "duplicate_ip"
    with pytest.raises(Refused):
        room.seats_edit(2, ip="127.0.10.13")
    room.seats_move(3, "up")
    assert [s["ip"] for s in room.seats()] == ["127.0.10.11", "127.0.10.13", "127.0.10.12"]
    with pytest.raises(Refused) as err:
        room.seats_move(1, "up")
    assert err.value.code == "cannot_move"
    with pytest.raises(Refused) as err:
        room.seats_delete(2)
    assert err.value.code == "confirm_needed"
    room.seats_delete(2, confirm=True)
    assert [s["number"] for s in room.seats()] == [1, 3]
    assert room.seats_add("127.0.10.40")["number"] == 4


def test_show_seat_numbers_reaches_every_pc(room, fleet):
    room.configure(ROOM, "/tmp/answers-test", box_ip="127.0.0.1")
    room.seats_scan("ip")
    room.seats_show(True)
    first = room.seats()[0]
    assert fleet.pcs[first["ip"]].seat_shown == "001"
    room.seats_show(False)
    assert fleet.pcs[first["ip"]].seat_shown == ""


def test_environment_check_counts_failures_and_retests_only_them(room, fleet):
    room.configure(ROOM, "/tmp/answers-test", box_ip="127.0.0.1")
    room.seats_scan("ip")
    bad = room.seats()[4]["ip"]
    fleet.pcs[bad].env["memory_mb"] = 1024
    progress = []
    result = room.envcheck(progress=lambda done, total: progress.append((done, total)))
    assert (result["total"], result["passed"], result["failed"]) == (40, 39, 1)
    assert progress[-1] == (40, 40)
    assert not room.wizard()["envcheck"]
    fleet.pcs[bad].env["memory_mb"] = 8192
    retest = room.envcheck(retest_failed=True)
    assert (retest["total"], retest["failed"]) == (40, 0)
    assert room.wizard()["envcheck"]


def test_a_silent_pc_fails_the_environment_check(room, fleet):
    room.configure(ROOM, "/tmp/answers-test", box_ip="127.0.0.1")
    room.seats_scan("ip")
    fleet.pcs[room.seats()[0]["ip"]].reachable = False
    assert room.envcheck()["failed"] == 1


def test_exam_import_refuses_foreign_rooms_and_damaged_files(room, exam_files, tmp_path):
    room.configure("1999999002", "/tmp/answers-test", box_ip="127.0.0.1")
    with pytest.raises(Refused) as err:
        room.exam_import(str(exam_files.package))
    assert err.value.code == "site_not_pinned", "no exam data before the site's key is pinned"
    other = author_site(tmp_path / "other", [build_default_exam(room_code="1999999002", first_start=T0)])
    room.room_sheet_import(str(other.rooms["1999999002"].sheet), other.rooms["1999999002"].registration_code)
    with pytest.raises(Refused) as err:
        room.exam_import(str(exam_files.package))
    assert err.value.code == "foreign_signer", "another site's package"
    damaged = tmp_path / "damaged.json"
    damaged.write_bytes(exam_files.package.read_bytes()[:500])
    with pytest.raises(Refused) as err:
        room.exam_import(str(damaged))
    assert err.value.code == "package_invalid"
    assert room.exam() is None and room.exam_summary()["sessions"] == []


def test_importing_the_same_exam_twice_changes_nothing(room, exam_files):
    room.configure(ROOM, "/tmp/answers-test", box_ip="127.0.0.1")
    pin_site(room, exam_files)
    first = room.exam_import(str(exam_files.package))
    again = room.exam_import(str(exam_files.package))
    assert again["already_loaded"] and again["sessions"] == first["sessions"]
    assert [s["candidates"] for s in first["sessions"]] == [40, 40]


def test_the_seal_check_asks_again_about_the_software_the_exam_requires(room, fleet, exam_files):
    """Step 3 ran before the exam data came with its requirements: the seal check checks
    the PCs again against them, and a PC without the required software fails it."""
    room.configure(ROOM, "/tmp/answers-test", box_ip="127.0.0.1")
    room.seats_scan("ip")
    for ip in fleet.pcs:
        room.seat_link(ip, True)
    lacking = room.seats()[2]
    fleet.pcs[lacking["ip"]].env["software"] = ["WPS"]
    assert room.envcheck()["failed"] == 0, "no software was required yet"
    pin_site(room, exam_files)
    room.exam_import(str(exam_files.package))
    assert "Chrome" in room.requirements().required_software
    runs = EnvRun.select().count()
    verdict = room.seal_check()
    assert EnvRun.select().count() == runs + 1, "checked again"
    assert [i["key"] for i in verdict["items"] if not i["ok"]] == ["environment"]
    result = room.envcheck_result()
    assert [p["seat"] for p in result["pcs"] if not p["passed"]] == [f"{lacking['number']:03d}"]
    fleet.pcs[lacking["ip"]].env["software"] = ["Chrome", "WPS"]
    assert room.envcheck(retest_failed=True)["failed"] == 0
    assert room.seal_check()["passed"]
    assert EnvRun.select().count() == runs + 2, "the retest was against the exam's requirements: not again"


def test_seal_check_fails_with_offline_pcs_and_names_the_item(room, fleet, exam_files):
    room.configure(ROOM, "/tmp/answers-test", box_ip="127.0.0.1")
    room.seats_scan("ip")
    room.envcheck()
    pin_site(room, exam_files)
    room.exam_import(str(exam_files.package))
    verdict = room.seal_check()
    assert not verdict["passed"]
    failed = [i["key"] for i in verdict["items"] if not i["ok"]]
    assert failed == ["daemons"]


def test_a_room_sheet_pins_the_site_certificate_once_its_registration_code_holds(room, tmp_path):
    from kiosk.common.crypto import make_identity
    from kiosk.common.signed import write_room_sheet
    from kiosk.store.models import Event, SiteTrust

    site, stranger = make_identity("site"), make_identity("stranger")
    sheet = {"site_code": ROOM[:7], "site_name": "测试考点", "site_ip": "10.0.0.2", "room_code": ROOM,
             "sessions": [{"number": 1, "candidates": 40}], "issued_at": 1000.0}  # fmt: skip

    def file(signer, name: str, **changes) -> str:
        path = tmp_path / name
        path.write_bytes(write_room_sheet(signer, "ABCDEFGH", {**sheet, **changes}))
        return str(path)

    room.configure(ROOM, str(tmp_path / "answers"), box_ip="127.0.0.1")  # USB mode: no code stored

    def refused(code: str, *args, **kwargs) -> None:
        events = Event.select().count()
        with pytest.raises(Refused) as info:
            room.room_sheet_import(*args, **kwargs)
        assert info.value.code == code and info.value.zh
        assert Event.select().count() == events, "a refusal changes nothing"

    refused("registration_code_missing", file(site, "a.json"))
    refused("registration_code_wrong", file(site, "a.json"), registration_code="ABCDEFGX")
    refused("foreign_room", file(site, "b.json", room_code="1999999002"), registration_code="ABCDEFGH")
    assert SiteTrust.select().count() == 0

    loaded = room.room_sheet_import(file(site, "c.json"), registration_code="abcd efgh")  # as typed
    assert loaded["fingerprint"] == site.fingerprint and loaded["site_ip"] == "10.0.0.2"
    assert SiteTrust.get().cert_pem.encode() == site.cert_pem
    refused("site_key_changed", file(stranger, "d.json", issued_at=2000.0), registration_code="ABCDEFGH")
    refused("stale_sheet", file(site, "e.json", issued_at=500.0), registration_code="ABCDEFGH")
    events = Event.select().count()
    room.room_sheet_import(file(site, "c.json"), registration_code="ABCDEFGH")  # the same sheet again
    assert Event.select().count() == events, "importing the pinned sheet again changes nothing"
    newer = room.room_sheet_import(file(site, "f.json", issued_at=2000.0, site_ip="10.0.0.3"), "ABCDEFGH")
    assert newer["site_ip"] == "10.0.0.3" and SiteTrust.select().count() == 1

    room.init_box("888", keep_params_and_seats=False, confirm=True)
    assert SiteTrust.select().count() == 0, "initialising the box forgets the pinned site"


def test_interfaces_list_the_loopback_and_the_box_ip_is_chosen_among_them(room, monkeypatch, tmp_path):
    from kiosk.platform.netif import Interface
    from kiosk.services import before

    listed = room.interfaces()
    assert {"name": "lo", "ip": "127.0.0.1", "netmask": "255.0.0.0", "broadcast": ""} in [
        {**i, "broadcast": ""} for i in listed
    ]
    assert all(set(i) == {"name", "ip", "netmask", "broadcast"} for i in listed)
    # one network card besides the loopback: the box IP is taken by itself
    lo = Interface("lo", "127.0.0.1", "255.0.0.0", "")
    one = [lo, Interface("eth0", "192.168.0.2", "255.255.255.0", "192.168.0.255")]
    monkeypatch.setattr(before, "ipv4_interfaces", lambda include_loopback=False: one)
    assert [i["ip"] for i in room.interfaces()] == ["127.0.0.1", "192.168.0.2"]
    assert room.configure(ROOM, str(tmp_path / "answers"))["box_ip"] == "192.168.0.2"
    # two: the officer must choose, and only one of them
    two = [*one, Interface("wlan0", "10.0.0.7", "255.255.255.0", "10.0.0.255")]
    monkeypatch.setattr(before, "ipv4_interfaces", lambda include_loopback=False: two)
    with pytest.raises(Refused) as err:
        room.configure(ROOM, str(tmp_path / "answers"))
    assert err.value.code == "choose_box_ip"
    assert room.configure(ROOM, str(tmp_path / "answers"), box_ip="10.0.0.7")["box_ip"] == "10.0.0.7"
    with pytest.raises(Refused) as err:
        room.configure(ROOM, str(tmp_path / "answers"), box_ip="10.0.0.8")
    assert err.value.code == "box_ip_not_local"
    assert room.config().box_ip == "10.0.0.7"
