"""Password hashing (scrypt), random secrets, key pairs with self-signed certificates,
pinned TLS 1.3 contexts and signatures for the room network."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import os
import ssl
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidKey, InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from cryptography.x509.oid import NameOID

# 2**15 * 8 * 128 bytes = 32 MiB per hash: memory-hard, ~0.1 s on the box.
_N, _R, _P, _LEN = 2**15, 8, 1, 32


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    key = Scrypt(salt=salt, length=_LEN, n=_N, r=_R, p=_P).derive(password.encode())
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(key).decode()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt_b64, key_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        kdf = Scrypt(salt=base64.b64decode(salt_b64), length=_LEN, n=int(n), r=int(r), p=int(p))
        kdf.verify(password.encode(), base64.b64decode(key_b64))
        return True
    except (ValueError, InvalidKey):
        return False


def random_token(nbytes: int = 32) -> str:
    return base64.urlsafe_b64encode(os.urandom(nbytes)).decode().rstrip("=")


def tokens_equal(a: str, b: str) -> bool:
    # surrogatepass: any str a JSON document can hold compares, even a lone surrogate
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))


# -- key pairs, certificates, pinned TLS, signatures ----------------------------------

KEY_FILE, CERT_FILE = "{}.key", "{}.crt"


@dataclass(frozen=True)
class Identity:
    """A key pair with its self-signed certificate (PEM): the box's or an exam PC's."""

    key_pem: bytes
    cert_pem: bytes

    @property
    def fingerprint(self) -> str:
        return cert_fingerprint(self.cert_pem)

    def private_key(self) -> ec.EllipticCurvePrivateKey:
        key = serialization.load_pem_private_key(self.key_pem, password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key


def make_identity(common_name: str, now: datetime.datetime | None = None) -> Identity:
    """ECDSA P-256 key and a self-signed certificate valid for 20 years.

    The certificate is its own CA (basicConstraints CA) so that a peer can trust it as
    the single anchor of its pinned trust store."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64] or "proctor")])
    start = (now or datetime.datetime.now(datetime.UTC)) - datetime.timedelta(days=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=365 * 20))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        # Key identifiers: many PCs cloned from one image share a host name, and without
        # them OpenSSL takes the first certificate of that name as every other's issuer.
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Identity(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        cert.public_bytes(serialization.Encoding.PEM),
    )


def load_or_make_identity(folder: Path, stem: str, common_name: str) -> Identity:
    """The identity kept in `folder` (key file 0600); made on first start."""
    key_path, cert_path = folder / KEY_FILE.format(stem), folder / CERT_FILE.format(stem)
    if key_path.exists() and cert_path.exists():
        return Identity(key_path.read_bytes(), cert_path.read_bytes())
    folder.mkdir(parents=True, exist_ok=True)
    ident = make_identity(common_name)
    from kiosk.common.fsutil import write_atomic

    write_atomic(key_path, ident.key_pem)
    os.chmod(key_path, 0o600)
    write_atomic(cert_path, ident.cert_pem)
    return ident


def cert_fingerprint(cert: bytes) -> str:
    """SHA-256 of the certificate's DER encoding, hex: what seats and bundles pin. The
    PEM is only unwrapped, not parsed: a damaged certificate just has another hash."""
    der = ssl.PEM_cert_to_DER_cert(cert.decode("ascii")) if cert.startswith(b"-----") else cert
    return hashlib.sha256(der).hexdigest()


def sign(identity: Identity, data: bytes) -> bytes:
    return identity.private_key().sign(data, ec.ECDSA(hashes.SHA256()))


def verify_signature(cert_pem: bytes, data: bytes, signature: bytes) -> bool:
    try:
        with warnings.catch_warnings():  # a malformed certificate is a failed check, not a warning
            warnings.simplefilter("error")
            public = x509.load_pem_x509_certificate(cert_pem).public_key()
    except (ValueError, Warning):
        return False
    if not isinstance(public, ec.EllipticCurvePublicKey):
        return False
    try:
        public.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        return True
    except InvalidSignature:
        return False


def _tls13(purpose: ssl.Purpose, identity: Identity) -> ssl.SSLContext:
    ctx = ssl.SSLContext(
        ssl.PROTOCOL_TLS_SERVER if purpose is ssl.Purpose.CLIENT_AUTH else ssl.PROTOCOL_TLS_CLIENT
    )
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False  # pinned by certificate, not by name
    ctx.verify_mode = ssl.CERT_REQUIRED
    with tempfile.TemporaryDirectory() as tmp:  # ssl loads key material from files only
        key, cert = Path(tmp) / "k.pem", Path(tmp) / "c.pem"
        key.write_bytes(identity.key_pem)
        cert.write_bytes(identity.cert_pem)
        ctx.load_cert_chain(cert, key)
    return ctx


def server_context(identity: Identity, trusted_pems: list[bytes]) -> ssl.SSLContext:
    """The box: its own certificate; trusts exactly the exam PCs' certificates given
    (more can be added later with ``ctx.load_verify_locations(cadata=...)``)."""
    ctx = _tls13(ssl.Purpose.CLIENT_AUTH, identity)
    for pem in trusted_pems:
        ctx.load_verify_locations(cadata=pem.decode())
    return ctx


def client_context(identity: Identity, box_cert_pem: bytes) -> ssl.SSLContext:
    """An exam PC: its own certificate; trusts only its box's certificate."""
    ctx = _tls13(ssl.Purpose.SERVER_AUTH, identity)
    ctx.load_verify_locations(cadata=box_cert_pem.decode())
    return ctx


def peer_fingerprint(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> str:
    der = ssl_object.getpeercert(binary_form=True)
    return hashlib.sha256(der).hexdigest() if der else ""
