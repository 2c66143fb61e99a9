"""``--ca-bundle``: the enterprise CA certificates an artifact carries, checked before a build."""

from __future__ import annotations

import datetime
import re
import ssl
from pathlib import Path

from okta_bridge_dev.release.errors import UsageError

__all__ = ["ca_bundle_warnings", "validate_ca_bundle"]

_PEM_CERT = re.compile(
    r"-----BEGIN CERTIFICATE-----\s+([A-Za-z0-9+/=\s]+?)\s+-----END CERTIFICATE-----"
)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def validate_ca_bundle(path: Path) -> int:
    """Check ``path`` is a PEM bundle of certificates (and nothing secret); return their count.

    Checked here rather than at the first invocation: a DER file, an empty file or a key would
    otherwise surface as a ``config`` error in production, or worse, ship a private key.
    """
    if not path.is_file():
        raise UsageError(f"--ca-bundle {path}: no such file")
    if not _SAFE_NAME.match(path.name):
        raise UsageError(
            f"--ca-bundle {path}: rename it to letters, digits, '.', '-' or '_' only "
            "(the name becomes the template's CaBundleFile parameter)"
        )
    raw = path.read_bytes()
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise UsageError(
            f"--ca-bundle {path} is not PEM text (DER?): convert it with "
            f"`openssl x509 -inform der -in {path.name} -out {path.stem}.pem`"
        ) from None
    if "PRIVATE KEY-----" in text:
        raise UsageError(
            f"--ca-bundle {path} contains a PRIVATE KEY: the bundle must hold only the CA "
            "certificates; remove the key (it must never be shipped in the artifact)"
        )
    blocks = _PEM_CERT.findall(text)
    if not blocks:
        raise UsageError(
            f"--ca-bundle {path} has no '-----BEGIN CERTIFICATE-----' block: export the "
            "enterprise root CA as PEM (Base64) and pass that file"
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cadata=text)
    except ssl.SSLError as exc:
        raise UsageError(
            f"--ca-bundle {path}: a certificate does not parse ({exc.reason or exc}): "
            "re-export the bundle as PEM"
        ) from None
    return len(blocks)


def ca_bundle_warnings(path: Path) -> list[str]:
    """Expired or non-CA certificates in the bundle: worth a warning, not a refusal."""
    try:
        from cryptography import x509  # noqa: PLC0415 - optional, only for these warnings
    except ImportError:  # pragma: no cover - cryptography is a dependency of the project
        return []
    warnings: list[str] = []
    now = datetime.datetime.now(datetime.UTC)
    for index, cert in enumerate(x509.load_pem_x509_certificates(path.read_bytes()), start=1):
        subject = cert.subject.rfc4514_string() or "(no subject)"
        if cert.not_valid_after_utc < now:
            warnings.append(
                f"certificate {index} ({subject}) expired on {cert.not_valid_after_utc:%Y-%m-%d}"
            )
        try:
            is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            warnings.append(
                f"certificate {index} ({subject}) is not a CA certificate: TLS verification "
                "needs the issuing root (or intermediate), not the server's own certificate"
            )
    return warnings
