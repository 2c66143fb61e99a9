"""OAuth 2.0 client authentication: a registry from method name to the parts it adds to a request.

Adding a method is adding one entry to ``METHODS``. ``private_key_jwt`` builds a fresh assertion
for every attempt (Okta consumes the ``jti`` even when the request fails) and either parses the PEM
key once per environment (an RSA-2048 load costs ~40 ms) or, for a secret naming ``kms_key_id``,
has the assertion signed by ``kms:Sign`` (the ``sign`` the token endpoint passes in), so that no
private key is ever in the process. The JWS envelope is ``jose``'s (a few lines over base64url);
the signature is cryptography's, imported only when a PEM key is used, so secret-based and
KMS-signed clients never pay for it. PyJWT is not used here: it imports every algorithm it knows
and ``urllib.request`` for its JWKS client (~98 ms measured on a cold start).
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
from collections.abc import Callable
from typing import Any, Final

from okta_bridge.auth import jose
from okta_bridge.errors import SecretError
from okta_bridge.records import Record
from okta_bridge.secret.credentials import Credentials

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Okta accepts at most one hour; five minutes is plenty for one request and limits replay.
ASSERTION_LIFETIME = 300


class ClientAuth(Record):
    """Headers and form fields that authenticate the client on one token request. Both carry
    the client's secret or assertion, so the repr shows neither (``okta_bridge.records``); a
    fresh dict each when not given."""

    _FIELDS = ("headers", "form")
    _HIDDEN = frozenset(_FIELDS)
    __slots__ = _FIELDS

    headers: Final[dict[str, str]]
    form: Final[dict[str, str]]

    def __init__(
        self, headers: dict[str, str] | None = None, form: dict[str, str] | None = None
    ) -> None:
        self.headers = {} if headers is None else headers
        self.form = {} if form is None else form

    __hash__ = None  # type: ignore[assignment] # holds dicts: unhashable, as before


# Signs a JWS signing input with the credentials' KMS key (one kms:Sign); see kms_signing.
AssertionSigner = Callable[[Credentials, bytes], bytes]
Method = Callable[[Credentials, float, AssertionSigner | None], ClientAuth]


def client_secret_basic(
    credentials: Credentials, _now: float, _sign: AssertionSigner | None = None
) -> ClientAuth:
    """RFC 6749 2.3.1: HTTP Basic with the client id and secret (Okta's default)."""
    pair = f"{credentials.client_id}:{credentials.client_secret or ''}".encode()
    return ClientAuth(headers={"Authorization": "Basic " + base64.b64encode(pair).decode()})


def client_secret_post(
    credentials: Credentials, _now: float, _sign: AssertionSigner | None = None
) -> ClientAuth:
    """RFC 6749 2.3.1: the client id and secret in the form body."""
    return ClientAuth(
        form={"client_id": credentials.client_id, "client_secret": credentials.client_secret or ""}
    )


def private_key_jwt(
    credentials: Credentials, now: float, sign: AssertionSigner | None = None
) -> ClientAuth:
    """RFC 7523 2.2: a JWT signed with the client's private key (in the secret, or in KMS), new
    for every request."""
    claims = {
        "iss": credentials.client_id,  # RFC 7523 3.1: the client
        "sub": credentials.client_id,  # RFC 7523 3.2: the client, for client authentication
        "aud": credentials.token_url,  # RFC 7523 3.3: Okta wants the full token endpoint URL
        "iat": int(now),  # RFC 7519 4.1.6
        "exp": int(now) + ASSERTION_LIFETIME,  # RFC 7523 3.4; Okta allows at most 1 hour
        "jti": os.urandom(16).hex(),  # RFC 7523 3.7: single use; os.urandom, safe after restore
    }
    if credentials.kms_key_id is not None:
        if sign is None:
            raise ValueError("a KMS-signed assertion needs a signer")
        header = {"alg": credentials.key_algorithm, "typ": "JWT", "kid": credentials.key_id or ""}
        assertion = jose.compact_jws(header, claims, lambda data: sign(credentials, data))
    else:
        assertion = _pem_signed(credentials, claims)
    return ClientAuth(
        form={
            "client_id": credentials.client_id,
            "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion,
        }
    )


def _pem_signed(credentials: Credentials, claims: dict[str, object]) -> str:
    key, algorithm = KEYS.load(credentials.private_key or "")
    header = {"alg": algorithm, "typ": "JWT"}
    if credentials.key_id:
        header["kid"] = credentials.key_id
    return jose.compact_jws(header, claims, lambda data: jose.signature(key, algorithm, data))


METHODS: dict[str, Method] = {
    "client_secret_basic": client_secret_basic,
    "client_secret_post": client_secret_post,
    "private_key_jwt": private_key_jwt,
}


def authenticate(
    credentials: Credentials, now: float | None = None, *, sign: AssertionSigner | None = None
) -> ClientAuth:
    """The client authentication parts for ``credentials``' configured method; ``sign`` is how
    a KMS-held key signs (needed when the secret names ``kms_key_id``)."""
    method = METHODS[credentials.auth_method]
    return method(credentials, time.time() if now is None else now, sign)


class KeyCache:
    """Parsed private keys by PEM digest; keeps the last two (old and new during a rotation)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, tuple[Any, str]] = {}
        self.loads = 0

    def load(self, pem: str) -> tuple[Any, str]:
        """The parsed key and its JWS algorithm; raises ``SecretError`` if the PEM is unusable."""
        digest = hashlib.sha256(pem.encode()).hexdigest()
        with self._lock:
            if digest not in self._keys:
                self.loads += 1
                self._keys[digest] = _parse_key(pem)
                while len(self._keys) > 2:
                    del self._keys[next(iter(self._keys))]
            return self._keys[digest]

    def __contains__(self, pem: object) -> bool:
        """Whether ``pem`` is parsed already."""
        if not isinstance(pem, str):
            return False
        digest = hashlib.sha256(pem.encode()).hexdigest()
        with self._lock:
            return digest in self._keys

    def clear(self) -> None:
        """Forget every parsed key (SnapStart: a snapshot must hold none)."""
        with self._lock:
            self._keys.clear()

    def __len__(self) -> int:
        return len(self._keys)


KEYS = KeyCache()


def _parse_key(pem: str) -> tuple[Any, str]:
    from cryptography.exceptions import UnsupportedAlgorithm  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: PLC0415
    from cryptography.hazmat.primitives.serialization import load_pem_private_key  # noqa: PLC0415

    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise SecretError(
            "SECRET_INVALID",
            "The secret key 'private_key' is not an unencrypted PEM private key.",
        ) from None
    except UnsupportedAlgorithm as exc:
        raise SecretError(
            "SECRET_INVALID",
            f"The secret key 'private_key' cannot be used ({type(exc).__name__}).",
        ) from None
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 2048:
            raise SecretError("SECRET_INVALID", "The RSA private key must be 2048 bits or more.")
        return key, "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in jose.BY_NAME:
        return key, jose.BY_NAME[key.curve.name].alg
    raise SecretError(
        "SECRET_INVALID", "The private key must be RSA (2048+) or EC P-256/P-384/P-521."
    )
