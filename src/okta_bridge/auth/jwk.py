"""Public JWKs of the keys Okta accepts for client assertions (RFC 7517, 7518, 7638).

One place for the members of an RSA or EC public key, shared by the rotation's key pairs, the
KMS strategy, the template's ``KmsPublicJwk`` custom resource and ``make okta-jwk``: each must
register, compare or print the same JWK, with the same thumbprint kid. cryptography is imported
only when a key is read.
"""

from __future__ import annotations

import base64
from typing import Any

from okta_bridge.auth import jose

MIN_RSA_BITS = 2048


def public_jwk(spki_der: bytes) -> dict[str, str]:
    """The JWK Okta registers for a public key in DER ``SubjectPublicKeyInfo`` form (what
    ``kms:GetPublicKey`` returns): its members, ``use``, ``alg`` (RS256 for RSA, the curve's ES
    algorithm for EC) and ``kid`` = its RFC 7638 thumbprint, so that the kid names the key itself
    and the template, ``make okta-jwk`` and a rotation all derive the same one. Raises ValueError
    for anything but an RSA (2048+) or EC P-256/384/521 public key."""
    from cryptography.hazmat.primitives.serialization import load_der_public_key  # noqa: PLC0415

    try:
        key = load_der_public_key(spki_der)
        public = members(key)
    except (TypeError, KeyError, ValueError) as exc:
        raise ValueError("not an RSA or EC (P-256/384/521) public key") from exc
    if public["kty"] == "RSA" and bit_length(public["n"]) < MIN_RSA_BITS:
        raise ValueError(f"an RSA key must have {MIN_RSA_BITS} bits or more")
    alg = "RS256" if public["kty"] == "RSA" else jose.BY_CRV[public["crv"]].alg
    return {**public, "use": "sig", "alg": alg, "kid": jose.thumbprint(public)}


def members(key: Any) -> dict[str, str]:
    """The public members of an RSA or EC key, private or public."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: PLC0415

    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        key = key.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        return {"kty": "RSA", "n": b64int(numbers.n), "e": b64int(numbers.e)}
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise TypeError("RSA or EC keys only")
    point = key.public_numbers()
    curve = jose.BY_NAME[key.curve.name]
    return {
        "kty": "EC",
        "crv": curve.crv,
        "x": b64int(point.x, curve.size),
        "y": b64int(point.y, curve.size),
    }


def b64int(value: int, size: int | None = None) -> str:
    length = size if size is not None else max(1, (value.bit_length() + 7) // 8)
    return base64.urlsafe_b64encode(value.to_bytes(length, "big")).rstrip(b"=").decode()


def bit_length(n: str) -> int:
    raw = base64.urlsafe_b64decode(n + "=" * (-len(n) % 4))
    return int.from_bytes(raw, "big").bit_length()
