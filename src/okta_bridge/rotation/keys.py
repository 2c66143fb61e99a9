"""Key pairs for ``private_key_jwt``: a new one like the current one, and public JWKs to compare.

Okta accepts RSA keys of 2048 bits or more and EC keys on P-256/384/521 for client assertions. A
rotation keeps the key family (an app's policy may expect it) and never lowers the strength. kids
carry the date and random bits, so they are unique on the app and say when the key was made.
"""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from okta_bridge.auth import jose
from okta_bridge.auth.client_auth import KEYS

MIN_RSA_BITS = 2048


@dataclass(frozen=True)
class KeyPair:
    """A private key as PKCS#8 PEM and the public JWK (with kid, use and alg) Okta registers."""

    private_pem: str = field(repr=False)
    jwk: dict[str, Any]

    @property
    def kid(self) -> str:
        """The key id both the JWK and the client assertions carry."""
        return str(self.jwk["kid"])


def public_members(private_pem: str) -> dict[str, str]:
    """The public JWK members (``kty`` and ``n``/``e`` or ``crv``/``x``/``y``) of a private key."""
    key, _ = KEYS.load(private_pem)
    return _members(key)


def public_jwk(spki_der: bytes) -> dict[str, str]:
    """The JWK Okta registers for a public key in DER ``SubjectPublicKeyInfo`` form (what
    ``kms:GetPublicKey`` returns): its members, ``use``, ``alg`` (RS256 for RSA, the curve's ES
    algorithm for EC) and ``kid`` = its RFC 7638 thumbprint, so that the kid names the key itself
    and the template, ``make okta-jwk`` and a rotation all derive the same one. Raises ValueError
    for anything but an RSA (2048+) or EC P-256/384/521 public key."""
    from cryptography.hazmat.primitives.serialization import load_der_public_key  # noqa: PLC0415

    try:
        key = load_der_public_key(spki_der)
        members = _members(key)
    except (TypeError, KeyError, ValueError) as exc:
        raise ValueError("not an RSA or EC (P-256/384/521) public key") from exc
    if members["kty"] == "RSA" and _bit_length(members["n"]) < MIN_RSA_BITS:
        raise ValueError(f"an RSA key must have {MIN_RSA_BITS} bits or more")
    alg = "RS256" if members["kty"] == "RSA" else jose.BY_CRV[members["crv"]].alg
    return {**members, "use": "sig", "alg": alg, "kid": jose.thumbprint(members)}


def _members(key: Any) -> dict[str, str]:
    """The public members of an RSA or EC key, private or public."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: PLC0415

    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        key = key.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        return {"kty": "RSA", "n": _b64int(numbers.n), "e": _b64int(numbers.e)}
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise TypeError("RSA or EC keys only")
    point = key.public_numbers()
    curve = jose.BY_NAME[key.curve.name]
    return {
        "kty": "EC",
        "crv": curve.crv,
        "x": _b64int(point.x, curve.size),
        "y": _b64int(point.y, curve.size),
    }


def same_public_key(jwk: dict[str, Any] | Any, members: dict[str, str]) -> bool:
    """Whether a registered JWK is the public half of the key whose members are given."""
    return all(jwk.get(name) == value for name, value in members.items())


def new_key_like(current_pem: str | None, *, now: float | None = None) -> KeyPair:
    """A fresh key of the current key's family and at least its strength (EC P-256 by default)."""
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: PLC0415

    template = public_members(current_pem) if current_pem else {"kty": "EC", "crv": "P-256"}
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if template["kty"] == "RSA":
        bits = max(MIN_RSA_BITS, _bit_length(template["n"]))
        private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        alg = "RS256"
    else:
        private = ec.generate_private_key(jose.ec_curve(template["crv"]))
        alg = jose.BY_CRV[template["crv"]].alg
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(time.time() if now is None else now))
    kid = f"okta-bridge-{stamp}-{secrets.token_hex(4)}"
    jwk = {**_members(private), "kid": kid, "use": "sig", "alg": alg}
    return KeyPair(private_pem=pem, jwk=jwk)


def _b64int(value: int, size: int | None = None) -> str:
    length = size if size is not None else max(1, (value.bit_length() + 7) // 8)
    return base64.urlsafe_b64encode(value.to_bytes(length, "big")).rstrip(b"=").decode()


def _bit_length(n: str) -> int:
    raw = base64.urlsafe_b64decode(n + "=" * (-len(n) % 4))
    return int.from_bytes(raw, "big").bit_length()
