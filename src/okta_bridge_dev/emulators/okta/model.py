"""The local Okta org as one model object: its state and the typed operations on it.

As moto splits a fake service (``models``: state and rules; ``responses``: thin handlers),
``OktaOrg`` holds everything the org knows (apps, users, signing keys, tokens and secrets issued,
used client-assertion ``jti`` values, rate-limit windows, DPoP settings, nonces and counters)
behind one lock, and the route handlers (``client_auth``, ``tokens``, ``dpop``, ``management``,
``discovery``) receive it and call these methods. It knows no URL and no HTTP: operations raise
``OktaApiError`` as the Management API answers a broken rule (``rules``).
"""

from __future__ import annotations

import copy
import math
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from okta_bridge_dev.emulators.dpop_proofs import ReplayCache
from okta_bridge_dev.emulators.okta import rules
from okta_bridge_dev.emulators.okta.client_auth import CLIENT_AUTH_METHODS
from okta_bridge_dev.emulators.okta.errors import OktaApiError, resource_not_found
from okta_bridge_dev.emulators.okta.records import (
    ACTIVE,
    AppKey,
    AppSecret,
    Client,
    ClientKey,
    Credential,
    KeyView,
    ManagementToken,
    MissingProofError,
    RateWindow,
    SecretView,
    User,
    is_okta_scope,
    okta_id,
    user_id_for,
)

__all__ = ["NOMINAL_RATE_LIMIT", "RATE_LIMIT_WINDOW", "OktaOrg"]

RATE_LIMIT_WINDOW = 60
NOMINAL_RATE_LIMIT = 10_000
"""What ``X-Rate-Limit-Limit`` reports while a limit is None (no limit enforced)."""


class OktaOrg:
    """Everything the org holds, guarded by one lock. Attributes a test (through ``OktaServer``)
    may change at any time: ``token_lifetime``, ``rate_limit``, ``management_rate_limit``,
    ``new_apps_require_dpop`` and ``missing_proof_error``; ``issued_tokens``,
    ``issued_secrets`` and ``dpop_counts`` are the same objects for the org's lifetime."""

    def __init__(
        self, *, audience: str, token_lifetime: int, require_dpop_by_default: bool
    ) -> None:
        self.audience = audience
        self.token_lifetime = token_lifetime
        self.rate_limit: int | None = None
        self.management_rate_limit: int | None = None
        self.issued_tokens: list[str] = []
        self.issued_secrets: list[str] = []
        self.new_apps_require_dpop = require_dpop_by_default
        self.missing_proof_error: MissingProofError = "invalid_dpop_proof"
        self.dpop_counts: Counter[str] = Counter()
        self.dpop_replay = ReplayCache()
        self._lock = threading.Lock()
        self._clients: dict[str, Client] = {}
        self._users: dict[str, User] = {}
        self._management_tokens: dict[str, ManagementToken] = {}
        self._denied: set[str] = set()
        self._used_jtis: dict[tuple[str, str], float] = {}
        self._signing_keys: list[tuple[str, rsa.RSAPrivateKey]] = []
        self._token_window = RateWindow()
        self._management_window = RateWindow()
        self._initial_dpop_nonce = self._dpop_nonce = _new_nonce()
        self._previous_dpop_nonce: str | None = None

    # -- apps --------------------------------------------------------------------------------

    def register_client(
        self,
        client_id: str,
        *,
        auth_method: str,
        client_secret: str | None,
        jwks: Sequence[Mapping[str, Any]],
        scopes: Iterable[str],
        users: Mapping[str, str] | None,
        dpop_bound_access_tokens: bool | None,
    ) -> None:
        """Register (or replace) an app; see ``OktaServer.register_client``."""
        if auth_method not in CLIENT_AUTH_METHODS:
            raise ValueError(f"auth_method must be one of {CLIENT_AUTH_METHODS}")
        if auth_method == "private_key_jwt":
            if not jwks:
                raise ValueError("private_key_jwt needs at least one public JWK")
        elif not client_secret:
            raise ValueError(f"{auth_method} needs a client_secret")
        now = time.time()
        try:
            keys = [rules.new_key(jwk, ACTIVE, now) for jwk in jwks]
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
        with self._lock:
            self._clients[client_id] = client
            for login, password in (users or {}).items():
                self._set_user(login, password, now)
            self.issued_secrets.extend([client_secret] if client_secret else [])
            self.issued_secrets.extend((users or {}).values())

    def client(self, client_id: str) -> Client | None:
        """The app's record (its secret and key lists are read through the methods below)."""
        with self._lock:
            return self._clients.get(client_id)

    def deny_client(self, client_id: str) -> None:
        """Make the app's token requests fail the access policy until ``allow_client``."""
        with self._lock:
            self._denied.add(client_id)

    def allow_client(self, client_id: str) -> None:
        with self._lock:
            self._denied.discard(client_id)

    def is_denied(self, client_id: str) -> bool:
        with self._lock:
            return client_id in self._denied

    def scopes_supported(self) -> list[str]:
        """Every custom scope some app may request, sorted (discovery's ``scopes_supported``)."""
        with self._lock:
            scopes = {s for c in self._clients.values() for s in c.scopes if not is_okta_scope(s)}
        return sorted(scopes)

    def active_secrets(self, client: Client) -> list[str]:
        with self._lock:
            return [s.value for s in client.secrets if s.status == ACTIVE]

    def active_keys(self, client: Client) -> list[ClientKey]:
        with self._lock:
            return [k.key for k in client.keys if k.status == ACTIVE]

    def spend_jti(self, client_id: str, jti: str, *, expires: float, now: float) -> bool:
        """Record a client assertion's ``jti`` until it expires; False if already used."""
        with self._lock:
            self._used_jtis = {k: exp for k, exp in self._used_jtis.items() if exp > now}
            if (client_id, jti) in self._used_jtis:
                return False
            self._used_jtis[(client_id, jti)] = expires
            return True

    # -- app credentials (copies out; the rules in ``rules``) --------------------------------

    def client_secrets(self, client_id: str) -> list[SecretView]:
        with self._lock:
            return [SecretView(s.id, s.status, s.value) for s in self._app(client_id).secrets]

    def client_keys(self, client_id: str) -> list[KeyView]:
        with self._lock:
            return [KeyView(k.id, k.key.kid, k.status) for k in self._app(client_id).keys]

    def add_secret(self, client_id: str, value: object, status: str) -> AppSecret:
        """Add a secret (generated if ``value`` is None) as ``POST .../secrets`` does."""
        status = rules.check_status(status)
        new_value = rules.check_secret_value(value) if value is not None else _new_secret()
        with self._lock:
            secret = rules.add_secret(self._app(client_id), new_value, status, time.time())
            self.issued_secrets.append(new_value)
            return copy.copy(secret)

    def reset_client_secret(self, client_id: str, value: str | None = None) -> SecretView:
        """Replace all the app's secrets with one new ACTIVE secret."""
        new_value = rules.check_secret_value(value) if value is not None else _new_secret()
        with self._lock:
            client = self._app(client_id)
            rules.no_secrets_on_jwt_apps(client)
            now = time.time()
            secret = AppSecret(okta_id("ocs"), ACTIVE, now, now, new_value)
            client.secrets = [secret]
            self.issued_secrets.append(new_value)
        return SecretView(secret.id, secret.status, secret.value)

    def add_key(self, client_id: str, jwk: Mapping[str, Any], status: str) -> AppKey:
        """Add a public key as ``POST .../jwks`` does."""
        key = rules.new_key(jwk, status, time.time())
        with self._lock:
            rules.add_key(self._app(client_id), key)
            return copy.copy(key)

    def credentials(self, kind: str, client_id: str) -> list[Credential]:
        with self._lock:
            return [copy.copy(item) for item in rules.items(self._app(client_id), kind)]

    def credential(self, kind: str, client_id: str, item_id: str) -> Credential:
        with self._lock:
            return copy.copy(rules.find_item(self._app(client_id), kind, item_id))

    def set_credential_status(
        self, kind: str, client_id: str, item_id: str, status: str
    ) -> Credential:
        with self._lock:
            client = self._app(client_id)
            item = rules.find_item(client, kind, item_id)
            rules.set_item_status(client, kind, item, status, time.time())
            return copy.copy(item)

    def delete_credential(self, kind: str, client_id: str, item_id: str) -> None:
        with self._lock:
            client = self._app(client_id)
            rules.delete_item(client, kind, rules.find_item(client, kind, item_id))

    def _app(self, client_id: str) -> Client:
        """The app (caller holds the lock) or 404."""
        client = self._clients.get(client_id)
        if client is None:
            raise resource_not_found(client_id, "AppInstance")
        return client

    # -- users -------------------------------------------------------------------------------

    def user(self, id_or_login: str) -> User:
        """A copy of the user (by login or id); raises OktaApiError 404."""
        with self._lock:
            return copy.copy(self._user(id_or_login))

    def password_for(self, client: Client, login: str) -> str | None:
        """The password of ``login`` if it is a user assigned to ``client``, else None."""
        with self._lock:
            user = self._users.get(login) if login in client.users else None
            return user.password if user is not None else None

    def set_user_provider(self, login: str, provider_type: str, provider_name: str) -> None:
        with self._lock:
            user = self._user(login)
            user.provider_type, user.provider_name = provider_type, provider_name
            user.last_updated = time.time()

    def set_user_password(self, login: str, password: str) -> None:
        """Set the password as an admin reset does: no old password, no policy check."""
        with self._lock:
            self._set_user(self._user(login).login, password, time.time())
            self.issued_secrets.append(password)

    def change_password(self, id_or_login: str, old: str, new: str) -> User:
        """Change the password as the user does (``rules.change_password``); a copy back."""
        with self._lock:
            user = self._user(id_or_login)
            rules.change_password(user, old, new, time.time())
            self.issued_secrets.append(new)
            return copy.copy(user)

    def _set_user(self, login: str, password: str, now: float) -> None:
        """Create or reset an OKTA-mastered user (caller holds the lock)."""
        user = self._users.get(login)
        if user is None:
            self._users[login] = User(
                user_id_for(login), login, password, "OKTA", "OKTA", now, now, now
            )
        elif user.password != password:
            user.password, user.password_changed, user.last_updated = password, now, now

    def _user(self, id_or_login: str) -> User:
        """The user by login or id (caller holds the lock) or 404."""
        user = self._users.get(id_or_login)
        if user is None:
            user = next((u for u in self._users.values() if u.id == id_or_login), None)
        if user is None:
            raise resource_not_found(id_or_login, "User")
        return user

    # -- signing keys and issued tokens ------------------------------------------------------

    def rotate_signing_key(self) -> str:
        """Sign new tokens with a fresh RSA-2048 key; older keys stay published. Returns its kid."""
        kid = secrets.token_urlsafe(16)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        with self._lock:
            self._signing_keys.append((kid, key))
        return kid

    def signing_keys(self) -> list[tuple[str, rsa.RSAPrivateKey]]:
        """(kid, key), newest first."""
        with self._lock:
            return list(reversed(self._signing_keys))

    def record_issued(self, tokens: Iterable[str], *, bound: bool) -> None:
        """Remember minted tokens (for leak scans); count a DPoP-bound answer."""
        with self._lock:
            self.issued_tokens.extend(tokens)
            self.dpop_counts.update(["bound_token"] if bound else [])

    def issue_management_token(
        self, client_id: str, scopes: Iterable[str], jkt: str | None, lifetime: int
    ) -> str:
        """A new opaque Management API token, remembered with its client, scopes and DPoP key."""
        token = secrets.token_urlsafe(48)
        now = time.time()
        with self._lock:
            self._management_tokens = {
                t: g for t, g in self._management_tokens.items() if g.expires > now
            }
            self._management_tokens[token] = ManagementToken(
                client_id, frozenset(scopes), now + lifetime, jkt
            )
            self.issued_tokens.append(token)
            self.dpop_counts.update(["bound_token"] if jkt else [])
        return token

    def management_grant(self, token: str) -> ManagementToken | None:
        with self._lock:
            return self._management_tokens.get(token)

    # -- rate limits -------------------------------------------------------------------------

    def reset_rate_limit(self) -> None:
        """Start fresh rate-limit windows with the next request."""
        with self._lock:
            self._token_window = RateWindow()
            self._management_window = RateWindow()

    def count_request(self, *, management: bool) -> tuple[dict[str, str], bool]:
        """Count a request against its window: Okta's rate-limit headers, and whether allowed."""
        now = time.time()
        with self._lock:
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

    # -- DPoP --------------------------------------------------------------------------------

    def require_dpop(self, client_id: str, on: bool = True) -> None:
        """Raises ValueError for an unknown app."""
        with self._lock:
            client = self._clients.get(client_id)
            if client is None:
                raise ValueError(f"no app {client_id!r}")
            client.dpop_bound_access_tokens = on

    def requires_dpop(self, client_id: str) -> bool:
        with self._lock:
            client = self._clients.get(client_id)
            return client is not None and client.dpop_bound_access_tokens

    @property
    def dpop_nonce(self) -> str:
        with self._lock:
            return self._dpop_nonce

    def accepted_nonces(self) -> list[str]:
        """The current nonce and the one it replaced (the current twice if there is none)."""
        with self._lock:
            return [self._dpop_nonce, self._previous_dpop_nonce or self._dpop_nonce]

    def rotate_dpop_nonce(self) -> str:
        with self._lock:
            self._previous_dpop_nonce, self._dpop_nonce = self._dpop_nonce, _new_nonce()
            return self._dpop_nonce

    def expire_dpop_nonces(self) -> str:
        with self._lock:
            self._previous_dpop_nonce, self._dpop_nonce = None, _new_nonce()
            return self._dpop_nonce

    def reset_dpop_nonces(self) -> str:
        with self._lock:
            self._dpop_nonce, self._previous_dpop_nonce = self._initial_dpop_nonce, None
            return self._dpop_nonce

    def count_dpop(self, *names: str) -> None:
        with self._lock:
            self.dpop_counts.update(names)

    def reset_dpop_counts(self) -> None:
        with self._lock:
            self.dpop_counts.clear()


def _new_nonce() -> str:
    return secrets.token_urlsafe(24)


def _new_secret() -> str:
    return secrets.token_urlsafe(30)
