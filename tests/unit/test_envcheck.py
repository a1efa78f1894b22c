"""Judging an exam PC's environment report; the report is untrusted input."""

from __future__ import annotations

import pytest

from kiosk.core.envcheck import MALFORMED, MISSING, EnvItem, Requirements, env_passed, judge_env

REQ = Requirements(required_software=("Chrome", "WPS"), min_daemon_version="1.2")
GOOD: dict[str, object] = {
    "os": "Windows 10 Pro 22H2",
    "cpu_cores": 4,
    "memory_mb": 8192,
    "free_disk_mb": 51200,
    "screen": "1920x1080",
    "software": ["chrome", "WPS", "Notepad"],
    "daemon_version": "1.4.0",
    "clock_skew_s": -0.3,
    "rtt_ms": 2.5,
    "virtual_machine": False,
    "remote_control": [],
}


def items(report: object, req: Requirements = REQ) -> dict[str, EnvItem]:
    return {i.key: i for i in judge_env(report, req)}  # type: ignore[arg-type]


def failed(report: object, req: Requirements = REQ) -> set[str]:
    return {k for k, i in items(report, req).items() if not i.ok}


def test_a_good_report_passes_every_item():
    result = judge_env(GOOD, REQ)
    assert env_passed(result)
    assert len(result) == 11
    assert all(i.label_zh and i.required for i in result)


def test_the_values_are_shown_readably():
    shown = {k: i.value for k, i in items(GOOD).items()}
    assert shown["memory_mb"] == "8192 MB"
    assert shown["screen"] == "1920x1080"
    assert shown["software"] == "齐全"
    assert shown["clock_skew_s"] == "-0.3 秒"


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"os": "Darwin 23.1"}, "os"),
        ({"cpu_cores": 1}, "cpu_cores"),
        ({"memory_mb": 2048}, "memory_mb"),
        ({"free_disk_mb": 1000}, "free_disk_mb"),
        ({"screen": "1024x600"}, "screen"),
        ({"screen": [800, 768]}, "screen"),
        ({"software": ["Chrome"]}, "software"),
        ({"daemon_version": "1.1.9"}, "daemon_version"),
        ({"clock_skew_s": 6.0}, "clock_skew_s"),
        ({"rtt_ms": 250}, "rtt_ms"),
        ({"remote_control": ["TeamViewer.exe"]}, "remote_control"),
    ],
)
def test_a_value_below_the_requirement_fails_only_its_item(change, key):
    assert failed(GOOD | change) == {key}


def test_the_missing_software_is_named():
    assert items(GOOD | {"software": ["Chrome"]})["software"].value == "缺少：WPS"


def test_a_found_remote_control_program_is_named():
    item = items(GOOD | {"remote_control": ["TeamViewer.exe"]})["remote_control"]
    assert "TeamViewer.exe" in item.value


def test_a_virtual_machine_fails_only_when_forbidden():
    vm = GOOD | {"virtual_machine": True}
    assert failed(vm) == set()
    assert failed(vm, Requirements(required_software=("WPS",), forbid_vm=True)) == {"virtual_machine"}


def test_a_screen_given_as_a_pair_is_accepted():
    assert failed(GOOD | {"screen": [1366, 768]}) == set()


def test_a_missing_key_gives_a_failed_item_that_says_missing():
    report = dict(GOOD)
    del report["memory_mb"]
    item = items(report)["memory_mb"]
    assert (item.ok, item.value) == (False, MISSING)


@pytest.mark.parametrize(
    ("key", "bad"),
    [
        ("os", 42),
        ("cpu_cores", "four"),
        ("cpu_cores", True),
        ("cpu_cores", 2.5),
        ("cpu_cores", 10**400),
        ("memory_mb", float("nan")),
        ("memory_mb", -1),
        ("screen", "wide"),
        ("screen", [1920]),
        ("screen", [1920, 10**6]),
        ("software", "Chrome"),
        ("software", ["Chrome", 3]),
        ("daemon_version", "beta"),
        ("clock_skew_s", float("inf")),
        ("rtt_ms", {"avg": 3}),
        ("virtual_machine", "no"),
        ("remote_control", None),
    ],
)
def test_a_malformed_value_gives_a_failed_item_never_an_exception(key, bad):
    item = items(GOOD | {key: bad})[key]
    assert not item.ok
    assert item.value in (MALFORMED, MISSING)


def test_a_report_that_is_not_an_object_fails_every_item_as_missing():
    result = judge_env("garbage", REQ)  # type: ignore[arg-type]
    assert {i.value for i in result} == {MISSING}
    assert not env_passed(result)


def test_a_huge_value_is_cut_short_in_the_table():
    item = items(GOOD | {"os": "Windows" + "x" * 10_000})["os"]
    assert len(item.value) <= 80


def test_any_os_is_allowed_when_no_prefix_is_required():
    assert failed(GOOD | {"os": "Plan 9"}, Requirements(allowed_os_prefixes=())) == set()
    assert failed(GOOD | {"os": "Plan 9"}, Requirements()) == {"os"}


def test_no_items_never_count_as_passed():
    assert env_passed(()) is False
