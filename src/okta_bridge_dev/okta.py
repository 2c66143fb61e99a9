"""An Okta-like org, close enough to Okta's to catch integration bugs.

It serves a custom authorization server ``/oauth2/{auth_server_id}`` (the bridge's tokens), the
org authorization server ``/oauth2/v1/token`` (tokens for Okta's own API) and the parts of the
Management API that credential rotation uses: an app's client secrets and JWKS, and a user's
password. It enforces what real Okta enforces and a hand-written mock usually forgets: the app's
configured client authentication method, RFC 6749 form-encoding of Basic credentials, single-use
client assertions with ``aud`` equal to the token URL invoked and at most one hour of lifetime,
scopes granted per client, ``openid`` for the password grant, ``okta.*`` scopes only from the org
authorization server and only with ``private_key_jwt``, at most two client secrets per app, no
deletion of active credentials, policy denials and rate limits with their headers. Error bodies
and messages follow Okta's.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import math
import re
import secrets
import ssl
import string
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, unquote_plus

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from .servers import RecordedRequest, Response, Route, TLSServer

__all__ = [
    "ASSERTION_ALGORITHMS",
    "CLIENT_ASSERTION_TYPE",
    "CLIENT_AUTH_METHODS",
    "OKTA_API_SCOPES",
    "KeyView",
    "OAuthError",
    "OktaApiError",
    "OktaServer",
    "SecretView",
    "okta_error_body",
    "public_jwk",
]

CLIENT_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
OKTA_API_SCOPES = ("okta.apps.read", "okta.apps.manage", "okta.users.read", "okta.users.manage")
"""The Management API scopes this server knows; ``register_admin_client`` grants all by default."""

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
"""What ``X-Rate-Limit-Limit`` reports while a limit is None (no limit enforced)."""

MAX_CLIENT_SECRETS = 2
MAX_CLIENT_KEYS = 50
SECRET_LENGTHS = range(14, 101)
MIN_RSA_BITS = 2048
MIN_PASSWORD_LENGTH = 8
ACTIVE, INACTIVE = "ACTIVE", "INACTIVE"

# Okta refuses OIDC scopes in the client credentials grant.
_OIDC_SCOPES = frozenset(
    {"openid", "profile", "email", "address", "phone", "offline_access", "groups", "device_sso"}
)
_EC_CURVES = ("P-256", "P-384", "P-521")
_PRIVATE_JWK_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "k")
_ID_ALPHABET = string.ascii_letters + string.digits

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
_OKTA_SCOPES_NEED_JWT = (
    "Client authentication with a client secret is not supported for Okta API scopes; use "
    "private_key_jwt."
)
_NO_SECRETS_ON_JWT_APP = (
    "client_secret: Client secrets cannot be created for a client that uses private_key_jwt."
)
_RATE_LIMITED = "API call exceeded rate limit due to too many requests."
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

_MANAGEMENT_PATHS = (
    (
        "mgmt_secrets",
        re.compile(
            r"/api/v1/apps/(?P<app>[^/]+)/credentials/secrets"
            r"(?:/(?P<item>[^/]+)(?:/lifecycle/(?P<action>activate|deactivate))?)?"
        ),
    ),
    (
        "mgmt_jwks",
        re.compile(
            r"/api/v1/apps/(?P<app>[^/]+)/credentials/jwks"
            r"(?:/(?P<item>[^/]+)(?:/lifecycle/(?P<action>activate|deactivate))?)?"
        ),
    ),
    (
        "mgmt_users",
        re.compile(r"/api/v1/users/(?P<user>[^/]+)(?:/credentials/(?P<action>change_password))?"),
    ),
)


class OAuthError(Exception):
    """An OAuth error answer: ``{"error", "error_description"}`` with its HTTP status."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


class OktaApiError(Exception):
    """A Management API error answer: ``okta_error_body`` with its HTTP status.

    Also raised by the test helpers (``add_client_secret``, ``user_password``, ...), which apply
    the API's rules; ``code`` is Okta's errorCode and ``causes`` the errorCauses' summaries.
    """

    def __init__(
        self,
        status: int,
        code: str,
        summary: str,
        causes: Sequence[str] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code} {summary}" + "".join(f"; {cause}" for cause in causes))
        self.status = status
        self.code = code
        self.summary = summary
        self.causes = tuple(causes)
        self.headers = dict(headers or {})

    def response(self, headers: Mapping[str, str]) -> Response:
        """The JSON answer, with ``headers`` (e.g. the rate limit's) under this error's own."""
        body = okta_error_body(self.code, self.summary, self.causes)
        return Response.json(self.status, body, {**headers, **self.headers})


def _invalid_client(description: str = _AUTH_FAILED) -> OAuthError:
    return OAuthError(401, "invalid_client", description)


def _validation_failed(subject: str, cause: str) -> OktaApiError:
    return OktaApiError(400, "E0000001", f"Api validation failed: {subject}", [cause])


def _resource_not_found(resource_id: str, resource_type: str) -> OktaApiError:
    summary = f"Not found: Resource not found: {resource_id} ({resource_type})"
    return OktaApiError(404, "E0000007", summary)


def _credentials_update_failed(cause: str) -> OktaApiError:
    return OktaApiError(403, "E0000014", "Update of credentials failed", [cause])


def okta_error_body(code: str, summary: str, causes: Iterable[str] = ()) -> dict[str, Any]:
    """Okta's management-style error JSON (Management API errors, 404, 405 and 429)."""
    return {
        "errorCode": code,
        "errorSummary": summary,
        "errorLink": code,
        "errorId": "oae" + secrets.token_urlsafe(16),
        "errorCauses": [{"errorSummary": cause} for cause in causes],
    }


# -- what an app and a user hold -------------------------------------------------------------


@dataclass(frozen=True)
class SecretView:
    """A client secret as a test sees it (``value`` is left out of repr)."""

    id: str
    status: str
    value: str = field(repr=False)


@dataclass(frozen=True)
class KeyView:
    """A client's public key as a test sees it."""

    id: str
    kid: str
    status: str


@dataclass(frozen=True)
class _ClientKey:
    kid: str
    kty: str
    crv: str | None
    key: Any  # a cryptography public key


@dataclass(eq=False)
class _Credential:
    """One entry of an app's secret or key list; mutated only under ``OktaServer._state``."""

    id: str
    status: str
    created: float
    last_updated: float


@dataclass(eq=False)
class _AppSecret(_Credential):
    value: str = field(repr=False)


@dataclass(eq=False)
class _AppKey(_Credential):
    jwk: dict[str, Any]  # the public members as registered, kid included
    key: _ClientKey


@dataclass(eq=False)
class _Client:
    client_id: str
    auth_method: str
    scopes: frozenset[str]
    users: frozenset[str]  # logins assigned to the app: the password grant is enabled for them
    secrets: list[_AppSecret]
    keys: list[_AppKey]


@dataclass(eq=False)
class _User:
    id: str
    login: str
    password: str = field(repr=False)
    provider_type: str
    provider_name: str
    created: float
    password_changed: float
    last_updated: float


@dataclass(frozen=True)
class _ManagementToken:
    client_id: str
    scopes: frozenset[str]
    expires: float


@dataclass
class _RateWindow:
    end: float = 0.0
    used: int = 0


def _user_id_for(login: str) -> str:
    """The Okta user id of ``login``: ``00u`` and 17 hex digits of its SHA-256."""
    return "00u" + hashlib.sha256(login.encode("utf-8")).hexdigest()[:17]


def _okta_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(17))


def _iso(moment: float) -> str:
    """``2026-11-24T18:00:00.000Z``."""
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment)) + f".{int(moment % 1 * 1000):03d}Z"
    )


def _mask(value: str) -> str:
    return f"{value[:6]}......{value[-6:]}"


def _secret_hash(value: str) -> str:
    digest = hashlib.sha256(value.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")[:22]


def _is_okta_scope(scope: str) -> bool:
    return scope.startswith("okta.")


def _check_status(status: object) -> str:
    if status not in (ACTIVE, INACTIVE):
        raise _validation_failed("status", "status: The status must be ACTIVE or INACTIVE.")
    return str(status)


def _check_secret_value(value: object) -> str:
    if (
        not isinstance(value, str)
        or len(value) not in SECRET_LENGTHS
        or not all(" " <= char <= "~" for char in value)
    ):
        raise _validation_failed(
            "client_secret",
            "client_secret: 'client_secret' must be between 14 and 100 characters long and "
            "contain only printable ASCII characters.",
        )
    return value


def _public_key(jwk: Mapping[str, Any]) -> tuple[dict[str, Any], _ClientKey]:
    """Validate a JWK as Okta does; return its public members and the parsed key."""
    if any(member in jwk for member in _PRIVATE_JWK_MEMBERS):
        raise _validation_failed(
            "jwks", "jwks: A JSON Web Key with private key members is not accepted."
        )
    kty, crv, kid, alg = jwk.get("kty"), jwk.get("crv"), jwk.get("kid"), jwk.get("alg")
    if kty not in ("RSA", "EC"):
        raise _validation_failed("kty", "kty: Only RSA and EC keys are supported.")
    members = ("n", "e") if kty == "RSA" else ("crv", "x", "y")
    if kty == "EC" and crv not in _EC_CURVES:
        raise _validation_failed("crv", f"crv: The curve must be one of {', '.join(_EC_CURVES)}.")
    if alg is not None and ASSERTION_ALGORITHMS.get(alg) != (kty, crv):
        raise _validation_failed("alg", f"alg: The algorithm does not fit this {kty} key.")
    if jwk.get("use", "sig") != "sig":
        raise _validation_failed("use", "use: Only signing keys ('sig') are supported.")
    if kid is not None and (not isinstance(kid, str) or not kid):
        raise _validation_failed("kid", "kid: The kid must be a non-empty string.")
    try:
        key = jwt.PyJWK({name: jwk[name] for name in ("kty", *members)}).key
    except (jwt.PyJWTError, KeyError, TypeError, ValueError) as error:
        raise _validation_failed("jwks", "jwks: The JSON Web Key is invalid.") from error
    if kty == "RSA" and key.key_size < MIN_RSA_BITS:
        raise _validation_failed("n", f"n: RSA keys must be at least {MIN_RSA_BITS} bits.")
    public = {"kid": kid or _okta_id("kid"), "kty": kty, "use": "sig"}
    public |= {"alg": alg} if alg else {}
    public |= {name: jwk[name] for name in members}
    return public, _ClientKey(kid=public["kid"], kty=kty, crv=crv, key=key)


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


def _json_object(request: RecordedRequest) -> dict[str, Any]:
    """A Management API request body: a JSON object, ``{}`` when there is none."""
    if not request.body.strip():
        return {}
    try:
        body = json.loads(request.body)
    except (UnicodeDecodeError, ValueError) as error:
        raise OktaApiError(400, "E0000003", "The request body was not well-formed.") from error
    if not isinstance(body, dict):
        raise OktaApiError(400, "E0000003", "The request body was not well-formed.")
    return body


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


def _password_value(body: Mapping[str, Any], name: str) -> str:
    member = body.get(name)
    value = member.get("value") if isinstance(member, dict) else None
    if not isinstance(value, str):
        raise _validation_failed(name, f"{name}: The field cannot be left blank.")
    return value


def _unsupported_method(allowed: str) -> OktaApiError:
    return OktaApiError(
        405,
        "E0000022",
        "The endpoint does not support the provided HTTP method",
        headers={"Allow": allowed},
    )


def _provider(user: _User) -> dict[str, str]:
    return {"type": user.provider_type, "name": user.provider_name}


def _check_grant_type(
    grant_type: str | None, configured: list[str], *, supported: Sequence[str]
) -> None:
    if not grant_type:
        raise OAuthError(400, "invalid_request", "The grant_type parameter is required.")
    if grant_type not in supported:
        raise OAuthError(
            400,
            "unsupported_grant_type",
            f"The authorization grant type is not supported by the authorization server. "
            f"Configured grant types: [{', '.join(configured)}].",
        )
    if grant_type not in configured:
        raise OAuthError(
            400,
            "unauthorized_client",
            "The client is not authorized to use the provided grant type. "
            f"Configured grant types: [{', '.join(configured)}].",
        )


def _require_scope_parameter(requested: list[str]) -> None:
    if not requested:
        raise OAuthError(
            400,
            "invalid_scope",
            "The authorization server resource does not have any configured default "
            "scopes, 'scope' must be provided.",
        )


def _check_scopes(client: _Client, requested: list[str], *, refuse: Callable[[str], bool]) -> None:
    refused = [s for s in requested if s not in client.scopes or refuse(s)]
    if refused:
        raise OAuthError(
            400,
            "invalid_scope",
            f"The following scopes are not allowed: {', '.join(refused)}",
        )


class OktaServer(TLSServer):
    """An Okta org: the custom authorization server ``/oauth2/{auth_server_id}`` (discovery, JWKS,
    token), the org authorization server ``/oauth2/v1/token`` and Management API routes.

    Counted routes: "token", "keys", "discovery", "org_token", "mgmt_secrets", "mgmt_jwks",
    "mgmt_users" (and "not_found"). Attributes a test may change at any time: ``token_lifetime``
    (both authorization servers), ``rate_limit`` (custom token requests per 60 s window, None for
    no limit) and ``management_rate_limit`` (the same for the org token endpoint and the
    Management API together). ``issued_tokens`` holds every token minted and ``issued_secrets``
    every client secret and password the org has held, for leak scans.
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
        self.management_rate_limit: int | None = None
        self.issued_tokens: list[str] = []
        self.issued_secrets: list[str] = []
        self._state = threading.Lock()
        self._clients: dict[str, _Client] = {}
        self._users: dict[str, _User] = {}
        self._management_tokens: dict[str, _ManagementToken] = {}
        self._denied: set[str] = set()
        self._used_jtis: dict[tuple[str, str], float] = {}
        self._signing_keys: list[tuple[str, rsa.RSAPrivateKey]] = []
        self._token_window = _RateWindow()
        self._management_window = _RateWindow()
        prefix = f"/oauth2/{auth_server_id}"
        self._routes = {
            f"{prefix}/v1/token": Route("token", self._token),
            f"{prefix}/v1/keys": Route("keys", self._keys),
            f"{prefix}/.well-known/oauth-authorization-server": Route("discovery", self._discovery),
            f"{prefix}/.well-known/openid-configuration": Route("discovery", self._discovery),
            "/oauth2/v1/token": Route("org_token", self._org_token),
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

    @property
    def org_token_url(self) -> str:
        """The org authorization server's token endpoint (issuer ``base_url``): Management API
        tokens, and the only ``aud`` accepted in client assertions sent there."""
        return f"{self.base_url}/oauth2/v1/token"

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
        """Register (or replace) an app with one ACTIVE secret and/or its ACTIVE keys.

        ``users`` (login -> password) registers (or resets) org users with OKTA-mastered
        passwords and enables the password grant for them on this app. Raises ValueError for an
        unknown method, missing credentials or a JWK the Management API would refuse.
        """
        if auth_method not in CLIENT_AUTH_METHODS:
            raise ValueError(f"auth_method must be one of {CLIENT_AUTH_METHODS}")
        if auth_method == "private_key_jwt":
            if not jwks:
                raise ValueError("private_key_jwt needs at least one public JWK")
        elif not client_secret:
            raise ValueError(f"{auth_method} needs a client_secret")
        now = time.time()
        try:
            keys = [self._new_key(jwk, ACTIVE, now) for jwk in jwks]
        except OktaApiError as error:
            raise ValueError(f"register public JWKs only: {error}") from error
        if len({key.key.kid for key in keys}) != len(keys):
            raise ValueError("kids must be unique within a client")
        client = _Client(
            client_id=client_id,
            auth_method=auth_method,
            scopes=frozenset(scopes),
            users=frozenset(users or {}),
            secrets=[],
            keys=keys,
        )
        if client_secret:
            client.secrets.append(_AppSecret(_okta_id("ocs"), ACTIVE, now, now, client_secret))
        with self._state:
            self._clients[client_id] = client
            for login, password in (users or {}).items():
                self._set_user(login, password, now)
            self.issued_secrets.extend([client_secret] if client_secret else [])
            self.issued_secrets.extend((users or {}).values())

    def register_admin_client(
        self,
        client_id: str,
        *,
        jwks: Sequence[Mapping[str, Any]],
        scopes: Iterable[str] = OKTA_API_SCOPES,
    ) -> None:
        """Register a ``private_key_jwt`` service app granted Okta API ``scopes``: it gets
        Management API tokens from ``org_token_url``."""
        self.register_client(client_id, auth_method="private_key_jwt", jwks=jwks, scopes=scopes)

    def deny_client(self, client_id: str) -> None:
        """Make the client's token requests fail the access policy (403) until ``allow_client``."""
        with self._state:
            self._denied.add(client_id)

    def allow_client(self, client_id: str) -> None:
        """Undo ``deny_client``."""
        with self._state:
            self._denied.discard(client_id)

    def reset_rate_limit(self) -> None:
        """Start fresh rate-limit windows with the next request."""
        with self._state:
            self._token_window = _RateWindow()
            self._management_window = _RateWindow()

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

    # -- inspection and test helpers (the API's rules; OktaApiError as the API answers) ----

    def client_secrets(self, client_id: str) -> list[SecretView]:
        """The app's client secrets, oldest first."""
        with self._state:
            client = self._app(client_id)
            return [SecretView(s.id, s.status, s.value) for s in client.secrets]

    def client_keys(self, client_id: str) -> list[KeyView]:
        """The app's public keys, oldest first."""
        with self._state:
            client = self._app(client_id)
            return [KeyView(k.id, k.key.kid, k.status) for k in client.keys]

    def add_client_secret(
        self, client_id: str, value: str | None = None, status: str = ACTIVE
    ) -> SecretView:
        """Add a secret as ``POST .../credentials/secrets`` does (generated if ``value`` is None).

        Raises OktaApiError as the API would answer (404, or 400 E0000001 for a broken rule).
        """
        secret = self._add_secret(client_id, value, status)
        return SecretView(secret.id, secret.status, secret.value)

    def reset_client_secret(self, client_id: str, value: str | None = None) -> SecretView:
        """Replace all the app's secrets with one new ACTIVE secret, as an admin rotating it by
        hand in the console would: the old secrets stop working at once."""
        new_value = _check_secret_value(value) if value is not None else secrets.token_urlsafe(30)
        with self._state:
            client = self._app(client_id)
            if client.auth_method == "private_key_jwt":
                raise _validation_failed("client_secret", _NO_SECRETS_ON_JWT_APP)
            now = time.time()
            secret = _AppSecret(_okta_id("ocs"), ACTIVE, now, now, new_value)
            client.secrets = [secret]
            self.issued_secrets.append(new_value)
        return SecretView(secret.id, secret.status, secret.value)

    def set_user_provider(self, login: str, provider_type: str, provider_name: str) -> None:
        """Make ``login``'s credentials mastered by another provider (e.g. ``ACTIVE_DIRECTORY``,
        ``corp.example.com``); Okta then refuses to change its password."""
        with self._state:
            user = self._user(login)
            user.provider_type, user.provider_name = provider_type, provider_name
            user.last_updated = time.time()

    def set_user_password(self, login: str, password: str) -> None:
        """Set the user's password as an admin reset does: no old password, no policy check."""
        with self._state:
            self._set_user(self._user(login).login, password, time.time())
            self.issued_secrets.append(password)

    def user_password(self, login: str) -> str:
        """The user's current password."""
        with self._state:
            return self._user(login).password

    def user_id(self, login: str) -> str:
        """The user's Okta id (``00u...``)."""
        with self._state:
            return self._user(login).id

    # -- routing ---------------------------------------------------------------------------

    def route(self, request: RecordedRequest) -> Route:
        exact = self._routes.get(request.path)
        if exact is not None:
            return exact
        for name, pattern in _MANAGEMENT_PATHS:
            match = pattern.fullmatch(request.path)
            if match is not None:
                return Route(name, functools.partial(self._management, name=name, match=match))
        return Route("not_found", self._not_found)

    def _not_found(self, request: RecordedRequest) -> Response:
        return Response.json(404, okta_error_body("E0000007", "Not found: Resource not found."))

    def _method_not_allowed(self, allowed: str) -> Response:
        return _unsupported_method(allowed).response({})

    def _discovery(self, request: RecordedRequest) -> Response:
        if request.method not in ("GET", "HEAD"):
            return self._method_not_allowed("GET")
        with self._state:
            scopes = sorted(
                {s for c in self._clients.values() for s in c.scopes if not _is_okta_scope(s)}
            )
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

    # -- token endpoints -------------------------------------------------------------------

    def _token(self, request: RecordedRequest) -> Response:
        return self._token_endpoint(request, org=False)

    def _org_token(self, request: RecordedRequest) -> Response:
        return self._token_endpoint(request, org=True)

    def _token_endpoint(self, request: RecordedRequest, *, org: bool) -> Response:
        if request.method != "POST":
            return self._method_not_allowed("POST")
        limit_headers, allowed = self._count_against_rate_limit(management=org)
        headers = {**limit_headers, **_NO_STORE}
        if not allowed:
            return Response.json(429, okta_error_body("E0000047", _RATE_LIMITED), headers)
        try:
            form = _form(request)
            client = self._authenticate(
                request, form, audience=self.org_token_url if org else self.token_url
            )
            if org:
                scopes = self._org_grant(client, form)
                self._check_policy(client)
                answer = self._mint_management_token(client, scopes)
            else:
                scopes, subject = self._grant(client, form)
                self._check_policy(client)
                answer = self._mint(client, subject, scopes, form)
        except OAuthError as error:
            body = {"error": error.error, "error_description": error.description}
            return Response.json(error.status, body, headers)
        return Response.json(200, answer, headers)

    def _check_policy(self, client: _Client) -> None:
        with self._state:
            denied = client.client_id in self._denied
        if denied:
            raise OAuthError(403, "access_denied", _POLICY_DENIED)

    def _count_against_rate_limit(self, *, management: bool) -> tuple[dict[str, str], bool]:
        now = time.time()
        with self._state:
            window = self._management_window if management else self._token_window
            if now >= window.end:
                window.end, window.used = now + RATE_LIMIT_WINDOW, 0
            window.used += 1
            limit = self.management_rate_limit if management else self.rate_limit
            reported = limit if limit is not None else NOMINAL_RATE_LIMIT
            headers = {
                "X-Rate-Limit-Limit": str(reported),
                "X-Rate-Limit-Remaining": str(max(reported - window.used, 0)),
                "X-Rate-Limit-Reset": str(math.ceil(window.end)),
            }
            return headers, limit is None or window.used <= limit

    def _authenticate(
        self, request: RecordedRequest, form: Mapping[str, str], *, audience: str
    ) -> _Client:
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
            self._verify_assertion(client, form["client_assertion"], audience)
        elif not self._secret_matches(
            client, secret or "", form_encoded=method == "client_secret_basic"
        ):
            raise _invalid_client(_BAD_SECRET)
        return client

    def _lookup(self, client_id: str) -> _Client | None:
        with self._state:
            return self._clients.get(client_id)

    def _secret_matches(self, client: _Client, presented: str, *, form_encoded: bool) -> bool:
        """True if ``presented`` is any ACTIVE secret of the client (Okta accepts both of two)."""
        with self._state:
            active = [s.value for s in client.secrets if s.status == ACTIVE]
        if not presented:
            return False
        # Basic credentials should be form-encoded (RFC 6749 2.3.1); like Okta, accept raw ones too.
        candidates = {presented, unquote_plus(presented)} if form_encoded else {presented}
        return any(_equal(c, expected) for c in candidates for expected in active)

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

    def _verify_assertion(self, client: _Client, assertion: str, audience: str) -> None:
        """RFC 7523 checks against the client's ACTIVE keys, the way Okta reports them; a valid
        ``jti`` is consumed on success."""
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError as error:
            raise _invalid_client("The client_assertion token is malformed.") from error
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in ASSERTION_ALGORITHMS:
            raise _invalid_client("The client_assertion JWT algorithm is not supported.")
        kty, crv = ASSERTION_ALGORITHMS[algorithm]
        with self._state:
            active = [k.key for k in client.keys if k.status == ACTIVE]
        keys = [k for k in active if k.kty == kty and (crv is None or k.crv == crv)]
        kid = header.get("kid")
        if kid is not None:
            keys = [k for k in keys if k.kid == kid]
        if not keys:
            raise _invalid_client("The client_assertion JWT kid is invalid.")
        claims = self._verified_claims(assertion, algorithm, keys)
        self._check_assertion_claims(client, claims, audience)

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

    def _check_assertion_claims(
        self, client: _Client, claims: Mapping[str, Any], audience: str
    ) -> None:
        # RFC 7523 3: iss and sub are the client_id, aud the token endpoint, exp required.
        if claims.get("iss") != client.client_id or claims.get("sub") != client.client_id:
            raise _invalid_client("The client_assertion iss and sub claims must be the client_id.")
        if claims.get("aud") != audience:
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
        """Validate a custom authorization server grant; return the scopes and the subject."""
        grant_type = form.get("grant_type")
        requested = list(dict.fromkeys(form.get("scope", "").split()))
        grant_types = ["client_credentials"] + (["password"] if client.users else [])
        _check_grant_type(grant_type, grant_types, supported=("client_credentials", "password"))
        if grant_type == "client_credentials":
            _require_scope_parameter(requested)
            _check_scopes(
                client, requested, refuse=lambda s: s in _OIDC_SCOPES or _is_okta_scope(s)
            )
            return requested, client.client_id
        return requested, self._password_subject(client, form, requested)

    def _password_subject(
        self, client: _Client, form: Mapping[str, str], requested: list[str]
    ) -> str:
        if "openid" not in requested:
            raise OAuthError(
                400, "invalid_scope", "The password grant requires the 'openid' scope."
            )
        _check_scopes(client, requested, refuse=_is_okta_scope)
        username, password = form.get("username"), form.get("password")
        if not username or password is None:
            raise OAuthError(
                400, "invalid_request", "The username and password parameters are required."
            )
        with self._state:
            user = self._users.get(username) if username in client.users else None
            expected = user.password if user is not None else None
        if expected is None or not _equal(password, expected):
            raise OAuthError(400, "invalid_grant", "The credentials provided were invalid.")
        return username

    @staticmethod
    def _org_grant(client: _Client, form: Mapping[str, str]) -> list[str]:
        """Validate an org authorization server grant: client credentials, Okta scopes only."""
        if client.auth_method != "private_key_jwt":
            raise _invalid_client(_OKTA_SCOPES_NEED_JWT)
        _check_grant_type(
            form.get("grant_type"), ["client_credentials"], supported=("client_credentials",)
        )
        requested = list(dict.fromkeys(form.get("scope", "").split()))
        _require_scope_parameter(requested)
        if not all(_is_okta_scope(scope) for scope in requested):
            raise OAuthError(400, "invalid_scope", "Custom scopes are not allowed for this request")
        _check_scopes(client, requested, refuse=lambda _: False)
        return requested

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
            user_id = _user_id_for(subject)
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

    def _mint_management_token(self, client: _Client, scopes: list[str]) -> dict[str, Any]:
        """An opaque Management API token, remembered server-side with its client and scopes."""
        token = secrets.token_urlsafe(48)
        lifetime = int(self.token_lifetime)
        now = time.time()
        with self._state:
            self._management_tokens = {
                t: g for t, g in self._management_tokens.items() if g.expires > now
            }
            self._management_tokens[token] = _ManagementToken(
                client.client_id, frozenset(scopes), now + lifetime
            )
            self.issued_tokens.append(token)
        return {
            "token_type": "Bearer",
            "expires_in": lifetime,
            "access_token": token,
            "scope": " ".join(scopes),
        }

    # -- Management API: authentication and dispatch ---------------------------------------

    def _management(self, request: RecordedRequest, *, name: str, match: re.Match[str]) -> Response:
        """Rate limit, bearer token, method, scope, then the operation; errors as Okta's."""
        headers, allowed = self._count_against_rate_limit(management=True)
        if not allowed:
            return Response.json(429, okta_error_body("E0000047", _RATE_LIMITED), headers)
        try:
            grant = self._bearer_grant(request)
            family, operations = self._operations(name, match)
            operation = operations.get(request.method)
            if operation is None:
                raise _unsupported_method(", ".join(operations))
            self._require_scope(grant, family, request.method)
            status, payload = operation(request)
        except OktaApiError as error:
            return error.response(headers)
        if payload is None:
            return Response(status, headers)
        return Response.json(status, payload, headers)

    def _bearer_grant(self, request: RecordedRequest) -> _ManagementToken:
        """The org authorization server token in ``Authorization: Bearer``; anything else 401."""
        scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
        with self._state:
            grant = self._management_tokens.get(token.strip())
        if scheme.lower() != "bearer" or grant is None or grant.expires <= time.time():
            challenge = (
                f'Bearer realm="{self.base_url}", error="invalid_token", '
                'error_description="The access token is invalid."'
            )
            raise OktaApiError(
                401, "E0000011", "Invalid token provided", headers={"WWW-Authenticate": challenge}
            )
        return grant

    def _require_scope(self, grant: _ManagementToken, family: str, method: str) -> None:
        """GET needs ``{family}.read`` or ``{family}.manage``; writes need ``.manage``."""
        needed = {f"{family}.manage"} | ({f"{family}.read"} if method == "GET" else set())
        if not needed & grant.scopes:
            challenge = (
                f'Bearer realm="{self.base_url}", error="insufficient_scope", '
                'error_description="The access token provided does not contain the required '
                'scopes."'
            )
            raise OktaApiError(
                403,
                "E0000006",
                "You do not have permission to perform the requested action",
                headers={"WWW-Authenticate": challenge},
            )

    def _operations(
        self, name: str, match: re.Match[str]
    ) -> tuple[str, dict[str, Callable[[RecordedRequest], tuple[int, Any]]]]:
        """The scope family and the method -> operation table of a Management API path."""
        if name == "mgmt_users":
            login = unquote(match["user"])
            if match["action"]:
                return "okta.users", {
                    "POST": lambda r: (200, self._change_password(login, _json_object(r)))
                }
            return "okta.users", {"GET": lambda _: (200, self._user_view(login))}
        kind = "secrets" if name == "mgmt_secrets" else "jwks"
        app, item, action = match["app"], match["item"], match["action"]
        if item is None:
            return "okta.apps", {
                "GET": lambda _: (200, self._list_credentials(kind, app)),
                "POST": lambda r: (201, self._create_credential(kind, app, _json_object(r))),
            }
        if action is None:

            def delete(_: RecordedRequest) -> tuple[int, Any]:
                self._delete_credential(kind, app, item)
                return 204, None

            return "okta.apps", {
                "GET": lambda _: (200, self._credential_view(kind, app, item)),
                "DELETE": delete,
            }
        status = ACTIVE if action == "activate" else INACTIVE
        return "okta.apps", {"POST": lambda _: (200, self._set_status(kind, app, item, status))}

    # -- Management API: app credentials (secrets and JWKS) --------------------------------

    def _app(self, client_id: str) -> _Client:
        """The app (caller holds ``_state``) or 404."""
        client = self._clients.get(client_id)
        if client is None:
            raise _resource_not_found(client_id, "AppInstance")
        return client

    @staticmethod
    def _items(client: _Client, kind: str) -> Sequence[_Credential]:
        return client.secrets if kind == "secrets" else client.keys

    def _item(self, client: _Client, kind: str, item_id: str) -> _Credential:
        for item in self._items(client, kind):
            if item.id == item_id:
                return item
        raise _resource_not_found(item_id, "ClientSecret" if kind == "secrets" else "JsonWebKey")

    def _render(
        self, client_id: str, kind: str, item: _Credential, *, reveal: bool = False
    ) -> dict[str, Any]:
        """Okta's JSON for a secret (masked unless ``reveal``) or a key, with its ``_links``."""
        body: dict[str, Any] = {"id": item.id, "status": item.status}
        if isinstance(item, _AppSecret):
            body["client_secret"] = item.value if reveal else _mask(item.value)
            body["secret_hash"] = _secret_hash(item.value)
        elif isinstance(item, _AppKey):
            body.update(item.jwk)
        body |= {"created": _iso(item.created), "lastUpdated": _iso(item.last_updated)}
        href = f"{self.base_url}/api/v1/apps/{client_id}/credentials/{kind}/{item.id}"
        if item.status == ACTIVE:
            links = {"deactivate": (f"{href}/lifecycle/deactivate", "POST")}
        else:
            links = {"activate": (f"{href}/lifecycle/activate", "POST"), "delete": (href, "DELETE")}
        body["_links"] = {
            rel: {"href": url, "hints": {"allow": [method]}} for rel, (url, method) in links.items()
        }
        return body

    def _list_credentials(self, kind: str, client_id: str) -> list[dict[str, Any]]:
        with self._state:
            client = self._app(client_id)
            return [self._render(client_id, kind, item) for item in self._items(client, kind)]

    def _credential_view(self, kind: str, client_id: str, item_id: str) -> dict[str, Any]:
        with self._state:
            item = self._item(self._app(client_id), kind, item_id)
            return self._render(client_id, kind, item)

    def _create_credential(
        self, kind: str, client_id: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        status = _check_status(body.get("status", ACTIVE))
        if kind == "secrets":
            secret = self._add_secret(client_id, body.get("client_secret"), status)
            with self._state:
                return self._render(client_id, kind, secret, reveal=True)
        key = self._add_key(client_id, {k: v for k, v in body.items() if k != "status"}, status)
        with self._state:
            return self._render(client_id, kind, key)

    def _add_secret(self, client_id: str, value: object, status: str) -> _AppSecret:
        """POST .../secrets: at most two per app, none for private_key_jwt apps."""
        status = _check_status(status)
        new_value = _check_secret_value(value) if value is not None else secrets.token_urlsafe(30)
        with self._state:
            client = self._app(client_id)
            if client.auth_method == "private_key_jwt":
                raise _validation_failed("client_secret", _NO_SECRETS_ON_JWT_APP)
            if len(client.secrets) >= MAX_CLIENT_SECRETS:
                raise _validation_failed(
                    "client_secret",
                    "You've reached the maximum number of client secrets per client.",
                )
            now = time.time()
            secret = _AppSecret(_okta_id("ocs"), status, now, now, new_value)
            client.secrets.append(secret)
            self.issued_secrets.append(new_value)
            return secret

    def _new_key(self, jwk: Mapping[str, Any], status: str, now: float) -> _AppKey:
        public, key = _public_key(jwk)
        return _AppKey(_okta_id("pks"), status, now, now, public, key)

    def _add_key(self, client_id: str, jwk: Mapping[str, Any], status: str) -> _AppKey:
        """POST .../jwks: a valid public key with a kid unique in the app, at most 50 keys."""
        key = self._new_key(jwk, status, time.time())
        with self._state:
            client = self._app(client_id)
            if any(k.key.kid == key.key.kid for k in client.keys):
                raise _validation_failed(
                    "kid", f"kid: A key with kid '{key.key.kid}' already exists for this client."
                )
            if len(client.keys) >= MAX_CLIENT_KEYS:
                raise _validation_failed(
                    "jwks", "You've reached the maximum number of JSON Web Keys per client."
                )
            client.keys.append(key)
            return key

    def _set_status(self, kind: str, client_id: str, item_id: str, status: str) -> dict[str, Any]:
        """Activate or deactivate; never the last ACTIVE secret, nor a private_key_jwt app's last
        ACTIVE key. Already in that status: answered as is."""
        with self._state:
            client = self._app(client_id)
            item = self._item(client, kind, item_id)
            if status == INACTIVE and item.status == ACTIVE:
                active = sum(i.status == ACTIVE for i in self._items(client, kind))
                if active == 1 and kind == "secrets":
                    raise _validation_failed(
                        "client_secret", "You can't deactivate the only active client secret."
                    )
                if active == 1 and client.auth_method == "private_key_jwt":
                    raise _validation_failed(
                        "jwks",
                        "You can't deactivate the only active JSON Web Key of a client that uses "
                        "private_key_jwt.",
                    )
            if item.status != status:
                item.status, item.last_updated = status, time.time()
            return self._render(client_id, kind, item)

    def _delete_credential(self, kind: str, client_id: str, item_id: str) -> None:
        """DELETE: only INACTIVE secrets and keys."""
        with self._state:
            client = self._app(client_id)
            item = self._item(client, kind, item_id)
            if item.status == ACTIVE:
                noun = "client secret" if kind == "secrets" else "JSON Web Key"
                raise _validation_failed(
                    "status", f"You can't delete an active {noun}; deactivate it first."
                )
            client.secrets = [s for s in client.secrets if s is not item]
            client.keys = [k for k in client.keys if k is not item]

    # -- Management API: users ---------------------------------------------------------------

    def _set_user(self, login: str, password: str, now: float) -> None:
        """Create or reset an OKTA-mastered user (caller holds ``_state``)."""
        user = self._users.get(login)
        if user is None:
            self._users[login] = _User(
                _user_id_for(login), login, password, "OKTA", "OKTA", now, now, now
            )
        elif user.password != password:
            user.password, user.password_changed, user.last_updated = password, now, now

    def _user(self, id_or_login: str) -> _User:
        """The user by login or id (caller holds ``_state``) or 404."""
        user = self._users.get(id_or_login)
        if user is None:
            user = next((u for u in self._users.values() if u.id == id_or_login), None)
        if user is None:
            raise _resource_not_found(id_or_login, "User")
        return user

    def _user_view(self, id_or_login: str) -> dict[str, Any]:
        with self._state:
            user = self._user(id_or_login)
            href = f"{self.base_url}/api/v1/users/{user.id}"
            return {
                "id": user.id,
                "status": "ACTIVE",
                "created": _iso(user.created),
                "activated": _iso(user.created),
                "statusChanged": _iso(user.created),
                "lastLogin": None,
                "lastUpdated": _iso(user.last_updated),
                "passwordChanged": _iso(user.password_changed),
                "profile": {"login": user.login},
                "credentials": {"password": {}, "provider": _provider(user)},
                "_links": {
                    "self": {"href": href},
                    "changePassword": {
                        "href": f"{href}/credentials/change_password",
                        "hints": {"allow": ["POST"]},
                    },
                },
            }

    def _change_password(self, id_or_login: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST .../credentials/change_password: the old password must match; the new one must
        differ and have at least 8 characters; directory-mastered users cannot change here."""
        old, new = _password_value(body, "oldPassword"), _password_value(body, "newPassword")
        with self._state:
            user = self._user(id_or_login)
            if user.provider_type != "OKTA":
                raise _credentials_update_failed(
                    f"password: Password is mastered by the directory ({user.provider_type}) "
                    "and cannot be changed in Okta."
                )
            if not _equal(old, user.password):
                raise _credentials_update_failed(
                    "oldPassword: The credentials provided were incorrect."
                )
            if len(new) < MIN_PASSWORD_LENGTH or _equal(new, old):
                raise _credentials_update_failed("password: Password requirements were not met.")
            self._set_user(user.login, new, time.time())
            self.issued_secrets.append(new)
            return {"password": {}, "provider": _provider(user)}


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
