"""The local Okta's token endpoints: grants and minting, for both authorization servers.

The custom authorization server (``/oauth2/{auth_server_id}/v1/token``) issues signed JWT access
tokens for the client credentials grant (the app's own scopes, never OIDC or ``okta.*`` ones) and
for the password grant (``openid`` required, for users assigned to the app, with an ID token).
The org authorization server (``/oauth2/v1/token``) issues opaque Management API tokens: client
credentials with ``private_key_jwt`` and ``okta.*`` scopes only.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

import jwt

from okta_bridge_dev.emulators.okta.client_auth import authenticate
from okta_bridge_dev.emulators.okta.dpop import token_proof
from okta_bridge_dev.emulators.okta.errors import (
    OAuthError,
    invalid_client,
    method_not_allowed,
    rate_limited,
)
from okta_bridge_dev.emulators.okta.model import OktaOrg
from okta_bridge_dev.emulators.okta.records import Client, equal, is_okta_scope, user_id_for
from okta_bridge_dev.emulators.okta.urls import OrgUrls
from okta_bridge_dev.emulators.routing import RecordedRequest, Response

__all__ = ["TokenEndpoints"]

# Okta refuses OIDC scopes in the client credentials grant.
_OIDC_SCOPES = frozenset(
    {"openid", "profile", "email", "address", "phone", "offline_access", "groups", "device_sso"}
)
_POLICY_DENIED = (
    "Policy evaluation failed for this request, please check the policy configurations."
)
_OKTA_SCOPES_NEED_JWT = (
    "Client authentication with a client secret is not supported for Okta API scopes; use "
    "private_key_jwt."
)
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


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


def _check_scopes(client: Client, requested: list[str], *, refuse: Callable[[str], bool]) -> None:
    refused = [s for s in requested if s not in client.scopes or refuse(s)]
    if refused:
        raise OAuthError(
            400,
            "invalid_scope",
            f"The following scopes are not allowed: {', '.join(refused)}",
        )


class TokenEndpoints:
    """The two token endpoints' handlers over the org's model; OAuth errors answer as Okta's.

    Order as Okta's: client authentication (a client assertion's jti is spent here), then the
    DPoP proof (``dpop``), then the grant, the policy and minting. A request that carried a
    ``DPoP`` header gets the current nonce in ``DPoP-Nonce`` whatever the answer.
    """

    def __init__(self, org: OktaOrg, urls: OrgUrls) -> None:
        self._org = org
        self._urls = urls

    def custom(self, request: RecordedRequest) -> Response:
        """``/oauth2/{auth_server_id}/v1/token``: the bridge's tokens."""
        return self._token_endpoint(request, org=False)

    def org(self, request: RecordedRequest) -> Response:
        """``/oauth2/v1/token``: Management API tokens."""
        return self._token_endpoint(request, org=True)

    def _token_endpoint(self, request: RecordedRequest, *, org: bool) -> Response:
        if request.method != "POST":
            return method_not_allowed("POST")
        limit_headers, allowed = self._org.count_request(management=org)
        headers = {**limit_headers, **_NO_STORE}
        if not allowed:
            return rate_limited(headers)
        url = self._urls.org_token_url if org else self._urls.token_url
        try:
            form = _form(request)
            client = authenticate(self._org, request, form, audience=url)
            jkt = token_proof(self._org, request, client.dpop_bound_access_tokens, url)
            if org:
                scopes = self._org_grant(client, form)
                self._check_policy(client)
                answer = self._mint_management_token(client, scopes, jkt)
            else:
                scopes, subject = self._grant(client, form)
                self._check_policy(client)
                answer = self._mint(client, subject, scopes, form, jkt)
        except OAuthError as error:
            body = {"error": error.error, "error_description": error.description}
            return Response.json(error.status, body, self._with_nonce(request, headers))
        return Response.json(200, answer, self._with_nonce(request, headers))

    def _with_nonce(self, request: RecordedRequest, headers: dict[str, str]) -> dict[str, str]:
        """``headers``, plus ``DPoP-Nonce`` when the request carried a proof."""
        if "dpop" not in request.headers:
            return headers
        return {**headers, "DPoP-Nonce": self._org.dpop_nonce}

    def _check_policy(self, client: Client) -> None:
        if self._org.is_denied(client.client_id):
            raise OAuthError(403, "access_denied", _POLICY_DENIED)

    # -- grants ----------------------------------------------------------------------------

    def _grant(self, client: Client, form: Mapping[str, str]) -> tuple[list[str], str]:
        """Validate a custom authorization server grant; return the scopes and the subject."""
        grant_type = form.get("grant_type")
        requested = list(dict.fromkeys(form.get("scope", "").split()))
        grant_types = ["client_credentials"] + (["password"] if client.users else [])
        _check_grant_type(grant_type, grant_types, supported=("client_credentials", "password"))
        if grant_type == "client_credentials":
            _require_scope_parameter(requested)
            _check_scopes(client, requested, refuse=lambda s: s in _OIDC_SCOPES or is_okta_scope(s))
            return requested, client.client_id
        return requested, self._password_subject(client, form, requested)

    def _password_subject(
        self, client: Client, form: Mapping[str, str], requested: list[str]
    ) -> str:
        if "openid" not in requested:
            raise OAuthError(
                400, "invalid_scope", "The password grant requires the 'openid' scope."
            )
        _check_scopes(client, requested, refuse=is_okta_scope)
        username, password = form.get("username"), form.get("password")
        if not username or password is None:
            raise OAuthError(
                400, "invalid_request", "The username and password parameters are required."
            )
        expected = self._org.password_for(client, username)
        if expected is None or not equal(password, expected):
            raise OAuthError(400, "invalid_grant", "The credentials provided were invalid.")
        return username

    @staticmethod
    def _org_grant(client: Client, form: Mapping[str, str]) -> list[str]:
        """Validate an org authorization server grant: client credentials, Okta scopes only."""
        if client.auth_method != "private_key_jwt":
            raise invalid_client(_OKTA_SCOPES_NEED_JWT)
        _check_grant_type(
            form.get("grant_type"), ["client_credentials"], supported=("client_credentials",)
        )
        requested = list(dict.fromkeys(form.get("scope", "").split()))
        _require_scope_parameter(requested)
        if not all(is_okta_scope(scope) for scope in requested):
            raise OAuthError(400, "invalid_scope", "Custom scopes are not allowed for this request")
        _check_scopes(client, requested, refuse=lambda _: False)
        return requested

    # -- minting ---------------------------------------------------------------------------

    def _mint(
        self,
        client: Client,
        subject: str,
        scopes: list[str],
        form: Mapping[str, str],
        jkt: str | None = None,
    ) -> dict[str, Any]:
        """Sign the access token (and an ID token for the password grant) and build the answer;
        with ``jkt``, the access token is DPoP-bound (``cnf.jkt``, token_type DPoP)."""
        kid, key = self._org.signing_keys()[0]
        now = int(time.time())
        lifetime = int(self._org.token_lifetime)
        claims: dict[str, Any] = {
            "ver": 1,
            "jti": "AT." + secrets.token_urlsafe(32),
            "iss": self._urls.issuer,
            "aud": self._org.audience,
            "iat": now,
            "exp": now + lifetime,
            "cid": client.client_id,
            "scp": scopes,
            "sub": subject,
        }
        if jkt is not None:
            claims["cnf"] = {"jkt": jkt}
        token_type = "Bearer" if jkt is None else "DPoP"
        answer: dict[str, Any] = {"token_type": token_type, "expires_in": lifetime}
        minted = []
        if form.get("grant_type") == "password":
            user_id = user_id_for(subject)
            claims["uid"] = user_id
            id_claims = {
                "ver": 1,
                "jti": "ID." + secrets.token_urlsafe(32),
                "iss": self._urls.issuer,
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
        self._org.record_issued(minted, bound=bool(jkt))
        return answer

    def _mint_management_token(
        self, client: Client, scopes: list[str], jkt: str | None = None
    ) -> dict[str, Any]:
        """An opaque Management API token, remembered server-side with its client, scopes and
        the DPoP key it is bound to (``jkt``, token_type DPoP)."""
        lifetime = int(self._org.token_lifetime)
        token = self._org.issue_management_token(client.client_id, scopes, jkt, lifetime)
        return {
            "token_type": "Bearer" if jkt is None else "DPoP",
            "expires_in": lifetime,
            "access_token": token,
            "scope": " ".join(scopes),
        }
