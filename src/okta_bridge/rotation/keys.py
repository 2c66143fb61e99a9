"""Key pairs for ``private_key_jwt``: a new one like the current one, and public JWKs to compare.

Okta accepts RSA keys of 2048 bits or more and EC keys on P-256/384/521 for client assertions. A
rotation keeps the key family (an app's policy may expect it) and never lowers the strength. kids
carry the date and random bits, so they are unique on the app and say when the key was made.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from okta_bridge.auth import jose
from okta_bridge.auth.client_auth import KEYS
from okta_bridge.auth.jwk import MIN_RSA_BITS, bit_length, members


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
    return members(key)


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
        bits = max(MIN_RSA_BITS, bit_length(template["n"]))
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
    jwk = {**members(private), "kid": kid, "use": "sig", "alg": alg}
    return KeyPair(private_pem=pem, jwk=jwk)
