"""The watcher: a stick mounted after it started is noticed within 2 s, taking it out
is noticed, and a file written onto a stick is reported once its size has settled."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

from kiosk.usb.listing import list_stick
from kiosk.usb.watch import UsbWatcher
from tests.usb.conftest import Stick, envelope, latencies


class Changes:
    """The watcher's callback: each call is kept, and Events say what has happened."""

    def __init__(self, stick: Path) -> None:
        self.stick = stick
        self.calls: list[tuple[Path, ...]] = []
        self.plugged = threading.Event()
        self.unplugged = threading.Event()
        self.any = threading.Event()

    def __call__(self, sticks: tuple[Path, ...]) -> None:
        self.calls.append(sticks)
        if self.stick in sticks:
            self.plugged.set()
        elif self.plugged.is_set():
            self.unplugged.set()
        self.any.set()


def test_a_stick_is_noticed_within_2_s_of_being_mounted_and_gone_once_taken_out(make_stick):
    stick: Stick = make_stick()
    changes = Changes(stick.path)
    with UsbWatcher(stick.settings(), changes) as watcher:
        assert watcher.sticks() == ()
        plugged_at = time.monotonic()
        stick.plug()
        noticed = changes.plugged.wait(2.0)
        latency = time.monotonic() - plugged_at
        assert noticed, f"{stick.backend} stick not noticed within 2 s"
        latencies[stick.wanted] = latency
        assert latency < 2.0, f"{stick.backend} stick noticed after {latency:.3f} s"
        assert watcher.sticks() == (stick.path,)

        stick.unplug()
        assert changes.unplugged.wait(2.0), f"{stick.backend} stick still listed 2 s after it was taken out"
        assert watcher.sticks() == ()
    assert changes.calls == [(stick.path,), ()]


def test_a_stick_plugged_before_the_start_is_there_at_once(stick):
    with UsbWatcher(stick.settings()) as watcher:
        assert watcher.sticks() == (stick.path,)


def test_a_package_copied_onto_a_stick_is_reported_once_it_has_settled(stick, tmp_path):
    source = tmp_path / "exam-package.json"
    source.write_bytes(envelope("exam-package") + b" " * 3_000_000)
    settings = stick.settings()
    changes = Changes(stick.path)
    with UsbWatcher(settings, changes):
        changes.any.clear()
        shutil.copyfile(source, stick.path / "exam-package.json")
        copied_at = time.monotonic()
        assert changes.any.wait(5.0), "the copied file was not reported"
        waited = time.monotonic() - copied_at
    assert waited >= settings.usb_settle_s * 0.9, f"reported {waited:.3f} s after the copy, before settling"
    assert changes.calls[-1] == (stick.path,)
    [package] = list_stick(stick.path).packages
    assert (package.kind, package.size) == ("exam-package", source.stat().st_size)


def test_a_file_left_open_is_reported_once_its_size_stops_changing(stick):
    changes = Changes(stick.path)
    with UsbWatcher(stick.settings(), changes), open(stick.path / "answers.json", "wb") as f:
        changes.any.clear()
        f.write(envelope("answer-package"))
        f.flush()  # written, but never closed while watched: no `closed` event
        assert changes.any.wait(5.0), "a file that stopped growing was not reported"
    assert [p.kind for p in list_stick(stick.path).packages] == ["answer-package"]


def test_stop_joins_its_threads_and_may_be_called_twice(stick):
    before = set(threading.enumerate())
    watcher = UsbWatcher(stick.settings())
    watcher.start()
    assert set(threading.enumerate()) - before
    watcher.stop()
    watcher.stop()
    assert not set(threading.enumerate()) - before
    assert watcher.sticks() == ()
    with watcher:  # and it starts again
        assert watcher.sticks() == (stick.path,)
    UsbWatcher(stick.settings()).stop()  # never started
