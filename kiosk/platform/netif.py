"""The box's own IPv4 interfaces, for the box IP choice (netifaces-plus)."""

from __future__ import annotations

from dataclasses import dataclass

import netifaces


@dataclass(frozen=True)
class Interface:
    name: str
    ip: str
    netmask: str
    broadcast: str


def ipv4_interfaces(include_loopback: bool = False) -> list[Interface]:
    found = []
    for name in netifaces.interfaces():
        for a in netifaces.ifaddresses(name).get(netifaces.AF_INET, []):
            ip = a.get("addr", "")
            if not ip or (ip.startswith("127.") and not include_loopback):
                continue
            found.append(Interface(name, ip, a.get("netmask", ""), a.get("broadcast", "")))
    return found
