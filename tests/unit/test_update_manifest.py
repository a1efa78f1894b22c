"""The update package's rules (kiosk.core.update): versions, the manifest reader (any
JSON gives a Manifest whose every path stays inside the release, or a refusal; never
another exception) and who may install what."""

from __future__ import annotations

import copy
import posixpath
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.core.errors import Refused
from kiosk.core.update import (
    Manifest,
    check_installable,
    check_path,
    check_space,
    parse_version,
    read_manifest,
)

SHA = "ab" * 32


def body(**over: Any) -> dict[str, Any]:
    files = [
        {"path": "kiosk", "size": 3, "sha256": SHA, "mode": 0o755},
        {"path": "_internal/Kivy.libs/libSDL2.so", "size": 4, "sha256": SHA, "mode": 0o755},
        {"path": "_internal/base_library.zip", "size": 5, "sha256": SHA, "mode": 0o644},
    ]
    b = {
        "product": "proctor-box",
        "version": "0.2.0",
        "built_at": 1750000000.0,
        "min_from": None,
        "files": files,
        "links": [{"path": "_internal/libSDL2.so", "target": "Kivy.libs/libSDL2.so"}],
        "payload_size": 12,
        "payload_sha256": SHA,
    }
    b.update(over)
    return b


def refused(code: str, fn, *args) -> Refused:  # type: ignore[no-untyped-def]
    with pytest.raises(Refused) as info:
        fn(*args)
    assert info.value.code == code, info.value
    return info.value


def test_a_good_manifest_reads_with_its_folders_parents_first() -> None:
    m = read_manifest(body())
    assert (m.product, m.version, m.min_from, m.payload_size) == ("proctor-box", "0.2.0", None, 12)
    assert m.files[0].path == "kiosk"
    assert m.folders() == ["_internal", "_internal/Kivy.libs"]


@pytest.mark.parametrize("text", ["1.2.3", "0.0.0", "10.20.300"])
def test_versions_are_three_numbers(text: str) -> None:
    assert ".".join(map(str, parse_version(text))) == text


@pytest.mark.parametrize(
    "text", ["1.2", "1.2.3.4", "01.2.3", "1.2.3rc1", " 1.2.3", "1.2.3\n", "", None, 1, "1..3", "../x"]
)
def test_other_versions_are_refused(text: object) -> None:
    refused("bad_version", parse_version, text)


def test_versions_compare_as_numbers() -> None:
    assert parse_version("0.10.0") > parse_version("0.9.9")


@pytest.mark.parametrize(
    "path",
    [
        "../x",
        "a/../../x",
        "/etc/passwd",
        "a//b",
        "./a",
        "a/.",
        "",
        "a\\b",
        "a\x00b",
        "a\nb",
        "\udc80",
        "x" * 256,
    ],
)
def test_paths_outside_the_release_are_refused(path: str) -> None:
    refused("package_invalid", check_path, path)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("product", ""),
        ("product", 5),
        ("built_at", float("inf")),
        ("built_at", True),
        ("files", []),
        ("files", {}),
        ("links", None),
        ("payload_size", 13),
        ("payload_size", True),
        ("payload_sha256", "AB" * 32),
        ("payload_sha256", SHA[:-1]),
    ],
)
def test_malformed_fields_are_refused(field: str, value: object) -> None:
    refused("package_invalid", read_manifest, body(**{field: value}))


@pytest.mark.parametrize(("key", "value"), [("size", -1), ("size", True), ("size", 2**40), ("mode", 0o4755),
                                           ("mode", "755"), ("sha256", None), ("path", None)])  # fmt: skip
def test_malformed_file_entries_are_refused(key: str, value: object) -> None:
    b = body()
    b["files"][1][key] = value
    refused("package_invalid", read_manifest, b)


@pytest.mark.parametrize(
    ("target", "ok"),
    [("Kivy.libs/libSDL2.so", True), ("../kiosk", True), ("./Kivy.libs/libSDL2.so", False),
     ("Kivy.libs/../base_library.zip", False), ("Kivy.libs//libSDL2.so", False), ("../../kiosk", False),
     ("/kiosk", False), ("", False), ("..", False), ("Kivy.libs", False)],
)  # fmt: skip
def test_link_targets_are_plain_relative_paths_to_a_file(target: str, ok: bool) -> None:
    b = body(links=[{"path": "_internal/l", "target": target}])
    if ok:
        assert read_manifest(b).links[0].target == target
    else:
        refused("package_invalid", read_manifest, b)


def test_the_version_fields_are_checked() -> None:
    refused("bad_version", read_manifest, body(version="latest"))
    refused("bad_version", read_manifest, body(min_from="0.1"))
    assert read_manifest(body(min_from="0.1.0")).min_from == "0.1.0"


@pytest.mark.parametrize(
    ("installed", "code"),
    [
        ("0.2.0", "already_installed"),
        ("0.3.0", "downgrade"),
        ("1.0.0", "downgrade"),
        ("0.0.9", "too_old_to_update"),
    ],
)
def test_who_may_install_what(installed: str, code: str) -> None:
    m = read_manifest(body(min_from="0.1.0"))
    refused(code, check_installable, m, installed)
    check_installable(m, "0.1.0")
    check_installable(m, "0.1.9")


def test_another_product_or_a_package_without_the_program_is_refused() -> None:
    refused("foreign_product", check_installable, read_manifest(body(product="stu-client")), "0.1.0")
    b = body()
    b["files"][0]["mode"] = 0o644
    refused("package_invalid", check_installable, read_manifest(b), "0.1.0")


def test_space_is_checked_in_megabytes() -> None:
    e = refused("no_space", check_space, 200 * 1024**2, 100 * 1024**2)
    assert "200 MB" in e.zh and "100 MB" in e.zh
    check_space(10, 10)


# -- fuzzing ------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
path_text = st.one_of(
    st.sampled_from(
        ["kiosk", "../x", "/x", "a/b", "a/../b", "_internal", "_internal/x", ".", "", "a//b", "Kivy.libs/l"]
    ),
    st.text(alphabet="ab./\\\x00", max_size=8),
)


def _inside(m: Manifest) -> None:
    """What the installer relies on, for every manifest the reader lets through."""
    leaves = [e.path for e in (*m.files, *m.links)]
    assert len(set(leaves)) == len(leaves)
    for p in leaves:
        assert not p.startswith("/") and ".." not in p.split("/") and posixpath.normpath(p) == p
        parent = posixpath.dirname(p)
        while parent:
            assert parent not in leaves
            parent = posixpath.dirname(parent)
    files = {f.path for f in m.files}
    for link in m.links:
        assert posixpath.normpath(posixpath.join(posixpath.dirname(link.path), link.target)) in files
    assert m.payload_size == sum(f.size for f in m.files)
    assert all(0 <= f.mode <= 0o777 for f in m.files)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_is_a_manifest_or_a_refusal(value: object) -> None:
    try:
        _inside(read_manifest(value))
    except Refused as exc:
        assert exc.code in ("package_invalid", "bad_version")


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(
        ["product", "version", "built_at", "min_from", "files", "links", "payload_size", "payload_sha256"]
    ),
    json_values,
    st.lists(st.tuples(path_text, path_text), max_size=3),
    st.lists(path_text, max_size=3),
)
def test_a_mutated_manifest_is_a_safe_manifest_or_a_refusal(
    field: str, value: object, links: list[tuple[str, str]], extra_files: list[str]
) -> None:
    b = copy.deepcopy(body())
    b[field] = value
    if isinstance(b.get("links"), list):
        b["links"] = [*b["links"], *({"path": p, "target": t} for p, t in links)]
    if isinstance(b.get("files"), list):
        b["files"] = [
            *b["files"],
            *({"path": p, "size": 0, "sha256": SHA, "mode": 0o644} for p in extra_files),
        ]
    try:
        _inside(read_manifest(b))
    except Refused as exc:
        assert exc.code in ("package_invalid", "bad_version")
