"""An Okta-like custom authorization server, close enough to Okta's to catch integration bugs.

It enforces what real Okta enforces and a hand-written mock usually forgets: the app's configured
client authentication method, RFC 6749 form-encoding of Basic credentials, single-use client
assertions with ``aud`` equal to the token URL and at most one hour of lifetime, scopes granted per
client, ``openid`` for the password grant, policy denials and the org rate limit with its headers.
Error bodies and messages follow Okta's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import secrets
import ssl
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from .servers import RecordedRequest, Response, Route, TLSServer

__all__ = [
    "ASSERTION_ALGORITHMS",
    "CLIENT_ASSERTION_TYPE",
    "CLIENT_AUTH_METHODS",
    "OAuthError",
    "OktaServer",
    "public_jwk",
]

CLIENT_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

# alg -> (kty, crv) the verifying key must have.
ASSERTION_ALGORITHMS: Mapping[str, tuple[str, str | None]] = {
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
}

MAX_ASSERTION_LIFETIME = 3600
"""Okta rejects client assertions whose ``exp`` is more than an hour ahead."""

RATE_LIMIT_WINDOW = 60
NOMINAL_RATE_LIMIT = 10_000
"""What ``X-Rate-Limit-Limit`` reports while ``rate_limit`` is None (no limit enforced)."""

# Okta refuses OIDC scopes in the client credentials grant.
_OIDC_SCOPES = frozenset(
    {"openid", "profile", "email", "address", "phone", "offline_access", "groups", "device_sso"}
)

_AUTH_FAILED = (
    "Client authentication failed. Either the client or the client credentials are invalid."
)
_BAD_SECRET = "The client secret supplied for a confidential client is invalid."  # noqa: S105
_UNKNOWN_CLIENT = "Invalid value for 'client_id' parameter."
_MULTIPLE_CREDENTIALS = (
    "Cannot supply multiple client credentials. Use one of the following: credentials in the "
    "Authorization header, credentials in the post body, or a client_assertion in the post body."
)
_POLICY_DENIED = (
    "Policy evaluation failed for this request, please check the policy configurations."
)
_RATE_LIMITED = "API call exceeded rate limit due to too many requests."
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(Exception):
    """An OAuth error answer: ``{"error", "error_description"}`` with its HTTP status."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


def _invalid_client(description: str = _AUTH_FAILED) -> OAuthError:
    return OAuthError(401, "invalid_client", description)


def okta_error_body(code: str, summary: str) -> dict[str, Any]:
    """Okta's management-style error JSON (used for 404, 405 and 429)."""
    return {
        "errorCode": code,
        "errorSummary": summary,
        "errorLink": code,
        "errorId": "oae" + secrets.token_urlsafe(16),
        "errorCauses": [],
    }


@dataclass(frozen=True)
class _ClientKey:
    kid: str | None
    kty: str
    crv: str | None
    key: Any  # a cryptography public key


@dataclass(frozen=True)
class _Client:
    client_id: str
    auth_method: str
    secret: str | None
    keys: tuple[_ClientKey, ...]
    scopes: frozenset[str]
    users: Mapping[str, str]


def _client_key(jwk: Mapping[str, Any]) -> _ClientKey:
    """Parse a registered public JWK; private members are refused so tests cannot mix them up."""
    if any(member in jwk for member in ("d", "p", "q", "k")):
        raise ValueError("register public JWKs only")
    parsed = jwt.PyJWK(dict(jwk))
    return _ClientKey(kid=jwk.get("kid"), kty=str(jwk["kty"]), crv=jwk.get("crv"), key=parsed.key)


def _form(request: RecordedRequest) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise OAuthError(
            400, "invalid_request", "The request body must be application/x-www-form-urlencoded."
        )
    try:
        pairs = parse_qsl(request.body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError as error:
        raise OAuthError(400, "invalid_request", "The request body is not UTF-8.") from error
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise OAuthError(400, "invalid_request", f"The '{name}' parameter is repeated.")
        form[name] = value
    return form


def _basic_credentials(header: str) -> tuple[str, str]:
    """(client_id, secret) from ``Basic base64(id:secret)``, still form-encoded (RFC 6749 2.3.1)."""
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise _invalid_client()
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as error:
        raise _invalid_client() from error
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise _invalid_client()
    return client_id, secret


def _equal(presented: str, expected: str) -> bool:
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


class OktaServer(TLSServer):
    """Okta custom authorization server ``/oauth2/{auth_server_id}``: discovery, JWKS and token.

    Counted routes: "token", "keys", "discovery" (and "not_found"). Attributes a test may change
    at any time: ``token_lifetime``, ``rate_limit`` (token requests per 60 s window, None for no
    limit). ``issued_tokens`` holds every token minted, for leak scans.
    """

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        *,
        auth_server_id: str = "default",
        audience: str = "api://default",
        token_lifetime: int = 3600,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(ssl_context, host=host, port=port)
        self.auth_server_id = auth_server_id
        self.audience = audience
        self.token_lifetime = token_lifetime
        self.rate_limit: int | None = None
        self.issued_tokens: list[str] = []
        self._state = threading.Lock()
        self._clients: dict[str, _Client] = {}
        self._denied: set[str] = set()
        self._used_jtis: dict[tuple[str, str], float] = {}
        self._signing_keys: list[tuple[str, rsa.RSAPrivateKey]] = []
        self._window_end = 0.0
        self._window_used = 0
        prefix = f"/oauth2/{auth_server_id}"
        self._routes = {
            f"{prefix}/v1/token": Route("token", self._token),
            f"{prefix}/v1/keys": Route("keys", self._keys),
            f"{prefix}/.well-known/oauth-authorization-server": Route("discovery", self._discovery),
            f"{prefix}/.well-known/openid-configuration": Route("discovery", self._discovery),
        }
        self.rotate_signing_key()

    # -- URLs ------------------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        """``https://127.0.0.1:PORT/oauth2/{auth_server_id}``, the ``iss`` of every token."""
        return f"{self.base_url}/oauth2/{self.auth_server_id}"

    @property
    def token_url(self) -> str:
        """The token endpoint; also the only ``aud`` accepted in client assertions."""
        return f"{self.issuer}/v1/token"

    @property
    def jwks_url(self) -> str:
        """The public signing keys."""
        return f"{self.issuer}/v1/keys"

    # -- configuration ---------------------------------------------------------------------

    def register_client(
        self,
        client_id: str,
        *,
        auth_method: str,
        client_secret: str | None = None,
        jwks: Sequence[Mapping[str, Any]] = (),
        scopes: Iterable[str] = ("api.access",),
        users: Mapping[str, str] | None = None,
    ) -> None:
        """Register (or replace) an app; ``users`` (name -> password) enables the password grant."""
        if auth_method not in CLIENT_AUTH_METHODS:
            raise ValueError(f"auth_method must be one of {CLIENT_AUTH_METHODS}")
        if auth_method == "private_key_jwt":
            if not jwks:
                raise ValueError("private_key_jwt needs at least one public JWK")
        elif not client_secret:
            raise ValueError(f"{auth_method} needs a client_secret")
        client = _Client(
            client_id=client_id,
            auth_method=auth_method,
            secret=client_secret,
            keys=tuple(_client_key(jwk) for jwk in jwks),
            scopes=frozenset(scopes),
            users=dict(users or {}),
        )
        with self._state:
            self._clients[client_id] = client

    def deny_client(self, client_id: str) -> None:
        """Make the client's token requests fail the access policy (403) until ``allow_client``."""
        with self._state:
            self._denied.add(client_id)

    def allow_client(self, client_id: str) -> None:
        """Undo ``deny_client``."""
        with self._state:
            self._denied.discard(client_id)

    def reset_rate_limit(self) -> None:
        """Start a fresh rate-limit window with the next token request."""
        with self._state:
            self._window_end = 0.0
            self._window_used = 0

    def rotate_signing_key(self) -> str:
        """Sign new tokens with a fresh RSA-2048 key; older keys stay published. Returns its kid."""
        kid = secrets.token_urlsafe(16)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        with self._state:
            self._signing_keys.append((kid, key))
        return kid

    def public_jwks(self) -> dict[str, Any]:
        """The JWKS document served at ``jwks_url``, newest key first."""
        with self._state:
            keys = list(reversed(self._signing_keys))
        published = []
        for kid, key in keys:
            jwk = dict(RSAAlgorithm.to_jwk(key.public_key(), as_dict=True))
            jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
            published.append(jwk)
        return {"keys": published}

    # -- routing ---------------------------------------------------------------------------

    def route(self, request: RecordedRequest) -> Route:
        return self._routes.get(request.path, Route("not_found", self._not_found))

    def _not_found(self, request: RecordedRequest) -> Response:
        return Response.json(404, okta_error_body("E0000007", "Not found: Resource not found."))

    def _method_not_allowed(self, allowed: str) -> Response:
        body = okta_error_body("E0000022", "The endpoint does not support the provided HTTP method")
        return Response.json(405, body, {"Allow": allowed})

    def _discovery(self, request: RecordedRequest) -> Response:
        if request.method not in ("GET", "HEAD"):
            return self._method_not_allowed("GET")
        with self._state:
            scopes = sorted({s for c in self._clients.values() for s in c.scopes})
        document = {
            "issuer": self.issuer,
            "token_endpoint": self.token_url,
            "jwks_uri": self.jwks_url,
            "token_endpoint_auth_methods_supported": list(CLIENT_AUTH_METHODS),
            "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
            "grant_types_supported": ["client_credentials", "password"],
            "scopes_supported": scopes,
        }
        if request.path.endswith("/openid-configuration"):
            document.update(
                {
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "response_types_supported": ["token", "id_token"],
                }
            )
        return Response.json(200, document)

    def _keys(self, request: RecordedRequest) -> Response:
        if request.method not in ("GET", "HEAD"):
            return self._method_not_allowed("GET")
        return Response.json(200, self.public_jwks(), {"Cache-Control": "max-age=300"})

    # -- token endpoint --------------------------------------------------------------------

    def _token(self, request: RecordedRequest) -> Response:
        if request.method != "POST":
            return self._method_not_allowed("POST")
        limit_headers, allowed = self._count_against_rate_limit()
        headers = {**limit_headers, **_NO_STORE}
        if not allowed:
            return Response.json(429, okta_error_body("E0000047", _RATE_LIMITED), headers)
        try:
            form = _form(request)
            client = self._authenticate(request, form)
            scopes, subject = self._grant(client, form)
            self._check_policy(client)
        except OAuthError as error:
            body = {"error": error.error, "error_description": error.description}
            return Response.json(error.status, body, headers)
        return Response.json(200, self._mint(client, subject, scopes, form), headers)

    def _check_policy(self, client: _Client) -> None:
        with self._state:
            denied = client.client_id in self._denied
        if denied:
            raise OAuthError(403, "access_denied", _POLICY_DENIED)

    def _count_against_rate_limit(self) -> tuple[dict[str, str], bool]:
        now = time.time()
        with self._state:
            if now >= self._window_end:
                self._window_end, self._window_used = now + RATE_LIMIT_WINDOW, 0
            self._window_used += 1
            limit = self.rate_limit
            reported = limit if limit is not None else NOMINAL_RATE_LIMIT
            headers = {
                "X-Rate-Limit-Limit": str(reported),
                "X-Rate-Limit-Remaining": str(max(reported - self._window_used, 0)),
                "X-Rate-Limit-Reset": str(math.ceil(self._window_end)),
            }
            return headers, limit is None or self._window_used <= limit

    def _authenticate(self, request: RecordedRequest, form: Mapping[str, str]) -> _Client:
        """Identify the client by exactly one credential, then enforce its configured method."""
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
            client = self._lookup(raw_id) or self._lookup(unquote_plus(raw_id))
        elif method == "private_key_jwt":
            client = self._lookup(self._assertion_subject(form))
        else:
            client = self._lookup(form.get("client_id", ""))
            secret = form.get("client_secret")
        if client is None:
            raise _invalid_client(_UNKNOWN_CLIENT)
        if form.get("client_id", client.client_id) != client.client_id:
            raise _invalid_client()
        if method != client.auth_method:
            raise _invalid_client()
        if method == "private_key_jwt":
            self._verify_assertion(client, form["client_assertion"])
        elif not self._secret_matches(
            client, secret or "", form_encoded=method == "client_secret_basic"
        ):
            raise _invalid_client(_BAD_SECRET)
        return client

    def _lookup(self, client_id: str) -> _Client | None:
        with self._state:
            return self._clients.get(client_id)

    @staticmethod
    def _secret_matches(client: _Client, presented: str, *, form_encoded: bool) -> bool:
        # Basic credentials should be form-encoded (RFC 6749 2.3.1); like Okta, accept raw ones too.
        if client.secret is None or not presented:
            return False
        candidates = {presented, unquote_plus(presented)} if form_encoded else {presented}
        return any(_equal(candidate, client.secret) for candidate in candidates)

    @staticmethod
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
            raise _invalid_client("The client_assertion token is malformed.") from error
        subject = claims.get("sub")
        if not isinstance(subject, str):
            raise _invalid_client("The client_assertion token must have a sub claim.")
        return subject

    def _verify_assertion(self, client: _Client, assertion: str) -> None:
        """RFC 7523 checks, the way Okta reports them; a valid ``jti`` is consumed on success."""
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError as error:
            raise _invalid_client("The client_assertion token is malformed.") from error
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in ASSERTION_ALGORITHMS:
            raise _invalid_client("The client_assertion JWT algorithm is not supported.")
        kty, crv = ASSERTION_ALGORITHMS[algorithm]
        keys = [k for k in client.keys if k.kty == kty and (crv is None or k.crv == crv)]
        kid = header.get("kid")
        if kid is not None:
            keys = [k for k in keys if k.kid == kid]
        if not keys:
            raise _invalid_client("The client_assertion JWT kid is invalid.")
        claims = self._verified_claims(assertion, algorithm, keys)
        self._check_assertion_claims(client, claims)

    @staticmethod
    def _verified_claims(
        assertion: str, algorithm: str, keys: Sequence[_ClientKey]
    ) -> dict[str, Any]:
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
                raise _invalid_client("The client_assertion token is malformed.") from error
        raise _invalid_client("The client_assertion signature is invalid.")

    def _check_assertion_claims(self, client: _Client, claims: Mapping[str, Any]) -> None:
        if claims.get("iss") != client.client_id or claims.get("sub") != client.client_id:
            raise _invalid_client("The client_assertion iss and sub claims must be the client_id.")
        if claims.get("aud") != self.token_url:
            raise _invalid_client(
                "The audience claim for client_assertion must be the endpoint invoked for the "
                "request."
            )
        now = time.time()
        expires = _number(claims.get("exp"))
        if expires is None:
            raise _invalid_client("The client_assertion token must have an exp claim.")
        if expires <= now:
            raise _invalid_client("The client_assertion token is expired.")
        if expires > now + MAX_ASSERTION_LIFETIME:
            raise _invalid_client(
                "The client_assertion token has an expiration too far into the future."
            )
        not_before = _number(claims.get("nbf"))
        if not_before is not None and not_before > now:
            raise _invalid_client("The client_assertion token is not valid yet.")
        jti = claims.get("jti")
        if jti is None:
            return
        if not isinstance(jti, str):
            raise _invalid_client("The client_assertion jti claim must be a string.")
        with self._state:
            self._used_jtis = {k: exp for k, exp in self._used_jtis.items() if exp > now}
            if (client.client_id, jti) in self._used_jtis:
                raise _invalid_client("The client_assertion token has already been used.")
            self._used_jtis[(client.client_id, jti)] = expires

    # -- grants ----------------------------------------------------------------------------

    def _grant(self, client: _Client, form: Mapping[str, str]) -> tuple[list[str], str]:
        """Validate the grant; return the granted scopes and the token's subject."""
        grant_type = form.get("grant_type")
        requested = list(dict.fromkeys(form.get("scope", "").split()))
        grant_types = ["client_credentials"] + (["password"] if client.users else [])
        if not grant_type:
            raise OAuthError(400, "invalid_request", "The grant_type parameter is required.")
        if grant_type not in ("client_credentials", "password"):
            raise OAuthError(
                400,
                "unsupported_grant_type",
                f"The authorization grant type is not supported by the authorization server. "
                f"Configured grant types: [{', '.join(grant_types)}].",
            )
        if grant_type not in grant_types:
            raise OAuthError(
                400,
                "unauthorized_client",
                "The client is not authorized to use the provided grant type. "
                f"Configured grant types: [{', '.join(grant_types)}].",
            )
        if grant_type == "client_credentials":
            if not requested:
                raise OAuthError(
                    400,
                    "invalid_scope",
                    "The authorization server resource does not have any configured default "
                    "scopes, 'scope' must be provided.",
                )
            self._check_scopes(client, requested, forbidden=_OIDC_SCOPES)
            return requested, client.client_id
        return requested, self._password_subject(client, form, requested)

    @staticmethod
    def _password_subject(client: _Client, form: Mapping[str, str], requested: list[str]) -> str:
        if "openid" not in requested:
            raise OAuthError(
                400, "invalid_scope", "The password grant requires the 'openid' scope."
            )
        OktaServer._check_scopes(client, requested, forbidden=frozenset())
        username, password = form.get("username"), form.get("password")
        if not username or password is None:
            raise OAuthError(
                400, "invalid_request", "The username and password parameters are required."
            )
        expected = client.users.get(username)
        if expected is None or not _equal(password, expected):
            raise OAuthError(400, "invalid_grant", "The credentials provided were invalid.")
        return username

    @staticmethod
    def _check_scopes(client: _Client, requested: list[str], *, forbidden: frozenset[str]) -> None:
        refused = [s for s in requested if s not in client.scopes or s in forbidden]
        if refused:
            raise OAuthError(
                400,
                "invalid_scope",
                f"The following scopes are not allowed: {', '.join(refused)}",
            )

    def _mint(
        self, client: _Client, subject: str, scopes: list[str], form: Mapping[str, str]
    ) -> dict[str, Any]:
        """Sign the access token (and an ID token for the password grant) and build the answer."""
        with self._state:
            kid, key = self._signing_keys[-1]
        now = int(time.time())
        lifetime = int(self.token_lifetime)
        claims: dict[str, Any] = {
            "ver": 1,
            "jti": "AT." + secrets.token_urlsafe(32),
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "exp": now + lifetime,
            "cid": client.client_id,
            "scp": scopes,
            "sub": subject,
        }
        answer: dict[str, Any] = {"token_type": "Bearer", "expires_in": lifetime}
        minted = []
        if form.get("grant_type") == "password":
            user_id = "00u" + hashlib.sha256(subject.encode("utf-8")).hexdigest()[:17]
            claims["uid"] = user_id
            id_claims = {
                "ver": 1,
                "jti": "ID." + secrets.token_urlsafe(32),
                "iss": self.issuer,
                "aud": client.client_id,
                "sub": user_id,
                "iat": now,
                "exp": now + min(lifetime, 3600),
                "auth_time": now,
                "amr": ["pwd"],
                "preferred_username": subject,
            }
            answer["id_token"] = jwt.encode(id_claims, key, algorithm="RS256", headers={"kid": kid})
            minted.append(answer["id_token"])
        answer["access_token"] = jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})
        answer["scope"] = " ".join(scopes)
        minted.append(answer["access_token"])
        with self._state:
            self.issued_tokens.extend(minted)
        return answer


def public_jwk(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, *, kid: str, alg: str
) -> dict[str, Any]:
    """The public JWK of a client's signing key, as registered with ``register_client``."""
    if isinstance(key, rsa.RSAPrivateKey):
        jwk = dict(RSAAlgorithm.to_jwk(key.public_key(), as_dict=True))
    else:
        jwk = dict(ECAlgorithm.to_jwk(key.public_key(), as_dict=True))
    jwk.update({"kid": kid, "alg": alg, "use": "sig"})
    return jwk
