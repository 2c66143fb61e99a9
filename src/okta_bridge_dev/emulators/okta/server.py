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

``OktaServer`` is assembled from one part per responsibility, each a class over the shared
``OktaOrg`` state: ``okta_org`` (state, URLs, rate limits), ``okta_errors`` (error answers),
``okta_client_auth`` (client authentication), ``okta_tokens`` (grants and minting),
``okta_apps`` (client secrets and JWKS), ``okta_users`` (users and passwords),
``okta_dpop`` (DPoP proofs, nonces and bound tokens) and ``okta_management`` (Management API
dispatch). This module keeps the routes, configuration and the public names.
"""

from __future__ import annotations

import secrets
import ssl
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from okta_bridge_dev.emulators.dpop_proofs import PROOF_ALGORITHMS
from okta_bridge_dev.emulators.okta.apps import KeyView, SecretView
from okta_bridge_dev.emulators.okta.client_auth import (
    ASSERTION_ALGORITHMS,
    CLIENT_ASSERTION_TYPE,
    CLIENT_AUTH_METHODS,
)
from okta_bridge_dev.emulators.okta.errors import (
    OAuthError,
    OktaApiError,
    method_not_allowed,
    okta_error_body,
)
from okta_bridge_dev.emulators.okta.management import ManagementApi
from okta_bridge_dev.emulators.okta.org import ACTIVE, AppSecret, Client, is_okta_scope, okta_id
from okta_bridge_dev.emulators.okta.tokens import TokenEndpoints
from okta_bridge_dev.emulators.routing import PathRoute, RecordedRequest, Response

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

OKTA_API_SCOPES = ("okta.apps.read", "okta.apps.manage", "okta.users.read", "okta.users.manage")
"""The Management API scopes this server knows; ``register_admin_client`` grants all by default."""


class OktaServer(TokenEndpoints, ManagementApi):
    """An Okta org: the custom authorization server ``/oauth2/{auth_server_id}`` (discovery, JWKS,
    token), the org authorization server ``/oauth2/v1/token`` and Management API routes.

    Counted routes: "token", "keys", "discovery", "org_token", "mgmt_secrets", "mgmt_jwks",
    "mgmt_users" (and "not_found"). Attributes a test may change at any time: ``token_lifetime``
    (both authorization servers), ``rate_limit`` (custom token requests per 60 s window, None for
    no limit) and ``management_rate_limit`` (the same for the org token endpoint and the
    Management API together). ``issued_tokens`` holds every token minted and ``issued_secrets``
    every client secret and password the org has held, for leak scans.

    DPoP (``okta_dpop``): ``require_dpop(client_id, on)``, ``requires_dpop``, ``dpop_nonce``,
    ``rotate_dpop_nonce``, ``expire_dpop_nonces``, ``dpop_counts``; attributes
    ``new_apps_require_dpop`` (what ``register_client`` uses when not told; the constructor's
    ``require_dpop_by_default``, True as Okta has it for new apps) and ``missing_proof_error``
    ("invalid_dpop_proof", Okta's answer, or "invalid_grant", a generic RFC 9449 server's).

    Test helpers come from its parts: ``client_secrets``, ``client_keys``, ``add_client_secret``
    and ``reset_client_secret`` (``okta_apps``); ``set_user_provider``, ``set_user_password``,
    ``user_password`` and ``user_id`` (``okta_users``); ``reset_rate_limit`` and the URLs
    (``okta_org``).
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
        require_dpop_by_default: bool = True,
    ) -> None:
        super().__init__(
            ssl_context,
            auth_server_id=auth_server_id,
            audience=audience,
            token_lifetime=token_lifetime,
            host=host,
            port=port,
        )
        prefix = f"/oauth2/{auth_server_id}"
        discovery = PathRoute("discovery", self._discovery)
        self._routes = {
            f"{prefix}/v1/token": PathRoute("token", self._token),
            f"{prefix}/v1/keys": PathRoute("keys", self._keys),
            f"{prefix}/.well-known/oauth-authorization-server": PathRoute(
                "discovery", self._discovery
            ),
            f"{prefix}/.well-known/openid-configuration": discovery,
            "/oauth2/v1/token": PathRoute("org_token", self._org_token),
        }
        self.new_apps_require_dpop = require_dpop_by_default
        self.rotate_signing_key()

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
        dpop_bound_access_tokens: bool | None = None,
    ) -> None:
        """Register (or replace) an app with one ACTIVE secret and/or its ACTIVE keys.

        ``users`` (login -> password) registers (or resets) org users with OKTA-mastered
        passwords and enables the password grant for them on this app.
        ``dpop_bound_access_tokens``: the app requires a DPoP proof in token requests; None
        takes ``new_apps_require_dpop``. Raises ValueError for an unknown method, missing
        credentials or a JWK the Management API would refuse.
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
        client = Client(
            client_id=client_id,
            auth_method=auth_method,
            scopes=frozenset(scopes),
            users=frozenset(users or {}),
            secrets=[],
            keys=keys,
            dpop_bound_access_tokens=(
                self.new_apps_require_dpop
                if dpop_bound_access_tokens is None
                else dpop_bound_access_tokens
            ),
        )
        if client_secret:
            client.secrets.append(AppSecret(okta_id("ocs"), ACTIVE, now, now, client_secret))
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
        dpop_bound_access_tokens: bool | None = None,
    ) -> None:
        """Register a ``private_key_jwt`` service app granted Okta API ``scopes``: it gets
        Management API tokens from ``org_token_url`` (DPoP as in ``register_client``)."""
        self.register_client(
            client_id,
            auth_method="private_key_jwt",
            jwks=jwks,
            scopes=scopes,
            dpop_bound_access_tokens=dpop_bound_access_tokens,
        )

    def deny_client(self, client_id: str) -> None:
        """Make the client's token requests fail the access policy (403) until ``allow_client``."""
        with self._state:
            self._denied.add(client_id)

    def allow_client(self, client_id: str) -> None:
        """Undo ``deny_client``."""
        with self._state:
            self._denied.discard(client_id)

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

    def route(self, request: RecordedRequest) -> PathRoute:
        exact = self._routes.get(request.path)
        if exact is not None:
            return exact
        management = self._management_route(request.path)
        if management is not None:
            return management
        return PathRoute("not_found", self._not_found)

    def _not_found(self, request: RecordedRequest) -> Response:
        return Response.json(404, okta_error_body("E0000007", "Not found: Resource not found."))

    def _discovery(self, request: RecordedRequest) -> Response:
        if request.method not in ("GET", "HEAD"):
            return method_not_allowed("GET")
        with self._state:
            scopes = sorted(
                {s for c in self._clients.values() for s in c.scopes if not is_okta_scope(s)}
            )
        document = {
            "issuer": self.issuer,
            "token_endpoint": self.token_url,
            "jwks_uri": self.jwks_url,
            "token_endpoint_auth_methods_supported": list(CLIENT_AUTH_METHODS),
            "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
            "grant_types_supported": ["client_credentials", "password"],
            "scopes_supported": scopes,
            "dpop_signing_alg_values_supported": list(PROOF_ALGORITHMS),
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
            return method_not_allowed("GET")
        return Response.json(200, self.public_jwks(), {"Cache-Control": "max-age=300"})


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
