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


def test_every_field_the_touch_app_offers_has_a_chinese_hint_not_a_command_line_one() -> None:
    import re

    from kiosk.services.registry import OPERATIONS

    for op in OPERATIONS:
        for p in op.params:
            hint = vm.field_hint(op.verb, p.name, p.help)
            assert re.search(r"[\u4e00-\u9fff]", hint), (op.verb, p.name, hint)
            assert " / " not in hint and "不加" not in hint, (op.verb, p.name, hint)
    assert vm.field_hint("violation-add", "code", "") == "违纪代码（如 A101）"
    assert vm.field_hint("allow-start", "code", "延考授权码") == "延考授权码"


def test_the_services_refusal_says_which_step_of_the_dialog_comes_next() -> None:
    start = vm.flow("allow-start", ["code"])
    step = vm.step_for(start, "late_start_code_needed")
    assert isinstance(step, vm.CodeStep) and step.purpose == "late_start" and not step.per_candidate
    assert vm.step_for(start, "code_wrong") is None  # an error, shown as it is
    resume = vm.flow("resume", ["admission_nos", "code", "confirm_online"])
    assert isinstance(vm.step_for(resume, "confirm_online"), vm.ConfirmStep)
    assert vm.step_for(resume, "late_candidate_code_needed").purpose == "late_candidate"
    reexam = vm.flow("reexam", [])
    assert vm.step_for(reexam, "reexam_code_needed").per_candidate
    assert vm.step_for(reexam, "confirm_needed").flag == "confirm"
    assert vm.step_for(vm.flow("init-box", []), "confirm_needed").times == 2
    generic = vm.flow("seats-delete", ["number", "confirm"])  # any confirm flag: asked once
    assert generic.later == ("confirm",) and vm.step_for(generic, "confirm_needed").times == 1
    assert vm.flow("find", ["query"]) == vm.Flow()
    assert dict(vm.flow("init-box", []).defaults) == {"keep_params_and_seats": True}  # the safe default


def test_the_challenge_reads_out_in_groups_with_the_candidate_and_seconds_for_extra_time() -> None:
    ch = {"purpose": "extra_time", "room_code": "1999999001", "session": 1, "challenge": "123456"}
    assert vm.challenge_rows(ch, {"admission_no": "1901", "seconds": 700}) == [
        ("考场代码", "1999999001"), ("当前场次", "1"), ("准考证号", "1901"), ("补时时长", "700 秒"),
        ("申请码", "123 456"),
    ]  # fmt: skip
    late = vm.challenge_rows({**ch, "purpose": "late_start"}, {})
    assert [k for k, _v in late] == ["考场代码", "当前场次", "申请码"]


def test_the_confirmation_states_what_will_be_erased_and_asks_again_where_the_manual_does() -> None:
    said = "初始化监考机会清除考务数据、授权和作答，需要确认"
    keep = vm.confirm_text("init-box", {"keep_params_and_seats": True}, said, 1, 2)
    wipe = vm.confirm_text("init-box", {"keep_params_and_seats": False}, said, 1, 2)
    assert said in keep and "将保留" in keep and "一并清除" in wipe
    assert "再次确认" in vm.confirm_text("init-box", {}, said, 2, 2)
    pcs = vm.confirm_text(
        "init-pcs", {"ips": ["10.0.0.5"], "uninstall": True}, "初始化考试机会清除考生数据", 1, 2
    )
    assert "10.0.0.5" in pcs and "卸载考生端" in pcs
    reexam = vm.confirm_text(
        "reexam", {}, "对考生 1901 执行重考操作，会清除科目 T01 的作答记录，且无法恢复，请确认", 1, 1
    )
    assert reexam.endswith("且无法恢复。\n请确认要执行重考操作吗？")
    assert (
        vm.confirm_text("seats-delete", {}, "删除机位需要确认", 1, 1) == "删除机位需要确认。\n确定要继续吗？"
    )
    assert "全部考生作答" in keep.splitlines()[1]


def test_the_answer_puts_the_services_own_sentence_first() -> None:
    def human(v: object) -> str:
        return repr(v)

    answer = vm.answer_text({"message": "补时成功：实际补时 200 秒。", "granted_s": 200}, human)
    assert answer.splitlines() == ["补时成功：实际补时 200 秒。", "{'granted_s': 200}"]
    assert vm.answer_text(None, human) == "完成" and vm.answer_text({"ok": True}, human) == "{'ok': True}"
    long = vm.answer_text(list(range(100)), lambda v: "\n".join(map(str, v)), max_lines=10)
    assert long.splitlines()[:10] == [str(n) for n in range(10)] and "另有 90 行" in long.splitlines()[10]


def test_a_re_exam_ticks_the_candidates_own_subjects_by_name() -> None:
    status = {
        "exam": {"subjects": {"T01": "理论知识", "P01": "操作技能"}},
        "session": {"candidates": [cand("1", "001", "in_exam", subjects=["T01", "P01"])]},
    }
    assert vm.subject_choices(status, "1") == [("理论知识", "T01"), ("操作技能", "P01")]
    assert vm.subject_choices(status, "2") == [] and vm.subject_choices({}, "1") == []
    assert vm.toggle_item("T01", "P01") == "T01,P01" and vm.toggle_item("T01，P01", "T01") == "P01"
    assert vm.list_items(" a ,，b,") == ["a", "b"]


def test_only_the_seats_whose_view_changed_are_redrawn() -> None:
    status = {
        "seats": [{"number": n, "ip": f"10.0.0.{n}", "online": True} for n in range(1, 151)],
        "session": {"candidates": [cand(str(n), f"{n:03d}", "logged_in") for n in range(1, 151)]},
    }
    before = [(c, False) for c in vm.seat_cells(status)]
    assert vm.changed_at(before, list(before)) == []  # a status read that changed nothing
    status["session"]["candidates"][41]["locked"] = True
    status["session"]["candidates"][99]["state"] = "in_exam"
    after = [(c, c.seat == "007") for c in vm.seat_cells(status)]  # and seat 7 ticked
    assert vm.changed_at(before, after) == [6, 41, 99]
    assert vm.changed_at(None, after) is None  # nothing drawn yet: all of them
    assert vm.changed_at(before[:149], after) is None  # a seat added or deleted: all of them


def test_a_required_field_left_empty_is_named_as_the_form_shows_it() -> None:
    from kiosk.services.registry import BY_VERB

    resume = BY_VERB["resume"]
    assert vm.missing_fields(resume, {"admission_nos": ["1"], "handler": "李四"}) == [
        "异常情况类型",
        "异常描述",
    ]
    assert vm.missing_fields(BY_VERB["end"], {"password": "888"}) == []
    assert vm.missing_fields(BY_VERB["absent"], {"admission_nos": []}) == ["准考证号"]


def test_a_long_phrase_is_shortened_with_an_ellipsis():
    assert vm.shortened("携带通讯工具、规定以外的电子用品", 8) == "携带通讯工具、…"
    assert vm.shortened("与他人交谈", 8) == "与他人交谈"
