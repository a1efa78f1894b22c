"""Offline updates of the box app (kiosk/update): real packages on disk signed with a
real key, installed into a temporary app folder; every refusal leaves the folder byte
for byte as it was; a crash at each step (raised, or SIGKILL of a real process) leaves
`current` at a complete release; the real launcher script picks the right program and
falls back from a release that does not come up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from kiosk.common.crypto import make_identity
from kiosk.common.errors import Refused
from kiosk.common.signed import seal
from kiosk.core.update import UPDATE_FORMAT
from kiosk.store.models import Event, Session
from kiosk.update.install import STEPS, AppLayout, install, mark_started, status
from kiosk.update.package import trusted_certs
from kiosk.usb.listing import list_stick
from tests.update_kit import fake_dist, make_package, tree, trust, vendor_key

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = ROOT / "image" / "files" / "usr" / "local" / "lib" / "kiosk" / "launch"


class Box:
    """A box's app folder, its trusted keys and its room data, in a temporary folder."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.layout = AppLayout(tmp / "data" / "app")
        self.keys = tmp / "update-keys"
        trust(self.keys)
        self.room = tmp / "data" / "room"
        self.room.mkdir(parents=True)
        (self.room / "room.db").write_bytes(b"the room's database")

    def install(self, package: Path, running: str = "0.1.0", **kw: object) -> object:
        kw.setdefault("margin_bytes", 1024**2)
        return install(package, self.layout, trusted_certs(self.keys), running, **kw)  # type: ignore[arg-type]

    def state(self) -> dict[str, tuple[str, str]]:
        return tree(self.tmp / "data")

    def current_tree(self) -> dict[str, tuple[str, str]]:
        return tree(self.layout.current.resolve())


@pytest.fixture
def box(tmp_path: Path) -> Box:
    return Box(tmp_path)


def files_of(t: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """Files and links of a tree (folder modes aside: the installer makes its own)."""
    return {k: v for k, v in t.items() if v[0] != "dir"}


def refused(code: str, fn, *args, **kwargs) -> Refused:  # type: ignore[no-untyped-def]
    with pytest.raises(Refused) as info:
        fn(*args, **kwargs)
    assert info.value.code == code, info.value
    assert info.value.zh and not info.value.zh.isascii(), "the officer is told why, in Chinese"
    return info.value


# -- the round trip ---------------------------------------------------------------------


def test_a_package_installs_a_release_that_runs_and_keeps_one_previous(box: Box) -> None:
    work = box.tmp / "vendor"
    room_before = tree(box.room)
    pkg = make_package(work, "0.2.0")
    assert pkg.name == "kiosk-update-0.2.0.kup"
    assert pkg.read_bytes().startswith(b'{"format":"app-update"')
    done = box.install(pkg)
    assert (done.version, done.previous, done.files) == ("0.2.0", None, 6)  # type: ignore[attr-defined]
    assert os.readlink(box.layout.current) == "releases/0.2.0"
    assert not os.path.lexists(box.layout.previous), "the image's app is the fallback"
    assert files_of(box.current_tree()) == files_of(tree(work / "dist-0.2.0"))
    run = subprocess.run(
        [box.layout.current / "kiosk", "--self-test"], capture_output=True, text=True, check=True
    )
    assert run.stdout == "kiosk 0.2.0 --self-test\n"

    box.install(make_package(work, "0.3.0"))
    assert (os.readlink(box.layout.current), os.readlink(box.layout.previous)) == (
        "releases/0.3.0",
        "releases/0.2.0",
    )
    box.install(make_package(work, "0.4.0"))
    assert sorted(os.listdir(box.layout.releases)) == ["0.3.0", "0.4.0"], "at most two releases kept"
    assert status(box.layout, "0.1.0") == {
        "running_version": "0.1.0",
        "current_release": "0.4.0",
        "previous_release": "0.3.0",
        "releases": ["0.3.0", "0.4.0"],
        "app_dir": str(box.layout.root),
    }
    assert files_of(box.current_tree()) == files_of(tree(work / "dist-0.4.0"))
    assert tree(box.room) == room_before, "the room's data is never touched"


def test_a_second_trusted_key_is_accepted(box: Box) -> None:
    other = make_identity("second update key")
    trust(box.keys, other, "second.crt")
    assert box.install(make_package(box.tmp / "v", "0.2.0", key=other)).version == "0.2.0"  # type: ignore[attr-defined]


def test_the_stick_listing_offers_the_update_operation(box: Box) -> None:
    stick = box.tmp / "stick"
    pkg = make_package(stick, "0.2.0")
    [found] = [p for p in list_stick(stick).packages if p.path == pkg]
    assert (found.kind, found.operation) == ("app-update", "update_install")


# -- refusals: nothing changes ------------------------------------------------------------


@pytest.fixture
def installed(box: Box) -> Box:
    """A box with release 0.2.0 installed (so that "unchanged" has something to keep)."""
    box.install(make_package(box.tmp / "base", "0.2.0"))
    return box


def unchanged(box: Box, code: str, package: Path, running: str = "0.1.0", **kw: object) -> Refused:
    before = box.state()
    exc = refused(code, box.install, package, running, **kw)
    assert box.state() == before, f"{code}: the data partition changed"
    return exc


def test_a_changed_byte_anywhere_is_refused(installed: Box) -> None:
    good = make_package(installed.tmp / "v", "0.3.0")
    raw = good.read_bytes()
    header = raw.index(b"\n") + 1
    # Every byte of the signed manifest line, and payload bytes spread over the whole file.
    positions = sorted(
        {*range(0, header, 7), header - 1, header, len(raw) - 1, *range(header, len(raw), 4099)}
    )
    bad = installed.tmp / "bad.kup"
    before = installed.state()
    codes = set()
    for pos in positions:
        data = bytearray(raw)
        data[pos] ^= 0x20
        bad.write_bytes(bytes(data))
        with pytest.raises(Refused) as info:
            installed.install(bad)
        codes.add(info.value.code)
    assert codes <= {"package_invalid", "bad_signature", "foreign_signer", "package_damaged"}, codes
    assert {"bad_signature", "package_damaged"} <= codes
    assert installed.state() == before
    assert len(positions) > 100


def test_a_signature_from_another_package_is_refused(installed: Box) -> None:
    a = make_package(installed.tmp / "a", "0.3.0")
    b = make_package(installed.tmp / "b", "0.4.0")
    env_a, rest_a = a.read_bytes().split(b"\n", 1)
    env_b = json.loads(b.read_bytes().split(b"\n", 1)[0])
    doc = json.loads(env_a)
    doc["sig"] = env_b["sig"]
    swapped = installed.tmp / "swapped.kup"
    swapped.write_bytes(json.dumps(doc, separators=(",", ":")).encode() + b"\n" + rest_a)
    unchanged(installed, "bad_signature", swapped)


def test_a_package_signed_by_an_untrusted_key_is_refused(installed: Box) -> None:
    stranger = make_identity("not the vendor")
    unchanged(installed, "foreign_signer", make_package(installed.tmp / "x", "0.3.0", key=stranger))


def test_no_trusted_key_refuses_every_package(box: Box) -> None:
    refused("update_keys_missing", trusted_certs, box.tmp / "no-keys")
    (box.tmp / "empty-keys").mkdir()
    refused("update_keys_missing", trusted_certs, box.tmp / "empty-keys")


@pytest.mark.parametrize("cut", ["empty", "in-header", "after-header", "mid-payload", "last-byte"])
def test_a_truncated_package_is_refused(installed: Box, cut: str) -> None:
    raw = make_package(installed.tmp / "v", "0.3.0").read_bytes()
    header = raw.index(b"\n") + 1
    keep = {"empty": 0, "in-header": header // 2, "after-header": header,
            "mid-payload": (header + len(raw)) // 2, "last-byte": len(raw) - 1}[cut]  # fmt: skip
    short = installed.tmp / "short.kup"
    short.write_bytes(raw[:keep])
    code = "package_invalid" if keep < header else "package_damaged"
    unchanged(installed, code, short)


def test_bytes_appended_to_a_package_are_refused(installed: Box) -> None:
    pkg = make_package(installed.tmp / "v", "0.3.0")
    with pkg.open("ab") as f:
        f.write(b"#!/bin/sh\n")
    unchanged(installed, "package_damaged", pkg)


def test_older_same_and_too_old_versions_and_other_products_are_refused(installed: Box) -> None:
    work = installed.tmp / "v"
    unchanged(installed, "already_installed", make_package(work / "a", "0.2.0"))  # the release installed
    unchanged(installed, "downgrade", make_package(work / "b", "0.1.5"))
    e = unchanged(installed, "too_old_to_update", make_package(work / "c", "0.5.0", min_from="0.3.0"))
    assert "0.2.0" in e.zh and "0.3.0" in e.zh
    from kiosk.update.package import pack

    client = pack(
        fake_dist(work / "client", "0.9.0"), vendor_key(), work / "client-out", product="stu-client"
    )
    unchanged(installed, "foreign_product", client)


def test_the_running_version_counts_when_no_release_is_installed(box: Box) -> None:
    pkg = make_package(box.tmp / "v", "0.2.0")
    unchanged(box, "already_installed", pkg, running="0.2.0")
    unchanged(box, "downgrade", pkg, running="1.0.0")


def test_too_little_free_space_is_refused(installed: Box) -> None:
    e = unchanged(installed, "no_space", make_package(installed.tmp / "v", "0.3.0"), margin_bytes=2**62)
    assert "MB" in e.zh


def test_files_that_are_no_update_package_are_refused(installed: Box) -> None:
    other = installed.tmp / "exam-package.json"
    other.write_bytes(seal(vendor_key(), "exam-package", {"exam": {}}) + b"\n")
    unchanged(installed, "package_invalid", other)
    noise = installed.tmp / "noise.kup"
    noise.write_bytes(os.urandom(4096))
    unchanged(installed, "package_invalid", noise)
    unchanged(installed, "file_not_found", installed.tmp / "gone.kup")
    unchanged(installed, "package_invalid", installed.tmp)  # a folder
    os.mkfifo(installed.tmp / "fifo.kup")
    # A FIFO is not opened for reading (it would block): only a regular file is read.
    unchanged(installed, "package_invalid", installed.tmp / "fifo.kup")


def _evil(box: Box, files: list[dict[str, object]], links: list[dict[str, str]]) -> Path:
    """A package signed with the trusted key whose manifest tries to escape the release."""
    payload = b"".join(f.pop("data") for f in files)  # type: ignore[misc]
    import hashlib

    body = {
        "product": "proctor-box", "version": "0.3.0", "built_at": 1.0, "min_from": None,
        "files": files, "links": links, "payload_size": len(payload),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
    }  # fmt: skip
    path = box.tmp / "evil.kup"
    path.write_bytes(seal(vendor_key(), UPDATE_FORMAT, body) + b"\n" + payload)
    return path


def _file(path: str, data: bytes = b"#!/bin/sh\n", mode: int = 0o755) -> dict[str, object]:
    import hashlib

    return {
        "path": path,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "mode": mode,
        "data": data,
    }


@pytest.mark.parametrize(
    ("files", "links"),
    [
        ([_file("kiosk"), _file("../x")], []),
        ([_file("kiosk"), _file("lib/../../x")], []),
        ([_file("kiosk"), _file("/tmp/x")], []),
        ([_file("kiosk"), _file("lib//x")], []),
        ([_file("kiosk"), _file("lib\\..\\x")], []),
        ([_file("kiosk"), _file("kiosk")], []),  # twice: the second would overwrite the first
        ([_file("kiosk")], [{"path": "x", "target": "../../../etc/passwd"}]),
        ([_file("kiosk")], [{"path": "x", "target": "/etc/passwd"}]),
        ([_file("kiosk")], [{"path": "lib", "target": "."}]),  # a link to a folder
        ([_file("kiosk"), _file("lib/x")], [{"path": "lib", "target": "kiosk"}]),  # written through a link
        ([_file("kiosk"), _file("kiosk/x")], []),  # a file below a file
        ([_file("kiosk")], [{"path": "kiosk", "target": "kiosk"}]),
    ],
    ids=["dotdot", "inner-dotdot", "absolute", "empty-part", "backslash", "twice", "link-out",
         "link-absolute", "link-to-folder", "through-link", "below-file", "link-over-file"],
)  # fmt: skip
def test_entries_escaping_the_release_are_refused(
    installed: Box, files: list[dict[str, object]], links: list[dict[str, str]]
) -> None:
    unchanged(installed, "package_invalid", _evil(installed, [dict(f) for f in files], links))
    assert not (installed.tmp / "x").exists() and not (installed.tmp / "data" / "x").exists()


def test_a_package_without_the_program_is_refused(installed: Box) -> None:
    unchanged(installed, "package_invalid", _evil(installed, [_file("kiosk", mode=0o644)], []))
    unchanged(installed, "package_invalid", _evil(installed, [_file("other")], []))


def test_a_stick_changed_while_unpacking_leaves_nothing(installed: Box) -> None:
    """The payload is hashed before unpacking and again as each file is written: a file
    swapped between the two reads is caught, and what was unpacked is removed."""
    pkg = make_package(installed.tmp / "v", "0.3.0")
    raw = pkg.read_bytes()
    before = installed.state()

    def swap(step: str) -> None:
        assert step == "checked"
        pkg.write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))

    refused("package_damaged", installed.install, pkg, hook=swap)
    assert installed.state() == before
    assert os.readlink(installed.layout.current) == "releases/0.2.0"


# -- a crash at every step ----------------------------------------------------------------


class Crash(Exception):
    pass


@pytest.mark.parametrize("step", STEPS)
def test_a_crash_at_any_step_leaves_current_at_a_complete_release(installed: Box, step: str) -> None:
    work = installed.tmp / "v"
    pkg = make_package(work, "0.3.0")
    old, new = files_of(tree(installed.tmp / "base" / "dist-0.2.0")), files_of(tree(work / "dist-0.3.0"))

    def hook(name: str) -> None:
        if name == step:
            raise Crash(name)

    with pytest.raises(Crash):
        installed.install(pkg, hook=hook)
    assert files_of(installed.current_tree()) in (old, new)
    switched = STEPS.index(step) >= STEPS.index("switched")
    assert files_of(installed.current_tree()) == (new if switched else old)
    # Installing again completes the update (or says it is done) and leaves two releases.
    if switched:
        refused("already_installed", installed.install, pkg)
    else:
        installed.install(pkg)
    assert files_of(installed.current_tree()) == new
    assert os.readlink(installed.layout.previous) == "releases/0.2.0"
    assert sorted(os.listdir(installed.layout.releases)) == ["0.2.0", "0.3.0"]


_KILLER = """
import os, signal, sys
from pathlib import Path
from kiosk.update.install import AppLayout, install
from kiosk.update.package import trusted_certs
step = sys.argv[4]
def hook(name):
    if name == step:
        os.kill(os.getpid(), signal.SIGKILL)
install(Path(sys.argv[1]), AppLayout(Path(sys.argv[2])), trusted_certs(Path(sys.argv[3])), "0.1.0",
        margin_bytes=0, hook=hook)
"""


@pytest.mark.parametrize("step", STEPS)
def test_a_killed_install_leaves_current_at_a_complete_release(installed: Box, step: str) -> None:
    work = installed.tmp / "v"
    pkg = make_package(work, "0.3.0")
    old, new = files_of(tree(installed.tmp / "base" / "dist-0.2.0")), files_of(tree(work / "dist-0.3.0"))
    proc = subprocess.run(
        [sys.executable, "-c", _KILLER, str(pkg), str(installed.layout.root), str(installed.keys), step],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    got = files_of(installed.current_tree())
    assert got == (new if STEPS.index(step) >= STEPS.index("switched") else old)
    # The launcher would start it: current names a release whose program is there.
    assert installed.layout.linked_version(installed.layout.current) in ("0.2.0", "0.3.0")
    # The next install finishes the job and clears what the killed one left (a staging folder).
    if STEPS.index(step) >= STEPS.index("switched"):
        refused("already_installed", installed.install, pkg)
    else:
        installed.install(pkg)
    assert files_of(installed.current_tree()) == new
    assert sorted(os.listdir(installed.layout.releases)) == ["0.2.0", "0.3.0"]


# -- the launcher (the real shell script) --------------------------------------------------


class Launcher:
    def __init__(self, box: Box, max_tries: int = 3) -> None:
        self.box = box
        image = box.tmp / "opt" / "kiosk"
        fake_dist(image, "0.1.0")
        self.env = {
            "PATH": "/usr/bin:/bin",
            "KIOSK_APP_DIR": str(box.layout.root),
            "KIOSK_IMAGE_APP": str(image / "kiosk"),
            "KIOSK_UPDATE_MAX_TRIES": str(max_tries),
        }

    def start(self, shell: str = "/bin/sh") -> subprocess.CompletedProcess[str]:
        """One start, as systemd's ExecStart (and each Restart=always) runs it."""
        return subprocess.run(
            [shell, str(LAUNCH), "run", "--home", "/data/room"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def count(self) -> str:
        return self.box.layout.boot_count.read_text(encoding="utf-8")


def test_the_launcher_starts_the_image_app_without_an_update(box: Box) -> None:
    run = Launcher(box).start()
    assert (run.returncode, run.stdout) == (0, "kiosk 0.1.0 run --home /data/room\n"), run.stderr
    assert not box.layout.boot_count.exists()


def test_the_launcher_is_executable_and_runs_under_dash(box: Box) -> None:
    assert os.access(LAUNCH, os.X_OK)
    assert LAUNCH.read_text(encoding="utf-8").startswith("#!/bin/sh\n")
    box.install(make_package(box.tmp / "v", "0.2.0"))
    launcher = Launcher(box)
    for shell in ("/bin/sh", "dash", "bash"):
        assert launcher.start(shell).stdout == "kiosk 0.2.0 run --home /data/room\n"


def test_the_launcher_counts_starts_until_the_app_says_it_is_up(box: Box) -> None:
    box.install(make_package(box.tmp / "v", "0.2.0"))
    launcher = Launcher(box)
    assert launcher.start().stdout.startswith("kiosk 0.2.0 ")
    assert launcher.count() == "0.2.0 1\n"
    launcher.start()
    assert launcher.count() == "0.2.0 2\n"
    mark_started(box.layout)  # what `kiosk run` does after update_healthy_s
    launcher.start()
    assert launcher.count() == "0.2.0 1\n"
    box.layout.boot_count.write_text("0.2.0 many\n", encoding="utf-8")  # garbage counts as none
    launcher.start()
    assert launcher.count() == "0.2.0 1\n"


def test_a_release_that_never_comes_up_falls_back_to_the_previous_one_then_the_image(box: Box) -> None:
    work = box.tmp / "v"
    box.install(make_package(work, "0.2.0"))
    box.install(make_package(work, "0.3.0", program="exit 3"))
    launcher = Launcher(box, max_tries=3)
    for n in (1, 2, 3):  # systemd restarts it each time it exits
        run = launcher.start()
        assert (run.returncode, run.stdout.split()[:2]) == (3, ["kiosk", "0.3.0"])
        assert launcher.count() == f"0.3.0 {n}\n"
    run = launcher.start()
    assert run.stdout.split()[:2] == ["kiosk", "0.2.0"] and run.returncode == 0
    assert "release 0.3.0 did not come up in 3 starts: back to 0.2.0" in run.stderr
    assert os.readlink(box.layout.current) == "releases/0.2.0"
    assert not os.path.lexists(box.layout.previous)
    # 0.2.0 also never says it is up (that start was its first): after two more, the image's app.
    assert launcher.count() == "0.2.0 1\n"
    for _ in range(2):
        launcher.start()
    run = launcher.start()
    assert run.stdout.split()[:2] == ["kiosk", "0.1.0"], run.stderr
    assert "back to the image's app" in run.stderr
    assert not os.path.lexists(box.layout.current)
    # The failed release may be installed again later (the box now runs the image's 0.1.0).
    assert box.install(work / "out" / "kiosk-update-0.3.0.kup").version == "0.3.0"  # type: ignore[attr-defined]


def test_the_launcher_ignores_a_current_link_that_is_no_complete_release(box: Box) -> None:
    box.install(make_package(box.tmp / "v", "0.2.0"))
    launcher = Launcher(box)
    (box.layout.releases / "0.2.0" / "kiosk").unlink()  # a damaged release
    assert launcher.start().stdout.startswith("kiosk 0.1.0 ")
    box.layout.current.unlink()
    os.symlink("/bin", box.layout.current)  # not under releases/: never followed
    assert launcher.start().stdout.startswith("kiosk 0.1.0 ")
    box.layout.current.unlink()
    os.symlink("releases/../../../bin", box.layout.current)
    assert launcher.start().stdout.startswith("kiosk 0.1.0 ")


def test_the_launcher_starts_the_image_app_when_it_cannot_count(box: Box) -> None:
    box.install(make_package(box.tmp / "v", "0.2.0"))
    box.layout.boot_count.mkdir()  # the count cannot be written
    run = Launcher(box).start()
    assert run.stdout.startswith("kiosk 0.1.0 ") and "cannot count" in run.stderr


# -- the room service's operation ---------------------------------------------------------


def test_the_update_operation_installs_records_an_event_and_says_to_restart(room, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    keys = tmp_path / "keys"
    trust(keys)
    room.settings = replace(room.settings, app_dir=str(tmp_path / "app"), update_keys_dir=str(keys))
    before = Event.select().count()
    from kiosk.services.update import running_version

    newer = ".".join([str(int(running_version().split(".")[0]) + 1), "0", "0"])
    stranger = make_package(tmp_path / "s", newer, key=make_identity("stranger"))
    refused("foreign_signer", room.update_install, str(stranger))
    assert Event.select().count() == before, "a refusal writes no event"
    assert not (tmp_path / "app" / "current").exists()

    pkg = make_package(tmp_path / "v", newer)
    done = room.update_install(str(pkg))
    assert done["app_version"] == newer and "重启监考机后生效" in done["message"]
    ev = Event.select().order_by(Event.id.desc()).get()
    assert ev.kind == "app_update_installed" and json.loads(ev.payload)["version"] == newer
    assert room.log_verify()["ok"]
    st = room.update_status()
    assert (st["running_version"], st["current_release"]) == (running_version(), newer)


def test_no_update_is_installed_while_an_exam_session_runs(room, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    keys = tmp_path / "keys"
    trust(keys)
    room.settings = replace(room.settings, app_dir=str(tmp_path / "app"), update_keys_dir=str(keys))
    Session.create(number=9, name="第 9 场", scheduled_start=0.0, entered_at=1.0)
    refused("session_running", room.update_install, str(make_package(tmp_path / "v", "99.0.0")))
    assert not (tmp_path / "app").exists() or not any((tmp_path / "app").iterdir())
    Session.update(ended_at=2.0).execute()
    assert room.update_install(str(make_package(tmp_path / "w", "99.0.0")))["app_version"] == "99.0.0"


def test_an_app_folder_that_cannot_be_made_is_refused_cleanly(box: Box) -> None:
    (box.tmp / "not-a-folder").write_bytes(b"")
    layout = AppLayout(box.tmp / "not-a-folder" / "app")
    pkg = make_package(box.tmp / "v", "0.2.0")
    before = box.state()
    refused("install_failed", install, pkg, layout, trusted_certs(box.keys), "0.1.0", margin_bytes=0)
    assert box.state() == before and (box.tmp / "not-a-folder").read_bytes() == b""


def test_a_second_install_at_the_same_time_is_refused(installed: Box) -> None:
    import fcntl

    pkg = make_package(installed.tmp / "v", "0.3.0")
    before = installed.state()
    with open(installed.layout.root / ".lock", "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        refused("update_busy", installed.install, pkg)
    assert installed.state() == before
    assert installed.install(pkg).version == "0.3.0"  # type: ignore[attr-defined]


def test_kiosk_run_clears_the_start_count_once_it_has_been_up(box: Box) -> None:
    from kiosk.cli import _mark_up_later
    from kiosk.settings import load
    from tests.polling import poll_until

    box.layout.root.mkdir(parents=True)
    box.layout.boot_count.write_text("0.2.0 2\n", encoding="utf-8")
    timer = _mark_up_later(load(app_dir=str(box.layout.root), update_healthy_s=0.05))
    try:
        assert poll_until(lambda: not box.layout.boot_count.exists(), 10, 0.01)
    finally:
        timer.cancel()
        timer.join()
    # A run that ends before it was up leaves the count for the launcher.
    box.layout.boot_count.write_text("0.2.0 2\n", encoding="utf-8")
    timer = _mark_up_later(load(app_dir=str(box.layout.root), update_healthy_s=60))
    timer.cancel()
    timer.join()
    assert box.layout.boot_count.read_text(encoding="utf-8") == "0.2.0 2\n"
