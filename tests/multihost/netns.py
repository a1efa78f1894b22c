"""A small LAN for multi-host tests: one network namespace per host, all plugged into a
Linux bridge that lives in a namespace of its own (PLATFORM-NOTES, "UDP broadcast").

    with open_room(["box", "pc1", "pc2"]) as room:
        proc = room.run("pc1", ["stu-client", "daemon", ...], env=env)
        room.cut("pc1")      # the cable is pulled: pc1 loses its carrier
        room.restore("pc1")  # and plugged back in

Addresses are 10.77.0.<n>/24 inside the namespaces (box .1, pcN .10+N), broadcast
10.77.0.255; nothing is configured outside the namespaces this module creates. Every
name carries this process's id and a random token, so runs never collide. Each host's
processes also get a host name of their own (a UTS namespace made by `unshare`), as
separate machines have: by default the host's name ("pc1"), or `hostnames={...}`.

Where namespaces cannot be made (no root, no iproute2), `open_room` falls back to one
shared loopback: the box on 127.0.0.1, pcN on 127.0.10.<10+N> (daemons then need
`--bind-ip`), broadcasts to 127.255.255.255. A pulled cable cannot be simulated there:
the test registers a stand-in with `room.fallback_cable(host, cut, restore)`.

Teardown (also when the test fails) ends every process started through the room, then
deletes every namespace it made."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.polling import poll_until

NET_PREFIX = "10.77.0"
NET_BROADCAST = "10.77.0.255"
LOOPBACK_PC_PREFIX = "127.0.10"
LOOPBACK_BROADCAST = "127.255.255.255"
STOP_GRACE_S = 5.0
IP_TIMEOUT_S = 10.0
HOST_IFACE = "eth0"  # inside each host's namespace (one per namespace: no clash)
BRIDGE = "br0"
_NAME = re.compile(r"^mh(\d+)-[0-9a-f]{4}-")


class NetnsUnavailable(Exception):
    """Network namespaces cannot be made here (permissions, no iproute2)."""


def host_number(host: str) -> int:
    """The last octet of a host's address: box .1, pcN .10+N."""
    if host == "box":
        return 1
    m = re.fullmatch(r"pc(\d+)", host)
    if m and 1 <= int(m.group(1)) <= 200:
        return 10 + int(m.group(1))
    raise ValueError(f"unknown host name {host!r}: use 'box' or 'pc1' .. 'pc200'")


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", *args],
        capture_output=True,
        text=True,
        timeout=IP_TIMEOUT_S,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _ip_ok(*args: str) -> str:
    done = _ip(*args)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _exited(pid: int) -> bool:
    """Has our child `pid` exited? Without reaping it (its process group stays ours)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


class Room:
    """What both kinds of room offer; see NetRoom and LoopbackRoom."""

    mode = ""
    broadcast = ""
    isolated = False  # each host has its own network stack (ports never clash)

    def __init__(self, hosts: Sequence[str], hostnames: Mapping[str, str] | None = None) -> None:
        if len(set(hosts)) != len(hosts):
            raise ValueError(f"duplicate host names in {hosts}")
        self.hosts = list(hosts)
        for h in self.hosts:
            host_number(h)
        self.hostnames = {h: h for h in self.hosts} | dict(hostnames or {})
        self.unshare = _unshare_uts()  # [] when host names cannot be set: all share one
        self.procs: list[subprocess.Popen[Any]] = []
        self.note = ""

    def hostname(self, host: str) -> str:
        """The host name the host's processes see (socket.gethostname())."""
        return self.hostnames[host] if self.unshare else socket.gethostname()

    def _own_hostname(self, host: str) -> list[str]:
        if not self.unshare:
            return []
        return [*self.unshare, "--", "sh", "-c", 'hostname "$0" && exec "$@"', self.hostnames[host]]

    # -- addresses -------------------------------------------------------------------

    def ip(self, host: str) -> str:
        raise NotImplementedError

    def daemon_args(self, host: str) -> list[str]:
        """Extra `stu-client daemon` options this host needs (its own address on loopback)."""
        return []

    # -- processes -------------------------------------------------------------------

    def prefix(self, host: str) -> list[str]:
        """The argv prefix that runs a command on `host`."""
        raise NotImplementedError

    def run(
        self, host: str, argv: Sequence[str], env: Mapping[str, str] | None = None, **popen_kwargs: Any
    ) -> subprocess.Popen[Any]:
        """Start `argv` on `host`; the room ends it at teardown if the test does not."""
        if host not in self.hosts:
            raise ValueError(f"{host!r} is not a host of this room ({self.hosts})")
        popen_kwargs.setdefault("stdin", subprocess.DEVNULL)
        popen_kwargs.setdefault("start_new_session", True)  # its own group: children end with it
        proc = subprocess.Popen(
            [*self.prefix(host), *argv], env=dict(env) if env is not None else None, **popen_kwargs
        )
        self.procs.append(proc)
        return proc

    def call(
        self,
        host: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        timeout: float = 60.0,
        cwd: str | Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `argv` on `host` to completion; stdout and stderr as text."""
        proc = self.run(
            host,
            argv,
            env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop(proc, grace_s=0)
            raise
        finally:
            self.procs.remove(proc)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def stop(self, proc: subprocess.Popen[Any], grace_s: float = STOP_GRACE_S) -> int:
        """SIGTERM to its process group, SIGKILL to what is left after `grace_s`; closes
        its pipes. Returns the exit code.

        The group is signalled only while its leader is not yet reaped, so the group id
        is still this process's and cannot have been reused."""
        if proc.returncode is None:
            if grace_s > 0:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                _wait_quiet(lambda: _exited(proc.pid), grace_s)
            with contextlib.suppress(ProcessLookupError):  # the leader if stuck, and stragglers
                os.killpg(proc.pid, signal.SIGKILL)
        code = proc.wait(STOP_GRACE_S)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        return code

    # -- the cable -------------------------------------------------------------------

    def cut(self, host: str) -> None:
        raise NotImplementedError

    def restore(self, host: str) -> None:
        raise NotImplementedError

    def fallback_cable(self, host: str, cut: Callable[[], None], restore: Callable[[], None]) -> None:
        """How to pull `host`'s cable when the room cannot (loopback); ignored otherwise."""

    # -- life ------------------------------------------------------------------------

    def close(self) -> None:
        errors: list[str] = []
        for proc in self.procs:
            try:
                self.stop(proc)
            except Exception as exc:
                errors.append(f"pid {proc.pid}: {exc}")
        self.procs.clear()
        self._teardown(errors)
        if errors:
            raise RuntimeError("room teardown: " + "; ".join(errors))

    def _teardown(self, errors: list[str]) -> None:
        pass

    def __enter__(self) -> Room:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NetRoom(Room):
    """One namespace per host plus one for the bridge ("the switch")."""

    mode = "netns"
    broadcast = NET_BROADCAST
    isolated = True

    def __init__(
        self,
        hosts: Sequence[str] = ("box", "pc1", "pc2", "pc3", "pc4", "pc5"),
        hostnames: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(hosts, hostnames)
        if shutil.which("ip") is None:
            raise NetnsUnavailable("iproute2 (`ip`) is not installed")
        _sweep_stale()
        self.tag = f"mh{os.getpid()}-{secrets.token_hex(2)}"
        self.switch = f"{self.tag}-sw"
        self.made: list[str] = []
        self.cut_hosts: set[str] = set()
        first = _ip("netns", "add", self.switch)
        if first.returncode != 0:
            raise NetnsUnavailable(f"ip netns add: {first.stderr.strip() or first.returncode}")
        self.made.append(self.switch)
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        self.note = (
            f"network namespaces {self.tag}-*: a bridge and a veth pair per host, "
            f"{NET_PREFIX}.0/24, broadcast {NET_BROADCAST}"
        )

    def ns(self, host: str) -> str:
        return f"{self.tag}-{host}"

    def port(self, host: str) -> str:
        """The switch-side end of the host's veth pair (in the switch's namespace)."""
        return f"p-{host}"[:15]

    def _build(self) -> None:
        sw = self.switch
        _ip_ok("-n", sw, "link", "set", "lo", "up")
        _ip_ok("-n", sw, "link", "add", BRIDGE, "type", "bridge", "stp_state", "0", "forward_delay", "0")
        _ip_ok("-n", sw, "link", "set", BRIDGE, "up")
        for host in self.hosts:
            ns = self.ns(host)
            _ip_ok("netns", "add", ns)
            self.made.append(ns)
            # Both ends are created directly inside the namespaces: nothing touches the
            # machine's own network.
            _ip_ok(
                "-n",
                sw,
                "link",
                "add",
                self.port(host),
                "type",
                "veth",
                "peer",
                "name",
                HOST_IFACE,
                "netns",
                ns,
            )
            _ip_ok("-n", sw, "link", "set", self.port(host), "master", BRIDGE, "up")
            _ip_ok("-n", ns, "link", "set", "lo", "up")
            _ip_ok(
                "-n", ns, "addr", "add", f"{self.ip(host)}/24", "broadcast", NET_BROADCAST, "dev", HOST_IFACE
            )
            _ip_ok("-n", ns, "link", "set", HOST_IFACE, "up")

    def ip(self, host: str) -> str:
        return f"{NET_PREFIX}.{host_number(host)}"

    def prefix(self, host: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns(host), *self._own_hostname(host)]

    def carrier(self, host: str) -> bool:
        """Does the host's interface see a link (LOWER_UP)?"""
        return "LOWER_UP" in _ip_ok("-n", self.ns(host), "link", "show", HOST_IFACE)

    def cut(self, host: str) -> None:
        """Pull the cable at the switch: the host's interface loses its carrier (its
        address stays, as on a real PC), nothing passes either way."""
        _ip_ok("-n", self.switch, "link", "set", self.port(host), "down")
        self.cut_hosts.add(host)
        _wait(lambda: not self.carrier(host), 5.0, f"{host} to lose its carrier")

    def restore(self, host: str) -> None:
        _ip_ok("-n", self.switch, "link", "set", self.port(host), "up")
        self.cut_hosts.discard(host)
        _wait(lambda: self.carrier(host), 5.0, f"{host} to see its carrier again")

    def _teardown(self, errors: list[str]) -> None:
        for ns in reversed(self.made):
            # Anything still inside (a grandchild that left its process group) was
            # started by this room: end it by id before the namespace goes.
            for pid in _ns_pids(ns):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            for pid in _ns_pids(ns):
                if not _wait_quiet(lambda p=pid: not _alive(p), STOP_GRACE_S):
                    errors.append(f"process {pid} in {ns} would not die")
            done = _ip("netns", "del", ns)
            if done.returncode != 0:
                errors.append(f"ip netns del {ns}: {done.stderr.strip()}")
        self.made.clear()


class LoopbackRoom(Room):
    """Every host on this machine's loopback; each PC has an address of its own."""

    mode = "loopback"
    broadcast = LOOPBACK_BROADCAST
    isolated = False

    def __init__(
        self, hosts: Sequence[str], reason: str = "", hostnames: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(hosts, hostnames)
        self.reason = reason
        self.cables: dict[str, tuple[Callable[[], None], Callable[[], None]]] = {}
        self.note = (
            f"LOOPBACK FALLBACK ({reason or 'requested'}): box on 127.0.0.1, "
            f"PCs on {LOOPBACK_PC_PREFIX}.x with --bind-ip, broadcast {LOOPBACK_BROADCAST}; "
            "a pulled cable is simulated by the PC going offline by itself"
            + ("" if self.unshare else "; every host shares this machine's host name")
        )

    def ip(self, host: str) -> str:
        return "127.0.0.1" if host == "box" else f"{LOOPBACK_PC_PREFIX}.{host_number(host)}"

    def daemon_args(self, host: str) -> list[str]:
        return ["--bind-ip", self.ip(host)]

    def prefix(self, host: str) -> list[str]:
        return self._own_hostname(host)

    def fallback_cable(self, host: str, cut: Callable[[], None], restore: Callable[[], None]) -> None:
        self.cables[host] = (cut, restore)

    def cut(self, host: str) -> None:
        if host not in self.cables:
            raise RuntimeError(f"loopback: no way to pull {host}'s cable (call fallback_cable first)")
        self.cables[host][0]()

    def restore(self, host: str) -> None:
        if host not in self.cables:
            raise RuntimeError(f"loopback: no way to restore {host}'s cable")
        self.cables[host][1]()


@contextlib.contextmanager
def open_room(
    hosts: Sequence[str], *, hostnames: Mapping[str, str] | None = None, loopback: bool | None = None
) -> Iterator[Room]:
    """A NetRoom, or a LoopbackRoom when namespaces are unavailable (or `loopback`, or
    the environment variable MULTIHOST_LOOPBACK=1, asks for one)."""
    if loopback is None:
        loopback = os.environ.get("MULTIHOST_LOOPBACK") == "1"
    room: Room
    if loopback:
        room = LoopbackRoom(hosts, "MULTIHOST_LOOPBACK=1", hostnames)
    else:
        try:
            room = NetRoom(hosts, hostnames)
        except NetnsUnavailable as exc:
            room = LoopbackRoom(hosts, f"network namespaces unavailable: {exc}", hostnames)
    with room:
        yield room


# -- helpers ------------------------------------------------------------------------


def _ns_pids(ns: str) -> list[int]:
    done = _ip("netns", "pids", ns)
    return [int(p) for p in done.stdout.split() if p.isdigit()] if done.returncode == 0 else []


_wait_quiet = poll_until


def _wait(condition: Callable[[], bool], deadline_s: float, what: str) -> None:
    if not _wait_quiet(condition, deadline_s):
        raise RuntimeError(f"timed out after {deadline_s} s waiting for {what}")


_UNSHARE: list[list[str]] = []


def _unshare_uts() -> list[str]:
    """How to give a process a host name of its own: `unshare --uts` (root), or inside a
    user namespace (unprivileged); [] when neither works. Probed once."""
    if not _UNSHARE:
        found: list[str] = []
        if shutil.which("unshare") and shutil.which("hostname"):
            for cmd in (["unshare", "--uts"], ["unshare", "--user", "--map-root-user", "--uts"]):
                probe = subprocess.run(
                    [*cmd, "--", "hostname", "probe"], capture_output=True, timeout=IP_TIMEOUT_S, check=False
                )
                if probe.returncode == 0:
                    found = cmd
                    break
        _UNSHARE.append(found)
    return _UNSHARE[0]


def _sweep_stale() -> None:
    """Delete the names of namespaces left by an earlier run that died without its
    teardown (its process id no longer exists). Processes are never touched here."""
    done = _ip("netns", "list")
    for line in done.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = _NAME.match(name)
        if m and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
            _ip("netns", "del", name)
