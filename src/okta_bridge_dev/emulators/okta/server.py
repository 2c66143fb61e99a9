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

Laid out as moto lays out a fake service: one model object, ``OktaOrg`` (``model``: the org's
state and typed operations; ``records`` what it holds, ``rules`` Okta's rules), and route
handlers that receive it: ``tokens`` (both token endpoints, with ``client_auth`` and ``dpop``),
``management`` (the Management API) and ``discovery`` (metadata and JWKS); ``urls`` names the
endpoints, ``errors`` the error answers. ``OktaServer`` here is the TLS server and the public
face tests and the local stack use: routes, configuration and helpers that delegate to the model.
"""

from __future__ import annotations

import ssl
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from okta_bridge_dev.emulators.dpop_proofs import ReplayCache
from okta_bridge_dev.emulators.okta.client_auth import (
    ASSERTION_ALGORITHMS,
    CLIENT_ASSERTION_TYPE,
    CLIENT_AUTH_METHODS,
)
from okta_bridge_dev.emulators.okta.discovery import Discovery, public_jwk, public_jwks
from okta_bridge_dev.emulators.okta.errors import OAuthError, OktaApiError, okta_error_body
from okta_bridge_dev.emulators.okta.management import ManagementApi
from okta_bridge_dev.emulators.okta.model import OktaOrg
from okta_bridge_dev.emulators.okta.records import ACTIVE, KeyView, MissingProofError, SecretView
from okta_bridge_dev.emulators.okta.tokens import TokenEndpoints
from okta_bridge_dev.emulators.okta.urls import OrgUrls
from okta_bridge_dev.emulators.routing import PathRoute, RecordedRequest, Response
from okta_bridge_dev.emulators.servers import TLSServer

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


class OktaServer(TLSServer):
    """An Okta org: the custom authorization server ``/oauth2/{auth_server_id}`` (discovery, JWKS,
    token), the org authorization server ``/oauth2/v1/token`` and Management API routes.

    Counted routes: "token", "keys", "discovery", "org_token", "mgmt_secrets", "mgmt_jwks",
    "mgmt_users" (and "not_found"). Attributes a test may change at any time: ``token_lifetime``
    (both authorization servers), ``rate_limit`` (custom token requests per 60 s window, None for
    no limit) and ``management_rate_limit`` (the same for the org token endpoint and the
    Management API together). ``issued_tokens`` holds every token minted and ``issued_secrets``
    every client secret and password the org has held, for leak scans. ``org`` is the model
    behind all of it.

    DPoP (``dpop``): ``require_dpop(client_id, on)``, ``requires_dpop``, ``dpop_nonce``,
    ``rotate_dpop_nonce``, ``expire_dpop_nonces``, ``dpop_counts``; attributes
    ``new_apps_require_dpop`` (what ``register_client`` uses when not told; the constructor's
    ``require_dpop_by_default``, True as Okta has it for new apps) and ``missing_proof_error``
    ("invalid_dpop_proof", Okta's answer, or "invalid_grant", a generic RFC 9449 server's).

    Test helpers (the Management API's rules; OktaApiError as the API answers):
    ``client_secrets``, ``client_keys``, ``add_client_secret``, ``reset_client_secret``,
    ``set_user_provider``, ``set_user_password``, ``user_password``, ``user_id`` and
    ``reset_rate_limit``.
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
        super().__init__(ssl_context, host=host, port=port)
        self.auth_server_id = auth_server_id
        self.org = OktaOrg(
            audience=audience,
            token_lifetime=token_lifetime,
            require_dpop_by_default=require_dpop_by_default,
        )
        self.urls = OrgUrls(lambda: self.base_url, auth_server_id)
        tokens = TokenEndpoints(self.org, self.urls)
        discovery = Discovery(self.org, self.urls)
        self._management = ManagementApi(self.org, self.urls)
        prefix = f"/oauth2/{auth_server_id}"
        metadata = PathRoute("discovery", discovery.metadata)
        self._routes = {
            f"{prefix}/v1/token": PathRoute("token", tokens.custom),
            f"{prefix}/v1/keys": PathRoute("keys", discovery.keys),
            f"{prefix}/.well-known/oauth-authorization-server": metadata,
            f"{prefix}/.well-known/openid-configuration": metadata,
            "/oauth2/v1/token": PathRoute("org_token", tokens.org),
        }
        self.org.rotate_signing_key()

    # -- routing ---------------------------------------------------------------------------

    def route(self, request: RecordedRequest) -> PathRoute:
        exact = self._routes.get(request.path)
        if exact is not None:
            return exact
        management = self._management.route(request.path)
        if management is not None:
            return management
        return PathRoute("not_found", _not_found)

    # -- URLs ------------------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        """``https://127.0.0.1:PORT/oauth2/{auth_server_id}``, the ``iss`` of every token."""
        return self.urls.issuer

    @property
    def token_url(self) -> str:
        """The token endpoint; also the only ``aud`` accepted in client assertions."""
        return self.urls.token_url

    @property
    def jwks_url(self) -> str:
        """The public signing keys."""
        return self.urls.jwks_url

    @property
    def org_token_url(self) -> str:
        """The org authorization server's token endpoint: Management API tokens."""
        return self.urls.org_token_url

    # -- settings and records (the model's) ------------------------------------------------

    @property
    def audience(self) -> str:
        return self.org.audience

    @audience.setter
    def audience(self, value: str) -> None:
        self.org.audience = value

    @property
    def token_lifetime(self) -> int:
        return self.org.token_lifetime

    @token_lifetime.setter
    def token_lifetime(self, value: int) -> None:
        self.org.token_lifetime = value

    @property
    def rate_limit(self) -> int | None:
        return self.org.rate_limit

    @rate_limit.setter
    def rate_limit(self, value: int | None) -> None:
        self.org.rate_limit = value

    @property
    def management_rate_limit(self) -> int | None:
        return self.org.management_rate_limit

    @management_rate_limit.setter
    def management_rate_limit(self, value: int | None) -> None:
        self.org.management_rate_limit = value

    @property
    def new_apps_require_dpop(self) -> bool:
        return self.org.new_apps_require_dpop

    @new_apps_require_dpop.setter
    def new_apps_require_dpop(self, value: bool) -> None:
        self.org.new_apps_require_dpop = value

    @property
    def missing_proof_error(self) -> MissingProofError:
        return self.org.missing_proof_error

    @missing_proof_error.setter
    def missing_proof_error(self, value: MissingProofError) -> None:
        self.org.missing_proof_error = value

    @property
    def issued_tokens(self) -> list[str]:
        return self.org.issued_tokens

    @property
    def issued_secrets(self) -> list[str]:
        return self.org.issued_secrets

    @property
    def dpop_counts(self) -> Counter[str]:
        return self.org.dpop_counts

    @property
    def dpop_replay(self) -> ReplayCache:
        return self.org.dpop_replay

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
        self.org.register_client(
            client_id,
            auth_method=auth_method,
            client_secret=client_secret,
            jwks=jwks,
            scopes=scopes,
            users=users,
            dpop_bound_access_tokens=dpop_bound_access_tokens,
        )

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
        self.org.deny_client(client_id)

    def allow_client(self, client_id: str) -> None:
        """Undo ``deny_client``."""
        self.org.allow_client(client_id)

    def rotate_signing_key(self) -> str:
        """Sign new tokens with a fresh RSA-2048 key; older keys stay published. Returns its kid."""
        return self.org.rotate_signing_key()

    def public_jwks(self) -> dict[str, Any]:
        """The JWKS document served at ``jwks_url``, newest key first."""
        return public_jwks(self.org)

    # -- app credentials and users ---------------------------------------------------------

    def client_secrets(self, client_id: str) -> list[SecretView]:
        """The app's client secrets, oldest first."""
        return self.org.client_secrets(client_id)

    def client_keys(self, client_id: str) -> list[KeyView]:
        """The app's public keys, oldest first."""
        return self.org.client_keys(client_id)

    def add_client_secret(
        self, client_id: str, value: str | None = None, status: str = ACTIVE
    ) -> SecretView:
        """Add a secret as ``POST .../credentials/secrets`` does (generated if ``value`` is None).

        Raises OktaApiError as the API would answer (404, or 400 E0000001 for a broken rule).
        """
        secret = self.org.add_secret(client_id, value, status)
        return SecretView(secret.id, secret.status, secret.value)

    def reset_client_secret(self, client_id: str, value: str | None = None) -> SecretView:
        """Replace all the app's secrets with one new ACTIVE secret, as an admin rotating it by
        hand in the console would: the old secrets stop working at once."""
        return self.org.reset_client_secret(client_id, value)

    def set_user_provider(self, login: str, provider_type: str, provider_name: str) -> None:
        """Make ``login``'s credentials mastered by another provider (e.g. ``ACTIVE_DIRECTORY``,
        ``corp.example.com``); Okta then refuses to change its password."""
        self.org.set_user_provider(login, provider_type, provider_name)

    def set_user_password(self, login: str, password: str) -> None:
        """Set the user's password as an admin reset does: no old password, no policy check."""
        self.org.set_user_password(login, password)

    def user_password(self, login: str) -> str:
        """The user's current password."""
        return self.org.user(login).password

    def user_id(self, login: str) -> str:
        """The user's Okta id (``00u...``)."""
        return self.org.user(login).id

    def reset_rate_limit(self) -> None:
        """Start fresh rate-limit windows with the next request."""
        self.org.reset_rate_limit()

    # -- DPoP ------------------------------------------------------------------------------

    def require_dpop(self, client_id: str, on: bool = True) -> None:
        """Switch the app's "Require DPoP header in token requests". Raises ValueError for an
        unknown app."""
        self.org.require_dpop(client_id, on)

    def requires_dpop(self, client_id: str) -> bool:
        """Whether the app requires a DPoP proof in token requests (False for an unknown app)."""
        return self.org.requires_dpop(client_id)

    @property
    def dpop_nonce(self) -> str:
        """The nonce the token endpoints hand out now."""
        return self.org.dpop_nonce

    def rotate_dpop_nonce(self) -> str:
        """Hand out a new nonce; the one it replaces is still accepted. Returns the new one."""
        return self.org.rotate_dpop_nonce()

    def expire_dpop_nonces(self) -> str:
        """Replace the current and the previous nonce: any nonce a client holds is now refused.
        Returns the new one."""
        return self.org.expire_dpop_nonces()

    def reset_dpop_nonces(self) -> str:
        """Back to the nonce the server started with (the previous one forgotten), so that a
        test that rotated or expired nonces leaves a client's cached nonce as valid as it was
        before. Returns it."""
        return self.org.reset_dpop_nonces()

    def reset_counts(self) -> None:
        """Zero ``counts``, the handshakes and ``dpop_counts``."""
        super().reset_counts()
        self.org.reset_dpop_counts()


def _not_found(request: RecordedRequest) -> Response:
    return Response.json(404, okta_error_body("E0000007", "Not found: Resource not found."))
