"""Keys, certificates and pinned TLS 1.3 between the box and its exam PCs."""

from __future__ import annotations

import asyncio
import ssl

import pytest

from kiosk.common.crypto import (
    client_context,
    make_identity,
    peer_fingerprint,
    server_context,
    sign,
    verify_signature,
)  # fmt: skip


def connect(box, trusted, pc, box_cert) -> str:
    """Fingerprint the box saw, or raises when the handshake fails on either side."""

    async def run() -> str:
        seen: list[str] = []

        async def handle(reader, writer):
            seen.append(peer_fingerprint(writer.get_extra_info("ssl_object")))
            writer.write(b"ok")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_context(box, trusted))
        port = server.sockets[0].getsockname()[1]
        try:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=client_context(pc, box_cert)
            )
            data = await reader.read()
            writer.close()
            if data != b"ok":
                raise ConnectionError("refused by the box")
            return seen[0]
        finally:
            server.close()
            await server.wait_closed()

    return asyncio.run(run())


def test_both_ends_are_pinned():
    box, pc, stranger = make_identity("box"), make_identity("KS-001"), make_identity("evil")
    assert connect(box, [pc.cert_pem], pc, box.cert_pem) == pc.fingerprint
    with pytest.raises((ConnectionError, ssl.SSLError)):
        connect(box, [pc.cert_pem], stranger, box.cert_pem)
    with pytest.raises(ssl.SSLCertVerificationError):
        connect(box, [pc.cert_pem], pc, stranger.cert_pem)


def test_pcs_cloned_with_one_host_name_are_all_trusted():
    box = make_identity("box")
    pcs = [make_identity("KS-IMAGE") for _ in range(3)]
    trusted = [p.cert_pem for p in pcs]
    assert [connect(box, trusted, p, box.cert_pem) for p in pcs] == [p.fingerprint for p in pcs]


def test_signatures_verify_only_with_the_signers_certificate():
    box, other = make_identity("box"), make_identity("box")
    sig = sign(box, b"scan")
    assert verify_signature(box.cert_pem, b"scan", sig)
    assert not verify_signature(box.cert_pem, b"scan!", sig)
    assert not verify_signature(other.cert_pem, b"scan", sig)
