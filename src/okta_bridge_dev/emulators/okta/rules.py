"""Okta's rules for app credentials and passwords, as functions over the org's records.

At most two client secrets per app and none for a ``private_key_jwt`` app; at most 50 keys, each a
valid public signing key with a kid unique in the app; never deactivate an app's only ACTIVE
secret (nor a ``private_key_jwt`` app's only ACTIVE key), never delete an ACTIVE one. A user's
password changes only with the old one, to a new one of at least eight characters; a user whose
credentials a directory masters cannot change it here at all.

Why functions: the Management API and the test helpers must apply the same rules, and the
model (``OktaOrg``) calls these under its lock; nothing here holds state. Each raises
``OktaApiError`` as the Management API answers a broken rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jwt

from okta_bridge.auth.jose import BY_CRV
from okta_bridge_dev.emulators.okta.client_auth import ASSERTION_ALGORITHMS
from okta_bridge_dev.emulators.okta.errors import (
    credentials_update_failed,
    resource_not_found,
    validation_failed,
)
from okta_bridge_dev.emulators.okta.records import (
    ACTIVE,
    INACTIVE,
    AppKey,
    AppSecret,
    Client,
    ClientKey,
    Credential,
    User,
    equal,
    okta_id,
)

__all__ = [
    "MAX_CLIENT_KEYS",
    "MAX_CLIENT_SECRETS",
    "MIN_PASSWORD_LENGTH",
    "add_key",
    "add_secret",
    "change_password",
    "check_secret_value",
    "check_status",
    "delete_item",
    "find_item",
    "items",
    "new_key",
    "no_secrets_on_jwt_apps",
    "set_item_status",
]

MAX_CLIENT_SECRETS = 2
MAX_CLIENT_KEYS = 50
SECRET_LENGTHS = range(14, 101)
MIN_RSA_BITS = 2048
MIN_PASSWORD_LENGTH = 8

_PRIVATE_JWK_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "k")
_NO_SECRETS_ON_JWT_APP = (
    "client_secret: Client secrets cannot be created for a client that uses private_key_jwt."
)


# -- client secrets and keys -------------------------------------------------------------------


def check_status(status: object) -> str:
    if status not in (ACTIVE, INACTIVE):
        raise validation_failed("status", "status: The status must be ACTIVE or INACTIVE.")
    return str(status)


def check_secret_value(value: object) -> str:
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


def new_key(jwk: Mapping[str, Any], status: str, now: float) -> AppKey:
    """A validated public key entry (not yet on any app)."""
    public, key = _public_key(jwk)
    return AppKey(okta_id("pks"), status, now, now, public, key)


def no_secrets_on_jwt_apps(client: Client) -> None:
    if client.auth_method == "private_key_jwt":
        raise validation_failed("client_secret", _NO_SECRETS_ON_JWT_APP)


def add_secret(client: Client, value: str, status: str, now: float) -> AppSecret:
    """POST .../secrets: at most two per app, none for private_key_jwt apps."""
    no_secrets_on_jwt_apps(client)
    if len(client.secrets) >= MAX_CLIENT_SECRETS:
        raise validation_failed(
            "client_secret",
            "You've reached the maximum number of client secrets per client.",
        )
    secret = AppSecret(okta_id("ocs"), status, now, now, value)
    client.secrets.append(secret)
    return secret


def add_key(client: Client, key: AppKey) -> None:
    """POST .../jwks: a kid unique in the app, at most 50 keys."""
    if any(k.key.kid == key.key.kid for k in client.keys):
        raise validation_failed(
            "kid", f"kid: A key with kid '{key.key.kid}' already exists for this client."
        )
    if len(client.keys) >= MAX_CLIENT_KEYS:
        raise validation_failed(
            "jwks", "You've reached the maximum number of JSON Web Keys per client."
        )
    client.keys.append(key)


def items(client: Client, kind: str) -> Sequence[Credential]:
    """The app's ``kind`` ("secrets" or "jwks") list."""
    return client.secrets if kind == "secrets" else client.keys


def find_item(client: Client, kind: str, item_id: str) -> Credential:
    for item in items(client, kind):
        if item.id == item_id:
            return item
    raise resource_not_found(item_id, "ClientSecret" if kind == "secrets" else "JsonWebKey")


def set_item_status(client: Client, kind: str, item: Credential, status: str, now: float) -> None:
    """Activate or deactivate; never the last ACTIVE secret, nor a private_key_jwt app's last
    ACTIVE key. Already in that status: left as is."""
    if status == INACTIVE and item.status == ACTIVE:
        active = sum(i.status == ACTIVE for i in items(client, kind))
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
        item.status, item.last_updated = status, now


def delete_item(client: Client, kind: str, item: Credential) -> None:
    """DELETE: only INACTIVE secrets and keys."""
    if item.status == ACTIVE:
        noun = "client secret" if kind == "secrets" else "JSON Web Key"
        raise validation_failed(
            "status", f"You can't delete an active {noun}; deactivate it first."
        )
    client.secrets = [s for s in client.secrets if s is not item]
    client.keys = [k for k in client.keys if k is not item]


# -- passwords ---------------------------------------------------------------------------------


def change_password(user: User, old: str, new: str, now: float) -> None:
    """POST .../credentials/change_password: the old password must match; the new one must
    differ and have at least 8 characters; directory-mastered users cannot change here."""
    if user.provider_type != "OKTA":
        raise credentials_update_failed(
            f"password: Password is mastered by the directory ({user.provider_type}) "
            "and cannot be changed in Okta."
        )
    if not equal(old, user.password):
        raise credentials_update_failed("oldPassword: The credentials provided were incorrect.")
    if len(new) < MIN_PASSWORD_LENGTH or equal(new, old):
        raise credentials_update_failed("password: Password requirements were not met.")
    if user.password != new:
        user.password, user.password_changed, user.last_updated = new, now, now
