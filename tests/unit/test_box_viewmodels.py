"""The proctor box's view models: the seat grid, the grid's shape, the wizard, the stats."""

from __future__ import annotations

from typing import Any

from kiosk.ui import viewmodels as vm


def cand(no: str, seat: str, state: str, **flags: Any) -> dict[str, Any]:
    return {"admission_no": no, "name": f"考生{no}", "seat": seat, "state": state, "state_zh": state,
            "online": True, "extra_s": 0, **flags}  # fmt: skip


def test_each_seat_shows_its_candidate_state_and_marks() -> None:
    status = {
        "seats": [{"number": n, "ip": f"10.0.0.{n}", "online": n != 3} for n in (1, 2, 3)],
        "session": {"candidates": [
            cand("1", "001", "in_exam", locked=True, extra_s=60),
            cand("2", "002", "in_exam", online=False, hand_raised=True),
        ]},
    }  # fmt: skip
    one, two, three = vm.seat_cells(status)
    assert (one.seat, one.name, one.flags, one.colour) == (
        "001",
        "考生1",
        ("锁屏", "补时"),
        vm.STATE_COLOURS["in_exam"],
    )
    assert two.flags == ("离线", "举手") and two.colour == vm.STATE_COLOURS["offline"]
    assert (three.admission_no, three.state_zh, three.flags) == ("", "未登录", ("离线",))


def test_a_150_seat_room_fits_a_1920_by_1080_screen_without_scrolling() -> None:
    cols = vm.grid_columns(150, 1740, 600)
    rows = -(-150 // cols)
    assert 600 / rows >= 56 and 1740 / cols >= 96  # every tile still a comfortable touch target


def test_later_wizard_steps_open_only_after_the_earlier_ones() -> None:
    steps = vm.wizard_steps({"params": True, "seats": False, "envcheck": False})
    assert [(key, done, open_) for _n, key, _t, done, open_ in steps] == [
        ("params", True, True), ("seats", False, True), ("envcheck", False, False),
        ("exam", False, False), ("seal", False, False),
    ]  # fmt: skip


def test_the_stats_bar_counts_in_the_manuals_order() -> None:
    stats = vm.stats({"session": {"counts": {"expected": 40, "in_exam": 38, "offline": 1}}})
    assert [zh for _k, zh, _n in stats][:3] == ["应考", "已登录", "考试中"]
    assert dict((k, n) for k, _zh, n in stats)["in_exam"] == 38
    assert vm.remaining_text(3661.2) == "01:01:02" and vm.remaining_text(None) == "--:--:--"


def test_a_report_written_as_html_reads_as_lines_on_the_screen() -> None:
    html = (
        "<html><style>td{x:y}</style><body><h1>考场情况记录单</h1><p>考场代码 1999999001</p>"
        "<table><tr><th>姓名</th><th>准考证号</th></tr><tr><td>张89</td><td>1903</td></tr></table></body></html>"
    )
    assert vm.html_text(html).splitlines() == [
        "考场情况记录单",
        "考场代码 1999999001",
        "姓名  准考证号",
        "张89  1903",
    ]
