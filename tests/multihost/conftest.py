"""The room network of the multi-host tests: namespaces when the machine allows them,
else the loopback fallback, which each test states in its output (shown with -rA) and
in its `network` property (the JUnit report)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.multihost.netns import Room, open_room

HOSTS = ("box", "pc1", "pc2", "pc3", "pc4", "pc5")


@pytest.fixture
def room(request: pytest.FixtureRequest, record_property: Callable[[str, Any], None]) -> Iterator[Room]:
    """All six hosts, each with its own host name unless the test asks otherwise
    (`@pytest.mark.parametrize("room", [{"pc1": "KS-PC", ...}], indirect=True)`)."""
    hostnames: dict[str, str] | None = getattr(request, "param", None)
    with open_room(HOSTS, hostnames=hostnames) as r:
        record_property("network", r.mode)
        record_property("network_note", r.note)
        print(f"room network: {r.note}")
        yield r
