"""How the local Okta's token endpoints authenticate a client, as strictly as Okta does.

Exactly one credential per request (Basic header, ``client_secret`` in the body, or a client
assertion), and it must be the app's configured method. Basic credentials are form-encoded
(RFC 6749 2.3.1); client assertions (RFC 7523) are checked against the app's ACTIVE keys, with
``aud`` equal to the token URL invoked, at most one hour of lifetime and a single-use ``jti``.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

import jwt

from okta_bridge.auth.jose import EC_ALGORITHMS, RSA_ALGORITHMS, key_types
from okta_bridge_dev.emulators.okta.errors import OAuthError, invalid_client
from okta_bridge_dev.emulators.okta.records import Client, ClientKey, equal
from okta_bridge_dev.emulators.routing import RecordedRequest

if TYPE_CHECKING:  # the model reads CLIENT_AUTH_METHODS from here
    from okta_bridge_dev.emulators.okta.model import OktaOrg

__all__ = [
    "ASSERTION_ALGORITHMS",
    "CLIENT_ASSERTION_TYPE",
    "CLIENT_AUTH_METHODS",
    "authenticate",
]

CLIENT_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

ASSERTION_ALGORITHMS: Mapping[str, tuple[str, str | None]] = key_types(
    (*RSA_ALGORITHMS, *EC_ALGORITHMS)
)
"""alg -> (kty, crv) the verifying key of a client assertion must have."""

MAX_ASSERTION_LIFETIME = 3600
"""Okta rejects client assertions whose ``exp`` is more than an hour ahead."""

_BAD_SECRET = "The client secret supplied for a confidential client is invalid."  # noqa: S105
_UNKNOWN_CLIENT = "Invalid value for 'client_id' parameter."
_MULTIPLE_CREDENTIALS = (
    "Cannot supply multiple client credentials. Use one of the following: credentials in the "
    "Authorization header, credentials in the post body, or a client_assertion in the post body."
)


def _basic_credentials(header: str) -> tuple[str, str]:
    """(client_id, secret) from ``Basic base64(id:secret)``, still form-encoded (RFC 6749 2.3.1)."""
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise invalid_client()
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as error:
        raise invalid_client() from error
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise invalid_client()
    return client_id, secret


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def authenticate(
    org: OktaOrg, request: RecordedRequest, form: Mapping[str, str], *, audience: str
) -> Client:
    """Identify the client by exactly one credential, then enforce its configured method;
    raises OAuthError as Okta answers."""
    authorization = request.headers.get("authorization")
    presented = [
        method
        for method, present in (
            ("client_secret_basic", authorization is not None),
            ("client_secret_post", "client_secret" in form),
            ("private_key_jwt", "client_assertion" in form or "client_assertion_type" in form),
        )
        if present
    ]
    if len(presented) > 1:
        raise OAuthError(400, "invalid_request", _MULTIPLE_CREDENTIALS)
    method = presented[0] if presented else "none"
    secret: str | None = None
    if authorization is not None:
        raw_id, secret = _basic_credentials(authorization)
        client = org.client(raw_id) or org.client(unquote_plus(raw_id))
    elif method == "private_key_jwt":
        client = org.client(_assertion_subject(form))
    else:
        client = org.client(form.get("client_id", ""))
        secret = form.get("client_secret")
    if client is None:
        raise invalid_client(_UNKNOWN_CLIENT)
    if form.get("client_id", client.client_id) != client.client_id:
        raise invalid_client()
    if method != client.auth_method:
        raise invalid_client()
    if method == "private_key_jwt":
        _verify_assertion(org, client, form["client_assertion"], audience)
    elif not _secret_matches(
        org, client, secret or "", form_encoded=method == "client_secret_basic"
    ):
        raise invalid_client(_BAD_SECRET)
    return client


def _secret_matches(org: OktaOrg, client: Client, presented: str, *, form_encoded: bool) -> bool:
    """True if ``presented`` is any ACTIVE secret of the client (Okta accepts both of two)."""
    active = org.active_secrets(client)
    if not presented:
        return False
    # Basic credentials should be form-encoded (RFC 6749 2.3.1); like Okta, accept raw ones too.
    candidates = {presented, unquote_plus(presented)} if form_encoded else {presented}
    return any(equal(c, expected) for c in candidates for expected in active)


def _assertion_subject(form: Mapping[str, str]) -> str:
    if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
        raise OAuthError(
            400,
            "invalid_request",
            f"The client_assertion_type must be {CLIENT_ASSERTION_TYPE}.",
        )
    assertion = form.get("client_assertion")
    if not assertion:
        raise OAuthError(400, "invalid_request", "The client_assertion parameter is required.")
    try:
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError as error:
        raise invalid_client("The client_assertion token is malformed.") from error
    subject = claims.get("sub")
    if not isinstance(subject, str):
        raise invalid_client("The client_assertion token must have a sub claim.")
    return subject


def _verify_assertion(org: OktaOrg, client: Client, assertion: str, audience: str) -> None:
    """RFC 7523 checks against the client's ACTIVE keys, the way Okta reports them; a valid
    ``jti`` is consumed on success."""
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError as error:
        raise invalid_client("The client_assertion token is malformed.") from error
    algorithm = header.get("alg")
    if not isinstance(algorithm, str) or algorithm not in ASSERTION_ALGORITHMS:
        raise invalid_client("The client_assertion JWT algorithm is not supported.")
    kty, crv = ASSERTION_ALGORITHMS[algorithm]
    active = org.active_keys(client)
    keys = [k for k in active if k.kty == kty and (crv is None or k.crv == crv)]
    kid = header.get("kid")
    if kid is not None:
        keys = [k for k in keys if k.kid == kid]
    if not keys:
        raise invalid_client("The client_assertion JWT kid is invalid.")
    claims = _verified_claims(assertion, algorithm, keys)
    _check_assertion_claims(org, client, claims, audience)


def _verified_claims(assertion: str, algorithm: str, keys: Sequence[ClientKey]) -> dict[str, Any]:
    for candidate in keys:
        try:
            return jwt.decode(
                assertion,
                candidate.key,
                algorithms=[algorithm],
                options={
                    "verify_exp": False,
                    "verify_aud": False,
                    "verify_iss": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "verify_sub": False,
                    "verify_jti": False,
                },
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError as error:
            raise invalid_client("The client_assertion token is malformed.") from error
    raise invalid_client("The client_assertion signature is invalid.")


def _check_assertion_claims(
    org: OktaOrg, client: Client, claims: Mapping[str, Any], audience: str
) -> None:
    # RFC 7523 3: iss and sub are the client_id, aud the token endpoint, exp required.
    if claims.get("iss") != client.client_id or claims.get("sub") != client.client_id:
        raise invalid_client("The client_assertion iss and sub claims must be the client_id.")
    if claims.get("aud") != audience:
        raise invalid_client(
            "The audience claim for client_assertion must be the endpoint invoked for the request."
        )
    now = time.time()
    expires = _number(claims.get("exp"))
    if expires is None:
        raise invalid_client("The client_assertion token must have an exp claim.")
    if expires <= now:
        raise invalid_client("The client_assertion token is expired.")
    if expires > now + MAX_ASSERTION_LIFETIME:
        raise invalid_client(
            "The client_assertion token has an expiration too far into the future."
        )
    not_before = _number(claims.get("nbf"))
    if not_before is not None and not_before > now:
        raise invalid_client("The client_assertion token is not valid yet.")
    jti = claims.get("jti")
    if jti is None:
        return
    if not isinstance(jti, str):
        raise invalid_client("The client_assertion jti claim must be a string.")
    if not org.spend_jti(client.client_id, jti, expires=expires, now=now):
        raise invalid_client("The client_assertion token has already been used.")
