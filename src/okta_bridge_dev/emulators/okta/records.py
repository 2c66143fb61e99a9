"""What the local Okta org holds: apps with their secrets and keys, users, Management API
tokens, and the small helpers every part of the fake uses (ids, timestamps, comparisons).

Plain records: ``OktaOrg`` (``model``) owns them and mutates them under its lock, ``rules`` applies
Okta's rules to them, and the route handlers read them through the model.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import time
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "ACTIVE",
    "INACTIVE",
    "AppKey",
    "AppSecret",
    "Client",
    "ClientKey",
    "Credential",
    "KeyView",
    "ManagementToken",
    "MissingProofError",
    "RateWindow",
    "SecretView",
    "User",
    "equal",
    "is_okta_scope",
    "iso",
    "okta_id",
    "user_id_for",
]

ACTIVE, INACTIVE = "ACTIVE", "INACTIVE"

MissingProofError = Literal["invalid_dpop_proof", "invalid_grant"]
"""How a token endpoint refuses a request without the proof its app requires: Okta's
``invalid_dpop_proof``, or ``invalid_grant`` as a generic RFC 9449 server (oidc-provider) does."""

_ID_ALPHABET = string.ascii_letters + string.digits


# -- what an app and a user hold -------------------------------------------------------------


@dataclass(frozen=True)
class ClientKey:
    kid: str
    kty: str
    crv: str | None
    key: Any  # a cryptography public key


@dataclass(eq=False)
class Credential:
    """One entry of an app's secret or key list; mutated only under the ``OktaOrg``'s lock."""

    id: str
    status: str
    created: float
    last_updated: float


@dataclass(eq=False)
class AppSecret(Credential):
    value: str = field(repr=False)


@dataclass(eq=False)
class AppKey(Credential):
    jwk: dict[str, Any]  # the public members as registered, kid included
    key: ClientKey


@dataclass(eq=False)
class Client:
    client_id: str
    auth_method: str
    scopes: frozenset[str]
    users: frozenset[str]  # logins assigned to the app: the password grant is enabled for them
    secrets: list[AppSecret]
    keys: list[AppKey]
    # "Require Demonstrating Proof of Possession (DPoP) header in token requests".
    dpop_bound_access_tokens: bool = False


@dataclass(eq=False)
class User:
    id: str
    login: str
    password: str = field(repr=False)
    provider_type: str
    provider_name: str
    created: float
    password_changed: float
    last_updated: float


@dataclass(frozen=True)
class ManagementToken:
    client_id: str
    scopes: frozenset[str]
    expires: float
    jkt: str | None = None  # the DPoP key thumbprint the token is bound to


@dataclass
class RateWindow:
    end: float = 0.0
    used: int = 0


def okta_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(17))


def iso(moment: float) -> str:
    """``2026-11-24T18:00:00.000Z``."""
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment)) + f".{int(moment % 1 * 1000):03d}Z"
    )


def equal(presented: str, expected: str) -> bool:
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


def is_okta_scope(scope: str) -> bool:
    return scope.startswith("okta.")


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


def user_id_for(login: str) -> str:
    """The Okta user id of ``login``: ``00u`` and 17 hex digits of its SHA-256."""
    return "00u" + hashlib.sha256(login.encode("utf-8")).hexdigest()[:17]
