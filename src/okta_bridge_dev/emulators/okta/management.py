"""The local Okta's Management API: routes, bearer tokens, scopes and dispatch.

Only what credential rotation uses: an app's client secrets and JWKS (``okta.apps.*``) and a
user's password (``okta.users.*``). A request needs an org authorization server token in
``Authorization: Bearer`` (or, for a DPoP-bound token, ``Authorization: DPoP`` with a proof:
``dpop``) whose scopes cover the method (``.read`` or ``.manage`` for GET, ``.manage``
otherwise); it counts against the management rate limit. The operations and their rules live
in the model (``OktaOrg``, ``rules``); this module parses requests and renders Okta's JSON.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

from okta_bridge_dev.emulators.okta.dpop import dpop_challenge, management_proof
from okta_bridge_dev.emulators.okta.errors import (
    OktaApiError,
    rate_limited,
    unsupported_method,
    validation_failed,
)
from okta_bridge_dev.emulators.okta.model import OktaOrg
from okta_bridge_dev.emulators.okta.records import (
    ACTIVE,
    INACTIVE,
    AppKey,
    AppSecret,
    Credential,
    ManagementToken,
    User,
    iso,
)
from okta_bridge_dev.emulators.okta.rules import check_status
from okta_bridge_dev.emulators.okta.urls import OrgUrls
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


def _password_value(body: Mapping[str, Any], name: str) -> str:
    member = body.get(name)
    value = member.get("value") if isinstance(member, dict) else None
    if not isinstance(value, str):
        raise validation_failed(name, f"{name}: The field cannot be left blank.")
    return value


def _provider(user: User) -> dict[str, str]:
    return {"type": user.provider_type, "name": user.provider_name}


def _mask(value: str) -> str:
    return f"{value[:6]}......{value[-6:]}"


def _secret_hash(value: str) -> str:
    digest = hashlib.sha256(value.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")[:22]


class ManagementApi:
    """The Management API routes over the org's model; errors answer as Okta's
    (``okta_error_body``)."""

    def __init__(self, org: OktaOrg, urls: OrgUrls) -> None:
        self._org = org
        self._urls = urls

    def route(self, path: str) -> PathRoute | None:
        """The counted route of a Management API path ("mgmt_secrets", ...), or None."""
        for name, pattern in _MANAGEMENT_PATHS:
            match = pattern.fullmatch(path)
            if match is not None:
                return PathRoute(name, functools.partial(self._management, name=name, match=match))
        return None

    def _management(self, request: RecordedRequest, *, name: str, match: re.Match[str]) -> Response:
        """Rate limit, bearer token, method, scope, then the operation; errors as Okta's."""
        headers, allowed = self._org.count_request(management=True)
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
        grant = self._org.management_grant(token)
        if scheme not in ("bearer", "dpop") or grant is None or grant.expires <= time.time():
            challenge = (
                f'Bearer realm="{self._urls.base_url}", error="invalid_token", '
                'error_description="The access token is invalid."'
            )
            raise OktaApiError(
                401, "E0000011", "Invalid token provided", headers={"WWW-Authenticate": challenge}
            )
        if grant.jkt is None:
            if scheme == "dpop":
                raise dpop_challenge(
                    self._urls.base_url, "invalid_token", "The access token is not DPoP-bound."
                )
            return grant
        if scheme == "bearer":
            self._org.count_dpop("bearer_refused")
            raise dpop_challenge(
                self._urls.base_url,
                "invalid_token",
                "The access token is DPoP-bound; use the DPoP scheme and a proof.",
            )
        management_proof(self._org, request, token, grant.jkt, base_url=self._urls.base_url)
        return grant

    def _require_scope(self, grant: ManagementToken, family: str, method: str) -> None:
        """GET needs ``{family}.read`` or ``{family}.manage``; writes need ``.manage``."""
        needed = {f"{family}.manage"} | ({f"{family}.read"} if method == "GET" else set())
        if not needed & grant.scopes:
            challenge = (
                f'Bearer realm="{self._urls.base_url}", error="insufficient_scope", '
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
        org = self._org
        if name == "mgmt_users":
            login = unquote(match["user"])
            if match["action"]:
                return "okta.users", {
                    "POST": lambda r: (200, self._change_password(login, _json_object(r)))
                }
            return "okta.users", {"GET": lambda _: (200, self._user_view(org.user(login)))}
        kind = "secrets" if name == "mgmt_secrets" else "jwks"
        app, item, action = match["app"], match["item"], match["action"]
        if item is None:
            return "okta.apps", {
                "GET": lambda _: (200, self._render_all(kind, app, org.credentials(kind, app))),
                "POST": lambda r: (201, self._create_credential(kind, app, _json_object(r))),
            }
        if action is None:

            def delete(_: RecordedRequest) -> tuple[int, Any]:
                org.delete_credential(kind, app, item)
                return 204, None

            return "okta.apps", {
                "GET": lambda _: (200, self._render(app, kind, org.credential(kind, app, item))),
                "DELETE": delete,
            }
        status = ACTIVE if action == "activate" else INACTIVE

        def set_status(_: RecordedRequest) -> tuple[int, Any]:
            return 200, self._render(app, kind, org.set_credential_status(kind, app, item, status))

        return "okta.apps", {"POST": set_status}

    # -- operations and Okta's JSON ------------------------------------------------------------

    def _create_credential(
        self, kind: str, client_id: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        status = check_status(body.get("status", ACTIVE))
        if kind == "secrets":
            secret = self._org.add_secret(client_id, body.get("client_secret"), status)
            return self._render(client_id, kind, secret, reveal=True)
        jwk = {k: v for k, v in body.items() if k != "status"}
        return self._render(client_id, kind, self._org.add_key(client_id, jwk, status))

    def _change_password(self, id_or_login: str, body: Mapping[str, Any]) -> dict[str, Any]:
        old, new = _password_value(body, "oldPassword"), _password_value(body, "newPassword")
        user = self._org.change_password(id_or_login, old, new)
        return {"password": {}, "provider": _provider(user)}

    def _render_all(
        self, kind: str, client_id: str, items: list[Credential]
    ) -> list[dict[str, Any]]:
        return [self._render(client_id, kind, item) for item in items]

    def _render(
        self, client_id: str, kind: str, item: Credential, *, reveal: bool = False
    ) -> dict[str, Any]:
        """Okta's JSON for a secret (masked unless ``reveal``) or a key, with its ``_links``."""
        body: dict[str, Any] = {"id": item.id, "status": item.status}
        if isinstance(item, AppSecret):
            body["client_secret"] = item.value if reveal else _mask(item.value)
            body["secret_hash"] = _secret_hash(item.value)
        elif isinstance(item, AppKey):
            body.update(item.jwk)
        body |= {"created": iso(item.created), "lastUpdated": iso(item.last_updated)}
        href = f"{self._urls.base_url}/api/v1/apps/{client_id}/credentials/{kind}/{item.id}"
        if item.status == ACTIVE:
            links = {"deactivate": (f"{href}/lifecycle/deactivate", "POST")}
        else:
            links = {"activate": (f"{href}/lifecycle/activate", "POST"), "delete": (href, "DELETE")}
        body["_links"] = {
            rel: {"href": url, "hints": {"allow": [method]}} for rel, (url, method) in links.items()
        }
        return body

    def _user_view(self, user: User) -> dict[str, Any]:
        href = f"{self._urls.base_url}/api/v1/users/{user.id}"
        return {
            "id": user.id,
            "status": "ACTIVE",
            "created": iso(user.created),
            "activated": iso(user.created),
            "statusChanged": iso(user.created),
            "lastLogin": None,
            "lastUpdated": iso(user.last_updated),
            "passwordChanged": iso(user.password_changed),
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
