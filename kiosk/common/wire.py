"""The room network's wire formats, shared by the box and the exam PCs.

Stream frames (over pinned TLS): a 4-byte big-endian length, then a UTF-8 JSON object
with a version field ``v`` and a type ``t``. Datagrams (UDP scan): a JSON object
``{"body": <base64 JSON>, "sig": <base64 ECDSA signature of body>}``."""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import base64
import json
import struct
from typing import Any

WIRE_VERSION = 1
MAX_FRAME = 4 * 1024 * 1024
MAX_DATAGRAM = 8192
_LEN = struct.Struct(">I")

# Stream message types.
HELLO = "hello"  # PC -> box: who I am, my state
WELCOME = "welcome"  # box -> PC: box time, the state the PC must hold (lock, seat)
HEARTBEAT = "hb"  # both ways; the box's carries the box time
COMMAND = "cmd"  # box -> PC: {seq, cmd, args}; seq strictly increases
COMMAND_ACK = "ack"  # PC -> box: {seq, ok, result | error}
JOURNAL = "journal"  # PC -> box: {entries: [{seq, admission_no, kind, payload, created_at}]}
JOURNAL_ACK = "jack"  # box -> PC: {upto}: every entry up to this seq is committed on the box
REQUEST = "req"  # PC -> box: {id, op, args} (login, begin, submit, ...)
RESPONSE = "res"  # box -> PC: {id, ok, result | error}

SCAN = "scan"
SCAN_REPLY = "scan_reply"
LINK_NOW = "link_now"  # box -> all PCs, signed: seats changed, connect now (no backoff wait)


TLS_READ_BUFFER = 16 * 1024  # one TLS record's plaintext


def small_tls_buffers() -> None:
    """Give each asyncio TLS connection of this process a 16 KiB read buffer instead of
    256 KiB (``asyncio.sslproto.SSLProtocol.max_size``, allocated and zero-filled per
    connection): measured on a server with 600 links, 42 KiB per link instead of 282,
    so a box with 1,000 links keeps 240 MB less. Frames are read whole whatever the
    buffer size; only the size of one read changes."""
    asyncio.sslproto.SSLProtocol.max_size = TLS_READ_BUFFER


class WireError(Exception):
    """A frame or datagram that is not ours: the connection or datagram is dropped."""


def encode(msg: dict[str, Any]) -> bytes:
    body = json.dumps({"v": WIRE_VERSION, **msg}, ensure_ascii=False, separators=(",", ":")).encode()
    if len(body) > MAX_FRAME:
        raise WireError(f"frame of {len(body)} bytes is too large")
    return _LEN.pack(len(body)) + body


def decode(body: bytes) -> dict[str, Any]:
    try:
        msg = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise WireError("not a JSON frame") from exc
    if not isinstance(msg, dict) or msg.get("v") != WIRE_VERSION or not isinstance(msg.get("t"), str):
        raise WireError("wrong version or type")
    return msg


async def read_frame(reader: asyncio.StreamReader, limit: int = MAX_FRAME) -> dict[str, Any]:
    """The next frame; raises IncompleteReadError at the end of the stream, WireError for
    a frame longer than `limit` bytes (checked before any of it is read)."""
    (length,) = _LEN.unpack(await reader.readexactly(_LEN.size))
    if length > limit:
        raise WireError(f"frame of {length} bytes is too large")
    return decode(await reader.readexactly(length))


def write_frame(writer: asyncio.StreamWriter, msg: dict[str, Any]) -> None:
    writer.write(encode(msg))


def signed_datagram(body: dict[str, Any], sign: Any) -> bytes:
    raw = json.dumps({"v": WIRE_VERSION, **body}, separators=(",", ":")).encode()
    return json.dumps(
        {"body": base64.b64encode(raw).decode(), "sig": base64.b64encode(sign(raw)).decode()}
    ).encode()


def open_datagram(data: bytes, verify: Any) -> dict[str, Any]:
    """Check the signature before parsing the body (``verify(raw, sig) -> bool``)."""
    if len(data) > MAX_DATAGRAM:
        raise WireError("datagram too large")
    try:
        outer = json.loads(data)
        raw = base64.b64decode(outer["body"], validate=True)
        sig = base64.b64decode(outer["sig"], validate=True)
    except (ValueError, KeyError, TypeError) as exc:
        raise WireError("not a signed datagram") from exc
    if not verify(raw, sig):
        raise WireError("bad signature")
    return decode(raw)


def plain_datagram(body: dict[str, Any]) -> bytes:
    return json.dumps({"v": WIRE_VERSION, **body}, separators=(",", ":")).encode()


def open_plain_datagram(data: bytes) -> dict[str, Any]:
    if len(data) > MAX_DATAGRAM:
        raise WireError("datagram too large")
    return decode(data)
