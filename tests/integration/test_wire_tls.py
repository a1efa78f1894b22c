"""Frames far larger than the 16 KiB TLS read buffer (wire.small_tls_buffers) cross a
real pinned TLS 1.3 link whole, both ways."""

from __future__ import annotations

import asyncio
import asyncio.sslproto

from kiosk.common import wire
from kiosk.common.crypto import client_context, make_identity, server_context


def test_frames_larger_than_the_read_buffer_arrive_whole():
    box, pc = make_identity("box"), make_identity("pc")
    wire.small_tls_buffers()
    assert asyncio.sslproto.SSLProtocol.max_size == wire.TLS_READ_BUFFER
    big = {"t": "x", "blob": "答" * 700_000 + "end"}  # ~2 MiB of UTF-8, 128 buffers' worth

    async def story() -> tuple[dict, dict]:
        got: dict = {}

        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            got.update(await wire.read_frame(reader))
            wire.write_frame(writer, got)
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server_context(box, [pc.cert_pem]))
        port = server.sockets[0].getsockname()[1]
        async with server:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=client_context(pc, box.cert_pem), server_hostname=""
            )
            wire.write_frame(writer, big)
            back = await asyncio.wait_for(wire.read_frame(reader), 30)
            writer.close()
            await writer.wait_closed()
        return got, back

    got, back = asyncio.run(story())
    expected = {"v": wire.WIRE_VERSION, **big}
    assert got == expected and back == expected
