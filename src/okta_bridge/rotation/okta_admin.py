"""OktaAdmin: the few Okta Management API calls that credential rotation makes.

Calls go through the bridge's own ``HttpClient`` (verified TLS, the proxy, the deadline, retries of
429 and 5xx that honour Okta's ``X-Rate-Limit-Reset``) with a token from the org authorization
server, minted for the admin app by ``private_key_jwt``: Okta accepts no other client
authentication for ``okta.*`` scopes. Okta's error bodies (``errorCode``, ``errorSummary``,
``errorCauses``) become ``OktaApiError``s that quote them. Request and response bodies, which can
hold a new client secret or password, are never logged.

Writes (creating a secret, adding a key, a lifecycle change, a password change) are not
idempotent, so they are never retried blindly: the transport retries them only when they surely
never reached Okta, and when the outcome is unknown (a reset, a timeout, a 5xx) the caller looks
the result up and decides: a key or a status already there is done, a secret whose value was lost
is deleted before one more try.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from okta_bridge.auth.access_token import AccessToken
from okta_bridge.auth.challenges import challenges
from okta_bridge.auth.dpop import ProofSigner
from okta_bridge.auth.endpoint import TokenEndpoint
from okta_bridge.errors import RotationError, TokenError
from okta_bridge.logs import REDACTOR, get_logger
from okta_bridge.rotation.admin_secret import APPS_SCOPE, USERS_SCOPE
from okta_bridge.secret.credentials import Credentials
from okta_bridge.transport.client import HttpClient
from okta_bridge.transport.deadline import Deadline
from okta_bridge.transport.message import HttpResponse, ResponseTooLarge, Target

ADMIN_TARGET = Target(
    "Okta Management API", "ROTATION_OKTA_UNREACHABLE", "ROTATION_OKTA_TIMEOUT", RotationError
)
SECRETS, JWKS = "secrets", "jwks"  # the two kinds of app credentials, as Okta's paths name them
MAX_ADMIN_RESPONSE = 1_048_576
# Okta error codes that mean the admin app lacks a scope or an admin role, not a bad request.
_PERMISSION_CODES = frozenset({"E0000006", "E0000011", "E0000015"})
# A write answered with one of these, or lost on the way back, may or may not have been done.
_UNCERTAIN_STATUSES = frozenset({500, 502, 503, 504})
_LOST = frozenset({"ROTATION_OKTA_UNREACHABLE", "ROTATION_OKTA_TIMEOUT"})

log = get_logger("okta_admin")


@dataclass(frozen=True)
class OktaSecret:
    """One client secret of an app, as Okta lists it (the value is never kept from a listing)."""

    id: str
    status: str


@dataclass(frozen=True)
class OktaKey:
    """One public key registered on an app: Okta's id, the JWK's kid, status and public members."""

    id: str
    kid: str | None
    status: str
    jwk: Mapping[str, Any]


@dataclass(frozen=True)
class OktaUser:
    """A user, with who masters its password (``OKTA``, ``ACTIVE_DIRECTORY``, ``LDAP``...)."""

    id: str
    login: str
    provider_type: str
    provider_name: str


class OktaApiError(RotationError):
    """A Management API refusal; ``okta_code`` is Okta's ``errorCode`` (``E0000014``...)."""

    def __init__(self, code: str, message: str, *, status: int, okta_code: str) -> None:
        super().__init__(code, message)
        self.http_status = status
        self.okta_code = okta_code


class OktaWriteUncertain(RotationError):
    """A write whose outcome is unknown: it may or may not have happened in Okta."""


class OktaAdmin:
    """Management API calls on behalf of the admin app, one cached token per scope."""

    def __init__(
        self,
        admin: Credentials,
        http: HttpClient,
        endpoint: TokenEndpoint,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._admin = admin
        self._http = http
        self._endpoint = endpoint
        self._clock = clock
        self._tokens: dict[str, AccessToken] = {}
        self.calls = 0

    # -- client secrets --------------------------------------------------------------------

    def list_secrets(self, app_id: str, deadline: Deadline) -> list[OktaSecret]:
        """Every client secret of the app, active or not."""
        items = self._call("GET", _app(app_id, SECRETS), APPS_SCOPE, deadline)
        return [OktaSecret(id=str(i["id"]), status=str(i["status"])) for i in _items(items)]

    def create_secret(
        self, app_id: str, deadline: Deadline, *, status: str
    ) -> tuple[OktaSecret, str]:
        """A new Okta-generated client secret and its value (shown by Okta only this once).

        If Okta's answer is lost, a secret it may have created is one whose value nobody has:
        it is deleted, and the secret created once more.
        """
        known = {secret.id for secret in self.list_secrets(app_id, deadline)}
        path, body = _app(app_id, SECRETS), {"status": status}
        try:
            item = self._call("POST", path, APPS_SCOPE, deadline, body=body, idempotent=False)
        except OktaWriteUncertain as exc:
            for lost in self.list_secrets(app_id, deadline):
                if lost.id not in known:
                    log.warning(
                        "deleting a client secret whose creation answer was lost",
                        extra={"app_id": app_id, "id": lost.id, "code": exc.code},
                    )
                    if lost.status == "ACTIVE":
                        self.set_status(app_id, SECRETS, lost.id, deadline, active=False)
                    self.delete(app_id, SECRETS, lost.id, deadline)
            item = self._call("POST", path, APPS_SCOPE, deadline, body=body, idempotent=False)
        value = item.get("client_secret") if isinstance(item, dict) else None
        if not isinstance(value, str) or not value or "id" not in item:
            raise RotationError(
                "ROTATION_OKTA_ERROR", "Okta's answer to creating a client secret has no secret."
            )
        return OktaSecret(id=str(item["id"]), status=str(item.get("status", status))), value

    # -- public keys -----------------------------------------------------------------------

    def list_keys(self, app_id: str, deadline: Deadline) -> list[OktaKey]:
        """Every public key registered on the app."""
        items = self._call("GET", _app(app_id, JWKS), APPS_SCOPE, deadline)
        return [_key(item) for item in _items(items)]

    def add_key(
        self, app_id: str, jwk: Mapping[str, Any], deadline: Deadline, *, status: str
    ) -> OktaKey:
        """Register a public JWK (with a kid unique on the app); if Okta's answer is lost, the
        key found under its kid is the answer, else it is added once more."""
        path, body = _app(app_id, JWKS), {**jwk, "status": status}
        try:
            item = self._call("POST", path, APPS_SCOPE, deadline, body=body, idempotent=False)
        except OktaWriteUncertain:
            added = next((k for k in self.list_keys(app_id, deadline) if k.kid == jwk["kid"]), None)
            if added is not None:
                return added
            item = self._call("POST", path, APPS_SCOPE, deadline, body=body, idempotent=False)
        if not isinstance(item, dict) or "id" not in item:
            raise RotationError("ROTATION_OKTA_ERROR", "Okta's answer to adding a key has no id.")
        return _key(item)

    # -- either kind ----------------------------------------------------------------------

    def set_status(
        self, app_id: str, kind: str, item_id: str, deadline: Deadline, *, active: bool
    ) -> None:
        """Activate or deactivate one client secret (``kind`` "secrets") or key ("jwks"); if
        Okta's answer is lost, the item's status decides whether to ask once more."""
        action, wanted = ("activate", "ACTIVE") if active else ("deactivate", "INACTIVE")
        path = _app(app_id, kind, item_id, "lifecycle", action)
        try:
            self._call("POST", path, APPS_SCOPE, deadline, idempotent=False)
        except OktaWriteUncertain:
            listed = self.list_secrets if kind == SECRETS else self.list_keys
            item = next((i for i in listed(app_id, deadline) if i.id == item_id), None)
            if item is None or item.status != wanted:
                self._call("POST", path, APPS_SCOPE, deadline, idempotent=False)

    def delete(self, app_id: str, kind: str, item_id: str, deadline: Deadline) -> None:
        """Delete an inactive client secret or key (Okta refuses to delete an active one)."""
        self._call("DELETE", _app(app_id, kind, item_id), APPS_SCOPE, deadline)

    # -- users -----------------------------------------------------------------------------

    def get_user(self, login: str, deadline: Deadline) -> OktaUser:
        """The user with this login (or id)."""
        path = "/api/v1/users/" + urllib.parse.quote(login, safe="")
        item = self._call("GET", path, USERS_SCOPE, deadline)
        if not isinstance(item, dict) or "id" not in item:
            raise RotationError("ROTATION_OKTA_ERROR", "Okta's user answer has no id.")
        credentials = item.get("credentials") or {}
        provider = credentials.get("provider") or {} if isinstance(credentials, dict) else {}
        return OktaUser(
            id=str(item["id"]),
            login=str((item.get("profile") or {}).get("login", login)),
            provider_type=str(provider.get("type", "OKTA")),
            provider_name=str(provider.get("name", "")),
        )

    def change_password(self, user_id: str, old: str, new: str, deadline: Deadline) -> None:
        """Change a password, proving the old one (Okta checks its password policy). Raises
        ``OktaWriteUncertain`` when the answer is lost: the caller tries the new password."""
        path = f"/api/v1/users/{urllib.parse.quote(user_id, safe='')}/credentials/change_password"
        body = {"oldPassword": {"value": old}, "newPassword": {"value": new}}
        self._call("POST", path, USERS_SCOPE, deadline, body=body, idempotent=False)

    # -- plumbing --------------------------------------------------------------------------

    def _token(self, scope: str, deadline: Deadline) -> AccessToken:
        token = self._tokens.get(scope)
        if (
            token is not None
            and token.usable(self._clock())
            and not token.bound_elsewhere(self._endpoint.dpop)
        ):
            return token
        admin = self._admin._replace(scopes=(scope,))
        try:
            token = self._endpoint.request(admin, deadline)
        except TokenError as exc:
            raise RotationError(
                "ROTATION_ADMIN_TOKEN_FAILED",
                f"Okta refused a {scope} token to the admin app {admin.client_id}: "
                f"{exc.code}: {exc.message}",
            ) from None
        self._tokens[scope] = token
        return token

    def _call(
        self,
        method: str,
        path: str,
        scope: str,
        deadline: Deadline,
        *,
        body: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> Any:
        for attempt in (1, 2):
            token = self._token(scope, deadline)
            try:
                response = self._send(method, path, token, deadline, body, idempotent=idempotent)
            except RotationError as exc:
                if idempotent or exc.code not in _LOST:
                    raise
                raise OktaWriteUncertain(exc.code, f"{method} {path}: {exc.message}") from None
            if response.status == 401 and attempt == 1:
                # The token expired or was revoked since it was cached: one fresh token. A 401 is
                # decided before the request is acted on, so even a write may be sent again.
                self._tokens.pop(scope, None)
                continue
            break
        if 200 <= response.status < 300:
            log.info(
                "okta management call",
                extra={"method": method, "path": path, "status": response.status},
            )
            return _json(response.body) if response.body else None
        if not idempotent and response.status in _UNCERTAIN_STATUSES:
            raise OktaWriteUncertain(
                "ROTATION_OKTA_ERROR",
                f"Okta answered {method} {path} with HTTP {response.status}; whether it acted "
                "is unknown.",
            )
        raise _error(method, path, scope, response)

    def _send(
        self,
        method: str,
        path: str,
        token: AccessToken,
        deadline: Deadline,
        body: Mapping[str, Any] | None,
        *,
        idempotent: bool,
    ) -> HttpResponse:
        headers = {"Accept": "application/json", "Authorization": f"{token.scheme} {token.value}"}
        payload = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            payload = json.dumps(body).encode()
        self.calls += 1
        try:
            return self._http.request(
                method,
                self._admin.api_endpoint + path,
                target=ADMIN_TARGET,
                deadline=deadline,
                headers=headers,
                body=payload,
                max_bytes=MAX_ADMIN_RESPONSE,
                idempotent=idempotent,
                # A DPoP-bound admin token: a proof with ath for every request (Okta wants no
                # nonce on its Management API today, but one it sends is used).
                signer=ProofSigner(self._endpoint.dpop, token.value)
                if token.scheme == "DPoP"
                else None,
            )
        except ResponseTooLarge:
            raise RotationError(
                "ROTATION_OKTA_ERROR", f"Okta's answer to {method} {path} is too large."
            ) from None


def _app(app_id: str, kind: str, *parts: str) -> str:
    quoted = [urllib.parse.quote(p, safe="") for p in (app_id, *parts)]
    tail = "/".join(quoted[1:])
    return f"/api/v1/apps/{quoted[0]}/credentials/{kind}" + (f"/{tail}" if tail else "")


def _items(answer: Any) -> list[dict[str, Any]]:
    if not isinstance(answer, list) or not all(isinstance(i, dict) and "id" in i for i in answer):
        raise RotationError("ROTATION_OKTA_ERROR", "Okta's list answer is not a list of objects.")
    return answer


def _key(item: Mapping[str, Any]) -> OktaKey:
    public = {k: v for k, v in item.items() if k in ("kty", "crv", "x", "y", "n", "e")}
    kid = item.get("kid")
    return OktaKey(
        id=str(item["id"]),
        kid=str(kid) if kid is not None else None,
        status=str(item.get("status", "ACTIVE")),
        jwk=public,
    )


def _dpop_refusal(response: HttpResponse) -> str:
    """What a DPoP challenge of a refusal says (the org may lack "DPoP support for Okta
    management APIs", or refuse the proof), so that it is not read as a missing scope."""
    dpop = challenges(response.header("www-authenticate") or "").get("dpop")
    if not dpop:
        return ""
    text = " ".join(filter(None, (dpop.get("error"), dpop.get("error_description"))))
    return REDACTOR.text(text)[:200] or "challenged"


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise RotationError("ROTATION_OKTA_ERROR", "Okta's answer is not JSON.") from None


def _error(method: str, path: str, scope: str, response: HttpResponse) -> OktaApiError:
    """Okta's error body, quoted: errorCode, errorSummary and the causes (never secret)."""
    body = response.json_object() or {}
    okta_code = str(body.get("errorCode", ""))[:40]
    # Redacted before they are cut: a value Okta echoes must not survive as a prefix.
    summary = REDACTOR.text(str(body.get("errorSummary", "")))[:200]
    causes = [
        REDACTOR.text(str(c.get("errorSummary", "")))[:200]
        for c in body.get("errorCauses") or []
        if isinstance(c, dict)
    ]
    detail = f"{okta_code}: {summary}" if okta_code else f"HTTP {response.status}"
    if causes:
        detail += " (" + "; ".join(causes) + ")"
    dpop = _dpop_refusal(response)
    if dpop:
        detail += f"; DPoP: {dpop}"
    what = f"Okta refused {method} {path} with HTTP {response.status}: {detail}"
    if response.status in (401, 403) and (okta_code in _PERMISSION_CODES or not okta_code):
        return OktaApiError(
            "ROTATION_OKTA_FORBIDDEN",
            f"{what}. The admin app needs the {scope} scope and an admin role over this resource.",
            status=response.status,
            okta_code=okta_code,
        )
    return OktaApiError("ROTATION_OKTA_ERROR", what, status=response.status, okta_code=okta_code)
