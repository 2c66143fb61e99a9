"""TLS hardening for the API host: SPKI pinning and client certificates (mutual TLS).

Pins are SHA-256 digests of the server certificate's SubjectPublicKeyInfo, base64-encoded (the
``openssl ... | openssl dgst -sha256 -binary | base64`` form). They are checked on every new
connection after normal chain and hostname verification and before any byte of the request is
sent. Configure two pins (current and next key) to replace a certificate without an outage.

Python's ``ssl`` loads a client key only from a file, so the key is written to a file created
0600 inside a 0700 temporary directory, loaded, and deleted at once.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import ssl
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

from urllib3.connection import HTTPSConnection

from okta_bridge.errors import SecretError
from okta_bridge.records import Record

if TYPE_CHECKING:
    from pathlib import Path

SPKI_DIGEST_BYTES = 32


class PinMismatchError(ssl.SSLError):
    """The server's public key matches none of the configured pins."""


class TlsPolicy(Record):
    """What the API host's connections must satisfy beyond normal verification. It holds a
    private key, so a ``Record``, not a named tuple (see ``okta_bridge.records``); a pool
    key (``transport.pool``), so compared and hashed by value."""

    _FIELDS = ("pins", "client_certificate", "client_key")
    _HIDDEN = frozenset({"client_key"})
    __slots__ = _FIELDS

    pins: Final[frozenset[bytes]]
    client_certificate: Final[str | None]
    client_key: Final[str | None]  # never in repr

    def __init__(
        self,
        pins: frozenset[bytes] = frozenset(),
        client_certificate: str | None = None,
        client_key: str | None = None,
    ) -> None:
        self.pins = pins
        self.client_certificate = client_certificate
        self.client_key = client_key

    @property
    def plain(self) -> bool:
        """True when nothing beyond normal verification is asked."""
        return not self.pins and self.client_certificate is None


def parse_pins(raw: str) -> frozenset[bytes]:
    """Decode comma-separated base64 SPKI SHA-256 pins (an optional ``sha256/`` prefix is fine)."""
    pins: set[bytes] = set()
    for item in (p.strip() for p in raw.split(",")):
        if not item:
            continue
        value = item.removeprefix("sha256/")
        try:
            digest = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"pin {item[:60]!r} is not base64") from None
        if len(digest) != SPKI_DIGEST_BYTES:
            raise ValueError(f"pin {item[:60]!r} is not a SHA-256 digest (32 bytes)")
        pins.add(digest)
    return frozenset(pins)


def spki_sha256(der_certificate: bytes) -> bytes:
    """SHA-256 of a DER certificate's SubjectPublicKeyInfo."""
    from cryptography import x509  # noqa: PLC0415 - only when pins are configured
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    public_key = x509.load_der_x509_certificate(der_certificate).public_key()
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).digest()


def pinned(base: type[HTTPSConnection], pins: frozenset[bytes]) -> type[HTTPSConnection]:
    """``base`` refusing, right after the handshake, a server key outside ``pins``."""

    class PinnedConnection(base):  # type: ignore[valid-type,misc]
        def connect(self) -> None:
            super().connect()
            der = self.sock.getpeercert(binary_form=True) if self.sock else None
            if not der or spki_sha256(der) not in pins:
                self.close()
                raise PinMismatchError("the server's public key matches no configured pin")

    return PinnedConnection


def load_client_certificate(context: ssl.SSLContext, policy: TlsPolicy) -> None:
    """Load the client certificate and key into ``context``; nothing stays on disk."""
    if policy.client_certificate is None or policy.client_key is None:
        return
    with _private_directory() as directory:
        cert_path = _write_private(directory / "client.pem", policy.client_certificate)
        key_path = _write_private(directory / "client.key", policy.client_key)
        try:
            context.load_cert_chain(certfile=str(cert_path), keyfile=str(key_path))
        except (ssl.SSLError, ValueError, OSError):
            raise SecretError(
                "SECRET_INVALID",
                "The secret keys 'client_certificate' and 'client_key' are not a matching "
                "PEM certificate and unencrypted private key.",
            ) from None


@contextlib.contextmanager
def _private_directory() -> Iterator[Path]:
    # Only an mTLS client (a client key in the secret) writes files: shutil, tempfile and pathlib
    # are imported here rather than on every cold start (~4 ms).
    import shutil  # noqa: PLC0415
    import tempfile  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    directory = Path(tempfile.mkdtemp(prefix="okta-bridge-"))  # created 0700
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _write_private(path: Path, text: str) -> Path:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    return path
