"""The Chinese rendering of ctl results."""

from __future__ import annotations

from kiosk.ctl_text import fmt_time, human, status_text


def test_fields_flags_and_times_read_in_chinese():
    text = human({"room_code": "1999999001", "online": True, "saved_at": 0.0, "added": [1, 2]})
    assert text.splitlines() == [
        "考场代码: 1999999001",
        "在线: 是",
        f"保存时间: {fmt_time(0.0)}",
        "新增机位:",
        "  1, 2",
    ]


def test_the_status_screen_lists_counts_and_candidates():
    st = {
        "box_time": 0.0,
        "config": {"room_code": "1999999001", "box_ip": "127.0.0.1"},
        "wizard": {"params": True, "seats": True, "envcheck": False, "exam": False, "seal": False},
        "seats": [{"online": True}, {"online": False}],
        "user": {"default_password": True},
        "session": {
            "number": 1,
            "name": "第一场次",
            "state_zh": "考试中",
            "scheduled_start": 0.0,
            "remaining_s": 3661,
            "counts": dict(
                expected=1,
                logged_in=0,
                in_exam=1,
                submitted=0,
                absent=0,
                violations=1,
                resumes=0,
                extra_time=0,
                offline=0,
                hands=0,
            ),
            "candidates": [
                dict(
                    seq=1,
                    admission_no="190119999990011001",
                    name="张三",
                    seat="001",
                    state_zh="考试中",
                    online=True,
                    remaining_s=3661,
                    offline_s=0,
                    violation=True,
                    resumed=False,
                    extra_s=0,
                    locked=True,
                    hand_raised=False,
                )
            ],
        },
    }
    text = status_text(st)
    assert "✓1参数  ✓2机位  ·3环境" in text and "机位 2 台，在线 1 台" in text
    assert "仍在使用默认密码" in text and "剩余 01:01:01" in text
    assert "190119999990011001" in text and text.rstrip().endswith("违锁")


def test_the_status_screen_shows_the_site_link_in_site_mode():
    st = {
        "box_time": 0.0,
        "config": {"room_code": "1999999001", "box_ip": "127.0.0.1"},
        "site_link": {
            "site_mode": True,
            "site_ip": "10.0.0.5",
            "state": "unreachable",
            "state_zh": "无法连接",
        },
        "wizard": {"params": True},
        "seats": [],
        "user": {"default_password": False},
        "session": None,
    }
    assert "考点 10.0.0.5 无法连接" in status_text(st)
    st["site_link"] = {"site_mode": False, "site_ip": "", "state": "off", "state_zh": "单机模式"}
    assert "考点" not in status_text(st)
