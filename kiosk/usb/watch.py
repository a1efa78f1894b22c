"""Notice USB sticks: a thread polls the mount table, watches each stick with watchdog
while it is there, and tells a listener when sticks come or go or a file on one has
settled (its size unchanged for a while: some files get no `closed` event)."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from watchdog.events import (
    FileClosedEvent,
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch

from kiosk.settings import Settings
from kiosk.usb.listing import is_ignored
from kiosk.usb.mounts import stick_mounts

log = logging.getLogger(__name__)

OnChange = Callable[[tuple[Path, ...]], None]

# Writes only: reads (the box listing a stick) must not look like a change.
_EVENTS: list[type[FileSystemEvent]] = [FileCreatedEvent, FileModifiedEvent, FileMovedEvent, FileClosedEvent]


class _Recorder(FileSystemEventHandler):
    """Runs on watchdog's thread and only notes which file was written."""

    def __init__(self, touched: Callable[[str], None]) -> None:
        self._touched = touched

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            return
        path = event.dest_path or event.src_path
        if path:
            self._touched(os.fsdecode(path))


class UsbWatcher:
    """The sticks plugged in now (the `UsbDrives` port), kept current by a thread."""

    def __init__(self, settings: Settings, on_change: OnChange | None = None) -> None:
        roots = (r.strip() for r in settings.usb_mount_roots.split(","))
        # The mount table names real paths.
        self._roots = tuple(Path(os.path.realpath(r)) for r in roots if r)
        self._poll_s = settings.usb_poll_s
        self._settle_s = settings.usb_settle_s
        self._folders = settings.usb_folders_as_sticks
        self._on_change = on_change
        self._sticks: tuple[Path, ...] = ()
        self._watches: dict[Path, ObservedWatch] = {}
        self._pending: dict[str, tuple[int | None, float]] = {}  # file -> (size, unchanged since)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._observer: BaseObserver | None = None
        self._recorder = _Recorder(self._touched)

    def sticks(self) -> tuple[Path, ...]:
        """Mount points (folders in folder mode) of the sticks plugged in now, sorted."""
        return self._sticks

    def start(self) -> None:
        """Read the mount table once (so `sticks()` is right at once), then watch."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._observer = Observer()  # its inotify reader thread starts here
        self._observer.start()
        self._update(self._find() or set())
        self._thread = threading.Thread(target=self._run, name="usb-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (no sticks are known then) and join every thread started; safe
        to call twice; `start()` may follow."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._observer is not None:
            self._observer.stop()
            self._observer.join()
            self._observer = None
        self._watches.clear()
        self._sticks = ()
        with self._lock:
            self._pending.clear()

    def __enter__(self) -> UsbWatcher:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stopping.wait(self._poll_s):
            found = self._find()
            changed = found is not None and self._update(found)
            if self._settled() or changed:
                self._notify()

    def _find(self) -> set[Path] | None:
        """The sticks now; None when the mount table cannot be read."""
        if not self._folders:
            try:
                return stick_mounts(self._roots)
            except OSError as exc:
                log.warning("cannot read the mount table: %s", exc)
                return None
        found = set()
        for root in self._roots:
            try:
                found |= {p for p in root.iterdir() if p.is_dir()}
            except OSError:
                continue  # a root that does not exist holds no stick
        return found

    def _update(self, found: set[Path]) -> bool:
        """Start and stop watches for the sticks that came and went; True on a change."""
        old = set(self._sticks)
        if found == old:
            return False
        assert self._observer is not None
        for gone in old - found:
            watch = self._watches.pop(gone, None)
            if watch is not None:
                try:
                    self._observer.unschedule(watch)
                except (KeyError, OSError) as exc:
                    log.info("watch on %s already ended: %r", gone, exc)
        for new in sorted(found - old):
            try:
                self._watches[new] = self._observer.schedule(
                    self._recorder, str(new), recursive=True, event_filter=_EVENTS
                )
            except OSError as exc:  # gone again, or not readable: listed, but no file events
                log.warning("cannot watch %s: %s", new, exc)
        with self._lock:
            self._pending = {
                f: v for f, v in self._pending.items() if any(Path(f).is_relative_to(s) for s in found)
            }
        self._sticks = tuple(sorted(found))
        log.info("USB sticks: %s", [str(s) for s in self._sticks] or "none")
        return True

    def _touched(self, path: str) -> None:
        if is_ignored(os.path.basename(path)):
            return
        with self._lock:
            self._pending[path] = (None, time.monotonic())

    def _settled(self) -> bool:
        """Forget files whose size has not changed for `usb_settle_s`; True if there was one."""
        with self._lock:
            pending = list(self._pending.items())
        settled = False
        for path, seen in pending:
            try:
                size: int | None = os.stat(path).st_size
            except OSError:
                size = None  # gone: nothing to report
            now = time.monotonic()
            known, since = seen
            with self._lock:
                if self._pending.get(path) is not seen:
                    continue  # written again meanwhile
                if size is None:
                    del self._pending[path]
                elif known is not None and known != size:
                    self._pending[path] = (size, now)
                elif now - since >= self._settle_s:
                    del self._pending[path]
                    settled = True
                else:
                    self._pending[path] = (size, since)
        return settled

    def _notify(self) -> None:
        if self._on_change is None:
            return
        try:
            self._on_change(self._sticks)
        except Exception:
            log.exception("USB change listener failed")
