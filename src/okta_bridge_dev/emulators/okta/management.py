"""The local Okta's Management API: routes, bearer tokens, scopes and dispatch.

Only what credential rotation uses: an app's client secrets and JWKS (``okta.apps.*``) and a
user's password (``okta.users.*``). A request needs an org authorization server token in
``Authorization: Bearer`` (or, for a DPoP-bound token, ``Authorization: DPoP`` with a proof:
``okta_dpop``) whose scopes cover the method (``.read`` or ``.manage`` for GET, ``.manage``
otherwise); it counts against the management rate limit. The operations themselves live in
``okta_apps`` and ``okta_users``.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from okta_bridge_dev.emulators.okta.apps import AppCredentials
from okta_bridge_dev.emulators.okta.dpop import DPoPSupport
from okta_bridge_dev.emulators.okta.errors import OktaApiError, rate_limited, unsupported_method
from okta_bridge_dev.emulators.okta.org import ACTIVE, INACTIVE, ManagementToken
from okta_bridge_dev.emulators.okta.users import UserAccounts
from okta_bridge_dev.emulators.routing import PathRoute, RecordedRequest, Response

__all__ = ["ManagementApi"]

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


class ManagementApi(AppCredentials, UserAccounts, DPoPSupport):
    """The Management API routes; errors answer as Okta's (``okta_error_body``)."""

    def _management_route(self, path: str) -> PathRoute | None:
        """The counted route of a Management API path ("mgmt_secrets", ...), or None."""
        for name, pattern in _MANAGEMENT_PATHS:
            match = pattern.fullmatch(path)
            if match is not None:
                return PathRoute(name, functools.partial(self._management, name=name, match=match))
        return None

    def _management(self, request: RecordedRequest, *, name: str, match: re.Match[str]) -> Response:
        """Rate limit, bearer token, method, scope, then the operation; errors as Okta's."""
        headers, allowed = self._count_against_rate_limit(management=True)
        if not allowed:
            return rate_limited(headers)
        try:
            grant = self._bearer_grant(request)
            family, operations = self._operations(name, match)
            operation = operations.get(request.method)
            if operation is None:
                raise unsupported_method(", ".join(operations))
            self._require_scope(grant, family, request.method)
            status, payload = operation(request)
        except OktaApiError as error:
            return error.response(headers)
        if payload is None:
            return Response(status, headers)
        return Response.json(status, payload, headers)

    def _bearer_grant(self, request: RecordedRequest) -> ManagementToken:
        """The org authorization server token in ``Authorization: Bearer``, or a DPoP-bound one
        in ``Authorization: DPoP`` with a valid proof; anything else 401. A bound token sent as
        Bearer is refused: whoever holds it without the key must not be able to use it."""
        scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
        token, scheme = token.strip(), scheme.lower()
        with self._state:
            grant = self._management_tokens.get(token)
        if scheme not in ("bearer", "dpop") or grant is None or grant.expires <= time.time():
            challenge = (
                f'Bearer realm="{self.base_url}", error="invalid_token", '
                'error_description="The access token is invalid."'
            )
            raise OktaApiError(
                401, "E0000011", "Invalid token provided", headers={"WWW-Authenticate": challenge}
            )
        if grant.jkt is None:
            if scheme == "dpop":
                raise self._dpop_challenge("invalid_token", "The access token is not DPoP-bound.")
            return grant
        if scheme == "bearer":
            self._count_dpop("bearer_refused")
            raise self._dpop_challenge(
                "invalid_token", "The access token is DPoP-bound; use the DPoP scheme and a proof."
            )
        self._management_proof(request, token, grant.jkt)
        return grant

    def _require_scope(self, grant: ManagementToken, family: str, method: str) -> None:
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
