"""A throwaway certificate authority for the local stack.

Every local server speaks real TLS with certificates from this CA, so the bridge's TLS client is
exercised exactly as in production: chain validation, hostname checks, expiry and (later) mTLS.
The CA key never touches the disk; leaf keys are written 0600 because ``ssl`` loads them by path.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["LocalCA", "ServerCert", "server_context", "write_private"]

_CA_LIFETIME = dt.timedelta(days=30)
_LEAF_LIFETIME = dt.timedelta(days=7)
# Backdate not_before so a client clock slightly behind ours still accepts fresh certificates.
_BACKDATE = dt.timedelta(hours=1)


@dataclass(frozen=True)
class ServerCert:
    """Paths of a leaf certificate (PEM, leaf only) and its private key (PEM, mode 0600)."""

    cert_path: Path
    key_path: Path


def write_private(path: Path, data: bytes) -> None:
    """Write secret material readable by the owner only, even if the file already existed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "okta-bridge local stack"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class LocalCA:
    """A self-signed EC P-256 CA that issues server and client certificates into ``directory``.

    Certificates carry the extensions Python 3.13's ``VERIFY_X509_STRICT`` insists on (key usage,
    subject and authority key identifiers), so the Lambda runtime's default context accepts them.
    """

    def __init__(self, directory: Path, *, common_name: str = "okta-bridge local CA") -> None:
        self._directory = Path(directory)
        self._directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        public_key = self._key.public_key()
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(_name(common_name))
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + _CA_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(signs_certificates=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        self._ca_pem_path = self._directory / "ca.pem"
        self._ca_pem_path.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))

    @property
    def ca_pem_path(self) -> Path:
        """The CA certificate, to be used as a trust bundle (``cafile``)."""
        return self._ca_pem_path

    @property
    def certificate(self) -> x509.Certificate:
        """The CA certificate object, for tests that inspect issued chains."""
        return self._cert

    def issue(
        self,
        name: str,
        *,
        dns_names: Sequence[str] = ("localhost",),
        ip_addresses: Sequence[str] = ("127.0.0.1",),
        expired: bool = False,
    ) -> ServerCert:
        """Issue a TLS server certificate; ``expired=True`` gives one that expired yesterday."""
        sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
        if not sans:
            raise ValueError("a server certificate needs at least one DNS name or IP address")
        now = _now()
        if expired:
            not_before, not_after = now - dt.timedelta(days=30), now - dt.timedelta(days=1)
        else:
            not_before, not_after = now - _BACKDATE, now + _LEAF_LIFETIME
        builder = self._leaf_builder(
            name, not_before, not_after, ExtendedKeyUsageOID.SERVER_AUTH
        ).add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return self._sign_and_write(name, builder)

    def issue_client(self, name: str) -> ServerCert:
        """Issue a TLS client certificate (clientAuth) for mutual-TLS tests."""
        now = _now()
        builder = self._leaf_builder(
            name, now - _BACKDATE, now + _LEAF_LIFETIME, ExtendedKeyUsageOID.CLIENT_AUTH
        )
        return self._sign_and_write(name, builder)

    def _leaf_builder(
        self,
        name: str,
        not_before: dt.datetime,
        not_after: dt.datetime,
        usage: x509.ObjectIdentifier,
    ) -> x509.CertificateBuilder:
        ca_ski = self._cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        return (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(self._cert.subject)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(signs_certificates=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                critical=False,
            )
        )

    def _sign_and_write(self, name: str, builder: x509.CertificateBuilder) -> ServerCert:
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"certificate name must be a plain file stem, got {name!r}")
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            builder.public_key(key.public_key())
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        result = ServerCert(
            cert_path=self._directory / f"{name}.pem",
            key_path=self._directory / f"{name}.key",
        )
        with self._lock:
            write_private(result.key_path, _key_pem(key))
            result.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return result


def server_context(cert: ServerCert, *, client_ca: Path | None = None) -> ssl.SSLContext:
    """A server-side context (TLS 1.2+); with ``client_ca`` it demands client certificates."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile=cert.cert_path, keyfile=cert.key_path)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=client_ca)
    return context


def _key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    """Digital signature always; certificate and CRL signing only for the CA."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )
