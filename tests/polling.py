"""The one way tests wait for something another process or thread does: poll a
condition against a deadline (never a bare sleep standing in for synchronisation)."""

from __future__ import annotations

import time
from collections.abc import Callable


def poll_until(condition: Callable[[], bool], deadline_s: float, poll_s: float = 0.02) -> bool:
    """True as soon as `condition()` holds; False once `deadline_s` has passed."""
    end = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(poll_s)
    return True
