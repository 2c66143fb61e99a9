"""The JOSE names of the keys Okta accepts: one table of EC curves, JWK ``crv`` and JWS ``alg``.

Why one table: client authentication, key rotation and the local stack's servers each map a key
to its ``crv`` and ``alg``; five copies drifted apart once. cryptography is not imported here
(the handler's cold import must not load it): the table names the curve class and ``ec_curve``
builds it when a key is made.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import ECDSA, EllipticCurve
    from cryptography.hazmat.primitives.hashes import HashAlgorithm


class Curve(NamedTuple):
    """One EC curve under its three names, and the byte length of its coordinates (a named
    tuple, not a dataclass: this module is on the handler's cold import, and a dataclass
    definition costs 0.3 ms there)."""

    name: str  # cryptography's ``key.curve.name``
    crv: str  # RFC 7518 6.2.1.1
    alg: str  # RFC 7518 3.4: ECDSA with this curve and its hash
    curve_class: str  # the class in ``cryptography.hazmat.primitives.asymmetric.ec``
    size: int  # RFC 7518 6.2.1.2: ``x`` and ``y`` are this many bytes, zero-padded


CURVES: tuple[Curve, ...] = (
    Curve("secp256r1", "P-256", "ES256", "SECP256R1", 32),
    Curve("secp384r1", "P-384", "ES384", "SECP384R1", 48),
    Curve("secp521r1", "P-521", "ES512", "SECP521R1", 66),
)
BY_NAME: Mapping[str, Curve] = {curve.name: curve for curve in CURVES}
BY_CRV: Mapping[str, Curve] = {curve.crv: curve for curve in CURVES}
BY_ALG: Mapping[str, Curve] = {curve.alg: curve for curve in CURVES}

EC_ALGORITHMS = tuple(curve.alg for curve in CURVES)
RSA_ALGORITHMS = ("RS256", "RS384", "RS512")
PSS_ALGORITHMS = ("PS256", "PS384", "PS512")


def key_types(algorithms: Iterable[str]) -> dict[str, tuple[str, str | None]]:
    """alg -> (kty, crv) the verifying key must have, in the order given; raises KeyError for an
    algorithm that is neither ECDSA on a known curve nor RSA."""
    table: dict[str, tuple[str, str | None]] = {}
    for alg in algorithms:
        if alg in BY_ALG:
            table[alg] = ("EC", BY_ALG[alg].crv)
        elif alg in RSA_ALGORITHMS or alg in PSS_ALGORITHMS:
            table[alg] = ("RSA", None)
        else:
            raise KeyError(alg)
    return table


def ec_curve(crv: str) -> EllipticCurve:
    """A cryptography curve object for a JWK ``crv``; raises KeyError for an unknown one."""
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415 - only to make keys

    curve_class: type[ec.EllipticCurve] = getattr(ec, BY_CRV[crv].curve_class)
    return curve_class()


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7515 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def compact_jws(
    header: Mapping[str, object], claims: Mapping[str, object], sign: Callable[[bytes], bytes]
) -> str:
    """A compact JWS (RFC 7515 7.1) whose signature ``sign`` makes from the signing input: the
    DPoP proofs (an in-memory key) and the KMS-signed client assertions (``kms:Sign``)."""
    signing_input = f"{b64url(_json(header))}.{b64url(_json(claims))}".encode("ascii")
    return f"{signing_input.decode('ascii')}.{b64url(sign(signing_input))}"


def signature(key: Any, alg: str, signing_input: bytes) -> bytes:
    """The JWS signature of ``signing_input`` by an in-memory cryptography private key:
    RSASSA-PKCS1-v1_5 for RS256/384/512 (RFC 7518 3.3), ECDSA for ES256/384/512 as the fixed-size
    ``r || s`` JOSE wants instead of DER (RFC 7518 3.4). Raises KeyError for another ``alg``. The
    signing is cryptography's; only the encoding is done here."""
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415 - only keyed clients
    from cryptography.hazmat.primitives.asymmetric import utils  # noqa: PLC0415

    size = 0 if alg in RSA_ALGORITHMS else BY_ALG[alg].size
    digests: dict[str, Callable[[], hashes.HashAlgorithm]] = {
        "256": hashes.SHA256,
        "384": hashes.SHA384,
        "512": hashes.SHA512,
    }
    digest = digests[alg[2:]]()  # only the one this signature needs (a proof per API request)
    if not size:
        from cryptography.hazmat.primitives.asymmetric import padding  # noqa: PLC0415

        return bytes(key.sign(signing_input, padding.PKCS1v15(), digest))
    r, s = utils.decode_dss_signature(key.sign(signing_input, ecdsa_class()(digest)))
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


@functools.cache
def ecdsa_class() -> type[ECDSA]:
    """cryptography's ``ECDSA`` signature algorithm, less one import.

    ``ec.ECDSA.__init__`` imports cryptography's whole OpenSSL backend module (ciphers, RSA,
    padding: ~8 ms, measured on python3.13) only to check whether RFC 6979 deterministic signing
    is supported, which is never asked for here. This subclass holds the same two values and
    answers the same two properties (what the signing code reads) without that import; the
    signature is still made by cryptography, and the tests verify it with PyJWT.
    """
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415

    class Ecdsa(ec.ECDSA):
        def __init__(self, algorithm: HashAlgorithm) -> None:  # no super(): see above
            self._digest = algorithm

        @property
        def algorithm(self) -> HashAlgorithm:
            return self._digest

        @property
        def deterministic_signing(self) -> bool:
            return False

    return Ecdsa


def _json(value: Mapping[str, object]) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


# RFC 7638 3.2: the members of each public key type that a thumbprint covers.
THUMBPRINT_MEMBERS: Mapping[str, tuple[str, ...]] = {
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
}


def thumbprint(jwk: Mapping[str, object]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a public RSA or EC JWK, base64url: its required members
    only, in lexicographic order, as JSON without whitespace. Raises KeyError for another key type
    and ValueError for a missing member."""
    values = {name: jwk.get(name) for name in THUMBPRINT_MEMBERS[str(jwk.get("kty"))]}
    if not all(isinstance(value, str) and value for value in values.values()):
        raise ValueError("the JWK lacks a required member")
    return b64url(hashlib.sha256(_json(values)).digest())
