"""The local Okta's app credentials: client secrets and public keys (JWKS), with Okta's rules.

At most two client secrets per app and none for a ``private_key_jwt`` app; at most 50 keys, each a
valid public signing key with a kid unique in the app; never deactivate an app's only ACTIVE
secret (nor a ``private_key_jwt`` app's only ACTIVE key), never delete an ACTIVE one. The
Management API operations and the test helpers below apply the same rules.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt

from okta_bridge.auth.jose import BY_CRV
from okta_bridge_dev.emulators.okta.client_auth import ASSERTION_ALGORITHMS
from okta_bridge_dev.emulators.okta.errors import resource_not_found, validation_failed
from okta_bridge_dev.emulators.okta.org import (
    ACTIVE,
    INACTIVE,
    AppKey,
    AppSecret,
    Client,
    ClientKey,
    Credential,
    OktaOrg,
    iso,
    okta_id,
)

__all__ = ["AppCredentials", "KeyView", "SecretView"]

MAX_CLIENT_SECRETS = 2
MAX_CLIENT_KEYS = 50
SECRET_LENGTHS = range(14, 101)
MIN_RSA_BITS = 2048

_PRIVATE_JWK_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "k")
_NO_SECRETS_ON_JWT_APP = (
    "client_secret: Client secrets cannot be created for a client that uses private_key_jwt."
)


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


def _mask(value: str) -> str:
    return f"{value[:6]}......{value[-6:]}"


def _secret_hash(value: str) -> str:
    digest = hashlib.sha256(value.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")[:22]


def _check_status(status: object) -> str:
    if status not in (ACTIVE, INACTIVE):
        raise validation_failed("status", "status: The status must be ACTIVE or INACTIVE.")
    return str(status)


def _check_secret_value(value: object) -> str:
    if (
        not isinstance(value, str)
        or len(value) not in SECRET_LENGTHS
        or not all(" " <= char <= "~" for char in value)
    ):
        raise validation_failed(
            "client_secret",
            "client_secret: 'client_secret' must be between 14 and 100 characters long and "
            "contain only printable ASCII characters.",
        )
    return value


def _public_key(jwk: Mapping[str, Any]) -> tuple[dict[str, Any], ClientKey]:
    """Validate a JWK as Okta does; return its public members and the parsed key."""
    if any(member in jwk for member in _PRIVATE_JWK_MEMBERS):
        raise validation_failed(
            "jwks", "jwks: A JSON Web Key with private key members is not accepted."
        )
    kty, crv, kid, alg = jwk.get("kty"), jwk.get("crv"), jwk.get("kid"), jwk.get("alg")
    if kty not in ("RSA", "EC"):
        raise validation_failed("kty", "kty: Only RSA and EC keys are supported.")
    members = ("n", "e") if kty == "RSA" else ("crv", "x", "y")
    if kty == "EC" and crv not in BY_CRV:
        raise validation_failed("crv", f"crv: The curve must be one of {', '.join(BY_CRV)}.")
    if alg is not None and ASSERTION_ALGORITHMS.get(alg) != (kty, crv):
        raise validation_failed("alg", f"alg: The algorithm does not fit this {kty} key.")
    if jwk.get("use", "sig") != "sig":
        raise validation_failed("use", "use: Only signing keys ('sig') are supported.")
    if kid is not None and (not isinstance(kid, str) or not kid):
        raise validation_failed("kid", "kid: The kid must be a non-empty string.")
    try:
        key = jwt.PyJWK({name: jwk[name] for name in ("kty", *members)}).key
    except (jwt.PyJWTError, KeyError, TypeError, ValueError) as error:
        raise validation_failed("jwks", "jwks: The JSON Web Key is invalid.") from error
    if kty == "RSA" and key.key_size < MIN_RSA_BITS:
        raise validation_failed("n", f"n: RSA keys must be at least {MIN_RSA_BITS} bits.")
    public = {"kid": kid or okta_id("kid"), "kty": kty, "use": "sig"}
    public |= {"alg": alg} if alg else {}
    public |= {name: jwk[name] for name in members}
    return public, ClientKey(kid=public["kid"], kty=kty, crv=crv, key=key)


class AppCredentials(OktaOrg):
    """Apps' secrets and keys; operations raise OktaApiError as the Management API answers."""

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
                raise validation_failed("client_secret", _NO_SECRETS_ON_JWT_APP)
            now = time.time()
            secret = AppSecret(okta_id("ocs"), ACTIVE, now, now, new_value)
            client.secrets = [secret]
            self.issued_secrets.append(new_value)
        return SecretView(secret.id, secret.status, secret.value)

    # -- Management API: app credentials (secrets and JWKS) --------------------------------

    def _app(self, client_id: str) -> Client:
        """The app (caller holds ``_state``) or 404."""
        client = self._clients.get(client_id)
        if client is None:
            raise resource_not_found(client_id, "AppInstance")
        return client

    @staticmethod
    def _items(client: Client, kind: str) -> Sequence[Credential]:
        return client.secrets if kind == "secrets" else client.keys

    def _item(self, client: Client, kind: str, item_id: str) -> Credential:
        for item in self._items(client, kind):
            if item.id == item_id:
                return item
        raise resource_not_found(item_id, "ClientSecret" if kind == "secrets" else "JsonWebKey")

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

    def _add_secret(self, client_id: str, value: object, status: str) -> AppSecret:
        """POST .../secrets: at most two per app, none for private_key_jwt apps."""
        status = _check_status(status)
        new_value = _check_secret_value(value) if value is not None else secrets.token_urlsafe(30)
        with self._state:
            client = self._app(client_id)
            if client.auth_method == "private_key_jwt":
                raise validation_failed("client_secret", _NO_SECRETS_ON_JWT_APP)
            if len(client.secrets) >= MAX_CLIENT_SECRETS:
                raise validation_failed(
                    "client_secret",
                    "You've reached the maximum number of client secrets per client.",
                )
            now = time.time()
            secret = AppSecret(okta_id("ocs"), status, now, now, new_value)
            client.secrets.append(secret)
            self.issued_secrets.append(new_value)
            return secret

    def _new_key(self, jwk: Mapping[str, Any], status: str, now: float) -> AppKey:
        public, key = _public_key(jwk)
        return AppKey(okta_id("pks"), status, now, now, public, key)

    def _add_key(self, client_id: str, jwk: Mapping[str, Any], status: str) -> AppKey:
        """POST .../jwks: a valid public key with a kid unique in the app, at most 50 keys."""
        key = self._new_key(jwk, status, time.time())
        with self._state:
            client = self._app(client_id)
            if any(k.key.kid == key.key.kid for k in client.keys):
                raise validation_failed(
                    "kid", f"kid: A key with kid '{key.key.kid}' already exists for this client."
                )
            if len(client.keys) >= MAX_CLIENT_KEYS:
                raise validation_failed(
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
                    raise validation_failed(
                        "client_secret", "You can't deactivate the only active client secret."
                    )
                if active == 1 and client.auth_method == "private_key_jwt":
                    raise validation_failed(
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
                raise validation_failed(
                    "status", f"You can't delete an active {noun}; deactivate it first."
                )
            client.secrets = [s for s in client.secrets if s is not item]
            client.keys = [k for k in client.keys if k is not item]
